// gembed bench: latency / throughput of the forward pass on one model.
//
//   gembed bench --model M --tokens N [--batch B] [--threads T] [--repeat R]
//                [--json] [--precision fast|high] [--profile]
// embeds B synthetic texts of exactly N tokens each (BOS and EOS included):
// the ids are those of the text "the the the ..." (one token per word with
// the Gemma3 vocabulary), adjusted to exactly N ids if a vocabulary
// tokenises differently. One call embeds all B texts (packed into forward
// passes as the engine does); the first call is the warm-up (and is reported
// as part of the load time), then R timed calls.
//   gembed bench --model M --input FILE   times embedding the texts of FILE
// (one per line), e.g. the mixed-length corpus of scripts/bench_vs_llamacpp.py,
// stripped like `gembed embed` does (--no-strip: as given).
//   gembed bench --model M                the grid 12/128/512/2048 tokens x
// batch 1/8/64 x threads 1/2, skipping (and listing) cells above a token budget.
//
// Reported: p50/p99/mean/min ms per call, texts/s, tokens/s, peak RSS, the
// time to open the model, the first embedding, and process start -> first
// embedding (from this binary's static initialisation, i.e. after the dynamic
// loader), plus the per-op profile with --profile (also GEMBED_PROFILE=1 for
// any command).
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "input.h"
#include "engine/engine.h"
#include "engine/tuning.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/peaks.h"

namespace gembed::cli {
namespace {

using Clock = std::chrono::steady_clock;
// Process start as seen by this binary: static initialisation runs right
// after the dynamic loader, before main().
const Clock::time_point kProcessStart = Clock::now();

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct BenchArgs {
  std::string model, precision = "fast", input, isa;
  int tokens = 0, batch = 1, threads = 0, repeat = 0;
  bool json = false, profile = false, no_strip = false, tune = false, roofline = false;
  double grid_budget_tokens = 32768;  // grid: skip cells with more tokens per call
};

// --batch, --repeat and tokens-per-call limits, and the grid's smallest
// cell (12 tokens x batch 1).
constexpr int kMaxBatch = 65536;
constexpr int kMaxRepeat = 1'000'000;
constexpr int64_t kMaxTokensPerCall = int64_t{1} << 24;
constexpr int kSmallestGridCell = 12;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "gembed bench: %s\n", msg.c_str());
  return 1;
}

// This process's own peak RSS: VmHWM of its address space. Not ru_maxrss:
// Linux carries that across fork + exec, so a parent that once held more
// memory (a benchmark script that memory-mapped a large file) would set
// every child's figure.
double PeakRssMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      double kib = 0;
      if (fields >> kib) return kib / 1024.0;
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// Exactly n ids (n >= 2): <bos> the the ... <eos> through the engine's
// tokenizer, padded or cut to n if the vocabulary merges differently.
std::vector<int32_t> SyntheticIds(const Engine& e, int n) {
  std::string text;
  for (int i = 0; i < n - 2; ++i) text += i ? " the" : "the";
  EmbedOptions o;
  o.truncate = true;
  auto r = e.Tokenize(text, o);
  std::vector<int32_t> ids = r.ok() ? *r : std::vector<int32_t>{};
  if (ids.size() < 2) ids = {2, 1};
  if (static_cast<int>(ids.size()) != n) {
    const int32_t eos = ids.back();
    const int32_t body = ids.size() > 2 ? ids[ids.size() - 2] : 1000;
    ids.pop_back();
    ids.resize(static_cast<size_t>(std::max(1, n - 1)), body);
    ids.push_back(eos);
  }
  return ids;
}

struct Stats {
  double p50 = 0, p99 = 0, mean = 0, min = 0, max = 0;
};

Stats Summarise(std::vector<double> ms) {
  Stats s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    // Nearest rank on the sorted samples.
    const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(ms.size()))) - 1;
    return ms[std::min(i, ms.size() - 1)];
  };
  s.p50 = pct(50);
  s.p99 = pct(99);
  s.min = ms.front();
  s.max = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean = sum / static_cast<double>(ms.size());
  return s;
}

struct CaseResult {
  int tokens = 0, batch = 0, repeat = 0, threads = 0;
  int64_t total_tokens = 0;  // per call
  double passes_per_call = 0;  // forward passes per timed call
  Stats stats;
  double first_ms = 0;
  nlohmann::json profile;
};

nlohmann::json ProfileJson(const ForwardProfile& p) {
  nlohmann::json ops = nlohmann::json::array();
  const double passes = static_cast<double>(std::max<int64_t>(1, p.passes()));
  for (const auto& e : p.entries()) {
    ops.push_back({{"op", e.op},
                   {"calls", e.calls},
                   {"ms_per_pass", e.seconds * 1e3 / passes},
                   {"pct", p.pass_seconds() > 0 ? 100.0 * e.seconds / p.pass_seconds() : 0.0}});
  }
  return {{"passes", p.passes()}, {"tokens", p.tokens()}, {"ms_per_pass", p.pass_seconds() * 1e3 / passes},
          {"ops", ops}};
}

// Embeds `seqs` once as warm-up, then `repeat` timed times (repeat <= 0:
// adaptive, ~2 s of timed calls within [3, 10]).
Result<CaseResult> RunCase(Engine& e, const std::vector<std::vector<int32_t>>& seqs, int repeat, bool profile) {
  CaseResult r;
  r.batch = static_cast<int>(seqs.size());
  for (const auto& s : seqs) r.total_tokens += static_cast<int64_t>(s.size());
  const Clock::time_point t0 = Clock::now();
  auto warm = e.EmbedTokens(seqs);
  if (!warm.ok()) return warm.status();
  r.first_ms = MsBetween(t0, Clock::now());
  if (repeat <= 0) repeat = static_cast<int>(std::clamp(2000.0 / std::max(r.first_ms, 1e-3), 3.0, 10.0));
  r.repeat = repeat;
  if (profile) {
    e.ResetProfile();
    e.EnableProfile(true);
  }
  std::vector<double> ms;
  const uint64_t passes0 = e.stats().forward_passes;
  for (int i = 0; i < repeat; ++i) {
    const Clock::time_point a = Clock::now();
    auto v = e.EmbedTokens(seqs);
    const Clock::time_point b = Clock::now();
    if (!v.ok()) return v.status();
    ms.push_back(MsBetween(a, b));
  }
  if (profile) {
    e.EnableProfile(false);
    r.profile = ProfileJson(e.profile());
  }
  r.stats = Summarise(ms);
  r.threads = e.threads();
  r.passes_per_call = static_cast<double>(e.stats().forward_passes - passes0) / std::max(1, repeat);
  return r;
}

nlohmann::json CaseJson(const CaseResult& r) {
  const double s = r.stats.mean / 1e3;
  nlohmann::json j = {{"tokens", r.tokens},
                      {"batch", r.batch},
                      {"threads", r.threads},
                      {"repeat", r.repeat},
                      {"tokens_per_call", r.total_tokens},
                      {"p50_ms", r.stats.p50},
                      {"p99_ms", r.stats.p99},
                      {"mean_ms", r.stats.mean},
                      {"min_ms", r.stats.min},
                      {"max_ms", r.stats.max},
                      {"first_ms", r.first_ms},
                      {"texts_per_s", s > 0 ? r.batch / s : 0.0},
                      {"tokens_per_s", s > 0 ? static_cast<double>(r.total_tokens) / s : 0.0}};
  if (!r.profile.is_null()) j["profile"] = r.profile;
  return j;
}

// Where a case stands against this host's limits (kernels/peaks.h): the
// layers' matrix products need tokens x layer MACs of int8 compute and one
// read of the packed weights per forward pass; the larger of the two times
// at the measured peaks is the limit (attention, the Dense head and the
// element-wise work come on top, so 100% is not reachable).
nlohmann::json RooflineJson(const CaseResult& r, const Engine& e, const MachinePeaks& peaks) {
  const double s = r.stats.p50 / 1e3;
  const double macs = static_cast<double>(r.total_tokens) * static_cast<double>(e.layer_macs_per_token());
  const double bytes = r.passes_per_call * static_cast<double>(e.packed_bytes());
  const double int8_peak = peaks.int8_gmacs_per_core * r.threads * 1e9;
  const double mem_peak = peaks.dram_gbs * 1e9;
  const double t_compute = int8_peak > 0 ? macs / int8_peak : 0;
  const double t_memory = mem_peak > 0 ? bytes / mem_peak : 0;
  const double limit = std::max(t_compute, t_memory);
  return {{"gmacs", s > 0 ? macs / s / 1e9 : 0.0},
          {"weight_gbs", s > 0 ? bytes / s / 1e9 : 0.0},
          {"pct_int8_peak", int8_peak > 0 && s > 0 ? 100.0 * macs / s / int8_peak : 0.0},
          {"pct_dram_peak", mem_peak > 0 && s > 0 ? 100.0 * bytes / s / mem_peak : 0.0},
          {"limit_ms", limit * 1e3},
          {"bound", t_compute >= t_memory ? "int8 compute" : "weights from DRAM"},
          {"pct_of_limit", s > 0 ? 100.0 * limit / s : 0.0}};
}

// `gembed bench --tune`: measures the Q8 GEMM variants now (rewriting the
// cache) and prints what was chosen and why.
int RunTune(const BenchArgs& a) {
  std::string note;
  const Isa isa = a.isa.empty() ? SelectIsa(&note) : SelectIsaFromRequest(a.isa, &note);
  const KernelResolution res = ResolveKernelChoice(isa, /*force_measure=*/true);
  const CpuIdentity cpu = DetectCpuIdentity();
  nlohmann::json j = {{"cpu", cpu.brand}, {"cpu_key", cpu.key}, {"isa", std::string(IsaName(isa))},
                      {"source", res.source}, {"cache", res.cache_path},
                      {"gemm_q8_small", res.choice.gemm_q8_small}, {"gemm_q8_large", res.choice.gemm_q8_large},
                      {"small_m_max", res.choice.small_m_max}, {"measure_ms", res.report.elapsed_ms}};
  nlohmann::json rows = nlohmann::json::array();
  for (const TuneReport::Row& r : res.report.rows)
    rows.push_back({{"variant", r.variant}, {"small_ms", r.small_ms}, {"large_ms", r.large_ms}});
  j["variants"] = rows;
  if (a.json) {
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("cpu %s (%s), kernels %s\n", cpu.brand.c_str(), cpu.key.c_str(), std::string(IsaName(isa)).c_str());
  if (res.report.rows.empty()) {
    std::printf("one Q8 GEMM variant at this level (%s): nothing to choose\n", res.choice.gemm_q8_small.c_str());
    return 0;
  }
  std::printf("Q8 GEMM variants, one thread, best of rounds in %.0f ms (m = rows per call; k = 768, n = 1152):\n",
              res.report.elapsed_ms);
  std::printf("  %-12s %14s %8s %14s %8s\n", "variant", "m=12, DRAM", "vs 1st", "m=128, cache", "vs 1st");
  const TuneReport::Row& d = res.report.rows.front();
  for (const TuneReport::Row& r : res.report.rows) {
    std::printf("  %-12s %11.3f ms %7.2fx %11.3f ms %7.2fx%s%s\n", r.variant.c_str(), r.small_ms,
                d.small_ms / r.small_ms, r.large_ms, d.large_ms / r.large_ms,
                r.variant == res.choice.gemm_q8_small ? "  <- short inputs" : "",
                r.variant == res.choice.gemm_q8_large ? "  <- long inputs" : "");
  }
  std::printf("chosen: %s for calls of <= %lld rows, %s above (the fastest of each column; the first variant is\n"
              "kept unless another is more than 3%% faster). Every variant gives bit-identical vectors.\n",
              res.choice.gemm_q8_small.c_str(), static_cast<long long>(res.choice.small_m_max),
              res.choice.gemm_q8_large.c_str());
  if (!res.cache_path.empty()) std::printf("cached in %s (GEMBED_TUNE=off|force, GEMBED_GEMM_Q8=SMALL,LARGE override)\n", res.cache_path.c_str());
  return 0;
}

Result<std::unique_ptr<Engine>> OpenEngine(const BenchArgs& a, int threads, Precision precision) {
  EngineOptions o;
  o.threads = threads;
  o.precision = precision;
  o.isa = a.isa;
  return Engine::Open(a.model, o);
}

void PrintProfile(const nlohmann::json& p) {
  std::printf("  per-op profile (%.3f ms per forward pass, %lld passes):\n", p["ms_per_pass"].get<double>(),
              static_cast<long long>(p["passes"].get<int64_t>()));
  std::vector<nlohmann::json> ops(p["ops"].begin(), p["ops"].end());
  std::stable_sort(ops.begin(), ops.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["ms_per_pass"].get<double>() > b["ms_per_pass"].get<double>();
  });
  double covered = 0;
  for (const auto& o : ops) {
    covered += o["pct"].get<double>();
    std::printf("    %-46s %10.3f ms %6.1f%%\n", o["op"].get<std::string>().c_str(), o["ms_per_pass"].get<double>(),
                o["pct"].get<double>());
  }
  std::printf("    %-46s %10s    %6.1f%%\n", "(between ops)", "", 100.0 - covered);
}

int RunBench(const BenchArgs& a) {
  const auto precision = PrecisionFromName(a.precision);
  if (!precision) return Fail(fmt::format("unknown --precision '{}' (fast, high)", a.precision));
  // Bounds keep every size below in range and memory finite: B texts of N
  // ids each are built up front, and one timing is kept per repeat.
  if (a.batch < 1 || a.batch > kMaxBatch) return Fail(fmt::format("--batch must be in [1, {}]", kMaxBatch));
  if (a.repeat < 0 || a.repeat > kMaxRepeat) return Fail(fmt::format("--repeat must be in [0, {}]", kMaxRepeat));
  if (a.tokens != 0 && !a.input.empty()) return Fail("--tokens and --input cannot be used together");
  if (a.tune) {
    const int rc = RunTune(a);
    if (rc != 0 || (a.tokens == 0 && a.input.empty())) return rc;  // --tune alone: only the tuning
  }
  if (a.model.empty()) return Fail("--model is required (except with --tune alone)");

  const bool grid = a.tokens == 0 && a.input.empty();
  if (grid && !(std::isfinite(a.grid_budget_tokens) && a.grid_budget_tokens >= kSmallestGridCell)) {
    return Fail(fmt::format("--grid-budget must be a number of tokens >= {} (the smallest grid cell, {} tokens x "
                            "batch 1); {} would skip every cell",
                            kSmallestGridCell, kSmallestGridCell, a.grid_budget_tokens));
  }
  const std::vector<int> thread_list = grid && a.threads == 0 ? std::vector<int>{1, 2} : std::vector<int>{a.threads};

  nlohmann::json out = {{"model", a.model}, {"precision", a.precision}};
  nlohmann::json cases = nlohmann::json::array();
  nlohmann::json skipped = nlohmann::json::array();
  bool first_engine = true;
  for (int threads : thread_list) {
    const Clock::time_point t_open = Clock::now();
    auto engine = OpenEngine(a, threads, *precision);
    if (!engine.ok()) return Fail(engine.status().ToString());
    Engine& e = **engine;
    const double open_ms = MsBetween(t_open, Clock::now());
    if (first_engine) {
      out["model_type"] = e.weight_type();
      out["isa"] = e.isa();
      out["packed_mib"] = static_cast<double>(e.packed_bytes()) / (1024.0 * 1024.0);
      out["open_ms"] = open_ms;
      out["open_files_ms"] = e.load_times().files_ms;
      out["open_pack_ms"] = e.load_times().pack_ms;
    }
    const int ctx = static_cast<int>(e.config().context_length);
    MachinePeaks peaks;
    if (a.roofline) {
      ThreadPool peak_pool(e.threads());
      peaks = MeasurePeaks(peak_pool);
      out["peaks"] = {{"int8_gmacs_per_core", peaks.int8_gmacs_per_core}, {"dram_gbs", peaks.dram_gbs},
                      {"threads", peaks.threads}};
    }
    if (first_engine) out["kernels"] = e.kernels();

    std::vector<std::pair<int, int>> cells;  // (tokens, batch)
    if (grid) {
      for (int n : {12, 128, 512, 2048})
        for (int b : {1, 8, 64}) cells.emplace_back(n, b);
    } else if (a.input.empty()) {
      if (a.tokens < 2 || a.tokens > ctx) return Fail(fmt::format("--tokens must be in [2, {}]", ctx));
      if (int64_t{a.tokens} * a.batch > kMaxTokensPerCall) {
        return Fail(fmt::format("--tokens {} x --batch {} is more than {} tokens per call", a.tokens, a.batch,
                                kMaxTokensPerCall));
      }
      cells.emplace_back(a.tokens, a.batch);
    } else {
      cells.emplace_back(0, 0);
    }

    for (const auto& [n, b] : cells) {
      std::vector<std::vector<int32_t>> seqs;
      if (n == 0) {  // --input
        const auto texts = ReadInputLines(a.input);
        if (!texts.ok()) return Fail(texts.status().message());
        if (texts->empty()) return Fail("--input has no texts");
        EmbedOptions eo;  // what `gembed embed` does with the file (no prompt)
        eo.strip = !a.no_strip;
        for (const std::string& t : *texts) {
          auto ids = e.Tokenize(t, eo);
          if (!ids.ok()) return Fail(ids.status().ToString());
          seqs.push_back(std::move(*ids));
        }
      } else {
        if (grid && static_cast<double>(n) * b > a.grid_budget_tokens) {
          skipped.push_back({{"tokens", n}, {"batch", b}, {"threads", threads},
                             {"reason", fmt::format("{} tokens per call > grid budget {}", int64_t{n} * b,
                                                    a.grid_budget_tokens)}});
          continue;
        }
        seqs.assign(static_cast<size_t>(b), SyntheticIds(e, n));
      }
      auto r = RunCase(e, seqs, a.repeat > 0 ? a.repeat : (grid || n == 0 ? 0 : 10), a.profile);
      if (!r.ok()) return Fail(r.status().ToString());
      r->tokens = n;
      if (n == 0) r->tokens = static_cast<int>(r->total_tokens / std::max(1, r->batch));  // mean length
      if (first_engine && cases.empty()) {
        out["load_ms"] = open_ms + r->first_ms;
        out["startup_ms"] = MsBetween(kProcessStart, t_open) + open_ms + r->first_ms;
      }
      cases.push_back(CaseJson(*r));
      if (a.roofline) cases.back()["roofline"] = RooflineJson(*r, e, peaks);
      if (!a.json) {
        const auto& j = cases.back();
        std::printf("%s tokens %5d  batch %3d  threads %d  p50 %9.3f ms  p99 %9.3f ms  mean %9.3f ms  "
                    "%8.2f texts/s  %9.1f tokens/s  (x%d)\n",
                    n == 0 ? "input (mean)" : "", j["tokens"].get<int>(), j["batch"].get<int>(),
                    j["threads"].get<int>(), j["p50_ms"].get<double>(), j["p99_ms"].get<double>(), j["mean_ms"].get<double>(),
                    j["texts_per_s"].get<double>(), j["tokens_per_s"].get<double>(), j["repeat"].get<int>());
        if (j.contains("roofline")) {
          const auto& rl = j["roofline"];
          std::printf("  roofline: %.1f GMAC/s (%.1f%% of %d x %.1f int8 peak), weights %.1f GB/s (%.1f%% of %.1f DRAM); "
                      "limit %.3f ms (%s): %.1f%% of it\n",
                      rl["gmacs"].get<double>(), rl["pct_int8_peak"].get<double>(), j["threads"].get<int>(),
                      peaks.int8_gmacs_per_core, rl["weight_gbs"].get<double>(), rl["pct_dram_peak"].get<double>(),
                      peaks.dram_gbs, rl["limit_ms"].get<double>(), rl["bound"].get<std::string>().c_str(),
                      rl["pct_of_limit"].get<double>());
        }
        if (j.contains("profile")) PrintProfile(j["profile"]);
        std::fflush(stdout);
      }
    }
    first_engine = false;
  }
  out["peak_rss_mib"] = PeakRssMiB();
  if (!grid) {
    // Single case: its fields at the top level (the interface scripts use).
    for (auto& [k, v] : cases[0].items()) out[k] = v;
  } else {
    out["grid"] = cases;
    out["skipped"] = skipped;
  }
  if (a.json) {
    // The model path (and so the JSON) may hold bytes that are not UTF-8:
    // they become U+FFFD instead of a type_error 316 exception.
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("model %s (%s, %s, precision %s, %.1f MiB packed)\n", a.model.c_str(),
                out["model_type"].get<std::string>().c_str(), out["isa"].get<std::string>().c_str(),
                a.precision.c_str(), out["packed_mib"].get<double>());
    std::printf("kernels %s\n", out["kernels"].get<std::string>().c_str());
    std::printf("open %.1f ms (files %.1f, pack %.1f); open + first embedding %.1f ms; process start -> first "
                "embedding %.1f ms; peak RSS %.1f MiB\n",
                out["open_ms"].get<double>(), out["open_files_ms"].get<double>(), out["open_pack_ms"].get<double>(),
                out["load_ms"].get<double>(), out["startup_ms"].get<double>(), out["peak_rss_mib"].get<double>());
    if (a.roofline) std::printf("(the peak RSS includes the 256 MiB buffer --roofline reads to measure DRAM bandwidth)\n");
    for (const auto& s : skipped)
      std::printf("skipped: tokens %d batch %d threads %d (%s)\n", s["tokens"].get<int>(), s["batch"].get<int>(),
                  s["threads"].get<int>(), s["reason"].get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

Command MakeBenchCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand(
      "bench", "Latency/throughput of embedding synthetic N-token texts (or a grid, or the texts of a file)");
  auto a = std::make_shared<BenchArgs>();
  app->add_option("--model", a->model, "EmbeddingGemma .gguf file (required unless --tune alone)");
  app->add_option("--tokens", a->tokens, "Tokens per text, BOS and EOS included (omit for the grid)");
  app->add_option("--batch", a->batch, "Texts per call (default 1)");
  app->add_option("--threads", a->threads, "Compute threads (default: all cores; the grid runs 1 and 2)")
      ->check(ThreadCountValidator());
  app->add_option("--repeat", a->repeat, "Timed calls after the warm-up (default 10; grid/--input: ~2 s, 3..10)");
  app->add_option("--input", a->input, "Time embedding the texts of this file (one per line) instead");
  app->add_flag("--no-strip", a->no_strip,
                "--input: keep leading/trailing whitespace (default: stripped like sentence-transformers, as "
                "gembed embed does)");
  app->add_option("--precision", a->precision, "Q8_0 arithmetic: fast (default) or high");
  app->add_option("--isa", a->isa, "Kernel level: generic, avx2, avx512vnni (default: best)");
  app->add_option("--grid-budget", a->grid_budget_tokens, "Grid: skip cells above this many tokens per call");
  app->add_flag("--json", a->json, "Print one JSON object");
  app->add_flag("--profile", a->profile, "Per-op time of the timed calls");
  app->add_flag("--tune", a->tune,
                "Measure the Q8 GEMM variants on this CPU now, show the choice and cache it (alone: only that)");
  app->add_flag("--roofline", a->roofline,
                "Per case: achieved GMAC/s and weight GB/s as a share of this host's measured int8 and DRAM peaks");
  return {app, [a] { return RunBench(*a); }};
}

}  // namespace gembed::cli
