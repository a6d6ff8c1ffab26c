// The metrics of `gembed serve` in Prometheus' text format (version 0.0.4):
// requests by endpoint and status, a request-latency histogram per endpoint,
// texts/tokens embedded and tokens/s over the last 10 s, and, from the
// engine, queue depth, forward passes and the texts and tokens they ran
// (their ratio is the batch size per pass). Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/engine.h"

namespace gembed::server {

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;
  Metrics();

  // One answered request (every endpoint and status, including the HTTP
  // layer's own errors). `endpoint` is a label from EndpointLabel.
  void ObserveRequest(std::string_view endpoint, int status, double seconds);
  // Texts and tokens a successful request embedded.
  void ObserveEmbedded(size_t texts, size_t tokens, Clock::time_point now = Clock::now());

  // The fixed label of a request path: the known endpoints, else "other"
  // (so arbitrary paths cannot grow the label set).
  static std::string_view EndpointLabel(std::string_view path);

  struct Gauges {
    EngineStats engine;
    size_t requests_in_flight = 0;  // embedding/tokenize requests being handled
    bool draining = false;
  };
  std::string Render(const Gauges& gauges, Clock::time_point now = Clock::now()) const;

  // For tests.
  uint64_t requests(std::string_view endpoint, int status) const;
  double TokensPerSecond(Clock::time_point now) const;

  static const std::vector<double>& LatencyBuckets();

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // not cumulative; one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  static constexpr int kRateWindow = 10;  // seconds
  double TokensPerSecondLocked(Clock::time_point now) const;

  mutable std::mutex mu_;
  Clock::time_point start_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  uint64_t texts_total_ = 0, tokens_total_ = 0;
  // Tokens embedded per whole second since start_ (ring of the last kRateWindow + 1).
  std::array<int64_t, kRateWindow + 1> ring_second_{};
  std::array<uint64_t, kRateWindow + 1> ring_tokens_{};
};

}  // namespace gembed::server
