// gembed embed: texts (one per line, or JSON strings with --jsonl) -> unit
// vectors as jsonl / json / csv / npy. All the work is Engine::Embed; this
// file parses flags, reads lines, prints progress and formats the output.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "input.h"
#include "engine/engine.h"
#include "io/atomic_file.h"
#include "io/json_depth.h"
#include "model/hf_config.h"

namespace gembed::cli {
namespace {

struct EmbedArgs {
  std::string model, task, title, prompt, format = "jsonl", input, output, precision = "fast";
  bool has_prompt = false, jsonl = false, no_truncate = false, no_strip = false;
  int dim = 0, threads = 0;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "gembed embed: %s\n", msg.c_str());
  return 1;
}

void AppendFloat(std::string& out, float v) {
  // Shortest representation that round-trips the fp32 value.
  fmt::format_to(std::back_inserter(out), "{}", v);
}

std::string FormatText(const std::vector<std::vector<float>>& vecs, const std::string& format) {
  std::string out;
  if (format == "json") out += "[";
  for (size_t i = 0; i < vecs.size(); ++i) {
    const bool csv = format == "csv";
    if (format == "json" && i) out += ",";
    if (!csv) out += "[";
    for (size_t j = 0; j < vecs[i].size(); ++j) {
      if (j) out += ",";
      AppendFloat(out, vecs[i][j]);
    }
    if (!csv) out += "]";
    if (format != "json") out += "\n";
  }
  if (format == "json") out += "]\n";
  return out;
}

// NumPy .npy v1.0: magic, version, u16 header length, a Python dict literal
// padded with spaces to a multiple of 64 bytes (newline last), then the data.
std::string FormatNpy(const std::vector<std::vector<float>>& vecs, int dim) {
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", vecs.size(), dim);
  const size_t prefix = 10;  // magic(6) + version(2) + header length(2)
  const size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  for (const auto& v : vecs) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return out;
}

int RunEmbed(const EmbedArgs& a) {
  if (a.format != "jsonl" && a.format != "json" && a.format != "csv" && a.format != "npy") {
    return Fail(fmt::format("unknown --format '{}' (jsonl, json, csv, npy)", a.format));
  }
  // The prompt: --task NAME (with --title for document) or a custom --prompt.
  EmbedOptions opts;
  if (!a.task.empty() && a.has_prompt) return Fail("--task and --prompt cannot be used together");
  // --task names: the model's prompt table (a Hugging Face folder's
  // config_sentence_transformers.json, or the gembed.prompts.* keys `gembed convert`
  // wrote into a GGUF) first, then the built-in model-card names
  // (model/hf_config.h ResolveTaskPrompt).
  auto folder_prompts = ReadHfPromptTable(a.model);
  if (!folder_prompts.ok()) return Fail(folder_prompts.status().ToString());
  if (!a.title.empty() && a.task.empty()) return Fail("--title needs --task (e.g. --task document)");
  if (!a.task.empty()) {
    const auto prefix = ResolveTaskPrompt(*folder_prompts, a.task, a.title);
    if (!prefix.ok()) return Fail(prefix.status().message());
    opts.prompt = *prefix;
  } else if (a.has_prompt) {
    opts.prompt = a.prompt;
  } else if (!folder_prompts->default_prompt_name.empty()) {
    // sentence-transformers applies the folder's default prompt when none is given
    // (a GGUF converted from the folder carries it as gembed.prompts.default_name).
    const auto prefix = ResolveTaskPrompt(*folder_prompts, folder_prompts->default_prompt_name);
    if (prefix.ok()) opts.prompt = *prefix;
  }
  opts.dim = a.dim;
  opts.truncate = !a.no_truncate;
  opts.strip = !a.no_strip;

  if (!a.output.empty() && a.output != "-") {  // refuse a bad --output before any work
    if (const Status st = CheckWritableTarget(a.output); !st.ok()) return Fail(fmt::format("--output: {}", st.message()));
  }
  // Input: one text per line. Bytes are kept as they are (NUL, invalid
  // UTF-8): the tokenizer has a defined behaviour for all of them.
  auto lines = ReadInputLines(a.input);
  if (!lines.ok()) return Fail(lines.status().message());
  std::vector<std::string> texts = std::move(*lines);
  if (a.jsonl) {
    for (size_t i = 0; i < texts.size(); ++i) {
      try {
        if (const Status depth = CheckJsonNesting(texts[i]); !depth.ok()) {
          return Fail(fmt::format("line {}: invalid JSON: {}", i + 1, depth.message()));
        }
        const auto j = nlohmann::json::parse(texts[i]);
        if (!j.is_string()) return Fail(fmt::format("line {}: expected a JSON string, got {}", i + 1, j.type_name()));
        texts[i] = j.get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        return Fail(fmt::format("line {}: invalid JSON: {}", i + 1, e.what()));
      }
    }
  }

  EngineOptions eopts;
  eopts.threads = a.threads;
  const auto precision = PrecisionFromName(a.precision);
  if (!precision) return Fail(fmt::format("unknown --precision '{}' (fast, high)", a.precision));
  eopts.precision = *precision;
  auto engine = Engine::Open(a.model, eopts);
  if (!engine.ok()) return Fail(engine.status().ToString());
  Engine& e = **engine;
  const int out_dim = a.dim ? a.dim : e.output_dim();

  // Progress on stderr every 2 s once a run takes that long.
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto last = t0;
  opts.progress = [&](size_t done, size_t total) {
    const auto now = Clock::now();
    if (now - last < std::chrono::seconds(2) && done != total) return;
    if (done == total && now - t0 < std::chrono::seconds(2)) return;
    last = now;
    const double s = std::chrono::duration<double>(now - t0).count();
    std::fprintf(stderr, "gembed embed: %zu/%zu texts (%.1f texts/s)\n", done, total, s > 0 ? done / s : 0.0);
  };
  auto vecs = e.Embed(texts, opts);
  if (!vecs.ok()) return Fail(vecs.status().ToString());
  for (const auto& v : *vecs) {
    for (float x : v) {
      if (!std::isfinite(x)) return Fail("the model produced a non-finite value");
    }
  }

  const std::string out =
      a.format == "npy" ? FormatNpy(*vecs, out_dim) : FormatText(*vecs, a.format);
  if (a.output.empty() || a.output == "-") {
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
      return Fail("writing to stdout failed");
    }
  } else {
    // A temporary file renamed over --output; a device, FIFO or symbolic
    // link there is refused, not written through (io/atomic_file.h).
    const Status st = WriteFileAtomically(a.output, out);
    if (!st.ok()) return Fail(fmt::format("--output: {}", st.message()));
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
  app->add_flag("--jsonl", a->jsonl, "Each input line is a JSON string");
  app->add_option("--format", a->format, "Output format: jsonl (default), json, csv, npy");
  app->add_option("--input", a->input, "Input file (default: stdin)");
  app->add_option("--output", a->output, "Output file (default: stdout)");
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
