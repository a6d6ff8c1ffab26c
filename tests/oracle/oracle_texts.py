"""Deterministic test texts shared by the oracle tests and the golden generator.

Long texts are not stored in the golden files; they are rebuilt from a recipe
(`random_text(seed, n_words)`), which uses its own splitmix64 generator so the
output never depends on the NumPy / Python version. Golden files record the
sha256 of every rebuilt text, so a changed recipe fails loudly.

Task prefixes are written here from MODEL-SPEC §4.1 (the sentence-transformers
config), independently of gembed's src/tokenizer/prompts.h, so a wrong table
there shows up as a golden mismatch.
"""
from __future__ import annotations

import hashlib

MASK64 = (1 << 64) - 1

# MODEL-SPEC §4.1. "document" takes a title ("none" when absent).
TASK_PREFIXES = {
    "query": "task: search result | query: ",
    "document": "title: {title} | text: ",
    "question-answering": "task: question answering | query: ",
    "fact-checking": "task: fact checking | query: ",
    "classification": "task: classification | query: ",
    "clustering": "task: clustering | query: ",
    "similarity": "task: sentence similarity | query: ",
    "code-retrieval": "task: code retrieval | query: ",
}


def task_prefix(task: str | None, title: str | None = None) -> str:
    if not task:
        return ""
    return TASK_PREFIXES[task].replace("{title}", title if title else "none")


# A vocabulary mixing frequent English words, rarer words, numbers, punctuation
# and non-ASCII (accents, CJK, emoji, Cyrillic) so random texts hit many
# tokenizer paths (merges, single characters, byte fallback).
_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no will "
    "model embedding vector attention layer window token sequence position rotary norm weight "
    "quantization matrix kernel thread cache memory batch latency throughput benchmark compiler "
    "river mountain library window garden kitchen evening morning winter summer history science "
    "language music painting theory network protocol database engine server client request "
    "transformer bidirectional sliding multilingual retrieval similarity classification clustering "
    "2024 3.14159 42 1,000,000 0x1F 7% $19.99 #hashtag @user e-mail well-known state-of-the-art "
    "café naïve résumé Straße façade coöperate jalapeño São Zürich Ångström "
    "東京 北京 日本語 中文 한국어 привет мир ελληνικά العربية हिन्दी "
    "😀 🚀 👍🏽 🇫🇷 ✓ → ≤ ∑ ∞ © ™ ½"
).split()
_PUNCT = [",", ",", ";", ":", " -", "", "", "", "", "", "", ""]


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n


def random_text(seed: int, n_words: int) -> str:
    """Sentences of 4-19 words from _WORDS, paragraphs separated by a blank line."""
    rng = SplitMix64(seed)
    out: list[str] = []
    sentence: list[str] = []
    target = 4 + rng.below(16)
    for _ in range(n_words):
        w = _WORDS[rng.below(len(_WORDS))]
        if not sentence:
            w = w[:1].upper() + w[1:]
        sentence.append(w + _PUNCT[rng.below(len(_PUNCT))])
        if len(sentence) >= target:
            out.append(" ".join(sentence).rstrip(",;: -") + ".")
            if rng.below(5) == 0:
                out.append("\n\n")
            sentence = []
            target = 4 + rng.below(16)
    if sentence:
        out.append(" ".join(sentence).rstrip(",;: -") + ".")
    text = ""
    for piece in out:
        if piece == "\n\n":
            text += piece
        elif text and not text.endswith("\n"):
            text += " " + piece
        else:
            text += piece
    return text.strip()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Short hand-written texts: edge cases of tokenisation and pooling.
SHORT_TEXTS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "line one\nline two\n\nline four after a blank line\n",
    "def add(a, b):\n    return a + b\n\n\tprint(add(1, 2))  # tabs and spaces",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.",
    "Emoji 😀🚀👍🏽 and symbols ∑∞≤ © ™ — “quotes” ‘single’ …",
    "<start_of_turn>user\nSpecial tokens inside text<end_of_turn>",
    "<table><tr><td>cell</td></tr></table> <b>bold</b>",
    "    leading spaces and trailing spaces    ",
    "Ünïcödé façade naïve café résumé Straße",
    "1234567890 3.14159 -42 1e-6 0xDEADBEEF",
    "a",
]

# Texts to embed with a task prompt: (task, title, text).
PROMPTED_TEXTS = [
    ("query", None, "how does sliding window attention work?"),
    ("document", None, "Sliding window attention restricts each token to a local neighbourhood."),
    ("document", "Gemma", "EmbeddingGemma is a 300M parameter embedding model."),
    ("classification", None, "This movie was absolutely wonderful!"),
    ("code-retrieval", None, "function that reverses a linked list"),
    ("similarity", None, "A man is playing a guitar."),
]

# Long texts by recipe: (seed, n_words, task). Token counts on the Gemma3 vocab
# are about 1.85 × n_words (noted per line, BOS/EOS included); the golden files
# record the exact ids.
LONG_RECIPES = [
    (101, 180, None),        # ~340 tokens: > 257, so the ±256 sliding window masks
    (202, 480, None),        # ~850 tokens
    (303, 990, None),        # ~1,830 tokens (< 2,048)
    (404, 300, "document"),  # ~570 tokens with a task prompt
]
