// ScriptedStream: a ByteStream for tests of code above the transport (the bounded
// reader, sessions). Input is a script of chunks, each delivered by one Fill();
// special entries stand for a deadline passing. Everything written is recorded.
// No reactor is needed: every call completes at once.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "core/byte_stream.h"

namespace ringproxy::testing {

class ScriptedStream final : public ByteStream {
 public:
  static constexpr const char* kTimeout = "\x01<timeout>";

  explicit ScriptedStream(std::vector<std::string> chunks = {}) {
    for (auto& c : chunks) script_.push_back(std::move(c));
  }
  void Add(std::string chunk) { script_.push_back(std::move(chunk)); }
  // Splits `input` into chunks of `size` bytes (the last may be shorter).
  static std::vector<std::string> Split(const std::string& input, size_t size) {
    std::vector<std::string> out;
    for (size_t i = 0; i < input.size(); i += size) out.push_back(input.substr(i, size));
    return out;
  }

  Task<IoResult> Fill(Deadline /*deadline*/) override {
    if (aborted_) co_return IoResult{-ECANCELED};
    if (offset_ < current_.size())
      co_return IoResult{static_cast<int32_t>(current_.size() - offset_)};
    ++fills_;
    if (script_.empty()) co_return IoResult{0};
    std::string next = std::move(script_.front());
    script_.pop_front();
    if (next == kTimeout) co_return IoResult{-ETIMEDOUT};
    current_ = std::move(next);
    offset_ = 0;
    co_return IoResult{static_cast<int32_t>(current_.size())};
  }
  std::span<const std::byte> Peek() const override {
    return {reinterpret_cast<const std::byte*>(current_.data()) + offset_,
            current_.size() - offset_};
  }
  void Consume(size_t n) override {
    offset_ += n;
    if (offset_ == current_.size()) {
      current_.clear();
      offset_ = 0;
    }
  }
  size_t buffered() const override {
    size_t n = current_.size() - offset_;
    for (const auto& c : script_) {
      if (c != kTimeout) n += c.size();
    }
    return n;
  }
  size_t DiscardBuffered() override {
    size_t n = buffered();
    current_.clear();
    offset_ = 0;
    script_.clear();
    return n;
  }

  Task<IoResult> Write(std::span<const std::byte> data, Deadline /*deadline*/) override {
    if (aborted_) co_return IoResult{-ECANCELED};
    written_.append(reinterpret_cast<const char*>(data.data()), data.size());
    ++writes_;
    co_return IoResult{static_cast<int32_t>(data.size())};
  }
  IoResult WriteNow(std::span<const std::byte> /*data*/) override { return {-EAGAIN}; }
  Task<IoResult> Flush(Deadline /*deadline*/) override { co_return IoResult{0}; }
  size_t pending_output() const override { return 0; }
  Task<IoResult> ShutdownWrite(Deadline /*deadline*/) override {
    write_shut_ = true;
    co_return IoResult{0};
  }
  void Abort() override { aborted_ = true; }
  bool aborted() const override { return aborted_; }
  Task<void> Quiesce() override { co_return; }
  PlainStream* plain() override { return nullptr; }
  int fd() const override { return -1; }

  const std::string& written() const { return written_; }
  bool write_shut() const { return write_shut_; }
  int fills() const { return fills_; }
  int writes() const { return writes_; }
  // The memory Peek() points into, to tell a zero-copy view from a copy.
  const std::string& current() const { return current_; }

 private:
  std::deque<std::string> script_;
  std::string current_;
  size_t offset_ = 0;
  std::string written_;
  bool aborted_ = false;
  bool write_shut_ = false;
  int fills_ = 0;
  int writes_ = 0;
};

}  // namespace ringproxy::testing
