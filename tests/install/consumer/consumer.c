/* A C99 program on the installed <gembed/gembed.h>.
 *
 *   consumer_c embed MODEL TEXTS OUT [TASK [DIM]]
 *       embeds the lines of TEXTS (TASK "" = none, DIM 0 = full) and writes
 *       the vectors to OUT as raw float32, row-major;
 *   consumer_c checks MODEL
 *       the error paths, tokenize, reports, cancellation, logging, and
 *       concurrent calls from 4 threads on one engine.
 * Exit 0 when every check holds; each failure is printed. */
#define _POSIX_C_SOURCE 200809L

#include <gembed/gembed.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_checks = 0;
static int g_failures = 0;

#define EXPECT(cond, what)                                                                    \
  do {                                                                                        \
    ++g_checks;                                                                               \
    if (!(cond)) {                                                                            \
      ++g_failures;                                                                           \
      fprintf(stderr, "FAIL %s:%d: %s (%s); last error: %d %s\n", __FILE__, __LINE__, #cond, \
              what, (int)gembed_last_error_code(), gembed_last_error_message());              \
    }                                                                                         \
  } while (0)

static int Contains(const char* haystack, const char* needle) { return strstr(haystack, needle) != NULL; }

/* ---- embed mode ------------------------------------------------------- */

typedef struct Lines {
  char* data;
  const char** texts;
  size_t* lengths;
  size_t n;
} Lines;

/* The lines of a file ('\n' ends a line; a final line without one counts). */
static int ReadLines(const char* path, Lines* out) {
  FILE* f = fopen(path, "rb");
  long size;
  size_t i, start, n = 0;
  memset(out, 0, sizeof *out);
  if (f == NULL) return 0;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  out->data = (char*)malloc((size_t)size + 1);
  if (out->data == NULL || fread(out->data, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    return 0;
  }
  fclose(f);
  for (i = 0; i < (size_t)size; ++i) n += out->data[i] == '\n';
  if (size > 0 && out->data[size - 1] != '\n') ++n;
  out->texts = (const char**)calloc(n + 1, sizeof(char*));
  out->lengths = (size_t*)calloc(n + 1, sizeof(size_t));
  for (i = 0, start = 0; i <= (size_t)size && out->n < n; ++i) {
    if (i == (size_t)size || out->data[i] == '\n') {
      out->texts[out->n] = out->data + start;
      out->lengths[out->n] = i - start;
      ++out->n;
      start = i + 1;
    }
  }
  return 1;
}

static int RunEmbed(const char* model, const char* texts_path, const char* out_path, const char* task, int dim) {
  gembed_engine* e = NULL;
  gembed_embed_options o;
  Lines lines;
  int width = 0;
  float* out;
  FILE* f;
  if (!ReadLines(texts_path, &lines)) {
    fprintf(stderr, "cannot read %s\n", texts_path);
    return 1;
  }
  if (gembed_open(model, NULL, &e) != GEMBED_OK) {
    fprintf(stderr, "open: %s\n", gembed_last_error_message());
    return 1;
  }
  gembed_embed_options_init(&o);
  o.task = task;
  o.dim = dim;
  if (gembed_output_dim(e, dim, &width) != GEMBED_OK) {
    fprintf(stderr, "output_dim: %s\n", gembed_last_error_message());
    return 1;
  }
  out = (float*)malloc(lines.n * (size_t)width * sizeof(float) + 1);
  if (gembed_embed(e, lines.texts, lines.lengths, lines.n, &o, out, lines.n * (size_t)width, NULL) != GEMBED_OK) {
    fprintf(stderr, "embed: %s\n", gembed_last_error_message());
    return 1;
  }
  f = fopen(out_path, "wb");
  if (f == NULL || fwrite(out, sizeof(float), lines.n * (size_t)width, f) != lines.n * (size_t)width) return 1;
  fclose(f);
  printf("%zu %d\n", lines.n, width);
  gembed_close(e);
  free(out);
  free(lines.texts);
  free(lines.lengths);
  free(lines.data);
  return 0;
}

/* ---- checks mode ------------------------------------------------------ */

static int CancelAfterFirst(size_t done, size_t total, void* user) {
  int* calls = (int*)user;
  (void)done;
  (void)total;
  ++*calls;
  return 1;
}

typedef struct LogCapture {
  int warnings;
  int isa_warnings; /* warnings that name the requested ISA */
} LogCapture;

static void CaptureLog(int level, const char* message, void* user) {
  LogCapture* c = (LogCapture*)user;
  if (level == 2) {
    ++c->warnings;
    if (Contains(message, "bogus-isa")) ++c->isa_warnings;
  }
}

#define kThreads 4
#define kCallsPerThread 5
#define kTexts 3
static const char* const kThreadTexts[kTexts] = {"alpha beta", "the quick brown fox", ""};

typedef struct ThreadArg {
  gembed_engine* engine;
  const float* expected;
  int width;
  int mismatches;
  int errors;
  gembed_status bad_dim_status; /* a failure on this thread... */
  gembed_status after_code;     /* ...and the code this thread sees after a later success */
} ThreadArg;

static void* EmbedLoop(void* p) {
  ThreadArg* a = (ThreadArg*)p;
  float out[kTexts * 512];
  gembed_embed_options o;
  int i;
  gembed_embed_options_init(&o);
  o.dim = 100;
  a->bad_dim_status = gembed_embed(a->engine, kThreadTexts, NULL, kTexts, &o, out, kTexts * 100, NULL);
  o.dim = 0;
  for (i = 0; i < kCallsPerThread; ++i) {
    if (gembed_embed(a->engine, kThreadTexts, NULL, kTexts, &o, out, kTexts * (size_t)a->width, NULL) !=
        GEMBED_OK) {
      ++a->errors;
      continue;
    }
    if (memcmp(out, a->expected, kTexts * (size_t)a->width * sizeof(float)) != 0) ++a->mismatches;
  }
  a->after_code = gembed_last_error_code();
  return NULL;
}

static int RunChecks(const char* model) {
  gembed_engine* e = NULL;
  gembed_open_options oo;
  gembed_embed_options o;
  gembed_embed_report report;
  gembed_status st;
  int width = 0, dims[8], calls = 0, truncated = -1, t;
  size_t n = 0, n_dims = 0, i;
  int32_t ids[64], tokens[8];
  uint8_t cut[8];
  float out[8 * 512];
  const char* texts[2] = {"hello world", "zebra"};
  const char* null_text[2] = {"hello", NULL};
  char* long_text;
  LogCapture log;
  pthread_t threads[kThreads];
  ThreadArg args[kThreads];
  float expected[kTexts * 512];

  EXPECT(strcmp(gembed_version(), GEMBED_VERSION_STRING) == 0, "library and header versions agree");
  EXPECT(strcmp(gembed_status_name(GEMBED_NOT_FOUND), "not found") == 0, "status names");
  EXPECT(strcmp(gembed_status_name((gembed_status)99), "unknown") == 0, "unknown status name");

  /* Opening: bad path, NULLs, bad options. */
  e = (gembed_engine*)&width; /* must be reset to NULL on failure */
  st = gembed_open("/nonexistent-dir/model.gguf", NULL, &e);
  EXPECT(st == GEMBED_NOT_FOUND || st == GEMBED_IO_ERROR, "a missing file is not-found / io error");
  EXPECT(e == NULL, "*out is NULL after a failed open");
  EXPECT(gembed_last_error_code() == st, "last error code = returned code");
  EXPECT(Contains(gembed_last_error_message(), "/nonexistent-dir/model.gguf"), "the message names the path");
  EXPECT(gembed_open(NULL, NULL, &e) == GEMBED_INVALID_ARGUMENT, "NULL path");
  EXPECT(gembed_open(model, NULL, NULL) == GEMBED_INVALID_ARGUMENT, "NULL out");
  gembed_open_options_init(&oo);
  oo.precision = "bogus";
  EXPECT(gembed_open(model, &oo, &e) == GEMBED_INVALID_ARGUMENT, "unknown precision");
  EXPECT(Contains(gembed_last_error_message(), "bogus"), "the message names the precision");
  gembed_open_options_init(&oo);
  oo.threads = 1000000;
  EXPECT(gembed_open(model, &oo, &e) == GEMBED_INVALID_ARGUMENT, "absurd thread count");

  /* An unknown ISA is a warning (the engine falls back), routed to the log callback. */
  memset(&log, 0, sizeof log);
  gembed_set_log_callback(CaptureLog, &log);
  gembed_open_options_init(&oo);
  oo.threads = 2;
  oo.isa = "bogus-isa";
  oo.max_batch_tokens = 1; /* raised to the context length: one long text per pass */
  st = gembed_open(model, &oo, &e);
  gembed_set_log_callback(NULL, NULL);
  EXPECT(st == GEMBED_OK, "open with a fallback ISA");
  EXPECT(log.isa_warnings == 1, "the ISA warning went to the callback");
  EXPECT(gembed_last_error_code() == GEMBED_OK && gembed_last_error_message()[0] == '\0',
         "success resets the last error");
  if (st != GEMBED_OK) return 1;

  /* Queries. */
  EXPECT(gembed_output_dim(e, 0, &width) == GEMBED_OK && width > 0, "full output dim");
  EXPECT(gembed_supported_dims(e, NULL, 0, &n_dims) == GEMBED_OK && n_dims >= 1, "dim count");
  EXPECT(gembed_supported_dims(e, dims, 8, &n_dims) == GEMBED_OK && dims[0] == width, "dims, full first");
  EXPECT(gembed_supported_dims(e, dims, 0, &n_dims) == GEMBED_OUT_OF_RANGE, "dims buffer too small");
  EXPECT(gembed_output_dim(e, 100, &t) == GEMBED_INVALID_ARGUMENT, "dim 100 is refused");
  EXPECT(Contains(gembed_last_error_message(), "dim 100"), "the message names the dim");
  EXPECT(gembed_max_seq_length(e) >= 2 && gembed_max_seq_length(NULL) == 0, "max_seq_length");

  /* Embedding: bad dim, buffer size, NULLs, task/prompt conflicts. */
  gembed_embed_options_init(&o);
  o.dim = 100;
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, out, 200, NULL) == GEMBED_INVALID_ARGUMENT, "bad dim");
  EXPECT(Contains(gembed_last_error_message(), "allowed"), "the message lists the allowed dims");
  o.dim = 0;
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, out, 2 * (size_t)width - 1, NULL) == GEMBED_INVALID_ARGUMENT,
         "buffer one float short");
  EXPECT(gembed_embed(NULL, texts, NULL, 2, &o, out, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "NULL engine");
  EXPECT(gembed_embed(e, NULL, NULL, 2, &o, out, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "NULL texts");
  EXPECT(gembed_embed(e, null_text, NULL, 2, &o, out, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "a NULL text");
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, NULL, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "NULL out");
  EXPECT(gembed_embed(e, NULL, NULL, 0, &o, NULL, 0, NULL) == GEMBED_OK, "no texts is a no-op");
  o.task = "query";
  o.prompt = "custom: ";
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, out, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "task and prompt together");
  o.task = "no-such-task";
  o.prompt = NULL;
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, out, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "unknown task");
  EXPECT(Contains(gembed_last_error_message(), "no-such-task"), "the message names the task");

  /* A report, and a text longer than the context: cut, or refused with truncate = 0. */
  long_text = (char*)malloc(6 * 3000 + 1);
  for (i = 0; i < 3000; ++i) memcpy(long_text + 6 * i, "zebra ", 6);
  long_text[6 * 3000] = '\0';
  texts[1] = long_text;
  gembed_embed_options_init(&o);
  memset(&report, 0, sizeof report);
  report.tokens = tokens;
  report.truncated = cut;
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, out, 2 * (size_t)width, &report) == GEMBED_OK, "embed with a report");
  EXPECT(cut[0] == 0 && cut[1] == 1 && report.num_truncated == 1, "the long text is reported truncated");
  EXPECT(tokens[1] == gembed_max_seq_length(e), "cut to the context length");
  EXPECT(report.total_tokens == (size_t)tokens[0] + (size_t)tokens[1], "total tokens");
  o.truncate = 0;
  EXPECT(gembed_embed(e, texts, NULL, 2, &o, out, 2 * (size_t)width, NULL) == GEMBED_INVALID_ARGUMENT,
         "truncate = 0 refuses the long text");
  texts[1] = "zebra";

  /* Tokenize: count query, too small, exact; the same tokens the report counts. */
  gembed_embed_options_init(&o);
  EXPECT(gembed_tokenize(e, "hello world", GEMBED_NUL_TERMINATED, &o, NULL, 0, &n, &truncated) == GEMBED_OK &&
             n == (size_t)tokens[0],
         "token count = the report's");
  EXPECT(gembed_tokenize(e, "hello world", 11, &o, ids, n - 1, &n, NULL) == GEMBED_OUT_OF_RANGE, "buffer too small");
  EXPECT(n == (size_t)tokens[0], "n_ids says what is needed");
  EXPECT(gembed_tokenize(e, "hello world", 11, &o, ids, 64, &n, &truncated) == GEMBED_OK && truncated == 0,
         "tokenize");
  EXPECT(ids[0] == 2 && ids[n - 1] == 1, "BOS first, EOS last");
  EXPECT(gembed_tokenize(e, long_text, GEMBED_NUL_TERMINATED, &o, NULL, 0, &n, &truncated) == GEMBED_OK &&
             truncated == 1 && n == (size_t)gembed_max_seq_length(e),
         "tokenize reports truncation");
  EXPECT(gembed_tokenize(e, NULL, 0, &o, ids, 64, &n, NULL) == GEMBED_INVALID_ARGUMENT, "NULL text");

  /* Cancellation: the progress callback returns non-zero after the first pass. */
  {
    const char* many[6];
    for (i = 0; i < 6; ++i) many[i] = long_text; /* 6 full-context texts: 6 passes */
    gembed_embed_options_init(&o);
    o.progress = CancelAfterFirst;
    o.progress_user_data = &calls;
    st = gembed_embed(e, many, NULL, 6, &o, out, 6 * (size_t)width, NULL);
    EXPECT(st == GEMBED_CANCELLED && calls == 1, "progress returning 1 cancels");
  }
  free(long_text);

  /* 4 threads x 5 calls on one engine give the serial vectors bit for bit, and
   * an error on one thread is not seen by another. */
  gembed_embed_options_init(&o);
  EXPECT(gembed_embed(e, kThreadTexts, NULL, kTexts, &o, expected, kTexts * (size_t)width, NULL) == GEMBED_OK,
         "serial reference");
  for (t = 0; t < kThreads; ++t) {
    memset(&args[t], 0, sizeof args[t]);
    args[t].engine = e;
    args[t].expected = expected;
    args[t].width = width;
    pthread_create(&threads[t], NULL, EmbedLoop, &args[t]);
  }
  for (t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  for (t = 0; t < kThreads; ++t) {
    EXPECT(args[t].errors == 0 && args[t].mismatches == 0, "concurrent calls equal the serial result");
    EXPECT(args[t].bad_dim_status == GEMBED_INVALID_ARGUMENT && args[t].after_code == GEMBED_OK,
           "per-thread last error");
  }
  EXPECT(gembed_last_error_code() == GEMBED_OK, "the threads' errors did not reach this thread");

  gembed_close(e);
  gembed_close(NULL);
  printf("consumer_c: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc >= 5 && strcmp(argv[1], "embed") == 0) {
    return RunEmbed(argv[2], argv[3], argv[4], argc > 5 ? argv[5] : "", argc > 6 ? atoi(argv[6]) : 0);
  }
  if (argc == 3 && strcmp(argv[1], "checks") == 0) return RunChecks(argv[2]);
  fprintf(stderr, "usage: consumer_c embed MODEL TEXTS OUT [TASK [DIM]] | consumer_c checks MODEL\n");
  return 2;
}
