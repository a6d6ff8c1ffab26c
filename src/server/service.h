// Service: what `gembed serve` answers, without the HTTP transport. A request
// is its head (method, path, the few headers that matter) and its body; the
// answer is a status, a JSON body and extra headers. Routing, the API key,
// the limits, draining, the engine calls and metrics all live here, so they
// are tested without sockets (tests/unit/test_server.cc); the HTTP layer
// (http_server.h) only moves bytes.
//
// Endpoints: POST /v1/embeddings (OpenAI), POST /embed and /tokenize (TEI;
// /tokenize also takes llama.cpp's shape), GET /health, /v1/models, /info,
// /metrics. Errors use OpenAI's shape; client mistakes are always 4xx.
//
// Threading: Handle may be called from many threads at once; each embedding
// request is one Engine::EmbedInto / EmbedTokensInto call, and the engine
// packs concurrent calls into shared forward passes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"
#include "server/api.h"
#include "server/metrics.h"

namespace gembed::server {

struct ServiceOptions {
  std::string served_model_name = "embeddinggemma-300m";  // /v1/models id; echoed when a request names none
  std::string model_path;                                 // shown by /info
  std::string default_task;  // applied to texts that name neither a task nor a prompt; "" = the model's default
  std::string api_key;       // "" = no authentication
  size_t max_client_batch_size = 2048;  // inputs per request (more: 413)
  size_t max_body_bytes = 16u << 20;    // request body (more: 413)
  int max_concurrent_requests = 256;    // embedding/tokenize requests at once (more: 429)
  // The engine's queue limit, shown by /info (its pass budget comes from
  // the engine itself: Engine::max_batch_tokens()).
  size_t max_queued_tokens = 0;
};

struct RequestHead {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::string content_type;   // "" when absent
  std::string authorization;  // "" when absent
  std::optional<uint64_t> content_length;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Status 499 (nginx's "client closed request"): the client disconnected and
// its work was dropped. Counted in metrics; nobody receives it.
inline constexpr int kClientClosedRequest = 499;

class Service {
 public:
  // Checks the options against the model (the default task must resolve).
  static Result<std::unique_ptr<Service>> Create(Engine& engine, ServiceOptions options);

  // What can be decided from the head alone: 404, 405, 503 while draining,
  // 401, 415 (not JSON), 413 (Content-Length over the limit). nullopt: read
  // the body (Content-Length, or chunked up to max_body_bytes) and call Handle.
  std::optional<Response> Admit(const RequestHead& head) const;
  // True when the route reads a body (the POST endpoints).
  static bool WantsBody(const RequestHead& head);

  // Answers a whole request (runs Admit's checks too). `cancel`, when it
  // becomes true (the client went away), drops the request's queued work.
  Response Handle(const RequestHead& head, std::string_view body, const std::atomic<bool>* cancel = nullptr);

  // An error response in OpenAI's shape.
  static Response ErrorResponse(const ApiError& error);
  static Response ErrorResponse(int status, std::string message, std::string code = {});

  // After setting a cancel flag passed to Handle from another thread: wakes
  // the requests waiting in the engine's queue so that cancelled ones drop
  // their work now.
  void WakeCancelled() { engine_.WakeWaiters(); }

  // After this, work endpoints and /health answer 503.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // Every answered request, from the HTTP layer (status and latency by endpoint).
  void RecordResponse(std::string_view path, int status, double seconds);
  const Metrics& metrics() const { return metrics_; }
  size_t requests_in_flight() const { return in_flight_.load(); }
  const ServiceOptions& options() const { return options_; }
  const ParseLimits& limits() const { return limits_; }

 private:
  Service(Engine& engine, ServiceOptions options);
  Response Embeddings(std::string_view body, bool tei, const std::atomic<bool>* cancel);
  Response Tokenize(std::string_view body);
  Response Models() const;
  Response Info() const;
  Response MetricsText() const;

  Engine& engine_;
  ServiceOptions options_;
  ParseLimits limits_;
  Metrics metrics_;
  std::atomic<bool> draining_{false};
  std::atomic<size_t> in_flight_{0};
  int64_t created_unix_ = 0;
};

}  // namespace gembed::server
