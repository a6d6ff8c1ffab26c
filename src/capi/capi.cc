// The C API (include/gembed/gembed.h) over Engine. Every entry point is a
// thin translation: check the pointers, convert the options, call the engine,
// turn its Status into a code + thread-local message. No exception leaves
// this file: each body runs inside Guard(), which maps std::bad_alloc to
// GEMBED_RESOURCE_EXHAUSTED and anything else to GEMBED_INTERNAL.
#include "gembed/gembed.h"

#include <atomic>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/status.h"
#include "engine/engine.h"

struct gembed_engine {
  std::unique_ptr<gembed::Engine> engine;
};

namespace {

using gembed::Status;
using gembed::StatusCode;

static_assert(GEMBED_OK == static_cast<int>(StatusCode::kOk));
static_assert(GEMBED_INVALID_ARGUMENT == static_cast<int>(StatusCode::kInvalidArgument));
static_assert(GEMBED_NOT_FOUND == static_cast<int>(StatusCode::kNotFound));
static_assert(GEMBED_IO_ERROR == static_cast<int>(StatusCode::kIoError));
static_assert(GEMBED_CORRUPT_FILE == static_cast<int>(StatusCode::kCorruptFile));
static_assert(GEMBED_UNSUPPORTED == static_cast<int>(StatusCode::kUnsupported));
static_assert(GEMBED_OUT_OF_RANGE == static_cast<int>(StatusCode::kOutOfRange));
static_assert(GEMBED_RESOURCE_EXHAUSTED == static_cast<int>(StatusCode::kResourceExhausted));
static_assert(GEMBED_INTERNAL == static_cast<int>(StatusCode::kInternal));
static_assert(GEMBED_CANCELLED == static_cast<int>(StatusCode::kCancelled));

// More compute threads than this is a mistake, not a request: each is a real
// OS thread, created at open.
constexpr int kMaxThreads = 1024;

struct LastError {
  gembed_status code = GEMBED_OK;
  std::string message;
  bool message_lost = false;  // the message could not be stored (out of memory)
};
thread_local LastError t_last_error;

gembed_status SetError(gembed_status code, const char* message) noexcept {
  LastError& e = t_last_error;
  e.code = code;
  try {
    e.message = message;
    e.message_lost = false;
  } catch (...) {
    e.message_lost = true;
  }
  return code;
}

gembed_status SetError(const Status& st) noexcept {
  if (st.ok()) return SetError(GEMBED_INTERNAL, "internal error: an error without a code");
  try {
    return SetError(static_cast<gembed_status>(st.code()), st.ToString().c_str());
  } catch (...) {
    return SetError(static_cast<gembed_status>(st.code()), "");
  }
}

gembed_status Ok() noexcept {
  t_last_error.code = GEMBED_OK;
  t_last_error.message.clear();  // keeps the capacity: cannot throw
  t_last_error.message_lost = false;
  return GEMBED_OK;
}

gembed_status InvalidArgument(const char* message) noexcept {
  try {
    return SetError(GEMBED_INVALID_ARGUMENT, (std::string("invalid argument: ") + message).c_str());
  } catch (...) {
    return SetError(GEMBED_INVALID_ARGUMENT, message);
  }
}

// Runs `body` (which returns a gembed_status and records its own errors) with
// every exception turned into a status.
template <typename F>
gembed_status Guard(F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return SetError(GEMBED_RESOURCE_EXHAUSTED, "resource exhausted: out of memory");
  } catch (const std::exception& e) {
    try {
      return SetError(GEMBED_INTERNAL, (std::string("internal error: ") + e.what()).c_str());
    } catch (...) {
      return SetError(GEMBED_INTERNAL, "internal error");
    }
  } catch (...) {
    return SetError(GEMBED_INTERNAL, "internal error: unknown exception");
  }
}

std::string OrEmpty(const char* s) { return s != nullptr ? std::string(s) : std::string(); }

// The engine's EmbedOptions for `o` (defaults when NULL). `cancel` is the flag
// the progress adapter sets when the caller's callback asks to stop.
gembed::EmbedOptions ToEmbedOptions(const gembed_embed_options* o, std::atomic<bool>* cancel) {
  gembed::EmbedOptions opts;
  if (o == nullptr) return opts;
  opts.task = OrEmpty(o->task);
  opts.title = OrEmpty(o->title);
  if (o->prompt != nullptr) opts.prompt = std::string(o->prompt);
  opts.use_default_prompt = o->use_default_prompt != 0;
  opts.dim = o->dim;
  opts.truncate = o->truncate != 0;
  opts.strip = o->strip != 0;
  if (o->progress != nullptr && cancel != nullptr) {
    const gembed_progress_fn fn = o->progress;
    void* user = o->progress_user_data;
    opts.progress = [fn, user, cancel](size_t done, size_t total) {
      int stop = 0;
      try {
        stop = fn(done, total, user);
      } catch (...) {  // a C++ callback broke the contract: stop rather than unwind the engine
        stop = 1;
      }
      if (stop != 0) cancel->store(true, std::memory_order_relaxed);
    };
    opts.cancel = cancel;
  }
  return opts;
}

}  // namespace

extern "C" {

const char* gembed_version(void) { return GEMBED_VERSION_STRING; }

const char* gembed_status_name(gembed_status code) {
  const int c = static_cast<int>(code);
  if (c < GEMBED_OK || c > GEMBED_CANCELLED) return "unknown";
  return gembed::StatusCodeName(static_cast<StatusCode>(c));
}

gembed_status gembed_last_error_code(void) { return t_last_error.code; }

const char* gembed_last_error_message(void) {
  const LastError& e = t_last_error;
  if (e.message_lost) return "out of memory (the error message could not be stored)";
  return e.message.c_str();
}

void gembed_open_options_init(gembed_open_options* options) {
  if (options == nullptr) return;
  *options = gembed_open_options{};
  options->threads = 0;
  options->max_batch_tokens = gembed::EngineOptions{}.max_batch_tokens;
  options->isa = nullptr;
  options->precision = nullptr;
  options->max_queued_tokens = 0;
}

gembed_status gembed_open(const char* path, const gembed_open_options* options, gembed_engine** out) {
  return Guard([&]() -> gembed_status {
    if (out == nullptr) return InvalidArgument("gembed_open: out is NULL");
    *out = nullptr;
    if (path == nullptr) return InvalidArgument("gembed_open: path is NULL");
    if (path[0] == '\0') return InvalidArgument("gembed_open: path is empty");
    gembed::EngineOptions eopts;
    if (options != nullptr) {
      if (options->threads > kMaxThreads) {
        return SetError(gembed::InvalidArgument("threads = {} is more than {} (use 0 for one per hardware thread)",
                                                options->threads, kMaxThreads));
      }
      eopts.threads = options->threads;
      if (options->max_batch_tokens > 0) eopts.max_batch_tokens = options->max_batch_tokens;
      eopts.isa = OrEmpty(options->isa);
      if (options->precision != nullptr && options->precision[0] != '\0') {
        const auto p = gembed::PrecisionFromName(options->precision);
        if (!p) {
          return SetError(gembed::InvalidArgument("unknown precision '{}' (fast, high)", options->precision));
        }
        eopts.precision = *p;
      }
      eopts.max_queued_tokens = options->max_queued_tokens;
    }
    auto engine = gembed::Engine::Open(path, eopts);
    if (!engine.ok()) return SetError(engine.status());
    auto handle = std::make_unique<gembed_engine>();
    handle->engine = std::move(*engine);
    *out = handle.release();
    return Ok();
  });
}

void gembed_close(gembed_engine* engine) {
  try {
    delete engine;
  } catch (...) {  // a destructor that throws would be a bug; never let it cross into C
  }
}

void gembed_embed_options_init(gembed_embed_options* options) {
  if (options == nullptr) return;
  *options = gembed_embed_options{};
  options->task = nullptr;
  options->title = nullptr;
  options->prompt = nullptr;
  options->use_default_prompt = 1;
  options->dim = 0;
  options->truncate = 1;
  options->strip = 1;
  options->progress = nullptr;
  options->progress_user_data = nullptr;
}

gembed_status gembed_embed(gembed_engine* engine, const char* const* texts, const size_t* lengths, size_t n_texts,
                           const gembed_embed_options* options, float* out, size_t out_floats,
                           gembed_embed_report* report) {
  return Guard([&]() -> gembed_status {
    if (engine == nullptr) return InvalidArgument("gembed_embed: engine is NULL");
    if (n_texts > 0 && texts == nullptr) return InvalidArgument("gembed_embed: texts is NULL");
    gembed::Engine& e = *engine->engine;
    // Check the output size before copying any text.
    auto d = e.OutputDim(options != nullptr ? options->dim : 0);
    if (!d.ok()) return SetError(d.status());
    const size_t width = static_cast<size_t>(*d);
    if (n_texts > std::numeric_limits<size_t>::max() / width || out_floats != n_texts * width) {
      return SetError(gembed::InvalidArgument("output buffer holds {} floats; {} texts x {} dims need {}",
                                              out_floats, n_texts, width, n_texts * width));
    }
    if (out == nullptr && out_floats > 0) return InvalidArgument("gembed_embed: out is NULL");
    std::vector<std::string> copies(n_texts);
    for (size_t i = 0; i < n_texts; ++i) {
      if (texts[i] == nullptr) {
        return SetError(gembed::InvalidArgument("gembed_embed: texts[{}] is NULL", i));
      }
      copies[i].assign(texts[i], lengths != nullptr ? lengths[i] : std::strlen(texts[i]));
    }
    std::atomic<bool> cancel{false};
    const gembed::EmbedOptions opts = ToEmbedOptions(options, &cancel);
    gembed::EmbedReport rep;
    const Status st = e.EmbedInto(copies, opts, out, out_floats, report != nullptr ? &rep : nullptr);
    if (!st.ok()) return SetError(st);
    if (report != nullptr) {
      for (size_t i = 0; i < n_texts; ++i) {
        if (report->tokens != nullptr) report->tokens[i] = rep.tokens[i];
        if (report->truncated != nullptr) report->truncated[i] = rep.truncated[i];
      }
      report->total_tokens = rep.total_tokens;
      report->num_truncated = rep.num_truncated;
    }
    return Ok();
  });
}

gembed_status gembed_tokenize(gembed_engine* engine, const char* text, size_t length,
                              const gembed_embed_options* options, int32_t* ids, size_t capacity, size_t* n_ids,
                              int* truncated) {
  return Guard([&]() -> gembed_status {
    if (engine == nullptr) return InvalidArgument("gembed_tokenize: engine is NULL");
    if (text == nullptr) return InvalidArgument("gembed_tokenize: text is NULL");
    if (n_ids == nullptr) return InvalidArgument("gembed_tokenize: n_ids is NULL");
    if (ids == nullptr && capacity > 0) return InvalidArgument("gembed_tokenize: ids is NULL");
    *n_ids = 0;
    const std::string copy(text, length == GEMBED_NUL_TERMINATED ? std::strlen(text) : length);
    bool cut = false;
    auto tokens = engine->engine->Tokenize(copy, ToEmbedOptions(options, nullptr), &cut);
    if (!tokens.ok()) return SetError(tokens.status());
    *n_ids = tokens->size();
    if (truncated != nullptr) *truncated = cut ? 1 : 0;
    if (ids == nullptr && capacity == 0) return Ok();
    if (capacity < tokens->size()) {
      return SetError(gembed::OutOfRange("the text has {} tokens; the buffer holds {}", tokens->size(), capacity));
    }
    std::memcpy(ids, tokens->data(), tokens->size() * sizeof(int32_t));
    return Ok();
  });
}

gembed_status gembed_output_dim(const gembed_engine* engine, int dim, int* out) {
  return Guard([&]() -> gembed_status {
    if (engine == nullptr) return InvalidArgument("gembed_output_dim: engine is NULL");
    if (out == nullptr) return InvalidArgument("gembed_output_dim: out is NULL");
    auto d = engine->engine->OutputDim(dim);
    if (!d.ok()) return SetError(d.status());
    *out = *d;
    return Ok();
  });
}

gembed_status gembed_supported_dims(const gembed_engine* engine, int* dims, size_t capacity, size_t* n_dims) {
  return Guard([&]() -> gembed_status {
    if (engine == nullptr) return InvalidArgument("gembed_supported_dims: engine is NULL");
    if (n_dims == nullptr) return InvalidArgument("gembed_supported_dims: n_dims is NULL");
    if (dims == nullptr && capacity > 0) return InvalidArgument("gembed_supported_dims: dims is NULL");
    const std::vector<int> all = engine->engine->SupportedDims();
    *n_dims = all.size();
    if (dims == nullptr && capacity == 0) return Ok();
    if (capacity < all.size()) {
      return SetError(gembed::OutOfRange("the model has {} dims; the buffer holds {}", all.size(), capacity));
    }
    for (size_t i = 0; i < all.size(); ++i) dims[i] = all[i];
    return Ok();
  });
}

int gembed_max_seq_length(const gembed_engine* engine) {
  return engine != nullptr ? engine->engine->max_seq_length() : 0;
}

void gembed_set_log_level(int level) {
  if (level < static_cast<int>(gembed::LogLevel::kDebug)) level = static_cast<int>(gembed::LogLevel::kDebug);
  if (level > static_cast<int>(gembed::LogLevel::kSilent)) level = static_cast<int>(gembed::LogLevel::kSilent);
  gembed::SetLogLevel(static_cast<gembed::LogLevel>(level));
}

void gembed_set_log_callback(gembed_log_fn fn, void* user_data) {
  try {
    if (fn == nullptr) {
      gembed::SetLogCallback(nullptr);
      return;
    }
    gembed::SetLogCallback([fn, user_data](gembed::LogLevel level, const std::string& message) {
      try {
        fn(static_cast<int>(level), message.c_str(), user_data);
      } catch (...) {  // a C++ callback broke the contract: drop the message
      }
    });
  } catch (...) {  // out of memory storing the callback: keep the previous one
  }
}

}  // extern "C"
