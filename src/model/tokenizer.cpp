// The tokenizer: tokenizer.json loading and validation, the encode pipeline (added tokens, NFC,
// pre-tokenizer, BPE), decoding, the stream decoder and the Qwen3 chat template. See tokenizer.h for
// the semantics; the text, regex and BPE pieces live in tokenizer_text/regex/bpe.
#include "model/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>
#include <unordered_map>

#include "model/tokenizer_bpe.h"
#include "model/tokenizer_json.h"
#include "model/tokenizer_regex.h"
#include "model/tokenizer_text.h"

namespace opdev::model {

namespace {

using nlohmann::json;

// The regex of the GPT-2 ByteLevel pre-tokenizer (use_regex = true).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Ids above this are refused: tables are indexed by id.
constexpr int64_t kMaxId = (int64_t(1) << 24) - 1;
constexpr off_t kMaxFileBytes = off_t(1) << 30;
// Unused ids a tokenizer may have (gaps in its numbering).
constexpr int64_t kMaxIdGap = int64_t(1) << 20;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = true;
};

// A piece of text between added tokens (token < 0) or an added token (index into the added list) with
// the byte range it covers (including what lstrip / rstrip took).
struct Segment {
  int32_t token;
  size_t begin, end;
};

// Finds added tokens in text the way Hugging Face's AddedVocabulary::find_matches does: an
// Aho-Corasick leftmost-longest scan (here a byte trie tried at each position), then per match the
// single_word test (a discarded match still consumes its span) and the lstrip / rstrip extensions.
class AddedMatcher {
 public:
  void add(const std::string& content, int32_t index) {
    if (nodes_.empty()) nodes_.emplace_back();
    size_t n = 0;
    for (unsigned char c : content) {
      auto& edges = nodes_[n].edges;
      auto it = std::find_if(edges.begin(), edges.end(), [c](const auto& e) { return e.first == c; });
      if (it != edges.end()) {
        n = size_t(it->second);
      } else {
        edges.emplace_back(c, int32_t(nodes_.size()));
        n = nodes_.size();
        nodes_.emplace_back();
      }
    }
    nodes_[n].token = index;
    first_[static_cast<unsigned char>(content[0])] = true;
  }
  void finish() {
    for (auto& node : nodes_) std::sort(node.edges.begin(), node.edges.end());
  }
  bool empty() const { return nodes_.empty(); }

  void split(std::string_view s, const std::vector<AddedToken>& tokens, std::vector<Segment>* out) const {
    out->clear();
    size_t start_offset = 0, i = 0;
    while (i < s.size()) {
      if (!first_[static_cast<unsigned char>(s[i])]) {
        ++i;
        continue;
      }
      int32_t found = -1;
      size_t found_end = 0, n = 0;
      for (size_t j = i; j < s.size(); ++j) {
        const auto& edges = nodes_[n].edges;
        const unsigned char c = static_cast<unsigned char>(s[j]);
        auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(c, int32_t(-1)));
        if (it == edges.end() || it->first != c) break;
        n = size_t(it->second);
        if (nodes_[n].token >= 0) {
          found = nodes_[n].token;
          found_end = j + 1;
        }
      }
      if (found < 0) {
        ++i;
        continue;
      }
      const AddedToken& t = tokens[size_t(found)];
      size_t start = i, stop = found_end;
      i = found_end;
      if (t.single_word) {
        const bool word_before = start > 0 && tok::is_word_char(tok::last_codepoint(s.substr(0, start)));
        const bool word_after = stop < s.size() && tok::is_word_char(tok::first_codepoint(s.substr(stop)));
        if (word_before || word_after) continue;
      }
      if (t.lstrip) {
        size_t b = start;
        while (b > start_offset) {
          size_t p = b - 1;
          while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
          if (!tok::is_white_space(tok::first_codepoint(s.substr(p, b - p)))) break;
          b = p;
        }
        start = b;
      }
      if (t.rstrip) {
        while (stop < s.size()) {
          size_t len;
          uint32_t cp;
          tok::utf8_step(reinterpret_cast<const unsigned char*>(s.data()) + stop, s.size() - stop, &len, &cp);
          if (!tok::is_white_space(cp)) break;
          stop += len;
        }
        i = stop;  // the next search starts after what rstrip took
      }
      if (start_offset < start) out->push_back({-1, start_offset, start});
      out->push_back({found, start, stop});
      start_offset = stop;
    }
    if (start_offset < s.size()) out->push_back({-1, start_offset, s.size()});
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> edges;
    int32_t token = -1;
  };
  std::vector<Node> nodes_;
  bool first_[256] = {};
};

// ---------------------------------------------------------------------------------------------------
// tokenizer.json validation

class Json {
 public:
  explicit Json(std::string what) : what_(std::move(what)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw ModelError(what_ + ": " + (field.empty() ? "" : field + ": ") + message);
  }
  [[noreturn]] void unsupported(const std::string& field, const std::string& message) const {
    fail(field, "unsupported: " + message + " (this tokenizer implements byte-level BPE as Qwen2/Qwen3 use it)");
  }
  static std::string kind(const json& j) { return j.type_name(); }

  const json& object(const json& j, const std::string& field) const {
    if (!j.is_object()) fail(field, "expected an object, got " + kind(j));
    return j;
  }
  // A member that must be present.
  const json& at(const json& obj, const std::string& field, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(join(field, key), "missing");
    return *it;
  }
  // A member that may be absent or null (nullptr then).
  static const json* opt(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  std::string string(const json& j, const std::string& field) const {
    if (!j.is_string()) fail(field, "expected a string, got " + kind(j));
    return j.get<std::string>();
  }
  bool flag(const json& obj, const std::string& field, const char* key, bool def) const {
    const json* v = opt(obj, key);
    if (!v) return def;
    if (!v->is_boolean()) fail(join(field, key), "expected true or false, got " + kind(*v));
    return v->get<bool>();
  }
  int32_t id(const json& j, const std::string& field) const {
    if (!j.is_number_integer()) fail(field, "expected an integer id, got " + kind(j));
    const int64_t v = j.is_number_unsigned() ? int64_t(std::min<uint64_t>(j.get<uint64_t>(), uint64_t(kMaxId) + 1))
                                             : j.get<int64_t>();
    if (v < 0 || v > kMaxId) fail(field, "id " + j.dump() + " is out of range (0.." + std::to_string(kMaxId) + ")");
    return int32_t(v);
  }
  std::string type(const json& obj, const std::string& field) const { return string(at(obj, field, "type"), join(field, "type")); }
  static std::string join(const std::string& field, const std::string& key) { return field.empty() ? key : field + "." + key; }
  static std::string index(const std::string& field, size_t i) { return field + "[" + std::to_string(i) + "]"; }

 private:
  std::string what_;
};

// ---------------------------------------------------------------------------------------------------

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(tok::TokenizerJson& doc, const std::string& what) : what_(what) {
    Json j(what);
    const json& root = doc.tree;
    j.object(root, "");
    for (const char* key : {"truncation", "padding"})
      if (Json::opt(root, key)) j.unsupported(key, "must be null (truncation and padding are not applied)");
    load_model(j, j.object(j.at(root, "", "model"), "model"), doc);
    load_added(j, root);
    load_normalizer(j, Json::opt(root, "normalizer"), "normalizer");
    const json* pre = Json::opt(root, "pre_tokenizer");
    if (!pre) j.unsupported("pre_tokenizer", "null (a ByteLevel pre-tokenizer is required)");
    load_pre_tokenizer(j, *pre, "pre_tokenizer");
    if (!byte_level_) j.unsupported("pre_tokenizer", "no ByteLevel pre-tokenizer (it must come last)");
    load_decoder(j, Json::opt(root, "decoder"));
    check_ids(j);
    if (const json* post = Json::opt(root, "post_processor")) {
      j.object(*post, "post_processor");
      const std::string t = j.type(*post, "post_processor");
      if (t != "ByteLevel") j.unsupported("post_processor.type", "\"" + t + "\" (only ByteLevel or null)");
    }
    build_tables();
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    const std::string s = tok::utf8_sanitize(text);
    std::vector<int32_t> ids;
    if (raw_matcher_.empty()) {
      encode_section(s, &ids);
      return ids;
    }
    std::vector<Segment> segs;
    raw_matcher_.split(s, added_, &segs);
    for (const Segment& g : segs) {
      if (g.token >= 0) ids.push_back(added_[size_t(g.token)].id);
      else encode_section(std::string_view(s).substr(g.begin, g.end - g.begin), &ids);
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string bytes;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size_) continue;
      if (skip_special && special_[size_t(id)]) continue;
      bytes += bytes_[size_t(id)];
    }
    return tok::utf8_sanitize(bytes);
  }

  std::string token_bytes(int32_t id) const override {
    return id < 0 || id >= vocab_size_ ? std::string() : bytes_[size_t(id)];
  }

  std::optional<int32_t> token_id(const std::string& token) const override {
    auto a = added_ids_.find(token);
    if (a != added_ids_.end()) return a->second;
    const int32_t v = vocab_.find(token);
    if (v >= 0) return v;
    return std::nullopt;
  }

  bool is_special(int32_t id) const override { return id >= 0 && id < vocab_size_ && special_[size_t(id)]; }
  int32_t vocab_size() const override { return vocab_size_; }

  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool enable_thinking) const override;

 private:
  // ---- loading
  void load_model(const Json& j, const json& m, tok::TokenizerJson& doc) {
    if (const json* t = Json::opt(m, "type")) {
      const std::string type = j.string(*t, "model.type");
      if (type != "BPE") j.unsupported("model.type", "\"" + type + "\" (only BPE)");
    }
    if (const json* d = Json::opt(m, "dropout")) {
      if (!d->is_number() || d->get<double>() != 0.0) j.unsupported("model.dropout", "BPE dropout (must be null)");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (const json* v = Json::opt(m, key))
        if (!j.string(*v, Json::join("model", key)).empty()) j.unsupported(Json::join("model", key), "must be empty");
    if (j.flag(m, "model", "byte_fallback", false)) j.unsupported("model.byte_fallback", "byte fallback");
    bpe_.fuse_unk = j.flag(m, "model", "fuse_unk", false);
    bpe_.ignore_merges = j.flag(m, "model", "ignore_merges", false);

    // model.vocab and model.merges were read while parsing (tokenizer_json.h); anything else there is
    // still in the tree and gets its error here.
    if (!doc.has_vocab) j.object(j.at(m, "model", "vocab"), "model.vocab");
    vocab_ = std::move(doc.vocab);
    if (!doc.has_merges) {
      const json& merges = j.at(m, "model", "merges");
      j.fail("model.merges", "expected an array, got " + Json::kind(merges));
    }
    bpe_.merges.reserve(doc.merge_count());
    std::string joined;
    for (size_t i = 0; i < doc.merge_count(); ++i) {
      const std::string_view a = doc.merge_left(i), b = doc.merge_right(i);
      joined.assign(a);
      joined += b;
      const int32_t ia = vocab_id(j, a, i), ib = vocab_id(j, b, i), im = vocab_id(j, joined, i);
      // A repeated pair takes the rank of its last occurrence, as in Hugging Face (a map built in order).
      bpe_.merges.set(ia, ib, int32_t(i), im);
    }
    doc.merge_text.clear();
    doc.merge_text.shrink_to_fit();

    if (const json* u = Json::opt(m, "unk_token")) {
      const std::string unk = j.string(*u, "model.unk_token");
      bpe_.unk_id = vocab_.find(unk);
      if (bpe_.unk_id < 0) j.fail("model.unk_token", json(unk).dump() + " is not in model.vocab");
    }
    for (int b = 0; b < 256; ++b) bpe_.byte_ids[size_t(b)] = vocab_.find(tok::byte_to_unicode_utf8(uint8_t(b)));
    bpe_.vocab = &vocab_;
  }

  int32_t vocab_id(const Json& j, std::string_view token, size_t merge) const {
    const int32_t id = vocab_.find(token);
    if (id < 0)
      j.fail(Json::index("model.merges", merge), "token " + json(std::string(token)).dump() + " is not in model.vocab");
    return id;
  }

  void load_added(const Json& j, const json& root) {
    const json* list = Json::opt(root, "added_tokens");
    if (!list) return;
    if (!list->is_array()) j.fail("added_tokens", "expected an array, got " + Json::kind(*list));
    std::unordered_map<int32_t, size_t> added_by_id;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string field = Json::index("added_tokens", i);
      const json& e = j.object((*list)[i], field);
      AddedToken t;
      t.id = j.id(j.at(e, field, "id"), Json::join(field, "id"));
      t.content = j.string(j.at(e, field, "content"), Json::join(field, "content"));
      if (t.content.empty()) j.fail(Json::join(field, "content"), "empty");
      if (!tok::utf8_is_valid(t.content)) j.fail(Json::join(field, "content"), "not valid UTF-8");
      t.special = j.flag(e, field, "special", false);
      t.single_word = j.flag(e, field, "single_word", false);
      t.lstrip = j.flag(e, field, "lstrip", false);
      t.rstrip = j.flag(e, field, "rstrip", false);
      t.normalized = j.flag(e, field, "normalized", true);
      if (added_ids_.count(t.content)) j.fail(field, "content " + json(t.content).dump() + " appears twice");
      auto [other, fresh] = added_by_id.emplace(t.id, added_.size());
      if (!fresh)
        j.fail(field, "id " + std::to_string(t.id) + " is also the id of " + json(added_[other->second].content).dump());
      added_ids_.emplace(t.content, t.id);
      added_.push_back(std::move(t));
    }
  }

  void load_normalizer(const Json& j, const json* n, const std::string& field) {
    if (!n) return;
    j.object(*n, field);
    const std::string t = j.type(*n, field);
    if (t == "NFC") {
      nfc_ = true;
    } else if (t == "Sequence") {
      const json& list = j.at(*n, field, "normalizers");
      if (!list.is_array()) j.fail(Json::join(field, "normalizers"), "expected an array, got " + Json::kind(list));
      for (size_t i = 0; i < list.size(); ++i) load_normalizer(j, &list[i], Json::index(Json::join(field, "normalizers"), i));
    } else {
      j.unsupported(Json::join(field, "type"), "normalizer \"" + t + "\" (only NFC, or a Sequence of NFC)");
    }
  }

  void load_pre_tokenizer(const Json& j, const json& p, const std::string& field) {
    j.object(p, field);
    if (byte_level_) j.unsupported(field, "a pre-tokenizer after ByteLevel (ByteLevel must come last)");
    const std::string t = j.type(p, field);
    if (t == "Sequence") {
      const json& list = j.at(p, field, "pretokenizers");
      if (!list.is_array()) j.fail(Json::join(field, "pretokenizers"), "expected an array, got " + Json::kind(list));
      for (size_t i = 0; i < list.size(); ++i)
        load_pre_tokenizer(j, list[i], Json::index(Json::join(field, "pretokenizers"), i));
    } else if (t == "Split") {
      const std::string behavior = j.string(j.at(p, field, "behavior"), Json::join(field, "behavior"));
      if (behavior != "Isolated") j.unsupported(Json::join(field, "behavior"), "\"" + behavior + "\" (only Isolated)");
      if (j.flag(p, field, "invert", false)) j.unsupported(Json::join(field, "invert"), "true");
      const std::string pf = Json::join(field, "pattern");
      const json& pat = j.object(j.at(p, field, "pattern"), pf);
      if (const json* re = Json::opt(pat, "Regex"))
        splits_.push_back(std::make_unique<tok::Regex>(j.string(*re, pf + ".Regex"), false, what_ + ": " + pf + ".Regex"));
      else if (const json* str = Json::opt(pat, "String"))
        splits_.push_back(std::make_unique<tok::Regex>(j.string(*str, pf + ".String"), true, what_ + ": " + pf + ".String"));
      else
        j.fail(pf, "expected {\"Regex\": ...} or {\"String\": ...}");
    } else if (t == "ByteLevel") {
      byte_level_ = true;
      add_prefix_space_ = j.flag(p, field, "add_prefix_space", true);
      if (j.flag(p, field, "use_regex", true))
        byte_level_regex_ = std::make_unique<tok::Regex>(kGpt2Pattern, false, what_ + ": " + field + " (GPT-2 regex)");
    } else {
      j.unsupported(Json::join(field, "type"), "pre-tokenizer \"" + t + "\" (only Split, ByteLevel, Sequence)");
    }
  }

  void load_decoder(const Json& j, const json* d) {
    if (!d) j.unsupported("decoder", "null (a ByteLevel decoder is required)");
    j.object(*d, "decoder");
    const std::string t = j.type(*d, "decoder");
    if (t != "ByteLevel") j.unsupported("decoder.type", "decoder \"" + t + "\" (only ByteLevel)");
  }

  // Vocabulary ids must be distinct (an id names one token); sets vocab_size_.
  void check_ids(const Json& j) {
    int32_t max_id = -1;
    for (size_t i = 0; i < vocab_.size(); ++i) max_id = std::max(max_id, vocab_.id(i));
    for (const AddedToken& t : added_) max_id = std::max(max_id, t.id);
    // Tables are indexed by id: ids far beyond the number of tokens would make them huge for nothing.
    const int64_t entries = int64_t(vocab_.size() + added_.size());
    if (max_id >= entries + kMaxIdGap)
      j.fail("model.vocab", "id " + std::to_string(max_id) + " is far beyond the " + std::to_string(entries) +
                                " tokens (ids must be below their count + " + std::to_string(kMaxIdGap) + ")");
    vocab_size_ = max_id + 1;
    std::vector<int32_t> owner(size_t(vocab_size_), -1);
    for (size_t i = 0; i < vocab_.size(); ++i) {
      int32_t& o = owner[size_t(vocab_.id(i))];
      if (o >= 0)
        j.fail("model.vocab", "id " + std::to_string(vocab_.id(i)) + " is the id of both " +
                                  json(std::string(vocab_.key(size_t(o)))).dump() + " and " +
                                  json(std::string(vocab_.key(i))).dump());
      o = int32_t(i);
    }
  }

  void build_tables() {
    bytes_.assign(size_t(vocab_size_), std::string());
    special_.assign(size_t(vocab_size_), false);
    for (size_t i = 0; i < vocab_.size(); ++i) bytes_[size_t(vocab_.id(i))] = tok::byte_level_decode(vocab_.key(i));
    // An added token's id names it, also when the vocabulary has the same id (Hugging Face looks up
    // added tokens first); the ByteLevel decoder maps its characters like any token's.
    for (size_t i = 0; i < added_.size(); ++i) {
      const AddedToken& t = added_[i];
      bytes_[size_t(t.id)] = tok::byte_level_decode(t.content);
      special_[size_t(t.id)] = t.special;
      (t.normalized ? norm_matcher_ : raw_matcher_).add(t.normalized && nfc_ ? tok::nfc(t.content) : t.content, int32_t(i));
    }
    raw_matcher_.finish();
    norm_matcher_.finish();
  }

  // ---- encoding
  // Text between non-normalized added tokens: normalise, find normalized added tokens, pre-tokenize.
  void encode_section(std::string_view text, std::vector<int32_t>* ids) const {
    const std::string norm = nfc_ ? tok::nfc(text) : std::string(text);
    if (norm_matcher_.empty()) {
      pre_tokenize_and_merge(norm, ids);
      return;
    }
    std::vector<Segment> segs;
    norm_matcher_.split(norm, added_, &segs);
    for (const Segment& g : segs) {
      if (g.token >= 0) ids->push_back(added_[size_t(g.token)].id);
      else pre_tokenize_and_merge(std::string_view(norm).substr(g.begin, g.end - g.begin), ids);
    }
  }

  void pre_tokenize_and_merge(std::string_view text, std::vector<int32_t>* ids) const {
    if (text.empty()) return;
    using Ranges = std::vector<std::pair<size_t, size_t>>;
    Ranges pieces{{0, text.size()}}, next, matches;
    // Split(Isolated): every match is a piece and so is every gap between matches.
    for (const auto& re : splits_) {
      next.clear();
      for (const auto& [b, e] : pieces) {
        matches.clear();
        re->find_all(text.substr(b, e - b), &matches);
        size_t prev = b;
        for (const auto& [mb, me] : matches) {
          if (b + mb > prev) next.emplace_back(prev, b + mb);
          next.emplace_back(b + mb, b + me);
          prev = b + me;
        }
        if (prev < e) next.emplace_back(prev, e);
      }
      pieces.swap(next);
    }
    std::string prefixed;
    for (const auto& [b, e] : pieces) {
      std::string_view piece = text.substr(b, e - b);
      if (add_prefix_space_ && piece[0] != ' ') {
        prefixed = " ";
        prefixed += piece;
        piece = prefixed;
      }
      if (!byte_level_regex_) {
        bpe_.encode(piece, ids);
        continue;
      }
      matches.clear();
      byte_level_regex_->find_all(piece, &matches);
      size_t prev = 0;
      for (const auto& [mb, me] : matches) {
        if (mb > prev) bpe_.encode(piece.substr(prev, mb - prev), ids);
        bpe_.encode(piece.substr(mb, me - mb), ids);
        prev = me;
      }
      if (prev < piece.size()) bpe_.encode(piece.substr(prev), ids);
    }
  }

  std::string what_;
  tok::TokenIndex vocab_;                               // byte-level token string -> id
  std::unordered_map<std::string, int32_t> added_ids_;  // added token content -> id
  std::vector<AddedToken> added_;
  AddedMatcher raw_matcher_, norm_matcher_;
  bool nfc_ = false;
  std::vector<std::unique_ptr<tok::Regex>> splits_;
  bool byte_level_ = false, add_prefix_space_ = false;
  std::unique_ptr<tok::Regex> byte_level_regex_;
  tok::Bpe bpe_;
  int32_t vocab_size_ = 0;
  std::vector<std::string> bytes_;  // id -> bytes (empty: no such token)
  std::vector<bool> special_;
};

// ---------------------------------------------------------------------------------------------------
// Qwen3's chat template (tokenizer_config.json "chat_template"), for messages without tool calls and
// without a reasoning_content field. Python string semantics of the template: split(x)[-1] is the text
// after the last x, split(x)[0] the text before the first x; strip('\n') removes newlines only.

std::string lstrip_nl(const std::string& s) {
  const size_t k = s.find_first_not_of('\n');
  return k == std::string::npos ? std::string() : s.substr(k);
}
std::string rstrip_nl(const std::string& s) {
  const size_t k = s.find_last_not_of('\n');
  return k == std::string::npos ? std::string() : s.substr(0, k + 1);
}
std::string after_last(const std::string& s, const std::string& sep) {
  const size_t k = s.rfind(sep);
  return k == std::string::npos ? s : s.substr(k + sep.size());
}
std::string before_first(const std::string& s, const std::string& sep) {
  const size_t k = s.find(sep);
  return k == std::string::npos ? s : s.substr(0, k);
}
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::string BpeTokenizer::apply_chat_template(const std::vector<ChatMessage>& m, bool add_generation_prompt,
                                              bool enable_thinking) const {
  for (const char* t : {"<|im_start|>", "<|im_end|>"})
    if (!added_ids_.count(t))
      throw ModelError(what_ + ": the Qwen3 chat template needs the added token " + t + ", which this tokenizer lacks");
  if (m.empty()) throw ModelError("apply_chat_template: no messages");
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i].role != "system" && m[i].role != "user" && m[i].role != "assistant" && m[i].role != "tool")
      throw ModelError("apply_chat_template: message " + std::to_string(i) + " has role \"" + m[i].role +
                       "\" (system, user, assistant or tool)");
  const size_t n = m.size();
  // The last user message that is not a wrapped tool response; the last message if there is none.
  size_t last_query = n - 1;
  for (size_t k = n; k-- > 0;) {
    const std::string& c = m[k].content;
    if (m[k].role == "user" && !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
      last_query = k;
      break;
    }
  }
  std::string out;
  if (m[0].role == "system") out += "<|im_start|>system\n" + m[0].content + "<|im_end|>\n";
  for (size_t i = 0; i < n; ++i) {
    const std::string& role = m[i].role;
    const bool last = i + 1 == n;
    if (role == "user" || (role == "system" && i != 0)) {
      out += "<|im_start|>" + role + "\n" + m[i].content + "<|im_end|>\n";
    } else if (role == "assistant") {
      std::string content = m[i].content, reasoning;
      if (content.find("</think>") != std::string::npos) {
        content = lstrip_nl(after_last(m[i].content, "</think>"));
        reasoning = lstrip_nl(after_last(rstrip_nl(before_first(m[i].content, "</think>")), "<think>"));
      }
      if (i > last_query && (last || !reasoning.empty()))
        out += "<|im_start|>assistant\n<think>\n" + lstrip_nl(rstrip_nl(reasoning)) + "\n</think>\n\n" + lstrip_nl(content);
      else
        out += "<|im_start|>assistant\n" + content;
      out += "<|im_end|>\n";
    } else if (role == "tool") {
      if (i == 0 || m[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m[i].content + "\n</tool_response>";
      if (last || m[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::unique_ptr<Tokenizer> parse(std::string_view text, const std::string& what) {
  tok::TokenizerJson doc;
  tok::read_tokenizer_json(text, what, kMaxId, &doc);
  return std::make_unique<BpeTokenizer>(doc, what);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_json(std::string_view json_text, const std::string& what) {
  return parse(json_text, what);
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw ModelError(path + ": no such file or directory (expected tokenizer.json or a directory holding it)");
  std::string file = path;
  if (S_ISDIR(st.st_mode)) {
    file = path + (path.empty() || path.back() == '/' ? "" : "/") + "tokenizer.json";
    if (::stat(file.c_str(), &st) != 0)
      throw ModelError(path + ": the directory has no tokenizer.json (the Hugging Face model directory holds one)");
  }
  if (!S_ISREG(st.st_mode)) throw ModelError(file + ": not a regular file");
  if (st.st_size > kMaxFileBytes)
    throw ModelError(file + ": " + std::to_string(st.st_size) + " bytes; a tokenizer.json of more than 1 GiB is refused");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelError(file + ": cannot be opened");
  std::string text;
  text.resize(size_t(st.st_size));
  in.read(text.data(), std::streamsize(text.size()));
  if (in.gcount() != std::streamsize(text.size())) throw ModelError(file + ": read error");
  return parse(text, file);
}

// ---------------------------------------------------------------------------------------------------

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return std::string();
  pending_ += tok_.token_bytes(id);
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(pending_.data());
  size_t i = 0;
  while (i < pending_.size()) {
    size_t len;
    uint32_t cp;
    const tok::Utf8Step st = tok::utf8_step(p + i, pending_.size() - i, &len, &cp);
    if (st == tok::Utf8Step::kIncomplete) break;  // may still complete: hold it
    if (st == tok::Utf8Step::kValid) out.append(pending_, i, len);
    else out += tok::kReplacementChar;
    i += len;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = tok::utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace opdev::model
