// gembed C++ API: EmbeddingGemma text embeddings from C++ (C++17 or later).
//
//   #include <gembed/gembed.hpp>
//
//   gembed::Engine engine = gembed::Engine::Open("model.gguf", {.threads = 4});  // C++20 designated init
//   gembed::EmbedOptions o;
//   o.task = "query";
//   o.dim = 256;
//   std::vector<float> q = engine.EmbedOne("Which planet is known as the Red Planet?", o);
//   std::vector<std::vector<float>> d = engine.Embed({"Mars ...", "Venus ..."}, {.task = "document", .dim = 256});
//
// Header-only, over the C API of <gembed/gembed.h> (link gembed::gembed):
// the library exports C symbols only, so this header works with any C++
// compiler and standard library, and the engine's internals never meet the
// program's. Errors are thrown as gembed::Error (a std::runtime_error with the
// engine's code and message); programs built without exceptions use the C API
// directly. Ownership and threading are those of the C API: an Engine may be
// used from many threads at once (concurrent Embed calls share forward
// passes); destroy it only when no call is running. Everything returned is
// owned by the caller.
//
// The types live in an inline namespace (gembed::cxx_v0), so they are named
// gembed::Engine, gembed::EmbedOptions, ... in user code while their symbols
// stay distinct from the engine's own C++ classes.
#ifndef GEMBED_GEMBED_HPP_
#define GEMBED_GEMBED_HPP_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gembed/gembed.h"

namespace gembed {
inline namespace cxx_v0 {

// The engine's error codes (the numbers of gembed_status).
enum class ErrorCode : int {
  kOk = GEMBED_OK,
  kInvalidArgument = GEMBED_INVALID_ARGUMENT,
  kNotFound = GEMBED_NOT_FOUND,
  kIoError = GEMBED_IO_ERROR,
  kCorruptFile = GEMBED_CORRUPT_FILE,
  kUnsupported = GEMBED_UNSUPPORTED,
  kOutOfRange = GEMBED_OUT_OF_RANGE,
  kResourceExhausted = GEMBED_RESOURCE_EXHAUSTED,
  kInternal = GEMBED_INTERNAL,
  kCancelled = GEMBED_CANCELLED,
};

// What every failing call throws: what() is the engine's message, e.g.
// "invalid argument: dim 100 is not supported by this model (allowed: 768, 512, 256, 128)".
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// See gembed_open_options. Every member has a default, so C++20 designated
// initializers may name any subset: Open(path, {.threads = 4}).
struct EngineOptions {
  int threads = 0;             // compute threads; <= 0: one per hardware thread
  int max_batch_tokens = 4096; // token budget of one forward pass
  std::string isa{};           // "generic" / "avx2" / "avx512vnni"; empty: the best the CPU has
  std::string precision{};     // "fast" (default) or "high"
  size_t max_queued_tokens = 0;  // admission limit of the shared queue; 0: none
};

// See gembed_embed_options: the prompt is `prompt` verbatim if set, else the
// model's prompt for `task` (with `title` for documents), else the model's
// default prompt (unless use_default_prompt is false).
struct EmbedOptions {
  std::string task{};
  std::string title{};
  std::optional<std::string> prompt{};
  bool use_default_prompt = true;
  int dim = 0;            // Matryoshka output dim; 0: the model's full dim
  bool truncate = true;   // false: a text longer than the context is an Error
  bool strip = true;      // strip prompt+text like Python's str.strip()
  // Called on the calling thread after forward passes that finished some of
  // this call's texts, with (done, total). Return false to cancel (the call
  // then throws Error with ErrorCode::kCancelled); an exception it throws
  // cancels the call and is rethrown by it.
  std::function<bool(size_t done, size_t total)> progress{};
};

// What happened to each text of one call (input order).
struct EmbedReport {
  std::vector<int32_t> tokens{};   // tokens run per text (BOS, prompt and EOS included)
  std::vector<uint8_t> truncated{};  // 1: the text was cut to the context length
  size_t total_tokens = 0;
  size_t num_truncated = 0;
};

namespace detail {

[[noreturn]] inline void ThrowLastError() {
  const gembed_status code = gembed_last_error_code();
  throw Error(static_cast<ErrorCode>(code == GEMBED_OK ? GEMBED_INTERNAL : code), gembed_last_error_message());
}

inline void Check(gembed_status status) {
  if (status != GEMBED_OK) ThrowLastError();
}

// The C options for `o`; the strings stay owned by `o`.
inline gembed_embed_options ToC(const EmbedOptions& o) {
  gembed_embed_options c;
  gembed_embed_options_init(&c);
  c.task = o.task.c_str();
  c.title = o.title.c_str();
  c.prompt = o.prompt ? o.prompt->c_str() : nullptr;
  c.use_default_prompt = o.use_default_prompt ? 1 : 0;
  c.dim = o.dim;
  c.truncate = o.truncate ? 1 : 0;
  c.strip = o.strip ? 1 : 0;
  return c;
}

// Carries EmbedOptions::progress through the C callback; an exception it
// throws is kept here (never unwinds through the library) and rethrown.
struct Progress {
  const std::function<bool(size_t, size_t)>* fn = nullptr;
  std::exception_ptr error;

  static int Call(size_t done, size_t total, void* user) noexcept {
    auto* self = static_cast<Progress*>(user);
    try {
      return (*self->fn)(done, total) ? 0 : 1;
    } catch (...) {
      self->error = std::current_exception();
      return 1;
    }
  }
};

}  // namespace detail

// The library's version ("MAJOR.MINOR.PATCH").
inline std::string Version() { return gembed_version(); }

// An opened model (move-only). Open() throws Error; so do all calls on it.
class Engine {
 public:
  // A GGUF file or a Hugging Face sentence-transformers folder.
  static Engine Open(const std::string& path, const EngineOptions& options = {}) {
    gembed_open_options c;
    gembed_open_options_init(&c);
    c.threads = options.threads;
    c.max_batch_tokens = options.max_batch_tokens;
    c.isa = options.isa.c_str();
    c.precision = options.precision.c_str();
    c.max_queued_tokens = options.max_queued_tokens;
    gembed_engine* e = nullptr;
    detail::Check(gembed_open(path.c_str(), &c, &e));
    return Engine(e);
  }

  Engine(Engine&& other) noexcept : e_(std::exchange(other.e_, nullptr)) {}
  Engine& operator=(Engine&& other) noexcept {
    if (this != &other) {
      gembed_close(e_);
      e_ = std::exchange(other.e_, nullptr);
    }
    return *this;
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() { gembed_close(e_); }

  // Writes one unit vector of OutputDim(options.dim) floats per text into
  // `out` (row-major); out_floats must equal texts x that width.
  void EmbedInto(const std::string_view* texts, size_t n_texts, float* out, size_t out_floats,
                 const EmbedOptions& options = {}, EmbedReport* report = nullptr) {
    std::vector<const char*> ptrs(n_texts);
    std::vector<size_t> lens(n_texts);
    for (size_t i = 0; i < n_texts; ++i) {
      ptrs[i] = texts[i].data() != nullptr ? texts[i].data() : "";
      lens[i] = texts[i].size();
    }
    gembed_embed_options c = detail::ToC(options);
    detail::Progress progress;
    if (options.progress) {
      progress.fn = &options.progress;
      c.progress = &detail::Progress::Call;
      c.progress_user_data = &progress;
    }
    gembed_embed_report r{};
    if (report != nullptr) {
      report->tokens.assign(n_texts, 0);
      report->truncated.assign(n_texts, 0);
      r.tokens = report->tokens.data();
      r.truncated = report->truncated.data();
    }
    const gembed_status st = gembed_embed(e_, ptrs.data(), lens.data(), n_texts, &c, out, out_floats,
                                          report != nullptr ? &r : nullptr);
    if (progress.error) std::rethrow_exception(progress.error);
    detail::Check(st);
    if (report != nullptr) {
      report->total_tokens = r.total_tokens;
      report->num_truncated = r.num_truncated;
    }
  }
  void EmbedInto(const std::vector<std::string>& texts, float* out, size_t out_floats,
                 const EmbedOptions& options = {}, EmbedReport* report = nullptr) {
    const std::vector<std::string_view> views(texts.begin(), texts.end());
    EmbedInto(views.data(), views.size(), out, out_floats, options, report);
  }

  // All vectors in one row-major block of texts x OutputDim(options.dim) floats.
  std::vector<float> EmbedFlat(const std::vector<std::string>& texts, const EmbedOptions& options = {},
                               EmbedReport* report = nullptr) {
    std::vector<float> out(texts.size() * static_cast<size_t>(OutputDim(options.dim)));
    EmbedInto(texts, out.data(), out.size(), options, report);
    return out;
  }

  // One vector per text, in input order.
  std::vector<std::vector<float>> Embed(const std::vector<std::string>& texts, const EmbedOptions& options = {},
                                        EmbedReport* report = nullptr) {
    const size_t width = static_cast<size_t>(OutputDim(options.dim));
    const std::vector<float> flat = EmbedFlat(texts, options, report);
    std::vector<std::vector<float>> rows(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      rows[i].assign(flat.begin() + static_cast<std::ptrdiff_t>(i * width),
                     flat.begin() + static_cast<std::ptrdiff_t>((i + 1) * width));
    }
    return rows;
  }

  // The vector of one text.
  std::vector<float> EmbedOne(std::string_view text, const EmbedOptions& options = {}) {
    std::vector<float> out(static_cast<size_t>(OutputDim(options.dim)));
    EmbedInto(&text, 1, out.data(), out.size(), options);
    return out;
  }

  // The token ids Embed runs for `text` with these options ([BOS] prompt+text
  // [EOS], truncated to the context); *truncated (optional) says whether
  // tokens were dropped.
  std::vector<int32_t> Tokenize(std::string_view text, const EmbedOptions& options = {},
                                bool* truncated = nullptr) const {
    const gembed_embed_options c = detail::ToC(options);
    const char* data = text.data() != nullptr ? text.data() : "";
    size_t n = 0;
    int cut = 0;
    std::vector<int32_t> ids(256);
    gembed_status st = gembed_tokenize(e_, data, text.size(), &c, ids.data(), ids.size(), &n, &cut);
    if (st == GEMBED_OUT_OF_RANGE && n > ids.size()) {  // longer than the first guess: n is the count
      ids.resize(n);
      st = gembed_tokenize(e_, data, text.size(), &c, ids.data(), ids.size(), &n, &cut);
    }
    detail::Check(st);
    ids.resize(n);
    if (truncated != nullptr) *truncated = cut != 0;
    return ids;
  }

  // The vector width for a requested dim (0: full); Error for a dim the model lacks.
  int OutputDim(int dim = 0) const {
    int out = 0;
    detail::Check(gembed_output_dim(e_, dim, &out));
    return out;
  }
  // The Matryoshka dims the model offers, largest first.
  std::vector<int> SupportedDims() const {
    size_t n = 0;
    detail::Check(gembed_supported_dims(e_, nullptr, 0, &n));
    std::vector<int> dims(n);
    detail::Check(gembed_supported_dims(e_, dims.data(), dims.size(), &n));
    return dims;
  }
  // Tokens per text, BOS and EOS included.
  int MaxSeqLength() const { return gembed_max_seq_length(e_); }

  // The C handle, to mix with the C API (still owned by this Engine).
  gembed_engine* handle() const noexcept { return e_; }

 private:
  explicit Engine(gembed_engine* e) : e_(e) {}
  gembed_engine* e_ = nullptr;
};

}  // namespace cxx_v0
}  // namespace gembed

#endif  // GEMBED_GEMBED_HPP_
