#!/usr/bin/env python3
"""Quality of a compressed EmbeddingGemma against its F32 reference.

    python3 scripts/eval_quality.py --model variant.gguf --reference models/embeddinggemma-300m \
        [--texts bench/data/quality_texts_v1.json] [--sts .cache/stsb/dev.tsv] [--json out.json]

Every vector comes from `gembed embed` (GEMBED_BIN or build/bin/gembed), the
reference from the F32 Hugging Face folder run in fp32 (`--precision high`).
Figures (docs/COMPRESSION.md):

  cos_mean / cos_min   cosine between the variant's and the reference's vector
                       of each text of `texts` (default prompt, 768 dims);
  top10                mean over `queries` (task query) of |top-10 variant ∩
                       top-10 reference| / 10 over `documents` (task document);
  sts_spearman         Spearman correlation x 100 between the gold scores of the
                       STS Benchmark dev split (GLUE's STS-B dev.tsv, 1,500
                       pairs, pinned by sha256 below) and the cosine of the two
                       sentences (task similarity). Dev only: the test split is
                       never used.

The STS file is not in the repository (its texts have their own licences);
`--sts` names a local copy, checked against STSB_DEV_SHA256. Without it the
STS figure is skipped (reported as null).
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_TEXTS = ROOT / "bench" / "data" / "quality_texts_v1.json"
DEFAULT_STS = ROOT / ".cache" / "stsb" / "dev.tsv"
# GLUE STS-B dev.tsv (columns index genre filename year old_index source1 source2
# sentence1 sentence2 score; 1,500 pairs).
STSB_DEV_SHA256 = "65f79065d85d2135210f502830b4413bb7f3136c2f078d3d19faa59ac69edac6"


def row_cosines(a, b):
    """Cosine of each row of a with the same row of b, in float64 (the vectors need not be normalised)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def gembed_bin():
    return os.environ.get("GEMBED_BIN", str(ROOT / "build" / "bin" / "gembed"))


def embed(model, texts, task=None, precision=None, threads=None):
    """Unit vectors [len(texts) x 768] from `gembed embed`."""
    with tempfile.TemporaryDirectory() as tmp:
        inp = pathlib.Path(tmp) / "in.jsonl"
        out = pathlib.Path(tmp) / "out.npy"
        inp.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
        cmd = [gembed_bin(), "embed", "--model", str(model), "--input", str(inp), "--jsonl", "--format", "npy",
               "--output", str(out)]
        if task:
            cmd += ["--task", task]
        if precision:
            cmd += ["--precision", precision]
        if threads:
            cmd += ["--threads", str(threads)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"gembed embed failed ({r.returncode}): {r.stderr.strip()}")
        v = np.load(out)
    if v.shape[0] != len(texts):
        raise RuntimeError(f"gembed embed returned {v.shape[0]} vectors for {len(texts)} texts")
    return v.astype(np.float64)


def load_sts(path):
    data = pathlib.Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != STSB_DEV_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not the pinned STS-B dev split {STSB_DEV_SHA256}")
    s1, s2, gold = [], [], []
    for line in data.decode("utf-8").splitlines()[1:]:
        f = line.split("\t")
        if len(f) < 10:
            continue
        s1.append(f[7])
        s2.append(f[8])
        gold.append(float(f[9]))
    return s1, s2, np.array(gold)


def rankdata(a):
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata's default)."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=np.float64)
    sa = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sa[j + 1] == sa[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x, y):
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def topk_agreement(q_ref, d_ref, q_var, d_var, k=10):
    k = min(k, d_ref.shape[0])
    ref = np.argsort(-(q_ref @ d_ref.T), axis=1, kind="stable")[:, :k]
    var = np.argsort(-(q_var @ d_var.T), axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref, var)]))


class Reference:
    """The reference's vectors, computed once and reused for every variant."""

    def __init__(self, model, text_set, sts_path=None, precision="high", threads=None):
        self.model = model
        self.set = text_set
        self.threads = threads
        self.texts = embed(model, text_set["texts"], precision=precision, threads=threads)
        self.queries = embed(model, text_set["queries"], task="query", precision=precision, threads=threads)
        self.docs = embed(model, text_set["documents"], task="document", precision=precision, threads=threads)
        self.sts = load_sts(sts_path) if sts_path else None
        self.sts_spearman = self._sts(model, precision) if self.sts else None

    def _sts(self, model, precision):
        s1, s2, gold = self.sts
        a = embed(model, s1, task="similarity", precision=precision, threads=self.threads)
        b = embed(model, s2, task="similarity", precision=precision, threads=self.threads)
        return 100.0 * spearman(gold, np.sum(a * b, axis=1))

    def evaluate(self, model, precision=None):
        t = embed(model, self.set["texts"], precision=precision, threads=self.threads)
        cos = row_cosines(t, self.texts)
        q = embed(model, self.set["queries"], task="query", precision=precision, threads=self.threads)
        d = embed(model, self.set["documents"], task="document", precision=precision, threads=self.threads)
        out = {
            "cos_mean": float(cos.mean()),
            "cos_min": float(cos.min()),
            "top10": topk_agreement(self.queries, self.docs, q, d),
            "sts_spearman": self._sts(model, precision) if self.sts else None,
            "reference_sts_spearman": self.sts_spearman,
            "texts": len(self.set["texts"]),
        }
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the variant (GGUF or folder)")
    ap.add_argument("--reference", required=True, help="the F32 reference (folder or F32 GGUF)")
    ap.add_argument("--texts", default=str(DEFAULT_TEXTS))
    ap.add_argument("--sts", default=None, help=f"STS-B dev.tsv (sha256 {STSB_DEV_SHA256[:12]}...); "
                                                  f"default {DEFAULT_STS.relative_to(ROOT)} when present")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    sts = args.sts or (str(DEFAULT_STS) if DEFAULT_STS.exists() else None)
    text_set = json.loads(pathlib.Path(args.texts).read_text(encoding="utf-8"))
    ref = Reference(args.reference, text_set, sts, threads=args.threads)
    res = ref.evaluate(args.model)
    res["model"] = args.model
    res["reference"] = args.reference
    print(json.dumps(res, indent=1))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
