// Model compression: `gembed quantize` and `gembed prune` (docs/COMPRESSION.md).
//
// A model (Hugging Face folder or GGUF, any dtype gembed reads) is opened as a
// SourceModel, widened to a FloatModel (every tensor in fp32, by name), changed
// in place (structured pruning, block sparsity) and written to a GGUF with each
// tensor encoded in the type a TypePlan gives it. Optional calibration runs the
// fp32 forward pass over token sequences and records, per layer, the mean
// square of every input channel of each matrix (the "importance matrix" of
// activation-aware quantisation and of Wanda's |W| * ||x|| score) and the
// layer's block influence (mean 1 - cos between its input and output rows).
//
// Every file written is a valid gemma-embedding GGUF that llama.cpp loads
// (Q8_0 / Q4_0 / Q4_1 blocks in ggml's byte format; pruned models are smaller
// models with consistent keys; block-sparse models hold explicit zero blocks).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "model/config.h"
#include "model/weights.h"

namespace gembed {

class GgufFile;
class GgufWriter;
class HfModel;
class Tokenizer;

struct FloatTensor {
  TensorSpec spec;
  std::vector<float> data;  // spec.ne[1] rows of spec.ne[0] values (1 row for 1-D)
  int64_t rows() const { return spec.n_dims >= 2 ? spec.ne[1] : 1; }
  int64_t cols() const { return spec.ne[0]; }
};

struct FloatModel {
  ModelConfig config;
  std::map<std::string, FloatTensor> tensors;  // by GGUF name
  // F32 views of the tensors for Model::Create (valid while this lives and is
  // not changed). kCorruptFile if a tensor of the config is missing or has
  // another shape.
  Result<ModelWeights> Views() const;
};

// A model file to compress: a Hugging Face folder or a GGUF.
class SourceModel {
 public:
  static Result<std::unique_ptr<SourceModel>> Open(const std::string& path);
  ~SourceModel();
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& path() const { return path_; }
  Result<std::unique_ptr<Tokenizer>> LoadTokenizer() const;
  // Every key except the architecture's (gemma-embedding.*), which the writer
  // derives from the (possibly pruned) config: general.*, tokenizer.*,
  // gembed.prompts.* (a folder's are made as `gembed convert` makes them).
  Status WriteOtherKeys(GgufWriter* w) const;

 private:
  SourceModel() = default;
  std::string path_;
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<HfModel> hf_;
  ModelConfig config_;
  ModelWeights weights_;
};

// Widens every tensor of `source` to fp32 (exact for F32/F16/BF16/Q8_0/Q4_0).
Result<FloatModel> ToFloatModel(const SourceModel& source, int threads);

// ---- calibration ------------------------------------------------------------
struct LayerStats {
  // Sum over calibration tokens of x_c^2 per input channel of:
  std::vector<double> qkv_in;   // attn_q / attn_k / attn_v (the attn_norm output)   [n_embd]
  std::vector<double> out_in;   // attn_output (the attention output)                [q_width]
  std::vector<double> ffn_in;   // ffn_gate / ffn_up (the ffn_norm output)           [n_embd]
  std::vector<double> down_in;  // ffn_down (gelu(gate) * up)                        [n_ff]
  double influence = 0;         // mean over tokens of 1 - cos(layer input, output)
};
struct CalibrationStats {
  int64_t tokens = 0;
  int64_t sequences = 0;
  std::vector<LayerStats> layers;
  // Mean square per input channel of the matrix `name` ("blk.3.ffn_down.weight"),
  // or empty when the stats do not cover it (token_embd, Dense, other shapes).
  std::vector<float> MeanSquare(const std::string& name, int64_t cols) const;
};
// Runs the fp32 forward pass of `model` over `sequences` (token ids with BOS /
// EOS, each at most the context length) on `threads` threads.
Result<CalibrationStats> Calibrate(const FloatModel& model, const std::vector<std::vector<int32_t>>& sequences,
                                   int threads);
// Token sequences of the lines of a text file (empty lines skipped, each cut
// to `max_tokens`), with the tokenizer's BOS / EOS.
Result<std::vector<std::vector<int32_t>>> CalibrationSequences(const Tokenizer& tokenizer, const std::string& path,
                                                               int64_t max_tokens, int64_t max_texts);

// ---- quantisation -------------------------------------------------------------
// Quantises one row of `k` values (k % 32 == 0) to Q4_0 / Q4_1 blocks by an
// error-minimising search (candidate scales, then a least-squares refit of
// scale (and min) for the chosen levels, with the fp16 rounding of the stored
// values included) under per-channel weights `importance` (nullptr: all 1),
// i.e. minimising sum_c importance_c * (w_c - dequant_c)^2. Never worse than
// ggml's reference rule under that error, which is one of the candidates.
void QuantizeRowQ4_0Search(const float* x, int64_t k, const float* importance, BlockQ4_0* out);
void QuantizeRowQ4_1Search(const float* x, int64_t k, const float* importance, BlockQ4_1* out);

// Which tensors get which type.
struct TypePlan {
  DType matrices = DType::kQ8_0;    // every 2-D weight not named below
  DType embedding = DType::kQ8_0;   // token_embd
  DType eight_bit = DType::kQ8_0;   // the type of the tensors in `keep`
  // Tensor classes kept at `eight_bit`: attn_q attn_k attn_v attn_output
  // ffn_gate ffn_up ffn_down, "attn" (the four), "ffn" (the three), "dense",
  // "embd", "first" / "last" (every matrix of layer 0 / the last layer),
  // "layerN" (every matrix of layer N).
  std::vector<std::string> keep;
  bool search = true;  // Q4: error-minimising search (false: ggml's reference rule)
  const CalibrationStats* importance = nullptr;  // activation-aware Q4 search
  DType TypeOf(const TensorSpec& spec, uint32_t n_layer) const;
};
// Errors: an unknown class name in `keep`.
Status ValidateKeepClasses(const std::vector<std::string>& keep);

// Writes `model` to `out_path` (atomically): the architecture keys of
// model.config, the source's other keys, `gembed.compression` = `note`, and
// every tensor of the config in the plan's type (norms F32).
Status WriteCompressedModel(const SourceModel& source, const FloatModel& model, const TypePlan& plan,
                            const std::string& note, const std::string& out_path, int threads);

// ---- pruning ----------------------------------------------------------------------
// Keeps the `width` FFN channels of every layer with the largest score
// ||down[:, c]|| * rms(down input c) (calibrated) or ||down[:, c]|| * ||[gate; up][c, :]||
// (without stats), in their original order; width % 32 == 0, <= n_ff.
Status PruneFfn(FloatModel& model, int64_t width, const CalibrationStats* stats);
// Removes the listed layers (renumbering the rest; each keeps its sliding /
// global kind and RoPE base). At least one layer must stay.
Status DropLayers(FloatModel& model, std::vector<int> layers);
// The `count` layers of least block influence (calibrated), ascending by index;
// never the last layer.
Result<std::vector<int>> LeastInfluentialLayers(const CalibrationStats& stats, int count);

enum class SparsityScore { kMagnitude, kWanda };
// Which blocks compete for removal: those of one block row (the R output rows
// of a block; every output keeps the same share of its inputs, Wanda's
// per-output comparison group) or all blocks of the matrix.
enum class SparsityGroup { kBlockRow, kMatrix };
struct BlockSparsity {
  std::string matrix_class;  // attn_q ... ffn_down, "attn", "ffn" or "all"
  double ratio = 0.5;        // fraction of blocks set to zero, per matrix
  int64_t rows = 16, cols = 32;  // block shape: output rows x input columns
};
// Zeroes, in each matrix of the class, the `ratio` of its blocks with the
// lowest score: sum over the block of |w| (magnitude) or |w| * rms(x_c)
// (Wanda: needs stats). rows % 16 == 0 and cols % 32 == 0, so every zero
// block is a set of whole kernel tiles. Returns the zeroed fraction overall.
Result<double> ApplyBlockSparsity(FloatModel& model, const std::vector<BlockSparsity>& rules, SparsityScore score,
                                  const CalibrationStats* stats, SparsityGroup group = SparsityGroup::kBlockRow);
// "ffn=0.5,attn=0.3" / "all=0.6" -> rules with the given block shape.
Result<std::vector<BlockSparsity>> ParseSparsityRules(const std::string& text, int64_t rows, int64_t cols);

}  // namespace gembed
