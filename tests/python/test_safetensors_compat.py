"""safetensors compatibility with the `safetensors` PyPI package (Hugging Face's
reference implementation, Rust core), an oracle we did not write.

1. safetensors.numpy.save_file writes files (every numpy dtype, scalars,
   zero-sized tensors, metadata, a sharded folder with an index);
   `gembed inspect --json` must report the same names, dtypes, shapes (and the
   reversed ggml `ne`), and its offsets must point at exactly the bytes numpy
   wrote.
2. gembed's SafetensorsWriter writes a file (the `test_safetensors` gtest
   binary's SafetensorsCompat.WriteSampleForPython case, with a JSON manifest
   of what it gave the writer); the reference must accept it and read back
   the same metadata, names, dtypes, shapes and bytes (BF16 included).
3. Damaged files: where the reference rejects a file, gembed must reject it
   too (and the reverse for valid edge cases).
4. The real EmbeddingGemma folder, when fetched (models/embeddinggemma-300m or
   GEMBED_REAL_MODEL_DIR): gembed's tensor table equals the reference's.
"""
import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from conftest import REPO, gembed_bin  # noqa: E402

# numpy dtype -> safetensors dtype name.
NP_TO_ST = {
    np.float64: "F64", np.float32: "F32", np.float16: "F16",
    np.int64: "I64", np.int32: "I32", np.int16: "I16", np.int8: "I8",
    np.uint64: "U64", np.uint32: "U32", np.uint16: "U16", np.uint8: "U8", np.bool_: "BOOL",
}


def inspect_json(gembed, path):
    r = subprocess.run([str(gembed), "inspect", str(path), "--json"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def inspect_fails(gembed, path):
    r = subprocess.run([str(gembed), "inspect", str(path)], capture_output=True, text=True,
                       timeout=60)
    return r.returncode == 1 and r.stdout == "" and r.stderr.startswith("gembed inspect: ")


def sample_arrays():
    rng = np.random.default_rng(5)
    arrays = {
        "model.embed_tokens.weight": rng.standard_normal((7, 4)).astype(np.float32),
        "layers.0.mlp.down_proj.weight": rng.standard_normal((3, 5)).astype(np.float32),
        "norm.weight": rng.standard_normal(5).astype(np.float32),
        "half": rng.standard_normal((2, 3, 4)).astype(np.float16),
        "f64": rng.standard_normal((2, 2)).astype(np.float64),
        "scalar": np.array(3.5, dtype=np.float32),
        "zero_sized": np.zeros((0, 3), dtype=np.float32),
        "ids": np.array([0, -1, 2**40], dtype=np.int64),
        "u8": np.arange(10, dtype=np.uint8).reshape(2, 5),
        "mask": np.array([True, False, True]),
        "rank5": np.arange(32, dtype=np.float32).reshape(1, 2, 2, 2, 4),
        "unicode \u2581 name \u00e9": np.array([1, 2], dtype=np.int16),
    }
    for t in (np.int32, np.int8, np.uint16, np.uint32, np.uint64):
        arrays[f"dtype_{np.dtype(t).name}"] = (np.arange(6) % 100).astype(t).reshape(3, 2)
    return arrays


def check_against_numpy(j, path_of_shard, arrays):
    names = [t["name"] for t in j["tensors"]]
    assert sorted(names) == sorted(arrays), "gembed must list exactly the tensors numpy wrote"
    assert names == sorted(names), "inspect lists tensors sorted by name"
    for t in j["tensors"]:
        a = arrays[t["name"]]
        assert t["type"] == NP_TO_ST[a.dtype.type], t["name"]
        assert t["shape"] == list(a.shape), t["name"]
        assert t["ne"] == list(reversed(a.shape)), t["name"]
        assert t["nbytes"] == a.nbytes, t["name"]
        with open(path_of_shard(t["shard"]), "rb") as f:
            f.seek(t["offset"])
            got = f.read(t["nbytes"])
        assert got == np.ascontiguousarray(a).tobytes(), f"bytes of {t['name']}"
    params = sum(int(np.prod(a.shape)) for a in arrays.values())
    assert j["totals"]["parameters"] == params
    assert j["totals"]["tensor_bytes"] == sum(a.nbytes for a in arrays.values())


# ---------------------------------------------------------------------------
# 1. the reference writes, gembed reads


def test_gembed_reads_reference_file(gembed, tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "ref.safetensors"
    save_file(arrays, str(path), metadata={"format": "pt", "note": "caf\u00e9"})
    j = inspect_json(gembed, path)
    assert j["format"] == "safetensors"
    assert len(j["shards"]) == 1
    shard = j["shards"][0]
    assert shard["metadata"] == {"format": "pt", "note": "caf\u00e9"}
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert shard["header_bytes"] == header_len
    assert shard["data_offset"] == 8 + header_len
    assert shard["file_size"] == path.stat().st_size
    check_against_numpy(j, lambda i: path, arrays)


def test_gembed_reads_reference_sharded_folder(gembed, tmp_path):
    arrays = sample_arrays()
    names = sorted(arrays)
    shards = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, members in shards.items():
        save_file({n: arrays[n] for n in members}, str(tmp_path / shard), metadata={"format": "pt"})
        weight_map.update({n: shard for n in members})
    total = sum(a.nbytes for a in arrays.values())
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    for target in (tmp_path, tmp_path / "model.safetensors.index.json"):
        j = inspect_json(gembed, target)
        assert len(j["shards"]) == 2, "each shard opened once"
        assert j["index_metadata"] == {"total_size": str(total)}
        shard_files = [pathlib.Path(s["file"]) for s in j["shards"]]
        for t in j["tensors"]:
            assert shard_files[t["shard"]].name == weight_map[t["name"]], t["name"]
        check_against_numpy(j, lambda i: shard_files[i], arrays)


# ---------------------------------------------------------------------------
# 2. gembed writes, the reference reads


@pytest.fixture(scope="module")
def gembed_sample(tmp_path_factory):
    test_bin = gembed_bin().parent / "test_safetensors"
    if not test_bin.exists():
        pytest.skip(f"{test_bin} not built (GEMBED_BUILD_TESTS=OFF?)")
    out = tmp_path_factory.mktemp("gembed_st_sample")
    env = dict(os.environ, GEMBED_SAFETENSORS_SAMPLE_DIR=str(out))
    r = subprocess.run([str(test_bin), "--gtest_filter=SafetensorsCompat.WriteSampleForPython"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "sample.safetensors").exists(), r.stdout
    return out / "sample.safetensors", json.loads((out / "sample.json").read_text())


def test_reference_reads_gembed_file(gembed_sample):
    path, manifest = gembed_sample
    # deserialize() validates the whole file (header, offsets, coverage) and
    # returns raw bytes for every dtype, BF16 included.
    got = dict(safetensors.deserialize(path.read_bytes()))
    assert sorted(got) == sorted(manifest["tensors"])
    for name, want in manifest["tensors"].items():
        t = got[name]
        assert t["dtype"] == want["dtype"], name
        assert list(t["shape"]) == want["shape"], name
        assert bytes(t["data"]) == bytes.fromhex(want["hex"]), name
    with safe_open(str(path), framework="np") as f:
        assert f.metadata() == manifest["metadata"]
        for name, want in manifest["tensors"].items():
            if want["dtype"] == "BF16":
                continue  # numpy has no bfloat16; checked through deserialize above
            a = f.get_tensor(name)
            assert list(a.shape) == want["shape"], name
            assert np.ascontiguousarray(a).tobytes() == bytes.fromhex(want["hex"]), name


def test_gembed_file_is_laid_out_like_the_reference(gembed_sample, tmp_path):
    """Header padded to 8 bytes and every tensor aligned to its element size."""
    path, _ = gembed_sample
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(data[8:8 + n])
    sizes = {"F64": 8, "I64": 8, "F32": 4, "F16": 2, "BF16": 2, "I8": 1, "U8": 1}
    for name, e in header.items():
        if name != "__metadata__":
            assert e["data_offsets"][0] % sizes[e["dtype"]] == 0, name


# ---------------------------------------------------------------------------
# 3. damaged files: gembed agrees with the reference


def reference_accepts(data):
    try:
        safetensors.deserialize(data)
        return True
    except Exception:  # SafetensorError, or a deserialisation error from the Rust core
        return False


def raw(header, data=b""):
    h = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(h)) + h + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


CASES = {
    # name: (bytes, valid?)
    "valid_two_tensors": (raw({"a": entry("F32", [2], 0, 8), "b": entry("U8", [3], 8, 11)}, bytes(11)), True),
    "valid_scalar_and_zero_sized": (raw({"s": entry("F32", [], 0, 4), "z": entry("F16", [0, 5], 4, 4)},
                                        bytes(4)), True),
    "valid_metadata": (raw({"__metadata__": {"format": "pt"}, "a": entry("I8", [1], 0, 1)}, b"\x05"), True),
    "valid_padded_header": (raw(json.dumps({"a": entry("U8", [1], 0, 1)}).encode() + b"     ", b"\x01"), True),
    "trailing_byte": (raw({"a": entry("F32", [2], 0, 8)}, bytes(9)), False),
    "truncated_data": (raw({"a": entry("F32", [2], 0, 8)}, bytes(7)), False),
    "size_mismatch": (raw({"a": entry("F32", [3], 0, 8)}, bytes(8)), False),
    "end_before_begin": (raw({"a": entry("U8", [0], 4, 0)}, bytes(4)), False),
    "hole": (raw({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 4, 6)}, bytes(6)), False),
    "overlap": (raw({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)}, bytes(6)), False),
    "unknown_dtype": (raw({"a": entry("Q8_0", [1], 0, 1)}, bytes(1)), False),
    "negative_dim": (raw({"a": entry("U8", [-1], 0, 0)}), False),
    "three_offsets": (raw({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 1]}}, bytes(1)), False),
    "missing_shape": (raw({"a": {"dtype": "U8", "data_offsets": [0, 1]}}, bytes(1)), False),
    "metadata_not_string": (raw({"__metadata__": {"n": 1}}), False),
    "bad_json": (raw(b'{"a": {'), False),
    "not_an_object": (raw(b"[]"), False),
    "header_past_end": (struct.pack("<Q", 100) + b"{}", False),
    "short_file": (b"\x02\x00\x00", False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_files_agree_with_reference(gembed, tmp_path, case):
    data, valid = CASES[case]
    assert reference_accepts(data) == valid, "the case table must match the reference"
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(data)
    if valid:
        inspect_json(gembed, path)
    else:
        assert inspect_fails(gembed, path)


def test_missing_shard_is_an_error(gembed, tmp_path):
    save_file({"a": np.zeros(2, np.float32)}, str(tmp_path / "s1.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}))
    r = subprocess.run([str(gembed), "inspect", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "s2.safetensors" in r.stderr


# ---------------------------------------------------------------------------
# 4. the real checkpoint, when present


def real_model_dir():
    return pathlib.Path(os.environ.get("GEMBED_REAL_MODEL_DIR", REPO / "models" / "embeddinggemma-300m"))


@pytest.mark.parametrize("sub", ["", "2_Dense", "3_Dense"])
def test_real_model_tensor_table_matches_reference(gembed, sub):
    d = real_model_dir() / sub
    path = d / "model.safetensors"
    if not path.exists():
        pytest.skip(f"{path} not found (scripts/fetch_embeddinggemma.py fetches it)")
    j = inspect_json(gembed, d)
    with safe_open(str(path), framework="np") as f:
        names = sorted(f.keys())
        assert [t["name"] for t in j["tensors"]] == names
        for t in j["tensors"]:
            sl = f.get_slice(t["name"])
            assert t["type"] == sl.get_dtype(), t["name"]
            assert t["shape"] == list(sl.get_shape()), t["name"]
        # Spot-check the bytes of the smallest tensor through gembed's offset.
        t = min(j["tensors"], key=lambda t: t["nbytes"])
        with open(path, "rb") as raw_f:
            raw_f.seek(t["offset"])
            assert raw_f.read(t["nbytes"]) == f.get_tensor(t["name"]).tobytes()
    if sub == "":
        assert j["totals"]["tensors"] == 314
        assert j["totals"]["parameters"] == 302_863_104
