#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace gembed::server {

namespace {
constexpr std::string_view kEndpoints[] = {"/v1/embeddings", "/embed",   "/tokenize", "/health",
                                           "/v1/models",     "/info",    "/metrics"};

// Prometheus floats: integers without a fraction, others shortest round-trip.
std::string Num(double v) { return fmt::format("{}", v); }
}  // namespace

Metrics::Metrics() : start_(Clock::now()) { ring_second_.fill(-1); }

const std::vector<double>& Metrics::LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,      2.5,   5,    10,    30,    60};
  return kBuckets;
}

std::string_view Metrics::EndpointLabel(std::string_view path) {
  for (std::string_view e : kEndpoints) {
    if (path == e) return e;
  }
  return "other";
}

void Metrics::ObserveRequest(std::string_view endpoint, int status, double seconds) {
  const auto& bounds = LatencyBuckets();
  const size_t b = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(endpoint), status}];
  Histogram& h = latency_[std::string(endpoint)];
  if (h.buckets.empty()) h.buckets.assign(bounds.size() + 1, 0);
  ++h.buckets[b];
  h.sum += seconds;
  ++h.count;
}

void Metrics::ObserveEmbedded(size_t texts, size_t tokens, Clock::time_point now) {
  const int64_t sec = std::chrono::duration_cast<std::chrono::seconds>(now - start_).count();
  const size_t slot = static_cast<size_t>(sec % (kRateWindow + 1));
  std::lock_guard<std::mutex> lock(mu_);
  texts_total_ += texts;
  tokens_total_ += tokens;
  if (ring_second_[slot] != sec) {
    ring_second_[slot] = sec;
    ring_tokens_[slot] = 0;
  }
  ring_tokens_[slot] += tokens;
}

double Metrics::TokensPerSecondLocked(Clock::time_point now) const {
  // The last kRateWindow whole seconds before the current one.
  const int64_t sec = std::chrono::duration_cast<std::chrono::seconds>(now - start_).count();
  uint64_t sum = 0;
  for (size_t i = 0; i < ring_second_.size(); ++i) {
    if (ring_second_[i] >= sec - kRateWindow && ring_second_[i] < sec) sum += ring_tokens_[i];
  }
  const int64_t window = std::min<int64_t>(kRateWindow, sec);
  return window > 0 ? static_cast<double>(sum) / static_cast<double>(window) : 0.0;
}

double Metrics::TokensPerSecond(Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return TokensPerSecondLocked(now);
}

uint64_t Metrics::requests(std::string_view endpoint, int status) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = requests_.find({std::string(endpoint), status});
  return it == requests_.end() ? 0 : it->second;
}

std::string Metrics::Render(const Gauges& g, Clock::time_point now) const {
  std::string out;
  auto w = std::back_inserter(out);
  auto header = [&](std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(w, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, double value) {
    header(name, type, help);
    fmt::format_to(w, "{} {}\n", name, Num(value));
  };

  std::lock_guard<std::mutex> lock(mu_);
  header("gembed_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, n] : requests_) {
    fmt::format_to(w, "gembed_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  }
  header("gembed_request_duration_seconds", "histogram",
         "Time from the first byte of a request to its answer, by endpoint.");
  const auto& bounds = LatencyBuckets();
  for (const auto& [endpoint, h] : latency_) {
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cum += h.buckets[i];
      fmt::format_to(w, "gembed_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} {}\n", endpoint,
                     Num(bounds[i]), cum);
    }
    cum += h.buckets.back();
    fmt::format_to(w, "gembed_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"+Inf\"}} {}\n", endpoint, cum);
    fmt::format_to(w, "gembed_request_duration_seconds_sum{{endpoint=\"{}\"}} {}\n", endpoint, Num(h.sum));
    fmt::format_to(w, "gembed_request_duration_seconds_count{{endpoint=\"{}\"}} {}\n", endpoint, h.count);
  }
  metric("gembed_requests_in_flight", "gauge", "Embedding and tokenize requests being handled now.",
         static_cast<double>(g.requests_in_flight));
  metric("gembed_draining", "gauge", "1 while the server drains after SIGTERM/SIGINT.", g.draining ? 1 : 0);
  metric("gembed_embedded_texts_total", "counter", "Texts (or token-id inputs) embedded by successful requests.",
         static_cast<double>(texts_total_));
  metric("gembed_embedded_tokens_total", "counter", "Tokens embedded by successful requests.",
         static_cast<double>(tokens_total_));
  metric("gembed_tokens_per_second", "gauge", "Tokens embedded per second over the last 10 s.",
         TokensPerSecondLocked(now));

  const EngineStats& s = g.engine;
  metric("gembed_queue_sequences", "gauge", "Texts waiting for a forward pass.",
         static_cast<double>(s.queued_sequences));
  metric("gembed_queue_tokens", "gauge", "Tokens waiting for a forward pass.", static_cast<double>(s.queued_tokens));
  metric("gembed_engine_active_calls", "gauge", "Engine calls in progress (requests inside the engine).",
         static_cast<double>(s.active_calls));
  metric("gembed_forward_passes_total", "counter", "Forward passes run (all requests share them).",
         static_cast<double>(s.forward_passes));
  metric("gembed_forward_texts_total", "counter", "Texts run in forward passes (batch size in texts = this / passes).",
         static_cast<double>(s.sequences));
  metric("gembed_forward_tokens_total", "counter",
         "Tokens run in forward passes (batch size in tokens = this / passes).", static_cast<double>(s.tokens));
  metric("gembed_forward_seconds_total", "counter", "Wall time spent in forward passes.", s.forward_seconds);
  const double passes = static_cast<double>(s.forward_passes);
  metric("gembed_forward_batch_texts_mean", "gauge", "Mean texts per forward pass since start.",
         passes > 0 ? static_cast<double>(s.sequences) / passes : 0.0);
  metric("gembed_forward_batch_tokens_mean", "gauge", "Mean tokens per forward pass since start.",
         passes > 0 ? static_cast<double>(s.tokens) / passes : 0.0);
  return out;
}

}  // namespace gembed::server
