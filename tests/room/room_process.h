// A real `roomsync-room` process for fault tests: started with flags,
// its log captured to a file, its ports read from the start-up log line,
// killed with any signal.
#ifndef ROOMSYNC_TESTS_ROOM_ROOM_PROCESS_H_
#define ROOMSYNC_TESTS_ROOM_ROOM_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace roomsync::testing {

class RoomProcess {
 public:
  // Starts `binary` with `args` plus --grpc/--metrics on free ports and
  // waits until it logs room_service_started. Throws on failure.
  RoomProcess(const std::string& binary, const std::vector<std::string>& args,
              const std::string& log_path);
  ~RoomProcess();  // SIGKILL if still running

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  // Sends `signal` and waits for the exit; returns the wait status.
  int Kill(int signal);
  // The whole log so far.
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

// GET http://127.0.0.1:port/path; returns the body ("" on failure).
std::string HttpGet(int port, const std::string& path);
// The same, returning the status code (0 when there was no answer) and,
// when `body` is given, the body.
int HttpGetStatus(int port, const std::string& path, std::string* body = nullptr);

// The value of an unlabelled (or first matching) Prometheus sample whose
// line starts with `prefix` in `metrics_text`; -1 if absent.
double MetricValue(const std::string& metrics_text, const std::string& prefix);

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_ROOM_ROOM_PROCESS_H_
