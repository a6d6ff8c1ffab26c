// Files gembed reads and writes: readers refuse anything but a regular file
// (a FIFO must not block open(2) forever), and every writer goes through
// AtomicFile (no writing through a symbolic link planted at a predictable
// temporary name, no replacing a device node, no half-written target).
//
// The FIFO tests call the reader on another thread and, if it has not
// returned within 60 s (it returns at once when correct), open the FIFO for
// writing to release it and fail: bounded without depending on timing.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/file.h"
#include "io/gguf.h"
#include "io/mmap.h"
#include "io/safetensors.h"
#include "model/hf_config.h"
#include "model/hf_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gembed_files_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }
  // Names in the folder, sorted.
  std::vector<std::string> List() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void MakeFifo(const fs::path& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0) << p; }

// Runs fn on another thread. If it has not finished after 60 s it is blocked
// in open(2) on `fifo`: opening the write end releases it, and the test fails.
Status CallWithoutBlockingOn(const fs::path& fifo, std::function<Status()> fn) {
  auto fut = std::async(std::launch::async, std::move(fn));
  if (fut.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    ADD_FAILURE() << "blocked on the FIFO " << fifo;
    const Status s = fut.get();
    if (fd >= 0) ::close(fd);
    return s;
  }
  return fut.get();
}

void ExpectFifoRefused(const Status& s, const fs::path& fifo) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(fifo.string() + ": not a regular file (a FIFO)"));
}

TEST(RegularFile, RefusesFifoDirectoryAndDevice) {
  TempDir dir;
  const fs::path fifo = dir / "fifo";
  MakeFifo(fifo);
  ExpectFifoRefused(CallWithoutBlockingOn(fifo, [&] { return RegularFile::Open(fifo.string()).status(); }), fifo);
  const Status d = RegularFile::Open(dir.path().string()).status();
  EXPECT_THAT(d.message(), HasSubstr("not a regular file (a directory)"));
  const Status c = RegularFile::Open("/dev/null").status();
  EXPECT_THAT(c.message(), HasSubstr("/dev/null: not a regular file (a character device)"));
  const Status m = RegularFile::Open((dir / "missing").string()).status();
  EXPECT_EQ(m.code(), StatusCode::kIoError);
  EXPECT_THAT(m.message(), HasSubstr("cannot open: No such file or directory"));

  WriteText(dir / "f.txt", "hello");
  auto text = ReadRegularFile((dir / "f.txt").string(), 100);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "hello");
  auto big = ReadRegularFile((dir / "f.txt").string(), 4);
  EXPECT_EQ(big.status().code(), StatusCode::kOutOfRange);
  EXPECT_THAT(big.status().message(), HasSubstr("5 bytes, more than the 4 allowed"));
}

// Every reader of a model, tokenizer or configuration file, given a FIFO.
TEST(RegularFile, EveryReaderRefusesAFifoWithoutBlocking) {
  TempDir dir;
  const fs::path fifo = dir / "model.gguf";
  MakeFifo(fifo);
  const std::string p = fifo.string();
  const std::vector<std::pair<const char*, std::function<Status()>>> readers = {
      {"MappedFile", [&] { return MappedFile::Open(p).status(); }},
      {"GgufFile", [&] { return GgufFile::Open(p).status(); }},
      {"SafetensorsFile", [&] { return SafetensorsFile::Open(p).status(); }},
      {"ReadSmallTextFile", [&] { return ReadSmallTextFile(p).status(); }},
      {"Tokenizer::FromFile", [&] { return Tokenizer::FromFile(p).status(); }},
      {"Tokenizer::FromHfJson", [&] { return Tokenizer::FromHfJson(p).status(); }},
      {"ReadVocabFromHfJson", [&] { return ReadVocabFromHfJson(p).status(); }},
  };
  for (const auto& [name, read] : readers) {
    SCOPED_TRACE(name);
    ExpectFifoRefused(CallWithoutBlockingOn(fifo, read), fifo);
  }
  // ReadHfPromptTable (what `embed` asks first about --model): not a GGUF, not
  // a folder -> no table, and no waiting.
  const Status prompts = CallWithoutBlockingOn(fifo, [&] { return ReadHfPromptTable(p).status(); });
  EXPECT_TRUE(prompts.ok()) << prompts.ToString();
}

// The files of a Hugging Face folder: config.json, model.safetensors.
TEST(RegularFile, FolderFilesThatAreFifosAreRefused) {
  TempDir dir;
  MakeFifo(dir / "config.json");
  ExpectFifoRefused(CallWithoutBlockingOn(dir / "config.json",
                                          [&] { return ReadHfFolderConfig(dir.path().string()).status(); }),
                    dir / "config.json");
  TempDir weights;
  MakeFifo(weights / "model.safetensors");
  ExpectFifoRefused(CallWithoutBlockingOn(weights / "model.safetensors",
                                          [&] { return SafetensorsModel::Open(weights.path().string()).status(); }),
                    weights / "model.safetensors");
}

TEST(AtomicFile, WritesNewAndReplacesRegularFilesLeavingNothingBehind) {
  TempDir dir;
  const fs::path out = dir / "out.bin";
  ASSERT_TRUE(WriteFileAtomically(out.string(), "first").ok());
  EXPECT_EQ(ReadText(out), "first");
  EXPECT_EQ(dir.List(), std::vector<std::string>{"out.bin"});
  // Replacing keeps the permission bits of the file it replaces.
  fs::permissions(out, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  ASSERT_TRUE(WriteFileAtomically(out.string(), "second").ok());
  EXPECT_EQ(ReadText(out), "second");
  EXPECT_EQ(fs::status(out).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"out.bin"});
  // A bare name writes into the current folder.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  const Status bare = WriteFileAtomically("bare.txt", "x");
  fs::current_path(cwd);
  EXPECT_TRUE(bare.ok()) << bare.ToString();
  EXPECT_EQ(ReadText(dir / "bare.txt"), "x");
}

TEST(AtomicFile, NotCommittedMeansTargetUntouchedAndTempRemoved) {
  TempDir dir;
  const fs::path out = dir / "out.bin";
  WriteText(out, "old");
  {
    auto f = AtomicFile::Create(out.string());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(fs::path(f->temp_path()).parent_path(), dir.path());  // next to the target
    EXPECT_NE(f->temp_path(), out.string() + ".tmp");                 // not a predictable name
    ASSERT_TRUE(f->Write("new data").ok());
    EXPECT_EQ(dir.List().size(), 2u);
  }  // destroyed without Commit
  EXPECT_EQ(ReadText(out), "old");
  EXPECT_EQ(dir.List(), std::vector<std::string>{"out.bin"});
}

// Targets that are not regular files are refused before anything is written.
TEST(AtomicFile, RefusesTargetsThatAreNotRegularFiles) {
  TempDir dir;
  // A device node: `-o /dev/null` as root would otherwise replace it.
  Status s = WriteFileAtomically("/dev/null", "x");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "/dev/null: exists and is not a regular file (a character device); refusing to replace it");
  // A symbolic link to a file: neither the link nor its target change.
  WriteText(dir / "victim", "precious");
  fs::create_symlink(dir / "victim", dir / "link");
  s = WriteFileAtomically((dir / "link").string(), "x");
  EXPECT_THAT(s.message(), HasSubstr("link: exists and is not a regular file (a symbolic link)"));
  EXPECT_TRUE(fs::is_symlink(dir / "link"));
  EXPECT_EQ(ReadText(dir / "victim"), "precious");
  // A FIFO (no blocking) and a directory.
  MakeFifo(dir / "fifo");
  s = CallWithoutBlockingOn(dir / "fifo", [&] { return WriteFileAtomically((dir / "fifo").string(), "x"); });
  EXPECT_THAT(s.message(), HasSubstr("not a regular file (a FIFO)"));
  fs::create_directory(dir / "sub");
  s = WriteFileAtomically((dir / "sub").string(), "x");
  EXPECT_THAT(s.message(), HasSubstr("not a regular file (a directory)"));
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"fifo", "link", "sub", "victim"}));
  // A folder that does not exist.
  s = WriteFileAtomically((dir / "no/such/out.bin").string(), "x");
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("cannot create a temporary file"));
}

// The old writers opened OUT.tmp with fopen (following symbolic links): a link
// planted there had its target overwritten.
TEST(AtomicFile, PlantedSymlinkAtTheOldTempNameIsNotFollowed) {
  TempDir dir;
  WriteText(dir / "victim", "precious");
  const fs::path out = dir / "out.gguf";
  fs::create_symlink(dir / "victim", out.string() + ".tmp");
  GgufWriter w;
  w.SetString("general.architecture", "gemma-embedding");
  ASSERT_TRUE(w.WriteFile(out.string()).ok());
  EXPECT_EQ(ReadText(dir / "victim"), "precious");
  EXPECT_TRUE(fs::is_symlink(out.string() + ".tmp"));
  auto f = GgufFile::Open(out.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"out.gguf", "out.gguf.tmp", "victim"}));
}

TEST(AtomicFile, GgufAndSafetensorsWritersRefuseDevicesAndLinks) {
  TempDir dir;
  GgufWriter g;
  g.SetString("general.architecture", "gemma-embedding");
  Status s = g.WriteFile("/dev/null");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("a character device"));
  WriteText(dir / "victim", "precious");
  fs::create_symlink(dir / "victim", dir / "model.safetensors");
  s = SafetensorsWriter().WriteFile((dir / "model.safetensors").string());
  EXPECT_THAT(s.message(), HasSubstr("a symbolic link"));
  EXPECT_EQ(ReadText(dir / "victim"), "precious");
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"model.safetensors", "victim"}));
}

}  // namespace
}  // namespace gembed
