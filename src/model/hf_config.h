// The configuration files of a Hugging Face sentence-transformers folder of
// EmbeddingGemma (google/embeddinggemma-300m layout), parsed and validated:
//
//   config.json                          Gemma3TextConfig -> ModelConfig
//   modules.json                         Transformer -> Pooling -> Dense* -> Normalize
//   1_Pooling/config.json                mean pooling with include_prompt
//   2_Dense/config.json, 3_Dense/...     Linear in->out, no bias, Identity
//   sentence_bert_config.json            max_seq_length
//   config_sentence_transformers.json    the prompt table (--task names)
//
// The prompt table also travels in a converted GGUF as gembed.prompts.* keys
// (WriteHfPromptTableToGguf / HfPromptTableFromGguf below).
//
// Everything gembed would compute differently from sentence-transformers is
// rejected with kUnsupported and a message naming the file and the key
// (causal attention, another pooling, a Dense bias or activation, a query
// scale other than 1/sqrt(head_dim), RoPE scaling, ...). Malformed JSON and
// values of the wrong type are kCorruptFile. Keys gembed does not need are
// ignored. A JSON null counts as absent (HF writes nulls for unset options).
//
// Parsing is pure (strings in, structs out) so the rules are unit-tested
// without files; ReadHfFolderConfig reads the files of a folder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/config.h"

namespace gembed {

class GgufFile;    // io/gguf.h
class GgufWriter;  // io/gguf.h

// config.json -> ModelConfig. Mapping (HF name -> field; HF default if absent):
//   model_type must be "gemma3_text"; use_bidirectional_attention must be true;
//   hidden_size -> n_embd; num_hidden_layers -> n_layer; intermediate_size -> n_ff;
//   num_attention_heads -> n_head; num_key_value_heads -> n_head_kv (n_head);
//   head_dim (hidden_size / num_attention_heads); vocab_size -> n_vocab;
//   max_position_embeddings -> context_length; rms_norm_eps (1e-6);
//   rope_theta -> rope_base (1e6); rope_local_base_freq -> rope_base_swa (1e4);
//   sliding_window (4096), stored as HF stores it: the full width, so the
//     radius is sliding_window / 2 (HF's bidirectional rewrite to
//     sliding_window // 2 + 1 with |q - k| < that is the same mask, MODEL-SPEC §5.4);
//   layer_types ("sliding_attention" / "full_attention"), else
//     sliding_window_pattern or _sliding_window_pattern P (6): layer i slides
//     iff (i + 1) % P != 0;
//   query_pre_attn_scalar (256): its scale query_pre_attn_scalar^-0.5 must equal
//     head_dim^-0.5 (gembed scales Q by 1/sqrt(head_dim), as llama.cpp does);
//   hidden_activation ("gelu_pytorch_tanh") must be gelu_pytorch_tanh;
//   rope_scaling must be null (or rope_type "default"); attention_bias false;
//   attn_logit_softcapping null.
// Pooling is mean, dense_hidden 0 (the Dense head comes from modules.json).
Result<ModelConfig> ParseHfModelConfig(std::string_view config_json);

// One Dense module of the sentence-transformers head (its config.json).
struct HfDenseConfig {
  std::string path;  // folder relative to the model folder, e.g. "2_Dense"
  uint32_t in_features = 0;
  uint32_t out_features = 0;
};

// A named task prompt (config_sentence_transformers.json "prompts").
struct HfPrompt {
  std::string name;    // e.g. "Retrieval-query"
  std::string prefix;  // e.g. "task: search result | query: "
};

struct HfPromptTable {
  std::vector<HfPrompt> prompts;   // file order
  std::string default_prompt_name;  // "" when null / absent
};

// Everything gembed takes from a folder besides tensors and tokenizer.
struct HfFolderConfig {
  ModelConfig model;        // from config.json; dense_hidden set from the Dense modules
  // sentence_bert_config.json max_seq_length (texts are truncated to it,
  // BOS/EOS included); context_length when absent. <= model.context_length.
  uint32_t max_seq_length = 0;
  bool has_modules_json = false;  // false: plain transformers folder (mean pooling, no Dense)
  std::vector<HfDenseConfig> dense;  // 0 or 2 modules (dense_2, dense_3)
  bool normalize = true;             // modules.json lists Normalize (gembed always normalises)
  HfPromptTable prompts;             // empty without config_sentence_transformers.json
};

// modules.json: fills has_modules_json / dense paths / normalize and returns
// the Pooling module's path. `read` loads a module's config.json (relative
// path) so the parser stays file-free; see ReadHfFolderConfig.
// Rules: module 0 is sentence_transformers.models.Transformer with path "";
// then exactly one Pooling; then 0 or 2 Dense; then optionally Normalize
// (last). Paths are relative and may not contain "..". Other module types
// are kUnsupported.
struct HfModuleEntry {
  std::string type;  // "sentence_transformers.models.Pooling", ...
  std::string path;  // "1_Pooling"
};
Result<std::vector<HfModuleEntry>> ParseHfModulesJson(std::string_view modules_json);

// 1_Pooling/config.json: word_embedding_dimension must equal n_embd,
// pooling_mode_mean_tokens true and every other pooling_mode_* false,
// include_prompt true (default true).
Status CheckHfPoolingConfig(std::string_view pooling_json, uint32_t n_embd);

// N_Dense/config.json: in_features / out_features (required), bias false
// (sentence-transformers' default is true, so it must be written),
// activation_function "torch.nn.modules.linear.Identity" (required: the
// default is Tanh).
Result<HfDenseConfig> ParseHfDenseConfig(std::string_view dense_json, std::string path);

// sentence_bert_config.json: max_seq_length (null/absent -> nullopt; must be
// >= 2), do_lower_case must be false.
Result<std::optional<uint32_t>> ParseHfSentenceBertConfig(std::string_view json);

// config_sentence_transformers.json: "prompts" (object of strings) and
// "default_prompt_name" (null or one of the prompt names).
Result<HfPromptTable> ParseHfPromptTable(std::string_view json);

// Reads and validates every configuration file of the folder (not the
// tensors, not the tokenizer). Errors name the file. Missing config.json is
// kNotFound; a missing modules.json is allowed (logged: mean pooling without
// a Dense head, what sentence-transformers builds for a bare transformers
// folder); a module listed in modules.json whose config.json is missing is
// kNotFound.
Result<HfFolderConfig> ReadHfFolderConfig(const std::string& folder);

// The prompt table in a GGUF (written by `gembed convert` from the folder's
// config_sentence_transformers.json; llama.cpp ignores these keys):
//   gembed.prompts.names         array of string, the names in file order
//   gembed.prompts.prefixes      array of string, prefixes[i] belongs to names[i]
//   gembed.prompts.default_name  string, one of the names (only when set)
inline constexpr const char* kGgufPromptNamesKey = "gembed.prompts.names";
inline constexpr const char* kGgufPromptPrefixesKey = "gembed.prompts.prefixes";
inline constexpr const char* kGgufPromptDefaultKey = "gembed.prompts.default_name";

// Adds the keys above to `w`; nothing when the table has no prompts (a
// default name is always one of the prompts).
void WriteHfPromptTableToGguf(const HfPromptTable& table, GgufWriter* w);

// Reads the keys above back. No gembed.prompts.* key: the empty table.
// kCorruptFile naming the key for: a key of the wrong type (names / prefixes
// not arrays of strings, default_name not a string), names without prefixes
// or the reverse, arrays of different lengths, an empty or repeated name, a
// default name that is not one of the names.
Result<HfPromptTable> HfPromptTableFromGguf(const GgufFile& gguf);

// Only the prompt table of a model path (what `gembed embed --task` needs
// before the model is opened): a folder's config_sentence_transformers.json,
// or a GGUF file's gembed.prompts.* keys (HfPromptTableFromGguf). Empty when
// the folder has no config_sentence_transformers.json, the GGUF has no such
// keys, or `path` is neither a folder nor a file starting with the GGUF magic
// (opening the model reports what is wrong with it). Errors name `path`.
Result<HfPromptTable> ReadHfPromptTable(const std::string& path);

// The prefix for a task name (EmbedOptions::task, `--task`). Precedence: the folder's table (exact,
// case-sensitive name), then gembed's built-in model-card names
// (tokenizer/prompts.h). `title` (non-empty) fills the document title: in a
// built-in "{title}" template, or in a folder prompt that starts with
// "title: none | " (the model card's document format); for any other prompt a
// title is kInvalidArgument. An unknown name is kInvalidArgument listing every
// available name (folder names first).
Result<std::string> ResolveTaskPrompt(const HfPromptTable& folder, std::string_view name,
                                      std::string_view title = {});

// Folder names (file order), then the built-in names not already listed.
std::vector<std::string> AvailableTaskNames(const HfPromptTable& folder);

// Reads a whole (small) text file; kNotFound if it does not exist, kIoError
// for a folder or anything else that is not a regular file (a FIFO is refused,
// not waited on), kUnsupported above max_bytes.
Result<std::string> ReadSmallTextFile(const std::string& path, uint64_t max_bytes = 64u << 20);

}  // namespace gembed
