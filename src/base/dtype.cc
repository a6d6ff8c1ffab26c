#include "base/dtype.h"

#include <cctype>
#include <string>

namespace gembed {
namespace {
struct Info {
  DType t;
  const char* name;
  int64_t block_elems;
  int64_t block_bytes;
  bool computable;
};
constexpr Info kInfos[] = {
    {DType::kF32, "F32", 1, 4, true},     {DType::kF16, "F16", 1, 2, true},
    {DType::kBF16, "BF16", 1, 2, true},   {DType::kQ8_0, "Q8_0", 32, 34, true},
    {DType::kQ4_0, "Q4_0", 32, 18, true},  {DType::kQ4_1, "Q4_1", 32, 20, true},
    {DType::kQ5_0, "Q5_0", 32, 22, false}, {DType::kQ5_1, "Q5_1", 32, 24, false},
    {DType::kI8, "I8", 1, 1, false},      {DType::kI16, "I16", 1, 2, false},
    {DType::kI32, "I32", 1, 4, false},    {DType::kF64, "F64", 1, 8, false},
};
const Info* Find(DType t) {
  for (const Info& i : kInfos)
    if (i.t == t) return &i;
  return nullptr;
}
}  // namespace

std::optional<DType> DTypeFromGgml(uint32_t ggml_type) {
  for (const Info& i : kInfos)
    if (static_cast<uint32_t>(i.t) == ggml_type) return i.t;
  return std::nullopt;
}

std::string_view DTypeName(DType t) {
  const Info* i = Find(t);
  return i ? i->name : "?";
}

std::optional<DType> DTypeFromName(std::string_view name) {
  std::string up(name);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Info& i : kInfos)
    if (up == i.name) return i.t;
  return std::nullopt;
}

int64_t DTypeBlockElems(DType t) {
  const Info* i = Find(t);
  return i ? i->block_elems : 1;
}
int64_t DTypeBlockBytes(DType t) {
  const Info* i = Find(t);
  return i ? i->block_bytes : 0;
}
bool DTypeIsComputable(DType t) {
  const Info* i = Find(t);
  return i && i->computable;
}

std::optional<uint64_t> DTypeRowBytes(DType t, uint64_t n) {
  const Info* i = Find(t);
  if (!i) return std::nullopt;
  const uint64_t be = static_cast<uint64_t>(i->block_elems);
  if (n % be != 0) return std::nullopt;
  const uint64_t blocks = n / be;
  const uint64_t bb = static_cast<uint64_t>(i->block_bytes);
  if (blocks != 0 && bb > UINT64_MAX / blocks) return std::nullopt;
  return blocks * bb;
}

}  // namespace gembed
