// gembed tokenize: token ids of texts read from stdin, one output line per input.
//
//   gembed tokenize (--model FILE.gguf | --tokenizer tokenizer.json) [--add-special] [--jsonl] [--strip] [--decode]
//
// Input (stdin), one text per line:
//   default   the line itself; a trailing "\n" or "\r\n" is removed (so a text
//             cannot end in '\r' or contain a newline: use --jsonl for exact texts).
//   --jsonl   each line is one JSON string ("a\nb" may hold newlines, \u0000, ...).
//             A line that is not exactly one JSON string is an error (line number on
//             stderr, exit 1).
// Output (stdout): per input, one line with the JSON array of its token ids.
// --add-special adds what the vocabulary asks for (GGUF: add_bos/add_eos keys,
// EmbeddingGemma [2, ..., 1]; tokenizer.json: its post-processor, Gemma3 [2, ...]).
// The text is tokenised exactly as given (llama.cpp / HF tokenizers parity);
// --strip first removes leading/trailing whitespace like Python's str.strip()
// (tokenizer/strip.h), as sentence-transformers and `gembed embed` do.
// --decode reverses it: each line is a JSON array of ids, each output line the
// JSON string of their text (bytes that are not valid UTF-8 become U+FFFD).
//
// Invalid UTF-8 in a plain-text line is tokenised byte by byte (<0xXX> tokens).
//
// Hidden helper for tests: --write-gguf-vocab OUT.gguf writes a GGUF holding
// general.architecture = "gemma-embedding" plus the tokenizer.ggml.* keys of
// the loaded vocabulary (as llama.cpp's converter writes them) and exits.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "io/gguf.h"
#include "io/json_depth.h"
#include "tokenizer/strip.h"
#include "tokenizer/tokenizer.h"

namespace gembed::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string tokenizer;
  bool add_special = false;
  bool jsonl = false;
  bool decode = false;
  bool strip = false;
  std::string write_gguf_vocab;
};

// Reads one line into *line, NUL bytes included; *had_newline says whether
// it ended in '\n' (removed). False at the end of input.
// `buf`/`cap` is getline's buffer (freed by the caller).
bool ReadLine(std::FILE* in, char** buf, size_t* cap, std::string* line, bool* had_newline) {
  const ssize_t n = getline(buf, cap, in);
  if (n < 0) return false;
  line->assign(*buf, static_cast<size_t>(n));
  *had_newline = !line->empty() && line->back() == '\n';
  if (*had_newline) line->pop_back();
  return true;
}

int Run(const TokenizeOptions& opt) {
  Result<std::unique_ptr<Tokenizer>> loaded =
      opt.model.empty() ? Tokenizer::FromHfJson(opt.tokenizer) : Tokenizer::FromFile(opt.model);
  if (!loaded.ok()) {
    std::fprintf(stderr, "gembed tokenize: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const Tokenizer& tok = **loaded;

  if (!opt.write_gguf_vocab.empty()) {
    GgufWriter writer;
    writer.SetString("general.architecture", "gemma-embedding");
    Status st = WriteGgufVocab(tok.vocab(), &writer);
    if (st.ok()) st = writer.WriteFile(opt.write_gguf_vocab);
    if (!st.ok()) {
      std::fprintf(stderr, "gembed tokenize: %s\n", st.ToString().c_str());
      return 1;
    }
    return 0;
  }

  char* line_buf = nullptr;
  size_t line_cap = 0;
  std::unique_ptr<char, decltype(&std::free)> line_buf_owner(nullptr, &std::free);
  std::string line;
  std::string out;
  std::vector<int32_t> ids;
  size_t line_no = 0;
  while (true) {
    bool had_newline = false;
    const bool got = ReadLine(stdin, &line_buf, &line_cap, &line, &had_newline);
    line_buf_owner.release();
    line_buf_owner.reset(line_buf);
    if (!got) break;
    ++line_no;
    out.clear();
    if (opt.decode) {
      ids.clear();
      // The nesting check keeps "[[[[..." from reaching nlohmann (io/json_depth.h).
      nlohmann::json j = CheckJsonNesting(line).ok()
                             ? nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false)
                             : nlohmann::json();
      bool ok = j.is_array();
      if (ok) {
        for (const auto& e : j) {
          if (!e.is_number_integer() || e.get<int64_t>() < INT32_MIN || e.get<int64_t>() > INT32_MAX) {
            ok = false;
            break;
          }
          ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
        }
      }
      if (!ok) {
        std::fprintf(stderr, "gembed tokenize: line %zu: expected a JSON array of token ids\n", line_no);
        return 1;
      }
      Result<std::string> text = tok.Decode(ids);
      if (!text.ok()) {
        std::fprintf(stderr, "gembed tokenize: line %zu: %s\n", line_no, text.status().ToString().c_str());
        return 1;
      }
      out = nlohmann::json(*text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      std::string text_storage;
      std::string_view text;
      if (opt.jsonl) {
        nlohmann::json j = CheckJsonNesting(line).ok()
                               ? nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false)
                               : nlohmann::json();
        if (!j.is_string()) {
          std::fprintf(stderr, "gembed tokenize: line %zu: expected a JSON string (--jsonl)\n", line_no);
          return 1;
        }
        text_storage = j.get<std::string>();
        text = text_storage;
      } else {
        text = line;
        // Strip "\r\n" as a whole line ending (a final line without '\n' keeps its '\r').
        if (had_newline && !text.empty() && text.back() == '\r') text.remove_suffix(1);
      }
      if (opt.strip) text = StripPythonWhitespace(text);
      ids.clear();
      tok.EncodeAppend(text, opt.add_special && tok.add_bos(), opt.add_special && tok.add_eos(), &ids);
      out.push_back('[');
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i) out.push_back(',');
        out += std::to_string(ids[i]);
      }
      out.push_back(']');
    }
    out.push_back('\n');
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) {
      std::fprintf(stderr, "gembed tokenize: write error\n");
      return 1;
    }
  }
  if (std::ferror(stdin)) {
    std::fprintf(stderr, "gembed tokenize: read error on stdin\n");
    return 1;
  }
  if (std::fflush(stdout) != 0) {
    std::fprintf(stderr, "gembed tokenize: write error\n");
    return 1;
  }
  return 0;
}

}  // namespace

Command MakeTokenizeCommand(CLI::App& root) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* app = root.add_subcommand(
      "tokenize",
      "Token ids of texts from stdin (one per line; --jsonl: one JSON string per line), one JSON array per line.\n"
      "Plain lines lose a trailing \\n or \\r\\n. Invalid UTF-8 becomes byte tokens <0xXX>. Special-token text\n"
      "such as <start_of_turn> inside a text becomes that token.");
  auto* model = app->add_option("--model", opt->model, "GGUF model (its tokenizer.ggml.* vocabulary)");
  auto* tokenizer =
      app->add_option("--tokenizer", opt->tokenizer, "Hugging Face tokenizer.json (+ tokenizer_config.json beside it)");
  model->excludes(tokenizer);
  tokenizer->excludes(model);
  app->add_flag("--add-special", opt->add_special,
                "Add BOS/EOS as the vocabulary specifies (EmbeddingGemma GGUF: <bos> ... <eos>)");
  app->add_flag("--jsonl", opt->jsonl, "Each input line is a JSON string");
  auto* strip = app->add_flag("--strip", opt->strip,
                "Strip leading/trailing whitespace like Python's str.strip() first (what sentence-transformers "
                "and gembed embed do); default: the text exactly as given");
  app->add_flag("--decode", opt->decode, "Reverse: each input line is a JSON array of ids; print the JSON string")
      ->excludes(strip);
  app->add_option("--write-gguf-vocab", opt->write_gguf_vocab)->group("");  // hidden test helper
  app->callback([app, model, tokenizer] {
    if (model->count() == 0 && tokenizer->count() == 0) {
      throw CLI::RequiredError("--model or --tokenizer");
    }
    (void)app;
  });
  return {app, [opt] { return Run(*opt); }};
}

}  // namespace gembed::cli
