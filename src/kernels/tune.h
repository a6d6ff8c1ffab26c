// Kernel choice by measurement: the Q8 GEMM of each ISA level exists in
// several tile shapes / vector widths (GemmQ8Variant), all bit-identical. Which
// is fastest depends on the core (a Zen 4 executes a 512-bit op as two 256-bit
// halves; an Ice Lake / Sapphire Rapids core does not), so the engine picks one
// on the running CPU: a short measurement at first use (tens of milliseconds),
// cached per CPU model by the caller (engine/tuning.h), overridable.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kernels.h"

namespace gembed {

// The variants of `isa`'s gemm_q8 that run on every CPU of that level (the
// first is its default); the generic level has one, the scalar reference.
std::span<const GemmQ8Variant> GemmQ8VariantsFor(Isa isa);

// The AMX variants (of the avx512vnni level) this process can run; empty
// without AMX. Whether the tuner measures them is the caller's choice
// (engine/tuning.h): on the one AMX host measured they were faster on one
// thread and slower on two (docs/PERFORMANCE.md).
std::span<const GemmQ8Variant> AmxGemmQ8Variants();

// The variant named `name` for `isa` (the AMX ones included where they can
// run, so GEMBED_GEMM_Q8 may name them), or nullptr.
const GemmQ8Variant* FindGemmQ8Variant(Isa isa, std::string_view name);

// The kernel choices on top of an ISA level's table: one gemm_q8 for short
// inputs (m <= small_m_max rows per call, the DRAM-bound case of short
// texts) and one for the rest (the compute-bound case).
struct KernelChoice {
  std::string gemm_q8_small;  // variant names; empty = the level's default
  std::string gemm_q8_large;
  int64_t small_m_max = 32;
};

// What a measurement saw: the time of every variant per case, and the choice.
struct TuneReport {
  struct Row {
    std::string variant;
    double small_ms = 0;  // one call at m = small_m (weights streamed from DRAM)
    double large_ms = 0;  // one call at m = large_m (weights in cache)
  };
  Isa isa = Isa::kGeneric;
  int64_t small_m = 0, large_m = 0;
  std::vector<Row> rows;
  KernelChoice choice;
  double elapsed_ms = 0;  // wall time of the whole measurement
};

// Times the `candidates` (gemm_q8 variants of `isa`, empty = the level's own
// GemmQ8VariantsFor(isa); the first is the default, which a choice must beat) on one thread, on random Q8 weights of
// a transformer layer's shapes: a short input over a weight set larger than
// the last-level cache (m = 12) and a long one over cache-resident weights
// (m = 128), best of a few calls each, within about `budget_ms`. Picks the
// fastest for each case; a variant must beat the default by more than 3% to
// be chosen (noise must not flip the choice).
TuneReport TuneGemmQ8(Isa isa, std::span<const GemmQ8Variant> candidates, double budget_ms = 300.0);

}  // namespace gembed
