#include "server/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace gembed::server {
namespace {

using Clock = std::chrono::steady_clock;

int Millis(double seconds) {
  const double ms = seconds * 1000.0;
  return ms <= 0 ? 0 : ms >= INT_MAX ? INT_MAX : static_cast<int>(ms);
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

int MillisUntil(Clock::time_point t) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count() + 1;
  return left <= 0 ? 0 : left >= INT_MAX ? INT_MAX : static_cast<int>(left);
}

// Head bytes a request may carry besides its body (request line + headers).
constexpr size_t kMaxHeadBytes = 1u << 20;

// The connection workers: a fixed pool, one job per accepted connection.
// waiting() tells idle keep-alive connections that others need a worker.
class WorkerPool final : public httplib::TaskQueue {
 public:
  explicit WorkerPool(size_t n) {
    threads_.reserve(n);
    for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() override = default;

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(fn));
      waiting_.store(jobs_.size());
    }
    cv_.notify_one();
  }
  // Runs every queued job (each owns an accepted socket), then joins.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  size_t waiting() const { return waiting_.load(std::memory_order_relaxed); }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        waiting_.store(jobs_.size());
      }
      try {
        fn();
      } catch (...) {
        // ServeConnection catches everything itself; nothing may end the process here.
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::atomic<size_t> waiting_{0};
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

void AddressOf(const sockaddr_storage& a, std::string& ip, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    port = ntohs(in->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    port = ntohs(in6->sin6_port);
  }
  ip = buf;
}

// The socket stream cpp-httplib parses requests from and writes answers to.
// Reads are buffered, wait with poll() (no FD_SETSIZE limit), and fail once
// the request's deadline passes, after read_timeout of silence, or past the
// byte cap; the reason is kept so the answer can say 408 or 413.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(int fd, const HttpOptions& o)
      : fd_(fd),
        read_timeout_ms_(std::max(1, Millis(o.read_timeout_s))),
        write_timeout_ms_(std::max(1, Millis(o.write_timeout_s))),
        request_timeout_(Seconds(o.request_timeout_s)) {}

  void BeginRequest(size_t max_bytes) {
    deadline_ = Clock::now() + request_timeout_;
    max_bytes_ = max_bytes;
    delivered_ = 0;
    timed_out_ = too_large_ = false;
  }
  bool HasBuffered() const { return off_ < len_; }
  bool timed_out() const { return timed_out_; }
  bool too_large() const { return too_large_; }
  size_t delivered() const { return delivered_; }

  bool is_readable() const override { return HasBuffered() || Wait(POLLIN, 0); }
  bool is_writable() const override { return Wait(POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) return 0;
    if (!HasBuffered()) {
      const ssize_t n = Fill();
      if (n <= 0) return n;
    }
    const size_t n = std::min(size, len_ - off_);
    if (delivered_ + n > max_bytes_) {
      too_large_ = true;
      return -1;
    }
    std::memcpy(ptr, buf_.data() + off_, n);
    off_ += n;
    delivered_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!Wait(POLLOUT, write_timeout_ms_)) return -1;
    for (;;) {
      const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) AddressOf(a, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) AddressOf(a, ip, port);
  }
  // cpp-httplib's only use of this on the server side is a guard for its own
  // select()-based stream (it answers 500 for descriptors >= FD_SETSIZE);
  // this stream polls, so that guard does not apply.
  socket_t socket() const override { return fd_ < FD_SETSIZE ? fd_ : 0; }

 private:
  ssize_t Fill() {
    for (;;) {
      if (Clock::now() >= deadline_) {
        timed_out_ = true;
        return -1;
      }
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, std::min(read_timeout_ms_, MillisUntil(deadline_)));
      if (r < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (r == 0) {  // silent for read_timeout, or the request deadline passed
        timed_out_ = true;
        return -1;
      }
      const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
      }
      off_ = 0;
      len_ = static_cast<size_t>(n);
      return n;  // 0: the client closed its side
    }
  }
  bool Wait(short events, int timeout_ms) const {
    pollfd p{fd_, events, 0};
    for (;;) {
      const int r = ::poll(&p, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 && (p.revents & events) != 0;
    }
  }

  int fd_;
  int read_timeout_ms_, write_timeout_ms_;
  Clock::duration request_timeout_;
  Clock::time_point deadline_ = Clock::time_point::max();
  size_t max_bytes_ = SIZE_MAX, delivered_ = 0;
  bool timed_out_ = false, too_large_ = false;
  std::array<char, 16384> buf_{};
  size_t off_ = 0, len_ = 0;
};

// One open connection, owned by the worker thread serving it.
struct Conn {
  int fd = -1;
  ConnStream* stream = nullptr;
  bool close_after = false;  // close after this answer (input left unread, or a broken request)
  bool responded = false;    // the library wrote an answer to the current request
  Clock::time_point start;
  std::atomic<bool> cancel{false};  // the client went away: drop the request's queued work
  uint64_t watch_id = 0;            // guarded by Impl::mu
};
thread_local Conn* tl_conn = nullptr;

// cpp-httplib's server with our connection loop: process_and_close_socket is
// the library's per-connection hook (a virtual it calls on a pool thread);
// process_request (protected) parses one request and routes it.
class LibServer final : public httplib::Server {
 public:
  explicit LibServer(std::function<bool(int)> serve) : serve_(std::move(serve)) {}
  int listen_socket() const { return svr_sock_; }
  bool ProcessOne(httplib::Stream& strm, bool last, bool& closed) {
    return process_request(strm, last, closed, nullptr);
  }

 private:
  bool process_and_close_socket(socket_t sock) override { return serve_(sock); }
  std::function<bool(int)> serve_;
};

std::optional<uint64_t> ParseContentLength(const std::string& v, bool* bad) {
  *bad = false;
  if (v.empty() || v.size() > 19 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    *bad = true;
    return std::nullopt;
  }
  return std::stoull(v);
}

bool IsChunked(const httplib::Request& req) {
  std::string te = req.get_header_value("Transfer-Encoding");
  std::transform(te.begin(), te.end(), te.begin(), [](unsigned char c) { return std::tolower(c); });
  return te.find("chunked") != std::string::npos;
}

void Fill(httplib::Response& res, const Response& r) {
  res.status = r.status;
  // cpp-httplib compresses a body typed exactly "application/json" when the
  // client accepts gzip or br (brotli at its default quality 11, milliseconds
  // per answer), on the cores that run the model; answers go uncompressed
  // (base64 is the compact form), which the charset parameter ensures.
  const std::string type = r.content_type == "application/json" ? "application/json; charset=utf-8" : r.content_type;
  res.set_content(r.body, type.c_str());
  for (const auto& [k, v] : r.headers) res.set_header(k.c_str(), v);
}

std::string StatusLine(int status) {
  switch (status) {
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    default: return "Bad Request";
  }
}

}  // namespace

struct HttpServer::Impl {
  Impl(Service& s, HttpOptions opts) : service(s), o(std::move(opts)) {}

  Service& service;
  HttpOptions o;
  std::unique_ptr<LibServer> lib;
  size_t workers = 0;
  size_t max_request_bytes = 0;
  size_t body_budget = 0;                // bytes of request bodies held at once
  std::atomic<size_t> body_bytes{0};
  std::atomic<WorkerPool*> pool{nullptr};
  std::atomic<bool> draining{false};
  int wake_fd = -1;  // readable once draining: idle keep-alive waits end

  // Connections (for Abort) and requests inside the service (for the watcher).
  std::mutex mu;
  std::condition_variable cv;
  std::set<Conn*> open;
  std::vector<Conn*> watched;
  uint64_t next_watch_id = 0;
  bool stop_watcher = false;
  std::thread watcher;

  Response TimeoutResponse() const {
    return Service::ErrorResponse(
        408,
        fmt::format("the request was not received in time (the whole request within {} s, no pause over {} s)",
                    o.request_timeout_s, o.read_timeout_s),
        "request_timeout");
  }
  Response TooLargeResponse() const {
    return Service::ErrorResponse(
        413, fmt::format("the request is larger than this server takes ({} bytes of body, --max-body-bytes)",
                         service.options().max_body_bytes),
        "body_too_large");
  }

  RequestHead HeadOf(const httplib::Request& req, bool* bad_length) const {
    RequestHead h;
    h.method = req.method;
    h.path = req.path;
    h.content_type = req.get_header_value("Content-Type");
    h.authorization = req.get_header_value("Authorization");
    *bad_length = false;
    if (req.has_header("Content-Length")) h.content_length = ParseContentLength(req.get_header_value("Content-Length"), bad_length);
    return h;
  }

  void InstallHandlers() {
    LibServer& s = *lib;
    // SO_REUSEADDR only: the library's default also sets SO_REUSEPORT, which
    // would let a second server bind the same port and share its traffic.
    s.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    s.set_tcp_nodelay(true);
    s.set_keep_alive_max_count(static_cast<size_t>(std::max(1, o.keep_alive_max_requests)));
    s.set_keep_alive_timeout(static_cast<time_t>(std::max(1.0, o.keep_alive_timeout_s)));
    s.set_read_timeout(static_cast<time_t>(std::max(1.0, o.read_timeout_s)));
    s.set_write_timeout(static_cast<time_t>(std::max(1.0, o.write_timeout_s)));
    s.set_payload_max_length(service.options().max_body_bytes);
    s.new_task_queue = [this] {
      auto* p = new WorkerPool(workers);
      pool.store(p);
      return p;
    };

    // Every request passes here first. All but the POST endpoints are answered
    // here; POST requests that pass the head checks go on to the handler below.
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      Conn* c = tl_conn;
      bool bad_length = false;
      const RequestHead head = HeadOf(req, &bad_length);
      const bool has_body = (head.content_length && *head.content_length > 0) || IsChunked(req);
      if (bad_length) {
        Fill(res, Service::ErrorResponse(400, "invalid Content-Length header", "invalid_request"));
        c->close_after = true;
        return httplib::Server::HandlerResponse::Handled;
      }
      if (Service::WantsBody(head)) {
        if (auto early = service.Admit(head)) {
          Fill(res, *early);
          if (has_body) c->close_after = true;  // the body stays unread
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      }
      Fill(res, service.Handle(head, {}, nullptr));
      if (has_body) c->close_after = true;
      return httplib::Server::HandlerResponse::Handled;
    });

    // The POST endpoints: read the body (at most --max-body-bytes, also when
    // chunked or compressed), then let the service answer while the watcher
    // looks out for the client closing the connection.
    s.Post(".*", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      Conn* c = tl_conn;
      bool bad_length = false;
      const RequestHead head = HeadOf(req, &bad_length);
      const size_t max_body = service.options().max_body_bytes;
      std::string body;
      const bool chunked = IsChunked(req);
      BodyReservation reservation(body_bytes);
      const size_t want = chunked ? max_body : static_cast<size_t>(head.content_length.value_or(0));
      if (want > 0 && !reservation.Take(want, body_budget)) {
        ApiError e;
        e.status = 429;
        e.type = "rate_limit_error";
        e.code = "too_much_data_in_flight";
        e.message = fmt::format("the server holds {} MiB of request bodies at once; retry shortly",
                                body_budget >> 20);
        Response r = Service::ErrorResponse(e);
        r.headers.emplace_back("Retry-After", "1");
        Fill(res, r);
        c->close_after = true;  // the body stays unread
        return;
      }
      if ((head.content_length && *head.content_length > 0) || chunked) {
        bool too_large = false;
        const bool ok = reader([&](const char* data, size_t n) {
          if (body.size() + n > max_body) {
            too_large = true;
            return false;
          }
          body.append(data, n);
          return true;
        });
        if (!ok) {
          c->close_after = true;
          if (too_large || c->stream->too_large()) {
            Fill(res, TooLargeResponse());
          } else if (c->stream->timed_out()) {
            Fill(res, TimeoutResponse());
          } else {
            Fill(res, Service::ErrorResponse(400, "could not read the request body (bad chunked encoding, bad "
                                                  "Content-Encoding, or the connection closed early)",
                                             "invalid_request"));
          }
          return;
        }
      }
      Response r;
      {
        WatchGuard watch(*this, c);
        r = service.Handle(head, body, &c->cancel);
      }
      Fill(res, r);
      if (r.status == kClientClosedRequest) c->close_after = true;
    });

    // "Expect: 100-continue": refuse before the client sends a body we would not take.
    s.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
      bool bad_length = false;
      const RequestHead head = HeadOf(req, &bad_length);
      if (Service::WantsBody(head) && !bad_length) {
        if (auto early = service.Admit(head)) {
          Fill(res, *early);
          tl_conn->close_after = true;
          return early->status;
        }
      }
      return 100;
    });

    // Answers the library makes itself (a request it could not parse or read)
    // get a JSON body; a timed-out or oversized read becomes 408 / 413.
    s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request&, httplib::Response& res) {
      // "Handled" also makes the library set Content-Length on paths that
      // would otherwise send none (the Expect: 100-continue refusal).
      Conn* c = tl_conn;
      if (!res.body.empty() || c == nullptr) return httplib::Server::HandlerResponse::Handled;
      c->close_after = true;
      if (c->stream->timed_out()) {
        Fill(res, TimeoutResponse());
      } else if (c->stream->too_large() || res.status == 413) {
        Fill(res, TooLargeResponse());
      } else if (res.status == 414) {
        Fill(res, Service::ErrorResponse(414, "the request line is too long", "uri_too_long"));
      } else {
        Fill(res, Service::ErrorResponse(res.status >= 400 && res.status < 500 ? res.status : 400,
                                         "malformed HTTP request", "invalid_request"));
      }
      return httplib::Server::HandlerResponse::Handled;
    }));

    s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      Fill(res, Service::ErrorResponse(500, "internal error: " + what, "internal_error"));
    });

    // Every answer the library writes: metrics, and "Connection: close" when
    // this connection ends after it.
    s.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      Conn* c = tl_conn;
      if (c == nullptr) return;
      c->responded = true;
      if (c->close_after || draining.load()) {
        res.headers.erase("Keep-Alive");
        res.set_header("Connection", "close");
        c->close_after = true;
      }
      service.RecordResponse(req.path, res.status, std::chrono::duration<double>(Clock::now() - c->start).count());
    });
  }

  // Waits until the next request's first bytes arrive. False: close the
  // connection (idle past the keep-alive timeout, draining, or a waiting
  // connection needs this worker).
  bool WaitForRequest(Conn& c, ConnStream& s) {
    if (s.HasBuffered()) return true;
    const auto deadline = Clock::now() + Seconds(o.keep_alive_timeout_s);
    for (;;) {
      if (Clock::now() >= deadline) return false;
      pollfd p[2] = {{c.fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      const int r = ::poll(p, 2, std::min(250, MillisUntil(deadline)));
      if (r < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (p[0].revents != 0) return true;  // bytes, or the close the reader will see
      if (p[1].revents != 0) return false;
      WorkerPool* wp = pool.load();
      if (wp != nullptr && wp->waiting() > 0) return false;
    }
  }

  // After an answer that left input unread: send FIN, then read and drop what
  // the client still sends for a short while, so it reads our answer instead
  // of a connection reset.
  void Linger(int fd) const {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = Clock::now() + Seconds(o.linger_s);
    std::array<char, 65536> sink;
    for (;;) {
      const int wait = MillisUntil(deadline);
      if (wait <= 0) return;
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, wait);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return;
      const ssize_t n = ::recv(fd, sink.data(), sink.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
    }
  }

  // An answer the library did not write (it gives up silently when the
  // request line never completes).
  void WriteRaw(Conn& c, const Response& r) {
    const std::string head = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", r.status,
        StatusLine(r.status), r.content_type, r.body.size());
    c.stream->write(head.data(), head.size());
    c.stream->write(r.body.data(), r.body.size());
    service.RecordResponse("", r.status, std::chrono::duration<double>(Clock::now() - c.start).count());
  }

  // Registers a connection for Abort() while it is served.
  struct OpenGuard {
    Impl& m;
    Conn* c;
    OpenGuard(Impl& impl, Conn* conn) : m(impl), c(conn) {
      std::lock_guard<std::mutex> lock(m.mu);
      m.open.insert(c);
      tl_conn = c;
    }
    ~OpenGuard() {
      tl_conn = nullptr;
      std::lock_guard<std::mutex> lock(m.mu);
      m.open.erase(c);
    }
  };

  bool ServeConnection(int sock) {
    bool ok = false;
    try {
      ok = ServeRequests(sock);
    } catch (...) {
      // Out of memory (or a library failure) while serving this connection:
      // drop the connection, keep the server.
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  bool ServeRequests(int sock) {
    int one = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ConnStream stream(sock, o);
    Conn conn;
    conn.fd = sock;
    conn.stream = &stream;
    bool ok = true;
    {
      OpenGuard guard(*this, &conn);
      for (int served = 0;; ++served) {
        if (!WaitForRequest(conn, stream)) break;
        stream.BeginRequest(max_request_bytes);
        conn.close_after = false;
        conn.responded = false;
        conn.cancel.store(false);
        conn.start = Clock::now();
        const bool last = served + 1 >= o.keep_alive_max_requests || draining.load();
        bool closed = false;
        ok = lib->ProcessOne(stream, last, closed);
        if (!conn.responded && stream.delivered() > 0 && (stream.timed_out() || stream.too_large())) {
          WriteRaw(conn, stream.timed_out() ? TimeoutResponse() : TooLargeResponse());
          conn.close_after = true;
        }
        if (!ok || closed || last || conn.close_after) break;
      }
    }
    if (conn.close_after) Linger(sock);
    return ok;
  }

  // Watches a request's connection while the service handles it.
  struct WatchGuard {
    Impl& m;
    Conn* c;
    WatchGuard(Impl& impl, Conn* conn) : m(impl), c(conn) { m.Watch(c); }
    ~WatchGuard() { m.Unwatch(c); }
  };

  // Bytes of request bodies held at once, over all requests: a bound on the
  // memory many large requests can take together. One request is always let
  // in when nothing else is held.
  struct BodyReservation {
    std::atomic<size_t>& used;
    size_t n = 0;
    explicit BodyReservation(std::atomic<size_t>& u) : used(u) {}
    bool Take(size_t want, size_t budget) {
      size_t cur = used.load();
      do {
        if (cur > 0 && cur + want > budget) return false;
      } while (!used.compare_exchange_weak(cur, cur + want));
      n = want;
      return true;
    }
    ~BodyReservation() { used.fetch_sub(n); }
  };

  void Watch(Conn* c) {
    std::lock_guard<std::mutex> lock(mu);
    c->watch_id = ++next_watch_id;
    watched.push_back(c);
    cv.notify_all();
  }
  void Unwatch(Conn* c) {
    std::lock_guard<std::mutex> lock(mu);
    watched.erase(std::remove(watched.begin(), watched.end(), c), watched.end());
  }

  // Polls the connections of requests inside the service for the client's
  // FIN/RST (POLLRDHUP; pipelined bytes do not wake it) and cancels them.
  void WatchLoop() {
    std::unique_lock<std::mutex> lock(mu);
    std::vector<pollfd> fds;
    std::vector<std::pair<Conn*, uint64_t>> who;
    while (!stop_watcher) {
      fds.clear();
      who.clear();
      for (Conn* c : watched) {
        if (c->cancel.load()) continue;
        fds.push_back({c->fd, POLLRDHUP, 0});
        who.emplace_back(c, c->watch_id);
      }
      if (fds.empty()) {
        cv.wait(lock);
        continue;
      }
      lock.unlock();
      const int r = ::poll(fds.data(), fds.size(), 50);
      lock.lock();
      if (r <= 0) continue;
      bool cancelled = false;
      for (size_t i = 0; i < fds.size(); ++i) {
        if ((fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) continue;
        Conn* c = who[i].first;
        // Still the same request (a Conn may have moved on to another one).
        if (std::find(watched.begin(), watched.end(), c) != watched.end() && c->watch_id == who[i].second) {
          c->cancel.store(true);
          cancelled = true;
        }
      }
      if (cancelled) {  // the waiting requests see their flags now, not at the next pass
        lock.unlock();
        service.WakeCancelled();
        lock.lock();
      }
    }
  }
};

HttpServer::HttpServer(Service& service, HttpOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {
  Impl& m = *impl_;
  m.workers = m.o.worker_threads > 0 ? static_cast<size_t>(m.o.worker_threads)
                                     : static_cast<size_t>(service.options().max_concurrent_requests) + 4;
  m.max_request_bytes = service.options().max_body_bytes + kMaxHeadBytes;
  m.body_budget = std::max<size_t>(8 * service.options().max_body_bytes, size_t{64} << 20);
  m.lib = std::make_unique<LibServer>([&m](int sock) { return m.ServeConnection(sock); });
  m.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  m.InstallHandlers();
}

HttpServer::~HttpServer() {
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

Result<int> HttpServer::Bind() {
  Impl& m = *impl_;
  if (m.wake_fd < 0) return IoError("eventfd failed: {}", std::strerror(errno));
  int port = -1;
  if (m.o.port == 0) {
    port = m.lib->bind_to_any_port(m.o.host);
  } else if (m.lib->bind_to_port(m.o.host, m.o.port)) {
    port = m.o.port;
  }
  if (port <= 0) {
    return IoError("cannot listen on {}:{}: {}", m.o.host, m.o.port,
                   errno != 0 ? std::strerror(errno) : "address not available");
  }
  // The library listens with a backlog of 5, too few for a burst of clients
  // connecting at once (the rest would wait for SYN retransmits); listen()
  // again raises it.
  ::listen(m.lib->listen_socket(), 1024);
  return port;
}

Status HttpServer::Run() {
  Impl& m = *impl_;
  if (m.draining.load()) return Status::Ok();
  m.watcher = std::thread([&m] { m.WatchLoop(); });
  const bool ok = m.lib->listen_after_bind();
  m.pool.store(nullptr);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stop_watcher = true;
  }
  m.cv.notify_all();
  m.watcher.join();
  if (!ok && !m.draining.load()) return IoError("the server stopped accepting connections: {}", std::strerror(errno));
  return Status::Ok();
}

void HttpServer::Drain() {
  Impl& m = *impl_;
  if (m.draining.exchange(true)) return;
  m.service.BeginDrain();
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(m.wake_fd, &one, sizeof(one));
  // Wakes the accept loop (also before it started): accept fails, the
  // library closes the socket, lets every connection worker finish, returns.
  ::shutdown(m.lib->listen_socket(), SHUT_RDWR);
}

void HttpServer::Abort() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    for (Conn* c : m.open) {
      c->cancel.store(true);
      ::shutdown(c->fd, SHUT_RDWR);
    }
  }
  m.service.WakeCancelled();
}

}  // namespace gembed::server
