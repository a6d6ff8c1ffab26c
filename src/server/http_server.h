// HttpServer: the HTTP/1.1 transport of `gembed serve`, on cpp-httplib
// (Debian's libcpp-httplib-dev). It moves bytes between sockets and a
// Service; every decision about a request is the Service's.
//
// What this layer adds to the library (docs/ARCHITECTURE.md, "The server"):
//   * one worker thread per open connection (keep-alive), enough of them for
//     --max-concurrent-requests, so concurrent requests really call the
//     engine concurrently and share its forward passes;
//   * its own connection loop and socket stream: a deadline for receiving a
//     whole request (slow clients get 408), a byte cap, lingering close after
//     an error that leaves input unread (so the client reads the 4xx), idle
//     keep-alive connections given up when other connections wait;
//   * a watcher that notices a client closing its connection while its
//     request waits in the engine and cancels that request's queued work;
//   * drain: stop accepting, answer what is in flight, 503 for new requests
//     on open connections, then Run returns.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "server/service.h"

namespace gembed::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (Bind returns it)
  int worker_threads = 0;          // 0: max_concurrent_requests + 4 (health/metrics stay reachable)
  double keep_alive_timeout_s = 5;        // an idle connection is closed after this
  int keep_alive_max_requests = 100000;   // requests per connection
  double read_timeout_s = 10;      // longest silence while a request is being received
  double request_timeout_s = 30;   // longest time to receive one whole request (head and body)
  double write_timeout_s = 30;     // longest wait for the client to take response bytes
  double linger_s = 2;             // reading (and dropping) unread input before closing after an error
};

class HttpServer {
 public:
  HttpServer(Service& service, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port; returns the port (the chosen one for port 0).
  Result<int> Bind();
  // Accepts and answers until Drain(); returns once every connection is closed.
  Status Run();
  // Safe from any thread (a signal-waiting thread): stops accepting new
  // connections, lets in-flight requests finish, answers new requests on
  // open connections with 503 and closes idle ones. Run then returns.
  void Drain();
  // After a drain deadline: drops the queued work of every in-flight request
  // and shuts their connections, so Run returns promptly.
  void Abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gembed::server
