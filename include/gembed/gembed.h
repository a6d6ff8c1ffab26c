/* gembed C API: EmbeddingGemma text embeddings from C and from any language
 * with a C foreign-function interface (Go cgo, Rust, C# P/Invoke, ...).
 *
 *   #include <gembed/gembed.h>
 *
 *   gembed_engine* e = NULL;
 *   if (gembed_open("model.gguf", NULL, &e) != GEMBED_OK) {
 *     fprintf(stderr, "%s\n", gembed_last_error_message());
 *     return 1;
 *   }
 *   gembed_embed_options o;
 *   gembed_embed_options_init(&o);
 *   o.task = "query";
 *   o.dim = 256;
 *   const char* texts[] = {"Which planet is known as the Red Planet?"};
 *   float v[256];
 *   if (gembed_embed(e, texts, NULL, 1, &o, v, 256, NULL) != GEMBED_OK) { ... }
 *   gembed_close(e);
 *
 * Link with the `gembed` library (CMake: find_package(gembed) and
 * target_link_libraries(app gembed::gembed)).
 *
 * ERRORS. Every function that can fail returns a gembed_status. On failure it
 * also records the code and a message in a per-thread "last error"
 * (gembed_last_error_code / gembed_last_error_message); on success it resets
 * that record to GEMBED_OK / "". No C++ exception, abort or signal is used to
 * report bad input: a wrong path, a corrupt file, a bad dim or task, a NULL
 * where a pointer is required, a buffer of the wrong size all come back as a
 * status. Output buffers are left unspecified after a failure.
 *
 * OWNERSHIP. Everything passed in (paths, texts, options, buffers) is
 * borrowed only for the duration of the call. Buffers written by the library
 * are allocated by the caller. A gembed_engine is owned by the caller and
 * released with gembed_close. Strings returned by the library are owned by
 * it: gembed_version() is static; gembed_last_error_message() stays valid
 * until the next gembed_* call on the same thread.
 *
 * THREADING. One engine may be used from any number of threads at once:
 * gembed_embed calls running concurrently share forward passes (their texts
 * are batched together), and gembed_tokenize and the queries may run beside
 * them. gembed_close must not run concurrently with any other call on the
 * same engine. The last-error record is thread-local. Callbacks (progress,
 * log) run on the calling thread (progress) or on whichever thread logs
 * (log); they must not throw or longjmp out.
 *
 * TEXTS are UTF-8 byte strings (invalid UTF-8 and NUL bytes are accepted and
 * tokenised byte by byte). Pass `lengths` to give each text's byte count, or
 * NULL to use strlen.
 *
 * ABI. The option structs may gain fields in a later version (with a new
 * library soname): fill them with the matching *_init function first, then
 * set the fields you need.
 */
#ifndef GEMBED_GEMBED_H_
#define GEMBED_GEMBED_H_

#include <stddef.h>
#include <stdint.h>

#include "gembed/version.h"

#if defined(_WIN32)
#if defined(GEMBED_BUILDING_LIBRARY)
#define GEMBED_API __declspec(dllexport)
#else
#define GEMBED_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define GEMBED_API __attribute__((visibility("default")))
#else
#define GEMBED_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (the same numbers as the engine's internal StatusCode). */
typedef enum gembed_status {
  GEMBED_OK = 0,
  GEMBED_INVALID_ARGUMENT = 1,   /* bad argument: dim, task, NULL pointer, buffer size, too-long text */
  GEMBED_NOT_FOUND = 2,          /* missing file, key or tensor */
  GEMBED_IO_ERROR = 3,           /* open/read/mmap failed */
  GEMBED_CORRUPT_FILE = 4,       /* a file breaks its format's rules */
  GEMBED_UNSUPPORTED = 5,        /* valid but not handled (dtype, architecture, ...) */
  GEMBED_OUT_OF_RANGE = 6,       /* a size or index past a limit (e.g. a too-small token buffer) */
  GEMBED_RESOURCE_EXHAUSTED = 7, /* out of memory, or the engine's queue limit was reached */
  GEMBED_INTERNAL = 8,           /* a bug: please report it with the message */
  GEMBED_CANCELLED = 9           /* the progress callback asked to stop */
} gembed_status;

/* An opened model. Opaque; create with gembed_open, release with gembed_close. */
typedef struct gembed_engine gembed_engine;

/* The library's version, "MAJOR.MINOR.PATCH" (static storage). Compare with
 * GEMBED_VERSION_STRING from gembed/version.h to detect a header/library mismatch. */
GEMBED_API const char* gembed_version(void);

/* A short name for a status code ("ok", "invalid argument", ...; static storage). */
GEMBED_API const char* gembed_status_name(gembed_status code);

/* The last error of this thread: GEMBED_OK and "" after a successful call. */
GEMBED_API gembed_status gembed_last_error_code(void);
GEMBED_API const char* gembed_last_error_message(void);

/* ---- opening a model ------------------------------------------------- */

typedef struct gembed_open_options {
  int threads;              /* compute threads; <= 0: one per hardware thread (default 0; at most 1024) */
  int max_batch_tokens;     /* token budget of one forward pass; <= 0: 4096 (default); raised to the context length */
  const char* isa;          /* kernel level "generic" / "avx2" / "avx512vnni"; NULL or "": the best the CPU has
                               (or the GEMBED_ISA environment variable); an unknown or unsupported level is
                               logged as a warning and the best one is used */
  const char* precision;    /* "fast" (int8 activations, default) or "high" (fp32 activations); NULL: "fast" */
  size_t max_queued_tokens; /* admission limit of the shared queue, in tokens; 0: none (default) */
} gembed_open_options;

GEMBED_API void gembed_open_options_init(gembed_open_options* options);

/* Opens a GGUF file or a Hugging Face sentence-transformers folder.
 * `options` may be NULL (defaults). On success *out is a new engine; on
 * failure *out is NULL. */
GEMBED_API gembed_status gembed_open(const char* path, const gembed_open_options* options, gembed_engine** out);

/* Releases an engine (NULL is allowed and does nothing). */
GEMBED_API void gembed_close(gembed_engine* engine);

/* ---- embedding -------------------------------------------------------- */

/* Called after forward passes that finished some of this call's texts, with
 * (texts done, texts total). Return 0 to continue, non-zero to cancel: texts
 * not yet in a forward pass are dropped and the call returns GEMBED_CANCELLED. */
typedef int (*gembed_progress_fn)(size_t done, size_t total, void* user_data);

/* How texts become vectors. The prompt prepended to each text is:
 *   prompt != NULL      -> that prefix verbatim (a custom prompt, "" allowed);
 *   task non-empty      -> the model's prompt for that task name ("query",
 *                          "document" (with `title`), "similarity", ... and the
 *                          names in the model's own prompt table);
 *   neither             -> the model's default prompt if it has one and
 *                          use_default_prompt is non-zero, else none.
 * Setting both task and prompt, or title without task, is GEMBED_INVALID_ARGUMENT. */
typedef struct gembed_embed_options {
  const char* task;          /* NULL or "": no task */
  const char* title;         /* document title (with task "document"); NULL or "": none */
  const char* prompt;        /* custom prefix; NULL: none */
  int use_default_prompt;    /* default 1 */
  int dim;                   /* Matryoshka output dim (768, 512, 256, 128 for EmbeddingGemma); 0: full (default) */
  int truncate;              /* 1 (default): texts longer than the context are cut (BOS/EOS kept);
                                0: such a text is GEMBED_INVALID_ARGUMENT */
  int strip;                 /* 1 (default): strip leading/trailing whitespace of prompt+text like
                                Python's str.strip() (sentence-transformers); 0: embed as given */
  gembed_progress_fn progress; /* NULL: none (default) */
  void* progress_user_data;
} gembed_embed_options;

GEMBED_API void gembed_embed_options_init(gembed_embed_options* options);

/* What happened to each text (optional output of gembed_embed). Set `tokens`
 * and/or `truncated` to caller arrays of n_texts entries to receive per-text
 * values, or leave them NULL. */
typedef struct gembed_embed_report {
  int32_t* tokens;      /* in: NULL or n_texts entries; out: tokens run per text (BOS, prompt, EOS included) */
  uint8_t* truncated;   /* in: NULL or n_texts entries; out: 1 if the text was cut to the context length */
  size_t total_tokens;  /* out */
  size_t num_truncated; /* out */
} gembed_embed_report;

/* Embeds n_texts texts into `out`, row-major: text i's unit-length vector is
 * out[i * d .. i * d + d), d = the output dim for options->dim (see
 * gembed_output_dim). out_floats must equal n_texts * d. `lengths` may be
 * NULL (NUL-terminated texts); `options` may be NULL (defaults); `report` may
 * be NULL. n_texts == 0 is a successful no-op. Nothing is returned partially:
 * on failure the contents of `out` are unspecified. */
GEMBED_API gembed_status gembed_embed(gembed_engine* engine, const char* const* texts, const size_t* lengths,
                                      size_t n_texts, const gembed_embed_options* options, float* out,
                                      size_t out_floats, gembed_embed_report* report);

/* ---- tokenizing and queries ------------------------------------------- */

#define GEMBED_NUL_TERMINATED ((size_t)-1)

/* The token ids gembed_embed runs for one text with these options:
 * [BOS] prompt+text [EOS], truncated to the context length (keeping BOS and
 * EOS). `length` is the text's byte count, or GEMBED_NUL_TERMINATED for strlen.
 * *n_ids receives the number of ids. When `capacity` is smaller than that,
 * nothing is written and the call returns GEMBED_OUT_OF_RANGE (ids == NULL
 * with capacity 0 asks for the count alone and returns GEMBED_OK).
 * `truncated` (may be NULL) receives 1 if tokens were dropped. */
GEMBED_API gembed_status gembed_tokenize(gembed_engine* engine, const char* text, size_t length,
                                         const gembed_embed_options* options, int32_t* ids, size_t capacity,
                                         size_t* n_ids, int* truncated);

/* The width of the vectors for a requested dim (0: the model's full dim) in
 * *out, or GEMBED_INVALID_ARGUMENT naming the dims the model supports. */
GEMBED_API gembed_status gembed_output_dim(const gembed_engine* engine, int dim, int* out);

/* The Matryoshka dims the model offers, largest first (full dim, then 512,
 * 256, 128 below it). *n_dims receives their count; when `capacity` is too
 * small nothing is written and the call returns GEMBED_OUT_OF_RANGE. */
GEMBED_API gembed_status gembed_supported_dims(const gembed_engine* engine, int* dims, size_t capacity,
                                               size_t* n_dims);

/* Tokens per text, BOS and EOS included (2,048 for EmbeddingGemma), or 0 when
 * engine is NULL. */
GEMBED_API int gembed_max_seq_length(const gembed_engine* engine);

/* ---- logging ------------------------------------------------------------ */

/* Process-wide: messages below `level` (0 debug, 1 info (default), 2 warning,
 * 3 error, 4 silent) are dropped. */
GEMBED_API void gembed_set_log_level(int level);

/* Process-wide: route log messages to `fn` instead of stderr (NULL restores
 * stderr). `fn` may be called from any thread, one message at a time. */
typedef void (*gembed_log_fn)(int level, const char* message, void* user_data);
GEMBED_API void gembed_set_log_callback(gembed_log_fn fn, void* user_data);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* GEMBED_GEMBED_H_ */
