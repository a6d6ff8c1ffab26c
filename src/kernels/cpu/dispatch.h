// Run-time choice of the kernel level: CPUID for the instruction sets, XGETBV
// for the operating system's promise to save the YMM / ZMM registers (a CPU
// with AVX-512 under an OS that does not enable it must not use it).
//
// The choice is made once by the caller (the engine) and passed around as a
// `const KernelTable&`; nothing here caches state.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace gembed {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false;
  bool os_ymm = false;  // XCR0 has SSE + AVX state
  bool os_zmm = false;  // XCR0 also has opmask + ZMM_Hi256 + Hi16_ZMM state
  bool amx_tile = false, amx_int8 = false;
  bool os_amx = false;  // XCR0 has XTILECFG + XTILEDATA state
};

CpuFeatures DetectCpuFeatures();

// The processor's identity from CPUID: `key` = vendor, family, model and
// stepping ("AuthenticAMD-25-17-1"; what a tuning result is cached under),
// `brand` = the marketing name ("AMD EPYC 9R14 96-Core Processor"). Empty
// strings off x86.
struct CpuIdentity {
  std::string key;
  std::string brand;
};
CpuIdentity DetectCpuIdentity();

// Whether this process may run Intel AMX-INT8 code: the CPU has AMX-TILE and
// AMX-INT8, the OS saves the tile state, it has AVX-512 VNNI (the AMX kernels
// scale on the vector unit), and, on Linux, the kernel granted this process
// the XTILEDATA permission (requested here, once: arch_prctl). The answer is
// computed on the first call and kept.
bool AmxInt8Usable();

// Whether this host (CPU and OS) can run `isa`'s kernels.
bool IsaSupported(Isa isa, const CpuFeatures& features);
bool IsaSupported(Isa isa);

// Every level the host supports, in ascending order (kGeneric first). Tests
// iterate over it.
std::vector<Isa> SupportedIsas();

// The best supported level.
Isa BestIsa();

// The level to use: GEMBED_ISA (generic | avx2 | avx512vnni) if set, else
// BestIsa(). An unknown or unsupported request falls back to BestIsa() and
// logs a warning saying why (the text is also returned through `note`).
Isa SelectIsa(std::string* note = nullptr);

// Same decision from an explicit request string (empty = no request).
Isa SelectIsaFromRequest(const std::string& request, std::string* note = nullptr);

}  // namespace gembed
