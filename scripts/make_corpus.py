#!/usr/bin/env python3
"""Writes a synthetic corpus for the corpus benchmarks: one short text per line
(3-12 words from a fixed list, seeded), or JSON lines with --jsonl.

    scripts/make_corpus.py --rows 1000000 -o .cache/bench/c1m.txt
"""
import argparse
import json
import random

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
         "tau").split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--min-words", type=int, default=3)
    ap.add_argument("--max-words", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jsonl", action="store_true", help="objects {\"id\": N, \"text\": ...} per line")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(a.output, "w", encoding="utf-8") as f:
        for i in range(a.rows):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(a.min_words, a.max_words)))
            f.write(json.dumps({"id": i, "text": text}) + "\n" if a.jsonl else text + "\n")


if __name__ == "__main__":
    main()
