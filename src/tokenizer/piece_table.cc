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
  return Rehash(TableSizeFor(pieces.size()));
}

bool PieceTable::Add(std::string_view piece) {
  const int32_t id = size();
  arena_.append(piece);
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  if (2 * static_cast<size_t>(size()) > slots_.size()) {
    // Grow; the new piece is inserted with the others (duplicate => undo).
    if (Rehash(TableSizeFor(static_cast<size_t>(size()))) == id) {
      arena_.resize(offsets_[id]);
      offsets_.pop_back();
      return false;
    }
    return true;
  }
  if (!Insert(id)) {
    arena_.resize(offsets_[id]);
    offsets_.pop_back();
    return false;
  }
  return true;
}

int32_t PieceTable::Rehash(size_t capacity) {
  slots_.assign(capacity, Slot{0, 0, -1});
  mask_ = capacity - 1;
  const size_t filter_bits = capacity * 8;  // >= 16 bits per piece
  filter_.assign(filter_bits / 64, 0);
  filter_mask_ = filter_bits - 1;
  // Hash everything first, then insert with the slot loads of the next
  // kAhead pieces in flight (the stores land at random places in MiBs).
  const int32_t n = size();
  std::vector<uint64_t> hashes(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    const std::string_view p = Piece(id);
    hashes[id] = HashBytes(p.data(), p.size());
  }
  constexpr int32_t kAhead = 16;
  int32_t duplicate = -1;
  for (int32_t id = 0; id < n; ++id) {
    if (id + kAhead < n) __builtin_prefetch(&slots_[static_cast<size_t>(hashes[id + kAhead]) & mask_], 1);
    if (!Insert(id, hashes[id]) && duplicate < 0) duplicate = id;
  }
  return duplicate;
}

bool PieceTable::Insert(int32_t id) {
  const std::string_view p = Piece(id);
  return Insert(id, HashBytes(p.data(), p.size()));
}

bool PieceTable::Insert(int32_t id, uint64_t h) {
  const std::string_view p = Piece(id);
  const Slot slot{Prefix8(p.data(), p.size()), MakeTag(h, p.size()), id};
  size_t i = static_cast<size_t>(h) & mask_;
  while (slots_[i].id >= 0) {
    const Slot& s = slots_[i];
    if (s.tag == slot.tag && s.prefix == slot.prefix && Piece(s.id) == p) return false;  // first id keeps it
    i = (i + 1) & mask_;
  }
  slots_[i] = slot;
  AddToFilter(h);
  return true;
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
