#include "input.h"

#include <fstream>
#include <iostream>
#include <sstream>

namespace gembed::cli {

std::vector<std::string> SplitLines(const std::string& data) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < data.size()) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

Result<std::vector<std::string>> ReadInputLines(const std::string& path) {
  std::ostringstream ss;
  if (path.empty() || path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFound("cannot open --input '{}'", path);
    ss << in.rdbuf();
  }
  return SplitLines(ss.str());
}

}  // namespace gembed::cli
