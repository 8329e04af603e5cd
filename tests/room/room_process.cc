#include "tests/room/room_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace roomsync::testing {

RoomProcess::RoomProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& log_path)
    : log_path_(log_path) {
  // Development mode: the fault tests are about durability, not auth/TLS.
  std::vector<std::string> argv = {binary, "--grpc=127.0.0.1:0", "--metrics=127.0.0.1:0",
                                   "--auth=off", "--grpc_plaintext"};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, STDERR_FILENO);
    dup2(fd, STDOUT_FILENO);
    std::vector<char*> raw;
    for (std::string& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    execv(binary.c_str(), raw.data());
    _exit(127);
  }
  std::regex started(R"("event":"room_service_started","grpc_port":(\d+),"metrics_port":(\d+))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch match;
    std::string log = Log();
    if (std::regex_search(log, match, started)) {
      grpc_port_ = std::stoi(match[1]);
      metrics_port_ = std::stoi(match[2]);
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("roomsync-room exited at start: " + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("roomsync-room did not start: " + Log());
}

RoomProcess::~RoomProcess() {
  if (pid_ > 0) Kill(SIGKILL);
}

int RoomProcess::Kill(int signal) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string RoomProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int HttpGetStatus(int port, const std::string& path, std::string* body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return 0;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return 0;
  }
  std::string response;
  char buf[8192];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, n);
  close(fd);
  size_t head_end = response.find("\r\n\r\n");
  // "HTTP/1.1 200 OK": the code is the second word.
  if (head_end == std::string::npos || response.size() < 12) return 0;
  if (body != nullptr) *body = response.substr(head_end + 4);
  return std::atoi(response.c_str() + 9);
}

std::string HttpGet(int port, const std::string& path) {
  std::string body;
  return HttpGetStatus(port, path, &body) == 0 ? "" : body;
}

double MetricValue(const std::string& metrics_text, const std::string& prefix) {
  std::istringstream lines(metrics_text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

}  // namespace roomsync::testing
