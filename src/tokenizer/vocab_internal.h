// Internal variants of the tokenizer.json readers that also hand over the
// piece table built while parsing, so Tokenizer::FromHfJson does not build
// it a second time (it is a large part of the load time).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "tokenizer/piece_table.h"
#include "tokenizer/vocab.h"

namespace gembed::tokenizer_internal {

// *table covers exactly vocab.tokens (ids 0..size-1).
Result<Vocab> ParseHfTokenizerJson(std::string_view json, std::unique_ptr<PieceTable>* table);
Result<Vocab> ReadVocabFromHfJson(const std::string& tokenizer_json_path, std::unique_ptr<PieceTable>* table);

}  // namespace gembed::tokenizer_internal
