// libFuzzer target: the real Qwen3 tokenizer, loaded once, on arbitrary bytes.
//  - encode: every id names a token; decode gives valid UTF-8, and gives the text back when the text is
//    valid UTF-8 in NFC; the stream decoder, fed the ids one by one, emits valid UTF-8 pieces that add up
//    to decode (with and without skip_special);
//  - the same bytes read as little-endian int32 ids (any value): decode and the stream decoder agree;
//  - the bytes split at \x01 into messages of cycling roles: the chat template's text encodes.
// The tokenizer: $OPDEV_TOKENIZER (tokenizer.json or its directory), else OPDEV_FUZZ_TOKENIZER (set by
// the build to .cache/tokenizer-qwen3/models; scripts/fetch-tokenizer.sh fills it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "model/tokenizer_text.h"

#ifndef OPDEV_FUZZ_TOKENIZER
#define OPDEV_FUZZ_TOKENIZER ".cache/tokenizer-qwen3/models"
#endif

namespace {

using opdev::model::StreamDecoder;
using opdev::model::Tokenizer;
namespace tok = opdev::model::tok;

std::unique_ptr<Tokenizer> g_tok;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: invariant broken: %s\n", what);
    std::abort();
  }
}

void check_stream(const std::vector<int32_t>& ids, bool skip_special) {
  StreamDecoder s(*g_tok, skip_special);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = s.push(id);
    check(tok::utf8_is_valid(piece), "a stream piece is not valid UTF-8");
    all += piece;
  }
  const std::string tail = s.flush();
  check(tok::utf8_is_valid(tail), "the stream flush is not valid UTF-8");
  all += tail;
  check(all == g_tok->decode(ids, skip_special), "stream decoding differs from decode");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("OPDEV_TOKENIZER");
  const std::string path = env && *env ? env : OPDEV_FUZZ_TOKENIZER;
  try {
    g_tok = Tokenizer::load(path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_tokenizer: %s\n(run scripts/fetch-tokenizer.sh, or set OPDEV_TOKENIZER)\n", e.what());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = g_tok->encode(text);
  for (int32_t id : ids) check(id >= 0 && id < g_tok->vocab_size() && !g_tok->token_bytes(id).empty(), "bad id");
  const std::string back = g_tok->decode(ids);
  check(tok::utf8_is_valid(back), "decode is not valid UTF-8");
  if (tok::utf8_is_valid(text) && tok::nfc(text) == text) check(back == text, "decode(encode(x)) != x for NFC x");
  check_stream(ids, false);
  check_stream(ids, true);

  std::vector<int32_t> raw(size / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
  check(tok::utf8_is_valid(g_tok->decode(raw)), "decode of arbitrary ids is not valid UTF-8");
  check_stream(raw, false);

  static const char* const kRoles[] = {"system", "user", "assistant", "tool", "user", "assistant"};
  std::vector<opdev::model::ChatMessage> messages;
  size_t start = 0;
  for (size_t i = 0; i <= size && messages.size() < 16; ++i) {
    if (i == size || data[i] == 1) {
      messages.push_back({kRoles[messages.size() % 6], text.substr(start, i - start)});
      start = i + 1;
    }
  }
  const std::string prompt = g_tok->apply_chat_template(messages, size % 2 == 0, size % 3 != 0);
  check(!g_tok->encode(prompt).empty(), "the chat template gave nothing");
  return 0;
}
