// Reading the texts of `gembed embed` / `gembed bench --input`: one text per
// line ('\n' or "\r\n"; a final line without a newline counts, an empty file
// has no texts), read in bounded chunks (io/line_reader.h): at most 1 MiB per
// text, 1 GiB and 1,048,576 lines in all, so an endless or huge input stops
// with a message instead of exhausting memory.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "io/line_reader.h"

namespace gembed::cli {

// The lines of the file at `path` ("" or "-": standard input). Errors name
// the input ("--input 'PATH'" or "standard input"): kNotFound when the file
// cannot be opened, kIoError for a directory, kOutOfRange past a limit.
Result<std::vector<std::string>> ReadInputLines(const std::string& path, const LineLimits& limits = {});

}  // namespace gembed::cli
