// GGUF reader/writer tests.
//
//  * Round trips: GgufWriter -> GgufFile for every value type, arrays of every
//    element type, tensors of every dtype, alignments 1/32/64, v2 and v3.
//  * Malformed files: one handcrafted case per class of breakage (built with
//    ByteBuilder from the format description, not from the writer), each
//    asserting a non-OK Status whose message names the problem.
//  * Every truncation of a valid file is rejected.
//  * Fuzz seeds (tests/fuzz/seeds/fuzz_gguf) are what the generator here makes.
//  * GgufCompat.WriteSampleForPython writes a sample + manifest for
//    tests/python/test_gguf_compat.py (gguf-py as the independent oracle).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "io/gguf.h"
#include "unit/gguf_test_util.h"

namespace gembed {
namespace {

using ::testing::HasSubstr;
using testing::ByteBuilder;
namespace fs = std::filesystem;

Result<std::unique_ptr<GgufFile>> Parse(const std::vector<uint8_t>& b) {
  return GgufFile::FromBytes(b.data(), b.size());
}

// Asserts that `bytes` are rejected with `code` and a message containing each of `words`.
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

// Deterministic bytes (mt19937's output sequence is fixed by the standard).
std::vector<uint8_t> PseudoRandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng() >> 24);
  return b;
}

uint64_t ByteSize(DType t, const std::vector<int64_t>& ne) {
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= static_cast<uint64_t>(ne[d]);
  return *DTypeRowBytes(t, static_cast<uint64_t>(ne[0])) * rows;
}

GgufValue Array(GgufType elem) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.array_type = elem;
  return v;
}

// ---------------------------------------------------------------------------
// The sample: every value type, every array element type, one tensor of each
// dtype. Used by round-trip tests, the fuzz seeds and the gguf-py compat test.

struct SampleTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> ne;
};

std::vector<std::pair<std::string, GgufValue>> SampleMetadata() {
  std::vector<std::pair<std::string, GgufValue>> kv;
  const auto scalar = [&](const std::string& k, GgufType t, auto x) {
    GgufValue v;
    v.type = t;
    v.scalar = x;
    kv.emplace_back(k, std::move(v));
  };
  scalar("general.architecture", GgufType::kString, std::string("gembed-test"));
  scalar("test.u8", GgufType::kU8, uint64_t{255});
  scalar("test.i8", GgufType::kI8, int64_t{-128});
  scalar("test.u16", GgufType::kU16, uint64_t{65535});
  scalar("test.i16", GgufType::kI16, int64_t{-32768});
  scalar("test.u32", GgufType::kU32, uint64_t{4294967295u});
  scalar("test.i32", GgufType::kI32, int64_t{-2147483647 - 1});
  scalar("test.f32", GgufType::kF32, double{-1.5e-6f});
  scalar("test.bool_true", GgufType::kBool, true);
  scalar("test.bool_false", GgufType::kBool, false);
  scalar("test.string", GgufType::kString, std::string("h\xc3\xa9llo \xe2\x96\x81w\"orld\\\n\t\xf0\x9f\x98\x80"));
  scalar("test.string_empty", GgufType::kString, std::string());
  scalar("test.u64", GgufType::kU64, std::numeric_limits<uint64_t>::max());
  scalar("test.i64", GgufType::kI64, std::numeric_limits<int64_t>::min());
  scalar("test.f64", GgufType::kF64, 3.141592653589793);

  GgufValue a = Array(GgufType::kU8);
  a.arr_uint = {0, 1, 255};
  kv.emplace_back("test.arr_u8", a);
  a = Array(GgufType::kI8);
  a.arr_int = {-128, 0, 127};
  kv.emplace_back("test.arr_i8", a);
  a = Array(GgufType::kU16);
  a.arr_uint = {0, 65535};
  kv.emplace_back("test.arr_u16", a);
  a = Array(GgufType::kI16);
  a.arr_int = {-32768, 32767, 5};
  kv.emplace_back("test.arr_i16", a);
  a = Array(GgufType::kU32);
  a.arr_uint = {7, 4294967295u};
  kv.emplace_back("test.arr_u32", a);
  a = Array(GgufType::kI32);
  a.arr_int = {-2147483647 - 1, -1, 2147483647};
  kv.emplace_back("test.arr_i32", a);
  a = Array(GgufType::kF32);
  a.arr_float = {0.5, -1000.0, double{1e-6f}};
  kv.emplace_back("test.arr_f32", a);
  a = Array(GgufType::kBool);
  a.arr_bool = {true, false, true};
  kv.emplace_back("test.arr_bool", a);
  a = Array(GgufType::kString);
  a.arr_string = {"<pad>", "", "\xe2\x96\x81the", "<0x0A>"};
  kv.emplace_back("test.arr_string", a);
  a = Array(GgufType::kU64);
  a.arr_uint = {std::numeric_limits<uint64_t>::max(), 0};
  kv.emplace_back("test.arr_u64", a);
  a = Array(GgufType::kI64);
  a.arr_int = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  kv.emplace_back("test.arr_i64", a);
  a = Array(GgufType::kF64);
  a.arr_float = {2.718281828459045, -0.0};
  kv.emplace_back("test.arr_f64", a);
  return kv;
}

std::vector<SampleTensor> SampleTensors() {
  return {
      {"f32.weight", DType::kF32, {8, 3}},
      {"f16.weight", DType::kF16, {16}},
      {"bf16.weight", DType::kBF16, {4, 2, 2}},
      {"q8_0.weight", DType::kQ8_0, {64, 2}},
      {"q4_0.weight", DType::kQ4_0, {32, 3}},
      {"q4_1.weight", DType::kQ4_1, {32}},
      {"q5_0.weight", DType::kQ5_0, {32, 1, 2}},
      {"q5_1.weight", DType::kQ5_1, {64}},
      {"i8.weight", DType::kI8, {5}},
      {"i16.weight", DType::kI16, {3, 3}},
      {"i32.weight", DType::kI32, {7}},
      {"f64.weight", DType::kF64, {2, 2, 1, 2}},
  };
}

std::vector<uint8_t> SampleTensorBytes(const SampleTensor& t, uint32_t index) {
  return PseudoRandomBytes(ByteSize(t.dtype, t.ne), 1000 + index);
}

GgufWriter SampleWriter(uint32_t alignment, bool with_tensors = true) {
  GgufWriter w(alignment);
  for (auto& [k, v] : SampleMetadata()) w.Set(k, v);
  if (with_tensors) {
    const auto ts = SampleTensors();
    for (uint32_t i = 0; i < ts.size(); ++i) {
      Status st = w.AddTensor(ts[i].name, ts[i].dtype, ts[i].ne, SampleTensorBytes(ts[i], i));
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
  }
  return w;
}

// Compares a value read back with the value that was written.
void ExpectSameValue(const std::string& key, const GgufValue& want, const GgufValue& got) {
  SCOPED_TRACE(key);
  ASSERT_EQ(got.type, want.type);
  if (want.type != GgufType::kArray) {
    if (want.type == GgufType::kF32 || want.type == GgufType::kF64) {
      // Compare bit patterns of the stored precision (-0.0 and NaN included).
      EXPECT_EQ(std::get<double>(got.scalar), std::get<double>(want.scalar));
    } else {
      EXPECT_EQ(got.scalar, want.scalar);
    }
    return;
  }
  ASSERT_EQ(got.array_type, want.array_type);
  ASSERT_EQ(got.array_size(), want.array_size());
  EXPECT_EQ(got.arr_uint, want.arr_uint);
  EXPECT_EQ(got.arr_int, want.arr_int);
  EXPECT_EQ(got.arr_bool, want.arr_bool);
  ASSERT_EQ(got.arr_float.size(), want.arr_float.size());
  for (size_t i = 0; i < want.arr_float.size(); ++i) {
    EXPECT_EQ(got.arr_float[i], want.arr_float[i]);
    EXPECT_EQ(std::signbit(got.arr_float[i]), std::signbit(want.arr_float[i]));
  }
  for (size_t i = 0; i < want.array_size() && want.array_type == GgufType::kString; ++i)
    EXPECT_EQ(got.string_at(i), want.string_at(i));
}

// ---------------------------------------------------------------------------
// Round trips

TEST(GgufRoundTrip, EveryValueTypeAndArrayInInsertionOrder) {
  const std::vector<uint8_t> bytes = SampleWriter(32, /*with_tensors=*/false).ToBytes();
  auto f = Parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->alignment(), 32u);
  EXPECT_TRUE((*f)->tensors().empty());
  const auto want = SampleMetadata();
  const auto& got = (*f)->metadata();
  ASSERT_EQ(got.size(), want.size());  // default alignment: no general.alignment key written
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);  // file order = insertion order
    ExpectSameValue(want[i].first, want[i].second, got[i].second);
    ASSERT_EQ((*f)->Find(want[i].first), &got[i].second);
  }
  EXPECT_EQ((*f)->Find("test.missing"), nullptr);
}

TEST(GgufRoundTrip, StringValuesAreOpaqueBytes) {
  // Decision (gguf.h): string values may hold NULs and invalid UTF-8; they
  // round-trip byte for byte.
  const std::string weird("a\0b\xff\xfe\xc3", 6);
  GgufWriter w;
  w.SetString("test.weird", weird);
  w.SetStringArray("test.weird_arr", {weird, std::string("\0", 1)});
  const auto bytes = w.ToBytes();
  auto f = Parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(*(*f)->GetString("test.weird"), weird);
  auto arr = (*f)->GetStringArray("test.weird_arr");
  ASSERT_TRUE(arr.ok());
  ASSERT_EQ(arr->size(), 2u);
  EXPECT_EQ((*arr)[0], weird);
  EXPECT_EQ((*arr)[1], std::string_view("\0", 1));
}

TEST(GgufRoundTrip, SetReplacesExistingKeyInPlace) {
  GgufWriter w;
  w.SetU32("a", 1);
  w.SetString("b", "x");
  w.SetU32("c", 3);
  w.SetString("a", "now a string");  // replaces value and type, keeps position
  const auto bytes = w.ToBytes();
  auto f = Parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ((*f)->metadata().size(), 3u);
  EXPECT_EQ((*f)->metadata()[0].first, "a");
  EXPECT_EQ((*f)->metadata()[1].first, "b");
  EXPECT_EQ(*(*f)->GetString("a"), "now a string");
}

TEST(GgufRoundTrip, TensorsOfEveryDtypeAtAlignments) {
  for (uint32_t alignment : {1u, 32u, 64u, 4096u}) {
    SCOPED_TRACE(alignment);
    const std::vector<uint8_t> bytes = SampleWriter(alignment).ToBytes();
    auto r = Parse(bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const GgufFile& f = **r;
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.Find("general.alignment") != nullptr, alignment != 32);
    if (alignment != 32) {
      EXPECT_EQ(*f.GetU32("general.alignment"), alignment);
    }
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    EXPECT_EQ(f.file_size(), bytes.size());
    const auto ts = SampleTensors();
    ASSERT_EQ(f.tensors().size(), ts.size());
    for (uint32_t i = 0; i < ts.size(); ++i) {
      SCOPED_TRACE(ts[i].name);
      const GgufTensorInfo& info = f.tensors()[i];
      EXPECT_EQ(info.name, ts[i].name);
      EXPECT_EQ(info.dtype, ts[i].dtype);
      EXPECT_EQ(info.n_dims, static_cast<int>(ts[i].ne.size()));
      int64_t elements = 1;
      for (int d = 0; d < kMaxDims; ++d) {
        const int64_t want = d < static_cast<int>(ts[i].ne.size()) ? ts[i].ne[d] : 1;
        EXPECT_EQ(info.ne[d], want);
        elements *= want;
      }
      EXPECT_EQ(info.elements(), elements);
      EXPECT_EQ(info.offset % alignment, 0u);
      EXPECT_EQ(f.FindTensor(ts[i].name), &info);
      const std::vector<uint8_t> want = SampleTensorBytes(ts[i], i);
      const TensorView v = f.View(info);
      ASSERT_EQ(v.nbytes, want.size());
      EXPECT_EQ(v.dtype, ts[i].dtype);
      EXPECT_EQ(v.ne, info.ne);
      const auto* p = static_cast<const uint8_t*>(v.data);
      // Zero copy: the view points into the caller's buffer.
      EXPECT_EQ(p, bytes.data() + f.data_offset() + info.offset);
      EXPECT_TRUE(std::equal(want.begin(), want.end(), p));
    }
    EXPECT_EQ(f.FindTensor("nope"), nullptr);
  }
}

TEST(GgufRoundTrip, QuantisedTypesHaveGgmlSizes) {
  // Block sizes from ggml-common.h: Q4_0 18 B, Q4_1 20 B, Q5_0 22 B, Q5_1 24 B,
  // Q8_0 34 B per 32 elements.
  const std::vector<uint8_t> bytes = SampleWriter(32).ToBytes();
  auto f = Parse(bytes);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->FindTensor("q4_0.weight")->nbytes, 3u * 18u);
  EXPECT_EQ((*f)->FindTensor("q4_1.weight")->nbytes, 20u);
  EXPECT_EQ((*f)->FindTensor("q5_0.weight")->nbytes, 2u * 22u);
  EXPECT_EQ((*f)->FindTensor("q5_1.weight")->nbytes, 2u * 24u);
  EXPECT_EQ((*f)->FindTensor("q8_0.weight")->nbytes, 2u * 2u * 34u);
  EXPECT_EQ((*f)->FindTensor("bf16.weight")->nbytes, 16u * 2u);
}

TEST(GgufRoundTrip, HandcraftedVersion2And3) {
  for (uint32_t version : {2u, 3u}) {
    ByteBuilder b;
    b.Header(version, 2, 2).KvStr("general.architecture", "x").KvU32("test.n", 7);
    b.TensorInfo("a", {4}, 0 /*F32*/, 0).TensorInfo("b", {2, 2}, 1 /*F16*/, 32);
    b.PadTo(32);
    for (int i = 0; i < 4; ++i) b.Put<float>(static_cast<float>(i) + 0.5f);
    b.Fill(16, 0xEE);  // padding between a (16 B) and b (at 32)
    b.Put<uint16_t>(0x3C00).Put<uint16_t>(0x4000).Put<uint16_t>(0x4200).Put<uint16_t>(0x4400);
    auto f = Parse(b.bytes());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ((*f)->version(), version);
    EXPECT_EQ(*(*f)->GetU32("test.n"), 7u);
    const TensorView a = (*f)->View(*(*f)->FindTensor("a"));
    ASSERT_EQ(a.nbytes, 16u);
    EXPECT_EQ(static_cast<const float*>(a.data)[3], 3.5f);
    const TensorView bv = (*f)->View(*(*f)->FindTensor("b"));
    EXPECT_EQ(bv.nbytes, 8u);
    EXPECT_EQ(static_cast<const uint16_t*>(bv.data)[3], 0x4400);
  }
}

TEST(GgufRoundTrip, WriteFileThenOpen) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("gembed_gguf_{}", ::getpid());
  fs::create_directories(dir);
  const std::string path = (dir / "sample.gguf").string();
  GgufWriter w = SampleWriter(64);
  ASSERT_TRUE(w.WriteFile(path).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const std::vector<uint8_t> mem = w.ToBytes();
  ASSERT_EQ(fs::file_size(path), mem.size());
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(disk, mem);  // streamed file == in-memory image

  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->file_size(), mem.size());
  const TensorView v = (*f)->View(*(*f)->FindTensor("q8_0.weight"));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 64, 0u);  // mmap is page aligned
  fs::remove_all(dir);
}

TEST(GgufRoundTrip, OpenErrorsNameThePath) {
  auto missing = GgufFile::Open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/dir/model.gguf"));

  const fs::path dir = fs::temp_directory_path() / fmt::format("gembed_gguf_bad_{}", ::getpid());
  fs::create_directories(dir);
  const std::string path = (dir / "bad.gguf").string();
  std::ofstream(path, std::ios::binary) << "GGML not a gguf file at all";
  auto bad = GgufFile::Open(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruptFile);
  EXPECT_THAT(bad.status().message(), HasSubstr(path + ": "));
  EXPECT_THAT(bad.status().message(), HasSubstr("magic"));
  std::ofstream(path, std::ios::binary | std::ios::trunc);  // empty file
  auto empty = GgufFile::Open(path);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("truncated"));
  EXPECT_EQ(GgufFile::Open(dir.string()).status().code(), StatusCode::kIoError);  // a directory
  fs::remove_all(dir);
}

TEST(GgufRoundTrip, MetadataCopiedFromAReaderOutlivesIt) {
  // Reader string arrays are views; Set must take copies so the writer does
  // not point into a file that is gone.
  std::vector<uint8_t> copy;
  {
    std::vector<uint8_t> src = SampleWriter(32, false).ToBytes();
    auto f = Parse(src);
    ASSERT_TRUE(f.ok());
    GgufWriter w;
    for (const auto& [k, v] : (*f)->metadata()) w.Set(k, v);
    f = Status(StatusCode::kInternal, "dropped");
    std::fill(src.begin(), src.end(), 0xAB);  // scribble over the source
    copy = w.ToBytes();
  }
  auto g = Parse(copy);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto arr = (*g)->GetStringArray("test.arr_string");
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ((*arr)[2], "\xe2\x96\x81the");
}

// ---------------------------------------------------------------------------
// Typed getters

class GgufGetters : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufWriter w;
    w.SetU8("u8", 200);
    w.SetI32("i32_pos", 123);
    w.SetI32("i32_neg", -5);
    w.SetU64("u64_big", 1ull << 40);
    w.SetU64("u64_small", 9);
    w.SetF32("f32", 0.25f);
    w.SetF64("f64", 1e-6);
    w.SetBool("flag", true);
    w.SetString("name", "gemma");
    w.SetStringArray("tokens", {"<pad>", "<eos>", "\xe2\x96\x81hi"});
    w.SetF32Array("scores", {0.0f, -1.5f, -1000.0f});
    w.SetI32Array("types", {3, 1, -2});
    w.SetU32Array("u32s", {1, 4000000000u});
    GgufValue big = Array(GgufType::kI64);
    big.arr_int = {1, int64_t{1} << 40};
    w.Set("i64s", big);
    bytes_ = w.ToBytes();
    auto r = Parse(bytes_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    f_ = std::move(r.value());
  }
  std::vector<uint8_t> bytes_;
  std::unique_ptr<GgufFile> f_;
};

TEST_F(GgufGetters, Scalars) {
  EXPECT_EQ(*f_->GetU32("u8"), 200u);
  EXPECT_EQ(*f_->GetU32("i32_pos"), 123u);  // signed but fits
  EXPECT_EQ(*f_->GetU32("u64_small"), 9u);
  EXPECT_EQ(*f_->GetU64("u64_big"), 1ull << 40);
  EXPECT_EQ(*f_->GetI32("i32_neg"), -5);
  EXPECT_EQ(*f_->GetI32("u8"), 200);
  EXPECT_EQ(*f_->GetF32("f32"), 0.25f);
  EXPECT_EQ(*f_->GetF32("f64"), 1e-6f);
  EXPECT_TRUE(*f_->GetBool("flag"));
  EXPECT_EQ(*f_->GetString("name"), "gemma");
  EXPECT_EQ(f_->GetU32Opt("nope")->has_value(), false);
  EXPECT_EQ(**f_->GetU32Opt("u8"), 200u);
  EXPECT_EQ(**f_->GetF32Opt("f32"), 0.25f);
  EXPECT_EQ(**f_->GetBoolOpt("flag"), true);
  EXPECT_EQ(f_->GetBoolOpt("nope")->has_value(), false);
  EXPECT_EQ(**f_->GetStringOpt("name"), "gemma");
  EXPECT_EQ(**f_->GetU64Opt("u64_big"), 1ull << 40);
}

TEST_F(GgufGetters, ScalarErrors) {
  EXPECT_EQ(f_->GetU32("nope").status().code(), StatusCode::kNotFound);
  EXPECT_THAT(f_->GetU32("nope").status().message(), HasSubstr("nope"));
  const auto expect = [](const Status& s, std::string_view word) {
    EXPECT_EQ(s.code(), StatusCode::kCorruptFile) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(std::string(word)));
  };
  expect(f_->GetU32("i32_neg").status(), "does not fit");
  expect(f_->GetU32("u64_big").status(), "does not fit");
  expect(f_->GetU32("name").status(), "has type string");
  expect(f_->GetU32("f32").status(), "has type f32");
  expect(f_->GetU32("tokens").status(), "has type array of string");
  expect(f_->GetU64("i32_neg").status(), "does not fit");
  expect(f_->GetI32("u64_big").status(), "does not fit");
  expect(f_->GetF32("u8").status(), "has type u8");
  expect(f_->GetBool("u8").status(), "expected bool");
  expect(f_->GetString("flag").status(), "expected string");
  expect(f_->GetU32Opt("name").status(), "has type string");  // present with a wrong type
  expect(f_->GetStringOpt("u8").status(), "has type u8");
}

TEST_F(GgufGetters, Arrays) {
  auto tokens = f_->GetStringArray("tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 3u);
  EXPECT_EQ((*tokens)[2], "\xe2\x96\x81hi");
  // Zero copy: the view points into the file's bytes.
  EXPECT_GE(reinterpret_cast<const uint8_t*>((*tokens)[2].data()), bytes_.data());
  EXPECT_LT(reinterpret_cast<const uint8_t*>((*tokens)[2].data()), bytes_.data() + bytes_.size());
  EXPECT_EQ(*f_->GetF32Array("scores"), (std::vector<float>{0.0f, -1.5f, -1000.0f}));
  EXPECT_EQ(*f_->GetI32Array("types"), (std::vector<int32_t>{3, 1, -2}));
  EXPECT_EQ(*f_->GetU32Array("u32s"), (std::vector<uint32_t>{1, 4000000000u}));
  EXPECT_THAT(f_->GetI32Array("u32s").status().message(), HasSubstr("does not fit i32"));
  EXPECT_THAT(f_->GetU32Array("types").status().message(), HasSubstr("does not fit u32"));
  EXPECT_THAT(f_->GetU32Array("i64s").status().message(), HasSubstr("does not fit u32"));
  EXPECT_THAT(f_->GetStringArray("scores").status().message(), HasSubstr("expected array of string"));
  EXPECT_THAT(f_->GetF32Array("types").status().message(), HasSubstr("expected array of f32"));
  EXPECT_THAT(f_->GetI32Array("tokens").status().message(), HasSubstr("integer array"));
  EXPECT_THAT(f_->GetStringArray("name").status().message(), HasSubstr("expected an array"));
  EXPECT_EQ(f_->GetStringArray("nope").status().code(), StatusCode::kNotFound);
}

TEST(GgufLarge, VocabularySizedArraysParse) {
  // A 262,144-entry vocabulary as in EmbeddingGemma. Correctness at scale;
  // the time is printed for information only (speed lives in benchmarks).
  constexpr int kN = 262144;
  std::vector<std::string> tokens(kN);
  std::vector<float> scores(kN);
  std::vector<int32_t> types(kN);
  for (int i = 0; i < kN; ++i) {
    tokens[i] = i % 7 == 0 ? fmt::format("\xe2\x96\x81long_piece_number_{}", i) : fmt::format("t{}", i);
    scores[i] = -static_cast<float>(i);
    types[i] = i % 5;
  }
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", scores);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  const std::vector<uint8_t> bytes = w.ToBytes();
  const auto t0 = std::chrono::steady_clock::now();
  auto f = Parse(bytes);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ::testing::Test::RecordProperty("parse_ms", fmt::format("{:.2f}", ms));
  std::printf("parse of a %zu-byte header with %d tokens: %.2f ms\n", bytes.size(), kN, ms);
  auto got = (*f)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), static_cast<size_t>(kN));
  for (int i : {0, 1, 7, 4242, kN - 1}) EXPECT_EQ((*got)[i], tokens[i]);
  EXPECT_EQ(*(*f)->GetF32Array("tokenizer.ggml.scores"), scores);
  EXPECT_EQ(*(*f)->GetI32Array("tokenizer.ggml.token_type"), types);
}

// ---------------------------------------------------------------------------
// Writer validation

TEST(GgufWriterChecks, AddTensorRejectsBadInput) {
  GgufWriter w;
  const auto err = [&](const std::string& name, DType t, std::vector<int64_t> ne, size_t nbytes,
                       std::string_view word) {
    Status s = w.AddTensor(name, t, ne, std::vector<uint8_t>(nbytes));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << name << ": " << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(std::string(word)));
  };
  ASSERT_TRUE(w.AddTensor("ok", DType::kF32, {4}, std::vector<uint8_t>(16)).ok());
  err("ok", DType::kF32, {4}, 16, "duplicate");
  err("size", DType::kF32, {4}, 15, "bytes");
  err("size2", DType::kQ8_0, {32, 2}, 34, "bytes");
  err("blocks", DType::kQ8_0, {33}, 34, "whole number");
  err("nodims", DType::kF32, {}, 4, "dims");
  err("fivedims", DType::kF32, {1, 1, 1, 1, 1}, 4, "dims");
  err("zero", DType::kF32, {4, 0}, 0, "ne[1]");
  err("neg", DType::kF32, {-4}, 16, "ne[0]");
  err("overflow", DType::kF32, {1ll << 40, 1ll << 40}, 0, "overflow");
  err("", DType::kF32, {1}, 4, "empty");
  err(std::string(64, 'x'), DType::kF32, {1}, 4, "at most 63");
  err("unknown_dtype", static_cast<DType>(99), {1}, 4, "dtype");
  EXPECT_TRUE(w.AddTensor(std::string(63, 'x'), DType::kF32, {1}, std::vector<uint8_t>(4)).ok());
}

TEST(GgufWriterChecks, WriteFileRefusesWhatTheReaderWouldReject) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("gembed_gguf_w_{}", ::getpid());
  fs::create_directories(dir);
  const std::string path = (dir / "x.gguf").string();
  const auto refuse = [&](GgufWriter& w, std::string_view word) {
    Status s = w.WriteFile(path);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(std::string(word)));
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    // ToBytes still serialises it, and the reader rejects the result.
    const auto bytes = w.ToBytes();
    EXPECT_FALSE(Parse(bytes).ok());
  };
  {
    GgufWriter w;
    w.SetU32("", 1);
    refuse(w, "empty");
  }
  {
    GgufWriter w(48);
    refuse(w, "power of two");
  }
  {
    GgufWriter w;
    w.SetU64("general.alignment", 64);
    refuse(w, "general.alignment");
  }
  {
    GgufWriter w;
    w.SetU32("general.architecture", 3);
    refuse(w, "general.architecture");
  }
  {
    GgufWriter w;
    GgufValue v;
    v.type = GgufType::kU8;
    v.scalar = uint64_t{300};
    w.Set("too_big", v);
    EXPECT_THAT(w.WriteFile(path).message(), HasSubstr("does not fit"));
  }
  {
    GgufWriter w;
    GgufValue v = Array(GgufType::kArray);
    w.Set("nested", v);
    refuse(w, "arrays of arrays");
  }
  {
    GgufWriter w;
    w.SetString(std::string("bad\xff", 4), "v");
    refuse(w, "UTF-8");
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Malformed files: one handcrafted case per class.

// A small valid file that the cases below break one field at a time.
std::vector<uint8_t> ValidSmall() {
  ByteBuilder b;
  b.Header(3, 1, 1).KvStr("general.architecture", "x");
  b.TensorInfo("t", {8}, 0, 0).PadTo(32).Fill(32, 0);
  return b.bytes();
}

TEST(GgufMalformed, BaselineIsValid) { ASSERT_TRUE(Parse(ValidSmall()).ok()); }

TEST(GgufMalformed, TruncatedHeader) {
  ExpectCorrupt({}, {"truncated header"});
  ExpectCorrupt({'G', 'G', 'U'}, {"truncated header"});
  ByteBuilder b;
  b.Raw("GGUF").U32(3).U64(0);  // n_kv missing
  ExpectCorrupt(b.bytes(), {"truncated"});
}

TEST(GgufMalformed, BadMagic) {
  auto v = ValidSmall();
  v[0] = 'g';
  ExpectCorrupt(v, {"magic"});
  ExpectCorrupt(std::vector<uint8_t>(64, 0), {"magic"});
}

TEST(GgufMalformed, UnsupportedVersions) {
  for (uint32_t version : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    auto v = ValidSmall();
    std::memcpy(v.data() + 4, &version, 4);
    ExpectError(v, StatusCode::kUnsupported, {"unsupported GGUF version", std::to_string(version)});
  }
  auto v = ValidSmall();
  const uint32_t big_endian_3 = 0x03000000;
  std::memcpy(v.data() + 4, &big_endian_3, 4);
  ExpectError(v, StatusCode::kUnsupported, {"version", "big-endian"});
}

TEST(GgufMalformed, AbsurdCountsFailBeforeAllocating) {
  ByteBuilder a;
  a.Header(3, 0, ~uint64_t{0}).KvU32("k", 1);
  ExpectCorrupt(a.bytes(), {"n_kv"});
  ByteBuilder b;
  b.Header(3, uint64_t{1} << 62, 0).Fill(64, 0);
  ExpectCorrupt(b.bytes(), {"n_tensors"});
  // Array counts: 2^61 u32 elements, 2^40 strings, 2^60 u64.
  ByteBuilder c;
  c.Header(3, 0, 1).Key("arr", testing::kTypeArray).U32(testing::kTypeU32).U64(uint64_t{1} << 61).U32(1);
  ExpectCorrupt(c.bytes(), {"array of", "elements"});
  ByteBuilder d;
  d.Header(3, 0, 1).Key("arr", testing::kTypeArray).U32(testing::kTypeString).U64(uint64_t{1} << 40).Str("a");
  ExpectCorrupt(d.bytes(), {"array of", "string"});
  ByteBuilder e;
  e.Header(3, 0, 1).Key("arr", testing::kTypeArray).U32(testing::kTypeU64).U64(~uint64_t{0});
  ExpectCorrupt(e.bytes(), {"array of"});
}

TEST(GgufMalformed, StringLengthsPastTheEnd) {
  ByteBuilder key;
  key.Header(3, 0, 1).U64(1000).Raw("short").Fill(20, 0);
  ExpectCorrupt(key.bytes(), {"string length 1000"});
  ByteBuilder val;
  val.Header(3, 0, 1).Key("k", testing::kTypeString).U64(~uint64_t{0}).Raw("x");
  ExpectCorrupt(val.bytes(), {"string length"});
  ByteBuilder elem;
  elem.Header(3, 0, 1).Key("k", testing::kTypeArray).U32(testing::kTypeString).U64(2).Str("ok").U64(99).Raw("abcdefgh");
  ExpectCorrupt(elem.bytes(), {"string length 99"});
  ByteBuilder name;
  name.Header(3, 1, 0).U64(500).Raw("tensor_name").Fill(40, 0);
  ExpectCorrupt(name.bytes(), {"string length 500"});
}

TEST(GgufMalformed, InvalidValueTypes) {
  ByteBuilder a;
  a.Header(3, 0, 1).Key("k", 13).U32(0);
  ExpectCorrupt(a.bytes(), {"invalid value type 13"});
  ByteBuilder b;
  b.Header(3, 0, 1).Key("k", 0xFFFFFFFF).U32(0);
  ExpectCorrupt(b.bytes(), {"invalid value type"});
  ByteBuilder c;
  c.Header(3, 0, 1).Key("k", testing::kTypeArray).U32(77).U64(0);
  ExpectCorrupt(c.bytes(), {"invalid array element type 77"});
  ByteBuilder d;  // array of arrays: rejected as unsupported
  d.Header(3, 0, 1).Key("k", testing::kTypeArray).U32(testing::kTypeArray).U64(1).U32(testing::kTypeU8).U64(0);
  ExpectError(d.bytes(), StatusCode::kUnsupported, {"arrays of arrays"});
}

TEST(GgufMalformed, BoolBytesOtherThanZeroOrOne) {
  ByteBuilder a;
  a.Header(3, 0, 1).Key("flag", testing::kTypeBool).U8(2);
  ExpectCorrupt(a.bytes(), {"flag", "bool", "0 or 1"});
  ByteBuilder b;
  b.Header(3, 0, 1).Key("flags", testing::kTypeArray).U32(testing::kTypeBool).U64(3).U8(1).U8(0).U8(0xFF);
  ExpectCorrupt(b.bytes(), {"flags", "element 2", "0 or 1"});
  ByteBuilder ok;
  ok.Header(3, 0, 1).Key("flag", testing::kTypeBool).U8(1);
  EXPECT_TRUE(Parse(ok.bytes()).ok());
}

TEST(GgufMalformed, DuplicateKeys) {
  ByteBuilder b;
  b.Header(3, 0, 2).KvU32("a.b", 1).KvStr("a.b", "again");
  ExpectCorrupt(b.bytes(), {"duplicate key 'a.b'"});
}

TEST(GgufMalformed, BadKeys) {
  ByteBuilder empty;
  empty.Header(3, 0, 1).KvU32("", 1);
  ExpectCorrupt(empty.bytes(), {"empty metadata key"});
  ByteBuilder nul;
  nul.Header(3, 0, 1).KvU32(std::string_view("a\0b", 3), 1);
  ExpectCorrupt(nul.bytes(), {"NUL"});
  ByteBuilder utf8;
  utf8.Header(3, 0, 1).KvU32("caf\xc3", 1);  // truncated 2-byte sequence
  ExpectCorrupt(utf8.bytes(), {"UTF-8"});
  ByteBuilder overlong;
  overlong.Header(3, 0, 1).KvU32("\xc0\xaf", 1);  // overlong '/'
  ExpectCorrupt(overlong.bytes(), {"UTF-8"});
  ByteBuilder surrogate;
  surrogate.Header(3, 0, 1).KvU32("\xed\xa0\x80", 1);  // U+D800
  ExpectCorrupt(surrogate.bytes(), {"UTF-8"});
  ByteBuilder good;
  good.Header(3, 0, 1).KvU32("gemma.\xe2\x96\x81\xf0\x9f\x98\x80", 1);  // non-ASCII but valid
  EXPECT_TRUE(Parse(good.bytes()).ok());
}

TEST(GgufMalformed, WrongTypesForKnownKeys) {
  ByteBuilder a;
  a.Header(3, 0, 1).KvStr("general.alignment", "32");
  ExpectCorrupt(a.bytes(), {"general.alignment", "expected u32"});
  ByteBuilder b;
  b.Header(3, 0, 1).Key("general.alignment", testing::kTypeU64).U64(32);
  ExpectCorrupt(b.bytes(), {"general.alignment", "u64"});
  ByteBuilder c;
  c.Header(3, 0, 1).KvU32("general.architecture", 7);
  ExpectCorrupt(c.bytes(), {"general.architecture", "expected string"});
  ByteBuilder d;
  d.Header(3, 0, 1).Key("tokenizer.ggml.tokens", testing::kTypeArray).U32(testing::kTypeI32).U64(1).U32(5);
  ExpectCorrupt(d.bytes(), {"tokenizer.ggml.tokens", "expected array of string"});
  ByteBuilder e;
  e.Header(3, 0, 1).Key("tokenizer.ggml.add_bos_token", testing::kTypeU8).U8(1);
  ExpectCorrupt(e.bytes(), {"add_bos_token", "expected bool"});
  ByteBuilder f;
  f.Header(3, 0, 1).Key("tokenizer.ggml.scores", testing::kTypeArray).U32(testing::kTypeF64).U64(1).Put<double>(1);
  ExpectCorrupt(f.bytes(), {"tokenizer.ggml.scores", "expected array of f32"});
}

TEST(GgufMalformed, BadAlignmentValues) {
  for (uint32_t a : {0u, 3u, 48u, 0x80000001u}) {
    ByteBuilder b;
    b.Header(3, 0, 1).KvU32("general.alignment", a);
    ExpectCorrupt(b.bytes(), {"alignment", "power of two"});
  }
  ByteBuilder ok;
  ok.Header(3, 0, 1).KvU32("general.alignment", 1u << 20);
  auto f = Parse(ok.bytes());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->alignment(), 1u << 20);
}

// One tensor info `t` with the given fields, then enough zero data.
std::vector<uint8_t> OneTensor(const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset,
                               size_t data_bytes = 256, std::string_view name = "t") {
  ByteBuilder b;
  b.Header(3, 1, 0).TensorInfo(name, ne, type, offset).PadTo(32).Fill(data_bytes, 0);
  return b.bytes();
}

TEST(GgufMalformed, TensorDims) {
  ExpectCorrupt(OneTensor({}, 0, 0), {"n_dims = 0"});
  ExpectCorrupt(OneTensor({1, 1, 1, 1, 1}, 0, 0), {"n_dims = 5"});
  ByteBuilder huge;
  huge.Header(3, 1, 0).Str("t").U32(0xFFFFFFFF).Fill(64, 0);
  ExpectCorrupt(huge.bytes(), {"n_dims"});
  EXPECT_TRUE(Parse(OneTensor({1, 1, 1, 1}, 0, 0)).ok());
}

TEST(GgufMalformed, TensorShapes) {
  ExpectCorrupt(OneTensor({4, 0}, 0, 0), {"ne[1] = 0"});
  ExpectCorrupt(OneTensor({static_cast<uint64_t>(-3)}, 0, 0), {"ne[0] = -3"});
  ExpectCorrupt(OneTensor({uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0), {"overflows"});
  ExpectCorrupt(OneTensor({uint64_t{1} << 62, 4}, 0, 0), {"overflows"});
  // Byte size overflow with a valid element count: 2^62 F64 elements.
  ExpectCorrupt(OneTensor({uint64_t{1} << 62}, 28, 0), {"overflows"});
}

TEST(GgufMalformed, TensorTypes) {
  for (uint32_t t : {4u, 5u, 9u, 23u, 31u, 99u, 0xFFFFFFFFu}) {
    ExpectError(OneTensor({32}, t, 0), StatusCode::kUnsupported,
                {fmt::format("unsupported tensor type {}", t)});
  }
  ExpectCorrupt(OneTensor({33}, 8 /*Q8_0*/, 0), {"whole number of Q8_0 blocks"});
  ExpectCorrupt(OneTensor({16, 2}, 2 /*Q4_0*/, 0), {"whole number"});
  // Q4/Q5 are recognised with ggml's sizes.
  auto f = Parse(OneTensor({64, 2}, 7 /*Q5_1*/, 0));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->tensors()[0].dtype, DType::kQ5_1);
  EXPECT_EQ((*f)->tensors()[0].nbytes, 4u * 24u);
}

TEST(GgufMalformed, TensorNames) {
  ExpectCorrupt(OneTensor({4}, 0, 0, 256, ""), {"empty tensor name"});
  ExpectCorrupt(OneTensor({4}, 0, 0, 256, std::string(64, 'n')), {"tensor name", "at most 63"});
  ExpectCorrupt(OneTensor({4}, 0, 0, 256, std::string_view("a\0", 2)), {"NUL"});
  ExpectCorrupt(OneTensor({4}, 0, 0, 256, "bad\x80"), {"UTF-8"});
  EXPECT_TRUE(Parse(OneTensor({4}, 0, 0, 256, std::string(63, 'n'))).ok());
}

TEST(GgufMalformed, MisalignedOffset) {
  ExpectCorrupt(OneTensor({4}, 0, 4), {"misaligned", "alignment 32"});
  ByteBuilder b;  // with alignment 64, offset 32 is misaligned
  b.Header(3, 1, 1).KvU32("general.alignment", 64).TensorInfo("t", {4}, 0, 32).PadTo(64).Fill(128, 0);
  ExpectCorrupt(b.bytes(), {"misaligned", "alignment 64"});
}

TEST(GgufMalformed, OffsetPlusSizeOverflows) {
  ExpectCorrupt(OneTensor({64}, 0, ~uint64_t{0} - 31), {"overflows"});
}

TEST(GgufMalformed, TensorDataPastTheEnd) {
  ExpectCorrupt(OneTensor({64}, 0, 0, 255), {"past the end"});   // one byte short
  EXPECT_TRUE(Parse(OneTensor({64}, 0, 0, 256)).ok());            // exactly fits
  ExpectCorrupt(OneTensor({4}, 0, uint64_t{1} << 40), {"past the end"});
  ByteBuilder nodata;  // header ends before the data section starts
  nodata.Header(3, 1, 0).TensorInfo("t", {1}, 0, 0);
  ExpectCorrupt(nodata.bytes(), {"past the end"});
}

TEST(GgufMalformed, OverlappingTensors) {
  ByteBuilder b;
  b.Header(3, 2, 0).TensorInfo("a", {16}, 0, 0).TensorInfo("b", {16}, 0, 32).PadTo(32).Fill(128, 0);
  ExpectCorrupt(b.bytes(), {"overlap", "'a'", "'b'"});  // a = [0,64), b = [32,96)
  ByteBuilder contained;  // big [0,256) contains small [64,80) and [128,144); listed out of order
  contained.Header(3, 3, 0)
      .TensorInfo("small1", {4}, 0, 128)
      .TensorInfo("big", {64}, 0, 0)
      .TensorInfo("small2", {4}, 0, 64)
      .PadTo(32)
      .Fill(512, 0);
  ExpectCorrupt(contained.bytes(), {"overlap", "'big'"});
  ByteBuilder same;
  same.Header(3, 2, 0).TensorInfo("a", {4}, 0, 0).TensorInfo("b", {4}, 0, 0).PadTo(32).Fill(64, 0);
  ExpectCorrupt(same.bytes(), {"overlap"});
  ByteBuilder adjacent;  // touching is fine; gaps are fine
  adjacent.Header(3, 3, 0)
      .TensorInfo("a", {8}, 0, 32)
      .TensorInfo("b", {8}, 0, 0)
      .TensorInfo("c", {8}, 0, 128)
      .PadTo(32)
      .Fill(256, 0);
  EXPECT_TRUE(Parse(adjacent.bytes()).ok());
}

TEST(GgufMalformed, DuplicateTensorNames) {
  ByteBuilder b;
  b.Header(3, 2, 0).TensorInfo("w", {8}, 0, 0).TensorInfo("w", {8}, 0, 32).PadTo(32).Fill(64, 0);
  ExpectCorrupt(b.bytes(), {"duplicate tensor name 'w'"});
}

TEST(GgufMalformed, EveryTruncationOfAValidFileIsRejected) {
  // The file's last tensor ends before its padding, so any cut before that
  // point must fail, with a message and without reading past `size`
  // (ASan builds of this test catch overruns).
  const std::vector<uint8_t> full = SampleWriter(32).ToBytes();
  auto f = Parse(full);
  ASSERT_TRUE(f.ok());
  uint64_t end = 0;
  for (const auto& t : (*f)->tensors()) end = std::max(end, (*f)->data_offset() + t.offset + t.nbytes);
  for (size_t n = 0; n < end; ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto r = Parse(cut);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    ASSERT_FALSE(r.status().message().empty());
    ASSERT_THAT(r.status().message(),
                ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("past the end"),
                                 HasSubstr("string length"), HasSubstr("n_kv"),
                                 HasSubstr("n_tensors"), HasSubstr("array of")))
        << n;
  }
  EXPECT_TRUE(Parse(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<ptrdiff_t>(end))).ok());
}

TEST(GgufMalformed, EscapeForDisplay) {
  EXPECT_EQ(GgufEscapeString("a\"b\\c\n"), "a\\\"b\\\\c\\n");
  EXPECT_EQ(GgufEscapeString(std::string_view("\0\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(GgufEscapeString("\xe2\x96\x81ok\xff"), "\xe2\x96\x81ok\\xff");
  EXPECT_EQ(GgufEscapeString("abcdef", 3), "abc...");
  EXPECT_EQ(GgufEscapeString("abc", 3), "abc");
}

// ---------------------------------------------------------------------------
// Fuzz seeds: small valid files from the writer. The committed files in
// tests/fuzz/seeds/fuzz_gguf must equal what this generator makes; set
// GEMBED_WRITE_FUZZ_SEEDS=<dir> to (re)write them.

std::map<std::string, std::vector<uint8_t>> FuzzSeeds() {
  std::map<std::string, std::vector<uint8_t>> seeds;
  seeds["metadata_all_types.gguf"] = SampleWriter(32, false).ToBytes();
  seeds["tensors_all_dtypes.gguf"] = SampleWriter(32).ToBytes();
  {
    GgufWriter w(64);
    w.SetString("general.architecture", "gemma-embedding");
    w.SetStringArray("tokenizer.ggml.tokens", {"<pad>", "<eos>", "<bos>", "\xe2\x96\x81" "a"});
    w.SetF32Array("tokenizer.ggml.scores", {-1000, -1000, -1000, 0});
    w.SetI32Array("tokenizer.ggml.token_type", {3, 3, 3, 1});
    w.SetBool("tokenizer.ggml.add_bos_token", true);
    EXPECT_TRUE(w.AddTensor("token_embd.weight", DType::kQ8_0, {32, 4},
                            PseudoRandomBytes(4 * 34, 7)).ok());
    EXPECT_TRUE(w.AddTensor("output_norm.weight", DType::kF32, {32}, PseudoRandomBytes(128, 8)).ok());
    seeds["tiny_model_align64.gguf"] = w.ToBytes();
  }
  {
    ByteBuilder b;  // a v2 file
    b.Header(2, 1, 1).KvU32("general.alignment", 32).TensorInfo("x", {2, 2}, 30 /*BF16*/, 0);
    b.PadTo(32).Fill(8, 0x3F).PadTo(32);
    seeds["v2_bf16.gguf"] = b.bytes();
  }
  return seeds;
}

TEST(GgufFuzzSeeds, CommittedSeedsMatchTheGenerator) {
  const auto seeds = FuzzSeeds();
  for (const auto& [name, bytes] : seeds) {
    EXPECT_LT(bytes.size(), 4096u) << name;
    EXPECT_TRUE(Parse(bytes).ok()) << name;
  }
  if (const char* out = std::getenv("GEMBED_WRITE_FUZZ_SEEDS")) {
    fs::create_directories(out);
    for (const auto& [name, bytes] : seeds) {
      std::ofstream(fs::path(out) / name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
  }
  const fs::path dir = fs::path(GEMBED_SOURCE_DIR) / "tests" / "fuzz" / "seeds" / "fuzz_gguf";
  if (!fs::exists(dir)) GTEST_SKIP() << "no committed seeds in " << dir;
  for (const auto& [name, bytes] : seeds) {
    std::ifstream in(dir / name, std::ios::binary);
    ASSERT_TRUE(in) << "missing seed " << name << " (regenerate with GEMBED_WRITE_FUZZ_SEEDS)";
    std::vector<uint8_t> disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(disk, bytes) << name << " differs from the generator";
  }
}

// ---------------------------------------------------------------------------
// Sample for tests/python/test_gguf_compat.py: with GEMBED_GGUF_SAMPLE_DIR set,
// writes sample.gguf (through WriteFile) and sample.json, a manifest of what
// was *given* to the writer (not what was read back), for gguf-py to check.

nlohmann::ordered_json ValueJson(const GgufValue& v) {
  nlohmann::ordered_json j;
  j["type"] = std::string(GgufTypeName(v.type));
  if (v.type != GgufType::kArray) {
    std::visit([&](const auto& x) { j["value"] = x; }, v.scalar);
    return j;
  }
  j["elem_type"] = std::string(GgufTypeName(v.array_type));
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (uint64_t x : v.arr_uint) arr.push_back(x);
  for (int64_t x : v.arr_int) arr.push_back(x);
  for (double x : v.arr_float) arr.push_back(x);
  for (bool x : v.arr_bool) arr.push_back(x);
  for (const std::string& x : v.arr_string) arr.push_back(x);
  j["value"] = arr;
  return j;
}

TEST(GgufCompat, WriteSampleForPython) {
  const char* out = std::getenv("GEMBED_GGUF_SAMPLE_DIR");
  if (!out) GTEST_SKIP() << "GEMBED_GGUF_SAMPLE_DIR not set (used by tests/python/test_gguf_compat.py)";
  const uint32_t alignment = 64;
  GgufWriter w = SampleWriter(alignment);
  const fs::path dir(out);
  ASSERT_TRUE(w.WriteFile((dir / "sample.gguf").string()).ok());
  nlohmann::ordered_json m;
  m["version"] = 3;
  m["alignment"] = alignment;
  nlohmann::ordered_json md = nlohmann::ordered_json::object();
  md["general.alignment"] = {{"type", "u32"}, {"value", alignment}};  // added by the constructor
  for (const auto& [k, v] : SampleMetadata()) md[k] = ValueJson(v);
  m["metadata"] = md;
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  const auto tensors = SampleTensors();
  for (uint32_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    std::string hex;
    for (uint8_t b : SampleTensorBytes(t, i)) hex += fmt::format("{:02x}", b);
    ts.push_back({{"name", t.name},
                  {"type", std::string(DTypeName(t.dtype))},
                  {"ggml_type", static_cast<uint32_t>(t.dtype)},
                  {"shape", t.ne},
                  {"hex", hex}});
  }
  m["tensors"] = ts;
  std::ofstream(dir / "sample.json") << m.dump(1);
}

}  // namespace
}  // namespace gembed
