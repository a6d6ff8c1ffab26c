// gembed embed: texts (one per line, or JSON lines) -> unit vectors as jsonl /
// json / csv / npy / f32, streamed with bounded memory and resumable. All the
// work is EmbedCorpus (corpus/corpus.h) over Engine::EmbedInto; this file
// parses flags and prints progress and warnings.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "corpus/corpus.h"
#include "engine/engine.h"
#include "io/atomic_file.h"

namespace gembed::cli {
namespace {

struct EmbedArgs {
  std::string model, task, title, prompt, format, input, output, precision = "fast", input_format;
  std::string text_field = "text", id_field, on_error = "stop";
  bool has_prompt = false, jsonl = false, no_truncate = false, no_strip = false, resume = false;
  bool progress = false, no_progress = false;
  int dim = 0, threads = 0;
  size_t window = 10000;
  uint64_t max_text_bytes = 1u << 20;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "gembed embed: %s\n", msg.c_str());
  return 1;
}

std::string Duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

int RunEmbed(const EmbedArgs& a) {
  CorpusOptions co;
  co.input = a.input;
  co.output = a.output;
  if (a.jsonl && !a.input_format.empty()) return Fail("--jsonl and --input-format cannot be used together");
  if (a.jsonl) co.input_format = CorpusInputFormat::kJsonl;
  if (!a.input_format.empty()) {
    auto f = CorpusInputFormatFromName(a.input_format);
    if (!f.ok()) return Fail(fmt::format("--input-format: {}", f.status().message()));
    co.input_format = *f;
  }
  if (!a.format.empty()) {
    auto f = CorpusOutputFormatFromName(a.format);
    if (!f.ok()) return Fail(fmt::format("--format: {}", f.status().message()));
    co.output_format = *f;
  }
  if (a.on_error != "stop" && a.on_error != "skip") {
    return Fail(fmt::format("unknown --on-error '{}' (stop, skip)", a.on_error));
  }
  co.on_error = a.on_error == "skip" ? CorpusOptions::OnError::kSkip : CorpusOptions::OnError::kStop;
  co.text_field = a.text_field;
  co.id_field = a.id_field;
  co.resume = a.resume;
  co.window = a.window;
  co.max_text_bytes = a.max_text_bytes;
  // Flag combinations are named by their flags here; the engine checks them too.
  if (!a.task.empty() && a.has_prompt) return Fail("--task and --prompt cannot be used together");
  if (!a.title.empty() && a.task.empty()) return Fail("--title needs --task (e.g. --task document)");
  // The prompt (--task NAME with --title, or --prompt, or the model's default)
  // is resolved by the engine (Engine::ResolvePrompt), as for every face.
  co.embed.task = a.task;
  co.embed.title = a.title;
  if (a.has_prompt) co.embed.prompt = a.prompt;
  co.embed.dim = a.dim;
  co.embed.truncate = !a.no_truncate;
  co.embed.strip = !a.no_strip;

  // A bad --output is refused before the model is loaded (io/atomic_file.h's rule).
  if (!a.output.empty() && a.output != "-") {
    if (const Status st = CheckWritableTarget(a.output); !st.ok()) return Fail(fmt::format("--output: {}", st.message()));
  }
  EngineOptions eopts;
  eopts.threads = a.threads;
  const auto precision = PrecisionFromName(a.precision);
  if (!precision) return Fail(fmt::format("unknown --precision '{}' (fast, high)", a.precision));
  eopts.precision = *precision;
  auto engine = Engine::Open(a.model, eopts);
  if (!engine.ok()) return Fail(engine.status().ToString());
  Engine& e = **engine;
  // Flag errors (an unknown task, a bad dim) before any text is read.
  if (auto prefix = e.ResolvePrompt(co.embed); !prefix.ok()) return Fail(prefix.status().message());
  if (auto d = e.OutputDim(a.dim); !d.ok()) return Fail(d.status().ToString());
  co.model_id = fmt::format("{}|{}|{}", a.model, e.weight_type(), PrecisionName(e.precision()));

  // Progress on a terminal (or with --progress): texts, tokens/s, ETA.
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const bool show = !a.no_progress && (a.progress || tty);
  using Clock = std::chrono::steady_clock;
  auto last = Clock::now() - std::chrono::seconds(10);
  bool drew = false;
  if (show) {
    co.progress = [&](const CorpusProgress& p) {
      const auto now = Clock::now();
      if (now - last < std::chrono::seconds(1)) return;
      last = now;
      const double tps = p.seconds > 0 ? (p.tokens - p.start_tokens) / p.seconds : 0;
      const double texts_s = p.seconds > 0 ? (p.embedded - p.start_embedded) / p.seconds : 0;
      std::string eta;
      if (p.input_size > 0 && p.input_offset > p.start_offset) {
        // This run's rate over this run's bytes.
        const double done = static_cast<double>(p.input_offset - p.start_offset);
        const double left = static_cast<double>(p.input_size > p.input_offset ? p.input_size - p.input_offset : 0);
        eta = fmt::format(", {:.1f}%, ETA {}", 100.0 * p.input_offset / p.input_size, Duration(p.seconds * left / done));
      }
      const std::string msg = fmt::format("gembed embed: {} texts, {:.0f} texts/s, {:.0f} tokens/s{}", p.embedded,
                                          texts_s, tps, eta);
      if (tty) {
        std::fprintf(stderr, "\r%s\x1b[K", msg.c_str());
        drew = true;
      } else {
        std::fprintf(stderr, "%s\n", msg.c_str());
      }
    };
  }
  constexpr uint64_t kMaxBadRowMessages = 10;
  uint64_t bad_rows = 0;
  co.on_bad_row = [&](uint64_t row, const std::string& why) {
    if (++bad_rows > kMaxBadRowMessages) return;
    if (drew) std::fprintf(stderr, "\n");
    drew = false;
    std::fprintf(stderr, "gembed embed: warning: skipped line %llu: %s\n", static_cast<unsigned long long>(row),
                 why.c_str());
  };

  auto result = EmbedCorpus(e, co);
  if (drew) std::fprintf(stderr, "\n");
  if (!result.ok()) {
    if (!a.output.empty() && a.output != "-" && ::access(CorpusResumePath(a.output).c_str(), F_OK) == 0) {
      return Fail(fmt::format("{}\ngembed embed: the output so far is in {} ({}): --resume continues with the "
                              "same arguments and input",
                              result.status().message(), CorpusPartialPath(a.output), CorpusResumePath(a.output)));
    }
    return Fail(result.status().message());
  }
  if (result->resumed_rows > 0) {
    std::fprintf(stderr, "gembed embed: resumed after row %llu of an interrupted run\n",
                 static_cast<unsigned long long>(result->resumed_rows));
  }
  if (result->truncated > 0) {
    std::fprintf(stderr, "gembed embed: warning: %llu text(s) longer than %d tokens were truncated (BOS and EOS kept)\n",
                 static_cast<unsigned long long>(result->truncated), e.max_seq_length());
  }
  if (result->skipped > 0) {
    std::fprintf(stderr, "gembed embed: warning: skipped %llu bad row(s) of %llu\n",
                 static_cast<unsigned long long>(result->skipped), static_cast<unsigned long long>(result->rows_read));
  }
  if (show) {
    std::fprintf(stderr, "gembed embed: %llu texts, %llu tokens\n", static_cast<unsigned long long>(result->embedded),
                 static_cast<unsigned long long>(result->tokens));
  }
  return 0;
}

}  // namespace

Command MakeEmbedCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("embed", "Embed texts (one per line) with an EmbeddingGemma GGUF or Hugging Face folder");
  auto a = std::make_shared<EmbedArgs>();
  app->add_option("--model", a->model,
                  "EmbeddingGemma .gguf file or Hugging Face sentence-transformers folder")->required();
  app->add_option("--task", a->task,
                  "Task prompt: a name from the model's prompt table (first: a folder's "
                  "config_sentence_transformers.json, or the table a GGUF made by gembed convert "
                  "carries), or "
                  "query, document, question-answering, fact-checking, classification, clustering, "
                  "similarity, code-retrieval");
  app->add_option("--title", a->title, "Document title (with --task document; default 'none')");
  CLI::Option* prompt = app->add_option("--prompt", a->prompt, "Custom prompt prefix (instead of --task)");
  app->add_option("--dim", a->dim, "Matryoshka output dim: 768, 512, 256, 128 (<= the model's dim)");
  app->add_flag("--jsonl", a->jsonl, "Input is JSON lines (same as --input-format jsonl)");
  app->add_option("--input-format", a->input_format,
                  "text (one text per line, UTF-8) or jsonl (each line a JSON string or an object with "
                  "--text-field); default: jsonl for .jsonl/.ndjson files, else text");
  app->add_option("--text-field", a->text_field, "JSON lines: the field holding the text (default: text)");
  app->add_option("--id-field", a->id_field,
                  "JSON lines: a field carried to the output with each vector (jsonl/json/csv: in the row; "
                  "npy/f32: OUTPUT.ids.jsonl)");
  app->add_option("--format", a->format,
                  "Output format: jsonl, json, csv, npy, f32 (raw little-endian float32 rows); default: by "
                  "--output's extension, else jsonl");
  app->add_option("--input", a->input, "Input file (default: stdin)");
  app->add_option("--output", a->output,
                  "Output file (default: stdout). Written as OUTPUT.partial and renamed when complete; "
                  "progress is committed to OUTPUT.resume after every window");
  app->add_flag("--resume", a->resume,
                "Continue an interrupted run into --output (same arguments) where its committed output ends");
  app->add_option("--on-error", a->on_error,
                  "Bad rows (invalid UTF-8 or JSON, missing field, non-string text, over --max-text-bytes): stop "
                  "(default: exit 1 naming the row) or skip (counted and reported)");
  app->add_option("--window", a->window,
                  "Texts read, sorted by length and embedded together (default 10000; memory ~ window)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app->add_option("--max-text-bytes", a->max_text_bytes, "Longest text accepted, in bytes (default 1 MiB)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{64} << 20));
  app->add_flag("--progress", a->progress, "Show progress even when stderr is not a terminal");
  app->add_flag("--no-progress", a->no_progress, "Never show progress");
  app->add_option("--threads", a->threads, "Compute threads (default: all cores)")->check(ThreadCountValidator());
  app->add_option("--precision", a->precision,
                  "Q8_0 arithmetic: fast (int8 activations, like llama.cpp; default) or high (fp32 "
                  "activations, weights widened to fp32: ~4x weight memory, slower)");
  app->add_flag("--no-truncate", a->no_truncate, "Fail on texts longer than the context instead of truncating");
  app->add_flag("--no-strip", a->no_strip,
                "Embed prompt+text as given. By default leading/trailing whitespace of prompt+text is "
                "stripped like Python's str.strip(), as sentence-transformers does, so vectors match it; "
                "--no-strip is llama.cpp's behaviour");
  return {app, [a, prompt] {
            a->has_prompt = prompt->count() > 0;
            return RunEmbed(*a);
          }};
}

}  // namespace gembed::cli
