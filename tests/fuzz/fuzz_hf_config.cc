// libFuzzer target for the configuration files of a Hugging Face
// sentence-transformers folder (src/model/hf_config.h): config.json,
// modules.json, the Pooling and Dense configs, sentence_bert_config.json and
// config_sentence_transformers.json. The first input byte picks the parser,
// the rest is the file. Any bytes must give a parsed value or a Status with a
// message, never a crash, hang or overrun; what parses is re-checked here:
//   config.json      -> a ModelConfig that passes ModelConfig::Validate();
//   modules.json     -> a Transformer at index 0 with path "", then Pooling,
//                       relative paths without a ".." component;
//   Dense            -> non-zero in/out features;
//   sentence_bert    -> max_seq_length >= 2 when present;
//   prompt table     -> every name resolves to its own prefix, and the
//                       default name (if any) is one of the names.
// Seeds: tests/fuzz/seeds/fuzz_hf_config (selector byte + a valid file each;
// 6_ and 7_ nest far deeper than the 64-level limit, see io/json_depth.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "model/hf_config.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

template <typename T>
bool Failed(const gembed::Result<T>& r) {
  if (r.ok()) return false;
  Check(!r.status().message().empty());  // every failure explains itself
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gembed;
  if (size == 0) return 0;
  const std::string_view json(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {
      auto c = ParseHfModelConfig(json);
      if (Failed(c)) break;
      Check(c->Validate().ok());
      break;
    }
    case 1: {
      auto m = ParseHfModulesJson(json);
      if (Failed(m)) break;
      Check(m->size() >= 2);
      Check((*m)[0].type == "sentence_transformers.models.Transformer" && (*m)[0].path.empty());
      Check((*m)[1].type == "sentence_transformers.models.Pooling");
      for (const HfModuleEntry& e : *m) {
        // No ".." component (a folder may be named "..4_Normalize").
        for (size_t b = 0; b <= e.path.size();) {
          size_t end = e.path.find('/', b);
          if (end == std::string::npos) end = e.path.size();
          Check(e.path.compare(b, end - b, "..") != 0);
          b = end + 1;
        }
        Check(e.path.empty() || e.path[0] != '/');
      }
      break;
    }
    case 2: {
      const Status s = CheckHfPoolingConfig(json, 768);
      if (!s.ok()) Check(!s.message().empty());
      break;
    }
    case 3: {
      auto d = ParseHfDenseConfig(json, "2_Dense");
      if (Failed(d)) break;
      Check(d->in_features > 0 && d->out_features > 0 && d->path == "2_Dense");
      break;
    }
    case 4: {
      auto s = ParseHfSentenceBertConfig(json);
      if (Failed(s)) break;
      if (s->has_value()) Check(**s >= 2);
      break;
    }
    case 5: {
      auto t = ParseHfPromptTable(json);
      if (Failed(t)) break;
      bool default_listed = t->default_prompt_name.empty();
      for (const HfPrompt& p : t->prompts) {
        default_listed = default_listed || p.name == t->default_prompt_name;
        auto r = ResolveTaskPrompt(*t, p.name);
        Check(r.ok());
        // The first prompt of that name wins (names are unique in a JSON object
        // as parsed, but stay safe if the parser keeps duplicates).
        for (const HfPrompt& q : t->prompts) {
          if (q.name == p.name) {
            Check(*r == q.prefix);
            break;
          }
        }
      }
      Check(default_listed);
      break;
    }
  }
  return 0;
}
