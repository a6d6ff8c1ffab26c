// Kernel benchmarks: per kernel x ISA level x this model's shapes.
//
// Counters: GMAC/s (multiply-adds per second, 1e9), wGB/s (weight bytes
// streamed per second; for attention the Q/K/V/O bytes) and pct_*_peak = the
// share of the machine's peak measured by this suite itself at start-up:
//   * int8 peak: a loop of independent vpdpbusd zmm (64 int8 MACs each) on
//     one core (PeakVpdpbusd benchmark reports it too);
//   * fp32 peak: independent vfmadd zmm chains (PeakFmaF32): the roof of the
//     fp32 GEMM and of attention;
//   * memory read: streaming a 512 MiB buffer (PeakMemoryRead).
// Q8 GEMM pct_int8_peak is relative to threads x the int8 per-core peak.
//
// Benchmarks: MatMulQ8/F32 per weight shape and M; LayerMatMulsQ8 (one
// layer's products, weights mostly cache-resident across iterations);
// ModelMatMulsQ8 (all 24 layers' products with distinct weights, ~108 MB
// streamed from L3/DRAM like a real forward pass); Attention per length and
// window; row ops. scripts/perf_roofline.py turns the JSON output into
// docs/roofline.png and a table.
//
// Timing: single-thread benchmarks (t1) report rates per CPU second of the
// benchmark thread, which stays meaningful on a machine shared with other
// work; multi-thread ones (t2, ...) report per wall-clock second
// (UseRealTime), where preemption shows up. The peaks are calibrated on
// thread CPU time. On a quiet machine both clocks agree.
//
// Usage: bench_kernels [--benchmark_filter=...]; GEMBED_BENCH_THREADS=1,2
// picks the thread counts (default "1,2").
#include <benchmark/benchmark.h>
// GCC 12's AVX-512 reduce helpers trip -W(maybe-)uninitialized (false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/peaks.h"
#include "kernels/tune.h"
#include "kernels/reference.h"

namespace gembed {
namespace {

double g_int8_peak_gmacs = 0;  // per core
double g_f32_peak_gmacs = 0;   // per core: fp32 FMAs (attention, fp32 GEMM)
double g_mem_peak_gbs = 0;

// ---- peaks ------------------------------------------------------------------

// The int8 peak and DRAM read loops are the library's (kernels/peaks.h), the
// same ones `gembed bench --roofline` measures with.
int64_t VpdpbusdLoop(int64_t iters) { return Int8PeakLoop(iters); }
constexpr double kMacsPerVpdpbusdIter = kInt8PeakLoopMacsPerIter;

// 16 independent fp32 FMA chains (zmm): the fp32 compute peak.
__attribute__((target("avx512f"), noinline)) float FmaLoop(int64_t iters) {
  __m512 a = _mm512_set1_ps(1.0001f), b = _mm512_set1_ps(0.9999f);
  __asm__ volatile("" : "+v"(a), "+v"(b));
  __m512 c[16];
  for (int i = 0; i < 16; ++i) c[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t it = 0; it < iters; ++it) {
    __asm__ volatile("" : "+v"(a));
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) c[i] = _mm512_fmadd_ps(a, b, c[i]);
  }
  __m512 s = c[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, c[i]);
  return _mm512_reduce_add_ps(s);
}
constexpr double kMacsPerFmaIter = 16.0 * 16.0;


float ReadLoop(const float* p, size_t n) { return StreamReadLoop(p, n); }
constexpr size_t kReadBytes = size_t{512} << 20;

struct ReadBuffer {
  AlignedBuffer buf{kReadBytes};
  ReadBuffer() { std::memset(buf.data(), 1, kReadBytes); }
};
ReadBuffer& GetReadBuffer() {
  static ReadBuffer rb;
  return rb;
}

// CPU time of the calling thread: unlike wall time it does not count the
// time other processes hold the core, so calibration works on shared hosts.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void CalibratePeaks() {
  if (IsaSupported(Isa::kAvx512Vnni)) {
    // Best of several short runs: other processes on a shared machine only
    // ever make a run slower.
    VpdpbusdLoop(1 << 20);  // warm up the clocks
    for (int r = 0; r < 8; ++r) {
      const double t0 = ThreadCpuSeconds();
      const int64_t iters = 1 << 21;
      benchmark::DoNotOptimize(VpdpbusdLoop(iters));
      const double s = ThreadCpuSeconds() - t0;
      g_int8_peak_gmacs = std::max(g_int8_peak_gmacs, iters * kMacsPerVpdpbusdIter / s / 1e9);
    }
  }
  if (IsaSupported(Isa::kAvx512Vnni)) {
    FmaLoop(1 << 20);
    for (int r = 0; r < 8; ++r) {
      const double t0 = ThreadCpuSeconds();
      const int64_t iters = 1 << 21;
      benchmark::DoNotOptimize(FmaLoop(iters));
      const double s = ThreadCpuSeconds() - t0;
      g_f32_peak_gmacs = std::max(g_f32_peak_gmacs, iters * kMacsPerFmaIter / s / 1e9);
    }
  }
  if (IsaSupported(Isa::kAvx512Vnni)) {
    const float* p = GetReadBuffer().buf.as<float>();
    benchmark::DoNotOptimize(ReadLoop(p, kReadBytes / 4));
    for (int r = 0; r < 4; ++r) {
      const double t0 = ThreadCpuSeconds();
      benchmark::DoNotOptimize(ReadLoop(p, kReadBytes / 4));
      const double s = ThreadCpuSeconds() - t0;
      g_mem_peak_gbs = std::max(g_mem_peak_gbs, kReadBytes / s / 1e9);
    }
  }
}

void BM_PeakFmaF32(benchmark::State& state) {
  const int64_t iters = 1 << 20;
  for (auto _ : state) benchmark::DoNotOptimize(FmaLoop(iters));
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * iters * kMacsPerFmaIter / 1e9,
                                                benchmark::Counter::kIsRate);
}

void BM_PeakVpdpbusd(benchmark::State& state) {
  const int64_t iters = 1 << 20;
  for (auto _ : state) benchmark::DoNotOptimize(VpdpbusdLoop(iters));
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * iters * kMacsPerVpdpbusdIter / 1e9,
                                                benchmark::Counter::kIsRate);
}

// Streams the buffer with `threads` threads (each its own contiguous part).
// bytes = kReadBytes: DRAM; a 64 MiB prefix: L3-resident on a large-L3 part
// (the model's 108 MB of Q8 weights sit between the two).
void BM_PeakMemoryRead(benchmark::State& state, int threads, size_t bytes) {
  const float* p = GetReadBuffer().buf.as<float>();
  ThreadPool pool(threads);
  const size_t n = bytes / 4;
  std::vector<float> sink(static_cast<size_t>(threads));
  for (auto _ : state) {
    pool.RunOnAll([&](int t) {
      const size_t b = n * static_cast<size_t>(t) / static_cast<size_t>(threads);
      const size_t e = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
      sink[static_cast<size_t>(t)] = ReadLoop(p + b, e - b);
    });
    benchmark::DoNotOptimize(sink.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(bytes) / 1e9,
                                              benchmark::Counter::kIsRate);
}

// ---- helpers ----------------------------------------------------------------

std::vector<float> RandomFloats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A packed random weight of `dt` [n x k].
PackedMatrix MakePacked(DType dt, int64_t k, int64_t n, uint64_t seed) {
  const std::vector<float> f = RandomFloats(static_cast<size_t>(k * n), seed);
  std::vector<uint8_t> bytes;
  if (dt == DType::kQ8_0) {
    std::vector<BlockQ8_0> blocks(f.size() / 32);
    for (int64_t r = 0; r < n; ++r) reference::QuantizeRowQ8_0(f.data() + r * k, k, blocks.data() + r * (k / 32));
    bytes.resize(blocks.size() * sizeof(BlockQ8_0));
    std::memcpy(bytes.data(), blocks.data(), bytes.size());
  } else {
    bytes.resize(f.size() * 4);
    std::memcpy(bytes.data(), f.data(), bytes.size());
  }
  TensorView v;
  v.dtype = dt;
  v.n_dims = 2;
  v.ne = {k, n, 1, 1};
  v.data = bytes.data();
  v.nbytes = bytes.size();
  Result<PackedMatrix> pm = PackMatrix(v);
  if (!pm.ok()) std::abort();
  return std::move(pm).value();
}

struct Shape {
  const char* name;
  int64_t k, n;
};
constexpr Shape kShapes[] = {{"q_o", 768, 768},        {"k_v", 768, 256},
                             {"gate_up", 768, 1152},   {"down", 1152, 768},
                             {"dense2", 768, 3072},    {"dense3", 3072, 768}};
constexpr int64_t kTokens[] = {1, 12, 128, 512, 2048};

void SetGemmCounters(benchmark::State& state, double macs, int threads, bool int8,
                     double weight_bytes) {
  state.counters["GMAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()) / 1e9,
                                                benchmark::Counter::kIsRate);
  // Weights streamed per call: the relevant limit for small M.
  state.counters["wGB/s"] = benchmark::Counter(weight_bytes * static_cast<double>(state.iterations()) / 1e9,
                                               benchmark::Counter::kIsRate);
  if (int8 && g_int8_peak_gmacs > 0) {
    // pct_peak: as a rate counter divided by the peak (in %).
    state.counters["pct_int8_peak"] = benchmark::Counter(
        macs * static_cast<double>(state.iterations()) / 1e9 / (g_int8_peak_gmacs * threads) * 100.0,
        benchmark::Counter::kIsRate);
  }
  if (g_mem_peak_gbs > 0) {
    state.counters["pct_mem_peak"] = benchmark::Counter(
        weight_bytes * static_cast<double>(state.iterations()) / 1e9 / g_mem_peak_gbs * 100.0,
        benchmark::Counter::kIsRate);
  }
}

// ---- benchmarks ---------------------------------------------------------------

void BM_MatMul(benchmark::State& state, Isa isa, DType dt, Shape shape, int64_t m, int threads) {
  ThreadPool pool(threads);
  Ops ops(GetKernelTable(isa), pool);
  const PackedMatrix w = MakePacked(dt, shape.k, shape.n, 1);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * shape.k), 2);
  std::vector<float> y(static_cast<size_t>(m * shape.n));
  ops.MatMul(w, x.data(), m, y.data());  // sizes the scratch
  for (auto _ : state) {
    ops.MatMul(w, x.data(), m, y.data());
    benchmark::ClobberMemory();
  }
  SetGemmCounters(state, static_cast<double>(m * shape.k * shape.n), threads, dt == DType::kQ8_0,
                  static_cast<double>(w.packed_bytes()));
}

// All matrix products of one transformer layer (q/k/v shared, o, gate/up
// shared, down) at M tokens: 24 of these + the Dense head are the model's GEMMs.
void BM_LayerMatMuls(benchmark::State& state, Isa isa, int64_t m, int threads) {
  ThreadPool pool(threads);
  Ops ops(GetKernelTable(isa), pool);
  const PackedMatrix wq = MakePacked(DType::kQ8_0, 768, 768, 1), wk = MakePacked(DType::kQ8_0, 768, 256, 2),
                     wv = MakePacked(DType::kQ8_0, 768, 256, 3), wo = MakePacked(DType::kQ8_0, 768, 768, 4),
                     wg = MakePacked(DType::kQ8_0, 768, 1152, 5), wu = MakePacked(DType::kQ8_0, 768, 1152, 6),
                     wd = MakePacked(DType::kQ8_0, 1152, 768, 7);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * 1152), 8);
  std::vector<float> q(m * 768), k(m * 256), v(m * 256), o(m * 768), g(m * 1152), u(m * 1152), d(m * 768);
  const MatMulOutput qkv[] = {{&wq, q.data()}, {&wk, k.data()}, {&wv, v.data()}};
  const MatMulOutput gu[] = {{&wg, g.data()}, {&wu, u.data()}};
  for (auto _ : state) {
    ops.MatMulShared(x.data(), m, qkv);
    ops.MatMul(wo, x.data(), m, o.data());
    ops.MatMulShared(x.data(), m, gu);
    ops.MatMul(wd, x.data(), m, d.data());
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(m) * (768.0 * (768 + 256 + 256 + 768 + 2 * 1152) + 1152.0 * 768);
  const double bytes = static_cast<double>(wq.packed_bytes() + wk.packed_bytes() + wv.packed_bytes() + wo.packed_bytes() +
                                           wg.packed_bytes() + wu.packed_bytes() + wd.packed_bytes());
  SetGemmCounters(state, macs, threads, true, bytes);
}

// All matrix products of the whole 24-layer model at M tokens, with 24
// distinct weight sets (~108 MB of Q8_0, far beyond L2): the weights stream
// from L3 / DRAM as in a real forward pass, unlike BM_LayerMatMuls whose one
// layer (4.5 MB) stays mostly cache-resident across iterations. Inputs are
// prepared once (MatMulPrepared), as the fused row ops hand them over.
void BM_ModelMatMuls(benchmark::State& state, Isa isa, int64_t m, int threads, GemmQ8Fn variant) {
  constexpr int kLayers = 24;
  ThreadPool pool(threads);
  Ops ops(GetKernelTable(isa), pool);
  if (variant) ops.SetGemmQ8(variant, variant, 0);
  struct Layer {
    PackedMatrix q, k, v, o, g, u, d;
  };
  static std::vector<Layer>* layers = [] {
    auto* l = new std::vector<Layer>();
    for (int i = 0; i < kLayers; ++i) {
      const uint64_t s = 100 + 10 * static_cast<uint64_t>(i);
      l->push_back(Layer{MakePacked(DType::kQ8_0, 768, 768, s), MakePacked(DType::kQ8_0, 768, 256, s + 1),
                         MakePacked(DType::kQ8_0, 768, 256, s + 2), MakePacked(DType::kQ8_0, 768, 768, s + 3),
                         MakePacked(DType::kQ8_0, 768, 1152, s + 4), MakePacked(DType::kQ8_0, 768, 1152, s + 5),
                         MakePacked(DType::kQ8_0, 1152, 768, s + 6)});
    }
    return l;
  }();
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * 1152), 8);
  std::vector<int8_t> qs(static_cast<size_t>(m * 1152));
  std::vector<float> qd(static_cast<size_t>(m * 36));
  std::vector<int32_t> qc(static_cast<size_t>(m * 36));
  const KernelTable& kt = GetKernelTable(isa);
  for (int64_t i = 0; i < m; ++i) kt.quantize_row_q8(x.data() + i * 1152, 1152, qs.data() + i * 1152, qd.data() + i * 36, qc.data() + i * 36);
  RowsOut in;
  in.f32 = const_cast<float*>(x.data());
  in.qs = qs.data();
  in.d = qd.data();
  in.corr = qc.data();
  std::vector<float> q(m * 768), k(m * 256), v(m * 256), o(m * 768), g(m * 1152), u(m * 1152), d(m * 768);
  double bytes = 0;
  for (const Layer& l : *layers)
    bytes += static_cast<double>(l.q.packed_bytes() + l.k.packed_bytes() + l.v.packed_bytes() + l.o.packed_bytes() +
                                 l.g.packed_bytes() + l.u.packed_bytes() + l.d.packed_bytes());
  for (auto _ : state) {
    for (const Layer& l : *layers) {
      const MatMulOutput qkv[] = {{&l.q, q.data()}, {&l.k, k.data()}, {&l.v, v.data()}};
      const MatMulOutput oo[] = {{&l.o, o.data()}};
      const MatMulOutput gu[] = {{&l.g, g.data()}, {&l.u, u.data()}};
      const MatMulOutput dd[] = {{&l.d, d.data()}};
      ops.MatMulPrepared(in, m, 768, qkv);
      ops.MatMulPrepared(in, m, 768, oo);
      ops.MatMulPrepared(in, m, 768, gu);
      ops.MatMulPrepared(in, m, 1152, dd);
    }
    benchmark::ClobberMemory();
  }
  const double macs = kLayers * static_cast<double>(m) * (768.0 * (768 + 256 + 256 + 768 + 2 * 1152) + 1152.0 * 768);
  SetGemmCounters(state, macs, threads, true, bytes);
}

void BM_Attention(benchmark::State& state, Isa isa, int64_t t, int64_t window, int threads) {
  ThreadPool pool(threads);
  Ops ops(GetKernelTable(isa), pool);
  const int64_t hq = 3, dh = 256;
  const std::vector<float> q = RandomFloats(static_cast<size_t>(t * hq * dh), 1);
  const std::vector<float> k = RandomFloats(static_cast<size_t>(t * dh), 2);
  const std::vector<float> v = RandomFloats(static_cast<size_t>(t * dh), 3);
  std::vector<float> out(q.size());
  const std::vector<int32_t> cu = {0, static_cast<int32_t>(t)};
  for (auto _ : state) {
    if (!ops.Attention(q.data(), k.data(), v.data(), t, cu, hq, 1, dh, window, 0.0625f, out.data()).ok()) std::abort();
    benchmark::ClobberMemory();
  }
  double pairs = 0;  // (query, key) pairs inside the window
  for (int64_t i = 0; i < t; ++i) {
    const int64_t lo = window < 0 ? 0 : std::max<int64_t>(0, i - window);
    const int64_t hi = window < 0 ? t : std::min<int64_t>(t, i + window + 1);
    pairs += static_cast<double>(hi - lo);
  }
  const double macs = pairs * hq * dh * 2;  // q.k and p.v
  state.counters["GMAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  if (g_f32_peak_gmacs > 0)
    state.counters["pct_f32_peak"] = benchmark::Counter(
        macs * static_cast<double>(state.iterations()) / 1e9 / (g_f32_peak_gmacs * threads) * 100.0,
        benchmark::Counter::kIsRate);
  // Q, K, V read and O written once (fp32): the op's minimum memory traffic.
  state.counters["wGB/s"] = benchmark::Counter(
      static_cast<double>(t) * dh * (2 * hq + 2) * 4 * static_cast<double>(state.iterations()) / 1e9,
      benchmark::Counter::kIsRate);
}

void BM_RowOp(benchmark::State& state, Isa isa, int op, int64_t m) {
  ThreadPool pool(1);
  Ops ops(GetKernelTable(isa), pool);
  const int64_t d = op == 1 ? 1152 : 768;
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * d), 1);
  const std::vector<float> g = RandomFloats(static_cast<size_t>(m * d), 2);
  std::vector<float> out(x.size());
  std::vector<int32_t> pos(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (auto _ : state) {
    switch (op) {
      case 0: ops.RmsNorm(x.data(), m, d, g.data(), 1e-6f, out.data()); break;
      case 1: ops.GeGlu(x.data(), g.data(), m * d, out.data()); break;
      case 2: (void)ops.RopeNeox(out.data(), m, 3, 256, pos, 10000.0f); break;
      default: ops.RmsNormAdd(x.data(), m, d, g.data(), 1e-6f, out.data()); break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(m * d) * 8 * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

std::vector<int> BenchThreads() {
  const char* env = std::getenv("GEMBED_BENCH_THREADS");
  std::vector<int> out;
  std::string s = env ? env : "1,2";
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t comma = s.find(',', pos);
    out.push_back(std::atoi(s.substr(pos, comma - pos).c_str()));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

void RegisterAll() {
  if (IsaSupported(Isa::kAvx512Vnni)) {
    benchmark::RegisterBenchmark("PeakVpdpbusd/1core", BM_PeakVpdpbusd)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("PeakFmaF32/1core", BM_PeakFmaF32)->Unit(benchmark::kMillisecond);
    for (int th : {1, 2}) {
      auto* b = benchmark::RegisterBenchmark(("PeakMemoryRead/t" + std::to_string(th)).c_str(), BM_PeakMemoryRead, th,
                                             kReadBytes)
                    ->Unit(benchmark::kMillisecond);
      if (th > 1) b->MeasureProcessCPUTime()->UseRealTime();
      auto* c = benchmark::RegisterBenchmark(("PeakL3Read/64MiB/t" + std::to_string(th)).c_str(), BM_PeakMemoryRead, th,
                                             size_t{64} << 20)
                    ->Unit(benchmark::kMillisecond);
      if (th > 1) c->MeasureProcessCPUTime()->UseRealTime();
    }
  }
  const std::vector<int> threads = BenchThreads();
  // Wall-clock rates for multi-threaded runs (see the header comment).
  auto timing = [](benchmark::internal::Benchmark* b, int th) {
    if (th > 1) b->MeasureProcessCPUTime()->UseRealTime();
  };
  for (Isa isa : SupportedIsas()) {
    const std::string in(IsaName(isa));
    for (int th : threads) {
      for (const Shape& s : kShapes)
        for (int64_t m : kTokens) {
          if (isa == Isa::kGeneric && m > 12) continue;  // the scalar reference is slow
          timing(benchmark::RegisterBenchmark(("MatMulQ8/" + in + "/" + s.name + "/M" + std::to_string(m) + "/t" + std::to_string(th)).c_str(),
                                       BM_MatMul, isa, DType::kQ8_0, s, m, th)->Unit(benchmark::kMicrosecond), th);
        }
      for (int64_t m : {1, 128}) {
        if (isa == Isa::kGeneric && m > 1) continue;
        timing(benchmark::RegisterBenchmark(("MatMulF32/" + in + "/q_o/M" + std::to_string(m) + "/t" + std::to_string(th)).c_str(),
                                     BM_MatMul, isa, DType::kF32, kShapes[0], m, th)->Unit(benchmark::kMicrosecond), th);
      }
      for (int64_t m : kTokens) {
        if (isa == Isa::kGeneric && m > 12) continue;
        timing(benchmark::RegisterBenchmark(("LayerMatMulsQ8/" + in + "/M" + std::to_string(m) + "/t" + std::to_string(th)).c_str(),
                                     BM_LayerMatMuls, isa, m, th)->Unit(benchmark::kMicrosecond), th);
      }
      if (isa != Isa::kGeneric) {
        for (int64_t m : {1, 12, 32, 128, 512})
          timing(benchmark::RegisterBenchmark(("ModelMatMulsQ8/" + in + "/M" + std::to_string(m) + "/t" + std::to_string(th)).c_str(),
                                       BM_ModelMatMuls, isa, m, th, nullptr)->Unit(benchmark::kMillisecond), th);
        // Every tile-shape variant the tuner chooses among (kernels/tune.h).
        for (const GemmQ8Variant& v : GemmQ8VariantsFor(isa))
          for (int64_t m : {12, 128})
            timing(benchmark::RegisterBenchmark(("ModelMatMulsQ8Variant/" + in + "/" + v.name + "/M" + std::to_string(m) + "/t" + std::to_string(th)).c_str(),
                                         BM_ModelMatMuls, isa, m, th, v.fn)->Unit(benchmark::kMillisecond), th);
        for (auto [t, w] : std::vector<std::pair<int64_t, int64_t>>{{128, -1}, {512, -1}, {2048, -1}, {2048, 256}})
          timing(benchmark::RegisterBenchmark(("Attention/" + in + "/T" + std::to_string(t) + "/w" + std::to_string(w) + "/t" + std::to_string(th)).c_str(),
                                       BM_Attention, isa, t, w, th)->Unit(benchmark::kMicrosecond), th);
      }
    }
    const char* row_ops[] = {"RmsNorm", "GeGlu", "Rope", "RmsNormAdd"};
    for (int op = 0; op < 4; ++op)
      benchmark::RegisterBenchmark((std::string(row_ops[op]) + "/" + in + "/M128").c_str(), BM_RowOp, isa, op, 128)
          ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
}  // namespace gembed

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  gembed::CalibratePeaks();
  benchmark::AddCustomContext("int8_peak_gmacs_per_core", std::to_string(gembed::g_int8_peak_gmacs));
  benchmark::AddCustomContext("f32_peak_gmacs_per_core", std::to_string(gembed::g_f32_peak_gmacs));
  benchmark::AddCustomContext("mem_read_peak_gbs", std::to_string(gembed::g_mem_peak_gbs));
  gembed::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
