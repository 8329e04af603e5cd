// Structured logs: one JSON object per line on stderr, one line per event.
// Thread-safe. Never pass document bytes or tokens as fields: the log is
// read by operators, and the server is zero-knowledge about contents.
//
//   Log(LogLevel::kInfo, "push_committed", {{"room", room}, {"docs", n}});
#ifndef ROOMSYNC_BASE_LOG_H_
#define ROOMSYNC_BASE_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace roomsync {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  LogField(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;
};

// Events below this level are dropped. Default kInfo.
void SetMinLogLevel(LogLevel level);
// Parses "debug", "info", "warning", "error"; false if unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

void Log(LogLevel level, std::string_view event,
         std::initializer_list<LogField> fields = {});

// Appends `text` to `out` as the body of a JSON string (escaped, no quotes).
void AppendJsonEscaped(std::string& out, std::string_view text);

}  // namespace roomsync

#endif  // ROOMSYNC_BASE_LOG_H_
