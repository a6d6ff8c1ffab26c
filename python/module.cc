// gembed._gembed: the native half of the Python package. A thin layer over
// engine/engine.h (nothing here decides a prompt, a dim or a batch): it turns
// Python arguments into EmbedOptions, runs the engine with the GIL released,
// writes straight into the caller's NumPy buffer (Engine::EmbedInto) and turns
// a non-OK Status into a Python exception. The API users see is shaped in
// python/gembed/_model.py.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"
#include "kernels/cpu/dispatch.h"
#include "model/forward.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace gembed::python {
namespace {

// gembed.ModelError (a RuntimeError): the model file or folder is broken or unsupported.
PyObject* g_model_error = nullptr;

[[noreturn]] void Raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw nb::python_error();
}

// The Python exception for a Status (GIL held):
//   kInvalidArgument, kOutOfRange -> ValueError (bad dim, task, prompt, title,
//                                    text too long with truncation off, token id);
//   kNotFound, kIoError, kCorruptFile, kUnsupported -> gembed.ModelError;
//   kResourceExhausted -> MemoryError; kCancelled, kInternal -> RuntimeError.
[[noreturn]] void RaiseStatus(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      Raise(PyExc_ValueError, st.message());
    case StatusCode::kNotFound:
    case StatusCode::kIoError:
    case StatusCode::kCorruptFile:
    case StatusCode::kUnsupported:
      Raise(g_model_error, st.message());
    case StatusCode::kResourceExhausted:
      Raise(PyExc_MemoryError, st.message());
    default:
      Raise(PyExc_RuntimeError, st.ToString());
  }
}

// Python str -> UTF-8 std::string (a lone surrogate raises UnicodeEncodeError,
// a ValueError).
std::string Utf8(PyObject* obj, const char* what, size_t index, bool indexed) {
  if (!PyUnicode_Check(obj)) {
    const std::string where = indexed ? std::string(what) + "[" + std::to_string(index) + "]" : std::string(what);
    Raise(PyExc_TypeError, where + " must be str, not " + Py_TYPE(obj)->tp_name);
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(obj, &size);
  if (data == nullptr) throw nb::python_error();
  return std::string(data, static_cast<size_t>(size));
}

// A list or tuple of str -> strings.
std::vector<std::string> Strings(nb::handle seq, const char* what) {
  if (!PyList_Check(seq.ptr()) && !PyTuple_Check(seq.ptr())) {
    Raise(PyExc_TypeError, std::string(what) + " must be a list or tuple of str");
  }
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) out.push_back(Utf8(items[i], what, static_cast<size_t>(i), true));
  return out;
}

// The Python-side handling of one engine call: the progress callback (called
// by the engine on this thread without the GIL) re-acquires the GIL to call
// the user's callback and, on the main thread, to run pending signal
// handlers (Ctrl-C): an exception from either cancels the call through
// EmbedOptions::cancel and is re-raised once the engine has returned.
class CallHooks {
 public:
  CallHooks(nb::object callback, bool check_signals)
      : callback_(std::move(callback)), check_signals_(check_signals) {}

  std::function<void(size_t, size_t)> Progress() {
    if (callback_.is_none() && !check_signals_) return {};
    return [this](size_t done, size_t total) {
      // The last report of a call needs no signal check: the call is over.
      if (callback_.is_none() && done == total) return;
      nb::gil_scoped_acquire gil;
      if (cancel_.load()) return;
      try {
        if (check_signals_ && PyErr_CheckSignals() != 0) throw nb::python_error();
        if (!callback_.is_none()) callback_(done, total);
      } catch (nb::python_error& e) {
        error_.emplace(std::move(e));
        cancel_.store(true);
      } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        error_.emplace();
        cancel_.store(true);
      }
    };
  }
  const std::atomic<bool>* cancel() const { return &cancel_; }
  // GIL held: re-raises what the callback caught, if anything.
  void RaiseIfFailed() {
    if (error_) {
      nb::python_error e = std::move(*error_);
      error_.reset();
      throw e;
    }
  }

 private:
  nb::object callback_;
  bool check_signals_;
  std::atomic<bool> cancel_{false};
  std::optional<nb::python_error> error_;
};

class Model {
 public:
  Model(const std::string& path, int threads, const std::string& precision, int max_batch_tokens,
        const std::string& isa) {
    EngineOptions options;
    options.threads = threads;
    options.max_batch_tokens = max_batch_tokens;
    options.isa = isa;
    const std::optional<Precision> p = PrecisionFromName(precision);
    if (!p) Raise(PyExc_ValueError, "precision must be 'fast' or 'high', not '" + precision + "'");
    options.precision = *p;
    Result<std::unique_ptr<Engine>> engine = Status();
    {
      nb::gil_scoped_release release;
      engine = Engine::Open(path, options);
    }
    if (!engine.ok()) RaiseStatus(engine.status());
    engine_ = std::shared_ptr<Engine>(std::move(*engine));
  }

  // Every call holds its own reference, so close() while another thread is
  // inside the engine frees the model only when that call has returned.
  std::shared_ptr<Engine> engine() const {
    if (!engine_) Raise(PyExc_ValueError, "the model is closed");
    return engine_;
  }
  void Close() { engine_.reset(); }
  bool closed() const { return engine_ == nullptr; }

  int OutputDim(int dim) const {
    Result<int> d = engine()->OutputDim(dim);
    if (!d.ok()) RaiseStatus(d.status());
    return *d;
  }

  // Embeds `texts` into `out` (rows = texts, columns = OutputDim(dim)), in
  // place; returns (tokens run, texts truncated). `titles`: None, one str for
  // every text, or a list with one str (or None) per text.
  nb::tuple EmbedInto(nb::handle texts_obj, nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu> out,
                      const std::string& task, nb::handle titles_obj, std::optional<std::string> prompt,
                      bool use_default_prompt, int dim, bool truncate, bool strip, nb::object progress,
                      bool check_signals) {
    std::shared_ptr<Engine> engine = this->engine();
    const std::vector<std::string> texts = Strings(texts_obj, "texts");
    const size_t n = texts.size();
    EmbedOptions options;
    options.task = task;
    options.prompt = std::move(prompt);
    options.use_default_prompt = use_default_prompt;
    options.dim = dim;
    options.truncate = truncate;
    options.strip = strip;

    std::vector<std::string> titles;  // one per text, or empty
    if (PyUnicode_Check(titles_obj.ptr())) {
      options.title = Utf8(titles_obj.ptr(), "titles", 0, false);
    } else if (!titles_obj.is_none()) {
      if (!PyList_Check(titles_obj.ptr()) && !PyTuple_Check(titles_obj.ptr())) {
        Raise(PyExc_TypeError, "titles must be None, a str, or a list of str (one per text)");
      }
      if (static_cast<size_t>(PySequence_Fast_GET_SIZE(titles_obj.ptr())) != n) {
        Raise(PyExc_ValueError, "titles has " + std::to_string(PySequence_Fast_GET_SIZE(titles_obj.ptr())) +
                                    " entries for " + std::to_string(n) + " texts");
      }
      PyObject** items = PySequence_Fast_ITEMS(titles_obj.ptr());
      titles.resize(n);
      for (size_t i = 0; i < n; ++i) {
        if (items[i] != Py_None) titles[i] = Utf8(items[i], "titles", i, true);
      }
    }

    Result<int> out_dim = engine->OutputDim(dim);
    if (!out_dim.ok()) RaiseStatus(out_dim.status());
    if (out.shape(0) != n || out.shape(1) != static_cast<size_t>(*out_dim)) {
      Raise(PyExc_ValueError, "out has shape (" + std::to_string(out.shape(0)) + ", " +
                                  std::to_string(out.shape(1)) + "); " + std::to_string(n) + " texts x " +
                                  std::to_string(*out_dim) + " dims expected");
    }
    float* dst = out.data();
    const size_t floats = n * static_cast<size_t>(*out_dim);

    CallHooks hooks(std::move(progress), check_signals);
    options.progress = hooks.Progress();
    options.cancel = hooks.cancel();
    EmbedReport report;
    Status st;
    {
      nb::gil_scoped_release release;
      if (titles.empty()) {
        st = engine->EmbedInto(texts, options, dst, floats, &report);
      } else {
        // Titles that differ per text: each text is tokenised with its own
        // prompt (the engine resolves it), then all run in one call.
        std::vector<std::vector<int32_t>> seqs(n);
        for (size_t i = 0; i < n && st.ok(); ++i) {
          EmbedOptions one = options;
          one.title = titles[i];
          bool truncated = false;
          Result<std::vector<int32_t>> ids = engine->Tokenize(texts[i], one, &truncated);
          if (!ids.ok()) {
            st = ids.status().WithContext("text " + std::to_string(i + 1));
            break;
          }
          report.total_tokens += ids->size();
          report.num_truncated += truncated ? 1 : 0;
          seqs[i] = std::move(*ids);
        }
        if (st.ok()) {
          st = engine->EmbedTokensInto(seqs, dim, dst, floats, options.progress, options.cancel);
        }
      }
    }
    hooks.RaiseIfFailed();
    if (!st.ok()) RaiseStatus(st);
    return nb::make_tuple(report.total_tokens, report.num_truncated);
  }

  // Token ids the engine would run for each text (BOS prompt+text EOS).
  std::vector<std::vector<int32_t>> Tokenize(nb::handle texts_obj, const std::string& task, const std::string& title,
                                             std::optional<std::string> prompt, bool use_default_prompt,
                                             bool truncate, bool strip) {
    std::shared_ptr<Engine> engine = this->engine();
    const std::vector<std::string> texts = Strings(texts_obj, "texts");
    EmbedOptions options;
    options.task = task;
    options.title = title;
    options.prompt = std::move(prompt);
    options.use_default_prompt = use_default_prompt;
    options.truncate = truncate;
    options.strip = strip;
    std::vector<std::vector<int32_t>> out(texts.size());
    Status st;
    {
      nb::gil_scoped_release release;
      for (size_t i = 0; i < texts.size(); ++i) {
        Result<std::vector<int32_t>> ids = engine->Tokenize(texts[i], options);
        if (!ids.ok()) {
          st = ids.status().WithContext("text " + std::to_string(i + 1));
          break;
        }
        out[i] = std::move(*ids);
      }
    }
    if (!st.ok()) RaiseStatus(st);
    return out;
  }

  std::string TokenText(int32_t id) const {
    Result<std::string> s = engine()->TokenText(id);
    if (!s.ok()) RaiseStatus(s.status());
    return *s;
  }

  // The prefix a task / prompt choice resolves to ("" for none).
  std::string ResolvePrompt(const std::string& task, const std::string& title, std::optional<std::string> prompt,
                            bool use_default_prompt) const {
    EmbedOptions options;
    options.task = task;
    options.title = title;
    options.prompt = std::move(prompt);
    options.use_default_prompt = use_default_prompt;
    Result<std::string> s = engine()->ResolvePrompt(options);
    if (!s.ok()) RaiseStatus(s.status());
    return *s;
  }

  nb::dict Info() const {
    std::shared_ptr<Engine> e = engine();
    const ModelConfig& c = e->config();
    nb::dict d;
    d["isa"] = e->isa();
    d["kernels"] = e->kernels();
    d["precision"] = std::string(PrecisionName(e->precision()));
    d["threads"] = e->threads();
    d["weight_type"] = e->weight_type();
    d["output_dim"] = e->output_dim();
    d["dims"] = e->SupportedDims();
    d["max_seq_length"] = e->max_seq_length();
    d["vocab_size"] = e->vocab_size();
    d["packed_bytes"] = e->packed_bytes();
    nb::dict config;
    config["n_layer"] = c.n_layer;
    config["n_embd"] = c.n_embd;
    config["n_head"] = c.n_head;
    config["n_head_kv"] = c.n_head_kv;
    config["head_dim"] = c.head_dim;
    config["n_ff"] = c.n_ff;
    config["n_vocab"] = c.n_vocab;
    config["context_length"] = c.context_length;
    config["sliding_window"] = c.sliding_window;
    config["dense_hidden"] = c.dense_hidden;
    d["config"] = config;
    nb::dict table;
    for (const HfPrompt& p : e->prompt_table().prompts) table[nb::str(p.name.c_str())] = p.prefix;
    d["prompt_table"] = table;
    d["default_prompt_name"] = e->prompt_table().default_prompt_name.empty()
                                   ? nb::none()
                                   : nb::cast(e->prompt_table().default_prompt_name);
    d["task_names"] = e->TaskNames();
    const Engine::LoadTimes& t = e->load_times();
    nb::dict load_ms;
    load_ms["files"] = t.files_ms;
    load_ms["pack"] = t.pack_ms;
    load_ms["total"] = t.total_ms;
    d["load_ms"] = load_ms;
    return d;
  }

  nb::dict Stats() const {
    const EngineStats s = engine()->stats();
    nb::dict d;
    d["forward_passes"] = s.forward_passes;
    d["sequences"] = s.sequences;
    d["tokens"] = s.tokens;
    d["forward_seconds"] = s.forward_seconds;
    d["queued_sequences"] = s.queued_sequences;
    d["queued_tokens"] = s.queued_tokens;
    d["active_calls"] = s.active_calls;
    return d;
  }

 private:
  std::shared_ptr<Engine> engine_;
};

// Moves row i's first `dim` floats (of `full`) to i * dim, in place: an
// (n, full) buffer becomes the (n, dim) prefix rows without a second buffer.
void CompactRows(nb::ndarray<float, nb::ndim<1>, nb::c_contig, nb::device::cpu> buf, size_t n, size_t full,
                 size_t dim) {
  if (dim > full || buf.shape(0) < n * full) Raise(PyExc_ValueError, "compact_rows: bad shape");
  float* p = buf.data();
  for (size_t i = 1; i < n; ++i) std::memmove(p + i * dim, p + i * full, dim * sizeof(float));
}

}  // namespace
}  // namespace gembed::python

NB_MODULE(_gembed, m) {
  using gembed::python::Model;
  m.doc() = "gembed's native engine binding (use the gembed package, not this module)";
  m.attr("__version__") = GEMBED_VERSION;

  gembed::python::g_model_error = PyErr_NewExceptionWithDoc(
      "gembed.ModelError", "The model file or folder is missing parts, broken or unsupported.", PyExc_RuntimeError,
      nullptr);
  if (gembed::python::g_model_error == nullptr) throw nb::python_error();
  m.attr("ModelError") = nb::handle(gembed::python::g_model_error);  // the module keeps a reference too

  m.def("cpu_isa", [] { return std::string(gembed::IsaName(gembed::BestIsa())); },
        "The best kernel level this CPU supports (the engine's default choice).");
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (gembed::Isa isa : gembed::SupportedIsas()) out.emplace_back(gembed::IsaName(isa));
    return out;
  });
  m.def("compact_rows", &gembed::python::CompactRows, "buf"_a, "n"_a, "full"_a, "dim"_a);

  nb::class_<Model>(m, "Engine")
      .def(nb::init<const std::string&, int, const std::string&, int, const std::string&>(), "path"_a,
           "threads"_a = 0, "precision"_a = "fast", "max_batch_tokens"_a = 4096, "isa"_a = "")
      .def("output_dim", &Model::OutputDim, "dim"_a = 0)
      .def("embed_into", &Model::EmbedInto, "texts"_a, "out"_a, "task"_a = "", "titles"_a = nb::none(),
           "prompt"_a = nb::none(), "use_default_prompt"_a = true, "dim"_a = 0, "truncate"_a = true,
           "strip"_a = true, "progress"_a = nb::none(), "check_signals"_a = false)
      .def("tokenize", &Model::Tokenize, "texts"_a, "task"_a = "", "title"_a = "", "prompt"_a = nb::none(),
           "use_default_prompt"_a = false, "truncate"_a = true, "strip"_a = true)
      .def("token_text", &Model::TokenText, "id"_a)
      .def("resolve_prompt", &Model::ResolvePrompt, "task"_a = "", "title"_a = "", "prompt"_a = nb::none(),
           "use_default_prompt"_a = true)
      .def("info", &Model::Info)
      .def("stats", &Model::Stats)
      .def("close", &Model::Close)
      .def_prop_ro("closed", &Model::closed);
}
