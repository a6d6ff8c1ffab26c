// Which Q8 GEMM variants (kernels/tune.h) the CPU backend uses on this host.
//
// Resolution, in order:
//   * GEMBED_GEMM_Q8=SMALL[,LARGE]: those variants (names as `gembed bench
//     --tune` lists them); an unknown name is a warning and falls back;
//   * GEMBED_TUNE=off: the level's defaults (no measurement, no cache);
//   * the cache file for this CPU model and level (see TuneCachePath), when it
//     exists and names variants this build has;
//   * otherwise a measurement (TuneGemmQ8, ~0.3 s once per CPU model and
//     cache directory), written to the cache. GEMBED_TUNE=force measures again
//     and rewrites the cache.
// The choice never changes a result: every variant is bit-identical.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/tune.h"

namespace gembed {

struct KernelResolution {
  KernelChoice choice;
  // "env" (GEMBED_GEMM_Q8), "off", "cache", "measured" or "default" (a level
  // with a single variant).
  std::string source;
  std::string cache_path;  // the file read or written ("" if none)
  TuneReport report;       // filled when source == "measured"
};

// The gemm_q8 variants the tuner measures at `isa`: the level's own
// (GemmQ8VariantsFor), then at avx512vnni the AMX ones when GEMBED_AMX=1 asks
// for them and this process can run AMX. Read at each call (not cached).
std::vector<GemmQ8Variant> TuneCandidates(Isa isa);

// $GEMBED_CACHE_DIR, else $XDG_CACHE_HOME/gembed, else $HOME/.cache/gembed,
// + "/tune/<cpu key>-<isa>[-amx]-v<N>.json" (N: the variant set's version;
// "-amx" when TuneCandidates includes the AMX variants, so the two choices
// never overwrite each other). Empty when no directory can be named.
std::string TuneCachePath(Isa isa);

// Resolves the choice as described above; `force_measure` acts like
// GEMBED_TUNE=force. Never fails: a cache that cannot be read or written is
// logged (debug) and the measurement or defaults are used.
KernelResolution ResolveKernelChoice(Isa isa, bool force_measure = false);

}  // namespace gembed
