// A Hugging Face sentence-transformers folder of EmbeddingGemma, opened for
// inference or conversion without a GGUF in between.
//
// Folder layout (google/embeddinggemma-300m):
//   config.json, modules.json, sentence_bert_config.json,
//   config_sentence_transformers.json             -> model/hf_config.h
//   model.safetensors | model.safetensors.index.json + shards
//       Gemma3TextModel weights, names with or without a "model." prefix
//       (embed_tokens.weight, layers.{i}.self_attn.q_proj.weight, ...)
//   2_Dense/model.safetensors, 3_Dense/model.safetensors   linear.weight [out, in]
//   tokenizer.json (+ tokenizer_config.json)
//
// Weights: matrices (F32 / F16 / BF16) are zero-copy views into the mapped
// safetensors files; safetensors' PyTorch [out, in] is ggml's [in, out], the
// layout ModelWeights wants (io/safetensors.h reverses shapes). Norm gains
// are the exception: HF's Gemma3RMSNorm computes x̂ * (1 + w) in fp32 and
// stores w, while ModelWeights (the GGUF convention, MODEL-SPEC §3) multiplies
// by the stored value, so each norm is converted to F32 and 1.0f added into
// storage owned here — bit for bit what llama.cpp's converter writes.
//
// Every problem is a Status naming the folder and the file / tensor: missing
// files, malformed JSON, unsupported settings (model/hf_config.h), a missing
// tensor, a wrong shape, a dtype gembed does not compute with.
//
// Threading: immutable after Open; any number of threads may read it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/hf_config.h"
#include "model/weights.h"

namespace gembed {

class SafetensorsFile;
class SafetensorsModel;
class Tokenizer;
struct Vocab;

// True for a directory: Engine::Open and `gembed convert` treat every
// directory as a Hugging Face folder (so a folder that is not one gets the
// folder loader's precise error, not a GGUF parse error).
bool IsHfFolder(const std::string& path);

// The safetensors name (without "model." prefix) of a GGUF tensor of the
// weight table: "blk.3.attn_q.weight" -> "layers.3.self_attn.q_proj.weight",
// "output_norm.weight" -> "norm.weight", "dense_2.weight" -> "linear.weight"
// (in the first Dense module's file). Empty for a name it does not know.
std::string HfTensorName(const TensorSpec& spec);

class HfModel {
 public:
  // Reads the configuration, maps the safetensors files and binds every
  // tensor. The tokenizer is loaded separately (LoadTokenizer / ReadVocab),
  // because the converter needs the vocabulary and the engine the tokenizer.
  static Result<std::unique_ptr<HfModel>> Open(const std::string& folder);
  ~HfModel();
  HfModel(const HfModel&) = delete;
  HfModel& operator=(const HfModel&) = delete;

  const std::string& folder() const { return folder_; }
  const HfFolderConfig& folder_config() const { return folder_config_; }
  // The model as config.json describes it (context_length =
  // max_position_embeddings): what a converted GGUF stores.
  const ModelConfig& config() const { return folder_config_.model; }
  // The same with context_length = sentence_bert_config's max_seq_length:
  // what the engine truncates to, as sentence-transformers does.
  ModelConfig EngineConfig() const;
  // Views into the mapped files (matrices, token_embd) and into owned
  // storage (norms, +1 folded in); valid while this object lives.
  const ModelWeights& weights() const { return weights_; }
  // Source dtype of the Transformer weights ("F32" for the real model).
  DType source_dtype() const { return source_dtype_; }

  // tokenizer.json (+ tokenizer_config.json) as a Vocab (HF BPE semantics).
  // Its model vocabulary must fit the embedding table (<= vocab_size); added
  // tokens beyond vocab_size (Gemma3's <image_soft_token> = 262144, which has
  // no embedding row) are kept in the Vocab; WriteGgufVocab drops them.
  Result<Vocab> ReadVocab() const;
  // The tokenizer the engine runs: ReadVocab() without the entries beyond
  // vocab_size (so no text can produce an id without an embedding row; such
  // a token's text is then tokenised as ordinary characters, as with a
  // converted GGUF).
  Result<std::unique_ptr<Tokenizer>> LoadTokenizer() const;

 private:
  HfModel() = default;
  Status BindWeights();

  std::string folder_;
  HfFolderConfig folder_config_;
  std::unique_ptr<SafetensorsModel> transformer_;           // model.safetensors (+ shards)
  std::vector<std::unique_ptr<SafetensorsFile>> dense_files_;  // N_Dense/model.safetensors
  std::vector<std::unique_ptr<float[]>> owned_;             // norm gains, 1 + w in F32
  ModelWeights weights_;
  DType source_dtype_ = DType::kF32;
};

}  // namespace gembed
