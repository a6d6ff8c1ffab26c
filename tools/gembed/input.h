// Reading the texts of `gembed embed` / `gembed bench --input`: one text per
// line ('\n' or "\r\n"; a final line without a newline counts, an empty file
// has no texts).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace gembed::cli {

// Splits data into lines: '\n' ends a line, one '\r' before it is dropped.
std::vector<std::string> SplitLines(const std::string& data);

// The lines of the file at `path` ("" or "-": standard input). kNotFound
// (with the path) when the file cannot be opened.
Result<std::vector<std::string>> ReadInputLines(const std::string& path);

}  // namespace gembed::cli
