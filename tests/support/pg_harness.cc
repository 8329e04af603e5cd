#include "tests/support/pg_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

constexpr char kPgBin[] = "/usr/lib/postgresql/15/bin";

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A port that was free a moment ago. Another process may take it before
// the server binds it, so starting retries with a new port.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

class ThrowawayServer {
 public:
  ThrowawayServer() : dir_(new TempDir("roomsync-pg")) {
    if (geteuid() == 0) {
      // initdb refuses to run as root: hand the dir to `postgres`.
      passwd* pw = getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("running as root but no postgres user");
      if (chown(dir_->path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("cannot chown the PostgreSQL temp dir");
      }
      as_user_ = "runuser -u postgres -- ";
    }
    data_ = dir_->path() + "/data";
    const std::string log = dir_->path() + "/initdb.log";
    // -N: initdb's own fsyncs are pointless for a throwaway cluster; the
    // server itself keeps fsync on, as production does.
    Run(absl::StrCat(as_user_, kPgBin, "/initdb -D ", ShellQuote(data_),
                     " -U postgres -A trust -E UTF8 --locale=C -N > ",
                     ShellQuote(log), " 2>&1"),
        log);
    for (int attempt = 0;; ++attempt) {
      int port = FreePort();
      const std::string server_log = dir_->path() + "/server.log";
      std::string options = absl::StrCat(
          "-p ", port, " -c listen_addresses=127.0.0.1 -c max_connections=200",
          " -c unix_socket_directories=", dir_->path());
      int rc = std::system(absl::StrCat(as_user_, kPgBin, "/pg_ctl -D ", ShellQuote(data_),
                                        " -l ", ShellQuote(server_log), " -w -t 60 -o ",
                                        ShellQuote(options), " start > /dev/null 2>&1")
                               .c_str());
      if (rc == 0) {
        url_ = absl::StrCat("postgresql://postgres@127.0.0.1:", port, "/postgres");
        break;
      }
      if (attempt == 4) {
        throw std::runtime_error("pg_ctl start failed:\n" + ReadFile(server_log));
      }
    }
    StartWatcher();
  }

  ~ThrowawayServer() {
    std::system(StopCommand().c_str());
    delete dir_;
  }

  const std::string& url() const { return url_; }

 private:
  static void Run(const std::string& command, const std::string& log) {
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error(absl::StrCat("failed: ", command, "\n", ReadFile(log)));
    }
  }

  std::string StopCommand() const {
    return absl::StrCat(as_user_, kPgBin, "/pg_ctl -D ", ShellQuote(data_),
                        " -m immediate stop > /dev/null 2>&1");
  }

  // If this process dies without running exit handlers (crash, SIGKILL on
  // timeout), a detached shell stops the server and removes its files.
  void StartWatcher() const {
    std::string script = absl::StrCat("while kill -0 ", getpid(),
                                      " 2>/dev/null; do sleep 1; done; ", StopCommand(),
                                      "; rm -rf ", ShellQuote(dir_->path()));
    std::system(absl::StrCat("setsid sh -c ", ShellQuote(script),
                             " < /dev/null > /dev/null 2>&1 &")
                    .c_str());
  }

  TempDir* dir_;  // deleted after the server stops
  std::string as_user_;
  std::string data_;
  std::string url_;
};

// Replaces the database name in a libpq URI: scheme://authority/db?params.
std::string WithDatabase(const std::string& url, const std::string& db) {
  size_t authority = url.find("://");
  if (authority == std::string::npos) {
    throw std::runtime_error("ROOMSYNC_TEST_PGURL must be a postgresql:// URI");
  }
  size_t path = url.find_first_of("/?", authority + 3);
  if (path == std::string::npos) return url + "/" + db;
  size_t query = url.find('?', path);
  std::string params = query == std::string::npos ? "" : url.substr(query);
  return url.substr(0, path) + "/" + db + params;
}

}  // namespace

std::string TestPostgresUrl() {
  static const std::string url = [] {
    const char* env = std::getenv("ROOMSYNC_TEST_PGURL");
    if (env != nullptr && *env != '\0') return std::string(env);
    // Function-local static: destroyed (server stopped) at normal exit.
    static ThrowawayServer server;
    return server.url();
  }();
  return url;
}

std::string CreateTestDatabase() {
  static std::atomic<int> next{0};
  unsigned char salt[4];
  RAND_bytes(salt, sizeof(salt));
  // pid + counter make names unique within one server run shared by many
  // test processes; the salt covers pid reuse across runs on a kept server.
  std::string name = absl::StrCat("roomsync_test_", getpid(), "_", next.fetch_add(1), "_",
                                  (salt[0] << 8) | salt[1], (salt[2] << 8) | salt[3]);
  std::string admin_url = TestPostgresUrl();
  pqxx::connection conn(admin_url);
  pqxx::nontransaction tx(conn);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return WithDatabase(admin_url, name);
}

}  // namespace roomsync::testing
