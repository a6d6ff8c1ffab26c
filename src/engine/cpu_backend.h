// The CPU implementation of ForwardBackend: the kernel table chosen for this
// CPU, the persistent thread pool, the threaded Ops API and the packed model.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "base/thread_pool.h"
#include "engine/backend.h"
#include "engine/tuning.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/forward.h"
#include "model/weights.h"

namespace gembed {

struct CpuBackendOptions {
  int threads = 0;    // <= 0: hardware concurrency
  std::string isa;    // "" = the best the CPU supports (or GEMBED_ISA)
  Precision precision = Precision::kFast;
  // The weights are views into a read-only file mapping whose packed source
  // pages may be dropped from the resident set (ModelOptions).
  bool release_packed_sources = false;
};

class CpuBackend final : public ForwardBackend {
 public:
  // `weights` must outlive the backend (the token table and norms are read in place).
  static Result<std::unique_ptr<CpuBackend>> Create(const ModelConfig& config, const ModelWeights& weights,
                                                    const CpuBackendOptions& options);

  Status Forward(std::span<const int32_t> token_ids, std::span<const int32_t> cu_seqlens, float* out) override;
  Status Reserve(int64_t max_tokens, int64_t max_sequences) override;
  std::string Describe() const override;

  Isa isa() const { return ops_->isa(); }
  int threads() const { return pool_->size(); }
  Precision precision() const { return model_->precision(); }
  size_t packed_bytes() const { return model_->packed_bytes(); }
  int64_t layer_macs_per_token() const { return model_->layer_macs_per_token(); }
  // The Q8 GEMM variants in use and where the choice came from (tuning.h).
  const KernelResolution& kernels() const { return kernels_; }
  // Per-op timing of later passes (nullptr: off); see Model::set_profile.
  void set_profile(ForwardProfile* profile) { model_->set_profile(profile); }

 private:
  CpuBackend() = default;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<Model> model_;
  KernelResolution kernels_;
};

}  // namespace gembed
