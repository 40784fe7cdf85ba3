// opdev tokenize: text -> token ids as a JSON array; --decode: a JSON array of ids -> text; --chat: the
// text as one user message in the Qwen3 chat template first.
//   opdev tokenize --model DIR "Hello"            [9707]
//   opdev tokenize --tokenizer tokenizer.json --file prompt.txt
//   echo '[9707, 1879]' | opdev tokenize --model DIR --decode
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "model/tokenizer.h"

namespace opdev::cli {

namespace {

struct TokenizeOptions {
  std::string model, tokenizer, file, text;
  bool decode = false, skip_special = false, chat = false, no_think = false;
};

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

std::vector<int32_t> parse_ids(const std::string& text, const model::Tokenizer& tok) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw CLI::ValidationError("--decode", std::string("expected a JSON array of token ids: ") + e.what());
  }
  if (!j.is_array()) throw CLI::ValidationError("--decode", "expected a JSON array of token ids, got " + std::string(j.type_name()));
  std::vector<int32_t> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& v = j[i];
    const bool in_range = v.is_number_integer() && (v.is_number_unsigned() ? v.get<uint64_t>() < uint64_t(tok.vocab_size())
                                                                           : v.get<int64_t>() >= 0 && v.get<int64_t>() < tok.vocab_size());
    if (!in_range || tok.token_bytes(int32_t(v.get<int64_t>())).empty())
      throw CLI::ValidationError("--decode", "element " + std::to_string(i) + " (" + v.dump() +
                                                 ") is not a token id of this tokenizer (0.." +
                                                 std::to_string(tok.vocab_size() - 1) + ")");
    ids.push_back(int32_t(v.get<int64_t>()));
  }
  return ids;
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* c = app.add_subcommand("tokenize", "Text to token ids (a JSON array), or ids to text with --decode");
  CLI::Option* text = c->add_option("text", o->text, "The text (default: --file, else standard input)");
  CLI::Option* model = c->add_option("--model,-m", o->model, "Model directory holding tokenizer.json");
  c->add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a directory holding it")->excludes(model);
  c->add_option("--file,-f", o->file, "Read the text (raw bytes) from this file")->excludes(text);
  CLI::Option* decode = c->add_flag("--decode,-d", o->decode, "The input is a JSON array of ids: print their text (and a newline)");
  c->add_flag("--skip-special", o->skip_special, "With --decode: leave out special tokens");
  c->add_flag("--chat", o->chat, "Wrap the text as one user message in the chat template (generation prompt added)")
      ->excludes(decode);
  c->add_flag("--no-think", o->no_think, "With --chat: enable_thinking=false (an empty <think> block)");
  c->callback([o, text] {
    const std::string& path = o->tokenizer.empty() ? o->model : o->tokenizer;
    if (path.empty()) throw CLI::ValidationError("tokenize", "give --model DIR or --tokenizer PATH");
    std::string input;
    if (text->count() > 0) {
      input = o->text;
    } else if (!o->file.empty()) {
      std::ifstream f(o->file, std::ios::binary);
      if (!f) throw CLI::ValidationError("--file", o->file + ": cannot be opened");
      input = read_all(f);
    } else {
      input = read_all(std::cin);
    }
    const auto tok = model::Tokenizer::load(path);
    if (o->decode) {
      const std::string s = tok->decode(parse_ids(input, *tok), o->skip_special);
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fputc('\n', stdout);
      return;
    }
    if (o->chat) input = tok->apply_chat_template({{"user", input}}, true, !o->no_think);
    const std::vector<int32_t> ids = tok->encode(input);
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace opdev::cli
