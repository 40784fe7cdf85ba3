// Streams generated tokens as text: never splits a UTF-8 character (StreamDecoder) and holds back
// text that could still become a stop string, which is cut from the output when it completes.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace opdev::cli {

class TextStream {
 public:
  TextStream(const model::Tokenizer& tok, std::vector<std::string> stops, FILE* out)
      : dec_(tok, true), stops_(std::move(stops)), out_(out) {
    for (const std::string& s : stops_) hold_ = std::max(hold_, s.size());
  }
  void push(int32_t id) {
    pending_ += dec_.push(id);
    emit(false);
  }
  // stopped: the engine stopped on a stop string (cut it and what follows).
  void finish(bool stopped) {
    pending_ += dec_.flush();
    if (stopped)
      for (const std::string& s : stops_) {
        size_t p = pending_.find(s);
        if (p != std::string::npos) pending_.resize(p);
      }
    emit(true);
  }
  const std::string& text() const { return all_; }

 private:
  void emit(bool all) {
    size_t n = pending_.size();
    if (!all && hold_ > 0) n = n > hold_ - 1 ? n - (hold_ - 1) : 0;
    // Do not cut inside a UTF-8 character when holding back.
    while (n > 0 && n < pending_.size() && (static_cast<unsigned char>(pending_[n]) & 0xC0) == 0x80) --n;
    if (n == 0) return;
    std::fwrite(pending_.data(), 1, n, out_);
    std::fflush(out_);
    all_.append(pending_, 0, n);
    pending_.erase(0, n);
  }
  model::StreamDecoder dec_;
  std::vector<std::string> stops_;
  FILE* out_;
  size_t hold_ = 0;
  std::string pending_, all_;
};

}  // namespace opdev::cli
