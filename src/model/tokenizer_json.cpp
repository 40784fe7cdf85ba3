#include "model/tokenizer_json.h"

#include <algorithm>

#include "model/error.h"

namespace opdev::model::tok {

namespace {

using nlohmann::json;

// SAX events -> the tree, except inside model.vocab (an object of ids) and model.merges (an array of
// strings or string pairs), whose entries are checked and stored directly. An error stops the parse
// (a handler returning false) with the message kept in error_.
class Reader final : public nlohmann::json_sax<json> {
 public:
  Reader(TokenizerJson* out, int64_t max_id) : out_(out), max_id_(max_id) {}
  std::string error_;

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return mode_ == kVocab ? vocab_id(v, json(v)) : value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override {
    return mode_ == kVocab ? vocab_id(v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v), json(v)) : value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool binary(binary_t&) override { return value(json()); }  // not produced by JSON text

  bool string(string_t& s) override {
    if (mode_ == kMerges) {
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) return fail(merge_field(), "a merge string must be \"left right\", got " + json(s).dump());
      add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1));
      return true;
    }
    if (mode_ == kPair) {
      if (pair_size_ < 2) pair_[pair_size_] = std::move(s);
      ++pair_size_;
      return true;
    }
    return value(json(std::move(s)));
  }

  bool key(string_t& k) override {
    if (mode_ == kVocab) {
      key_ = std::move(k);
      return true;
    }
    if (stack_.back().node->contains(k)) return fail(path(k), "the key appears twice");
    key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) override {
    if (mode_ != kTree) return bad_nesting();
    if (at_model_member("vocab")) {
      if (out_->has_vocab) return fail("model.vocab", "the key appears twice");
      mode_ = kVocab;
      out_->has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == kVocab) mode_ = kTree;
    else stack_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    if (mode_ == kMerges) {
      mode_ = kPair;
      pair_size_ = 0;
      return true;
    }
    if (mode_ != kTree) return bad_nesting();
    if (at_model_member("merges")) {
      if (out_->has_merges) return fail("model.merges", "the key appears twice");
      mode_ = kMerges;
      out_->has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == kPair) {
      if (pair_size_ != 2) return bad_merge();
      add_merge(pair_[0], pair_[1]);
      mode_ = kMerges;
    } else if (mode_ == kMerges) {
      mode_ = kTree;
    } else {
      stack_.pop_back();
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = std::string("not valid JSON (") + e.what() + ")";
    return false;
  }

 private:
  enum Mode { kTree, kVocab, kMerges, kPair };
  struct Frame {
    json* node;
    std::string name;  // its key in the parent ("" for array elements and the root)
  };

  bool fail(const std::string& field, const std::string& message) {
    error_ = field + ": " + message;
    return false;
  }
  std::string path(const std::string& key) const {
    std::string p;
    for (size_t i = 1; i < stack_.size(); ++i) p += (p.empty() ? "" : ".") + stack_[i].name;
    return p.empty() ? key : p + "." + key;
  }
  std::string merge_field() const { return "model.merges[" + std::to_string(out_->merge_count()) + "]"; }
  bool bad_merge() {
    return fail(merge_field(), "expected a [left, right] pair of strings or a \"left right\" string");
  }
  bool bad_nesting() {
    if (mode_ == kVocab) return fail("model.vocab[" + json(key_).dump() + "]", "expected an integer id");
    return bad_merge();
  }

  // The next value is the member `name` of the root's "model" object.
  bool at_model_member(const char* name) const {
    return stack_.size() == 2 && stack_[1].name == "model" && stack_[1].node->is_object() && key_ == name;
  }

  bool value(json&& v) {
    switch (mode_) {
      case kVocab:
        return fail("model.vocab[" + json(key_).dump() + "]", std::string("expected an integer id, got ") + v.type_name());
      case kMerges:
      case kPair:
        return bad_merge();
      case kTree:
        break;
    }
    attach(std::move(v));
    return true;
  }

  json& attach(json&& v) {
    if (stack_.empty()) {
      out_->tree = std::move(v);
      return out_->tree;
    }
    json& parent = *stack_.back().node;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return parent.back();
    }
    return parent[key_] = std::move(v);
  }

  // Elements of an array are only added while it is the innermost open container, so the pointers on
  // the stack stay valid.
  bool open(json&& container) {
    const bool in_object = !stack_.empty() && stack_.back().node->is_object();
    std::string name = in_object ? key_ : std::string();
    json& node = attach(std::move(container));
    stack_.push_back({&node, std::move(name)});
    return true;
  }

  bool vocab_id(int64_t id, const json& v) {
    if (id < 0 || id > max_id_)
      return fail("model.vocab[" + json(key_).dump() + "]",
                  "id " + v.dump() + " is out of range (0.." + std::to_string(max_id_) + ")");
    if (!out_->vocab.insert(key_, int32_t(id))) return fail("model.vocab[" + json(key_).dump() + "]", "the key appears twice");
    return true;
  }

  void add_merge(std::string_view a, std::string_view b) {
    out_->merge_offsets.push_back(out_->merge_text.size());
    out_->merge_text += a;
    out_->merge_offsets.push_back(out_->merge_text.size());
    out_->merge_text += b;
  }

  TokenizerJson* out_;
  int64_t max_id_;
  Mode mode_ = kTree;
  std::vector<Frame> stack_;
  std::string key_;
  std::string pair_[2];
  size_t pair_size_ = 0;
};

}  // namespace

void read_tokenizer_json(std::string_view text, const std::string& what, int64_t max_id, TokenizerJson* out) {
  Reader reader(out, max_id);
  // Sizes for Qwen-like files (11 MB: 150k tokens, 150k merges); tables grow past them as needed.
  out->vocab.reserve(std::min<size_t>(text.size() / 64, 1 << 20));
  out->merge_offsets.reserve(std::min<size_t>(text.size() / 32, 1 << 21));
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &reader);
  } catch (const json::exception& e) {
    reader.error_ = std::string("not valid JSON (") + e.what() + ")";
  }
  if (!ok) throw ModelError(what + ": " + (reader.error_.empty() ? "not valid JSON" : reader.error_));
}

}  // namespace opdev::model::tok
