// tokenizer.json read in one pass (private to src/model): model.vocab and model.merges, nearly all of the
// file, go straight into compact tables; the rest becomes a nlohmann::json tree for the loader to
// validate. Building the whole document as a tree (150k map nodes and 150k small arrays, then freeing
// them) was most of the load time.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer_bpe.h"

namespace opdev::model::tok {

struct TokenizerJson {
  // The document without model.vocab and model.merges when they were streamed; any other shape of
  // them (not an object / not an array) stays in the tree for the loader to report.
  nlohmann::json tree;
  bool has_vocab = false;  // model.vocab was an object: its entries are in `vocab` (ids checked)
  TokenIndex vocab;
  bool has_merges = false;  // model.merges was an array of "a b" strings or [a, b] pairs
  size_t merge_count() const { return merge_offsets.size() / 2; }
  std::string_view merge_left(size_t i) const { return slice(merge_offsets[2 * i], merge_offsets[2 * i + 1]); }
  std::string_view merge_right(size_t i) const {
    return slice(merge_offsets[2 * i + 1], 2 * i + 2 < merge_offsets.size() ? merge_offsets[2 * i + 2] : merge_text.size());
  }

  std::string merge_text;               // left and right of every merge, back to back
  std::vector<size_t> merge_offsets;    // per merge: where its left and its right start

 private:
  std::string_view slice(size_t b, size_t e) const { return std::string_view(merge_text).substr(b, e - b); }
};

// Parses `text`; throws ModelError "<what>: <field>: <problem>" for invalid JSON, a repeated key, a
// vocabulary entry that is not an id in 0..max_id, or a merge that is not a pair of strings.
void read_tokenizer_json(std::string_view text, const std::string& what, int64_t max_id, TokenizerJson* out);

}  // namespace opdev::model::tok
