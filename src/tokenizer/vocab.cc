#include "tokenizer/vocab.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "io/gguf.h"
#include "io/mmap.h"
#include "tokenizer/json_reader.h"
#include "tokenizer/piece_table.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab_internal.h"

namespace gembed {

using tokenizer_internal::JsonKind;
using tokenizer_internal::JsonReader;

namespace {

// Ids above this are rejected before anything is allocated for them.
constexpr int64_t kMaxTokenId = (int64_t{1} << 26) - 1;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// A piece "<0xAB>" exactly as SentencePiece / HF spell byte tokens.
bool IsByteTokenText(std::string_view s) {
  const int b = tokenizer_internal::ParseByteTokenText(s);
  return b >= 0 && s == tokenizer_internal::ByteTokenText(static_cast<uint8_t>(b));
}

// ---------------------------------------------------------------------------
// tokenizer.json
// ---------------------------------------------------------------------------

struct AddedTokenJson {
  int64_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

struct TemplateJson {
  bool present = false;
  std::vector<std::string> before;  // special token names before $A in "single"
  std::vector<std::string> after;   // ... after $A
  std::map<std::string, std::vector<int64_t>> special_ids;
};

struct ModelJson {
  bool present = false;
  std::string type;
  std::string unk_token;
  bool has_unk = false;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::vector<std::string> tokens;
  std::vector<uint8_t> filled;
  size_t n_entries = 0;
  // Merge pieces, buffered (the vocab may come after the merges): merge i is
  // (arena[off[2i], off[2i+1]), arena[off[2i+1], off[2i+2])).
  std::string merge_arena;
  std::vector<uint32_t> merge_offsets{0};
};

class HfJsonParser {
 public:
  explicit HfJsonParser(std::string_view json) : r_(json) {}

  // *table receives the piece table over the returned vocab's tokens.
  Result<Vocab> Parse(std::unique_ptr<tokenizer_internal::PieceTable>* table);

 private:
  bool ParseAddedTokens();
  bool ParseNormalizer(std::vector<TextReplacement>* out);
  bool ParsePreTokenizer(std::string* split_pattern);
  bool ParsePostProcessor();
  bool ParseModel();
  bool ParseVocab();
  bool ParseMerges();
  // {"String": "..."} patterns; anything else (Regex) is unsupported.
  bool ParseStringPattern(const char* what, std::string* out);

  bool Unsupported(std::string message) {
    if (unsupported_.empty()) unsupported_ = std::move(message);
    // Stop parsing: fail the reader with a marker; Parse() reports kUnsupported.
    return r_.Fail("unsupported");
  }

  JsonReader r_;
  std::string unsupported_;
  std::vector<AddedTokenJson> added_;
  std::vector<TextReplacement> normalizer_;
  std::string split_pattern_;
  TemplateJson template_;
  ModelJson model_;
  std::string key_;  // scratch
};

bool HfJsonParser::ParseStringPattern(const char* what, std::string* out) {
  if (!r_.BeginObject()) return false;
  bool found = false;
  std::string key;
  while (r_.NextMember(&key)) {
    if (key == "String") {
      if (!r_.ReadString(out)) return false;
      found = true;
    } else {
      return Unsupported(fmt::format("{} pattern '{}' (only String patterns are supported)", what, key));
    }
  }
  if (r_.ok() && !found) return Unsupported(fmt::format("{} without a String pattern", what));
  return r_.ok();
}

bool HfJsonParser::ParseAddedTokens() {
  if (r_.Peek() == JsonKind::kNull) return r_.ReadNull();
  if (!r_.BeginArray()) return false;
  std::string key;
  while (r_.NextElement()) {
    AddedTokenJson t;
    bool has_id = false, has_content = false;
    if (!r_.BeginObject()) return false;
    while (r_.NextMember(&key)) {
      if (key == "id") {
        if (!r_.ReadInt64(&t.id)) return false;
        has_id = true;
      } else if (key == "content") {
        if (!r_.ReadString(&t.content)) return false;
        has_content = true;
      } else if (key == "special") {
        if (!r_.ReadBool(&t.special)) return false;
      } else if (key == "normalized") {
        if (!r_.ReadBool(&t.normalized)) return false;
      } else if (key == "lstrip") {
        if (!r_.ReadBool(&t.lstrip)) return false;
      } else if (key == "rstrip") {
        if (!r_.ReadBool(&t.rstrip)) return false;
      } else if (key == "single_word") {
        if (!r_.ReadBool(&t.single_word)) return false;
      } else {
        if (!r_.Skip()) return false;
      }
    }
    if (!r_.ok()) return false;
    if (!has_id || !has_content) return r_.Fail("added token without id or content");
    if (t.id < 0 || t.id > kMaxTokenId) return r_.Fail(fmt::format("added token id {} out of range", t.id));
    if (t.content.empty()) return r_.Fail("added token with empty content");
    if (t.lstrip || t.rstrip || t.single_word || t.normalized) {
      return Unsupported(fmt::format(
          "added token {} '{}' has lstrip/rstrip/single_word/normalized set (only plain raw-text matching is supported)",
          t.id, t.content));
    }
    added_.push_back(std::move(t));
  }
  return r_.ok();
}

bool HfJsonParser::ParseNormalizer(std::vector<TextReplacement>* out) {
  if (r_.Peek() == JsonKind::kNull) return r_.ReadNull();
  if (!r_.BeginObject()) return false;
  std::string key, type, content;
  std::string pattern;
  bool has_pattern = false, has_content = false;
  std::vector<TextReplacement> nested;
  bool has_nested = false;
  while (r_.NextMember(&key)) {
    if (key == "type") {
      if (!r_.ReadString(&type)) return false;
    } else if (key == "pattern") {
      if (!ParseStringPattern("Replace normalizer", &pattern)) return false;
      has_pattern = true;
    } else if (key == "content") {
      if (!r_.ReadString(&content)) return false;
      has_content = true;
    } else if (key == "normalizers") {
      if (!r_.BeginArray()) return false;
      while (r_.NextElement()) {
        if (!ParseNormalizer(&nested)) return false;
      }
      if (!r_.ok()) return false;
      has_nested = true;
    } else {
      if (!r_.Skip()) return false;
    }
  }
  if (!r_.ok()) return false;
  if (type == "Replace") {
    if (!has_pattern || !has_content) return r_.Fail("Replace normalizer without pattern or content");
    if (pattern.empty()) return Unsupported("Replace normalizer with an empty pattern");
    out->push_back(TextReplacement{pattern, content});
    return true;
  }
  if (type == "Sequence") {
    if (!has_nested) return r_.Fail("Sequence normalizer without normalizers");
    out->insert(out->end(), nested.begin(), nested.end());
    return true;
  }
  return Unsupported(fmt::format("normalizer type '{}' (supported: Replace, Sequence of Replace)", type));
}

bool HfJsonParser::ParsePreTokenizer(std::string* split_pattern) {
  if (r_.Peek() == JsonKind::kNull) return r_.ReadNull();
  if (!r_.BeginObject()) return false;
  std::string key, type, behavior;
  std::string pattern;
  bool invert = false, has_pattern = false, has_nested = false;
  std::string nested;
  int n_nested = 0;
  while (r_.NextMember(&key)) {
    if (key == "type") {
      if (!r_.ReadString(&type)) return false;
    } else if (key == "pattern") {
      if (!ParseStringPattern("Split pre-tokenizer", &pattern)) return false;
      has_pattern = true;
    } else if (key == "behavior") {
      if (!r_.ReadString(&behavior)) return false;
    } else if (key == "invert") {
      if (!r_.ReadBool(&invert)) return false;
    } else if (key == "pretokenizers") {
      if (!r_.BeginArray()) return false;
      while (r_.NextElement()) {
        if (!ParsePreTokenizer(&nested)) return false;
        ++n_nested;
      }
      if (!r_.ok()) return false;
      has_nested = true;
    } else {
      if (!r_.Skip()) return false;
    }
  }
  if (!r_.ok()) return false;
  if (type == "Split") {
    if (!has_pattern || pattern.empty()) return r_.Fail("Split pre-tokenizer without a pattern");
    if (behavior != "MergedWithPrevious" || invert) {
      return Unsupported(fmt::format("Split pre-tokenizer with behavior '{}' invert={} (supported: MergedWithPrevious)",
                                     behavior, invert));
    }
    if (!split_pattern->empty()) return Unsupported("more than one Split pre-tokenizer");
    *split_pattern = pattern;
    return true;
  }
  if (type == "Sequence") {
    if (!has_nested) return r_.Fail("Sequence pre-tokenizer without pretokenizers");
    if (n_nested > 1) return Unsupported("more than one Split pre-tokenizer");
    if (!nested.empty()) {
      if (!split_pattern->empty()) return Unsupported("more than one Split pre-tokenizer");
      *split_pattern = nested;
    }
    return true;
  }
  return Unsupported(fmt::format("pre_tokenizer type '{}' (supported: Split, Sequence of Split)", type));
}

bool HfJsonParser::ParsePostProcessor() {
  if (r_.Peek() == JsonKind::kNull) return r_.ReadNull();
  if (!r_.BeginObject()) return false;
  std::string key, type, item_key, name;
  bool has_single = false;
  while (r_.NextMember(&key)) {
    if (key == "type") {
      if (!r_.ReadString(&type)) return false;
    } else if (key == "single") {
      has_single = true;
      bool seen_sequence = false;
      if (!r_.BeginArray()) return false;
      while (r_.NextElement()) {
        if (!r_.BeginObject()) return false;
        while (r_.NextMember(&item_key)) {
          if (item_key == "SpecialToken" || item_key == "Sequence") {
            const bool special = item_key == "SpecialToken";
            if (!r_.BeginObject()) return false;
            std::string k;
            name.clear();
            while (r_.NextMember(&k)) {
              if (k == "id") {
                if (!r_.ReadString(&name)) return false;
              } else {
                if (!r_.Skip()) return false;
              }
            }
            if (!r_.ok()) return false;
            if (special) {
              (seen_sequence ? template_.after : template_.before).push_back(name);
            } else {
              if (seen_sequence) return Unsupported("post-processor template with two sequences in 'single'");
              seen_sequence = true;
            }
          } else {
            return Unsupported(fmt::format("post-processor template piece '{}'", item_key));
          }
        }
        if (!r_.ok()) return false;
      }
      if (!r_.ok()) return false;
    } else if (key == "special_tokens") {
      if (!r_.BeginObject()) return false;
      std::string tok_name, k;
      while (r_.NextMember(&tok_name)) {
        std::vector<int64_t> ids;
        if (!r_.BeginObject()) return false;
        while (r_.NextMember(&k)) {
          if (k == "ids") {
            if (!r_.BeginArray()) return false;
            while (r_.NextElement()) {
              int64_t v;
              if (!r_.ReadInt64(&v)) return false;
              ids.push_back(v);
            }
            if (!r_.ok()) return false;
          } else {
            if (!r_.Skip()) return false;
          }
        }
        if (!r_.ok()) return false;
        template_.special_ids[tok_name] = std::move(ids);
      }
      if (!r_.ok()) return false;
    } else {
      if (!r_.Skip()) return false;
    }
  }
  if (!r_.ok()) return false;
  if (type != "TemplateProcessing") {
    return Unsupported(fmt::format("post_processor type '{}' (supported: TemplateProcessing)", type));
  }
  if (!has_single) return r_.Fail("TemplateProcessing without 'single'");
  if (template_.before.size() > 1 || template_.after.size() > 1) {
    return Unsupported("post-processor template with more than one special token before or after the text");
  }
  template_.present = true;
  return true;
}

bool HfJsonParser::ParseVocab() {
  if (!r_.BeginObject()) return false;
  std::string piece;
  model_.tokens.reserve(1 << 18);
  model_.filled.reserve(1 << 18);
  while (r_.NextMember(&piece)) {
    int64_t id;
    if (!r_.ReadInt64(&id)) return false;
    if (id < 0 || id > kMaxTokenId) return r_.Fail(fmt::format("vocab id {} out of range", id));
    const size_t i = static_cast<size_t>(id);
    if (i >= model_.tokens.size()) {
      model_.tokens.resize(i + 1);
      model_.filled.resize(i + 1, 0);
    }
    if (model_.filled[i]) return r_.Fail(fmt::format("vocab id {} appears twice", id));
    model_.filled[i] = 1;
    model_.tokens[i] = std::move(piece);
    ++model_.n_entries;
  }
  return r_.ok();
}

bool HfJsonParser::ParseMerges() {
  if (!r_.BeginArray()) return false;
  std::string a;
  auto& arena = model_.merge_arena;
  auto& off = model_.merge_offsets;
  arena.reserve(1 << 23);
  off.reserve(1 << 21);
  while (r_.NextElement()) {
    const JsonKind k = r_.Peek();
    if (k == JsonKind::kArray) {
      // [left, right]: decoded straight into the arena.
      if (!r_.BeginArray()) return false;
      int n = 0;
      while (r_.NextElement()) {
        if (n >= 2) return r_.Fail("merge with more than two pieces");
        if (!r_.AppendString(&arena)) return false;
        off.push_back(static_cast<uint32_t>(arena.size()));
        ++n;
      }
      if (!r_.ok()) return false;
      if (n != 2) return r_.Fail("merge with fewer than two pieces");
    } else if (k == JsonKind::kString) {
      // Legacy "left right" form.
      if (!r_.ReadString(&a)) return false;
      const size_t sp = a.find(' ');
      if (sp == std::string::npos || a.find(' ', sp + 1) != std::string::npos) {
        return r_.Fail("merge string is not two pieces separated by one space");
      }
      arena.append(a, 0, sp);
      off.push_back(static_cast<uint32_t>(arena.size()));
      arena.append(a, sp + 1);
      off.push_back(static_cast<uint32_t>(arena.size()));
    } else {
      return r_.Fail("merge is neither [left, right] nor \"left right\"");
    }
    if (arena.size() > UINT32_MAX / 2) return r_.Fail("merges too large");
  }
  return r_.ok();
}

bool HfJsonParser::ParseModel() {
  if (!r_.BeginObject()) return false;
  model_.present = true;
  std::string key, s;
  bool is_null = false;
  while (r_.NextMember(&key)) {
    if (key == "type") {
      if (!r_.ReadString(&model_.type)) return false;
    } else if (key == "dropout") {
      if (r_.Peek() != JsonKind::kNull) return Unsupported("BPE dropout (non-deterministic)");
      if (!r_.ReadNull()) return false;
    } else if (key == "unk_token") {
      if (!r_.ReadStringOrNull(&model_.unk_token, &is_null)) return false;
      model_.has_unk = !is_null;
    } else if (key == "continuing_subword_prefix" || key == "end_of_word_suffix") {
      if (!r_.ReadStringOrNull(&s, &is_null)) return false;
      if (!s.empty()) return Unsupported(fmt::format("BPE {} '{}'", key, s));
    } else if (key == "fuse_unk") {
      if (!r_.ReadBool(&model_.fuse_unk)) return false;
    } else if (key == "byte_fallback") {
      if (!r_.ReadBool(&model_.byte_fallback)) return false;
    } else if (key == "ignore_merges") {
      if (!r_.ReadBool(&model_.ignore_merges)) return false;
    } else if (key == "vocab") {
      if (!ParseVocab()) return false;
    } else if (key == "merges") {
      if (!ParseMerges()) return false;
    } else {
      if (!r_.Skip()) return false;
    }
  }
  return r_.ok();
}

Result<Vocab> HfJsonParser::Parse(std::unique_ptr<tokenizer_internal::PieceTable>* table_out) {
  bool ok = r_.BeginObject();
  std::string key;
  while (ok && r_.NextMember(&key)) {
    if (key == "added_tokens") {
      ok = ParseAddedTokens();
    } else if (key == "normalizer") {
      ok = ParseNormalizer(&normalizer_);
    } else if (key == "pre_tokenizer") {
      ok = ParsePreTokenizer(&split_pattern_);
    } else if (key == "post_processor") {
      ok = ParsePostProcessor();
    } else if (key == "model") {
      ok = ParseModel();
    } else {
      ok = r_.Skip();
    }
  }
  if (r_.ok()) r_.ExpectEnd();
  if (!unsupported_.empty()) return Status(StatusCode::kUnsupported, "tokenizer.json: " + unsupported_);
  if (!r_.ok()) return r_.status().WithContext("tokenizer.json");

  auto corrupt = [](std::string message) { return Status(StatusCode::kCorruptFile, "tokenizer.json: " + message); };
  if (!model_.present) return corrupt(fmt::format("no 'model'"));
  if (model_.type != "BPE") {
    return Status(StatusCode::kUnsupported,
                  fmt::format("tokenizer.json: model type '{}' (only BPE is supported)", model_.type));
  }
  if (model_.tokens.empty()) return corrupt(fmt::format("empty model vocab"));
  for (size_t i = 0; i < model_.tokens.size(); ++i) {
    if (!model_.filled[i]) return corrupt(fmt::format("model vocab has no token with id {} (ids must be 0..{})", i, model_.n_entries - 1));
  }

  Vocab v;
  v.algorithm = TokenizerAlgorithm::kHfBpe;
  v.tokens = std::move(model_.tokens);
  const int32_t n_model = static_cast<int32_t>(v.tokens.size());
  v.model_vocab_size = n_model;
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  for (int32_t id = 0; id < n_model; ++id) {
    if (IsByteTokenText(v.tokens[id])) v.types[id] = TokenType::kByte;
  }

  auto table_owner = std::make_unique<tokenizer_internal::PieceTable>();
  tokenizer_internal::PieceTable& table = *table_owner;
  if (const int32_t dup = table.Build(v.tokens); dup >= 0) {
    return corrupt(fmt::format("piece '{}' appears twice in the model vocab", v.tokens[dup]));
  }

  // Added tokens: ids of pieces already in the model vocab must agree; new
  // pieces get the next ids in order (as HF's AddedVocabulary assigns them).
  for (const AddedTokenJson& t : added_) {
    int32_t id = table.Find(t.content);
    if (id >= 0) {
      if (id != t.id) {
        return corrupt(fmt::format("added token '{}' has id {} but the {} says {}", t.content, t.id,
                                   id < n_model ? "vocab" : "list of added tokens", id));
      }
    } else {
      if (t.id != static_cast<int64_t>(v.tokens.size())) {
        return corrupt(fmt::format("added token '{}' has id {}; expected the next free id {}", t.content, t.id, v.tokens.size()));
      }
      id = static_cast<int32_t>(t.id);
      v.tokens.push_back(t.content);
      v.types.push_back(TokenType::kNormal);
      table.Add(t.content);
    }
    v.types[id] = (t.special || TokenLooksSpecial(t.content)) ? TokenType::kControl : TokenType::kUserDefined;
  }

  auto find_piece = [&](std::string_view piece) -> int32_t { return table.Find(piece); };

  // Scores, as the synthetic model's converter-equivalent vocabulary has them.
  int32_t first_normal = -1;
  for (int32_t id = 0; id < v.size(); ++id) {
    if (v.types[id] == TokenType::kNormal) {
      first_normal = id;
      break;
    }
  }
  v.scores.resize(v.tokens.size());
  for (int32_t id = 0; id < v.size(); ++id) {
    switch (v.types[id]) {
      case TokenType::kNormal: v.scores[id] = -static_cast<float>(id - first_normal); break;
      case TokenType::kByte: v.scores[id] = 0.0f; break;
      default: v.scores[id] = -1000.0f; break;
    }
  }

  // Merges. Left and right pieces are adjacent in the arena, so merge i
  // spells out as arena[off[2i], off[2i+2]): three lookups per merge, run
  // with the table loads of the next merges in flight. Only the model's own
  // vocabulary can take part (HF's BPE model does not see added tokens).
  const auto& off = model_.merge_offsets;
  const std::string& arena = model_.merge_arena;
  const size_t n_merges = (off.size() - 1) / 2;
  v.merges.resize(n_merges);
  auto view = [&](size_t b, size_t e) { return std::string_view(arena.data() + off[b], off[e] - off[b]); };
  auto hash3 = [&](size_t i, uint64_t* h) {
    for (int k = 0; k < 3; ++k) {
      const std::string_view sv = k == 0 ? view(2 * i, 2 * i + 1) : k == 1 ? view(2 * i + 1, 2 * i + 2) : view(2 * i, 2 * i + 2);
      h[k] = tokenizer_internal::HashBytes(sv.data(), sv.size());
      table.Prefetch(h[k]);
    }
  };
  constexpr size_t kAhead = 8;
  uint64_t ring[kAhead][3];
  for (size_t i = 0; i < n_merges && i < kAhead; ++i) hash3(i, ring[i]);
  for (size_t i = 0; i < n_merges; ++i) {
    uint64_t h[3] = {ring[i % kAhead][0], ring[i % kAhead][1], ring[i % kAhead][2]};
    if (i + kAhead < n_merges) hash3(i + kAhead, ring[i % kAhead]);
    const std::string_view a = view(2 * i, 2 * i + 1), b = view(2 * i + 1, 2 * i + 2), ab = view(2 * i, 2 * i + 2);
    const int32_t ia = table.FindHashed(a, h[0]), ib = table.FindHashed(b, h[1]), ir = table.FindHashed(ab, h[2]);
    if (ia < 0 || ib < 0 || ia >= n_model || ib >= n_model) {
      return corrupt(fmt::format("merge {} ('{}' '{}') uses a piece that is not in the vocab", i, a, b));
    }
    if (ir < 0 || ir >= n_model) return corrupt(fmt::format("merge {} ('{}' '{}'): '{}' is not in the vocab", i, a, b, ab));
    v.merges[i] = BpeMerge{ia, ib, ir};
  }

  v.normalizer = std::move(normalizer_);
  v.split_pattern = std::move(split_pattern_);
  v.byte_fallback = model_.byte_fallback;
  v.fuse_unk = model_.fuse_unk;
  v.ignore_merges = model_.ignore_merges;

  // Special ids.
  auto template_id = [&](const std::string& name) -> int32_t {
    const auto it = template_.special_ids.find(name);
    if (it != template_.special_ids.end() && it->second.size() == 1 && it->second[0] >= 0 &&
        it->second[0] < v.size()) {
      return static_cast<int32_t>(it->second[0]);
    }
    return find_piece(name);
  };
  if (template_.present) {
    if (!template_.before.empty()) {
      v.bos_id = template_id(template_.before[0]);
      if (v.bos_id < 0) return corrupt(fmt::format("post-processor token '{}' is not in the vocab", template_.before[0]));
      v.add_bos = true;
    }
    if (!template_.after.empty()) {
      v.eos_id = template_id(template_.after[0]);
      if (v.eos_id < 0) return corrupt(fmt::format("post-processor token '{}' is not in the vocab", template_.after[0]));
      v.add_eos = true;
    }
  }
  if (v.bos_id < 0) v.bos_id = find_piece("<bos>");
  if (v.eos_id < 0) v.eos_id = find_piece("<eos>");
  if (model_.has_unk) {
    v.unk_id = find_piece(model_.unk_token);
    if (v.unk_id < 0) return corrupt(fmt::format("unk_token '{}' is not in the vocab", model_.unk_token));
  }
  v.pad_id = find_piece("<pad>");
  if (table_out != nullptr) *table_out = std::move(table_owner);
  return v;
}

Result<std::string_view> MapWholeFile(const std::string& path, std::unique_ptr<MappedFile>* holder) {
  GEMBED_ASSIGN_OR_RETURN(*holder, MappedFile::Open(path));
  const MappedFile& f = **holder;
  return std::string_view(reinterpret_cast<const char*>(f.data()), f.size());
}

// tokenizer_config.json: only add_bos_token / add_eos_token are used.
Status ApplyTokenizerConfig(std::string_view json, Vocab* v) {
  JsonReader r(json);
  std::string key;
  std::optional<bool> add_bos, add_eos;
  if (r.BeginObject()) {
    while (r.NextMember(&key)) {
      if ((key == "add_bos_token" || key == "add_eos_token") && r.Peek() == JsonKind::kBool) {
        bool b = false;
        if (!r.ReadBool(&b)) break;
        (key == "add_bos_token" ? add_bos : add_eos) = b;
      } else if (!r.Skip()) {
        break;
      }
    }
  }
  if (r.ok()) r.ExpectEnd();
  if (!r.ok()) return r.status().WithContext("tokenizer_config.json");
  if (add_bos) {
    if (*add_bos && v->bos_id < 0) return CorruptFile("tokenizer_config.json: add_bos_token is true but there is no <bos>");
    v->add_bos = *add_bos;
  }
  if (add_eos) {
    if (*add_eos && v->eos_id < 0) return CorruptFile("tokenizer_config.json: add_eos_token is true but there is no <eos>");
    v->add_eos = *add_eos;
  }
  return Status::Ok();
}

}  // namespace

bool TokenLooksSpecial(std::string_view text) {
  if (text == "<pad>" || text == "<mask>" || text == "<2mass>" || text == "[@BOS@]") return true;
  if (StartsWith(text, "<|") && EndsWith(text, "|>")) return true;
  // Full-width vertical bar U+FF5C (DeepSeek).
  if (StartsWith(text, "<\xEF\xBD\x9C") && EndsWith(text, "\xEF\xBD\x9C>")) return true;
  if (StartsWith(text, "<unused") && EndsWith(text, ">")) return true;
  return false;
}

Result<Vocab> ParseHfTokenizerJson(std::string_view json) {
  return tokenizer_internal::ParseHfTokenizerJson(json, nullptr);
}

Result<Vocab> ReadVocabFromHfJson(const std::string& tokenizer_json_path) {
  return tokenizer_internal::ReadVocabFromHfJson(tokenizer_json_path, nullptr);
}

namespace tokenizer_internal {

Result<Vocab> ParseHfTokenizerJson(std::string_view json, std::unique_ptr<PieceTable>* table) {
  HfJsonParser parser(json);
  return parser.Parse(table);
}

Result<Vocab> ReadVocabFromHfJson(const std::string& tokenizer_json_path, std::unique_ptr<PieceTable>* table) {
  std::unique_ptr<MappedFile> file;
  GEMBED_ASSIGN_OR_RETURN(std::string_view json, MapWholeFile(tokenizer_json_path, &file));
  Result<Vocab> parsed = ParseHfTokenizerJson(json, table);
  if (!parsed.ok()) return parsed.status().WithContext(tokenizer_json_path);
  Vocab v = std::move(parsed).value();

  std::error_code ec;
  const std::filesystem::path config =
      std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config, ec)) {
    std::unique_ptr<MappedFile> cfg_file;
    GEMBED_ASSIGN_OR_RETURN(std::string_view cfg, MapWholeFile(config.string(), &cfg_file));
    GEMBED_RETURN_IF_ERROR(ApplyTokenizerConfig(cfg, &v).WithContext(config.string()));
  }
  return v;
}

}  // namespace tokenizer_internal

// ---------------------------------------------------------------------------
// GGUF
// ---------------------------------------------------------------------------

namespace {
constexpr const char* kKeyModel = "tokenizer.ggml.model";
constexpr const char* kKeyPre = "tokenizer.ggml.pre";
constexpr const char* kKeyTokens = "tokenizer.ggml.tokens";
constexpr const char* kKeyScores = "tokenizer.ggml.scores";
constexpr const char* kKeyTypes = "tokenizer.ggml.token_type";
constexpr const char* kKeyBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kKeyEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kKeyUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kKeyPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kKeyAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kKeyAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kKeyAddSep = "tokenizer.ggml.add_sep_token";
constexpr const char* kKeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
}  // namespace

Result<Vocab> ReadVocabFromGguf(const GgufFile& gguf) {
  auto ctx = [](const char* key) { return fmt::format("GGUF vocabulary ({})", key); };

  Result<std::string> model = gguf.GetString(kKeyModel);
  if (!model.ok()) return model.status().WithContext(ctx(kKeyModel));
  if (*model != "llama") {
    return Unsupported("GGUF vocabulary: tokenizer.ggml.model '{}' (only the SentencePiece model 'llama' is supported)",
                       *model);
  }

  Result<std::vector<std::string_view>> tokens = gguf.GetStringArray(kKeyTokens);
  if (!tokens.ok()) return tokens.status().WithContext(ctx(kKeyTokens));
  const size_t n = tokens->size();
  if (n == 0) return CorruptFile("GGUF vocabulary: {} is empty", kKeyTokens);
  if (n > static_cast<size_t>(kMaxTokenId) + 1) return OutOfRange("GGUF vocabulary: {} tokens is too many", n);

  Vocab v;
  v.algorithm = TokenizerAlgorithm::kLlamaSpm;
  v.tokens.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view t = (*tokens)[i];
    // llama.cpp renames empty pieces rather than rejecting the file.
    v.tokens[i] = t.empty() ? fmt::format("[EMPTY_{}]", i) : std::string(t);
  }

  if (gguf.Find(kKeyScores) != nullptr) {
    Result<std::vector<float>> scores = gguf.GetF32Array(kKeyScores);
    if (!scores.ok()) return scores.status().WithContext(ctx(kKeyScores));
    if (scores->size() != n) {
      return CorruptFile("GGUF vocabulary: {} has {} entries but {} has {}", kKeyScores, scores->size(), kKeyTokens, n);
    }
    v.scores = std::move(scores).value();
  } else {
    v.scores.assign(n, 0.0f);
  }

  v.types.assign(n, TokenType::kNormal);
  if (gguf.Find(kKeyTypes) != nullptr) {
    Result<std::vector<int32_t>> types = gguf.GetI32Array(kKeyTypes);
    if (!types.ok()) return types.status().WithContext(ctx(kKeyTypes));
    if (types->size() != n) {
      return CorruptFile("GGUF vocabulary: {} has {} entries but {} has {}", kKeyTypes, types->size(), kKeyTokens, n);
    }
    for (size_t i = 0; i < n; ++i) {
      const int32_t t = (*types)[i];
      if (t < 0 || t > 6) {
        return CorruptFile("GGUF vocabulary: {}[{}] = {} is not a token type (0..6)", kKeyTypes, i, t);
      }
      v.types[i] = static_cast<TokenType>(t);
    }
  }

  // Special ids: llama.cpp's SPM defaults when absent; out of range is an error.
  const int32_t n32 = static_cast<int32_t>(n);
  auto special = [&](const char* key, int32_t fallback, int32_t* out) -> Status {
    Result<std::optional<uint32_t>> id = gguf.GetU32Opt(key);
    if (!id.ok()) return id.status().WithContext(ctx(key));
    if (!id->has_value()) {
      *out = fallback < n32 ? fallback : -1;
      return Status::Ok();
    }
    if (**id >= n) return OutOfRange("GGUF vocabulary: {} = {} is outside the vocabulary (0..{})", key, **id, n - 1);
    *out = static_cast<int32_t>(**id);
    return Status::Ok();
  };
  GEMBED_RETURN_IF_ERROR(special(kKeyBos, 1, &v.bos_id));
  GEMBED_RETURN_IF_ERROR(special(kKeyEos, 2, &v.eos_id));
  GEMBED_RETURN_IF_ERROR(special(kKeyUnk, 0, &v.unk_id));
  GEMBED_RETURN_IF_ERROR(special(kKeyPad, -1, &v.pad_id));

  auto flag = [&](const char* key, bool fallback, bool* out) -> Status {
    Result<std::optional<bool>> b = gguf.GetBoolOpt(key);
    if (!b.ok()) return b.status().WithContext(ctx(key));
    *out = b->value_or(fallback);
    return Status::Ok();
  };
  GEMBED_RETURN_IF_ERROR(flag(kKeyAddBos, true, &v.add_bos));
  GEMBED_RETURN_IF_ERROR(flag(kKeyAddEos, false, &v.add_eos));
  GEMBED_RETURN_IF_ERROR(flag(kKeyAddSpacePrefix, true, &v.add_space_prefix));
  if (v.add_bos && v.bos_id < 0) return CorruptFile("GGUF vocabulary: {} is true but there is no BOS id", kKeyAddBos);
  if (v.add_eos && v.eos_id < 0) return CorruptFile("GGUF vocabulary: {} is true but there is no EOS id", kKeyAddEos);
  v.model_vocab_size = n32;
  return v;
}

Status WriteGgufVocab(const Vocab& vocab, GgufWriter* writer, const GgufVocabOptions& options) {
  const size_t total = vocab.tokens.size();
  if (total == 0) return InvalidArgument("WriteGgufVocab: empty vocabulary");
  if (vocab.scores.size() != total || vocab.types.size() != total) {
    return InvalidArgument("WriteGgufVocab: tokens ({}), scores ({}) and types ({}) differ in length", total,
                           vocab.scores.size(), vocab.types.size());
  }
  size_t n = total;
  if (vocab.model_vocab_size > 0) n = std::min(n, static_cast<size_t>(vocab.model_vocab_size));

  std::vector<std::string> tokens(n);
  std::vector<float> scores(vocab.scores.begin(), vocab.scores.begin() + static_cast<ptrdiff_t>(n));
  std::vector<int32_t> types(n);
  for (size_t i = 0; i < n; ++i) {
    types[i] = static_cast<int32_t>(vocab.types[i]);
    if (vocab.types[i] == TokenType::kUserDefined) {
      // The converter's "pre-normalize user-defined spaces": U+2581 -> ' '.
      tokenizer_internal::AppendReplaced(vocab.tokens[i], tokenizer_internal::kSpaceMarker, " ", &tokens[i]);
    } else {
      tokens[i] = vocab.tokens[i];
    }
  }

  auto check_id = [&](const char* what, int32_t id) -> Status {
    if (id >= 0 && static_cast<size_t>(id) >= n) {
      return InvalidArgument("WriteGgufVocab: {} id {} is not below the written vocabulary size {}", what, id, n);
    }
    return Status::Ok();
  };
  GEMBED_RETURN_IF_ERROR(check_id("bos", vocab.bos_id));
  GEMBED_RETURN_IF_ERROR(check_id("eos", vocab.eos_id));
  GEMBED_RETURN_IF_ERROR(check_id("unk", vocab.unk_id));
  GEMBED_RETURN_IF_ERROR(check_id("pad", vocab.pad_id));
  if (options.add_bos && vocab.bos_id < 0) return InvalidArgument("WriteGgufVocab: add_bos without a BOS id");
  if (options.add_eos && vocab.eos_id < 0) return InvalidArgument("WriteGgufVocab: add_eos without an EOS id");

  // Key order as gguf-py writes them for Gemma3 (set_vocab, then SpecialVocab).
  writer->SetString(kKeyModel, "llama");
  writer->SetString(kKeyPre, "default");
  writer->SetStringArray(kKeyTokens, tokens);
  writer->SetF32Array(kKeyScores, scores);
  writer->SetI32Array(kKeyTypes, types);
  if (vocab.bos_id >= 0) writer->SetU32(kKeyBos, static_cast<uint32_t>(vocab.bos_id));
  if (vocab.eos_id >= 0) writer->SetU32(kKeyEos, static_cast<uint32_t>(vocab.eos_id));
  if (vocab.unk_id >= 0) writer->SetU32(kKeyUnk, static_cast<uint32_t>(vocab.unk_id));
  if (vocab.pad_id >= 0) writer->SetU32(kKeyPad, static_cast<uint32_t>(vocab.pad_id));
  writer->SetBool(kKeyAddBos, options.add_bos);
  writer->SetBool(kKeyAddEos, options.add_eos);
  writer->SetBool(kKeyAddSep, false);
  writer->SetBool(kKeyAddSpacePrefix, false);
  return Status::Ok();
}

}  // namespace gembed
