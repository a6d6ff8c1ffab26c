// gembed quantize / gembed prune: compressed GGUFs from a Hugging Face folder
// or a GGUF (model/compress.h; docs/COMPRESSION.md). Both commands run the same
// pipeline: read -> (calibrate) -> FFN width -> drop layers -> (re-calibrate)
// -> block sparsity -> encode; quantize exposes the type flags, prune the
// pruning flags plus the type flags.
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "model/compress.h"
#include "tokenizer/tokenizer.h"

namespace gembed::cli {
namespace {

struct CompressArgs {
  std::string in, out, type, embd_type, keep_type = "q8_0", keep, calib;
  bool no_search = false;
  int64_t calib_texts = 256, calib_tokens = 256;
  int threads = 0;
  // prune only
  int64_t ffn_width = 0;
  std::string drop_layers, sparsity, block = "16x32", score = "wanda", group = "row";
  int drop_count = 0;
};

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::optional<DType> OutputType(const std::string& name) {
  const auto dt = DTypeFromName(name);
  if (!dt) return std::nullopt;
  switch (*dt) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
      return dt;
    default:
      return std::nullopt;
  }
}

int Fail(const char* cmd, const Status& st) {
  std::fprintf(stderr, "gembed %s: %s\n", cmd, st.ToString().c_str());
  return 1;
}

int Usage(const char* cmd, const std::string& msg) {
  std::fprintf(stderr, "gembed %s: %s\n", cmd, msg.c_str());
  return 2;
}

int RunCompress(const char* cmd, const CompressArgs& a) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  const auto type = OutputType(a.type);
  if (!type) return Usage(cmd, "unknown --type '" + a.type + "' (f32, f16, bf16, q8_0, q4_0, q4_1)");
  const auto embd_type = a.embd_type.empty() ? type : OutputType(a.embd_type);
  if (!embd_type) return Usage(cmd, "unknown --embd-type '" + a.embd_type + "'");
  const auto keep_type = OutputType(a.keep_type);
  if (!keep_type) return Usage(cmd, "unknown --keep-type '" + a.keep_type + "'");
  TypePlan plan;
  plan.matrices = *type;
  plan.embedding = *embd_type;
  plan.eight_bit = *keep_type;
  plan.keep = SplitList(a.keep);
  plan.search = !a.no_search;
  if (Status st = ValidateKeepClasses(plan.keep); !st.ok()) return Usage(cmd, "--keep-8bit: " + st.message());
  std::vector<int> drop;
  for (const std::string& s : SplitList(a.drop_layers)) {
    char* end = nullptr;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (end == nullptr || *end != '\0' || v < 0 || v > 1000) return Usage(cmd, "--drop-layers: bad layer '" + s + "'");
    drop.push_back(static_cast<int>(v));
  }
  if (a.drop_count > 0 && !drop.empty()) return Usage(cmd, "--drop-layers and --drop-count exclude each other");
  if (a.drop_count > 0 && a.calib.empty()) return Usage(cmd, "--drop-count picks layers by calibration: give --calib");
  if (a.score != "wanda" && a.score != "magnitude") return Usage(cmd, "--score is wanda or magnitude");
  const SparsityScore score = a.score == "wanda" ? SparsityScore::kWanda : SparsityScore::kMagnitude;
  if (a.group != "row" && a.group != "matrix") return Usage(cmd, "--group is row or matrix");
  const SparsityGroup group = a.group == "row" ? SparsityGroup::kBlockRow : SparsityGroup::kMatrix;
  int64_t brows = 0, bcols = 0;
  if (std::sscanf(a.block.c_str(), "%ldx%ld", &brows, &bcols) != 2 || brows % 16 != 0 || bcols % 32 != 0 ||
      brows <= 0 || bcols <= 0)
    return Usage(cmd, "--block '" + a.block + "': ROWSxCOLS with ROWS a multiple of 16 and COLS of 32 (e.g. 16x32)");
  std::vector<BlockSparsity> rules;
  if (!a.sparsity.empty()) {
    auto r = ParseSparsityRules(a.sparsity, brows, bcols);
    if (!r.ok()) return Usage(cmd, "--block-sparsity: " + r.status().message());
    rules = std::move(*r);
    if (score == SparsityScore::kWanda && a.calib.empty())
      return Usage(cmd, "--score wanda needs --calib (or use --score magnitude)");
  }
  const int threads = ResolveThreadCount(a.threads);

  auto source = SourceModel::Open(a.in);
  if (!source.ok()) return Fail(cmd, source.status());
  auto fm = ToFloatModel(**source, threads);
  if (!fm.ok()) return Fail(cmd, fm.status());
  std::vector<std::vector<int32_t>> calib;
  std::optional<CalibrationStats> stats;
  auto calibrate = [&]() -> Status {
    GEMBED_ASSIGN_OR_RETURN(CalibrationStats s, Calibrate(*fm, calib, threads));
    stats = std::move(s);
    return Status::Ok();
  };
  if (!a.calib.empty()) {
    auto tok = (*source)->LoadTokenizer();
    if (!tok.ok()) return Fail(cmd, tok.status());
    auto seqs = CalibrationSequences(**tok, a.calib, a.calib_tokens, a.calib_texts);
    if (!seqs.ok()) return Fail(cmd, seqs.status());
    calib = std::move(*seqs);
    if (Status st = calibrate(); !st.ok()) return Fail(cmd, st);
    std::fprintf(stderr, "gembed %s: calibrated on %ld texts, %ld tokens\n", cmd, static_cast<long>(stats->sequences),
                 static_cast<long>(stats->tokens));
  }
  std::vector<std::string> notes;
  notes.push_back(fmt::format("type={} embd={}", DTypeName(*type), DTypeName(*embd_type)));
  if (!plan.keep.empty()) notes.push_back(fmt::format("keep({})={}", DTypeName(*keep_type), a.keep));
  bool structural = false;
  if (a.ffn_width > 0) {
    if (Status st = PruneFfn(*fm, a.ffn_width, stats ? &*stats : nullptr); !st.ok()) return Fail(cmd, st);
    notes.push_back(fmt::format("ffn_width={}", a.ffn_width));
    structural = true;
  }
  if (a.drop_count > 0) {
    auto l = LeastInfluentialLayers(*stats, a.drop_count);
    if (!l.ok()) return Fail(cmd, l.status());
    drop = *l;
  }
  if (!drop.empty()) {
    std::string list;
    for (int l : drop) list += (list.empty() ? "" : ",") + std::to_string(l);
    if (Status st = DropLayers(*fm, drop); !st.ok()) return Fail(cmd, st);
    notes.push_back("dropped_layers=" + list);
    std::fprintf(stderr, "gembed %s: dropped layers %s\n", cmd, list.c_str());
    structural = true;
  }
  if (structural && stats) {  // the statistics of the smaller model
    if (Status st = calibrate(); !st.ok()) return Fail(cmd, st);
  }
  if (!rules.empty()) {
    auto frac = ApplyBlockSparsity(*fm, rules, score, stats ? &*stats : nullptr, group);
    if (!frac.ok()) return Fail(cmd, frac.status());
    notes.push_back(fmt::format("block_sparsity={} block={} score={} group={} zero_fraction_of_layer_matrices={:.4f}",
                                a.sparsity, a.block, a.score, a.group, *frac));
    std::fprintf(stderr, "gembed %s: %.1f%% of the layer matrices' weights set to zero\n", cmd, *frac * 100);
  }
  if (stats && plan.search) {
    plan.importance = &*stats;
    notes.push_back("q4_search=activation-weighted");
  } else if (plan.search) {
    notes.push_back("q4_search=mse");
  }
  std::string note;
  for (const std::string& n : notes) note += (note.empty() ? "" : "; ") + n;
  if (Status st = WriteCompressedModel(**source, *fm, plan, note, a.out, threads); !st.ok()) return Fail(cmd, st);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::fprintf(stderr, "gembed %s: wrote %s (%s) in %.1f s\n", cmd, a.out.c_str(), note.c_str(), s);
  return 0;
}

void AddCommonOptions(CLI::App* app, CompressArgs* a) {
  app->add_option("input", a->in, "Hugging Face folder or GGUF (any type gembed reads)")->required();
  app->add_option("-o,--output", a->out, "Output .gguf path")->required();
  app->add_option("--embd-type", a->embd_type, "Type of token_embd (default: --type)");
  app->add_option("--keep-8bit", a->keep, "Tensor classes kept at --keep-type: attn_q,attn_k,attn_v,attn_output,"
                                          "ffn_gate,ffn_up,ffn_down,attn,ffn,dense,embd,first,last,layerN");
  app->add_option("--keep-type", a->keep_type, "Type of the --keep-8bit tensors")->capture_default_str();
  app->add_option("--calib", a->calib, "Calibration texts, one per line (activation-aware 4-bit search, Wanda, "
                                       "FFN channel and layer scores)");
  app->add_option("--calib-texts", a->calib_texts, "At most this many calibration texts")->capture_default_str();
  app->add_option("--calib-tokens", a->calib_tokens, "Tokens per calibration text at most")->capture_default_str();
  app->add_flag("--no-search", a->no_search, "4-bit blocks by ggml's reference rule instead of the error search");
  app->add_option("--threads", a->threads, "Threads (default: all cores)")->check(ThreadCountValidator());
}

}  // namespace

Command MakeQuantizeCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("quantize", "Write a quantised GGUF (q8_0, q4_0, q4_1, mixed) from a folder or GGUF");
  auto a = std::make_shared<CompressArgs>();
  AddCommonOptions(app, a.get());
  app->add_option("--type", a->type, "Type of the matrices: q8_0|q4_0|q4_1|f16|bf16|f32")->required();
  return {app, [a] { return RunCompress("quantize", *a); }};
}

Command MakePruneCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("prune", "Write a pruned GGUF: narrower FFN, fewer layers, block-sparse matrices");
  auto a = std::make_shared<CompressArgs>();
  a->type = "q8_0";
  AddCommonOptions(app, a.get());
  app->add_option("--type", a->type, "Type of the matrices: q8_0|q4_0|q4_1|f16|bf16|f32 (block sparsity is "
                                     "skipped by the kernels for q8_0)")
      ->capture_default_str();
  app->add_option("--ffn-width", a->ffn_width, "Keep this many FFN channels per layer (multiple of 32)");
  app->add_option("--drop-layers", a->drop_layers, "Remove these layers (comma-separated indices)");
  app->add_option("--drop-count", a->drop_count, "Remove this many layers of least block influence (needs --calib)");
  app->add_option("--block-sparsity", a->sparsity, "Zero blocks per matrix class: e.g. ffn=0.5,attn=0.3 or all=0.6");
  app->add_option("--block", a->block, "Block shape ROWSxCOLS (output rows x input columns)")->capture_default_str();
  app->add_option("--score", a->score, "Block score: wanda (|w| * rms(x), needs --calib) or magnitude (|w|)")
      ->capture_default_str();
  app->add_option("--group", a->group, "Blocks compared for removal: row (each block row of outputs loses the "
                                       "same share, Wanda's rule) or matrix (lowest scores of the whole matrix)")
      ->capture_default_str();
  return {app, [a] { return RunCompress("prune", *a); }};
}

}  // namespace gembed::cli
