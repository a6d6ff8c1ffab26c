// A C++17 program on the installed <gembed/gembed.hpp>.
//
//   consumer_cpp embed MODEL TEXTS OUT [TASK [DIM]]
//       embeds the lines of TEXTS (TASK "" = none, DIM 0 = full) with
//       Engine::Embed and writes the vectors to OUT as raw float32, row-major;
//   consumer_cpp checks MODEL
//       errors as gembed::Error, the other entry points agreeing with Embed,
//       progress/cancellation, move semantics.
// Exit 0 when every check holds; each failure is printed.
#include <gembed/gembed.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int g_checks = 0;
int g_failures = 0;

void Expect(bool cond, const char* what, int line) {
  ++g_checks;
  if (!cond) {
    ++g_failures;
    std::cerr << "FAIL consumer.cc:" << line << ": " << what << "\n";
  }
}
#define EXPECT(cond) Expect((cond), #cond, __LINE__)

// The ErrorCode a call throws, or kOk when it returns.
template <typename F>
gembed::ErrorCode CodeOf(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const gembed::Error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  return gembed::ErrorCode::kOk;
}

bool Contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

int RunEmbed(const std::string& model, const std::string& texts_path, const std::string& out_path,
             const std::string& task, int dim) {
  std::ifstream in(texts_path, std::ios::binary);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
  gembed::Engine engine = gembed::Engine::Open(model);
  gembed::EmbedOptions o;
  o.task = task;
  o.dim = dim;
  const std::vector<std::vector<float>> vecs = engine.Embed(texts, o);
  std::ofstream out(out_path, std::ios::binary);
  for (const auto& v : vecs) out.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  std::cout << vecs.size() << " " << (vecs.empty() ? 0 : vecs[0].size()) << "\n";
  return out.good() ? 0 : 1;
}

struct Boom {};  // thrown from a progress callback

int RunChecks(const std::string& model) {
  EXPECT(gembed::Version() == GEMBED_VERSION_STRING);

  std::string msg;
  const gembed::ErrorCode missing = CodeOf([] { gembed::Engine::Open("/nonexistent-dir/model.gguf"); }, &msg);
  EXPECT(missing == gembed::ErrorCode::kNotFound || missing == gembed::ErrorCode::kIoError);
  EXPECT(Contains(msg, "/nonexistent-dir/model.gguf"));
  gembed::EngineOptions bad;
  bad.precision = "bogus";
  EXPECT(CodeOf([&] { gembed::Engine::Open(model, bad); }) == gembed::ErrorCode::kInvalidArgument);

  gembed::EngineOptions eo;
  eo.threads = 2;
  eo.max_batch_tokens = 1;  // raised to the context length: one long text per pass
  gembed::Engine engine = gembed::Engine::Open(model, eo);
  const int width = engine.OutputDim();
  const std::vector<int> dims = engine.SupportedDims();
  EXPECT(!dims.empty() && dims[0] == width);
  EXPECT(CodeOf([&] { engine.OutputDim(100); }, &msg) == gembed::ErrorCode::kInvalidArgument);
  EXPECT(Contains(msg, "dim 100"));

  const std::vector<std::string> texts = {"hello world", "The quick brown fox jumps over the lazy dog.", ""};
  gembed::EmbedReport report;
  const auto rows = engine.Embed(texts, {}, &report);
  EXPECT(rows.size() == texts.size() && rows[0].size() == static_cast<size_t>(width));
  EXPECT(report.tokens.size() == texts.size() && report.num_truncated == 0);
  const std::vector<float> flat = engine.EmbedFlat(texts);
  bool same = flat.size() == texts.size() * static_cast<size_t>(width);
  for (size_t i = 0; same && i < texts.size(); ++i) {
    same = std::vector<float>(flat.begin() + i * width, flat.begin() + (i + 1) * width) == rows[i] &&
           engine.EmbedOne(texts[i]) == rows[i];
  }
  EXPECT(same);  // Embed, EmbedFlat and EmbedOne agree bit for bit
  EXPECT(engine.Tokenize("hello world").size() == static_cast<size_t>(report.tokens[0]));

  gembed::EmbedOptions o;
  o.dim = 100;
  EXPECT(CodeOf([&] { engine.Embed(texts, o); }, &msg) == gembed::ErrorCode::kInvalidArgument);
  EXPECT(Contains(msg, "allowed"));
  o = {};
  o.task = "query";
  o.prompt = "custom: ";
  EXPECT(CodeOf([&] { engine.Embed(texts, o); }) == gembed::ErrorCode::kInvalidArgument);
  std::vector<float> small(texts.size() * width - 1);
  EXPECT(CodeOf([&] { engine.EmbedInto(texts, small.data(), small.size()); }) ==
         gembed::ErrorCode::kInvalidArgument);

  // A custom prompt equals the same prefix written into the text (strip off
  // so nothing moves).
  o = {};
  o.prompt = "title: none | text: ";
  o.strip = false;
  gembed::EmbedOptions plain;
  plain.use_default_prompt = false;
  plain.strip = false;
  EXPECT(engine.EmbedOne("zebra", o) == engine.EmbedOne("title: none | text: zebra", plain));

  // Progress and cancellation over several passes.
  std::string long_text;
  for (int i = 0; i < 3000; ++i) long_text += "zebra ";
  const std::vector<std::string> many(3, long_text);  // 3 passes (one full-context text each)
  o = {};
  size_t last_done = 0, calls = 0;
  o.progress = [&](size_t done, size_t total) {
    ++calls;
    last_done = done;
    return total == many.size();
  };
  bool truncated = false;
  EXPECT(engine.Tokenize(long_text, {}, &truncated).size() == static_cast<size_t>(engine.MaxSeqLength()));
  EXPECT(truncated);
  EXPECT(engine.Embed(many, o).size() == many.size() && last_done == many.size() && calls >= 2);
  o.progress = [](size_t, size_t) { return false; };
  EXPECT(CodeOf([&] { engine.Embed(many, o); }) == gembed::ErrorCode::kCancelled);
  o.progress = [](size_t, size_t) -> bool { throw Boom{}; };
  bool boom = false;
  try {
    engine.Embed(many, o);
  } catch (const Boom&) {
    boom = true;  // the callback's exception comes back out of Embed, through the C layer intact
  }
  EXPECT(boom);
  EXPECT(engine.EmbedOne(texts[0]) == rows[0]);  // the engine still works after both

  // Moves hand over the handle; a moved-from engine throws instead of crashing.
  gembed::Engine moved = std::move(engine);
  EXPECT(moved.EmbedOne(texts[1]) == rows[1]);
  EXPECT(CodeOf([&] { engine.EmbedOne(texts[1]); }) == gembed::ErrorCode::kInvalidArgument);  // NOLINT(bugprone-use-after-move)

  std::cout << "consumer_cpp: " << g_checks << " checks, " << g_failures << " failed\n";
  return g_failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 4 && args[0] == "embed") {
      return RunEmbed(args[1], args[2], args[3], args.size() > 4 ? args[4] : "",
                      args.size() > 5 ? std::atoi(args[5].c_str()) : 0);
    }
    if (args.size() == 2 && args[0] == "checks") return RunChecks(args[1]);
    std::cerr << "usage: consumer_cpp embed MODEL TEXTS OUT [TASK [DIM]] | consumer_cpp checks MODEL\n";
    return 2;
  } catch (const gembed::Error& e) {
    std::cerr << "consumer_cpp: " << e.what() << "\n";
    return 1;
  }
}
