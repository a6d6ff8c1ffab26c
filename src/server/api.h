// The wire formats of `gembed serve`, independent of any HTTP library:
// parsing and validating request bodies (OpenAI /v1/embeddings, Hugging Face
// TEI /embed and /tokenize, llama.cpp's /tokenize) into plain structs, and
// writing response bodies (OpenAI's list of embeddings as floats or base64,
// TEI's array of arrays, OpenAI's error object).
//
// Every problem with a body is an ApiError with the HTTP status to answer and
// a message naming the field; nothing here throws to the caller or aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gembed::server {

// OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;   // "" -> null
  std::string param;  // "" -> null
};

// The JSON body of an error response.
std::string ErrorBody(const ApiError& error);

// What a request body may hold (from the model and the server's limits).
struct ParseLimits {
  size_t max_inputs = 2048;       // texts / token sequences per request (more: 413)
  int64_t vocab_size = 0;         // token ids must lie in [0, vocab_size)
  size_t max_sequence_tokens = 0; // ids per token-id input (the context length)
  std::vector<int> dims;          // allowed `dimensions`, full dim first
};

enum class Encoding { kFloat, kBase64 };

// One /v1/embeddings or /embed request: either texts or token-id sequences.
struct EmbedRequest {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> token_ids;
  bool tokens = false;  // true: token_ids are the inputs
  std::string model;    // as sent ("" when absent)
  Encoding encoding = Encoding::kFloat;
  int dimensions = 0;   // 0: the model's full dim
  // gembed extensions (the `extra_body` of the OpenAI SDK); TEI's prompt_name is `task`.
  std::string task;
  std::string title;
  std::optional<std::string> prompt;
  bool truncate = true;

  size_t size() const { return tokens ? token_ids.size() : texts.size(); }
};

// POST /v1/embeddings: `input` (string | [string] | [int] | [[int]]), `model`,
// `encoding_format` (float | base64), `dimensions`, `user` (ignored), and
// `task`, `prompt`, `title`, `truncate` (gembed). Unknown fields are ignored.
std::optional<ApiError> ParseOpenAiEmbeddings(std::string_view body, const ParseLimits& limits, EmbedRequest* out);

// POST /embed (TEI): `inputs`, `normalize` (only true), `truncate`,
// `truncation_direction` (only right), `prompt_name`, `dimensions`.
std::optional<ApiError> ParseTeiEmbed(std::string_view body, const ParseLimits& limits, EmbedRequest* out);

// POST /tokenize: TEI's {"inputs", "add_special_tokens", "prompt_name"} or
// llama.cpp's {"content", "add_special", "with_pieces"}.
struct TokenizeRequest {
  std::vector<std::string> texts;
  bool llama_style = false;  // answer {"tokens": [...]} for the one `content` text
  bool add_special = true;   // TEI default true, llama.cpp default false
  bool with_pieces = false;  // llama.cpp: [{"id", "piece"}] instead of ids
  std::string task;          // TEI prompt_name
};
std::optional<ApiError> ParseTokenize(std::string_view body, const ParseLimits& limits, TokenizeRequest* out);

// Response bodies. `vectors` is n rows of `dim` floats, row-major.
std::string OpenAiEmbeddingsBody(std::span<const float> vectors, size_t n, int dim, Encoding encoding,
                                 std::string_view model, size_t prompt_tokens);
std::string TeiEmbedBody(std::span<const float> vectors, size_t n, int dim);

// Standard base64 (RFC 4648, with padding) of `bytes`.
std::string Base64Encode(std::span<const uint8_t> bytes);

// JSON string literal of `s` (quotes included); invalid UTF-8 becomes U+FFFD.
std::string JsonString(std::string_view s);

// Constant-time comparison of a secret with a candidate: the time depends
// only on secret.size(), not on where the two differ.
bool ConstantTimeEquals(std::string_view secret, std::string_view candidate);

}  // namespace gembed::server
