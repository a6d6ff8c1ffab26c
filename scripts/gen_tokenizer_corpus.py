#!/usr/bin/env python3
"""Seeded, deterministic tokenizer test corpus (generated at test time, never committed).

Each entry is (category, text). Categories cover what a Gemma3 tokenizer must
get right: English prose; 20+ scripts; emoji (ZWJ sequences, skin tones,
flags, keycaps); combining marks; full-width forms; code in several languages;
HTML; runs of spaces / tabs / newlines / CR (1..40); special-token strings
inside text (whole and partial); control characters; NBSP and other Unicode
spaces; very long words; long texts (up to 10,000 characters); random Unicode
scalar values; literal U+2581; literal byte-token spellings like "<0x41>".

Usage:
    gen_tokenizer_corpus.py [--seed N] [--count N] [--out FILE] [--with-category]
writes one JSON string per line (or [category, text] pairs with
--with-category). Python users: `generate(seed, count)`.
"""
from __future__ import annotations

import argparse
import json
import random
import sys

# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

ENGLISH_WORDS = (
    "the of and to in is was for on that with as by it at from his he be this are an or her had not but "
    "which have one were they you all their she there been has when who would will more if no out so said "
    "what up its about into than them can only other new some could time these two may then do first any "
    "my now such like our over man me even most made after also did many before must through back years "
    "where much your way well down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take three "
    "tokenizer embedding vector model inference Gemma retrieval semantic similarity document query "
    "don't it's I'm we're they've she'll can't won't isn't o'clock naïve café résumé coöperate "
    "Washington London Tokyo Zürich São Paulo Kraków Reykjavík"
).split()

PUNCT = [".", ",", ";", ":", "!", "?", "...", " -", " —", " (", ")", "\"", "'", " /", " &", " %", " $"]

# Short real phrases per script (common greetings / pangram-like sentences).
SCRIPT_SAMPLES = {
    "chinese": ["你好，世界！", "机器学习是人工智能的一个分支。", "我想在苹果公司工作一千三百一十四天。", "北京是中国的首都。"],
    "japanese": ["こんにちは世界", "東京タワーは日本の電波塔です。", "カタカナとひらがなを混ぜて書きます。", "ｶﾀｶﾅ半角もあります"],
    "korean": ["안녕하세요 세계", "한국어 문장을 토큰화합니다.", "서울은 대한민국의 수도입니다."],
    "thai": ["สวัสดีชาวโลก", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"],
    "arabic": ["مرحبا بالعالم", "اللغة العربية تكتب من اليمين إلى اليسار."],
    "hebrew": ["שלום עולם", "עברית נכתבת מימין לשמאל."],
    "devanagari": ["नमस्ते दुनिया", "हिन्दी भारत की एक भाषा है।"],
    "bengali": ["ওহে বিশ্ব", "বাংলা একটি সুন্দর ভাষা।"],
    "tamil": ["வணக்கம் உலகம்", "தமிழ் ஒரு பழமையான மொழி."],
    "telugu": ["హలో ప్రపంచం", "తెలుగు ఒక ద్రావిడ భాష."],
    "kannada": ["ನಮಸ್ಕಾರ ಜಗತ್ತು"],
    "malayalam": ["ഹലോ ലോകം"],
    "gujarati": ["નમસ્તે વિશ્વ"],
    "gurmukhi": ["ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨੀਆ"],
    "sinhala": ["ආයුබෝවන් ලෝකය"],
    "cyrillic": ["Привет, мир!", "Съешь же ещё этих мягких французских булок, да выпей чаю.", "Ґанок і їжак."],
    "greek": ["Γειά σου Κόσμε", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία."],
    "armenian": ["Բարեւ աշխարհ"],
    "georgian": ["გამარჯობა მსოფლიო"],
    "ethiopic": ["ሰላም ልዑል", "ኢትዮጵያ በአፍሪካ ቀንድ ትገኛለች።"],
    "khmer": ["សួស្តី​ពិភពលោក", "កាន់តែពិសេសអាច"],
    "lao": ["ສະບາຍດີຊາວໂລກ"],
    "tibetan": ["བཀྲ་ཤིས་བདེ་ལེགས།"],
    "myanmar": ["မင်္ဂလာပါ ကမ္ဘာလောက"],
    "mongolian": ["ᠮᠣᠩᠭᠣᠯ ᠬᠡᠯᠡ"],
    "vietnamese": ["Xin chào thế giới", "Tiếng Việt có nhiều dấu thanh."],
    "turkish": ["Merhaba dünya, İstanbul ışığı"],
    "polish": ["Zażółć gęślą jaźń"],
}

# Code point ranges used to make random "words" of each script.
SCRIPT_RANGES = {
    "chinese": [(0x4E00, 0x9FFF)],
    "cjk_ext": [(0x3400, 0x4DBF), (0x20000, 0x2A6DF)],
    "japanese": [(0x3041, 0x3096), (0x30A1, 0x30FA), (0x4E00, 0x6FFF)],
    "korean": [(0xAC00, 0xD7A3)],
    "thai": [(0x0E01, 0x0E3A), (0x0E40, 0x0E4E)],
    "arabic": [(0x0621, 0x064A), (0x0660, 0x0669)],
    "hebrew": [(0x05D0, 0x05EA)],
    "devanagari": [(0x0905, 0x0939), (0x093E, 0x094D)],
    "bengali": [(0x0985, 0x09B9), (0x09BE, 0x09CD)],
    "tamil": [(0x0B85, 0x0BB9), (0x0BBE, 0x0BCD)],
    "telugu": [(0x0C05, 0x0C39)],
    "cyrillic": [(0x0410, 0x044F)],
    "greek": [(0x0391, 0x03A9), (0x03B1, 0x03C9)],
    "armenian": [(0x0531, 0x0556), (0x0561, 0x0586)],
    "georgian": [(0x10D0, 0x10FA)],
    "ethiopic": [(0x1200, 0x135A)],
    "khmer": [(0x1780, 0x17D2)],
    "lao": [(0x0E81, 0x0EB9)],
    "tibetan": [(0x0F40, 0x0F6C), (0x0F71, 0x0F84)],
    "myanmar": [(0x1000, 0x102A)],
    "mongolian": [(0x1820, 0x1878)],
    "latin_ext": [(0x00C0, 0x024F)],
}

EMOJI = ["😀", "😂", "🥲", "🤖", "🚀", "🦙", "🌫️", "❤️", "✅", "🔥", "🎉", "👍", "🙏", "💯", "🧪", "🫠"]
SKIN_TONES = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
ZWJ_SEQUENCES = [
    "👨\u200d👩\u200d👧\u200d👦", "👩\u200d💻", "🏳️\u200d🌈", "🧑\u200d🚀", "😶\u200d🌫️", "👁️\u200d🗨️",
    "🧔\u200d♀️", "👩🏽\u200d🔬", "🏃\u200d♂️\u200d➡️",
]
FLAGS = ["🇺🇸", "🇯🇵", "🇩🇪", "🇧🇷", "🇮🇳", "🇺🇦", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"]
KEYCAPS = ["1️⃣", "#️⃣", "*️⃣"]

COMBINING = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030A", "\u0327", "\u0328", "\u0336", "\u20DD"]

UNICODE_SPACES = ["\u00A0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2007", "\u2009", "\u200A",
                  "\u200B", "\u200C", "\u200D", "\u2028", "\u2029", "\u202F", "\u205F", "\u3000", "\uFEFF",
                  "\u0085", "\u180E"]

SPECIAL_STRINGS = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[multimodal]", "<start_of_turn>", "<end_of_turn>",
    "<unused0>", "<unused3>", "<unused98>", "<unused99>", "<unused6241>", "<start_of_image>", "<end_of_image>",
    "<table>", "</table>", "<tr>", "<td>", "</td>", "<b>", "</b>", "<i>", "<s>", "</s>", "<sub>", "<sup>",
    "<code>", "</code>", "<h1>", "</h6>", "<blockquote>", "<strong>", "<em>", "<a>", "</a>", "<div>", "</div>",
    "<span>", "<img>", "</img>", "<bbox>", "</footer>", "<iframe>",
    # partial and near-miss spellings
    "<bo", "<bos", "bos>", "<eos", "</", "<", ">", "<start_of_tur", "<start_of_turn", "start_of_turn>",
    "<unused", "<unused3", "[multimodal", "multimodal]", "<BOS>", "< bos>", "<bos >", "<<bos>>", "<table",
    "</tabl", "<t", "<unused-1>", "<unused6242>",
]

# Gemma3's <image_soft_token> has id 262144, outside the 262,144-row model
# vocabulary; llama.cpp's converter drops it from GGUFs (see the parity test).
IMAGE_SOFT_TOKEN = "<image_soft_token>"

CODE_SNIPPETS = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "class Foo:\n\tdef __init__(self, x):\n\t\tself.x = x  # tabs\n",
    "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n  return 0;\n}\n",
    "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }\n",
    "function add(a, b) {\n  return a + b;\n}\nconsole.log(add(1, 2)); // 3\n",
    "const x = async () => { await fetch(`/api/v1/items?id=${id}&q=${encodeURIComponent(q)}`); };\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello, 世界\")\n}\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC LIMIT 10;\n",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  echo \"$f\" | tr a-z A-Z\ndone\n",
    "{\n  \"name\": \"gembed\",\n  \"version\": \"0.1.0\",\n  \"tags\": [\"a\", \"b\"]\n}\n",
    "x = [i**2 for i in range(10) if i % 2 == 0]\r\nprint(x)\r\n",
    "public static void main(String[] args) {\n        System.out.println(\"Hello\");\n    }\n",
    "    \n        \n\t\n  \t  \n",
    "if (a<b && b>c) { p->q = *r; } else { s[i] = t[j]; }\n",
    "$ pip install -U 'numpy>=1.26,<3' && python -c 'import numpy; print(numpy.__version__)'\n",
]

HTML_SNIPPETS = [
    "<html><body><h1>Title</h1><p>Hello <b>world</b>!</p></body></html>",
    "<table>\n  <tr><th>Name</th><th>Age</th></tr>\n  <tr><td>Ann</td><td>31</td></tr>\n</table>",
    "<div class=\"card\"><span>Price:</span> <strong>$9.99</strong></div>",
    "<ul>\n<li>one</li>\n<li>two</li>\n</ul>",
    "<a href=\"https://example.com/path?x=1&amp;y=2\">link</a> &lt;escaped&gt; &nbsp;",
    "<img src=\"a.png\" alt=\"an image\"/><br/><iframe src=\"x\"></iframe>",
    "<blockquote><em>quote</em></blockquote><footer>(c) 2025</footer>",
    "<p>Line one<br>Line two</p>\n\n<!-- comment -->\n<script>let x = 1 < 2;</script>",
]


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def choice(self, seq):
        return self.r.choice(seq)

    def randint(self, a, b):
        return self.r.randint(a, b)

    def english_sentence(self) -> str:
        n = self.randint(3, 18)
        words = [self.choice(ENGLISH_WORDS) for _ in range(n)]
        words[0] = words[0][:1].upper() + words[0][1:]
        out = []
        for w in words:
            out.append(w)
            if self.r.random() < 0.12:
                out[-1] += self.choice(PUNCT)
        return " ".join(out) + self.choice([".", "!", "?", ".", "."])

    def english(self, max_sentences=6) -> str:
        return " ".join(self.english_sentence() for _ in range(self.randint(1, max_sentences)))

    def script_word(self, script: str) -> str:
        lo, hi = self.choice(SCRIPT_RANGES[script])
        return "".join(chr(self.randint(lo, hi)) for _ in range(self.randint(1, 8)))

    def script_text(self, script: str) -> str:
        parts = []
        for _ in range(self.randint(1, 6)):
            if script in SCRIPT_SAMPLES and self.r.random() < 0.5:
                parts.append(self.choice(SCRIPT_SAMPLES[script]))
            else:
                parts.append(self.script_word(script))
        sep = "" if script in ("chinese", "japanese", "thai", "khmer", "lao", "cjk_ext") and self.r.random() < 0.5 else " "
        return sep.join(parts)

    def emoji(self) -> str:
        parts = []
        for _ in range(self.randint(1, 8)):
            k = self.randint(0, 5)
            if k == 0:
                parts.append(self.choice(EMOJI))
            elif k == 1:
                parts.append(self.choice(["👍", "👋", "🤝", "💪", "🧑", "👩"]) + self.choice(SKIN_TONES))
            elif k == 2:
                parts.append(self.choice(ZWJ_SEQUENCES))
            elif k == 3:
                parts.append(self.choice(FLAGS))
            elif k == 4:
                parts.append(self.choice(KEYCAPS))
            else:
                parts.append(self.english_sentence())
        return self.choice(["", " ", "  "]).join(parts)

    def combining(self) -> str:
        out = []
        for ch in self.english_sentence():
            out.append(ch)
            if ch.isalpha() and self.r.random() < 0.3:
                out.extend(self.choice(COMBINING) for _ in range(self.randint(1, 4)))
        return "".join(out)

    def fullwidth(self) -> str:
        s = self.english_sentence()
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and self.r.random() < 0.7 else
                       ("\u3000" if c == " " and self.r.random() < 0.5 else c) for c in s)

    def code(self) -> str:
        parts = [self.choice(CODE_SNIPPETS) for _ in range(self.randint(1, 3))]
        return self.choice(["", "\n", "\n\n"]).join(parts)

    def html(self) -> str:
        parts = [self.choice(HTML_SNIPPETS) for _ in range(self.randint(1, 3))]
        return "\n".join(parts)

    def whitespace(self) -> str:
        out = []
        for _ in range(self.randint(1, 8)):
            ws = self.choice([" ", "\t", "\n", "\r", "\r\n", " \t", "\n ", "\t\n"])
            run = ws * self.randint(1, 40)
            out.append(run[: self.randint(1, 40)] if len(run) > 40 else run)
            if self.r.random() < 0.7:
                out.append(self.choice(ENGLISH_WORDS + ["x", "if", "{", "}", "日本", "🚀"]))
        if self.r.random() < 0.3:
            out.insert(0, self.choice([" ", "  ", "\t", "\n"]))
        return "".join(out)

    def specials(self) -> str:
        out = []
        for _ in range(self.randint(1, 8)):
            k = self.r.random()
            if k < 0.45:
                out.append(self.choice(SPECIAL_STRINGS))
            elif k < 0.75:
                out.append(self.english_sentence())
            else:
                out.append(self.choice([" ", "  ", "\n", "\t", "", "x", "日本語"]))
        return self.choice(["", " ", "\n"]).join(out)

    def controls(self) -> str:
        out = []
        for _ in range(self.randint(1, 12)):
            if self.r.random() < 0.5:
                out.append(chr(self.choice(list(range(0, 32)) + [0x7F] + list(range(0x80, 0xA0)))))
            else:
                out.append(self.choice(ENGLISH_WORDS))
        return "".join(out)

    def unicode_spaces(self) -> str:
        words = [self.choice(ENGLISH_WORDS) for _ in range(self.randint(2, 10))]
        return "".join(w + self.choice(UNICODE_SPACES + [" "]) for w in words)

    def long_word(self) -> str:
        k = self.randint(0, 4)
        n = self.randint(100, 3000)
        if k == 0:
            return self.choice("abcxyz") * n
        if k == 1:
            return "".join(self.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
        if k == 2:
            return "https://example.com/" + "/".join(self.choice(ENGLISH_WORDS) for _ in range(n // 8)) + "?q=" + "9" * 50
        if k == 3:
            return "".join(self.choice("0123456789") for _ in range(n))
        return self.script_word("chinese") * (n // 8 + 1)

    def long_text(self) -> str:
        target = self.randint(2000, 10000)
        parts = []
        size = 0
        makers = [self.english, self.code, self.html, self.whitespace, self.emoji, self.specials,
                  lambda: self.script_text(self.choice(list(SCRIPT_RANGES)))]
        while size < target:
            p = self.choice(makers)()
            parts.append(p)
            size += len(p) + 1
        return "\n".join(parts)[:10000]

    def random_unicode(self) -> str:
        out = []
        for _ in range(self.randint(1, 60)):
            k = self.r.random()
            if k < 0.3:
                cp = self.randint(0x20, 0x7E)
            elif k < 0.6:
                cp = self.randint(0x80, 0xFFFF)
            elif k < 0.9:
                cp = self.randint(0x10000, 0x10FFFF)
            else:
                cp = self.randint(0, 0x1F)
            if 0xD800 <= cp <= 0xDFFF:  # valid scalar values only
                cp = 0xFFFD
            out.append(chr(cp))
        return "".join(out)

    def literal_marker(self) -> str:
        s = self.english_sentence()
        words = s.split(" ")
        k = self.randint(0, 3)
        if k == 0:
            return "\u2581".join(words)
        if k == 1:
            return "\u2581\u2581" + s
        if k == 2:
            return s.replace(" ", self.choice(["\u2581 ", " \u2581", "\u2581"]))
        return "\u2581" * self.randint(1, 10) + self.choice(ENGLISH_WORDS)

    def byte_token_spelling(self) -> str:
        b = self.randint(0, 255)
        spelled = self.choice([f"<0x{b:02X}>", f"<0x{b:02x}>", "<0x", "0x41>"])
        return self.english_sentence() + " " + spelled + self.choice(["", " ", "x"])

    def image_soft_token(self) -> str:
        return self.english_sentence() + " " + IMAGE_SOFT_TOKEN + " " + self.english_sentence()


# Category name -> (weight, maker name). Weights are per 1000 entries.
CATEGORIES = [
    ("english", 120, lambda g: g.english()),
    ("scripts", 190, lambda g: g.script_text(g.choice(list(SCRIPT_RANGES)))),
    ("mixed_scripts", 40, lambda g: " ".join(g.script_text(g.choice(list(SCRIPT_RANGES))) for _ in range(3))),
    ("emoji", 60, lambda g: g.emoji()),
    ("combining", 40, lambda g: g.combining()),
    ("fullwidth", 25, lambda g: g.fullwidth()),
    ("code", 60, lambda g: g.code()),
    ("html", 40, lambda g: g.html()),
    ("whitespace", 90, lambda g: g.whitespace()),
    ("specials", 90, lambda g: g.specials()),
    ("controls", 35, lambda g: g.controls()),
    ("unicode_spaces", 35, lambda g: g.unicode_spaces()),
    ("long_word", 20, lambda g: g.long_word()),
    ("long_text", 10, lambda g: g.long_text()),
    ("random_unicode", 80, lambda g: g.random_unicode()),
    ("literal_u2581", 25, lambda g: g.literal_marker()),
    ("byte_token_spelling", 15, lambda g: g.byte_token_spelling()),
    ("image_soft_token", 5, lambda g: g.image_soft_token()),
]

FIXED = [
    ("fixed", ""), ("fixed", " "), ("fixed", "  "), ("fixed", "\n"), ("fixed", "\t"), ("fixed", "\r"),
    ("fixed", "\r\n"), ("fixed", "\x00"), ("fixed", "a"), ("fixed", "hello world"), ("fixed", " hello"),
    ("fixed", "hello "), ("fixed", "  hello  world  "), ("fixed", "<bos>"), ("fixed", "<bos><eos>"),
    ("fixed", "<start_of_turn>user\nHi<end_of_turn>\n"), ("fixed", "</s>"), ("fixed", "<s>x</s>"),
    ("fixed", " " * 31), ("fixed", " " * 32), ("fixed", " " * 40), ("fixed", "\n" * 31), ("fixed", "\n" * 40),
    ("fixed", "\t" * 31), ("fixed", "\t" * 40), ("fixed", "task: search result | query: what is gembed?"),
    ("fixed", "title: none | text: EmbeddingGemma is a 300M parameter embedding model."),
    # Gemma3 has the token '>▁</' (a space inside a token): merging must cross that space.
    ("fixed", "<p>a</p> </p> <em>b</em> </q>"), ("fixed", "x> </y"), ("fixed", ">  </"), ("fixed", "> </> </"),
]


def generate(seed: int = 0, count: int = 6000) -> list[tuple[str, str]]:
    """Returns `count` (category, text) pairs, deterministic for (seed, count)."""
    g = Gen(seed)
    out: list[tuple[str, str]] = list(FIXED)
    total_w = sum(w for _, w, _ in CATEGORIES)
    for name, w, make in CATEGORIES:
        n = max(1, (count - len(FIXED)) * w // total_w)
        for _ in range(n):
            out.append((name, make(g)))
    while len(out) < count:
        out.append(("english", g.english()))
    return out[:count]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=6000)
    ap.add_argument("--out", default="-")
    ap.add_argument("--with-category", action="store_true")
    args = ap.parse_args()
    corpus = generate(args.seed, args.count)
    f = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    for cat, text in corpus:
        f.write(json.dumps([cat, text] if args.with_category else text, ensure_ascii=False) + "\n")
    if f is not sys.stdout:
        f.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
