// The pre-tokenizer regex (private to src/model): PCRE2 (UTF, UCP, JIT when available) with the
// pattern's \s rewritten to Unicode White_Space, so that it means what it means to the Hugging Face
// tokenizers library (Oniguruma; Rust's regex agrees): PCRE2's own \s also matches U+180E, and
// JavaScript's matches U+FEFF but not U+0085.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace opdev::model::tok {

// `pattern` with \s and \S replaced by explicit White_Space classes (inside a character class too;
// \S inside a class is left to PCRE2, whose only difference there is U+180E). Escapes, \Q..\E and
// POSIX classes are copied unchanged.
std::string translate_pattern(const std::string& pattern);

class Regex {
 public:
  // A regex (literal = false) or a plain string to find (literal = true). `what` names it in errors:
  // "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex".
  Regex(const std::string& pattern, bool literal, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [begin, end) byte ranges of the successive non-empty, non-overlapping matches in
  // `text` (valid UTF-8) to `out`. Throws ModelError if PCRE2 gives up (resource limits).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8
  std::string what_;
};

}  // namespace opdev::model::tok
