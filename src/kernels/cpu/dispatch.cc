#include "kernels/cpu/dispatch.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "base/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GEMBED_X86 1
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace gembed {
namespace {

#ifdef GEMBED_X86
// XGETBV via inline asm, so this file needs no -mxsave.
uint64_t ReadXcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

}  // namespace

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kGeneric:
      return "generic";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

std::optional<Isa> IsaFromName(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512Vnni})
    if (lower == IsaName(isa)) return isa;
  if (lower == "avx512") return Isa::kAvx512Vnni;  // accepted alias
  return std::nullopt;
}

CpuFeatures DetectCpuFeatures() {
  CpuFeatures f;
#ifdef GEMBED_X86
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned max_leaf = eax;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  f.fma = (ecx >> 12) & 1;
  f.f16c = (ecx >> 29) & 1;
  if (osxsave && avx) {
    const uint64_t xcr0 = ReadXcr0();
    f.os_ymm = (xcr0 & 0x6) == 0x6;            // SSE (bit 1) + AVX (bit 2)
    f.os_zmm = f.os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = (xcr0 & 0x60000) == 0x60000;        // XTILECFG (bit 17), XTILEDATA (bit 18)
  }
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.avx2 = (ebx >> 5) & 1;
    f.bmi2 = (ebx >> 8) & 1;
    f.avx512f = (ebx >> 16) & 1;
    f.avx512dq = (ebx >> 17) & 1;
    f.avx512bw = (ebx >> 30) & 1;
    f.avx512vl = (ebx >> 31) & 1;
    f.avx512vnni = (ecx >> 11) & 1;
    f.amx_tile = (edx >> 24) & 1;
    f.amx_int8 = (edx >> 25) & 1;
    unsigned eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
    __cpuid_count(7, 1, eax1, ebx1, ecx1, edx1);
    f.avx512bf16 = (eax1 >> 5) & 1;
  }
#endif
  return f;
}

bool AmxInt8Usable() {
  static const bool usable = [] {
    const CpuFeatures f = DetectCpuFeatures();
    if (!(f.amx_tile && f.amx_int8 && f.os_amx && IsaSupported(Isa::kAvx512Vnni, f))) return false;
#if defined(__linux__) && defined(__x86_64__)
    // Linux 5.16+: tile data is off until the process asks (ARCH_REQ_XCOMP_PERM
    // for XFEATURE_XTILEDATA); a kernel without it refuses and AMX stays off.
    constexpr int kArchReqXcompPerm = 0x1023;
    constexpr int kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return usable;
}

CpuIdentity DetectCpuIdentity() {
  CpuIdentity id;
#ifdef GEMBED_X86
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return id;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return id;
  const unsigned stepping = eax & 0xf;
  unsigned model = (eax >> 4) & 0xf;
  unsigned family = (eax >> 8) & 0xf;
  if (family == 0xf) family += (eax >> 20) & 0xff;
  if (family == 0x6 || family >= 0xf) model += ((eax >> 16) & 0xf) << 4;
  id.key = fmt::format("{}-{}-{}-{}", vendor, family, model, stepping);
  unsigned max_ext = 0;
  __get_cpuid(0x80000000u, &max_ext, &ebx, &ecx, &edx);
  if (max_ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      unsigned r[4] = {};
      __get_cpuid(0x80000002u + leaf, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + leaf * 16, r, 16);
    }
    std::string b(brand);
    const size_t first = b.find_first_not_of(' ');
    const size_t last = b.find_last_not_of(' ');
    id.brand = first == std::string::npos ? std::string() : b.substr(first, last - first + 1);
  }
#endif
  return id;
}

bool IsaSupported(Isa isa, const CpuFeatures& f) {
  const bool avx2 = f.os_ymm && f.avx2 && f.fma && f.f16c && f.bmi2;
  switch (isa) {
    case Isa::kGeneric:
      return true;
    case Isa::kAvx2:
      return avx2;
    case Isa::kAvx512Vnni:
      return avx2 && f.os_zmm && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq &&
             f.avx512vnni;
  }
  return false;
}

bool IsaSupported(Isa isa) { return IsaSupported(isa, DetectCpuFeatures()); }

std::vector<Isa> SupportedIsas() {
  const CpuFeatures f = DetectCpuFeatures();
  std::vector<Isa> out;
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512Vnni})
    if (IsaSupported(isa, f)) out.push_back(isa);
  return out;
}

Isa BestIsa() { return SupportedIsas().back(); }

Isa SelectIsaFromRequest(const std::string& request, std::string* note) {
  const Isa best = BestIsa();
  if (request.empty()) return best;
  std::string msg;
  const std::optional<Isa> wanted = IsaFromName(request);
  if (!wanted) {
    msg = fmt::format("GEMBED_ISA={} is not one of generic|avx2|avx512vnni; using {}", request,
                      IsaName(best));
  } else if (!IsaSupported(*wanted)) {
    msg = fmt::format("GEMBED_ISA={}: this CPU/OS does not support it; using {}", request,
                      IsaName(best));
  } else {
    return *wanted;
  }
  Log(LogLevel::kWarning, "{}", msg);
  if (note) *note = msg;
  return best;
}

Isa SelectIsa(std::string* note) {
  const char* env = std::getenv("GEMBED_ISA");
  return SelectIsaFromRequest(env ? std::string(env) : std::string(), note);
}

}  // namespace gembed
