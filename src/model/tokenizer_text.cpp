#include "model/tokenizer_text.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>

#include "model/error.h"

namespace opdev::model::tok {

const char kReplacementChar[4] = "\xEF\xBF\xBD";

Utf8Step utf8_step(const unsigned char* p, size_t n, size_t* len, uint32_t* cp) {
  const unsigned b = p[0];
  if (b < 0x80) {
    *len = 1;
    *cp = b;
    return Utf8Step::kValid;
  }
  // The lead byte fixes the length and the range of the second byte (no overlong forms, no
  // surrogates, nothing above U+10FFFF); later bytes are 80..BF.
  size_t need;
  uint32_t c;
  unsigned lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
    c = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    c = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    c = b & 0x07;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *len = 1;  // 80..BF without a lead, C0, C1, F5..FF
    return Utf8Step::kInvalid;
  }
  for (size_t i = 1; i <= need; ++i) {
    if (i >= n) {
      *len = i;
      return Utf8Step::kIncomplete;
    }
    const unsigned x = p[i];
    if (x < lo || x > hi) {
      *len = i;  // the byte at i starts the next step
      return Utf8Step::kInvalid;
    }
    lo = 0x80;
    hi = 0xBF;
    c = (c << 6) | (x & 0x3F);
  }
  *len = need + 1;
  *cp = c;
  return Utf8Step::kValid;
}

bool utf8_is_valid(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (utf8_step(p + i, s.size() - i, &len, &cp) != Utf8Step::kValid) return false;
    i += len;
  }
  return true;
}

std::string utf8_sanitize(std::string_view s) {
  if (utf8_is_valid(s)) return std::string(s);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    uint32_t cp;
    const Utf8Step st = utf8_step(p + i, s.size() - i, &len, &cp);
    if (st == Utf8Step::kValid) out.append(s.data() + i, len);
    else out += kReplacementChar;  // invalid, or incomplete at the end of the text
    i += len;
  }
  return out;
}

void utf8_append(std::string* out, uint32_t c) {
  if (c < 0x80) {
    out->push_back(char(c));
  } else if (c < 0x800) {
    out->push_back(char(0xC0 | (c >> 6)));
    out->push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(char(0xE0 | (c >> 12)));
    out->push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(char(0x80 | (c & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (c >> 18)));
    out->push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(char(0x80 | (c & 0x3F)));
  }
}

std::string nfc(std::string_view s) {
  bool plain = true;
  for (unsigned char c : s) {
    if (c >= 0xCC) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(s);
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                   utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {
    std::free(out);
    throw ModelError(std::string("tokenizer: NFC normalisation failed: ") + utf8proc_errmsg(n));
  }
  std::string r(reinterpret_cast<const char*>(out), size_t(n));
  std::free(out);
  return r;
}

namespace {

struct ByteMap {
  std::array<uint32_t, 256> cp{};
  std::array<std::string, 256> utf8;
  std::array<int16_t, 324> inverse{};  // the images are < 256 + 68
  ByteMap() {
    inverse.fill(-1);
    uint32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp[size_t(b)] = printable ? uint32_t(b) : 256 + extra++;
      utf8_append(&utf8[size_t(b)], cp[size_t(b)]);
      inverse[cp[size_t(b)]] = int16_t(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return byte_map().cp[b]; }
const std::string& byte_to_unicode_utf8(uint8_t b) { return byte_map().utf8[b]; }

int codepoint_to_byte(uint32_t cp) {
  const ByteMap& m = byte_map();
  return cp < m.inverse.size() ? m.inverse[cp] : -1;
}

std::string byte_level_decode(std::string_view token) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  size_t i = 0;
  while (i < token.size()) {
    size_t len;
    uint32_t cp;
    if (utf8_step(p + i, token.size() - i, &len, &cp) != Utf8Step::kValid) return std::string(token);
    const int b = codepoint_to_byte(cp);
    if (b < 0) return std::string(token);
    out.push_back(char(b));
    i += len;
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_to_unicode_utf8(b);
  return out;
}

bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_word_char(uint32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (c == 0x200C || c == 0x200D) return true;
  if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
      (c >= 0x1F170 && c <= 0x1F189))
    return true;
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

uint32_t first_codepoint(std::string_view s) {
  size_t len;
  uint32_t cp = 0xFFFD;
  utf8_step(reinterpret_cast<const unsigned char*>(s.data()), s.size(), &len, &cp);
  return cp;
}

uint32_t last_codepoint(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return first_codepoint(s.substr(i));
}

}  // namespace opdev::model::tok
