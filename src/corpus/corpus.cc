#include "corpus/corpus.h"

#include <fcntl.h>
#include <signal.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "io/atomic_file.h"
#include "io/json_depth.h"
#include "io/line_stream.h"
#include "tokenizer/utf8.h"

namespace gembed {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Bytes of text held in one window at most (besides its count limit).
constexpr uint64_t kWindowBytes = 64ull << 20;
// The .npy header is written with room for any row count, then rewritten
// with the real shape when the run ends.
constexpr size_t kNpyHeaderBytes = 128;
constexpr int kResumeVersion = 1;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsStd(const std::string& path) { return path.empty() || path == "-"; }

std::string Errno() { return std::strerror(errno); }

// ---- output rows ------------------------------------------------------------

void AppendVector(std::string& out, const float* v, int dim, char sep) {
  for (int j = 0; j < dim; ++j) {
    if (j) out += sep;
    // Shortest representation that round-trips the fp32 value.
    fmt::format_to(std::back_inserter(out), "{}", v[j]);
  }
}

std::string CsvField(const std::string& id_json) {
  // A JSON string id is written as its value; anything else as its JSON text.
  std::string value = id_json;
  if (!id_json.empty() && id_json.front() == '"') value = json::parse(id_json).get<std::string>();
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string q = "\"";
  for (char c : value) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string NpyHeader(uint64_t rows, int dim) {
  std::string dict = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, dim);
  std::string h("\x93NUMPY\x01\x00", 8);
  const size_t len = kNpyHeaderBytes - 10;
  h += static_cast<char>(len & 0xff);
  h += static_cast<char>(len >> 8);
  dict.append(len - dict.size() - 1, ' ');
  dict += '\n';
  return h + dict;
}

// A file written by appending, whose committed length is recorded for resume.
class Sink {
 public:
  ~Sink() {
    if (fd_ >= 0 && owned_) ::close(fd_);
  }
  Status OpenStdout() {
    fd_ = STDOUT_FILENO;
    owned_ = false;
    name_ = "standard output";
    return Status::Ok();
  }
  // Creates (or, resuming, reopens and cuts to `keep_bytes`) `path`, never
  // following a symbolic link and refusing anything but a regular file.
  Status Open(const std::string& path, bool resume, uint64_t keep_bytes) {
    name_ = path;
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
    if (!resume) flags |= O_TRUNC;
    fd_ = ::open(path.c_str(), flags, 0644);
    if (fd_ < 0) {
      if (errno == ELOOP) return IoError("{} is a symbolic link; refusing to write through it", path);
      return IoError("cannot create {}: {}", path, Errno());
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return IoError("{} is not a regular file", path);
    if (resume) {
      if (static_cast<uint64_t>(st.st_size) < keep_bytes) {
        return InvalidArgument("{} has {} bytes but the resume state committed {}; it was changed since, so the "
                               "run cannot be resumed (delete it and its .resume file to start over)",
                               path, st.st_size, keep_bytes);
      }
      if (::ftruncate(fd_, static_cast<off_t>(keep_bytes)) != 0) return IoError("{}: truncate failed: {}", path, Errno());
      if (::lseek(fd_, static_cast<off_t>(keep_bytes), SEEK_SET) < 0) return IoError("{}: seek failed: {}", path, Errno());
      size_ = keep_bytes;
    }
    return Status::Ok();
  }
  Status Write(std::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("writing {} failed: {}", name_, Errno());
      }
      done += static_cast<size_t>(n);
    }
    size_ += data.size();
    return Status::Ok();
  }
  Status WriteAt(uint64_t offset, std::string_view data) {
    if (::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(data.size())) {
      return IoError("writing {} failed: {}", name_, Errno());
    }
    return Status::Ok();
  }
  Status Sync() {
    if (owned_ && ::fsync(fd_) != 0) return IoError("fsync of {} failed: {}", name_, Errno());
    return Status::Ok();
  }
  Status Close() {
    if (fd_ >= 0 && owned_ && ::close(fd_) != 0) {
      fd_ = -1;
      return IoError("closing {} failed: {}", name_, Errno());
    }
    fd_ = -1;
    return Status::Ok();
  }
  uint64_t size() const { return size_; }
  bool is_stdout() const { return !owned_; }
  // Gives the file the permission bits of `like` when that is a regular file
  // (a replaced output keeps its mode).
  void CopyModeOf(const std::string& like) {
    struct stat st {};
    if (owned_ && ::lstat(like.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ::fchmod(fd_, st.st_mode & 07777);
  }

 private:
  int fd_ = -1;
  bool owned_ = true;
  std::string name_;
  uint64_t size_ = 0;
};

Status SyncDir(const std::string& file) {
  std::string dir = fs::path(file).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open folder {}: {}", dir, Errno());
  ::fsync(fd);
  ::close(fd);
  return Status::Ok();
}

// Refuses to replace anything but a regular file (a device, a FIFO, a folder,
// a symbolic link) at a final output path (io/atomic_file.h's rule).
Status CheckReplaceable(const std::string& path) {
  const Status st = CheckWritableTarget(path);
  if (!st.ok()) return st.WithContext("--output");
  return st;
}

struct ResumeState {
  std::string fingerprint;
  uint64_t input_offset = 0, rows_read = 0, embedded = 0, skipped = 0, truncated = 0, tokens = 0;
  uint64_t output_bytes = 0, ids_bytes = 0;
};

std::string ResumeStateJson(const ResumeState& s) {
  json j = {{"version", kResumeVersion},    {"fingerprint", s.fingerprint}, {"input_offset", s.input_offset},
            {"rows_read", s.rows_read},     {"embedded", s.embedded},       {"skipped", s.skipped},
            {"truncated", s.truncated},     {"tokens", s.tokens},           {"output_bytes", s.output_bytes},
            {"ids_bytes", s.ids_bytes}};
  return j.dump() + "\n";
}

Result<ResumeState> ParseResumeState(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return IoError("cannot read {}: {}", path, Errno());
  std::string text(4096, '\0');
  const ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0) return IoError("cannot read {}: {}", path, Errno());
  text.resize(static_cast<size_t>(n));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  ResumeState s;
  auto u64 = [&](const char* key, uint64_t* out) {
    if (!j.contains(key) || !j[key].is_number_unsigned()) return false;
    *out = j[key].get<uint64_t>();
    return true;
  };
  if (!j.is_object() || !j.contains("version") || j["version"] != kResumeVersion || !j.contains("fingerprint") ||
      !j["fingerprint"].is_string() || !u64("input_offset", &s.input_offset) || !u64("rows_read", &s.rows_read) ||
      !u64("embedded", &s.embedded) || !u64("skipped", &s.skipped) || !u64("truncated", &s.truncated) ||
      !u64("tokens", &s.tokens) || !u64("output_bytes", &s.output_bytes) || !u64("ids_bytes", &s.ids_bytes)) {
    return InvalidArgument("{} is not a gembed resume state (delete it and the .partial file to start over)", path);
  }
  s.fingerprint = j["fingerprint"].get<std::string>();
  return s;
}

// Crash injection for the resume tests: GEMBED_TEST_CRASH="write:N" kills the
// process with SIGKILL after the data of window N is written but before it is
// committed; "commit:N" right after window N is committed. Unset: no effect.
void MaybeCrash(const char* point, uint64_t window) {
  static const char* spec = std::getenv("GEMBED_TEST_CRASH");
  if (spec == nullptr) return;
  const std::string want = fmt::format("{}:{}", point, window);
  if (want == spec) ::kill(::getpid(), SIGKILL);
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

Result<CorpusInputFormat> CorpusInputFormatFromName(const std::string& name) {
  const std::string n = Lower(name);
  if (n == "text" || n == "txt") return CorpusInputFormat::kText;
  if (n == "jsonl" || n == "json-lines" || n == "ndjson") return CorpusInputFormat::kJsonl;
  return InvalidArgument("unknown input format '{}' (text, jsonl)", name);
}

Result<CorpusOutputFormat> CorpusOutputFormatFromName(const std::string& name) {
  const std::string n = Lower(name);
  if (n == "jsonl") return CorpusOutputFormat::kJsonl;
  if (n == "json") return CorpusOutputFormat::kJson;
  if (n == "csv") return CorpusOutputFormat::kCsv;
  if (n == "npy") return CorpusOutputFormat::kNpy;
  if (n == "f32") return CorpusOutputFormat::kF32;
  return InvalidArgument("unknown output format '{}' (jsonl, json, csv, npy, f32)", name);
}

std::string CorpusPartialPath(const std::string& output) { return output + ".partial"; }
std::string CorpusResumePath(const std::string& output) { return output + ".resume"; }

Result<CorpusResult> EmbedCorpus(Engine& engine, const CorpusOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();

  // ---- formats and options ----
  CorpusInputFormat in_fmt = o.input_format;
  if (in_fmt == CorpusInputFormat::kAuto) {
    const std::string l = Lower(o.input);
    in_fmt = EndsWith(l, ".jsonl") || EndsWith(l, ".ndjson") ? CorpusInputFormat::kJsonl : CorpusInputFormat::kText;
  }
  CorpusOutputFormat out_fmt = o.output_format;
  if (out_fmt == CorpusOutputFormat::kAuto) {
    const std::string l = Lower(o.output);
    out_fmt = EndsWith(l, ".npy")    ? CorpusOutputFormat::kNpy
              : EndsWith(l, ".f32")  ? CorpusOutputFormat::kF32
              : EndsWith(l, ".csv")  ? CorpusOutputFormat::kCsv
              : EndsWith(l, ".json") ? CorpusOutputFormat::kJson
                                     : CorpusOutputFormat::kJsonl;
  }
  const bool with_ids = !o.id_field.empty();
  if (with_ids && in_fmt != CorpusInputFormat::kJsonl) {
    return InvalidArgument("--id-field needs JSON-lines input (objects with an id field)");
  }
  if (o.window == 0) return InvalidArgument("the window must hold at least one text");
  if (o.resume && IsStd(o.output)) return InvalidArgument("--resume needs --output FILE (not standard output)");
  if (o.resume && IsStd(o.input)) return InvalidArgument("--resume needs --input FILE (standard input cannot be re-read)");
  if (!IsStd(o.output) && !IsStd(o.input)) {
    std::error_code e1, e2;
    const fs::path out_path = fs::weakly_canonical(o.output, e1), in_path = fs::weakly_canonical(o.input, e2);
    if (!e1 && !e2 && out_path == in_path) return InvalidArgument("--output is the --input file");
  }
  GEMBED_ASSIGN_OR_RETURN(const int dim, engine.OutputDim(o.embed.dim));
  GEMBED_ASSIGN_OR_RETURN(const std::string prefix, engine.ResolvePrompt(o.embed));
  // ids of binary outputs go to a JSON-lines file beside them.
  const bool ids_file = with_ids && (out_fmt == CorpusOutputFormat::kNpy || out_fmt == CorpusOutputFormat::kF32);
  if (ids_file && IsStd(o.output)) return InvalidArgument("--id-field with npy/f32 output needs --output FILE");

  // ---- input ----
  int in_fd = STDIN_FILENO;
  std::string in_name = "standard input";
  uint64_t in_size = 0;
  std::string in_identity = "stdin";
  if (!IsStd(o.input)) {
    in_name = fmt::format("--input '{}'", o.input);
    in_fd = ::open(o.input.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (in_fd < 0) return NotFound("cannot open --input '{}': {}", o.input, Errno());
    struct stat st {};
    if (::fstat(in_fd, &st) != 0) {
      ::close(in_fd);
      return IoError("{}: stat failed", in_name);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(in_fd);
      return InvalidArgument("--input '{}' is a directory, not a file", o.input);
    }
    // Back to blocking reads (O_NONBLOCK only kept open() of a FIFO from hanging).
    ::fcntl(in_fd, F_SETFL, ::fcntl(in_fd, F_GETFL) & ~O_NONBLOCK);
    if (S_ISREG(st.st_mode)) {
      in_size = static_cast<uint64_t>(st.st_size);
      std::error_code ec;
      const fs::path abs = fs::absolute(o.input, ec);
      in_identity = fmt::format("{}|{}|{}", ec ? o.input : abs.string(), st.st_size,
                                st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec);
    } else if (o.resume) {
      ::close(in_fd);
      return InvalidArgument("--resume needs a regular --input file");
    }
  }
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd != STDIN_FILENO) ::close(fd);
    }
  } in_closer{in_fd};

  // ---- output and resume state ----
  const std::string fingerprint = fmt::format(
      "{:016x}",
      Fnv1a(fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}", in_identity, o.model_id, prefix, dim,
                        o.embed.strip, o.embed.truncate, static_cast<int>(in_fmt), static_cast<int>(out_fmt),
                        o.text_field, o.id_field, o.window, o.max_text_bytes, static_cast<int>(o.on_error))));
  ResumeState state;
  state.fingerprint = fingerprint;
  Sink out, ids;
  std::string stdout_npy;  // npy to standard output: held until the row count is known
  std::string partial, ids_partial, resume_path;
  if (IsStd(o.output)) {
    GEMBED_RETURN_IF_ERROR(out.OpenStdout());
  } else {
    GEMBED_RETURN_IF_ERROR(CheckReplaceable(o.output));
    if (ids_file) GEMBED_RETURN_IF_ERROR(CheckReplaceable(o.output + ".ids.jsonl"));
    partial = CorpusPartialPath(o.output);
    ids_partial = o.output + ".ids.jsonl.partial";
    resume_path = CorpusResumePath(o.output);
    struct stat st {};
    const bool has_state = ::lstat(resume_path.c_str(), &st) == 0;
    if (has_state && !o.resume) {
      return InvalidArgument("{} exists: an earlier run into this output was interrupted. Run again with --resume "
                             "to continue it, or delete {} and {} to start over",
                             resume_path, resume_path, partial);
    }
    bool resuming = false;
    if (has_state) {
      GEMBED_ASSIGN_OR_RETURN(ResumeState old, ParseResumeState(resume_path));
      if (old.fingerprint != fingerprint) {
        return InvalidArgument("{} was written by a run with other arguments, another model or a changed input; "
                               "use the same arguments, or delete {} and {} to start over",
                               resume_path, resume_path, partial);
      }
      state = old;
      resuming = true;
    }
    GEMBED_RETURN_IF_ERROR(out.Open(partial, resuming, state.output_bytes));
    if (ids_file) GEMBED_RETURN_IF_ERROR(ids.Open(ids_partial, resuming, state.ids_bytes));
    if (resuming) {
      if (::lseek(in_fd, static_cast<off_t>(state.input_offset), SEEK_SET) < 0) {
        return IoError("{}: seek failed: {}", in_name, Errno());
      }
    }
  }
  const uint64_t resumed_rows = state.rows_read;
  const bool text_ids = with_ids && !ids_file;
  const bool first_output = state.output_bytes == 0;
  if (first_output) {
    if (out_fmt == CorpusOutputFormat::kNpy) {
      if (!out.is_stdout()) GEMBED_RETURN_IF_ERROR(out.Write(NpyHeader(0, dim)));
    } else if (out_fmt == CorpusOutputFormat::kJson) {
      GEMBED_RETURN_IF_ERROR(out.Write("["));
    }
  }
  // Commits what is written so far (files only): data to disk first, then the state.
  auto commit = [&](uint64_t input_offset) -> Status {
    if (out.is_stdout()) return Status::Ok();
    GEMBED_RETURN_IF_ERROR(out.Sync());
    if (ids_file) GEMBED_RETURN_IF_ERROR(ids.Sync());
    state.input_offset = input_offset;
    state.output_bytes = out.size();
    state.ids_bytes = ids_file ? ids.size() : 0;
    return WriteFileAtomically(resume_path, ResumeStateJson(state));
  };
  if (!out.is_stdout() && first_output) GEMBED_RETURN_IF_ERROR(commit(0));

  // ---- the windows ----
  // A JSON line may escape every byte of its text (\u00XX: 6 bytes) and carry an id.
  LineStream lines(in_fd, in_name, in_fmt == CorpusInputFormat::kJsonl ? 6 * o.max_text_bytes + 4096 : o.max_text_bytes,
                   state.input_offset, state.rows_read);
  std::vector<std::string> texts, row_ids;
  std::vector<uint64_t> rows;  // input line of each text of the window
  std::vector<size_t> order;
  std::vector<std::string> sorted;
  std::vector<float> vecs;
  std::string line, buf;
  EmbedOptions eo = o.embed;
  eo.progress = nullptr;
  eo.task.clear();
  eo.title.clear();
  eo.prompt = prefix;  // resolved once above
  CorpusProgress prog;
  prog.input_size = in_size;
  prog.resumed_rows = resumed_rows;
  prog.start_offset = state.input_offset;
  prog.start_embedded = state.embedded;
  prog.start_tokens = state.tokens;
  bool eof = false;
  uint64_t windows = 0;  // of this run
  while (!eof) {
    texts.clear();
    row_ids.clear();
    rows.clear();
    uint64_t window_bytes = 0;
    while (texts.size() < o.window && window_bytes < kWindowBytes) {
      auto got = lines.Next(&line);
      const uint64_t row = lines.line_number();
      std::string bad;
      if (!got.ok()) {
        if (got.status().code() != StatusCode::kOutOfRange) return got.status();
        if (o.on_error == CorpusOptions::OnError::kStop) return got.status();  // names the line and the limit
        bad = fmt::format("longer than {} bytes", o.max_text_bytes);
      } else if (!*got) {
        eof = true;
        break;
      }
      std::string text, id;
      if (bad.empty() && in_fmt == CorpusInputFormat::kText) {
        if (!tokenizer_internal::IsValidUtf8(line)) {
          bad = "not valid UTF-8";
        } else {
          text = std::move(line);
        }
      } else if (bad.empty()) {
        // Nesting is bounded before nlohmann sees the line (io/json_depth.h).
        const Status depth = CheckJsonNesting(line);
        const json j = depth.ok() ? json::parse(line, nullptr, /*allow_exceptions=*/false) : json();
        if (!depth.ok()) {
          bad = fmt::format("not valid JSON ({})", depth.message());
        } else if (j.is_discarded()) {
          bad = tokenizer_internal::IsValidUtf8(line) ? "not valid JSON" : "not valid UTF-8";
        } else if (j.is_string()) {
          if (with_ids) {
            bad = fmt::format("a JSON string, but --id-field '{}' needs an object", o.id_field);
          } else {
            text = j.get<std::string>();
          }
        } else if (j.is_object()) {
          const auto t = j.find(o.text_field);
          if (t == j.end()) {
            bad = fmt::format("no field '{}'", o.text_field);
          } else if (!t->is_string()) {
            bad = fmt::format("field '{}' is {}, not a string", o.text_field, t->type_name());
          } else {
            text = t->get<std::string>();
          }
          if (bad.empty() && with_ids) {
            const auto idv = j.find(o.id_field);
            if (idv == j.end() || idv->is_null()) {
              bad = fmt::format("no field '{}' (the id)", o.id_field);
            } else {
              id = idv->dump(-1, ' ', false, json::error_handler_t::replace);
            }
          }
        } else {
          bad = fmt::format("a JSON {}, not a string or an object", j.type_name());
        }
        if (bad.empty() && text.size() > o.max_text_bytes) bad = fmt::format("longer than {} bytes", o.max_text_bytes);
      }
      if (!bad.empty()) {
        if (o.on_error == CorpusOptions::OnError::kStop) {
          return InvalidArgument("{}: line {}: {} (--on-error skip skips such rows)", in_name, row, bad);
        }
        ++state.skipped;
        if (o.on_bad_row) o.on_bad_row(row, bad);
        continue;
      }
      window_bytes += text.size() + 64;
      texts.push_back(std::move(text));
      rows.push_back(row);
      if (with_ids) row_ids.push_back(std::move(id));
    }
    state.rows_read = lines.line_number();
    if (!texts.empty()) {
      // Sorted by length inside the window (stable, so equal lengths keep
      // input order), embedded in one call, written back in input order.
      order.resize(texts.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return texts[a].size() < texts[b].size(); });
      sorted.resize(texts.size());
      for (size_t p = 0; p < order.size(); ++p) sorted[p] = std::move(texts[order[p]]);
      EmbedReport report;
      for (;;) {
        vecs.resize(sorted.size() * static_cast<size_t>(dim));
        const Status st = engine.EmbedInto(sorted, eo, vecs.data(), vecs.size(), &report);
        if (st.ok()) break;
        if (report.failed_text < 0) return st;
        // A text the engine refused (longer than the context with truncation
        // off) is a bad row like the others.
        const size_t p = static_cast<size_t>(report.failed_text);
        const uint64_t row = rows[order[p]];
        if (o.on_error == CorpusOptions::OnError::kStop) {
          return InvalidArgument("{}: line {}: {}", in_name, row, report.failed_reason);
        }
        ++state.skipped;
        if (o.on_bad_row) o.on_bad_row(row, report.failed_reason);
        sorted.erase(sorted.begin() + static_cast<ptrdiff_t>(p));
        order.erase(order.begin() + static_cast<ptrdiff_t>(p));
      }
      // Input indexes that are still in the window, in input order.
      std::vector<size_t> kept(order);
      std::sort(kept.begin(), kept.end());
      std::vector<size_t> where(texts.size());  // input index -> sorted position
      for (size_t p = 0; p < order.size(); ++p) where[order[p]] = p;
      const size_t n = kept.size();
      for (float x : vecs) {
        if (!std::isfinite(x)) return Internal("the model produced a non-finite value");
      }
      state.tokens += report.total_tokens;
      state.truncated += report.num_truncated;

      buf.clear();
      std::string ids_buf;
      for (size_t k = 0; k < n; ++k) {
        const size_t i = kept[k];
        const float* v = vecs.data() + where[i] * static_cast<size_t>(dim);
        switch (out_fmt) {
          case CorpusOutputFormat::kJsonl:
          case CorpusOutputFormat::kJson:
            if (out_fmt == CorpusOutputFormat::kJson && state.embedded + k > 0) buf += ',';
            if (text_ids) {
              buf += "{\"id\":";
              buf += row_ids[i];
              buf += ",\"embedding\":[";
            } else {
              buf += '[';
            }
            AppendVector(buf, v, dim, ',');
            buf += text_ids ? "]}" : "]";
            if (out_fmt == CorpusOutputFormat::kJsonl) buf += '\n';
            break;
          case CorpusOutputFormat::kCsv:
            if (text_ids) {
              buf += CsvField(row_ids[i]);
              buf += ',';
            }
            AppendVector(buf, v, dim, ',');
            buf += '\n';
            break;
          case CorpusOutputFormat::kNpy:
          case CorpusOutputFormat::kF32:
            buf.append(reinterpret_cast<const char*>(v), static_cast<size_t>(dim) * sizeof(float));
            break;
          case CorpusOutputFormat::kAuto:
            break;
        }
        if (ids_file) {
          ids_buf += row_ids[i];
          ids_buf += '\n';
        }
      }
      if (out.is_stdout() && out_fmt == CorpusOutputFormat::kNpy) {
        stdout_npy += buf;
      } else {
        GEMBED_RETURN_IF_ERROR(out.Write(buf));
      }
      if (ids_file) GEMBED_RETURN_IF_ERROR(ids.Write(ids_buf));
      state.embedded += n;
    }
    ++windows;
    MaybeCrash("write", windows);
    GEMBED_RETURN_IF_ERROR(commit(lines.offset()));
    MaybeCrash("commit", windows);
    if (o.progress) {
      prog.rows_read = state.rows_read;
      prog.embedded = state.embedded;
      prog.tokens = state.tokens;
      prog.input_offset = lines.offset();
      prog.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      o.progress(prog);
    }
  }

  // ---- finish ----
  if (out_fmt == CorpusOutputFormat::kJson) GEMBED_RETURN_IF_ERROR(out.Write("]\n"));
  if (out_fmt == CorpusOutputFormat::kNpy) {
    if (out.is_stdout()) {
      GEMBED_RETURN_IF_ERROR(out.Write(NpyHeader(state.embedded, dim) + stdout_npy));
    } else {
      GEMBED_RETURN_IF_ERROR(out.WriteAt(0, NpyHeader(state.embedded, dim)));
    }
  }
  if (!out.is_stdout()) {
    out.CopyModeOf(o.output);
    if (ids_file) ids.CopyModeOf(o.output + ".ids.jsonl");
    GEMBED_RETURN_IF_ERROR(out.Sync());
    GEMBED_RETURN_IF_ERROR(out.Close());
    if (ids_file) {
      GEMBED_RETURN_IF_ERROR(ids.Sync());
      GEMBED_RETURN_IF_ERROR(ids.Close());
    }
    GEMBED_RETURN_IF_ERROR(CheckReplaceable(o.output));
    if (::rename(partial.c_str(), o.output.c_str()) != 0) {
      return IoError("cannot rename {} to {}: {}", partial, o.output, Errno());
    }
    if (ids_file) {
      const std::string ids_out = o.output + ".ids.jsonl";
      if (::rename(ids_partial.c_str(), ids_out.c_str()) != 0) {
        return IoError("cannot rename {} to {}: {}", ids_partial, ids_out, Errno());
      }
    }
    GEMBED_RETURN_IF_ERROR(SyncDir(o.output));
    ::unlink(resume_path.c_str());
  }
  CorpusResult r;
  r.rows_read = state.rows_read;
  r.embedded = state.embedded;
  r.skipped = state.skipped;
  r.truncated = state.truncated;
  r.tokens = state.tokens;
  r.resumed_rows = resumed_rows;
  r.dim = dim;
  return r;
}

}  // namespace gembed
