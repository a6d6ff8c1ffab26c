#include "engine/cpu_backend.h"

#include <fmt/format.h>

#include "kernels/cpu/dispatch.h"
#include "kernels/tune.h"

namespace gembed {

Result<std::unique_ptr<CpuBackend>> CpuBackend::Create(const ModelConfig& config, const ModelWeights& weights,
                                                       const CpuBackendOptions& options) {
  std::unique_ptr<CpuBackend> b(new CpuBackend());
  std::string note;
  const Isa isa = options.isa.empty() ? SelectIsa(&note) : SelectIsaFromRequest(options.isa, &note);
  b->pool_ = std::make_unique<ThreadPool>(options.threads);
  b->ops_ = std::make_unique<Ops>(GetKernelTable(isa), *b->pool_);
  b->kernels_ = ResolveKernelChoice(isa);
  const GemmQ8Variant* small = FindGemmQ8Variant(isa, b->kernels_.choice.gemm_q8_small);
  const GemmQ8Variant* large = FindGemmQ8Variant(isa, b->kernels_.choice.gemm_q8_large);
  b->ops_->SetGemmQ8(small ? small->fn : nullptr, large ? large->fn : nullptr, b->kernels_.choice.small_m_max);
  ModelOptions model_options;
  model_options.precision = options.precision;
  model_options.pool = b->pool_.get();
  model_options.release_packed_sources = options.release_packed_sources;
  GEMBED_ASSIGN_OR_RETURN(b->model_, Model::Create(config, weights, model_options));
  return b;
}

Status CpuBackend::Forward(std::span<const int32_t> token_ids, std::span<const int32_t> cu_seqlens, float* out) {
  return model_->Forward(*ops_, token_ids, cu_seqlens, out);
}

Status CpuBackend::Reserve(int64_t max_tokens, int64_t max_sequences) {
  return model_->Reserve(max_tokens, max_sequences);
}

std::string CpuBackend::Describe() const { return fmt::format("cpu {} x{}", IsaName(isa()), threads()); }

}  // namespace gembed
