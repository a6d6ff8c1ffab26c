#!/usr/bin/env python3
"""Builds the fixed text sets of the compression work (docs/COMPRESSION.md).

  bench/data/quality_texts_v1.json  evaluation: `texts` (varied lengths, 12
      languages, code) for the cosine to the F32 vectors, and `queries` /
      `documents` for the top-10 retrieval agreement;
  bench/data/calib_texts_v1.txt     calibration (one text per line) for
      `gembed quantize/prune --calib`: drawn from other files than the
      evaluation set, so nothing is tuned on what is measured.

The texts come from this repository's own prose and code at the time the
files were made, plus the hand-written multilingual sentences below; the
outputs are committed and versioned (v1), so later edits to the sources do
not change them. Re-running writes the same files only from the same tree:
make a _v2 rather than overwrite v1.

    python3 scripts/make_quality_texts.py [--out-dir bench/data]
"""
import argparse
import hashlib
import json
import pathlib
import random
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Hand-written, one meaning per group, in several languages (evaluation).
MULTILINGUAL_EVAL = [
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Die Bahn hat heute wegen eines Sturms zwei Stunden Verspätung.",
    "Le chat dort sur le canapé pendant que la pluie tombe dehors.",
    "La bibliothèque municipale ferme ses portes à dix-neuf heures le samedi.",
    "El mercado abre temprano y las frutas llegan frescas cada mañana.",
    "¿Dónde puedo comprar un billete de tren para Madrid?",
    "O rio atravessa a cidade e divide os bairros antigos dos novos.",
    "Il museo espone una collezione di strumenti musicali del Settecento.",
    "Кошка спит на подоконнике, пока солнце светит в окно.",
    "Как настроить резервное копирование базы данных каждую ночь?",
    "火星は太陽系で四番目の惑星で、赤い色で知られています。",
    "このライブラリは文章を数値ベクトルに変換します。",
    "长城是中国古代修建的军事防御工程。",
    "如何在服务器上限制每个请求的最大长度？",
    "서울의 지하철은 아침 출근 시간에 매우 붐빕니다.",
    "القمر يدور حول الأرض مرة كل شهر تقريبا.",
    "भारत में मानसून जून से सितंबर तक रहता है।",
    "Kahve soğumadan önce toplantı bitmiş olacak.",
    "Het nieuwe station wordt volgend jaar geopend.",
    "Pociąg do Krakowa odjeżdża z peronu trzeciego.",
]
MULTILINGUAL_DOCS = [
    "Mars ist der vierte Planet des Sonnensystems und wird wegen seiner Farbe der Rote Planet genannt.",
    "Venus est la planète la plus chaude du système solaire à cause de son atmosphère épaisse.",
    "La fotosíntesis convierte la luz del sol en energía química dentro de las plantas.",
    "Эйфелева башня была построена в Париже к Всемирной выставке 1889 года.",
    "富士山は日本で最も高い山で、標高は三千七百七十六メートルです。",
    "熊猫主要生活在中国四川省的山区，以竹子为食。",
    "Il Colosseo di Roma poteva ospitare decine di migliaia di spettatori.",
    "A Amazônia é a maior floresta tropical do mundo.",
    "한글은 세종대왕이 만든 한국의 고유 문자입니다.",
    "النيل هو أطول نهر في أفريقيا ويمر عبر عدة دول.",
]
QUERIES = [
    "How are output files written safely?",
    "Which planet is known as the Red Planet?",
    "How does the server handle too many requests at once?",
    "What happens when a GGUF file is malformed?",
    "How is the kernel level chosen at run time?",
    "How are texts longer than the context handled?",
    "What does the shared queue do with requests from several callers?",
    "How do I install the C library and use it from CMake?",
    "How are weights repacked for the int8 dot product?",
    "Which prompt is used for a search query?",
    "How is the tokenizer checked against Hugging Face?",
    "What is Matryoshka truncation of embeddings?",
    "How does the Python package release the GIL?",
    "How is attention restricted to a sliding window?",
    "What limits are there on the request body size?",
    "How is RMSNorm computed in the forward pass?",
    "Where does the engine spend its time for short texts?",
    "How does the corpus command resume after a crash?",
    "What does the API key check compare?",
    "How are thread counts validated?",
    "Wie hoch ist der höchste Berg Japans?",
    "Quelle est la planète la plus chaude ?",
    "¿Cómo obtienen energía las plantas?",
    "Когда построили Эйфелеву башню?",
    "熊猫吃什么？",
    "function that quantises a row of activations to int8 blocks",
    "parse command line flags for the embed subcommand",
    "test that the server returns 429 when the queue is full",
    "mean pooling over the tokens of each sequence",
    "convert bf16 to float",
]


def paragraphs(path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out = []
    for p in re.split(r"\n\s*\n", text):
        p = " ".join(line.strip() for line in p.splitlines() if line.strip() and not line.strip().startswith("|"))
        p = p.lstrip("#- ").strip()
        if len(p) >= 40:
            out.append(p)
    return out


def code_chunks(path, lines_per_chunk, rng, count):
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    if len(lines) < lines_per_chunk:
        return ["\n".join(lines)] if lines else []
    for _ in range(count):
        start = rng.randrange(0, len(lines) - lines_per_chunk + 1)
        chunk = "\n".join(lines[start:start + lines_per_chunk]).strip()
        if len(chunk) > 40:
            out.append(chunk)
    return out


def files(pattern):
    return sorted(ROOT.glob(pattern))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "data"))
    args = ap.parse_args()
    rng = random.Random(20261202)

    # ---- evaluation -------------------------------------------------------------
    prose = []
    for p in [ROOT / "README.md", ROOT / "docs" / "ARCHITECTURE.md"]:
        prose += paragraphs(p)
    code = []
    for p in files("src/**/*.cc") + files("src/**/*.h"):
        code += code_chunks(p, 12, rng, 3)
    rng.shuffle(prose)
    rng.shuffle(code)
    short = ["embedding", "red planet", "int8 GEMM", "thread pool", "Guten Morgen", "こんにちは", "合同", "OK",
             "sliding window attention", "how to quantise a model"]
    long_texts = []
    for i in range(6):  # long texts: several paragraphs joined (about 300 to 1,500 tokens)
        k = [3, 6, 10, 14, 20, 28][i]
        long_texts.append("\n\n".join(prose[(i * 7) % len(prose):][:k]))
    texts = short + MULTILINGUAL_EVAL + prose[:60] + code[:40] + long_texts
    documents = prose[60:] + code[40:200] + MULTILINGUAL_DOCS
    eval_set = {
        "version": 1,
        "description": "gembed compression evaluation texts (scripts/make_quality_texts.py): texts for cosine to "
                       "the F32 vectors, queries/documents for top-10 retrieval agreement",
        "texts": texts,
        "queries": QUERIES,
        "documents": documents,
    }
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ev = out_dir / "quality_texts_v1.json"
    ev.write_text(json.dumps(eval_set, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    # ---- calibration: other files than the evaluation set -------------------------
    calib = []
    for p in [ROOT / "docs" / "PERFORMANCE.md", ROOT / "docs" / "REAL-WEIGHTS.md"]:
        calib += paragraphs(p)
    for p in files("tests/python/*.py") + files("tools/gembed/*.cc") + files("scripts/*.py"):
        calib += code_chunks(p, 10, rng, 1)
    calib += [
        "Die Sonne geht im Osten auf und im Westen unter.",
        "Nous avons réservé une table pour quatre personnes ce soir.",
        "Los estudiantes presentan sus proyectos al final del semestre.",
        "Сегодня в городе ожидается сильный снег и гололёд.",
        "週末は家族と一緒に公園へ出かけました。",
        "这家餐厅的面条非常好吃，价格也很便宜。",
        "나는 매일 아침 커피를 한 잔 마신다.",
        "يحب الأطفال اللعب في الحديقة بعد المدرسة.",
        "यह पुस्तक बच्चों के लिए लिखी गई है।",
        "A reunião foi adiada para a próxima semana.",
        "Ho dimenticato l'ombrello sul treno stamattina.",
        "What is the capital of Australia?",
        "Summarise the main risks of running a database without backups.",
        "The quarterly report shows revenue growth in every region except Europe.",
    ]
    rng.shuffle(calib)
    cal = out_dir / "calib_texts_v1.txt"
    cal.write_text("\n".join(t.replace("\n", " ") for t in calib) + "\n", encoding="utf-8")
    for f in (ev, cal):
        print(f"{f.relative_to(ROOT)}  sha256 {hashlib.sha256(f.read_bytes()).hexdigest()}")
    print(f"eval: {len(texts)} texts, {len(QUERIES)} queries, {len(documents)} documents; calibration: {len(calib)} texts")


if __name__ == "__main__":
    main()
