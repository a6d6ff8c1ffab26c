// Untrusted input stays bounded: texts read one per line stop at a per-text,
// a total and a line-count limit (an endless stream or a huge line is an
// error, not std::bad_alloc), and JSON handed to nlohmann::json is refused
// when it nests deeper than kMaxJsonDepth (a deep value used to overflow the
// stack in dump() while the error message was built).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "io/json_depth.h"
#include "io/line_reader.h"
#include "model/hf_config.h"

namespace gembed {
namespace {

using ::testing::HasSubstr;

// Feeds `data` (then end of stream) through a pipe from another thread, so
// inputs larger than the pipe buffer work; the reader may stop early (the
// writer then gets EPIPE, SIGPIPE being ignored).
Result<std::vector<std::string>> ReadThroughPipe(const std::string& data, const LineLimits& limits) {
  std::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  if (::pipe(fds) != 0) return Internal("pipe failed");
  std::thread writer([fd = fds[1], &data] {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t w = ::write(fd, data.data() + off, data.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    ::close(fd);
  });
  auto lines = ReadLinesFromFd(fds[0], "test input", limits);
  ::close(fds[0]);
  writer.join();
  return lines;
}

TEST(LineReader, SplitsLinesLikeBefore) {
  auto r = ReadThroughPipe("a\r\nb\n\nlast", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<std::string>{"a", "b", "", "last"}));
  r = ReadThroughPipe("", {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  r = ReadThroughPipe("x\r", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::vector<std::string>{"x"});
  r = ReadThroughPipe(std::string("nul\0byte\n", 9), {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0], std::string("nul\0byte", 8));
  // Lines longer than one read chunk (64 KiB) are joined correctly.
  const std::string big(200000, 'q');
  r = ReadThroughPipe(big + "\n" + big, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<std::string>{big, big}));
}

TEST(LineReader, PerTextLimitNamesTheLine) {
  LineLimits l;
  l.max_line_bytes = 10;
  auto ok = ReadThroughPipe("0123456789\r\n0123456789\nshort", l);  // exactly 10 bytes (+ "\r\n") fits
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->size(), 3u);
  for (const std::string& data : {std::string("ok\n01234567890\n"), std::string("ok\n01234567890"),
                                  std::string("ok\n0123456789\r\r\n")}) {
    auto r = ReadThroughPipe(data, l);
    ASSERT_FALSE(r.ok()) << data;
    EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
    EXPECT_EQ(r.status().message(), "test input: line 2 is longer than 10 bytes (the limit for one text)");
  }
}

TEST(LineReader, TotalAndLineCountLimits) {
  LineLimits l;
  l.max_total_bytes = 100;
  auto r = ReadThroughPipe(std::string(100, '\n'), l);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 100u);
  r = ReadThroughPipe(std::string(101, '\n'), l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "test input: more than 100 bytes of input (the limit); split it into several runs");

  LineLimits n;
  n.max_lines = 3;
  r = ReadThroughPipe("a\nb\nc\n", n);
  ASSERT_TRUE(r.ok());
  r = ReadThroughPipe("a\nb\nc\nd", n);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "test input: more than 3 lines (the limit); split it into several runs");
}

// `yes | gembed embed`: the default limits stop an endless stream of short
// lines at 1,048,576 lines (~2 MiB read), long before memory runs out.
TEST(LineReader, EndlessStreamStopsAtTheDefaultLineLimit) {
  std::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread yes([fd = fds[1]] {
    const std::string chunk = [] {
      std::string s;
      for (int i = 0; i < 4096; ++i) s += "y\n";
      return s;
    }();
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    ::close(fd);  // the reader closed its end: EPIPE
  });
  auto r = ReadLinesFromFd(fds[0], "standard input");
  ::close(fds[0]);
  yes.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "standard input: more than 1048576 lines (the limit); split it into several runs");
}

// `--input /dev/zero`: no newline ever, so the per-text limit (1 MiB) stops it.
TEST(LineReader, DevZeroStopsAtThePerTextLimit) {
  const int fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto r = ReadLinesFromFd(fd, "--input '/dev/zero'");
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "--input '/dev/zero': line 1 is longer than 1048576 bytes (the limit for one text)");
}

TEST(LineReader, DirectoryIsAnError) {
  const int fd = ::open("/", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto r = ReadLinesFromFd(fd, "--input '/'");
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--input '/' is a directory, not a file");
}

// Concatenation without operator+ chains (GCC 12 warns falsely on those).
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (std::string_view p : parts) s.append(p);
  return s;
}

std::string Nested(int depth, const std::string& inner = "1") {
  return std::string(static_cast<size_t>(depth), '[') + inner + std::string(static_cast<size_t>(depth), ']');
}

TEST(JsonNesting, LimitCountsBracketsOutsideStrings) {
  EXPECT_TRUE(CheckJsonNesting(Nested(64)).ok());
  const Status s = CheckJsonNesting(Nested(65));
  EXPECT_EQ(s.code(), StatusCode::kCorruptFile);
  EXPECT_EQ(s.message(), "JSON nesting deeper than 64 levels (at byte 64)");
  EXPECT_TRUE(CheckJsonNesting("{\"a\":{\"b\":[1,{\"c\":2}]}}", 4).ok());
  EXPECT_FALSE(CheckJsonNesting("{\"a\":{\"b\":[1,{\"c\":2}]}}", 3).ok());
  // Brackets inside strings (also after escaped quotes) do not count.
  EXPECT_TRUE(CheckJsonNesting(Cat({"[\"", std::string(1000, '['), "\"]"})).ok());
  EXPECT_TRUE(CheckJsonNesting(Cat({"[\"\\\"", std::string(1000, '{'), "\"]"})).ok());
  EXPECT_TRUE(CheckJsonNesting(Cat({"[\"\\\\\",", Nested(62), "]"})).ok());
  EXPECT_FALSE(CheckJsonNesting(Cat({"[\"\\\\\",", Nested(64), "]"})).ok());
  // Siblings do not add up.
  EXPECT_TRUE(CheckJsonNesting(Cat({"[", Nested(63), ",", Nested(63), "]"})).ok());
}

// Every sentence-transformers JSON parser, given a value nested a million
// levels deep where a string or number is expected (the old code crashed
// building the "must be a string, got ..." message), and given one nested
// just deep enough to be refused.
TEST(JsonNesting, HfConfigParsersRefuseDeepNesting) {
  for (int depth : {65, 1000000}) {
    SCOPED_TRACE(depth);
    const std::string deep = Nested(depth);
    const auto expect = [](const Status& s, const char* file) {
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.code(), StatusCode::kCorruptFile) << s.ToString();
      EXPECT_THAT(s.message(), HasSubstr(std::string(file) + ": JSON nesting deeper than 64 levels"));
    };
    expect(ParseHfModelConfig("{\"model_type\": " + deep + "}").status(), "config.json");
    expect(ParseHfModulesJson("[{\"idx\": " + deep + "}]").status(), "modules.json");
    expect(CheckHfPoolingConfig("{\"pooling_mode\": " + deep + "}", 768), "Pooling config.json");
    expect(ParseHfDenseConfig("{\"in_features\": " + deep + "}", "2_Dense").status(), "2_Dense/config.json");
    expect(ParseHfSentenceBertConfig("{\"max_seq_length\": " + deep + "}").status(), "sentence_bert_config.json");
    expect(ParseHfPromptTable("{\"prompts\": " + deep + "}").status(), "config_sentence_transformers.json");
  }
  // 64 levels still parse (and give the ordinary type error).
  const auto r = ParseHfModelConfig("{\"model_type\": " + Nested(63) + "}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("\"model_type\" must be a string, got [[["));
}

// The config fuzz target's seeds, parsed as the target does (first byte picks
// the parser): the deep-nesting seeds are refused by the nesting check, the
// others parse.
TEST(JsonNesting, ConfigFuzzSeeds) {
  const std::filesystem::path dir = std::filesystem::path(GEMBED_SOURCE_DIR) / "tests/fuzz/seeds/fuzz_hf_config";
  int deep = 0, files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(bytes.empty()) << e.path();
    ++files;
    const std::string_view json = std::string_view(bytes).substr(1);
    Status s;
    switch (bytes[0] % 6) {
      case 0: s = ParseHfModelConfig(json).status(); break;
      case 1: s = ParseHfModulesJson(json).status(); break;
      case 2: s = CheckHfPoolingConfig(json, 768); break;
      case 3: s = ParseHfDenseConfig(json, "2_Dense").status(); break;
      case 4: s = ParseHfSentenceBertConfig(json).status(); break;
      default: s = ParseHfPromptTable(json).status(); break;
    }
    const bool is_deep = e.path().filename().string().find("deep_nesting") != std::string::npos;
    if (is_deep) {
      ++deep;
      EXPECT_EQ(s.code(), StatusCode::kCorruptFile) << e.path();
      EXPECT_THAT(s.message(), HasSubstr("JSON nesting deeper than 64 levels")) << e.path();
    } else {
      EXPECT_TRUE(s.ok()) << e.path() << ": " << s.ToString();
    }
  }
  EXPECT_EQ(deep, 2);
  EXPECT_GE(files, 8);
}

// A wrong value quoted in an error message is cut to 200 characters.
TEST(JsonNesting, LongValuesInMessagesAreCut) {
  const auto r = ParseHfModelConfig("{\"model_type\": \"gemma3_text\", \"use_bidirectional_attention\": \"" +
                                    std::string(100000, 'x') + "\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruptFile);
  EXPECT_THAT(r.status().message(), HasSubstr("must be true or false, got \"xxxx"));
  EXPECT_LT(r.status().message().size(), 300u);
}

}  // namespace
}  // namespace gembed
