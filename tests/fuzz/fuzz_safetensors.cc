// libFuzzer target for the safetensors reader: any bytes must give either a
// parsed file or a Status, never a crash, hang, overrun or huge allocation.
// When a file parses, the invariants the format promises are re-checked here
// independently: the tensors tile the data section exactly, each tensor's
// byte size matches its shape and dtype, views lie inside the input (ASan
// also sees the first and last byte read), and View's reversed shape is the
// file's shape backwards.
// Seeds: tests/fuzz/seeds/fuzz_safetensors (written by tests/unit/
// test_safetensors.cc, SafetensorsFuzzSeeds.Write; set
// GEMBED_WRITE_FUZZ_SEEDS=<dir> to regenerate).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "io/safetensors.h"

namespace {

volatile uint64_t g_sink = 0;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gembed;
  auto r = SafetensorsFile::FromBytes(data, size);
  if (!r.ok()) {
    Check(!r.status().message().empty());  // every failure explains itself
    return 0;
  }
  const SafetensorsFile& f = **r;
  Check(f.data_offset() == 8 + f.header_bytes() && f.data_offset() <= size);
  for (const auto& [k, v] : f.metadata()) g_sink = g_sink + k.size() + v.size();

  uint64_t covered = 0;
  for (const SafetensorsTensorInfo& t : f.tensors()) {
    Check(f.FindTensor(t.name) == &t);
    Check(t.begin == covered && t.end >= t.begin);  // data order, no holes, no overlaps
    covered = t.end;
    // Size from shape and dtype, recomputed in 128 bits.
    unsigned __int128 elems = 1;
    for (int64_t d : t.shape) {
      Check(d >= 0);
      elems *= static_cast<uint64_t>(d);
      if (elems > (static_cast<unsigned __int128>(1) << 64)) elems = static_cast<unsigned __int128>(1) << 64;
    }
    Check(elems == static_cast<uint64_t>(t.elements) || (t.elements == 0 && elems == 0));
    Check(elems * SafetensorsDTypeBits(t.dtype) == static_cast<unsigned __int128>(t.nbytes()) * 8);
    const auto bytes = f.Bytes(t);
    Check(bytes.size() == t.nbytes());
    if (!bytes.empty()) {
      Check(bytes.data() >= data && bytes.data() + bytes.size() <= data + size);
      g_sink = g_sink + bytes.front() + bytes.back();
    }
    auto v = f.View(t);
    if (v.ok()) {
      Check(SafetensorsDTypeIsComputable(t.dtype) && t.shape.size() <= 4);
      Check(static_cast<size_t>(v->n_dims) == t.shape.size() && v->nbytes == t.nbytes());
      for (int i = 0; i < v->n_dims; ++i) Check(v->ne[i] == t.shape[t.shape.size() - 1 - i]);
      Check(v->data == bytes.data());
    } else {
      Check(v.status().code() == StatusCode::kUnsupported);
    }
  }
  Check(covered == size - f.data_offset());
  return 0;
}
