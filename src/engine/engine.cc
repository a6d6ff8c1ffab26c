#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string_view>
#include <utility>

#include "base/check.h"
#include "base/log.h"
#include "engine/batch.h"
#include "engine/cpu_backend.h"
#include "io/gguf.h"
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
  std::unique_ptr<CpuBackend> cpu;  // the backend in use (the only one so far)
  ForwardBackend* backend = nullptr;
  int max_batch_tokens = 0;
  size_t max_queued_tokens = 0;
  HfPromptTable prompts;   // the model's own prompt table (folder or GGUF keys)
  std::mutex compute_mu;  // one forward pass at a time (held by the leader during a pass)

  // The shared queue (see the threading contract in engine.h).
  struct Call {
    std::span<const std::vector<int32_t>> seqs;  // the caller's; alive until the call returns
    float* out = nullptr;
    int dim = 0;
    const std::atomic<bool>* cancel = nullptr;
    const std::function<void(size_t, size_t)>* progress = nullptr;  // called on the caller's thread
    size_t reported = 0;   // `done` at the last progress call
    size_t next = 0;       // next sequence to schedule (== seqs.size(): nothing left)
    size_t done = 0;       // rows written
    size_t in_flight = 0;  // scheduled, not yet written
    size_t queued_tokens = 0;  // tokens of seqs[next..)
    Status error;
    bool finished() const { return next == seqs.size() && in_flight == 0; }
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Call*> queue;  // calls with unscheduled sequences, in arrival order
  bool leading = false;     // a caller is running passes
  size_t queued_tokens = 0, queued_sequences = 0, active_calls = 0;
  uint64_t passes = 0, pass_sequences = 0, pass_tokens = 0;
  double pass_seconds = 0;

  // Drops the unscheduled sequences of `c` (mu held) with `why`.
  void DropLocked(Call& c, const Status& why) {
    if (c.error.ok()) c.error = why;
    if (c.next < c.seqs.size()) {
      queued_sequences -= c.seqs.size() - c.next;
      queued_tokens -= c.queued_tokens;
      c.queued_tokens = 0;
      c.next = c.seqs.size();
      queue.erase(std::remove(queue.begin(), queue.end(), &c), queue.end());
    }
  }
  Status Run(std::span<const std::vector<int32_t>> seqs, int dim, float* out,
             const std::function<void(size_t, size_t)>& progress, const std::atomic<bool>* cancel);
  void LeadWhileUnfinished(Call& self, std::unique_lock<std::mutex>& lock);
  // Calls self's progress callback if its count moved (mu held; released around the call).
  static void ReportProgress(Call& self, std::unique_lock<std::mutex>& lock) {
    if (self.progress == nullptr || !*self.progress || self.done == self.reported || !self.error.ok()) return;
    self.reported = self.done;
    const size_t done = self.done;
    lock.unlock();
    (*self.progress)(done, self.seqs.size());
    lock.lock();
  }
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
    impl->prompts = impl->hf->folder_config().prompts;
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
    // The prompt table `gembed convert` carries over from a folder (none in
    // other GGUFs): read here once, so task names resolve without reparsing.
    auto prompts = HfPromptTableFromGguf(*impl->file);
    if (!prompts.ok()) return prompts.status().WithContext(path);
    impl->prompts = std::move(*prompts);
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
  CpuBackendOptions backend_options;
  backend_options.threads = options.threads;
  backend_options.isa = options.isa;
  backend_options.precision = options.precision;
  // GGUF weights are views into GgufFile::Open's read-only mapping: once
  // packed, their source pages can leave the resident set.
  backend_options.release_packed_sources = impl->file != nullptr;
  GEMBED_ASSIGN_OR_RETURN(impl->cpu, CpuBackend::Create(impl->config, impl->weights, backend_options));
  impl->backend = impl->cpu.get();
  // A single text may need the whole context in one pass.
  impl->max_batch_tokens =
      std::max<int>(options.max_batch_tokens, static_cast<int>(impl->config.context_length));
  if (options.max_batch_tokens > 0 && options.max_batch_tokens < impl->max_batch_tokens) {
    Log(LogLevel::kWarning, "a forward pass of {} tokens cannot hold one text of the context length; using {}",
        options.max_batch_tokens, impl->max_batch_tokens);
  }
  impl->max_queued_tokens = options.max_queued_tokens;
  // Size the scratch for the largest pass now, so steady-state passes do not
  // allocate (pages are only touched when a batch that large comes).
  GEMBED_RETURN_IF_ERROR(impl->backend->Reserve(impl->max_batch_tokens, impl->max_batch_tokens));
  impl->load_times.pack_ms = ms_since(t_pack);
  impl->load_times.total_ms = ms_since(t_open);
  if (const char* env = std::getenv("GEMBED_PROFILE"); env != nullptr && env[0] != '\0' && env[0] != '0') {
    impl->print_profile = true;
    impl->cpu->set_profile(&impl->profile);
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const ModelConfig& Engine::config() const { return impl_->config; }
int Engine::output_dim() const { return static_cast<int>(impl_->config.output_dim()); }
std::string Engine::isa() const { return std::string(IsaName(impl_->cpu->isa())); }

std::string Engine::kernels() const {
  const KernelResolution& k = impl_->cpu->kernels();
  return fmt::format("gemm_q8 {} (<= {} rows) / {} ({})", k.choice.gemm_q8_small, k.choice.small_m_max,
                     k.choice.gemm_q8_large, k.source);
}
Precision Engine::precision() const { return impl_->cpu->precision(); }
int Engine::threads() const { return impl_->cpu->threads(); }
std::string Engine::weight_type() const {
  if (impl_->weights.layers.empty()) return "none";
  return std::string(DTypeName(impl_->weights.layers[0].attn_q.dtype));
}
size_t Engine::packed_bytes() const { return impl_->cpu->packed_bytes(); }

int64_t Engine::layer_macs_per_token() const { return impl_->cpu->layer_macs_per_token(); }
const Engine::LoadTimes& Engine::load_times() const { return impl_->load_times; }

void Engine::EnableProfile(bool on) {
  std::lock_guard<std::mutex> lock(impl_->compute_mu);
  impl_->cpu->set_profile(on ? &impl_->profile : nullptr);
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

const HfPromptTable& Engine::prompt_table() const { return impl_->prompts; }
std::vector<std::string> Engine::TaskNames() const { return AvailableTaskNames(impl_->prompts); }
int Engine::max_seq_length() const { return static_cast<int>(impl_->config.context_length); }
int Engine::max_batch_tokens() const { return impl_->max_batch_tokens; }
int Engine::vocab_size() const { return impl_->tokenizer->vocab_size(); }

Result<std::string> Engine::ResolvePrompt(const EmbedOptions& options) const {
  if (!options.task.empty() && options.prompt) {
    return InvalidArgument("a task and a custom prompt cannot be used together");
  }
  if (!options.title.empty() && options.task.empty()) {
    return InvalidArgument("a title needs a task (e.g. task 'document')");
  }
  if (!options.task.empty()) return ResolveTaskPrompt(impl_->prompts, options.task, options.title);
  if (options.prompt) return *options.prompt;
  if (options.use_default_prompt && !impl_->prompts.default_prompt_name.empty()) {
    // sentence-transformers applies the folder's default prompt when none is
    // given (a GGUF converted from the folder carries it too).
    auto prefix = ResolveTaskPrompt(impl_->prompts, impl_->prompts.default_prompt_name);
    if (prefix.ok()) return prefix;
  }
  return std::string();
}

namespace {
// [BOS] prefix+text [EOS], stripped unless told not to, truncated to `ctx`
// keeping BOS and EOS.
Result<std::vector<int32_t>> TokenizeForEmbedding(const Tokenizer& tok, size_t ctx, std::string_view prefix,
                                                  std::string_view text, bool strip, bool truncate,
                                                  bool* truncated) {
  // EmbeddingGemma: <bos> prompt+text <eos>, whatever the vocabulary's flags
  // say; sentence-transformers strips prompt+text first.
  std::string input;
  input.reserve(prefix.size() + text.size());
  input.append(prefix);
  input.append(text);
  const std::string_view view = strip ? StripPythonWhitespace(input) : std::string_view(input);
  std::vector<int32_t> ids = tok.Encode(view, /*add_bos=*/true, /*add_eos=*/true);
  if (truncated) *truncated = false;
  if (ids.size() > ctx) {
    if (!truncate) {
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
}  // namespace

Result<std::vector<int32_t>> Engine::Tokenize(const std::string& text, const EmbedOptions& options,
                                              bool* truncated) const {
  GEMBED_ASSIGN_OR_RETURN(std::string prefix, ResolvePrompt(options));
  return TokenizeForEmbedding(*impl_->tokenizer, impl_->config.context_length, prefix, text, options.strip,
                              options.truncate, truncated);
}

std::vector<int32_t> Engine::TokenizeRaw(std::string_view text, bool add_special) const {
  return impl_->tokenizer->Encode(text, add_special, add_special);
}

Result<std::string> Engine::TokenText(int32_t id) const {
  if (id < 0 || id >= impl_->tokenizer->vocab_size()) {
    return OutOfRange("token id {} is outside the vocabulary [0, {})", id, impl_->tokenizer->vocab_size());
  }
  return impl_->tokenizer->Decode(std::span<const int32_t>(&id, 1));
}

namespace {
// dst[0..dim) = v[0..dim) re-normalised (double-precision sum; a zero prefix stays zero).
void NormalizePrefix(const float* v, int dim, float* dst) {
  double ss = 0.0;
  for (int i = 0; i < dim; ++i) ss += static_cast<double>(v[i]) * v[i];
  const double inv = ss > 0.0 ? 1.0 / std::sqrt(ss) : 1.0;
  for (int i = 0; i < dim; ++i) dst[i] = ss > 0.0 ? static_cast<float>(v[i] * inv) : v[i];
}

// The first `dim` components of the unit vector `v` (length `full`): copied
// as they are at the full width, else re-normalised.
void WritePrefixNormalized(const float* v, int full, int dim, float* dst) {
  if (dim >= full) {
    std::copy(v, v + full, dst);
  } else {
    NormalizePrefix(v, dim, dst);
  }
}
}  // namespace

std::vector<float> TruncateAndNormalize(const std::vector<float>& v, int dim) {
  const int n = static_cast<int>(std::min<size_t>(static_cast<size_t>(dim), v.size()));
  std::vector<float> out(static_cast<size_t>(n));
  NormalizePrefix(v.data(), n, out.data());
  return out;
}

namespace {
// Rows of a row-major [n x dim] buffer as separate vectors.
std::vector<std::vector<float>> SplitRows(const std::vector<float>& flat, size_t n, int dim) {
  std::vector<std::vector<float>> rows(n);
  for (size_t i = 0; i < n; ++i) {
    rows[i].assign(flat.begin() + static_cast<ptrdiff_t>(i * dim), flat.begin() + static_cast<ptrdiff_t>((i + 1) * dim));
  }
  return rows;
}
}  // namespace

Result<int> Engine::OutputDim(int dim) const {
  if (dim == 0) return output_dim();
  const std::vector<int> dims = SupportedDims();
  if (std::find(dims.begin(), dims.end(), dim) == dims.end()) {
    std::string allowed;
    for (int d : dims) allowed += fmt::format("{}{}", allowed.empty() ? "" : ", ", d);
    return InvalidArgument("dim {} is not supported by this model (allowed: {})", dim, allowed);
  }
  return dim;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  EngineStats s;
  s.forward_passes = impl_->passes;
  s.sequences = impl_->pass_sequences;
  s.tokens = impl_->pass_tokens;
  s.forward_seconds = impl_->pass_seconds;
  s.queued_sequences = impl_->queued_sequences;
  s.queued_tokens = impl_->queued_tokens;
  s.active_calls = impl_->active_calls;
  return s;
}

// Runs passes for every queued call until `self` is finished (mu held on
// entry and exit; released around each pass).
void Engine::Impl::LeadWhileUnfinished(Call& self, std::unique_lock<std::mutex>& lock) {
  const int full = static_cast<int>(config.output_dim());
  Batch batch;
  std::vector<std::pair<Call*, size_t>> rows;  // (call, sequence index) per batch row
  std::vector<float> out;
  while (!self.finished()) {
    // Round-robin across calls: one sequence from each in turn until the
    // token budget is full, so small calls are not stuck behind a large one.
    batch.Clear();
    rows.clear();
    for (bool took = true, full_budget = false; took && !full_budget;) {
      took = false;
      for (size_t qi = 0; qi < queue.size() && !full_budget; ++qi) {
        Call* c = queue[qi];
        if (c->next >= c->seqs.size()) continue;
        if (c->cancel != nullptr && c->cancel->load(std::memory_order_relaxed)) {
          DropLocked(*c, Cancelled("cancelled"));
          --qi;
          continue;
        }
        const std::vector<int32_t>& seq = c->seqs[c->next];
        if (batch.num_sequences() > 0 &&
            batch.num_tokens() + seq.size() > static_cast<size_t>(max_batch_tokens)) {
          full_budget = true;
          break;
        }
        batch.Add(seq);
        rows.emplace_back(c, c->next);
        ++c->next;
        ++c->in_flight;
        c->queued_tokens -= seq.size();
        queued_tokens -= seq.size();
        --queued_sequences;
        took = true;
      }
    }
    queue.erase(std::remove_if(queue.begin(), queue.end(), [](Call* c) { return c->next >= c->seqs.size(); }),
                queue.end());
    if (rows.empty()) {
      // Only a dropped call can get here with nothing in flight: then `self` is finished.
      GEMBED_CHECK(self.finished());
      break;
    }

    lock.unlock();
    Status st;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      out.resize(rows.size() * static_cast<size_t>(full));
      std::lock_guard<std::mutex> compute(compute_mu);
      st = backend->Forward(batch.token_ids, batch.cu_seqlens, out.data());
    } catch (const std::bad_alloc&) {
      st = ResourceExhausted("out of memory in a forward pass of {} tokens", batch.num_tokens());
    } catch (const std::exception& e) {
      st = Internal("forward pass failed: {}", e.what());
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (st.ok()) {
      for (size_t r = 0; r < rows.size(); ++r) {
        Call* c = rows[r].first;
        WritePrefixNormalized(out.data() + r * full, full, c->dim,
                              c->out + rows[r].second * static_cast<size_t>(c->dim));
      }
    }
    lock.lock();
    ++passes;
    pass_sequences += rows.size();
    pass_tokens += static_cast<uint64_t>(batch.num_tokens());
    pass_seconds += secs;
    for (const auto& [c, idx] : rows) {
      --c->in_flight;
      if (st.ok()) {
        ++c->done;
      } else {
        DropLocked(*c, st);
      }
    }
    cv.notify_all();
    ReportProgress(self, lock);
  }
}

Status Engine::Impl::Run(std::span<const std::vector<int32_t>> seqs, int dim, float* out,
                         const std::function<void(size_t, size_t)>& progress,
                         const std::atomic<bool>* cancel) {
  if (seqs.empty()) return Status::Ok();
  Call call;
  call.seqs = seqs;
  call.out = out;
  call.dim = dim;
  call.cancel = cancel;
  call.progress = &progress;
  for (const auto& s : seqs) call.queued_tokens += s.size();

  std::unique_lock<std::mutex> lock(mu);
  if (max_queued_tokens != 0 && queued_tokens > 0 && queued_tokens + call.queued_tokens > max_queued_tokens) {
    return ResourceExhausted("the queue is full ({} tokens waiting, limit {}); try again later", queued_tokens,
                             max_queued_tokens);
  }
  queue.push_back(&call);
  queued_tokens += call.queued_tokens;
  queued_sequences += seqs.size();
  ++active_calls;
  while (!call.finished()) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) DropLocked(call, Cancelled("cancelled"));
    if (call.finished()) break;
    if (!leading) {
      leading = true;
      LeadWhileUnfinished(call, lock);
      leading = false;
      cv.notify_all();  // another waiting caller takes over
    } else if (cancel != nullptr) {
      cv.wait_for(lock, std::chrono::milliseconds(Engine::kCancelPollMs));
    } else {
      cv.wait(lock);
    }
    ReportProgress(call, lock);
  }
  --active_calls;
  return call.error;
}

void Engine::WakeWaiters() {
  // Taking the lock orders this wake after a waiter's check of its flag.
  { std::lock_guard<std::mutex> lock(impl_->mu); }
  impl_->cv.notify_all();
}

Status Engine::EmbedTokensInto(const std::vector<std::vector<int32_t>>& seqs, int dim, float* out,
                               size_t out_floats, const std::function<void(size_t, size_t)>& progress,
                               const std::atomic<bool>* cancel) {
  GEMBED_ASSIGN_OR_RETURN(const int out_dim, OutputDim(dim));
  if (out_floats != seqs.size() * static_cast<size_t>(out_dim)) {
    return InvalidArgument("output buffer holds {} floats; {} sequences x {} dims need {}", out_floats,
                           seqs.size(), out_dim, seqs.size() * static_cast<size_t>(out_dim));
  }
  const int64_t n_vocab = static_cast<int64_t>(impl_->config.n_vocab);
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].empty() || seqs[i].size() > impl_->config.context_length) {
      return InvalidArgument("sequence {} has {} tokens; 1..{} are allowed", i, seqs[i].size(),
                             impl_->config.context_length);
    }
    for (int32_t id : seqs[i]) {
      if (id < 0 || id >= n_vocab) {
        return InvalidArgument("sequence {}: token id {} is outside the vocabulary [0, {})", i, id, n_vocab);
      }
    }
  }
  return impl_->Run(seqs, out_dim, out, progress, cancel);
}

Result<std::vector<std::vector<float>>> Engine::EmbedTokens(const std::vector<std::vector<int32_t>>& seqs,
                                                            int dim,
                                                            const std::function<void(size_t, size_t)>& progress) {
  GEMBED_ASSIGN_OR_RETURN(const int out_dim, OutputDim(dim));
  std::vector<float> flat(seqs.size() * static_cast<size_t>(out_dim));
  GEMBED_RETURN_IF_ERROR(EmbedTokensInto(seqs, dim, flat.data(), flat.size(), progress));
  return SplitRows(flat, seqs.size(), out_dim);
}

Status Engine::EmbedInto(std::span<const std::string> texts, const EmbedOptions& options, float* out,
                         size_t out_floats, EmbedReport* report) {
  GEMBED_ASSIGN_OR_RETURN(const int out_dim, OutputDim(options.dim));
  if (out_floats != texts.size() * static_cast<size_t>(out_dim)) {
    return InvalidArgument("output buffer holds {} floats; {} texts x {} dims need {}", out_floats, texts.size(),
                           out_dim, texts.size() * static_cast<size_t>(out_dim));
  }
  GEMBED_ASSIGN_OR_RETURN(const std::string prefix, ResolvePrompt(options));
  std::vector<std::vector<int32_t>> seqs(texts.size());
  EmbedReport local;
  EmbedReport& rep = report != nullptr ? *report : local;
  rep = EmbedReport{};
  rep.tokens.resize(texts.size());
  rep.truncated.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    if (options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed)) return Cancelled("cancelled");
    bool truncated = false;
    auto ids = TokenizeForEmbedding(*impl_->tokenizer, impl_->config.context_length, prefix, texts[i],
                                    options.strip, options.truncate, &truncated);
    if (!ids.ok()) {
      rep.failed_text = static_cast<int64_t>(i);
      rep.failed_reason = ids.status().message();
      return ids.status().WithContext(fmt::format("text {}", i + 1));
    }
    seqs[i] = std::move(*ids);
    rep.tokens[i] = static_cast<int32_t>(seqs[i].size());
    rep.truncated[i] = truncated ? 1 : 0;
    rep.total_tokens += seqs[i].size();
    rep.num_truncated += truncated ? 1 : 0;
  }
  return impl_->Run(seqs, out_dim, out, options.progress, options.cancel);
}

Result<std::vector<std::vector<float>>> Engine::Embed(const std::vector<std::string>& texts,
                                                      const EmbedOptions& options, EmbedReport* report) {
  GEMBED_ASSIGN_OR_RETURN(const int out_dim, OutputDim(options.dim));
  std::vector<float> flat(texts.size() * static_cast<size_t>(out_dim));
  GEMBED_RETURN_IF_ERROR(EmbedInto(texts, options, flat.data(), flat.size(), report));
  return SplitRows(flat, texts.size(), out_dim);
}

}  // namespace gembed
