// Text helpers of the tokenizer (private to src/model): UTF-8 validation with U+FFFD replacement, NFC,
// the GPT-2 byte-to-unicode map of byte-level BPE, and the Unicode character classes the added-token
// matcher needs. Exposed in a header for the unit tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace opdev::model::tok {

// One step of a UTF-8 decoder over p[0..n) (n >= 1), following the WHATWG Encoding Standard (the same
// "maximal subpart" rule as Unicode's U+FFFD substitution, Python's errors="replace", Rust's
// from_utf8_lossy and JavaScript's TextDecoder):
//   kValid:      the first *len bytes are one code point (*cp);
//   kInvalid:    the first *len bytes (>= 1) are one maximal invalid subsequence: one U+FFFD;
//   kIncomplete: all n bytes are a proper prefix of a valid sequence (more bytes could complete it).
enum class Utf8Step { kValid, kInvalid, kIncomplete };
Utf8Step utf8_step(const unsigned char* p, size_t n, size_t* len, uint32_t* cp);

bool utf8_is_valid(std::string_view s);
// `s` with every maximal invalid subsequence (and an incomplete sequence at the end) replaced by
// U+FFFD; valid input comes back unchanged.
std::string utf8_sanitize(std::string_view s);
// Appends the UTF-8 encoding of cp (a Unicode scalar value).
void utf8_append(std::string* out, uint32_t cp);
extern const char kReplacementChar[4];  // U+FFFD in UTF-8, NUL-terminated

// NFC of valid UTF-8 (utf8proc). Text whose bytes are all < 0xCC (code points < U+0300: no combining
// marks, nothing NFC changes) is returned as is without calling utf8proc.
std::string nfc(std::string_view valid_utf8);

// GPT-2 bytes_to_unicode: byte b -> a printable code point (b itself for the 188 printable bytes of
// Latin-1, 256 + k for the k-th other byte in byte order).
uint32_t byte_to_codepoint(uint8_t b);
// The UTF-8 encoding of byte_to_codepoint(b).
const std::string& byte_to_unicode_utf8(uint8_t b);
// The inverse map: the byte of cp, or -1 when cp is not the image of a byte.
int codepoint_to_byte(uint32_t cp);
// The bytes a byte-level token string stands for; a string with any character outside the map is
// returned as its own UTF-8 (what the Hugging Face ByteLevel decoder does, e.g. for added tokens).
std::string byte_level_decode(std::string_view token);
// Each byte of `bytes` as its byte-level character.
std::string byte_level_encode(std::string_view bytes);

// Unicode White_Space (what Rust's regex and Oniguruma mean by \s): U+0009..000D, 0020, 0085, 00A0,
// 1680, 2000..200A, 2028, 2029, 202F, 205F, 3000.
bool is_white_space(uint32_t cp);
// Rust regex's Unicode \w (Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control),
// from the general category (letters, marks, Nd, Nl, Pc), ZWNJ/ZWJ and the circled letters (the
// Other_Alphabetic symbols). Used by single_word added tokens.
bool is_word_char(uint32_t cp);

// The first / last code point of valid UTF-8 text (text must be non-empty).
uint32_t first_codepoint(std::string_view s);
uint32_t last_codepoint(std::string_view s);

}  // namespace opdev::model::tok
