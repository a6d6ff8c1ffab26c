"""~200 varied strings for the llama.cpp tokenisation golden (deterministic).

Hand-written edge cases (whitespace runs, tabs, CR/LF, HTML-tag and control
tokens inside text, byte fallback, CJK, emoji with ZWJ/skin tones, combining
marks, NBSP, U+2581) plus seeded random mixtures of the same ingredients.
The random part uses oracle_texts.SplitMix64, so it never depends on library versions.
"""
from __future__ import annotations

try:
    from . import oracle_texts as T
except ImportError:
    import oracle_texts as T

HAND_WRITTEN = [
    "",
    " ",
    "  ",
    "   ",
    "a",
    " a",
    "a ",
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello\nworld",
    "Hello\n\nworld\n",
    "Hello\r\nworld\r\n",
    "\n",
    "\n\n\n\n",
    "\t",
    "\tindented\n\t\tdouble\n\t\t\ttriple",
    "    four spaces\n        eight spaces",
    " " * 31 + "x",
    " " * 40 + "x",
    "\n" * 33,
    "\t" * 35,
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos>",
    "<pad><unk><mask>[multimodal]",
    "<unused0> <unused99> <unused6241>",
    "<start_of_image><end_of_image>",
    "</s> is a user-defined tag here",
    "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>d</td></tr></tbody></table>",
    "<h1>Title</h1><p>para <b>bold</b> <i>it</i> <a href='x'>link</a></p>",
    "<not_a_token> <start_of_turn <end_of_turn",
    "don't won't it's I'm you're",
    "C++ is not C#; use std::vector<int> v{1, 2, 3};",
    "def f(x):\n    return x ** 2  # square\n",
    "SELECT * FROM users WHERE id = 42;",
    "https://example.com/path?query=1&b=2#frag",
    "user@example.com +1 (555) 123-4567",
    "3.14159 2.71828 1,234,567.89 1e-10 -0.0",
    "0x7FFFFFFF 0b1010 0o777",
    "東京は日本の首都です。",
    "北京是中华人民共和国的首都。",
    "서울은 대한민국의 수도이다.",
    "Привет, мир! Как дела?",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "😀😃😄😁😆",
    "👨‍👩‍👧‍👦 family ZWJ sequence",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    "🇺🇸🇫🇷🇯🇵 flags",
    "e\u0301 combining acute, n\u0303 tilde, a\u0308\u0304 stacked",
    "non\u00a0breaking\u00a0space and\u2009thin space and\u3000ideographic",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "\u2581leading lower one eighth block",
    "two\u2581\u2581blocks and one\u2581",
    "control \x01\x02\x1f\x7f chars",
    "ﬁ ligature, ℌ, ①②③, ｆｕｌｌｗｉｄｔｈ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math alphanumerics 𝟘𝟙𝟚",
    "\U0010FFFF private use plane and \ue000",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "The quick brown fox jumps over the lazy dog. " * 5,
    "task: search result | query: what is a transformer?",
    "title: none | text: Attention is all you need.",
]

_INGREDIENTS = [
    "the", " the", "model", " embedding", "Token", "ization", "s", ".", ",", "!", "?", ":", ";",
    " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r",
    "<b>", "</b>", "<table>", "<td>", "</s>", "<start_of_turn>", "<end_of_turn>", "<mask>",
    "[multimodal]", "<unused3>", "<bos>", "<eos>", "<", ">", "</", "<br>",
    "東京", "中文", "日本語", "한국어", "привет", "ελληνικά", "العربية", "हिन्दी",
    "😀", "🚀", "👍🏽", "👨‍💻", "🇫🇷", "é", "e\u0301", "ß", "ﬁ", "\u00a0", "\u200b", "\u2581",
    "123", "4567", "3.14", "0x1F", "$", "%", "&", "#", "@", "\\", "/", "|", "~", "`", "^",
    "café", "naïve", "Zürich", "über", "don't", "C++", "std::", "()", "[]", "{}", "=>", "->",
    "\x01", "\x7f",
]


def random_strings(n: int, seed: int = 2026) -> list[str]:
    rng = T.SplitMix64(seed)
    out = []
    for _ in range(n):
        k = 1 + rng.below(12)
        out.append("".join(_INGREDIENTS[rng.below(len(_INGREDIENTS))] for _ in range(k)))
    return out


def strings() -> list[str]:
    hand = HAND_WRITTEN
    return hand + random_strings(200 - len(hand))
