// Hash tables of the tokenizer's hot path (internal).
//
// PieceTable: piece bytes -> token id. All piece bytes live in one arena
// string (id i = arena[offsets[i], offsets[i+1])); an open-addressing table of
// {hash tag, id} slots finds a piece with one hash of the query and usually
// one memcmp. No allocation on lookup.
//
// MergeTable: (left id, right id) -> {rank, result id} for HF BPE merges,
// open addressing on a 64-bit key.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace gembed::tokenizer_internal {

// 64-bit hash of short byte strings (pieces are a few bytes long): 8-byte
// words folded with a multiply-xorshift; not cryptographic.
inline uint64_t HashBytes(const char* p, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x243F6A8885A308D3ull ^ (n * kMul);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return h;
}

class PieceTable {
 public:
  // Builds the table over pieces[0..n). Returns the id of the first duplicate
  // piece found (the later id), or -1 if all pieces are distinct.
  int32_t Build(const std::vector<std::string>& pieces);

  // Id of `piece`, or -1.
  int32_t Find(std::string_view piece) const {
    const uint64_t h = HashBytes(piece.data(), piece.size());
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t i = static_cast<size_t>(h) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag) {
        const uint32_t b = offsets_[s.id], e = offsets_[s.id + 1];
        if (e - b == piece.size() && std::memcmp(arena_.data() + b, piece.data(), piece.size()) == 0) {
          return s.id;
        }
      }
      i = (i + 1) & mask_;
    }
  }

  std::string_view Piece(int32_t id) const {
    return std::string_view(arena_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;  // -1: empty
  };
  std::string arena_;
  std::vector<uint32_t> offsets_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

class MergeTable {
 public:
  struct Entry {
    int32_t rank;
    int32_t result;
  };
  // Pointer to the entry of (left, right), or nullptr.
  const Entry* Find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = Key(left, right);
    size_t i = static_cast<size_t>(Mix(key)) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == kEmpty) return nullptr;
      if (s.key == key) return &s.entry;
      i = (i + 1) & mask_;
    }
  }

  // Inserts or replaces (left, right): later entries with the same pair
  // replace earlier ones (HF semantics). Reserve(n) first for n entries.
  void Reserve(size_t n);
  void Insert(int32_t left, int32_t right, Entry entry);

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t Key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static uint64_t Mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
  }
  struct Slot {
    uint64_t key;
    Entry entry;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace gembed::tokenizer_internal
