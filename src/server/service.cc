#include "server/service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <new>
#include <nlohmann/json.hpp>

#ifndef GEMBED_VERSION
#define GEMBED_VERSION "unknown"
#endif

namespace gembed::server {
namespace {

using json = nlohmann::json;

struct Route {
  std::string_view path;
  std::string_view method;
  bool needs_key;
};
constexpr Route kRoutes[] = {
    {"/v1/embeddings", "POST", true}, {"/embed", "POST", true},  {"/tokenize", "POST", true},
    {"/health", "GET", false},        {"/v1/models", "GET", true}, {"/info", "GET", true},
    {"/metrics", "GET", true},
};

const Route* FindRoute(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

std::string RouteList() {
  std::string s;
  for (const Route& r : kRoutes) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", r.method, r.path);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// application/json, or any "+json" media type, with or without parameters.
bool IsJsonMediaType(std::string_view content_type) {
  const std::string media = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  return media == "application/json" || (media.size() > 5 && media.ends_with("+json"));
}

Response JsonResponse(const json& j, int status = 200) {
  Response r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// The engine's errors as HTTP answers: the client's mistakes are 4xx, a full
// queue is 429, a dropped (disconnected) request 499, anything else 500.
Response FromStatus(const Status& st, std::string param = {}) {
  ApiError e;
  e.message = st.message();
  e.param = std::move(param);
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      e.status = 400;
      e.code = "invalid_value";
      break;
    case StatusCode::kResourceExhausted: {
      e.status = 429;
      e.type = "rate_limit_error";
      e.code = "queue_full";
      Response r = Service::ErrorResponse(e);
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case StatusCode::kCancelled:
      e.status = kClientClosedRequest;
      e.code = "client_closed_request";
      break;
    default:
      e.status = 500;
      e.type = "server_error";
      e.code = "internal_error";
      e.message = "internal error: " + st.ToString();
      break;
  }
  return Service::ErrorResponse(e);
}

}  // namespace

Service::Service(Engine& engine, ServiceOptions options) : engine_(engine), options_(std::move(options)) {
  limits_.max_inputs = options_.max_client_batch_size;
  limits_.vocab_size = engine_.vocab_size();
  limits_.max_sequence_tokens = static_cast<size_t>(engine_.max_seq_length());
  limits_.dims = engine_.SupportedDims();
  created_unix_ = static_cast<int64_t>(std::time(nullptr));
}

Result<std::unique_ptr<Service>> Service::Create(Engine& engine, ServiceOptions options) {
  if (!options.default_task.empty()) {
    EmbedOptions probe;
    probe.task = options.default_task;
    auto prefix = engine.ResolvePrompt(probe);
    if (!prefix.ok()) return prefix.status().WithContext("--default-task");
  }
  if (options.max_client_batch_size == 0) return InvalidArgument("--max-client-batch-size must be at least 1");
  if (options.max_body_bytes < 64) return InvalidArgument("--max-body-bytes must be at least 64");
  if (options.max_concurrent_requests < 1) return InvalidArgument("--max-concurrent-requests must be at least 1");
  return std::unique_ptr<Service>(new Service(engine, std::move(options)));
}

Response Service::ErrorResponse(const ApiError& error) {
  Response r;
  r.status = error.status;
  r.body = ErrorBody(error);
  if (error.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Response Service::ErrorResponse(int status, std::string message, std::string code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.code = std::move(code);
  if (status >= 500) e.type = "server_error";
  return ErrorResponse(e);
}

bool Service::WantsBody(const RequestHead& head) {
  const Route* route = FindRoute(head.path);
  return route != nullptr && route->method == "POST" && head.method == "POST";
}

std::optional<Response> Service::Admit(const RequestHead& head) const {
  const Route* route = FindRoute(head.path);
  if (route == nullptr) {
    return ErrorResponse(404, fmt::format("no such endpoint: {} {} (endpoints: {})", head.method, head.path,
                                          RouteList()),
                         "not_found");
  }
  const bool get_like = head.method == "GET" || head.method == "HEAD";
  if (route->method == "GET" ? !get_like : head.method != route->method) {
    Response r = ErrorResponse(405, fmt::format("{} takes {}, not {}", route->path, route->method, head.method),
                               "method_not_allowed");
    r.headers.emplace_back("Allow", route->method == "GET" ? "GET, HEAD" : std::string(route->method));
    return r;
  }
  const bool work = route->method == "POST";
  if (draining() && (work || route->path == "/health")) {
    return ErrorResponse(503, "the server is shutting down; retry on another instance", "draining");
  }
  if (route->needs_key && !options_.api_key.empty()) {
    constexpr std::string_view kBearer = "bearer ";
    const std::string_view auth = Trim(head.authorization);
    if (auth.empty()) {
      return ErrorResponse(401, "missing API key: send the header 'Authorization: Bearer <key>'", "missing_api_key");
    }
    if (auth.size() < kBearer.size() || Lower(auth.substr(0, kBearer.size())) != kBearer ||
        !ConstantTimeEquals(options_.api_key, Trim(auth.substr(kBearer.size())))) {
      return ErrorResponse(401, "invalid API key", "invalid_api_key");
    }
  }
  if (work) {
    if (head.content_type.empty()) {
      return ErrorResponse(415, "missing Content-Type: send the JSON body with 'Content-Type: application/json'",
                           "unsupported_media_type");
    }
    if (!IsJsonMediaType(head.content_type)) {
      return ErrorResponse(415, fmt::format("Content-Type '{}' is not JSON: send 'Content-Type: application/json'",
                                            head.content_type),
                           "unsupported_media_type");
    }
    if (head.content_length && *head.content_length > options_.max_body_bytes) {
      return ErrorResponse(413, fmt::format("the body has {} bytes; this server takes at most {} (--max-body-bytes)",
                                            *head.content_length, options_.max_body_bytes),
                           "body_too_large");
    }
  }
  return std::nullopt;
}

void Service::RecordResponse(std::string_view path, int status, double seconds) {
  metrics_.ObserveRequest(Metrics::EndpointLabel(path), status, seconds);
}

Response Service::Handle(const RequestHead& head, std::string_view body, const std::atomic<bool>* cancel) {
  if (auto early = Admit(head)) return *early;
  try {
    if (head.path == "/health") return JsonResponse({{"status", "ok"}});
    if (head.path == "/v1/models") return Models();
    if (head.path == "/info") return Info();
    if (head.path == "/metrics") return MetricsText();
    // The work endpoints: bounded in body size and in requests at once.
    if (body.size() > options_.max_body_bytes) {
      return ErrorResponse(413, fmt::format("the body has {} bytes; this server takes at most {} (--max-body-bytes)",
                                            body.size(), options_.max_body_bytes),
                           "body_too_large");
    }
    struct InFlight {
      std::atomic<size_t>& n;
      size_t now;
      explicit InFlight(std::atomic<size_t>& c) : n(c), now(c.fetch_add(1) + 1) {}
      ~InFlight() { n.fetch_sub(1); }
    } in_flight(in_flight_);
    if (in_flight.now > static_cast<size_t>(options_.max_concurrent_requests)) {
      ApiError e;
      e.status = 429;
      e.type = "rate_limit_error";
      e.code = "too_many_requests";
      e.message = fmt::format("more than {} requests at once (--max-concurrent-requests); retry shortly",
                              options_.max_concurrent_requests);
      Response r = ErrorResponse(e);
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    if (head.path == "/v1/embeddings") return Embeddings(body, /*tei=*/false, cancel);
    if (head.path == "/embed") return Embeddings(body, /*tei=*/true, cancel);
    if (head.path == "/tokenize") return Tokenize(body);
    return ErrorResponse(404, "no such endpoint", "not_found");
  } catch (const std::bad_alloc&) {
    return ErrorResponse(503, "out of memory while handling the request; retry later", "out_of_memory");
  } catch (const std::exception& e) {
    return ErrorResponse(500, fmt::format("internal error: {}", e.what()), "internal_error");
  }
}

Response Service::Embeddings(std::string_view body, bool tei, const std::atomic<bool>* cancel) {
  EmbedRequest req;
  if (auto e = tei ? ParseTeiEmbed(body, limits_, &req) : ParseOpenAiEmbeddings(body, limits_, &req)) {
    return ErrorResponse(*e);
  }
  const int dim = req.dimensions != 0 ? req.dimensions : engine_.output_dim();
  std::vector<float> out(req.size() * static_cast<size_t>(dim));
  size_t tokens = 0, truncated = 0;
  Status st;
  if (req.tokens) {
    for (const auto& s : req.token_ids) tokens += s.size();
    st = engine_.EmbedTokensInto(req.token_ids, req.dimensions, out.data(), out.size(), {}, cancel);
  } else {
    EmbedOptions opts;
    opts.task = req.task;
    opts.title = req.title;
    opts.prompt = req.prompt;
    if (opts.task.empty() && !opts.prompt && !options_.default_task.empty()) opts.task = options_.default_task;
    opts.dim = req.dimensions;
    opts.truncate = req.truncate;
    opts.cancel = cancel;
    if (auto prefix = engine_.ResolvePrompt(opts); !prefix.ok()) {
      return FromStatus(prefix.status(), tei ? "prompt_name" : "task");
    }
    EmbedReport report;
    st = engine_.EmbedInto(req.texts, opts, out.data(), out.size(), &report);
    tokens = report.total_tokens;
    truncated = report.num_truncated;
  }
  if (!st.ok()) return FromStatus(st, tei ? "inputs" : "input");
  for (float x : out) {
    if (!std::isfinite(x)) return ErrorResponse(500, "the model produced a non-finite value", "internal_error");
  }
  metrics_.ObserveEmbedded(req.size(), tokens);
  Response r;
  r.body = tei ? TeiEmbedBody(out, req.size(), dim)
               : OpenAiEmbeddingsBody(out, req.size(), dim, req.encoding,
                                      req.model.empty() ? options_.served_model_name : req.model, tokens);
  if (truncated > 0) r.headers.emplace_back("X-Gembed-Truncated-Inputs", std::to_string(truncated));
  return r;
}

Response Service::Tokenize(std::string_view body) {
  TokenizeRequest req;
  if (auto e = ParseTokenize(body, limits_, &req)) return ErrorResponse(*e);
  auto piece = [&](int32_t id) {
    auto text = engine_.TokenText(id);
    return text.ok() ? *text : std::string();
  };
  if (req.llama_style) {
    const std::vector<int32_t> ids = engine_.TokenizeRaw(req.texts[0], req.add_special);
    json tokens = json::array();
    for (int32_t id : ids) {
      if (req.with_pieces) {
        tokens.push_back({{"id", id}, {"piece", piece(id)}});
      } else {
        tokens.push_back(id);
      }
    }
    return JsonResponse({{"tokens", std::move(tokens)}});
  }
  EmbedOptions opts;
  opts.task = req.task.empty() ? options_.default_task : req.task;
  json all = json::array();
  for (const std::string& text : req.texts) {
    std::vector<int32_t> ids;
    if (req.add_special) {
      // Exactly what /embed runs for this text: prompt, strip, BOS/EOS, truncation.
      auto r = engine_.Tokenize(text, opts);
      if (!r.ok()) return FromStatus(r.status(), "prompt_name");
      ids = std::move(*r);
    } else {
      ids = engine_.TokenizeRaw(text, false);
    }
    json row = json::array();
    for (int32_t id : ids) row.push_back({{"id", id}, {"text", piece(id)}});
    all.push_back(std::move(row));
  }
  return JsonResponse(all);
}

Response Service::Models() const {
  return JsonResponse({{"object", "list"},
                       {"data", json::array({{{"id", options_.served_model_name},
                                              {"object", "model"},
                                              {"created", created_unix_},
                                              {"owned_by", "gembed"}}})}});
}

Response Service::Info() const {
  const std::vector<std::string> tasks = engine_.TaskNames();
  return JsonResponse({
      {"model_id", options_.served_model_name},
      {"model_path", options_.model_path},
      {"model_dtype", engine_.weight_type()},
      {"model_type", "embedding"},
      {"dims", engine_.output_dim()},
      {"supported_dims", engine_.SupportedDims()},
      {"max_input_length", engine_.max_seq_length()},
      {"tasks", tasks},
      {"default_task", options_.default_task},
      {"isa", engine_.isa()},
      {"kernels", engine_.kernels()},
      {"precision", std::string(PrecisionName(engine_.precision()))},
      {"threads", engine_.threads()},
      {"max_batch_tokens", engine_.max_batch_tokens()},
      {"max_queued_tokens", options_.max_queued_tokens},
      {"max_client_batch_size", options_.max_client_batch_size},
      {"max_concurrent_requests", options_.max_concurrent_requests},
      {"max_body_bytes", options_.max_body_bytes},
      {"auth", !options_.api_key.empty()},
      {"version", GEMBED_VERSION},
  });
}

Response Service::MetricsText() const {
  Metrics::Gauges g;
  g.engine = engine_.stats();
  g.requests_in_flight = in_flight_.load();
  g.draining = draining();
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.Render(g);
  return r;
}

}  // namespace gembed::server
