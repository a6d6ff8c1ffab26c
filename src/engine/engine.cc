#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "base/log.h"
#include "base/thread_pool.h"
#include "engine/batch.h"
#include "io/gguf.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ops.h"
#include "model/forward.h"
#include "model/hf_model.h"
#include "model/weights.h"
#include "tokenizer/strip.h"
#include "tokenizer/tokenizer.h"

namespace gembed {

struct Engine::Impl {
  std::unique_ptr<GgufFile> file;  // mapped weights; outlives every view below
  std::unique_ptr<HfModel> hf;     // or a Hugging Face folder (mapped files, owned norms)
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Ops> ops;
  std::unique_ptr<Model> model;
  int max_batch_tokens = 0;
  std::mutex compute_mu;  // one forward pass at a time
  Engine::LoadTimes load_times;
  ForwardProfile profile;
  bool print_profile = false;  // GEMBED_PROFILE=1: print at destruction
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  if (impl_ && impl_->print_profile && impl_->profile.passes() > 0) {
    std::fprintf(stderr, "gembed profile (GEMBED_PROFILE=1, %s, %d threads, precision %s):\n%s", isa().c_str(),
                 threads(), std::string(PrecisionName(precision())).c_str(), impl_->profile.Format().c_str());
  }
}

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& path, const EngineOptions& options) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_open = Clock::now();
  auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  GEMBED_RETURN_IF_ERROR(ValidateThreadCount(options.threads));
  auto impl = std::make_unique<Impl>();
  if (IsHfFolder(path)) {
    // A Hugging Face sentence-transformers folder (model/hf_model.h); the
    // context is its max_seq_length. Errors name the folder already.
    GEMBED_ASSIGN_OR_RETURN(impl->hf, HfModel::Open(path));
    impl->config = impl->hf->EngineConfig();
    impl->weights = impl->hf->weights();
    GEMBED_ASSIGN_OR_RETURN(impl->tokenizer, impl->hf->LoadTokenizer());
  } else {
    GEMBED_ASSIGN_OR_RETURN(impl->file, GgufFile::Open(path));
    auto config = ConfigFromGguf(*impl->file);
    if (!config.ok()) return config.status().WithContext(path);
    impl->config = std::move(*config);
    auto weights = BindWeights(impl->config, *impl->file);
    if (!weights.ok()) return weights.status().WithContext(path);
    impl->weights = std::move(*weights);

    auto tokenizer = Tokenizer::FromGguf(*impl->file);
    if (!tokenizer.ok()) return tokenizer.status().WithContext(path);
    impl->tokenizer = std::move(*tokenizer);
  }
  const Tokenizer& tok = *impl->tokenizer;
  if (tok.bos_id() < 0 || tok.eos_id() < 0) {
    return Unsupported("{}: the vocabulary defines no BOS or EOS token (EmbeddingGemma needs both)", path);
  }
  if (static_cast<uint32_t>(tok.vocab_size()) > impl->config.n_vocab) {
    return CorruptFile("{}: the vocabulary has {} tokens but token_embd only {} rows", path, tok.vocab_size(),
                       impl->config.n_vocab);
  }
  if (impl->config.context_length < 2) {
    return Unsupported("{}: context_length {} cannot hold BOS and EOS", path, impl->config.context_length);
  }

  impl->load_times.files_ms = ms_since(t_open);
  const Clock::time_point t_pack = Clock::now();
  std::string note;
  const Isa isa = options.isa.empty() ? SelectIsa(&note) : SelectIsaFromRequest(options.isa, &note);
  impl->pool = std::make_unique<ThreadPool>(options.threads);
  impl->ops = std::make_unique<Ops>(GetKernelTable(isa), *impl->pool);
  ModelOptions model_options;
  model_options.precision = options.precision;
  model_options.pool = impl->pool.get();
  // GGUF weights are views into GgufFile::Open's read-only mapping: once
  // packed, their source pages can leave the resident set.
  model_options.release_packed_sources = impl->file != nullptr;
  GEMBED_ASSIGN_OR_RETURN(impl->model, Model::Create(impl->config, impl->weights, model_options));
  // A single text may need the whole context in one pass.
  impl->max_batch_tokens =
      std::max<int>(options.max_batch_tokens, static_cast<int>(impl->config.context_length));
  // Size the scratch arena for the largest pass now, so steady-state passes
  // do not allocate (pages are only touched when a batch that large comes).
  GEMBED_RETURN_IF_ERROR(impl->model->Reserve(impl->max_batch_tokens, impl->max_batch_tokens));
  impl->load_times.pack_ms = ms_since(t_pack);
  impl->load_times.total_ms = ms_since(t_open);
  if (const char* env = std::getenv("GEMBED_PROFILE"); env != nullptr && env[0] != '\0' && env[0] != '0') {
    impl->print_profile = true;
    impl->model->set_profile(&impl->profile);
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const ModelConfig& Engine::config() const { return impl_->config; }
int Engine::output_dim() const { return static_cast<int>(impl_->config.output_dim()); }
std::string Engine::isa() const { return std::string(IsaName(impl_->ops->isa())); }
Precision Engine::precision() const { return impl_->model->precision(); }
int Engine::threads() const { return impl_->pool->size(); }
std::string Engine::weight_type() const {
  if (impl_->weights.layers.empty()) return "none";
  return std::string(DTypeName(impl_->weights.layers[0].attn_q.dtype));
}
size_t Engine::packed_bytes() const { return impl_->model->packed_bytes(); }
const Engine::LoadTimes& Engine::load_times() const { return impl_->load_times; }

void Engine::EnableProfile(bool on) {
  std::lock_guard<std::mutex> lock(impl_->compute_mu);
  impl_->model->set_profile(on ? &impl_->profile : nullptr);
}
const ForwardProfile& Engine::profile() const { return impl_->profile; }
void Engine::ResetProfile() {
  std::lock_guard<std::mutex> lock(impl_->compute_mu);
  impl_->profile.Clear();
}

std::vector<int> Engine::SupportedDims() const {
  const int full = output_dim();
  std::vector<int> dims = {full};
  for (int d : {512, 256, 128}) {
    if (d < full) dims.push_back(d);
  }
  return dims;
}

Result<std::vector<int32_t>> Engine::Tokenize(const std::string& text, const EmbedOptions& options,
                                              bool* truncated) const {
  const Tokenizer& tok = *impl_->tokenizer;
  // EmbeddingGemma: <bos> prompt+text <eos>, whatever the vocabulary's flags
  // say; sentence-transformers strips prompt+text first (options.strip).
  const std::string input = options.prompt + text;
  const std::string_view view = options.strip ? StripPythonWhitespace(input) : std::string_view(input);
  std::vector<int32_t> ids = tok.Encode(view, /*add_bos=*/true, /*add_eos=*/true);
  const size_t ctx = impl_->config.context_length;
  if (truncated) *truncated = false;
  if (ids.size() > ctx) {
    if (!options.truncate) {
      return InvalidArgument("text has {} tokens, more than the model's context of {} (truncation is off)",
                             ids.size(), ctx);
    }
    // Keep BOS and the first ctx - 2 text tokens, then EOS (as
    // sentence-transformers truncates before adding the special tokens).
    ids.resize(ctx - 1);
    ids.push_back(tok.eos_id());
    if (truncated) *truncated = true;
  }
  return ids;
}

std::vector<float> TruncateAndNormalize(const std::vector<float>& v, int dim) {
  std::vector<float> out(v.begin(), v.begin() + std::min<size_t>(static_cast<size_t>(dim), v.size()));
  double ss = 0.0;
  for (float x : out) ss += static_cast<double>(x) * x;
  if (ss > 0.0) {
    const double inv = 1.0 / std::sqrt(ss);
    for (float& x : out) x = static_cast<float>(x * inv);
  }
  return out;
}

Result<std::vector<std::vector<float>>> Engine::EmbedTokens(const std::vector<std::vector<int32_t>>& seqs,
                                                            int dim,
                                                            const std::function<void(size_t, size_t)>& progress) {
  const std::vector<int> dims = SupportedDims();
  if (dim != 0 && std::find(dims.begin(), dims.end(), dim) == dims.end()) {
    std::string allowed;
    for (int d : dims) allowed += fmt::format("{}{}", allowed.empty() ? "" : ", ", d);
    return InvalidArgument("dim {} is not supported by this model (allowed: {})", dim, allowed);
  }
  const int full = output_dim();
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].empty() || seqs[i].size() > impl_->config.context_length) {
      return InvalidArgument("sequence {} has {} tokens; 1..{} are allowed", i, seqs[i].size(),
                             impl_->config.context_length);
    }
  }

  std::vector<std::vector<float>> result(seqs.size());
  std::lock_guard<std::mutex> lock(impl_->compute_mu);
  Batch batch;
  std::vector<float> out;
  size_t next = 0;
  while (next < seqs.size()) {
    // Greedy packing in input order under the token budget (at least one
    // sequence per pass). Attention never crosses sequences, so packing
    // changes only the batching, not the vectors.
    batch.Clear();
    const size_t first = next;
    while (next < seqs.size() &&
           (batch.num_sequences() == 0 ||
            batch.num_tokens() + seqs[next].size() <= static_cast<size_t>(impl_->max_batch_tokens))) {
      batch.Add(seqs[next]);
      ++next;
    }
    out.resize(static_cast<size_t>(batch.num_sequences()) * full);
    GEMBED_RETURN_IF_ERROR(
        impl_->model->Forward(*impl_->ops, batch.token_ids, batch.cu_seqlens, out.data()));
    for (int s = 0; s < batch.num_sequences(); ++s) {
      std::vector<float> v(out.begin() + static_cast<ptrdiff_t>(s) * full,
                           out.begin() + static_cast<ptrdiff_t>(s + 1) * full);
      result[first + s] = (dim == 0 || dim == full) ? std::move(v) : TruncateAndNormalize(v, dim);
    }
    if (progress) progress(next, seqs.size());
  }
  return result;
}

Result<std::vector<std::vector<float>>> Engine::Embed(const std::vector<std::string>& texts,
                                                      const EmbedOptions& options) {
  // One warning per truncated text, up to a few; then a count at the end.
  constexpr size_t kMaxTruncationWarnings = 5;
  size_t n_truncated = 0;
  std::vector<std::vector<int32_t>> seqs(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    bool truncated = false;
    auto ids = Tokenize(texts[i], options, &truncated);
    if (!ids.ok()) return ids.status().WithContext(fmt::format("text {}", i + 1));
    if (truncated && ++n_truncated <= kMaxTruncationWarnings) {
      Log(LogLevel::kWarning, "text {}: longer than {} tokens, truncated (BOS and EOS kept)", i + 1,
          impl_->config.context_length);
    }
    seqs[i] = std::move(*ids);
  }
  if (n_truncated > kMaxTruncationWarnings) {
    Log(LogLevel::kWarning, "{} of {} texts were truncated to {} tokens", n_truncated, texts.size(),
        impl_->config.context_length);
  }
  return EmbedTokens(seqs, options.dim, options.progress);
}

}  // namespace gembed
