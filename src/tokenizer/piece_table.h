// Hash tables of the tokenizer's hot path (internal).
//
// Both are open-addressing tables sized for a load factor <= 0.5. The merge
// loops probe them for every candidate pair, at random places in tables of
// several MiB, so the layouts aim at one cache miss per lookup:
//
// PieceTable: piece bytes -> token id. 16-byte slots hold a 32-bit hash tag
// whose low byte is the piece length (capped at 255), the id, and the first
// 8 bytes of the piece. A piece of <= 8 bytes is confirmed from the slot
// alone; longer ones compare the rest against the arena (all piece bytes in
// one string, id i at arena[offsets[i], offsets[i+1])).
//
// MergeTable: (left id, right id) -> merge rank, for HF BPE. One 64-bit word
// per slot: left (21 bits) | right (21 bits) | rank (22 bits). The merge's
// result id is results[rank]. Limits: ids < 2^21 - 1, ranks < 2^22 - 1.
//
// Both put a Bloom filter (512 KiB for Gemma3, so it stays in L2) in front
// of the slots: most pairs the merge loops ask about are absent.
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

// First min(n, 8) bytes of p as a little-endian word, zero-padded.
inline uint64_t Prefix8(const char* p, size_t n) {
  uint64_t w = 0;
  std::memcpy(&w, p, n < 8 ? n : 8);
  return w;
}

class PieceTable {
 public:
  // Builds the table over pieces[0..n). Returns the id of the first duplicate
  // piece found (the later id; the earlier id keeps the piece), or -1 if all
  // pieces are distinct.
  int32_t Build(const std::vector<std::string>& pieces);
  // Appends one piece as id size(). Returns false (and adds nothing) if the
  // piece is already present.
  bool Add(std::string_view piece);

  // Id of `piece`, or -1.
  int32_t Find(std::string_view piece) const { return FindHashed(piece, HashBytes(piece.data(), piece.size())); }

  // Same, with h = HashBytes(piece) computed by the caller (see Prefetch).
  int32_t FindHashed(std::string_view piece, uint64_t h) const {
    // Most pairs the SPM merge loop asks about are not pieces; the filter
    // (L2-sized) answers those without touching the big slot array.
    if (!MayContain(h)) return -1;
    const size_t n = piece.size();
    const uint32_t tag = MakeTag(h, n);
    const uint64_t prefix = Prefix8(piece.data(), n);
    size_t i = static_cast<size_t>(h) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && s.prefix == prefix) {
        if (n <= 8) return s.id;
        const uint32_t b = offsets_[s.id], e = offsets_[s.id + 1];
        if (e - b == n && std::memcmp(arena_.data() + b + 8, piece.data() + 8, n - 8) == 0) return s.id;
      }
      i = (i + 1) & mask_;
    }
  }

  // Starts loading the cache lines FindHashed(., h) will read, so several
  // lookups can wait on memory at the same time.
  void Prefetch(uint64_t h) const {
    const uint64_t a = (h >> 24) & filter_mask_, b = (h >> 40) & filter_mask_;
    __builtin_prefetch(&filter_[a >> 6]);
    __builtin_prefetch(&filter_[b >> 6]);
    __builtin_prefetch(&slots_[static_cast<size_t>(h) & mask_]);
  }

  std::string_view Piece(int32_t id) const {
    return std::string_view(arena_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }

 private:
  // Bloom filter over the piece hashes: 16 bits per piece, two probes taken
  // from hash bits the slot index does not use.
  bool MayContain(uint64_t h) const {
    const uint64_t a = (h >> 24) & filter_mask_, b = (h >> 40) & filter_mask_;
    return ((filter_[a >> 6] >> (a & 63)) & (filter_[b >> 6] >> (b & 63)) & 1) != 0;
  }
  void AddToFilter(uint64_t h) {
    const uint64_t a = (h >> 24) & filter_mask_, b = (h >> 40) & filter_mask_;
    filter_[a >> 6] |= uint64_t{1} << (a & 63);
    filter_[b >> 6] |= uint64_t{1} << (b & 63);
  }
  // (Re)creates the slots and filter for `capacity` slots and inserts ids
  // [0, size()); returns the first duplicate id or -1.
  int32_t Rehash(size_t capacity);
  // Inserts id (whose bytes are in the arena); false if its piece is present.
  bool Insert(int32_t id);
  bool Insert(int32_t id, uint64_t h);
  static uint32_t MakeTag(uint64_t h, size_t n) {
    return (static_cast<uint32_t>(h >> 32) & 0xFFFFFF00u) | static_cast<uint32_t>(n < 255 ? n : 255);
  }
  struct Slot {
    uint64_t prefix;
    uint32_t tag;
    int32_t id;  // -1: empty
  };
  std::string arena_;
  std::vector<uint32_t> offsets_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<uint64_t> filter_;
  uint64_t filter_mask_ = 0;  // filter bits - 1
};

class MergeTable {
 public:
  static constexpr int64_t kMaxIds = (int64_t{1} << 21) - 1;
  static constexpr int64_t kMaxRanks = (int64_t{1} << 22) - 1;

  // For n entries; ids must be < kMaxIds and ranks < kMaxRanks.
  void Reserve(size_t n);
  // Inserts or replaces (left, right): a later rank for the same pair
  // replaces the earlier one (HF builds its merge map with HashMap insert).
  void Insert(int32_t left, int32_t right, int32_t rank);

  // Rank of the merge (left, right), or -1.
  int32_t Find(int32_t left, int32_t right) const {
    const uint64_t key = Key(left, right);
    const uint64_t h = Mix(key);
    // Bloom filter first (most adjacent pairs have no merge).
    const uint64_t a = (h >> 24) & filter_mask_, b = (h >> 44) & filter_mask_;
    if ((((filter_[a >> 6] >> (a & 63)) & (filter_[b >> 6] >> (b & 63))) & 1) == 0) return -1;
    size_t i = static_cast<size_t>(h) & mask_;
    while (true) {
      const uint64_t s = slots_[i];
      if (s == kEmpty) return -1;
      if ((s & ~kRankMask) == key) return static_cast<int32_t>(s & kRankMask);
      i = (i + 1) & mask_;
    }
  }
  bool empty() const { return slots_.empty(); }

  // Starts loading what Find(left, right) will read.
  void Prefetch(int32_t left, int32_t right) const {
    const uint64_t h = Mix(Key(left, right));
    const uint64_t a = (h >> 24) & filter_mask_, b = (h >> 44) & filter_mask_;
    __builtin_prefetch(&filter_[a >> 6]);
    __builtin_prefetch(&filter_[b >> 6]);
    __builtin_prefetch(&slots_[static_cast<size_t>(h) & mask_]);
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static constexpr uint64_t kRankMask = (uint64_t{1} << 22) - 1;
  static uint64_t Key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 43) |
           (static_cast<uint64_t>(static_cast<uint32_t>(r)) << 22);
  }
  static uint64_t Mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
  }
  std::vector<uint64_t> slots_{kEmpty};
  size_t mask_ = 0;
  std::vector<uint64_t> filter_{0};  // 4 bits per slot (>= 8 per entry), two probes
  uint64_t filter_mask_ = 63;
};

}  // namespace gembed::tokenizer_internal
