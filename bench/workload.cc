#include "bench/workload.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

namespace roomsync::bench {

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
  for (auto& context : contexts_) {
    threads_.emplace_back([io = context.get()] { io->run(); });
  }
}

WorkerPool::~WorkerPool() {
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void WorkerPool::Join() {
  guards_.clear();
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

std::string ChatDocument(std::string_view id, int64_t sent_us, size_t ciphertext_chars) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  thread_local std::mt19937_64 rng(std::random_device{}());
  auto base64 = [&](size_t n) {
    std::string s(n, 'A');
    for (char& c : s) c = kAlphabet[rng() % 64];
    return s;
  };
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::string doc;
  doc.reserve(ciphertext_chars + 128);
  doc += "{\"id\":\"";
  doc += id;
  doc += "\",\"timestamp\":";
  doc += std::to_string(now_ms);
  doc += ",\"iv\":\"";
  doc += base64(16);
  doc += "\",\"ciphertext\":\"";
  doc += base64(ciphertext_chars);
  doc += "\",\"sent_us\":";
  doc += std::to_string(sent_us);
  doc += '}';
  return doc;
}

int64_t ResidentKiB(const std::vector<int>& pids) {
  int64_t total = 0;
  for (int pid : pids) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) total += std::stoll(line.substr(6));
    }
  }
  return total;
}

int64_t CpuMicros(const std::vector<int>& pids) {
  const int64_t ticks = sysconf(_SC_CLK_TCK);
  int64_t total = 0;
  for (int pid : pids) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields overall.
    const size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    int64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoll(field);
      if (i == 15) stime = std::stoll(field);
    }
    total += (utime + stime) * 1000000 / ticks;
  }
  return total;
}

std::vector<int> ParsePids(const std::string& csv) {
  std::vector<int> pids;
  std::istringstream in(csv);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) pids.push_back(std::stoi(item));
  }
  return pids;
}

void MergeErrors(ErrorKinds& into, const ErrorKinds& from) {
  for (const auto& [kind, count] : from) into[kind] += count;
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace roomsync::bench
