#include "kernels/kernels.h"

#include "kernels/cpu/isa_kernels.h"
#include "kernels/reference.h"

namespace gembed {
namespace {

constexpr KernelTable MakeGenericTable() {
  KernelTable t;
  t.isa = Isa::kGeneric;
  t.quantize_row_q8 = reference::QuantizeRowQ8;
  t.gemm_q8 = reference::GemmQ8;
  t.gemm_f32 = reference::GemmF32;
  t.rmsnorm_row = reference::RmsNormRow;
  t.rmsnorm_add_row = reference::RmsNormAddRow;
  t.l2_normalize_row = reference::L2NormalizeRow;
  t.rope_neox_row = reference::RopeNeoxRow;
  t.softmax_row = reference::SoftmaxRow;
  t.geglu = reference::GeGlu;
  t.add = reference::Add;
  t.scale = reference::Scale;
  t.f16_to_f32 = reference::F16ToF32;
  t.bf16_to_f32 = reference::Bf16ToF32;
  t.q8_0_to_f32 = reference::Q8_0ToF32;
  t.gemm_q4 = reference::GemmQ4;
  t.gemm_q8_sparse = reference::GemmQ8Sparse;
  t.q4_0_to_f32 = reference::Q4_0ToF32;
  t.q4_1_to_f32 = reference::Q4_1ToF32;
  return t;
}

// Fills the entries an ISA file provides; the rest stay at the reference.
#define GEMBED_FILL_ISA_TABLE(ns, level)          \
  [] {                                            \
    KernelTable t = MakeGenericTable();           \
    t.isa = level;                                \
    t.quantize_row_q8 = ns::QuantizeRowQ8;        \
    t.gemm_q8 = ns::GemmQ8Variants().front().fn;  \
    t.gemm_f32 = ns::GemmF32;                     \
    t.rmsnorm_row = ns::RmsNormRow;               \
    t.rmsnorm_add_row = ns::RmsNormAddRow;        \
    t.l2_normalize_row = ns::L2NormalizeRow;      \
    t.rope_neox_row = ns::RopeNeoxRow;            \
    t.softmax_row = ns::SoftmaxRow;               \
    t.geglu = ns::GeGlu;                          \
    t.add = ns::Add;                              \
    t.scale = ns::Scale;                          \
    t.f16_to_f32 = ns::F16ToF32;                  \
    t.bf16_to_f32 = ns::Bf16ToF32;                \
    t.q8_0_to_f32 = ns::Q8_0ToF32;                \
    t.gemm_q4 = ns::GemmQ4;                       \
    t.gemm_q8_sparse = ns::GemmQ8Sparse;          \
    return t;                                     \
  }()

}  // namespace

// Function-local statics: initialised on first use (thread-safe), so even a
// static initialiser elsewhere sees complete tables. Immutable afterwards.
const KernelTable& GetKernelTable(Isa isa) {
  static const KernelTable kGenericTable = MakeGenericTable();
  static const KernelTable kAvx2Table = GEMBED_FILL_ISA_TABLE(avx2, Isa::kAvx2);
  static const KernelTable kAvx512VnniTable = GEMBED_FILL_ISA_TABLE(avx512vnni, Isa::kAvx512Vnni);
  switch (isa) {
    case Isa::kAvx2:
      return kAvx2Table;
    case Isa::kAvx512Vnni:
      return kAvx512VnniTable;
    case Isa::kGeneric:
      break;
  }
  return kGenericTable;
}

}  // namespace gembed
