"""The CLI never aborts, hangs or silently does the wrong thing on hostile input:
absurd --threads / --batch / --grid-budget values, endless or huge input, a model
path that is not UTF-8, FIFOs where files are expected, a folder as --input, a
GGUF whose block_count hides layers, and output paths that are devices or
symbolic links. Every case exits 1 (2 for a usage error) with a message naming
the problem; none is timing-dependent, and each run is bounded by a timeout that
only a hang would reach. Runs on a tiny synthetic Q8_0 model (6 layers, n_embd 128).
"""
from __future__ import annotations

import json
import os
import pathlib
import resource
import shutil
import stat
import struct
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 120  # seconds; every command here finishes in well under a few


def run(cmd, stdin: bytes = b"", check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([os.fsencode(c) if isinstance(c, (bytes, pathlib.Path)) else str(c) for c in cmd],
                       input=stdin, capture_output=True, timeout=TIMEOUT, check=False, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


def fails(r: subprocess.CompletedProcess, message: str, code: int = 1) -> str:
    err = r.stderr.decode(errors="replace")
    assert r.returncode == code, (r.returncode, err)
    assert message in err, err
    return err


@pytest.fixture(scope="module")
def model(gembed, tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("hardening") / "tiny-q8_0.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny",
         "--type", "q8_0", "--seed", "11"])
    return path


def max_threads() -> int:
    return min(4 * (os.cpu_count() or 1), 1024)


# --- aborts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", ["50000", "2147483647", "10000", "99999999999999999999"])
def test_threads_above_the_bound_are_a_usage_error(gembed, model, tokenizer_dir, tmp_path, threads):
    limit = f"at most {max_threads()}"
    for cmd in (["embed", "--model", model], ["bench", "--model", model, "--tokens", "4"],
                ["synth", "-o", tmp_path / "x.gguf", "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny"],
                ["convert", tmp_path, "-o", tmp_path / "y.gguf"]):
        r = run([gembed, *cmd, "--threads", threads], b"hello\n", check=False)
        err = fails(r, f"--threads: ", code=2)
        assert "threads is too many" in err and limit in err, err
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "y.gguf").exists()


def test_threads_at_the_bound_still_work(gembed, model):
    r = run([gembed, "embed", "--model", model, "--threads", str(max_threads())], b"hello\n")
    assert len(r.stdout.splitlines()) == 1


def test_bench_grid_budget_zero(gembed, model):
    for budget in ("0", "-5", "11", "nan"):
        r = run([gembed, "bench", "--model", model, "--grid-budget", budget], check=False)
        fails(r, "--grid-budget must be a number of tokens >= 12 (the smallest grid cell, 12 tokens x batch 1)")


def test_bench_huge_batch(gembed, model):
    for batch in ("2000000000", "65537"):
        r = run([gembed, "bench", "--model", model, "--tokens", "8", "--batch", batch], check=False)
        fails(r, "--batch must be in [1, 65536]")
    r = run([gembed, "bench", "--model", model, "--tokens", "2048", "--batch", "65536"], check=False)
    fails(r, "--tokens 2048 x --batch 65536 is more than 16777216 tokens per call")
    r = run([gembed, "bench", "--model", model, "--tokens", "8", "--repeat", "2000000000"], check=False)
    fails(r, "--repeat must be in [0, 1000000]")


def test_bench_json_with_a_model_path_that_is_not_utf8(gembed, model, tmp_path):
    odd = os.fsencode(tmp_path) + b"/m\xff\xfe.gguf"
    os.symlink(model, odd)
    r = run([gembed, "bench", "--model", odd, "--json", "--tokens", "4", "--repeat", "1"])
    j = json.loads(r.stdout)
    assert j["model"].endswith("/m\ufffd\ufffd.gguf")  # invalid bytes replaced, not an exception
    assert j["tokens"] == 4


def test_input_dev_zero_stops_at_the_per_text_limit(gembed, model):
    r = run([gembed, "embed", "--model", model, "--input", "/dev/zero"], check=False)
    fails(r, "gembed embed: --input '/dev/zero': line 1 is longer than 1048576 bytes (the limit for one text)")
    r = run([gembed, "bench", "--model", model, "--input", "/dev/zero"], check=False)
    fails(r, "gembed bench: --input '/dev/zero': line 1 is longer than 1048576 bytes")


def test_yes_piped_into_embed_streams_with_bounded_memory(gembed, model):
    """An endless stream of lines is a corpus: vectors come out as it is read and
    memory stays flat (it used to be read whole, ending in bad_alloc)."""
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    p = subprocess.Popen([str(gembed), "embed", "--model", str(model), "--threads", "1", "--window", "500"],
                         stdin=yes.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yes.stdout.close()
    rss = []
    try:
        seen = 0
        while seen < 6000:  # 12 windows
            line = p.stdout.readline()
            assert line, p.stderr.read().decode(errors="replace")
            seen += 1
            if seen % 1000 == 0:
                with open(f"/proc/{p.pid}/status") as f:
                    rss.append(next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")))
        assert json.loads(line) and len(json.loads(line)) == 128
    finally:
        p.kill()
        p.wait()
        yes.kill()
        yes.wait()
    # After the first windows, resident memory does not grow with the lines read.
    assert max(rss[1:]) - rss[1] < 16 * 1024, rss


def limit_memory(mib: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))
    return apply


def test_one_30_mb_line_under_a_memory_limit(gembed, model):
    # The same limit lets an ordinary run through, so the refusal is the reader's.
    ok = run([gembed, "embed", "--model", model, "--threads", "1"], b"hello\n", preexec_fn=limit_memory(512))
    assert len(ok.stdout.splitlines()) == 1
    big = b"a" * (30 << 20) + b"\n"
    r = run([gembed, "embed", "--model", model, "--threads", "1"], big, check=False, preexec_fn=limit_memory(512))
    fails(r, "gembed embed: standard input: line 1 is longer than 1048576 bytes (the limit for one text)")
    # Just under the limit is still a text (truncated to the context, with a warning).
    near = b"word " * ((1 << 20) // 5) + b"\n"
    r = run([gembed, "embed", "--model", model, "--threads", "1"], near, preexec_fn=limit_memory(512))
    assert len(r.stdout.splitlines()) == 1 and b"truncated" in r.stderr


def test_out_of_memory_is_a_message_not_an_abort(gembed, model):
    """Under shrinking address-space limits every run ends with exit 0 or 1 and a
    message: allocation failures inside the engine are reported where they happen,
    and whatever still throws std::bad_alloc reaches the top-level handler."""
    seen_bad_alloc = False
    for mib in range(20, 210, 10):
        r = run([gembed, "embed", "--model", model, "--threads", "1"], b"hello\n", check=False,
                preexec_fn=limit_memory(mib))
        err = r.stderr.decode(errors="replace")
        assert r.returncode in (0, 1), (mib, r.returncode, err)  # never a signal (abort: -6, segfault: -11)
        if r.returncode == 1:
            assert err.startswith("gembed"), (mib, err)
        seen_bad_alloc |= "gembed: error: out of memory (std::bad_alloc)" in err
    assert seen_bad_alloc, "no limit in 20..200 MiB reached the top-level handler"


# --- hangs ----------------------------------------------------------------------------------------

def test_fifo_as_model_or_tokenizer_is_refused(gembed, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for cmd in (["embed", "--model", fifo], ["bench", "--model", fifo, "--tokens", "4"], ["inspect", fifo],
                ["tokenize", "--model", fifo], ["tokenize", "--tokenizer", fifo]):
        r = run([gembed, *cmd], b"hello\n", check=False)
        fails(r, f"{fifo}: not a regular file (a FIFO)")


@pytest.fixture(scope="module")
def hf_folder(tokenizer_dir, tmp_path_factory):
    sys.path.insert(0, str(REPO / "scripts"))
    pytest.importorskip("safetensors")
    out = tmp_path_factory.mktemp("hardening_hf") / "folder"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_hf_fixture.py"), str(out), "--tokenizer-dir",
                    str(tokenizer_dir)], check=True, capture_output=True, timeout=600)
    return out


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors", "modules.json",
                                  "config_sentence_transformers.json"])
def test_fifo_inside_a_model_folder_is_refused(gembed, hf_folder, tmp_path, name):
    folder = tmp_path / "m"
    shutil.copytree(hf_folder, folder)
    (folder / name).unlink()
    os.mkfifo(folder / name)
    r = run([gembed, "embed", "--model", folder], b"hello\n", check=False)
    fails(r, f"{folder / name}: not a regular file (a FIFO)")
    r = run([gembed, "convert", folder, "-o", tmp_path / "out.gguf"], check=False)
    fails(r, f"{folder / name}: not a regular file (a FIFO)")
    assert not (tmp_path / "out.gguf").exists()


# --- silent wrong results -------------------------------------------------------------------------

def test_input_directory_is_an_error(gembed, model, tmp_path):
    r = run([gembed, "embed", "--model", model, "--input", tmp_path], check=False)
    fails(r, f"gembed embed: --input '{tmp_path}' is a directory, not a file")
    assert r.stdout == b""
    r = run([gembed, "bench", "--model", model, "--input", tmp_path], check=False)
    fails(r, "is a directory, not a file")


def set_u32_key(path: pathlib.Path, key: str, value: int) -> None:
    """Rewrites the value of a u32 metadata key in place (GGUF: u64 length, key, u32 type 4, value)."""
    data = bytearray(path.read_bytes())
    needle = struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", 4)
    at = data.find(needle)
    assert at > 0 and data.find(needle, at + 1) < 0
    data[at + len(needle):at + len(needle) + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(data))


def test_block_count_lower_than_the_layers_is_refused(gembed, tokenizer_dir, tmp_path):
    path = tmp_path / "seven.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny", "--layers", "7",
         "--type", "q8_0"])
    assert len(run([gembed, "embed", "--model", path], b"hello\n").stdout.splitlines()) == 1
    set_u32_key(path, "gemma-embedding.block_count", 6)
    r = run([gembed, "embed", "--model", path], b"hello\n", check=False)
    fails(r, "corrupt file: " + str(path) + ": tensor blk.6.attn_norm.weight belongs to layer 6, but "
             "gemma-embedding.block_count is 6: the file has more layers than it declares")
    assert r.stdout == b""
    set_u32_key(path, "gemma-embedding.block_count", 8)
    r = run([gembed, "embed", "--model", path], b"hello\n", check=False)
    fails(r, "gemma-embedding.block_count is 8 but the file has no tensors for layer 7 (blk.7.*)")


# --- file safety ----------------------------------------------------------------------------------

def test_outputs_refuse_devices_links_fifos_and_folders(gembed, model, tokenizer_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    targets = {link: "a symbolic link", fifo: "a FIFO", tmp_path: "a directory", pathlib.Path("/dev/null"):
               "a character device"}
    tok = tokenizer_dir / "tokenizer.json"
    for target, kind in targets.items():
        msg = f"{target}: exists and is not a regular file ({kind}); refusing to replace it"
        fails(run([gembed, "embed", "--model", model, "--output", target], b"hello\n", check=False),
              "gembed embed: --output: " + msg)
        fails(run([gembed, "synth", "-o", target, "--tokenizer", tok, "--tiny"], check=False), msg)
        fails(run([gembed, "tokenize", "--tokenizer", tok, "--write-gguf-vocab", target], check=False), msg)
    assert victim.read_bytes() == b"precious" and link.is_symlink()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_device_node_is_not_replaced(gembed, model, tokenizer_dir, tmp_path):
    # `-o /dev/null` as root used to rename the output over the device node; a
    # private node in tmp_path shows it without risking the real one.
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    r = run([gembed, "synth", "-o", node, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny"], check=False)
    fails(r, f"{node}: exists and is not a regular file (a character device)")
    r = run([gembed, "embed", "--model", model, "--output", node], b"hello\n", check=False)
    fails(r, "(a character device); refusing to replace it")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_planted_symlink_at_the_temp_name_is_not_followed(gembed, model, tokenizer_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    for out, cmd in ((tmp_path / "v.jsonl", ["embed", "--model", model, "--output"]),
                     (tmp_path / "s.gguf", ["synth", "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny", "-o"])):
        planted = pathlib.Path(str(out) + ".tmp")
        planted.symlink_to(victim)
        run([gembed, *cmd, out], b"hello\n")
        assert victim.read_bytes() == b"precious"
        assert planted.is_symlink() and out.is_file() and not out.is_symlink()
    assert len(json.loads((tmp_path / "v.jsonl").read_text().splitlines()[0])) == 128
    assert (tmp_path / "s.gguf").read_bytes()[:4] == b"GGUF"
    # Nothing else was left next to the outputs.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.gguf", "s.gguf.tmp", "v.jsonl", "v.jsonl.tmp", "victim"]


def test_output_replaces_a_regular_file_atomically(gembed, model, tmp_path):
    out = tmp_path / "v.jsonl"
    out.write_text("old\n")
    os.chmod(out, 0o640)
    run([gembed, "embed", "--model", model, "--output", out], b"hello\nworld\n")
    assert len(out.read_text().splitlines()) == 2
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["v.jsonl"]


# --- JSON nesting ---------------------------------------------------------------------------------

def test_deeply_nested_jsonl_line_is_an_error(gembed, model):
    deep = b"[" * 100000 + b"]" * 100000 + b"\n"
    r = run([gembed, "embed", "--model", model, "--jsonl"], b'"ok"\n' + deep, check=False)
    fails(r, "gembed embed: standard input: line 2: not valid JSON (JSON nesting deeper than 64 levels (at byte 64))")
    r = run([gembed, "tokenize", "--model", model, "--jsonl"], deep, check=False)
    fails(r, "line 1: expected a JSON string (--jsonl)")
    r = run([gembed, "tokenize", "--model", model, "--decode"], deep, check=False)
    fails(r, "line 1: expected a JSON array of token ids")


def test_deeply_nested_folder_config_is_an_error(gembed, hf_folder, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(hf_folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    text = json.dumps(cfg)[:-1] + ', "rope_scaling": ' + "[" * 200000 + "]" * 200000 + "}"
    (folder / "config.json").write_text(text)
    r = run([gembed, "embed", "--model", folder], b"hello\n", check=False)
    fails(r, "config.json: JSON nesting deeper than 64 levels")
