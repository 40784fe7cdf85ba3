// A CSV reader for tests (RFC 4180: quoted fields may hold commas, doubled quotes and line breaks),
// independent of the code that writes the files.
#pragma once

#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace opdev::test {

inline std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

// The rows of a CSV file as maps from the header's names; `ragged` counts rows whose field count differs
// from the header's.
inline std::vector<std::map<std::string, std::string>> read_csv(const std::string& path, int* ragged = nullptr) {
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto rows = parse_csv(text);
  std::vector<std::map<std::string, std::string>> out;
  if (ragged) *ragged = 0;
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != rows[0].size() && ragged) ++*ragged;
    std::map<std::string, std::string> m;
    for (size_t k = 0; k < rows[0].size() && k < rows[r].size(); ++k) m[rows[0][k]] = rows[r][k];
    out.push_back(m);
  }
  return out;
}

}  // namespace opdev::test
