#include "tokenizer/piece_table.h"

namespace gembed::tokenizer_internal {

namespace {

size_t TableSizeFor(size_t n) {
  // Load factor <= 0.5 keeps probe chains short.
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  return cap;
}

}  // namespace

int32_t PieceTable::Build(const std::vector<std::string>& pieces) {
  size_t total = 0;
  for (const std::string& p : pieces) total += p.size();
  arena_.clear();
  arena_.reserve(total);
  offsets_.assign(1, 0);
  offsets_.reserve(pieces.size() + 1);
  for (const std::string& p : pieces) {
    arena_.append(p);
    offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  }

  const size_t cap = TableSizeFor(pieces.size());
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  int32_t duplicate = -1;
  for (int32_t id = 0; id < static_cast<int32_t>(pieces.size()); ++id) {
    const std::string& p = pieces[id];
    const uint64_t h = HashBytes(p.data(), p.size());
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t i = static_cast<size_t>(h) & mask_;
    bool dup = false;
    while (slots_[i].id >= 0) {
      const Slot& s = slots_[i];
      if (s.tag == tag && Piece(s.id) == std::string_view(p)) {
        dup = true;
        break;
      }
      i = (i + 1) & mask_;
    }
    if (dup) {
      if (duplicate < 0) duplicate = id;
      continue;  // the first id keeps the piece
    }
    slots_[i] = Slot{tag, id};
  }
  return duplicate;
}

void MergeTable::Reserve(size_t n) {
  const size_t cap = TableSizeFor(n);
  slots_.assign(cap, Slot{kEmpty, Entry{0, 0}});
  mask_ = cap - 1;
}

void MergeTable::Insert(int32_t left, int32_t right, Entry entry) {
  const uint64_t key = Key(left, right);
  size_t i = static_cast<size_t>(Mix(key)) & mask_;
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
  slots_[i] = Slot{key, entry};
}

}  // namespace gembed::tokenizer_internal
