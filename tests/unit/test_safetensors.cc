// safetensors reader/writer tests.
//
//  * Round trips: SafetensorsWriter -> SafetensorsFile for every dtype,
//    scalars, zero-sized tensors, metadata; layout (8-byte data start,
//    element-aligned tensors).
//  * Files handcrafted here byte by byte (u64 length + JSON text + data, not
//    through the writer) for the valid layout and for each class of breakage,
//    each asserting a non-OK Status with the right code and a message naming
//    the problem.
//  * Every truncation of a valid file is rejected; random byte flips never
//    crash and never give a view outside the input.
//  * Shape order: PyTorch [out, in] becomes TensorView ne = {in, out}.
//  * Sharded models (model.safetensors.index.json) and their failure modes.
//  * SafetensorsCompat.WriteSampleForPython is the driver for
//    tests/python/test_safetensors_compat.py (the `safetensors` PyPI package
//    as the independent oracle reads what gembed wrote); it skips unless
//    GEMBED_SAFETENSORS_SAMPLE_DIR is set. The other direction goes through
//    `gembed inspect --json`.
//  * SafetensorsRealModel checks the real EmbeddingGemma folder when present
//    (GEMBED_REAL_MODEL_DIR or models/embeddinggemma-300m; skips otherwise).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/status.h"
#include "io/safetensors.h"

namespace gembed {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace fs = std::filesystem;

// u64 little-endian length + header text + data bytes (independent of the writer).
std::vector<uint8_t> RawFile(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> b(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<uint8_t> Iota(size_t n, uint8_t start = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i);
  return v;
}

Result<std::unique_ptr<SafetensorsFile>> Parse(const std::vector<uint8_t>& b) {
  return SafetensorsFile::FromBytes(b.data(), b.size());
}

void ExpectError(const std::vector<uint8_t>& bytes, StatusCode code,
                 std::initializer_list<std::string_view> words) {
  auto r = Parse(bytes);
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << *words.begin() << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (std::string_view w : words) EXPECT_THAT(r.status().message(), HasSubstr(std::string(w)));
}
void ExpectCorrupt(const std::vector<uint8_t>& bytes, std::initializer_list<std::string_view> words) {
  ExpectError(bytes, StatusCode::kCorruptFile, words);
}
// One tensor entry {"dtype":..., "shape":..., "data_offsets":...} as JSON text.
std::string Entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

std::vector<uint8_t> F32Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

fs::path TempDir(const std::string& tag) {
  const fs::path d = fs::temp_directory_path() /
                     ("gembed_st_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void WriteBytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
void WriteText(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

// ---------------------------------------------------------------------------
// dtypes

TEST(SafetensorsDType, NamesBitsAndMapping) {
  struct Case {
    const char* name;
    uint32_t bits;
    bool compute;
  };
  const Case cases[] = {{"F32", 32, true},    {"F16", 16, true},     {"BF16", 16, true},
                        {"F64", 64, false},   {"I64", 64, false},    {"I32", 32, false},
                        {"I16", 16, false},   {"I8", 8, false},      {"U8", 8, false},
                        {"U16", 16, false},   {"U32", 32, false},    {"U64", 64, false},
                        {"BOOL", 8, false},   {"F8_E4M3", 8, false}, {"F8_E5M2", 8, false},
                        {"F8_E8M0", 8, false}, {"F4", 4, false},     {"F6_E2M3", 6, false},
                        {"F6_E3M2", 6, false}, {"C64", 64, false}};
  for (const Case& c : cases) {
    const auto t = SafetensorsDTypeFromName(c.name);
    ASSERT_TRUE(t.has_value()) << c.name;
    EXPECT_EQ(SafetensorsDTypeName(*t), c.name);
    EXPECT_EQ(SafetensorsDTypeBits(*t), c.bits) << c.name;
    EXPECT_EQ(SafetensorsDTypeIsComputable(*t), c.compute) << c.name;
  }
  EXPECT_FALSE(SafetensorsDTypeFromName("f32").has_value()) << "names are case-sensitive";
  EXPECT_FALSE(SafetensorsDTypeFromName("Q8_0").has_value());
  EXPECT_EQ(SafetensorsToDType(SafetensorsDType::kF32), DType::kF32);
  EXPECT_EQ(SafetensorsToDType(SafetensorsDType::kF16), DType::kF16);
  EXPECT_EQ(SafetensorsToDType(SafetensorsDType::kBF16), DType::kBF16);
  EXPECT_EQ(SafetensorsToDType(SafetensorsDType::kI32), DType::kI32);
  EXPECT_FALSE(SafetensorsToDType(SafetensorsDType::kI64).has_value());
  EXPECT_FALSE(SafetensorsToDType(SafetensorsDType::kU8).has_value());
}

// ---------------------------------------------------------------------------
// Valid files

TEST(SafetensorsRead, HandcraftedFile) {
  // Two tensors, metadata, header padded with spaces as the reference writer does.
  const std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9\"},"
                             "\"b\":" + Entry("F16", "[2]", "[8,12]") + "," +
                             "\"a\":" + Entry("F32", "[2]", "[0,8]") + "}    ";
  std::vector<uint8_t> data = F32Bytes({1.5f, -2.0f});
  const uint16_t h[2] = {0x3c00, 0xc000};  // 1.0, -2.0 in fp16
  data.insert(data.end(), reinterpret_cast<const uint8_t*>(h), reinterpret_cast<const uint8_t*>(h) + 4);
  const auto bytes = RawFile(header, data);
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const SafetensorsFile& f = **r;
  EXPECT_EQ(f.header_bytes(), header.size());
  EXPECT_EQ(f.data_offset(), 8 + header.size());
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "caf\xc3\xa9");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a") << "tensors() is in data order";
  EXPECT_EQ(f.tensors()[1].name, "b");
  const SafetensorsTensorInfo* a = f.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, SafetensorsDType::kF32);
  EXPECT_EQ(a->shape, std::vector<int64_t>{2});
  EXPECT_EQ(a->elements, 2);
  EXPECT_EQ(a->nbytes(), 8u);
  auto v = f.View(*a);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(static_cast<const float*>(v->data)[0], 1.5f);
  EXPECT_EQ(static_cast<const float*>(v->data)[1], -2.0f);
  const auto* b = f.FindTensor("b");
  ASSERT_NE(b, nullptr);
  auto vb = f.View(*b);
  ASSERT_TRUE(vb.ok());
  EXPECT_EQ(vb->dtype, DType::kF16);
  EXPECT_EQ(F16ToF32(static_cast<const uint16_t*>(vb->data)[1]), -2.0f);
  EXPECT_EQ(f.FindTensor("c"), nullptr);
  EXPECT_EQ(f.FindTensor("__metadata__"), nullptr);
}

TEST(SafetensorsRead, EmptyTensorTableAndUnknownFields) {
  auto r = Parse(RawFile("{}"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->tensors().empty());
  // Unknown scalar / flat-array fields inside an entry are ignored.
  auto r2 = Parse(RawFile("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
                          "\"extra\":\"x\",\"more\":[1,2]}}",
                          {7}));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ((*r2)->Bytes(*(*r2)->FindTensor("w"))[0], 7);
}

TEST(SafetensorsRead, ShapeIsReversedIntoGgmlOrder) {
  // PyTorch weight [out=3, in=2] with w[r][c] = 10 r + c.
  std::vector<float> w;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c) w.push_back(10.0f * r + c);
  SafetensorsWriter wr;
  ASSERT_TRUE(wr.AddTensor("linear.weight", SafetensorsDType::kF32, {3, 2}, F32Bytes(w)).ok());
  std::vector<uint8_t> four(2 * 3 * 4 * 5 * 4);
  ASSERT_TRUE(wr.AddTensor("t4", SafetensorsDType::kF32, {2, 3, 4, 5}, four).ok());
  const auto bytes = wr.ToBytes();
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto v = (*r)->View(*(*r)->FindTensor("linear.weight"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->n_dims, 2);
  EXPECT_EQ(v->ne[0], 2) << "ne[0] is the innermost (PyTorch last) dim";
  EXPECT_EQ(v->ne[1], 3);
  EXPECT_EQ(v->rows(), 3);
  EXPECT_EQ(v->cols(), 2);
  for (int r2 = 0; r2 < 3; ++r2)
    for (int c = 0; c < 2; ++c)
      EXPECT_EQ(reinterpret_cast<const float*>(v->row(r2))[c], 10.0f * r2 + c);
  auto v4 = (*r)->View(*(*r)->FindTensor("t4"));
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->n_dims, 4);
  EXPECT_EQ(v4->ne, (std::array<int64_t, 4>{5, 4, 3, 2}));
}

TEST(SafetensorsRoundTrip, EveryDTypeScalarsAndZeroSized) {
  struct T {
    std::string name;
    SafetensorsDType dtype;
    std::vector<int64_t> shape;
  };
  const std::vector<T> ts = {
      {"f32", SafetensorsDType::kF32, {2, 3}},     {"f16", SafetensorsDType::kF16, {5}},
      {"bf16", SafetensorsDType::kBF16, {3, 1, 2}}, {"f64", SafetensorsDType::kF64, {2}},
      {"i64", SafetensorsDType::kI64, {3}},        {"i32", SafetensorsDType::kI32, {1, 1}},
      {"i16", SafetensorsDType::kI16, {3}},        {"i8", SafetensorsDType::kI8, {7}},
      {"u8", SafetensorsDType::kU8, {3}},          {"u16", SafetensorsDType::kU16, {1}},
      {"u32", SafetensorsDType::kU32, {2}},        {"u64", SafetensorsDType::kU64, {1}},
      {"bool", SafetensorsDType::kBool, {4}},      {"f8", SafetensorsDType::kF8_E4M3, {3}},
      {"f4", SafetensorsDType::kF4, {6}},          {"c64", SafetensorsDType::kC64, {2}},
      {"scalar", SafetensorsDType::kF32, {}},      {"empty", SafetensorsDType::kF32, {0, 4}},
      {"empty2", SafetensorsDType::kF16, {3, 0}},  {"unicode \xe2\x96\x81 name", SafetensorsDType::kU8, {2}},
  };
  SafetensorsWriter w;
  ASSERT_TRUE(w.SetMetadata("format", "pt").ok());
  ASSERT_TRUE(w.SetMetadata("k", "v \"quoted\" \\ \n").ok());
  std::vector<std::vector<uint8_t>> payloads;
  uint8_t seed = 1;
  for (const T& t : ts) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const size_t nbytes = static_cast<size_t>(n) * SafetensorsDTypeBits(t.dtype) / 8;
    payloads.push_back(Iota(nbytes, seed));
    seed = static_cast<uint8_t>(seed + 17);
    ASSERT_TRUE(w.AddTensor(t.name, t.dtype, t.shape, payloads.back()).ok()) << t.name;
  }
  const auto bytes = w.ToBytes();
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const SafetensorsFile& f = **r;
  EXPECT_EQ(f.data_offset() % 8, 0u) << "header padded so the data starts 8-aligned";
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("k"), "v \"quoted\" \\ \n");
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const SafetensorsTensorInfo* info = f.FindTensor(ts[i].name);
    ASSERT_NE(info, nullptr) << ts[i].name;
    EXPECT_EQ(info->dtype, ts[i].dtype);
    EXPECT_EQ(info->shape, ts[i].shape);
    const auto got = f.Bytes(*info);
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), payloads[i]) << ts[i].name;
    const uint32_t elem = std::max<uint32_t>(1, SafetensorsDTypeBits(info->dtype) / 8);
    EXPECT_EQ((f.data_offset() + info->begin) % elem, 0u) << ts[i].name << " aligned to its element";
    auto v = f.View(*info);
    if (SafetensorsDTypeIsComputable(info->dtype)) {
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ(v->nbytes, payloads[i].size());
      EXPECT_EQ(v->elements(), info->elements);
    } else {
      ASSERT_FALSE(v.ok()) << ts[i].name;
      EXPECT_EQ(v.status().code(), StatusCode::kUnsupported);
      EXPECT_THAT(v.status().message(), HasSubstr("unsupported for compute"));
    }
  }
  const auto* sc = f.FindTensor("scalar");
  EXPECT_EQ(sc->elements, 1);
  auto vs = f.View(*sc);
  ASSERT_TRUE(vs.ok());
  EXPECT_EQ(vs->n_dims, 0);
  EXPECT_EQ(vs->elements(), 1);
  EXPECT_EQ(f.FindTensor("empty")->elements, 0);
  EXPECT_EQ(f.FindTensor("empty")->nbytes(), 0u);
  // Deterministic: the same tensors give the same bytes.
  EXPECT_EQ(w.ToBytes(), bytes);
}

TEST(SafetensorsRoundTrip, RankAboveFourParsesButHasNoView) {
  SafetensorsWriter w;
  ASSERT_TRUE(w.AddTensor("r5", SafetensorsDType::kF32, {1, 1, 1, 1, 2}, Iota(8)).ok());
  const auto bytes = w.ToBytes();
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto* t = (*r)->FindTensor("r5");
  EXPECT_EQ(t->shape.size(), 5u);
  auto v = (*r)->View(*t);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnsupported);
  EXPECT_THAT(v.status().message(), HasSubstr("rank 5"));
}

TEST(SafetensorsWriter, RejectsBadInput) {
  SafetensorsWriter w;
  ASSERT_TRUE(w.AddTensor("a", SafetensorsDType::kF32, {2}, Iota(8)).ok());
  EXPECT_THAT(w.AddTensor("a", SafetensorsDType::kF32, {2}, Iota(8)).message(), HasSubstr("twice"));
  EXPECT_THAT(w.AddTensor("__metadata__", SafetensorsDType::kU8, {1}, Iota(1)).message(),
              HasSubstr("reserved"));
  EXPECT_THAT(w.AddTensor("b", SafetensorsDType::kF32, {3}, Iota(8)).message(), HasSubstr("needs 12"));
  EXPECT_THAT(w.AddTensor("c", SafetensorsDType::kF32, {-1}, {}).message(), HasSubstr("negative"));
  EXPECT_THAT(w.AddTensor("d", SafetensorsDType::kF4, {3}, Iota(2)).message(),
              HasSubstr("whole number of bytes"));
  EXPECT_THAT(w.AddTensor(std::string("bad\xff"), SafetensorsDType::kU8, {1}, Iota(1)).message(),
              HasSubstr("UTF-8"));
  EXPECT_FALSE(w.SetMetadata("k", std::string("\xc3")).ok());
  EXPECT_EQ(w.AddTensor("e", SafetensorsDType::kU8, std::vector<int64_t>(65, 1), Iota(1)).code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Malformed files: one case per class.

TEST(SafetensorsMalformed, LengthField) {
  ExpectCorrupt({}, {"too short"});
  ExpectCorrupt(std::vector<uint8_t>(7, 0), {"too short"});
  ExpectCorrupt(std::vector<uint8_t>(8, 0), {"empty header"});
  auto b = RawFile("{}");
  b[0] = 3;  // claims 3 bytes, 2 follow
  ExpectCorrupt(b, {"header length 3", "exceeds"});
  // Absurd length, checked before anything is read or allocated.
  std::vector<uint8_t> huge(16, ' ');
  const uint64_t n = 200'000'000;
  std::memcpy(huge.data(), &n, 8);
  ExpectCorrupt(huge, {"limit"});
  std::vector<uint8_t> max(16, ' ');
  std::memset(max.data(), 0xff, 8);
  ExpectCorrupt(max, {"limit"});
}

TEST(SafetensorsMalformed, Json) {
  ExpectCorrupt(RawFile("[1,2]"), {"does not start with '{'"});
  ExpectCorrupt(RawFile(" {}"), {"does not start with '{'"});
  ExpectCorrupt(RawFile("{\"a\": "), {"malformed JSON"});
  ExpectCorrupt(RawFile("{} x"), {"malformed JSON"});
  ExpectCorrupt(RawFile(std::string("{}\0", 3)), {"malformed JSON"});
  ExpectCorrupt(RawFile("{\"a\":1,}"), {"malformed JSON"});
  ExpectCorrupt(RawFile("{'a':1}"), {"malformed JSON"});
  ExpectCorrupt(RawFile("{\"\xff\":1}"), {"malformed JSON"});  // invalid UTF-8
  ExpectCorrupt(RawFile("{\"a\":\"\\ud800\"}"), {"malformed JSON"});  // lone surrogate
  ExpectCorrupt(RawFile("{\"a\":{\"b\":[[1]]}}"), {"nesting deeper than 3"});
  ExpectCorrupt(RawFile("{\"a\":" + std::string(10000, '[')), {"nesting"});
}

TEST(SafetensorsMalformed, DuplicateKeys) {
  const std::string e = Entry("U8", "[1]", "[0,1]");
  ExpectCorrupt(RawFile("{\"w\":" + e + ",\"w\":" + e + "}", {1}), {"\"w\" appears twice"});
  ExpectCorrupt(RawFile("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                        {1}),
                {"\"dtype\" appears twice", "\"w\""});
  ExpectCorrupt(RawFile("{\"__metadata__\":{},\"__metadata__\":{}}"), {"appears twice"});
}

TEST(SafetensorsMalformed, Metadata) {
  ExpectCorrupt(RawFile("{\"__metadata__\":[\"a\"]}"), {"__metadata__", "array", "expected an object"});
  ExpectCorrupt(RawFile("{\"__metadata__\":{\"n\":1}}"), {"__metadata__", "\"n\"", "expected a string"});
  ExpectCorrupt(RawFile("{\"__metadata__\":{\"n\":null}}"), {"expected a string"});
}

TEST(SafetensorsMalformed, TensorEntryFields) {
  ExpectCorrupt(RawFile("{\"w\":5}"), {"tensor \"w\"", "expected an object"});
  ExpectCorrupt(RawFile("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", {1}), {"missing \"dtype\""});
  ExpectCorrupt(RawFile("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", {1}), {"missing \"shape\""});
  ExpectCorrupt(RawFile("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", {1}), {"missing \"data_offsets\""});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[0,1]").replace(9, 4, "7") + "}", {1}),
                {"\"dtype\" is a non-negative integer"});
  ExpectError(RawFile("{\"w\":" + Entry("Q8_0", "[1]", "[0,1]") + "}", {1}), StatusCode::kUnsupported,
              {"unknown dtype \"Q8_0\""});
  ExpectError(RawFile("{\"w\":" + Entry("f32", "[1]", "[0,4]") + "}", Iota(4)),
              StatusCode::kUnsupported, {"unknown dtype"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "5", "[0,5]") + "}", Iota(5)),
                {"\"shape\" is a non-negative integer, expected an array"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[-1]", "[0,0]") + "}"), {"negative dimension -1"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1.5]", "[0,1]") + "}", {1}),
                {"expected non-negative integers"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[\"1\"]", "[0,1]") + "}", {1}),
                {"expected non-negative integers"});
  std::string rank65 = "[1";
  for (int i = 0; i < 64; ++i) rank65 += ",1";
  ExpectError(RawFile("{\"w\":" + Entry("U8", rank65 + "]", "[0,1]") + "}", {1}), StatusCode::kUnsupported,
              {"at most 64"});
}

TEST(SafetensorsMalformed, Offsets) {
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[0]") + "}", {1}), {"has 1 entries, expected 2"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[0,1,2]") + "}", {1}), {"has 3 entries"});
  std::string offsets100 = "[0";
  for (int i = 0; i < 99; ++i) offsets100 += ",0";
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", offsets100 + "]") + "}", {1}), {"has 100 entries"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[2,1]") + "}", {1, 2}), {"end 1 is before begin 2"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[4]", "[0,4]") + "}", {1, 2}), {"run past the data section"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[0,-1]") + "}", {1}), {"negative integer"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[0,18446744073709551615]") + "}", {1}),
                {"too large"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("U8", "[1]", "[0,1e3]") + "}", {1}), {"number"});
}

TEST(SafetensorsMalformed, SizeMismatchAndOverflow) {
  ExpectCorrupt(RawFile("{\"w\":" + Entry("F32", "[2]", "[0,4]") + "}", Iota(4)),
                {"hold 4 bytes", "F32 [2] needs 8"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("F32", "[1]", "[0,8]") + "}", Iota(8)), {"needs 4"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("F32", "[4611686018427387904,4]", "[0,4]") + "}", Iota(4)),
                {"more elements than fit"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("F64", "[4611686018427387904]", "[0,8]") + "}", Iota(8)),
                {"overflow"});
  ExpectCorrupt(RawFile("{\"w\":" + Entry("F4", "[3]", "[0,2]") + "}", Iota(2)),
                {"not a whole number of bytes"});
  // A zero dim makes the count 0 whatever the other dims are.
  auto r = Parse(RawFile("{\"w\":" + Entry("F32", "[9223372036854775807,0]", "[0,0]") + "}"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->FindTensor("w")->elements, 0);
}

TEST(SafetensorsMalformed, CoverageOverlapsHolesTrailingBytes) {
  ExpectCorrupt(RawFile("{\"a\":" + Entry("U8", "[8]", "[0,8]") + ",\"b\":" + Entry("U8", "[8]", "[4,12]") +
                        "}",
                        Iota(12)),
                {"\"b\" [4, 12] overlaps tensor \"a\" [0, 8]"});
  ExpectCorrupt(RawFile("{\"a\":" + Entry("U8", "[4]", "[0,4]") + ",\"b\":" + Entry("U8", "[4]", "[0,4]") +
                        "}",
                        Iota(4)),
                {"overlaps"});
  ExpectCorrupt(RawFile("{\"a\":" + Entry("U8", "[4]", "[0,4]") + ",\"b\":" + Entry("U8", "[4]", "[8,12]") +
                        "}",
                        Iota(12)),
                {"[4, 8) belong to no tensor"});
  ExpectCorrupt(RawFile("{\"a\":" + Entry("U8", "[4]", "[4,8]") + "}", Iota(8)), {"[0, 4) belong to no tensor"});
  ExpectCorrupt(RawFile("{\"a\":" + Entry("U8", "[4]", "[0,4]") + "}", Iota(9)), {"5 bytes after the last tensor"});
  ExpectCorrupt(RawFile("{}", Iota(1)), {"1 bytes after the last tensor"});
  // A zero-sized tensor inside another one's bytes is an overlap too.
  ExpectCorrupt(RawFile("{\"a\":" + Entry("U8", "[8]", "[0,8]") + ",\"z\":" + Entry("U8", "[0]", "[4,4]") +
                        "}",
                        Iota(8)),
                {"overlaps"});
  // ... but one at a boundary is fine.
  auto ok = Parse(RawFile("{\"a\":" + Entry("U8", "[8]", "[0,8]") + ",\"z\":" + Entry("U8", "[0]", "[8,8]") +
                          ",\"y\":" + Entry("U8", "[0]", "[0,0]") + "}",
                          Iota(8)));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

// A small valid file used by the truncation, mutation and fuzz-seed tests.
std::vector<uint8_t> SampleFile() {
  SafetensorsWriter w;
  EXPECT_TRUE(w.SetMetadata("format", "pt").ok());
  EXPECT_TRUE(w.AddTensor("embed.weight", SafetensorsDType::kF32, {4, 3}, Iota(48)).ok());
  EXPECT_TRUE(w.AddTensor("norm.weight", SafetensorsDType::kBF16, {3}, Iota(6, 100)).ok());
  EXPECT_TRUE(w.AddTensor("ids", SafetensorsDType::kI64, {2}, Iota(16, 50)).ok());
  EXPECT_TRUE(w.AddTensor("half", SafetensorsDType::kF16, {2, 2}, Iota(8, 200)).ok());
  return w.ToBytes();
}

TEST(SafetensorsMalformed, EveryTruncationIsRejected) {
  const auto full = SampleFile();
  ASSERT_TRUE(Parse(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = Parse(cut);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(r.status().code(), StatusCode::kCorruptFile) << n << ": " << r.status().ToString();
  }
}

TEST(SafetensorsMalformed, RandomMutationsNeverEscapeTheInput) {
  const auto full = SampleFile();
  std::mt19937 rng(1234);
  int parsed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto b = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Bias mutations toward the header, where the structure lives.
      const size_t limit = (rng() % 4 != 0) ? std::min<size_t>(b.size(), 8 + 200) : b.size();
      b[rng() % limit] = static_cast<uint8_t>(rng());
    }
    auto r = Parse(b);
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    ++parsed;
    for (const auto& t : (*r)->tensors()) {
      const auto bytes = (*r)->Bytes(t);
      ASSERT_GE(bytes.data(), b.data());
      ASSERT_LE(bytes.data() + bytes.size(), b.data() + b.size());
    }
  }
  EXPECT_GT(parsed, 0) << "some mutations (data bytes) must still parse";
}

// ---------------------------------------------------------------------------
// Files on disk and sharded models

TEST(SafetensorsOpen, FileErrorsNameThePath) {
  const fs::path dir = TempDir("open");
  auto missing = SafetensorsFile::Open((dir / "nope.safetensors").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  const fs::path bad = dir / "bad.safetensors";
  WriteBytes(bad, RawFile("{\"w\":1}"));
  auto r = SafetensorsFile::Open(bad.string());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), StartsWith(bad.string() + ": "));
  const fs::path good = dir / "good.safetensors";
  ASSERT_TRUE(SafetensorsWriter().WriteFile(good.string()).ok());
  auto g = SafetensorsFile::Open(good.string());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)->path(), good.string());
  EXPECT_FALSE(fs::exists(good.string() + ".tmp"));
  fs::remove_all(dir);
}

// Writes shards and an index into dir; `index` is the weight_map JSON body.
void WriteShard(const fs::path& p, const std::vector<std::pair<std::string, float>>& tensors) {
  SafetensorsWriter w;
  for (const auto& [name, value] : tensors)
    ASSERT_TRUE(w.AddTensor(name, SafetensorsDType::kF32, {2}, F32Bytes({value, -value})).ok());
  ASSERT_TRUE(w.WriteFile(p.string()).ok());
}
void WriteIndex(const fs::path& dir, const std::string& weight_map) {
  WriteText(dir / "model.safetensors.index.json",
            "{\"metadata\":{\"total_size\":32},\"weight_map\":" + weight_map + "}");
}

TEST(SafetensorsModel, ShardedIndex) {
  const fs::path dir = TempDir("shards");
  WriteShard(dir / "model-00001-of-00002.safetensors", {{"a", 1.0f}, {"b", 2.0f}});
  WriteShard(dir / "model-00002-of-00002.safetensors", {{"c", 3.0f}, {"d", 4.0f}});
  WriteIndex(dir, "{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\","
                  "\"c\":\"model-00002-of-00002.safetensors\",\"d\":\"./model-00002-of-00002.safetensors\"}");
  for (const fs::path& p : {dir, dir / "model.safetensors.index.json"}) {
    auto m = SafetensorsModel::Open(p.string());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->shards().size(), 2u) << "each shard opened once";
    ASSERT_EQ((*m)->tensors().size(), 4u);
    EXPECT_EQ((*m)->tensors()[0].info->name, "a");
    EXPECT_EQ((*m)->tensors()[3].info->name, "d");
    EXPECT_EQ((*m)->index_metadata().at("total_size"), "32");
    for (const auto& [name, value] : std::vector<std::pair<std::string, float>>{{"a", 1}, {"c", 3}, {"d", 4}}) {
      auto v = (*m)->View(name);
      ASSERT_TRUE(v.ok()) << name;
      EXPECT_EQ(static_cast<const float*>(v->data)[1], -value);
    }
    auto none = (*m)->View("e");
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  }
  fs::remove_all(dir);
}

TEST(SafetensorsModel, SingleFileAndFolder) {
  const fs::path dir = TempDir("single");
  auto empty = SafetensorsModel::Open(dir.string());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  WriteShard(dir / "model.safetensors", {{"x", 5.0f}});
  for (const fs::path& p : {dir, dir / "model.safetensors"}) {
    auto m = SafetensorsModel::Open(p.string());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->tensors().size(), 1u);
    EXPECT_TRUE((*m)->index_metadata().empty());
    EXPECT_NE((*m)->Find("x"), nullptr);
  }
  EXPECT_EQ(SafetensorsModel::Open((dir / "absent").string()).status().code(), StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST(SafetensorsModel, IndexErrors) {
  const fs::path dir = TempDir("badindex");
  WriteShard(dir / "s1.safetensors", {{"a", 1.0f}, {"b", 2.0f}});
  WriteShard(dir / "s2.safetensors", {{"b", 3.0f}, {"c", 4.0f}});
  WriteShard(dir / "s3.safetensors", {{"d", 5.0f}});
  const auto expect = [&](const std::string& weight_map, std::initializer_list<std::string_view> words) {
    WriteIndex(dir, weight_map);
    auto m = SafetensorsModel::Open(dir.string());
    ASSERT_FALSE(m.ok()) << weight_map;
    for (std::string_view w : words) EXPECT_THAT(m.status().message(), HasSubstr(std::string(w))) << weight_map;
  };
  expect("{\"d\":\"missing.safetensors\"}", {"missing.safetensors", "cannot open"});
  expect("{\"d\":\"s3.safetensors\",\"d\":\"s3.safetensors\"}", {"\"d\" appears twice", "weight_map"});
  expect("{\"d\":\"s3.safetensors\",\"e\":\"s3.safetensors\"}", {"\"e\" listed in weight_map is missing from shard"});
  expect("{\"a\":\"s1.safetensors\"}", {"\"b\" in shard \"s1.safetensors\" is not listed"});
  // b is in s1 and s2; whichever the index names, the other shard's copy conflicts.
  expect("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}",
         {"\"b\" is in shard \"s2.safetensors\" but weight_map places it in \"s1.safetensors\""});
  expect("{\"d\":\"/etc/passwd\"}", {"absolute"});
  expect("{\"d\":\"../s3.safetensors\"}", {"leaves the model folder"});
  expect("{\"d\":\"\"}", {"empty shard"});
  expect("{\"d\":3}", {"expected a shard file name"});
  expect("[]", {"\"weight_map\" is a array"});
  WriteText(dir / "model.safetensors.index.json", "{\"metadata\":{}}");
  EXPECT_THAT(SafetensorsModel::Open(dir.string()).status().message(), HasSubstr("no \"weight_map\""));
  WriteText(dir / "model.safetensors.index.json", "{\"weight_map\":{");
  EXPECT_THAT(SafetensorsModel::Open(dir.string()).status().message(), HasSubstr("malformed JSON"));
  WriteText(dir / "model.safetensors.index.json", "{\"weight_map\":{},\"metadata\":5}");
  EXPECT_THAT(SafetensorsModel::Open(dir.string()).status().message(), HasSubstr("\"metadata\" is a non-negative integer"));
  // A corrupt shard is reported with the shard's name.
  WriteBytes(dir / "s4.safetensors", RawFile("{\"w\":1}"));
  expect("{\"w\":\"s4.safetensors\"}", {"shard \"s4.safetensors\"", "expected an object"});
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Fuzz seeds and the Python oracle drivers

// GEMBED_WRITE_FUZZ_SEEDS=<dir> writes tests/fuzz/seeds/fuzz_safetensors.
TEST(SafetensorsFuzzSeeds, Write) {
  const char* out = std::getenv("GEMBED_WRITE_FUZZ_SEEDS");
  if (!out) GTEST_SKIP() << "GEMBED_WRITE_FUZZ_SEEDS not set (regenerates the fuzz seeds)";
  const fs::path dir(out);
  fs::create_directories(dir);
  WriteBytes(dir / "sample.safetensors", SampleFile());
  WriteBytes(dir / "empty.safetensors", RawFile("{}"));
  WriteBytes(dir / "scalar_zero_sized.safetensors",
             RawFile("{\"__metadata__\":{\"format\":\"pt\"},\"s\":" + Entry("F32", "[]", "[0,4]") +
                         ",\"z\":" + Entry("BF16", "[0,3]", "[4,4]") + "}",
                     Iota(4)));
}

// Writes sample.safetensors + sample.json (what the writer was given) into
// GEMBED_SAFETENSORS_SAMPLE_DIR for the Python test to read with `safetensors`.
TEST(SafetensorsCompat, WriteSampleForPython) {
  const char* out = std::getenv("GEMBED_SAFETENSORS_SAMPLE_DIR");
  if (!out) GTEST_SKIP() << "GEMBED_SAFETENSORS_SAMPLE_DIR not set (used by test_safetensors_compat.py)";
  struct T {
    std::string name;
    SafetensorsDType dtype;
    std::vector<int64_t> shape;
  };
  const std::vector<T> ts = {{"model.embed.weight", SafetensorsDType::kF32, {5, 4}},
                             {"norm", SafetensorsDType::kF32, {4}},
                             {"half", SafetensorsDType::kF16, {3, 2}},
                             {"brain", SafetensorsDType::kBF16, {2, 3}},
                             {"ids", SafetensorsDType::kI64, {3}},
                             {"bytes", SafetensorsDType::kU8, {1, 5}},
                             {"small", SafetensorsDType::kI8, {2, 2, 2}},
                             {"f64", SafetensorsDType::kF64, {2}},
                             {"scalar", SafetensorsDType::kF32, {}},
                             {"zero", SafetensorsDType::kF32, {0, 3}}};
  SafetensorsWriter w;
  ASSERT_TRUE(w.SetMetadata("format", "pt").ok());
  ASSERT_TRUE(w.SetMetadata("producer", "gembed test").ok());
  nlohmann::ordered_json m;
  m["metadata"] = {{"format", "pt"}, {"producer", "gembed test"}};
  m["tensors"] = nlohmann::ordered_json::object();
  std::mt19937 rng(7);
  for (const T& t : ts) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<uint8_t> b(static_cast<size_t>(n) * SafetensorsDTypeBits(t.dtype) / 8);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    // Keep float payloads finite so NaN payload bits do not matter to the oracle.
    if (t.dtype == SafetensorsDType::kF32)
      for (int64_t i = 0; i < n; ++i) {
        const float f = static_cast<float>(i) * 0.25f - 1.0f;
        std::memcpy(b.data() + 4 * i, &f, 4);
      }
    std::string hex;
    for (uint8_t x : b) hex += fmt::format("{:02x}", x);
    m["tensors"][t.name] = {{"dtype", std::string(SafetensorsDTypeName(t.dtype))},
                            {"shape", t.shape},
                            {"hex", hex}};
    ASSERT_TRUE(w.AddTensor(t.name, t.dtype, t.shape, std::move(b)).ok());
  }
  const fs::path dir(out);
  ASSERT_TRUE(w.WriteFile((dir / "sample.safetensors").string()).ok());
  std::ofstream(dir / "sample.json") << m.dump(1);
}

// ---------------------------------------------------------------------------
// The real checkpoint (docs/REAL-WEIGHTS.md), when it has been fetched.

fs::path RealModelDir() {
  if (const char* d = std::getenv("GEMBED_REAL_MODEL_DIR")) return d;
  return fs::path(GEMBED_SOURCE_DIR) / "models" / "embeddinggemma-300m";
}

TEST(SafetensorsRealModel, EmbeddingGemmaLayout) {
  const fs::path dir = RealModelDir();
  if (!fs::exists(dir / "model.safetensors"))
    GTEST_SKIP() << dir << " not found (scripts/fetch_embeddinggemma.py fetches it)";
  auto m = SafetensorsModel::Open(dir.string());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  // MODEL-SPEC.md section 3: 1 + 24 * 13 + 1 tensors, all F32 in the HF upload.
  EXPECT_EQ((*m)->tensors().size(), 314u);
  for (const auto& e : (*m)->tensors()) EXPECT_EQ(e.info->dtype, SafetensorsDType::kF32) << e.info->name;
  auto emb = (*m)->View("embed_tokens.weight");
  ASSERT_TRUE(emb.ok());
  EXPECT_EQ(emb->ne[0], 768);
  EXPECT_EQ(emb->ne[1], 262144);
  struct Shape {
    const char* name;
    std::vector<int64_t> shape;  // PyTorch order
  };
  const Shape shapes[] = {{"layers.0.self_attn.q_proj.weight", {768, 768}},
                          {"layers.0.self_attn.k_proj.weight", {256, 768}},
                          {"layers.0.self_attn.v_proj.weight", {256, 768}},
                          {"layers.0.self_attn.o_proj.weight", {768, 768}},
                          {"layers.0.self_attn.q_norm.weight", {256}},
                          {"layers.0.self_attn.k_norm.weight", {256}},
                          {"layers.23.mlp.gate_proj.weight", {1152, 768}},
                          {"layers.23.mlp.up_proj.weight", {1152, 768}},
                          {"layers.23.mlp.down_proj.weight", {768, 1152}},
                          {"layers.23.pre_feedforward_layernorm.weight", {768}},
                          {"norm.weight", {768}}};
  for (const Shape& s : shapes) {
    const auto* e = (*m)->Find(s.name);
    ASSERT_NE(e, nullptr) << s.name;
    EXPECT_EQ(e->info->shape, s.shape) << s.name;
  }
  // Values look trained: the final norm weight is not the zero init and finite.
  auto norm = (*m)->View("norm.weight");
  ASSERT_TRUE(norm.ok());
  const float* g = static_cast<const float*>(norm->data);
  double abs_sum = 0;
  for (int i = 0; i < 768; ++i) {
    ASSERT_TRUE(std::isfinite(g[i]));
    abs_sum += std::fabs(g[i]);
  }
  EXPECT_GT(abs_sum, 1.0);
  for (const char* dense : {"2_Dense", "3_Dense"}) {
    auto d = SafetensorsModel::Open((dir / dense).string());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    auto w = (*d)->View("linear.weight");
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->elements(), 768 * 3072);
    EXPECT_EQ(w->ne[std::string_view(dense) == "2_Dense" ? 0 : 1], 768) << dense;
  }
}

}  // namespace
}  // namespace gembed
