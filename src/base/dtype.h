// Element and block formats. Enum values equal ggml's type ids, so GGUF
// tensor infos map directly. A "block" is the smallest addressable unit:
// 1 element for plain types, 32 elements for the Q* formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gembed {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kF64 = 28,
  kBF16 = 30,
};

// nullopt for ggml type ids gembed does not know.
std::optional<DType> DTypeFromGgml(uint32_t ggml_type);
std::string_view DTypeName(DType t);                 // "F32", "Q8_0", ...
std::optional<DType> DTypeFromName(std::string_view name);  // case-insensitive
int64_t DTypeBlockElems(DType t);                    // 32 for Q*, 1 otherwise
int64_t DTypeBlockBytes(DType t);                    // 34 for Q8_0, 4 for F32, ...
// Whether gembed's kernels can compute with this type (Q5 and the integer types are only recognised).
bool DTypeIsComputable(DType t);

// Bytes of n elements; nullopt if n is not a whole number of blocks or the
// size overflows.
std::optional<uint64_t> DTypeRowBytes(DType t, uint64_t n);

// Q8_0: 32 int8 values sharing one fp16 scale (ggml's block_q8_0).
inline constexpr int kQ8BlockElems = 32;
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQ8BlockElems];
};
static_assert(sizeof(BlockQ8_0) == 34, "block_q8_0 is 34 bytes");

// Q4_0: 32 4-bit values q in [0, 15] sharing one fp16 scale, value = d * (q - 8)
// (ggml's block_q4_0). Byte i holds element i in its low nibble and element
// i + 16 in its high nibble.
inline constexpr int kQ4BlockElems = 32;
struct BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[kQ4BlockElems / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "block_q4_0 is 18 bytes");

// Q4_1: as Q4_0 with an fp16 minimum: value = d * q + m (ggml's block_q4_1).
struct BlockQ4_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 minimum
  uint8_t qs[kQ4BlockElems / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "block_q4_1 is 20 bytes");

}  // namespace gembed
