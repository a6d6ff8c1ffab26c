// Hugging Face sentence-transformers folder -> GGUF, with the keys, tensor
// names and conventions of llama.cpp's converter for EmbeddingGemma
// (convert_hf_to_gguf.py --sentence-transformers-dense-modules; MODEL-SPEC §2-§3):
//
//   * general.architecture "gemma-embedding" and the gemma-embedding.* keys
//     (WriteArchKeys: context_length = max_position_embeddings, sliding_window
//     as stored in config.json (512), rope.freq_base / freq_base_swa,
//     pooling_type 1, dense_2/3_feat_in/out when the folder has a Dense head);
//   * general.type / name / file_type / quantization_version;
//   * the tokenizer.ggml.* keys of the folder's tokenizer.json (WriteGgufVocab),
//     add_bos / add_eos from its post-processor and tokenizer_config.json;
//   * the folder's prompt table (config_sentence_transformers.json), which
//     llama.cpp has no key for, as gembed.prompts.names / gembed.prompts.prefixes
//     (string arrays, file order) and gembed.prompts.default_name (only when
//     set); none of them when the folder has no prompts. `gembed embed --task`
//     reads them back (model/hf_config.h HfPromptTableFromGguf); llama.cpp
//     ignores them;
//   * tensors in the converter's order and names; norm gains with "+1" folded
//     in, always F32; every 2-D weight (token_embd and Dense included) in the
//     requested type; Q8_0 by ggml's reference rule (model/synthetic.h EncodeTensor).
#pragma once

#include <string>

#include "base/dtype.h"
#include "base/status.h"

namespace gembed {

struct HfConvertOptions {
  DType type = DType::kF32;  // F32, F16, BF16 or Q8_0 for 2-D weights
  int threads = 0;           // encoding threads; <= 0: hardware concurrency
  std::string name;          // general.name; empty: the folder's base name
};

struct HfConvertStats {
  int tensors = 0;
  uint64_t tensor_bytes = 0;
};

// Errors: everything HfModel::Open / ReadVocab reports; kInvalidArgument for
// a type other than the four above or a Q8_0 row width not a multiple of 32;
// kUnsupported when the tokenizer's vocabulary size differs from vocab_size
// (llama.cpp requires one embedding row per token); write errors.
Result<HfConvertStats> ConvertHfFolderToGguf(const std::string& folder, const std::string& out_path,
                                             const HfConvertOptions& options = {});

}  // namespace gembed
