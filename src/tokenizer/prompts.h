// EmbeddingGemma task prompts (from the model card / sentence-transformers
// config). The prefix is prepended to the raw text before tokenisation, and
// its tokens take part in mean pooling (include_prompt: true).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gembed {

struct TaskPrompt {
  std::string_view name;    // CLI / API name
  std::string_view prefix;  // for "document", {title} is replaced (default "none")
};

inline constexpr TaskPrompt kTaskPrompts[] = {
    {"query", "task: search result | query: "},
    {"document", "title: {title} | text: "},
    {"question-answering", "task: question answering | query: "},
    {"fact-checking", "task: fact checking | query: "},
    {"classification", "task: classification | query: "},
    {"clustering", "task: clustering | query: "},
    {"similarity", "task: sentence similarity | query: "},
    {"code-retrieval", "task: code retrieval | query: "},
};

// The prefix for a task name; nullopt for an unknown name. `title` is used by
// "document" only; empty means "none".
inline std::optional<std::string> TaskPromptPrefix(std::string_view name, std::string_view title = {}) {
  for (const TaskPrompt& p : kTaskPrompts) {
    if (p.name != name) continue;
    std::string s(p.prefix);
    const auto pos = s.find("{title}");
    if (pos != std::string::npos) s.replace(pos, 7, title.empty() ? std::string_view("none") : title);
    return s;
  }
  return std::nullopt;
}

inline std::vector<std::string_view> TaskPromptNames() {
  std::vector<std::string_view> names;
  for (const TaskPrompt& p : kTaskPrompts) names.push_back(p.name);
  return names;
}

}  // namespace gembed
