#include "kernels/tune.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>

#include "base/check.h"
#include "base/half.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/isa_kernels.h"
#include "kernels/ops.h"
#include "kernels/reference.h"

namespace gembed {
namespace {

const GemmQ8Variant kReferenceVariants[] = {{"reference", reference::GemmQ8}};

double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Random Q8 weights [n x k] (uniform int8, one fp16 scale), packed as the
// engine packs them. Cheap to make: tens of MB take milliseconds.
std::optional<PackedMatrix> RandomPacked(int64_t k, int64_t n, std::mt19937_64& rng) {
  std::vector<BlockQ8_0> blocks(static_cast<size_t>(k * n / kQ8BlockElems));
  const uint16_t d = F32ToF16(0.01f);
  for (BlockQ8_0& blk : blocks) {
    blk.d = d;
    for (int t = 0; t < kQ8BlockElems; t += 8) {
      const uint64_t r = rng();
      std::memcpy(blk.qs + t, &r, 8);
    }
  }
  TensorView v;
  v.dtype = DType::kQ8_0;
  v.n_dims = 2;
  v.ne = {k, n, 1, 1};
  v.data = blocks.data();
  v.nbytes = blocks.size() * sizeof(BlockQ8_0);
  Result<PackedMatrix> pm = PackMatrix(v);
  if (!pm.ok()) return std::nullopt;  // out of memory: the caller keeps the defaults
  return std::move(pm).value();
}

// Quantised activation rows [m x k].
struct QRows {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> corr;
};

QRows RandomRows(const KernelTable& kt, int64_t m, int64_t k, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (float& v : x) v = dist(rng);
  const int64_t nb = k / kQ8BlockElems;
  QRows r{std::vector<int8_t>(static_cast<size_t>(m * k)), std::vector<float>(static_cast<size_t>(m * nb)),
          std::vector<int32_t>(static_cast<size_t>(m * nb))};
  for (int64_t i = 0; i < m; ++i)
    kt.quantize_row_q8(x.data() + i * k, k, r.qs.data() + i * k, r.d.data() + i * nb, r.corr.data() + i * nb);
  return r;
}

// One timed pass of `fn` over every matrix in `ws` (all of shape [n x k]).
double TimePass(GemmQ8Fn fn, const std::vector<PackedMatrix>& ws, const QRows& x, int64_t m, float* y) {
  const double t0 = NowMs();
  for (const PackedMatrix& w : ws) {
    const int64_t nb = w.blocks();
    fn(m, w.n, nb, x.qs.data(), x.d.data(), x.corr.data(), w.q8_qs(), w.q8_scales(), y, w.n);
  }
  return NowMs() - t0;
}

}  // namespace

std::span<const GemmQ8Variant> AmxGemmQ8Variants() {
  if (!AmxInt8Usable()) return {};
  return amx::GemmQ8Variants();
}

std::span<const GemmQ8Variant> GemmQ8VariantsFor(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return avx2::GemmQ8Variants();
    case Isa::kAvx512Vnni:
      return avx512vnni::GemmQ8Variants();
    case Isa::kGeneric:
      break;
  }
  return kReferenceVariants;
}

const GemmQ8Variant* FindGemmQ8Variant(Isa isa, std::string_view name) {
  for (const GemmQ8Variant& v : GemmQ8VariantsFor(isa))
    if (name == v.name) return &v;
  if (isa == Isa::kAvx512Vnni) {
    for (const GemmQ8Variant& v : AmxGemmQ8Variants())
      if (name == v.name) return &v;
  }
  return nullptr;
}

TuneReport TuneGemmQ8(Isa isa, std::span<const GemmQ8Variant> variants, double budget_ms) {
  const double start = NowMs();
  TuneReport report;
  report.isa = isa;
  report.small_m = 12;
  report.large_m = 128;
  if (variants.empty()) variants = GemmQ8VariantsFor(isa);
  for (const GemmQ8Variant& v : variants) report.rows.push_back({v.name, 0, 0});
  report.choice.gemm_q8_small = report.choice.gemm_q8_large = variants.front().name;
  if (variants.size() < 2) {
    report.elapsed_ms = NowMs() - start;
    return report;
  }
  const KernelTable& kt = GetKernelTable(isa);
  std::mt19937_64 rng(12345);
  constexpr int64_t kK = 768, kN = 1152;  // a gate/up projection
  // Short inputs: 40 matrices (~38 MB), beyond a 32 MB last-level cache, so
  // every call streams its weights from DRAM as a forward pass does.
  std::vector<PackedMatrix> stream;
  std::vector<PackedMatrix> hot;
  for (int i = 0; i < 41; ++i) {
    std::optional<PackedMatrix> w = RandomPacked(kK, kN, rng);
    if (!w) {  // no memory for the measurement: keep the defaults
      report.elapsed_ms = NowMs() - start;
      return report;
    }
    (i < 40 ? stream : hot).push_back(std::move(*w));
  }
  const QRows xs = RandomRows(kt, report.small_m, kK, rng);
  const QRows xl = RandomRows(kt, report.large_m, kK, rng);
  std::vector<float> y(static_cast<size_t>(report.large_m * kN));

  // Rounds over all variants in turn (so a burst of noise hits them alike),
  // keeping each one's best time, until the budget is spent (at least 2).
  const size_t nv = variants.size();
  std::vector<double> best_small(nv, 1e300), best_large(nv, 1e300);
  for (size_t v = 0; v < nv; ++v) TimePass(variants[v].fn, hot, xl, report.large_m, y.data());  // warm-up
  for (int round = 0; round < 50; ++round) {
    for (size_t v = 0; v < nv; ++v) {
      best_small[v] = std::min(best_small[v], TimePass(variants[v].fn, stream, xs, report.small_m, y.data()) / 40.0);
      best_large[v] = std::min(best_large[v], TimePass(variants[v].fn, hot, xl, report.large_m, y.data()));
    }
    if (round >= 1 && NowMs() - start > budget_ms) break;
  }
  size_t pick_small = 0, pick_large = 0;
  for (size_t v = 0; v < nv; ++v) {
    report.rows[v].small_ms = best_small[v];
    report.rows[v].large_ms = best_large[v];
    if (best_small[v] < best_small[pick_small]) pick_small = v;
    if (best_large[v] < best_large[pick_large]) pick_large = v;
  }
  if (best_small[pick_small] > 0.97 * best_small[0]) pick_small = 0;
  if (best_large[pick_large] > 0.97 * best_large[0]) pick_large = 0;
  report.choice.gemm_q8_small = variants[pick_small].name;
  report.choice.gemm_q8_large = variants[pick_large].name;
  report.elapsed_ms = NowMs() - start;
  return report;
}

}  // namespace gembed
