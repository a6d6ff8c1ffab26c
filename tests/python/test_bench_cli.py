"""`gembed bench` as scripts/bench_vs_llamacpp.py and other tools use it: the JSON
interface (fields, internal consistency, exact token counts), the grid, --input,
--precision, --profile, GEMBED_PROFILE=1, and errors. Runs on a tiny synthetic
Q8_0 model (6 layers, n_embd 128); no timing is asserted, only consistency."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(cmd, check: bool = True, env=None, stdin: bytes = b"") -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=600, check=False, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


@pytest.fixture(scope="module")
def model(gembed, tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench_cli") / "tiny-q8_0.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny",
         "--type", "q8_0", "--seed", "5"])
    return path


def bench(gembed, model, *args) -> dict:
    r = run([gembed, "bench", "--model", model, "--json", *args])
    lines = r.stdout.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


REQUIRED = ["p50_ms", "p99_ms", "mean_ms", "min_ms", "max_ms", "texts_per_s", "tokens_per_s", "threads", "isa",
            "tokens", "batch", "repeat", "peak_rss_mib", "load_ms", "open_ms", "startup_ms", "model", "model_type",
            "precision", "tokens_per_call", "first_ms", "packed_mib"]


@pytest.mark.parametrize("tokens,batch,threads", [(12, 1, 1), (2, 3, 2), (130, 4, 2)])
def test_single_case_json_is_consistent(gembed, model, tokens, batch, threads):
    j = bench(gembed, model, "--tokens", tokens, "--batch", batch, "--threads", threads, "--repeat", 4)
    for k in REQUIRED:
        assert k in j, k
    assert (j["tokens"], j["batch"], j["threads"], j["repeat"]) == (tokens, batch, threads, 4)
    # Exactly N ids per synthetic text (BOS..EOS included), B texts per call.
    assert j["tokens_per_call"] == tokens * batch
    assert 0 < j["min_ms"] <= j["p50_ms"] <= j["p99_ms"] <= j["max_ms"]
    assert j["min_ms"] <= j["mean_ms"] <= j["max_ms"]
    assert j["texts_per_s"] == pytest.approx(batch * 1000.0 / j["mean_ms"], rel=1e-9)
    assert j["tokens_per_s"] == pytest.approx(tokens * batch * 1000.0 / j["mean_ms"], rel=1e-9)
    assert j["load_ms"] == pytest.approx(j["open_ms"] + j["first_ms"], rel=1e-9)
    assert j["startup_ms"] >= j["load_ms"]
    assert j["peak_rss_mib"] > 1
    assert j["model_type"] == "Q8_0" and j["precision"] == "fast"
    assert j["isa"] in ("generic", "avx2", "avx512vnni")
    assert j["model"] == str(model)


def test_peak_rss_is_the_process_own_not_its_parents(gembed, model):
    """peak_rss_mib is the bench process's own peak. Linux's ru_maxrss carries a parent's high-water mark
    across fork + exec, so a parent that once held 600 MiB would make the tiny model report >= 600 MiB."""
    parent = (
        "import subprocess, sys\n"
        "big = bytearray(600 << 20)\n"
        "big[::4096] = b'x' * len(big[::4096])\n"  # touch every page: 600 MiB resident
        "del big\n"
        "sys.stdout.write(subprocess.run(sys.argv[1:], capture_output=True, check=True, text=True).stdout)\n")
    r = run([sys.executable, "-c", parent, gembed, "bench", "--model", model, "--json", "--tokens", 12,
             "--repeat", 2])
    j = json.loads(r.stdout.decode().strip().splitlines()[-1])
    alone = bench(gembed, model, "--tokens", 12, "--repeat", 2)["peak_rss_mib"]
    assert 1 < j["peak_rss_mib"] < 300, j["peak_rss_mib"]
    assert j["peak_rss_mib"] == pytest.approx(alone, rel=0.25, abs=8)


def test_text_table_without_json(gembed, model):
    out = run([gembed, "bench", "--model", model, "--tokens", 16, "--repeat", 2]).stdout.decode()
    assert "p50" in out and "tokens/s" in out
    assert "process start -> first embedding" in out and "peak RSS" in out
    # Without --threads the row names the pool's real size (all cores), as --json does.
    j = bench(gembed, model, "--tokens", 16, "--repeat", 1)
    assert j["threads"] == os.cpu_count()
    assert f"threads {j['threads']}  p50" in out, out


def test_precision_high_widens_the_weights(gembed, model):
    fast = bench(gembed, model, "--tokens", 8, "--repeat", 2)
    high = bench(gembed, model, "--tokens", 8, "--repeat", 2, "--precision", "high")
    assert high["precision"] == "high"
    # Q8_0 (34 bytes / 32 weights) widened to fp32 (4 bytes / weight).
    assert high["packed_mib"] / fast["packed_mib"] == pytest.approx(4 * 32 / 34, rel=0.01)


def test_profile_lists_ops_of_the_timed_calls(gembed, model):
    j = bench(gembed, model, "--tokens", 40, "--batch", 2, "--repeat", 3, "--profile")
    p = j["profile"]
    assert p["passes"] == 3  # one packed forward pass per call
    assert p["tokens"] == 3 * 80
    names = [o["op"] for o in p["ops"]]
    assert any(n.startswith("matmul q8 q/k/v") for n in names), names
    assert any(n.startswith("attention") for n in names), names
    assert any(n.startswith("matmul q8 ffn_down") for n in names), names
    total = sum(o["pct"] for o in p["ops"])
    assert 50 < total <= 100.5, total
    assert all(o["ms_per_pass"] >= 0 for o in p["ops"])


def test_grid_runs_both_thread_counts_and_lists_skipped_cells(gembed, model):
    j = bench(gembed, model, "--repeat", 2, "--grid-budget", 1024)
    cells = {(c["tokens"], c["batch"], c["threads"]) for c in j["grid"]}
    skipped = {(s["tokens"], s["batch"], s["threads"]) for s in j["skipped"]}
    for threads in (1, 2):
        for n in (12, 128, 512, 2048):
            for b in (1, 8, 64):
                key = (n, b, threads)
                assert (key in cells) != (key in skipped), key  # each cell run or skipped, never both
                assert (key in skipped) == (n * b > 1024), key
    for c in j["grid"]:
        assert c["tokens_per_call"] == c["tokens"] * c["batch"]
    assert all("budget" in s["reason"] for s in j["skipped"])


def test_input_file_counts_its_tokens(gembed, model, tmp_path):
    # The third text ends in a space: stripped by default (as `gembed embed` does), kept with --no-strip.
    texts = ["hello world", "", "The quick brown fox jumps over the lazy dog. " * 20, "zebra"]
    f = tmp_path / "texts.txt"
    f.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    counts = {}
    for strip in ([], ["--strip"]):
        ids = run([gembed, "tokenize", "--model", model, "--add-special", *strip], stdin=f.read_bytes()).stdout
        counts[bool(strip)] = sum(len(json.loads(line)) for line in ids.decode().splitlines() if line.strip())
    assert counts[True] < counts[False]
    j = bench(gembed, model, "--input", f, "--repeat", 2)
    assert j["batch"] == len(texts)
    assert j["tokens_per_call"] == counts[True]
    j = bench(gembed, model, "--input", f, "--repeat", 2, "--no-strip")
    assert j["tokens_per_call"] == counts[False]


def test_gembed_profile_env_prints_a_table(gembed, model):
    env = dict(os.environ, GEMBED_PROFILE="1")
    r = run([gembed, "embed", "--model", model], env=env, stdin=b"hello\nworld\n")
    err = r.stderr.decode()
    assert "gembed profile" in err and "matmul q8 q/k/v" in err and "(between ops)" in err
    lines = err.splitlines()
    assert "\\n" not in err  # rows are real lines
    assert any(line.startswith("matmul q8 q/k/v") for line in lines)
    assert any(line.startswith("(between ops)") for line in lines)
    assert len(r.stdout.decode().splitlines()) == 2  # the vectors are still printed


@pytest.mark.parametrize("args,message", [
    (["--tokens", "8", "--precision", "medium"], "unknown --precision"),
    (["--tokens", "1"], "--tokens must be in"),
    (["--tokens", "5000"], "--tokens must be in"),
    (["--tokens", "8", "--batch", "0"], "--batch must be"),
    (["--tokens", "8", "--input", "x.txt"], "cannot be used together"),
    (["--input", "/nonexistent/texts.txt"], "cannot open --input"),
])
def test_bad_arguments_fail_cleanly(gembed, model, args, message):
    r = run([gembed, "bench", "--model", model, *args], check=False)
    assert r.returncode == 1
    assert message in r.stderr.decode()


def test_missing_model_fails_cleanly(gembed, tmp_path):
    r = run([gembed, "bench", "--model", tmp_path / "none.gguf", "--tokens", "8"], check=False)
    assert r.returncode == 1 and "gembed bench:" in r.stderr.decode()


# ---- --tune and --roofline ------------------------------------------------------


def test_tune_measures_shows_and_caches(gembed, tmp_path):
    env = dict(os.environ, GEMBED_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("GEMBED_TUNE", None)
    env.pop("GEMBED_GEMM_Q8", None)
    r = run([gembed, "bench", "--tune", "--json"], env=env)  # --model is not needed for --tune alone
    j = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert j["isa"] in ("generic", "avx2", "avx512vnni")
    names = [v["variant"] for v in j["variants"]]
    if j["isa"] == "generic":
        assert names == [] and j["source"] == "default"
        return
    assert len(names) >= 2 and len(set(names)) == len(names)
    assert j["gemm_q8_small"] in names and j["gemm_q8_large"] in names
    assert all(v["small_ms"] > 0 and v["large_ms"] > 0 for v in j["variants"])
    assert j["source"] == "measured"
    cache = tmp_path / "cache" / "tune"
    files = list(cache.iterdir())
    assert len(files) == 1 and (files[0].name.endswith(f"-{j['isa']}-v1.json")
                                or files[0].name.endswith(f"-{j['isa']}-amx-v1.json")), files
    saved = json.loads(files[0].read_text())
    assert (saved["gemm_q8_small"], saved["gemm_q8_large"]) == (j["gemm_q8_small"], j["gemm_q8_large"])
    # The text form says what was chosen and why.
    r = run([gembed, "bench", "--tune"], env=env)
    out = r.stdout.decode()
    assert "<- short inputs" in out and "<- long inputs" in out and "chosen:" in out, out


def host_has_amx_int8() -> bool:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return {"amx_tile", "amx_int8", "avx512_vnni"} <= set(flags)


def test_amx_variants_are_measured_only_on_request(gembed, tmp_path):
    """The tuner measures the AMX kernels only with GEMBED_AMX=1, and only on a host whose kernel offers
    AMX-INT8 (cached apart); GEMBED_GEMM_Q8 may name them where they can run."""
    base = dict(os.environ, GEMBED_CACHE_DIR=str(tmp_path / "cache"))
    for key in ("GEMBED_TUNE", "GEMBED_GEMM_Q8", "GEMBED_AMX"):
        base.pop(key, None)

    def tune(env):
        r = run([gembed, "bench", "--tune", "--json"], env=env)
        return json.loads(r.stdout.decode().strip().splitlines()[-1])

    plain, asked = tune(base), tune(dict(base, GEMBED_AMX="1"))
    assert not any(v["variant"].startswith("amx") for v in plain["variants"]), plain["variants"]
    expect_amx = asked["isa"] == "avx512vnni" and host_has_amx_int8()
    assert any(v["variant"].startswith("amx") for v in asked["variants"]) == expect_amx, (asked, expect_amx)
    files = sorted(f.name for f in (tmp_path / "cache" / "tune").iterdir())
    assert len(files) == (2 if expect_amx else 1), files
    if expect_amx:
        assert any(f.endswith("-amx-v1.json") for f in files), files


def test_bench_reports_the_kernels_it_ran(gembed, model, tmp_path):
    env = dict(os.environ, GEMBED_CACHE_DIR=str(tmp_path / "cache"), GEMBED_TUNE="off")
    r = run([gembed, "bench", "--model", model, "--tokens", 8, "--repeat", 1, "--json"], env=env)
    j = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert j["kernels"].startswith("gemm_q8 "), j["kernels"]
    assert j["kernels"].endswith("(off)") or j["kernels"].endswith("(default)"), j["kernels"]
    assert not (tmp_path / "cache").exists(), "GEMBED_TUNE=off writes no cache"


def test_roofline_is_consistent(gembed, model):
    j = bench(gembed, model, "--tokens", 16, "--batch", 4, "--repeat", 2, "--roofline")
    rl = j["roofline"]
    for k in ("gmacs", "weight_gbs", "pct_int8_peak", "pct_dram_peak", "limit_ms", "bound", "pct_of_limit"):
        assert k in rl, k
    peaks = j["peaks"]
    if peaks["int8_gmacs_per_core"] == 0:  # no AVX-512 VNNI on this host: nothing to compare with
        assert rl["pct_int8_peak"] == 0
        return
    assert peaks["dram_gbs"] > 0 and peaks["threads"] == j["threads"]
    assert rl["gmacs"] > 0 and rl["weight_gbs"] > 0 and rl["limit_ms"] > 0
    assert rl["bound"] in ("int8 compute", "weights from DRAM")
    # The limit is what the peaks allow, so the achieved share of it is the larger of the two shares.
    assert rl["pct_of_limit"] == pytest.approx(max(rl["pct_int8_peak"], rl["pct_dram_peak"]), rel=1e-6)
    assert 0 < rl["pct_of_limit"] < 150  # above 100% would mean a wrong peak or count (allowing for noise)
