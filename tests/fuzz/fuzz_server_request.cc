// libFuzzer target for the request bodies of `gembed serve` (src/server/api.h):
// the OpenAI /v1/embeddings body, TEI's /embed body and the /tokenize bodies.
// The first input byte picks the parser, the rest is the body. Any bytes must
// give a parsed request or an ApiError (a 4xx with a message) whose JSON body
// parses back, never a crash, hang or overrun; what parses is re-checked:
//   * exactly one of texts / token ids, 1..max_inputs of them;
//   * every token id in [0, vocab), every sequence 1..max_sequence_tokens long;
//   * `dimensions` 0 or one of the allowed dims;
//   * token-id inputs carry no task, prompt or title;
//   * the response bodies built for it are valid JSON.
// Seeds: tests/fuzz/seeds/fuzz_server_request (selector byte + a valid body each).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "server/api.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckError(const gembed::server::ApiError& e) {
  Check(e.status >= 400 && e.status < 500);
  Check(!e.message.empty());
  const auto j = nlohmann::json::parse(gembed::server::ErrorBody(e), nullptr, /*allow_exceptions=*/false);
  Check(!j.is_discarded() && j["error"]["message"].is_string());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gembed::server;
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParseLimits lim;
  lim.max_inputs = 16;
  lim.vocab_size = 1000;
  lim.max_sequence_tokens = 32;
  lim.dims = {256, 128};
  const int which = data[0] % 3;
  if (which == 2) {
    TokenizeRequest t;
    if (auto e = ParseTokenize(body, lim, &t)) {
      CheckError(*e);
      return 0;
    }
    Check(!t.texts.empty() && t.texts.size() <= lim.max_inputs);
    Check(!t.llama_style || t.texts.size() == 1);
    return 0;
  }
  EmbedRequest r;
  if (auto e = which == 0 ? ParseOpenAiEmbeddings(body, lim, &r) : ParseTeiEmbed(body, lim, &r)) {
    CheckError(*e);
    return 0;
  }
  Check(r.tokens ? r.texts.empty() : r.token_ids.empty());
  Check(r.size() >= 1 && r.size() <= lim.max_inputs);
  for (const auto& seq : r.token_ids) {
    Check(!seq.empty() && seq.size() <= lim.max_sequence_tokens);
    for (int32_t id : seq) Check(id >= 0 && id < lim.vocab_size);
  }
  Check(r.dimensions == 0 || r.dimensions == 256 || r.dimensions == 128);
  Check(!r.tokens || (r.task.empty() && !r.prompt && r.title.empty()));
  const int dim = r.dimensions == 0 ? 256 : r.dimensions;
  const std::vector<float> v(r.size() * static_cast<size_t>(dim), 0.5f);
  const auto out = nlohmann::json::parse(
      OpenAiEmbeddingsBody(v, r.size(), dim, r.encoding, r.model, 7), nullptr, /*allow_exceptions=*/false);
  Check(!out.is_discarded() && out["data"].size() == r.size());
  const auto tei = nlohmann::json::parse(TeiEmbedBody(v, r.size(), dim), nullptr, false);
  Check(!tei.is_discarded() && tei.size() == r.size());
  return 0;
}
