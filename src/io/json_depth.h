// A nesting limit for JSON that gembed hands to nlohmann::json (the Hugging
// Face configuration files, `embed --jsonl` / `tokenize --jsonl` lines).
// nlohmann parses iteratively, but much of what one does with the result
// recurses once per level (dump() for an error message, copies, and
// comparisons), so "[[[[...]]]]" a megabyte deep overflows the stack.
// CheckJsonNesting scans the text once before parsing: outside strings it
// counts '[' / '{' levels, and refuses the text as soon as it goes deeper than
// max_depth. It does not validate anything else (the parser does); since a
// parser can only nest as deep as the brackets outside strings go, a text that
// passes never makes the parser go deeper than max_depth.
// (The tokenizer.json reader, tokenizer/json_reader.h, and the safetensors
// header parser have their own limits.)
#pragma once

#include <cstddef>
#include <string_view>

#include "base/status.h"

namespace gembed {

// Configuration files nest 3 levels deep; 64 leaves room for anything real.
inline constexpr int kMaxJsonDepth = 64;

// kCorruptFile "JSON nesting deeper than 64 levels (at byte N)" when the text
// nests deeper than max_depth; Ok otherwise (also for malformed text).
Status CheckJsonNesting(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace gembed
