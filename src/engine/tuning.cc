#include "engine/tuning.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "io/atomic_file.h"
#include "kernels/cpu/dispatch.h"

namespace gembed {
namespace {

// Bump when the variant set or the measurement changes meaning, so caches
// written by an older build are measured again.
constexpr int kTuneCacheVersion = 1;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Whether the candidates at `isa` include the AMX variants.
bool AmxCandidates(Isa isa) {
  return isa == Isa::kAvx512Vnni && Env("GEMBED_AMX") == "1" && !AmxGemmQ8Variants().empty();
}

bool Known(Isa isa, const std::string& name) { return FindGemmQ8Variant(isa, name) != nullptr; }

KernelChoice Defaults(Isa isa) {
  KernelChoice c;
  c.gemm_q8_small = c.gemm_q8_large = GemmQ8VariantsFor(isa).front().name;
  return c;
}

std::string MkdirsFor(const std::string& file) {
  // Creates the parent folders of `file` (0700 for ones we make); returns an
  // error text or "".
  std::string dir;
  size_t pos = 0;
  while ((pos = file.find('/', pos + 1)) != std::string::npos) {
    dir = file.substr(0, pos);
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
      std::filesystem::create_directory(dir, ec);
      if (ec) return fmt::format("cannot create {}: {}", dir, ec.message());
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
  }
  return {};
}

bool ReadCache(const std::string& path, Isa isa, KernelChoice* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("version", 0) != kTuneCacheVersion) return false;
  if (!j.contains("gemm_q8_small") || !j["gemm_q8_small"].is_string() || !j.contains("gemm_q8_large") ||
      !j["gemm_q8_large"].is_string() || !j.contains("small_m_max") || !j["small_m_max"].is_number_integer())
    return false;
  KernelChoice c;
  c.gemm_q8_small = j["gemm_q8_small"].get<std::string>();
  c.gemm_q8_large = j["gemm_q8_large"].get<std::string>();
  c.small_m_max = j["small_m_max"].get<int64_t>();
  if (!Known(isa, c.gemm_q8_small) || !Known(isa, c.gemm_q8_large) || c.small_m_max < 0) return false;
  *out = c;
  return true;
}

void WriteCache(const std::string& path, const TuneReport& r) {
  const CpuIdentity cpu = DetectCpuIdentity();
  nlohmann::json j;
  j["version"] = kTuneCacheVersion;
  j["cpu"] = cpu.brand;
  j["cpu_key"] = cpu.key;
  j["isa"] = std::string(IsaName(r.isa));
  j["gemm_q8_small"] = r.choice.gemm_q8_small;
  j["gemm_q8_large"] = r.choice.gemm_q8_large;
  j["small_m_max"] = r.choice.small_m_max;
  nlohmann::json rows = nlohmann::json::array();
  for (const TuneReport::Row& row : r.rows)
    rows.push_back({{"variant", row.variant},
                    {fmt::format("m{}_ms", r.small_m), row.small_ms},
                    {fmt::format("m{}_ms", r.large_m), row.large_ms}});
  j["measured"] = rows;
  j["measure_ms"] = r.elapsed_ms;
  const std::string err = MkdirsFor(path);
  if (!err.empty()) {
    Log(LogLevel::kDebug, "kernel tuning: not cached: {}", err);
    return;
  }
  const Status st = WriteFileAtomically(path, j.dump(2) + "\n");
  if (!st.ok()) Log(LogLevel::kDebug, "kernel tuning: not cached: {}", st.message());
}

}  // namespace

std::vector<GemmQ8Variant> TuneCandidates(Isa isa) {
  const std::span<const GemmQ8Variant> level = GemmQ8VariantsFor(isa);
  std::vector<GemmQ8Variant> v(level.begin(), level.end());
  if (AmxCandidates(isa)) {
    const std::span<const GemmQ8Variant> amx = AmxGemmQ8Variants();
    v.insert(v.end(), amx.begin(), amx.end());
  }
  return v;
}

std::string TuneCachePath(Isa isa) {
  std::string base = Env("GEMBED_CACHE_DIR");
  if (base.empty()) {
    const std::string xdg = Env("XDG_CACHE_HOME");
    const std::string home = Env("HOME");
    if (!xdg.empty()) {
      base = xdg + "/gembed";
    } else if (!home.empty()) {
      base = home + "/.cache/gembed";
    } else {
      return {};
    }
  }
  std::string key = DetectCpuIdentity().key;
  if (key.empty()) key = "unknown-cpu";
  return fmt::format("{}/tune/{}-{}{}-v{}.json", base, key, IsaName(isa), AmxCandidates(isa) ? "-amx" : "",
                     kTuneCacheVersion);
}

KernelResolution ResolveKernelChoice(Isa isa, bool force_measure) {
  KernelResolution res;
  res.choice = Defaults(isa);
  const std::vector<GemmQ8Variant> candidates = TuneCandidates(isa);
  if (candidates.size() < 2) {
    res.source = "default";
    return res;
  }
  const std::string request = Env("GEMBED_GEMM_Q8");
  if (!request.empty()) {
    const size_t comma = request.find(',');
    const std::string small = request.substr(0, comma);
    const std::string large = comma == std::string::npos ? small : request.substr(comma + 1);
    if (Known(isa, small) && Known(isa, large)) {
      res.choice.gemm_q8_small = small;
      res.choice.gemm_q8_large = large;
      res.source = "env";
      return res;
    }
    std::string names;
    for (const GemmQ8Variant& v : candidates) names += fmt::format("{}{}", names.empty() ? "" : ", ", v.name);
    Log(LogLevel::kWarning, "GEMBED_GEMM_Q8={}: not variants of {} ({}); tuning as usual", request, IsaName(isa),
        names);
  }
  const std::string mode = Env("GEMBED_TUNE");
  if (mode == "off") {
    res.source = "off";
    return res;
  }
  if (!mode.empty() && mode != "auto" && mode != "force")
    Log(LogLevel::kWarning, "GEMBED_TUNE={} is not one of auto|off|force; using auto", mode);
  force_measure = force_measure || mode == "force";
  res.cache_path = TuneCachePath(isa);
  if (!force_measure && !res.cache_path.empty() && ReadCache(res.cache_path, isa, &res.choice)) {
    res.source = "cache";
    return res;
  }
  try {
    res.report = TuneGemmQ8(isa, candidates);
  } catch (const std::bad_alloc&) {  // no memory for the measurement: the defaults, not cached
    Log(LogLevel::kDebug, "kernel tuning: out of memory; using the defaults");
    res.source = "default";
    res.cache_path.clear();
    return res;
  }
  res.choice = res.report.choice;
  res.source = "measured";
  for (const TuneReport::Row& r : res.report.rows) {
    if (r.small_ms <= 0 || r.large_ms <= 0) {  // the measurement could not run (no memory): nothing to cache
      res.source = "default";
      res.cache_path.clear();
      return res;
    }
  }
  if (!res.cache_path.empty()) WriteCache(res.cache_path, res.report);
  return res;
}

}  // namespace gembed
