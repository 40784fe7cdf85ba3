#include "model/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "model/error.h"

namespace opdev::model::tok {

namespace {

// Unicode White_Space as the body of a character class.
constexpr const char* kWhiteSpace =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "PCRE2 error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string translate_pattern(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index in p just after "[" or "[^" (a "]" there is a literal)
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : std::string("[") + kWhiteSpace + "]";
        ++i;
      } else if (e == 'S' && !in_class) {
        out += std::string("[^") + kWhiteSpace + "]";
        ++i;
      } else if (e == 'Q') {
        // Literal text up to \E (or the end): copy as is.
        const size_t end = p.find("\\E", i + 2);
        const size_t stop = end == std::string::npos ? p.size() : end + 2;
        out.append(p, i, stop - i);
        i = stop - 1;
      } else {
        out += c;
        out += e;
        ++i;
      }
      continue;
    }
    if (!in_class) {
      out += c;
      if (c == '[') {
        in_class = true;
        class_start = i + 1;
        if (i + 1 < p.size() && p[i + 1] == '^') {
          out += '^';
          ++i;
          class_start = i + 1;
        }
      }
      continue;
    }
    if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // POSIX class [:name:] inside a class.
      const size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out.append(p, i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    out += c;
    if (c == ']' && i != class_start) in_class = false;
  }
  return out;
}

Regex::Regex(const std::string& pattern, bool literal, const std::string& what) : what_(what) {
  const std::string src = literal ? pattern : translate_pattern(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = PCRE2_UTF | PCRE2_UCP;
  if (literal) options = PCRE2_UTF | PCRE2_LITERAL;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(src.data()), src.size(), options, &err, &offset, nullptr);
  if (!code)
    throw ModelError(what + ": the pattern does not compile (PCRE2: " + pcre2_message(err) + " at offset " +
                     std::to_string(offset) + " of \"" + src + "\")");
  // JIT is an optimisation: without it (unsupported CPU, no executable memory) the interpreter runs.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(pcre2_match_data_create_from_pattern(code, nullptr),
                                                                      pcre2_match_data_free);
  // A larger JIT stack than the 32 KiB default, for long runs under lookarounds.
  std::unique_ptr<pcre2_jit_stack, void (*)(pcre2_jit_stack*)> stack(pcre2_jit_stack_create(32 << 10, 8 << 20, nullptr),
                                                                      pcre2_jit_stack_free);
  std::unique_ptr<pcre2_match_context, void (*)(pcre2_match_context*)> ctx(pcre2_match_context_create(nullptr),
                                                                           pcre2_match_context_free);
  if (!md || !stack || !ctx) throw ModelError(what_ + ": out of memory for the regex match");
  pcre2_jit_stack_assign(ctx.get(), nullptr, stack.get());
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // The text is valid UTF-8 (sanitised by encode), so PCRE2's check, which would rescan the whole
    // subject at every call, is skipped.
    const int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), ctx.get());
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0)
      throw ModelError(what_ + ": the regex failed at byte " + std::to_string(pos) + " of a " +
                       std::to_string(text.size()) + "-byte text (PCRE2: " + pcre2_message(rc) + ")");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out->emplace_back(b, e);
      pos = e;
    } else {
      // An empty match produces no piece; step over one character.
      pos = b + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
}

}  // namespace opdev::model::tok
