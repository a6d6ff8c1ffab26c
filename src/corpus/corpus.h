// Corpus embedding: a file of any size in, vectors out, with bounded memory,
// in input order, resumable after a crash. `gembed embed` is a thin face over
// EmbedCorpus; the Python package can call it too.
//
// Streaming: the input is read a window of texts at a time (LineStream: one
// line in memory at most beyond the window); each window is sorted by length
// so the engine packs similar lengths into its passes, embedded with one
// Engine::EmbedInto call (sharing the engine's queue), put back in input
// order and appended to the output. Peak memory is the window (texts +
// vectors), whatever the corpus size.
//
// Input rows: "text" format: each line is one text (must be valid UTF-8);
// "jsonl": each line is a JSON string, or a JSON object whose `text_field`
// is a string (and `id_field`, when given, any JSON value other than null,
// carried to the output). A row that breaks these rules (or is longer than
// max_text_bytes) is a bad row: it stops the run naming its row number
// (OnError::kStop), or is skipped and counted (kSkip). Never embedded.
//
// Resume (files only): the output is written to OUT.partial and, after every
// window, flushed to disk and recorded in OUT.resume (a small JSON: the run's
// fingerprint, input offset, rows and output bytes committed), replaced
// atomically. After a crash (even kill -9), the same run with `resume`
// truncates OUT.partial to the committed bytes and continues at the committed
// input offset; the windows are the same as in an uninterrupted run, so the
// final file is byte-identical. On success OUT.partial is renamed to OUT and
// OUT.resume removed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"

namespace gembed {

enum class CorpusInputFormat { kAuto, kText, kJsonl };
enum class CorpusOutputFormat { kAuto, kJsonl, kJson, kCsv, kNpy, kF32 };

// "text"/"txt", "jsonl" (also "json-lines", "ndjson"); output: "jsonl", "json", "csv", "npy", "f32".
Result<CorpusInputFormat> CorpusInputFormatFromName(const std::string& name);
Result<CorpusOutputFormat> CorpusOutputFormatFromName(const std::string& name);

struct CorpusProgress {
  uint64_t rows_read = 0;      // input rows consumed (embedded + skipped)
  uint64_t embedded = 0;       // vectors written
  uint64_t tokens = 0;         // tokens embedded
  uint64_t input_offset = 0;   // bytes of input consumed
  uint64_t input_size = 0;     // bytes of the input file (0: unknown, e.g. a pipe)
  double seconds = 0;          // since this run started
  uint64_t resumed_rows = 0;   // rows that an earlier, interrupted run had committed
  // Where this run started (non-zero when resuming): rates are this run's.
  uint64_t start_offset = 0, start_embedded = 0, start_tokens = 0;
};

struct CorpusOptions {
  std::string input;   // file path, or "" / "-" for standard input
  std::string output;  // file path, or "" / "-" for standard output (no resume then)
  CorpusInputFormat input_format = CorpusInputFormat::kAuto;    // auto: by extension (.jsonl/.ndjson), else text
  CorpusOutputFormat output_format = CorpusOutputFormat::kAuto;  // auto: by extension, else jsonl
  std::string text_field = "text";  // jsonl objects
  std::string id_field;             // jsonl objects: carried to the output ("" = none)
  size_t window = 10000;            // texts per window (sorted by length inside it)
  uint64_t max_text_bytes = 1u << 20;
  enum class OnError { kStop, kSkip } on_error = OnError::kStop;
  bool resume = false;
  // The identity of the model and precision (part of the resume fingerprint,
  // so a resumed run cannot mix vectors of two models).
  std::string model_id;
  EmbedOptions embed;  // task / prompt / dim / truncate / strip / cancel (progress is ignored)
  // Called after every window, and at the end.
  std::function<void(const CorpusProgress&)> progress;
  // Bad rows skipped with OnError::kSkip are reported here as they happen
  // (row number, reason).
  std::function<void(uint64_t, const std::string&)> on_bad_row;
};

struct CorpusResult {
  uint64_t rows_read = 0;
  uint64_t embedded = 0;
  uint64_t skipped = 0;
  uint64_t truncated = 0;
  uint64_t tokens = 0;
  uint64_t resumed_rows = 0;  // rows taken over from the interrupted run
  int dim = 0;
};

// Runs the whole corpus through `engine`. Errors: kInvalidArgument for bad
// options or (kStop) the first bad row, naming its row; kIoError for I/O; a
// resume state that does not match this run is kInvalidArgument saying why.
Result<CorpusResult> EmbedCorpus(Engine& engine, const CorpusOptions& options);

// The resume files for an output path.
std::string CorpusPartialPath(const std::string& output);
std::string CorpusResumePath(const std::string& output);

}  // namespace gembed
