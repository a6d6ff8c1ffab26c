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
  slots_.assign(cap, Slot{0, 0, -1});
  mask_ = cap - 1;
  const size_t filter_bits = cap * 8;  // >= 16 bits per piece
  filter_.assign(filter_bits / 64, 0);
  filter_mask_ = filter_bits - 1;
  int32_t duplicate = -1;
  for (int32_t id = 0; id < static_cast<int32_t>(pieces.size()); ++id) {
    const std::string& p = pieces[id];
    const uint64_t h = HashBytes(p.data(), p.size());
    const Slot slot{Prefix8(p.data(), p.size()), MakeTag(h, p.size()), id};
    size_t i = static_cast<size_t>(h) & mask_;
    bool dup = false;
    while (slots_[i].id >= 0) {
      const Slot& s = slots_[i];
      if (s.tag == slot.tag && s.prefix == slot.prefix && Piece(s.id) == std::string_view(p)) {
        dup = true;
        break;
      }
      i = (i + 1) & mask_;
    }
    if (dup) {
      if (duplicate < 0) duplicate = id;
      continue;
    }
    slots_[i] = slot;
    AddToFilter(h);
  }
  return duplicate;
}

void MergeTable::Reserve(size_t n) {
  const size_t cap = TableSizeFor(n);
  slots_.assign(cap, kEmpty);
  mask_ = cap - 1;
  const size_t filter_bits = cap * 4;
  filter_.assign(filter_bits / 64, 0);
  filter_mask_ = filter_bits - 1;
}

void MergeTable::Insert(int32_t left, int32_t right, int32_t rank) {
  const uint64_t key = Key(left, right);
  size_t i = static_cast<size_t>(Mix(key)) & mask_;
  while (slots_[i] != kEmpty && (slots_[i] & ~kRankMask) != key) i = (i + 1) & mask_;
  slots_[i] = key | static_cast<uint64_t>(rank);
  const uint64_t h = Mix(key);
  const uint64_t a = (h >> 24) & filter_mask_, b = (h >> 44) & filter_mask_;
  filter_[a >> 6] |= uint64_t{1} << (a & 63);
  filter_[b >> 6] |= uint64_t{1} << (b & 63);
}

}  // namespace gembed::tokenizer_internal
