// One HTTP/1.1 connection: reads a request (head within header_timeout,
// bounded head and body), answers it, then reads the next one (keep-alive).
// Exactly one request is handled at a time, so pipelined requests are
// answered in order. A stream request hands the socket to an SseSession and
// the HTTP session (with its read buffer) goes away.
#ifndef ROOMSYNC_GATEWAY_HTTP_SESSION_H_
#define ROOMSYNC_GATEWAY_HTTP_SESSION_H_

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/time/time.h"
#include "gateway/api_response.h"
#include "gateway/http_stream.h"
#include "gateway/request_auth.h"
#include "gateway/routes.h"

namespace roomsync {

struct GatewayContext;
class QueryParams;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(GatewayContext& context, boost::asio::ip::tcp::socket socket);
  ~HttpSession();

  void Run();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  void OnHandshake(boost::beast::error_code error);
  void ReadHead();
  void OnHead(boost::beast::error_code error);
  // Sets the body limit of the request's route (a snapshot's is not a
  // push's); the 413 to answer when its declared length is over it.
  std::optional<ApiResponse> LimitBody();
  void ReadBody();
  void OnBody(boost::beast::error_code error);
  // Refuses a request the parser rejected; closes afterwards.
  void RefuseUnreadable(boost::beast::error_code error);
  void Dispatch();
  // Rate limits by IP, then the token, then limits by subject: the caller
  // of a room endpoint, or nullopt after replying with the refusal.
  std::optional<Caller> Admit(const QueryParams& query);
  void StartStream(const Route& route, const QueryParams& query, Caller caller);
  // Any thread: answer the current request.
  void Reply(ApiResponse response);
  void WriteResponse(ApiResponse response, bool close_after);
  void OnWritten(bool keep_alive, boost::beast::error_code error);
  // Records the request's metrics and access-log line.
  void FinishRequest(int status);
  // The request no longer holds the drain back (its response is written).
  void ReleaseInFlight();
  void CloseAfterDraining();

  GatewayContext& context_;
  HttpStream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  bool first_request_ = true;
  bool in_flight_counted_ = false;
  // The per-IP limit key of the peer (ClientIpKey).
  std::string client_ip_;

  // The request being handled.
  absl::Time started_;
  Route route_;
  std::string origin_;
  bool keep_alive_ = false;
  bool close_after_ = false;
  std::string method_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_HTTP_SESSION_H_
