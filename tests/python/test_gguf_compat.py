"""GGUF compatibility with llama.cpp's own gguf-py, an oracle we did not write.

1. gembed's GgufWriter writes a file (through the `test_gguf` gtest binary's
   GgufCompat.WriteSampleForPython case, which also writes a JSON manifest of
   what it *gave* the writer); gguf-py's GGUFReader must read back the same
   keys, types, values, tensor names, shapes, types and bytes.
2. gguf-py's GGUFWriter writes a file with every value type and F32/F16/BF16/
   Q8_0 tensors; `gembed inspect --json --all` must report the same.
3. `gembed inspect` on broken or missing files: reason on stderr, exit 1.
"""
import json
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter  # noqa: E402

from conftest import gembed_bin  # noqa: E402

# gembed's type names (GgufTypeName) for gguf-py's value types.
VT_NAME = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def same_number(type_name, got, want):
    """Equality at the stored precision (f32 values compared as float32)."""
    if type_name == "f32":
        return np.float32(got).tobytes() == np.float32(want).tobytes()
    if type_name == "f64":
        return np.float64(got).tobytes() == np.float64(want).tobytes()
    return got == want and type(got) is type(want)


def test_buffer_helpers_compare_at_precision():
    assert same_number("f32", 1e-6, float(np.float32(1e-6)))
    assert not same_number("f32", 1e-6, 1.1e-6)
    assert not same_number("f64", 0.0, -0.0)
    assert not same_number("u8", 1, True)


# ---------------------------------------------------------------------------
# 1. gembed writes, gguf-py reads


@pytest.fixture(scope="module")
def gembed_sample(tmp_path_factory):
    test_bin = gembed_bin().parent / "test_gguf"
    if not test_bin.exists():
        pytest.skip(f"{test_bin} not built (GEMBED_BUILD_TESTS=OFF?)")
    out = tmp_path_factory.mktemp("gembed_sample")
    env = dict(os.environ, GEMBED_GGUF_SAMPLE_DIR=str(out))
    r = subprocess.run([str(test_bin), "--gtest_filter=GgufCompat.WriteSampleForPython"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "sample.gguf").exists(), r.stdout
    manifest = json.loads((out / "sample.json").read_text())
    return out / "sample.gguf", manifest


def test_gguf_py_reads_gembed_metadata(gembed_sample):
    path, manifest = gembed_sample
    reader = GGUFReader(path)
    assert reader.fields["GGUF.version"].contents() == manifest["version"]
    assert reader.alignment == manifest["alignment"]
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert keys == list(manifest["metadata"]), "keys must be in insertion order"
    for key, want in manifest["metadata"].items():
        field = reader.fields[key]
        assert VT_NAME[field.types[0]] == want["type"], key
        got = field.contents()
        if want["type"] == "array":
            assert VT_NAME[field.types[-1]] == want["elem_type"], key
            assert len(got) == len(want["value"]), key
            for g, w in zip(got, want["value"]):
                assert same_number(want["elem_type"], g, w) if want["elem_type"] != "string" \
                    else g == w, (key, got, want["value"])
        elif want["type"] == "string":
            assert got == want["value"], key
        else:
            assert same_number(want["type"], got, want["value"]), (key, got, want["value"])


def test_gguf_py_reads_gembed_tensors(gembed_sample):
    path, manifest = gembed_sample
    reader = GGUFReader(path)
    assert [t.name for t in reader.tensors] == [t["name"] for t in manifest["tensors"]]
    for t, want in zip(reader.tensors, manifest["tensors"]):
        assert t.tensor_type.name == want["type"], t.name
        assert int(t.tensor_type) == want["ggml_type"], t.name
        assert t.shape.tolist() == want["shape"], t.name
        assert (t.data_offset - reader.data_offset) % manifest["alignment"] == 0, t.name
        assert t.n_bytes == len(want["hex"]) // 2, t.name
        assert t.data.tobytes().hex() == want["hex"], t.name


# ---------------------------------------------------------------------------
# 2. gguf-py writes, gembed inspect reads

ALIGNMENT = 64
# (key, gguf-py value type, value, array element type or None)
PY_METADATA = [
    ("test.u8", GGUFValueType.UINT8, 200, None),
    ("test.i8", GGUFValueType.INT8, -100, None),
    ("test.u16", GGUFValueType.UINT16, 60000, None),
    ("test.i16", GGUFValueType.INT16, -30000, None),
    ("test.u32", GGUFValueType.UINT32, 4_000_000_000, None),
    ("test.i32", GGUFValueType.INT32, -2_000_000_000, None),
    ("test.f32", GGUFValueType.FLOAT32, 1e-6, None),
    ("test.bool", GGUFValueType.BOOL, True, None),
    ("test.bool_false", GGUFValueType.BOOL, False, None),
    ("test.string", GGUFValueType.STRING, "h\u00e9llo \u2581 \U0001F600 \"q\" \\ \n", None),
    ("test.u64", GGUFValueType.UINT64, 2**64 - 1, None),
    ("test.i64", GGUFValueType.INT64, -(2**63), None),
    ("test.f64", GGUFValueType.FLOAT64, math.pi, None),
    ("test.arr_u8", GGUFValueType.ARRAY, [0, 7, 255], GGUFValueType.UINT8),
    ("test.arr_i8", GGUFValueType.ARRAY, [-128, 127], GGUFValueType.INT8),
    ("test.arr_u16", GGUFValueType.ARRAY, [1, 65535], GGUFValueType.UINT16),
    ("test.arr_i16", GGUFValueType.ARRAY, [-32768, 3], GGUFValueType.INT16),
    ("test.arr_u32", GGUFValueType.ARRAY, [4_294_967_295, 0], GGUFValueType.UINT32),
    ("test.arr_i32", GGUFValueType.ARRAY, list(range(-20, 20)), GGUFValueType.INT32),  # > 16: preview
    ("test.arr_f32", GGUFValueType.ARRAY, [0.1, -1000.0, 3.5], GGUFValueType.FLOAT32),
    ("test.arr_bool", GGUFValueType.ARRAY, [True, False], GGUFValueType.BOOL),
    ("test.arr_string", GGUFValueType.ARRAY, ["<pad>", "\u2581the", "a b"], GGUFValueType.STRING),
    ("test.arr_u64", GGUFValueType.ARRAY, [2**64 - 1], GGUFValueType.UINT64),
    ("test.arr_i64", GGUFValueType.ARRAY, [-(2**63), 5], GGUFValueType.INT64),
    ("test.arr_f64", GGUFValueType.ARRAY, [math.e, -0.5], GGUFValueType.FLOAT64),
]


def py_tensors():
    rng = np.random.default_rng(1234)
    f32 = rng.standard_normal((3, 64)).astype(np.float32)        # numpy shape = reversed ne
    f16 = rng.standard_normal((2, 2, 8)).astype(np.float16)
    bf16_src = rng.standard_normal((4, 32)).astype(np.float32)
    q8_src = rng.standard_normal((5, 96)).astype(np.float32)
    return [
        ("blk.0.f32.weight", f32, None, [64, 3], "F32"),
        ("blk.0.f16.weight", f16, None, [8, 2, 2], "F16"),
        ("blk.0.bf16.weight", gguf.quants.quantize(bf16_src, GGMLQuantizationType.BF16),
         GGMLQuantizationType.BF16, [32, 4], "BF16"),
        ("blk.0.q8_0.weight", gguf.quants.quantize(q8_src, GGMLQuantizationType.Q8_0),
         GGMLQuantizationType.Q8_0, [96, 5], "Q8_0"),
        ("blk.0.f32.bias", rng.standard_normal(7).astype(np.float32), None, [7], "F32"),
    ]


@pytest.fixture(scope="module")
def py_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf_py") / "py.gguf"
    w = GGUFWriter(str(path), "gembed-test")
    w.add_custom_alignment(ALIGNMENT)
    for key, vt, value, sub in PY_METADATA:
        w.add_key_value(key, value, vt, sub_type=sub)
    for name, data, raw_dtype, _, _ in py_tensors():
        w.add_tensor(name, data, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def inspect_json(gembed, path, *extra):
    r = subprocess.run([str(gembed), "inspect", str(path), "--json", *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_inspect_reads_gguf_py_metadata(gembed, py_file):
    j = inspect_json(gembed, py_file, "--all")
    assert j["version"] == 3
    assert j["alignment"] == ALIGNMENT
    assert j["file_size"] == py_file.stat().st_size
    md = j["metadata"]
    # gguf-py writes general.architecture and general.alignment itself.
    assert md["general.architecture"] == {"type": "string", "value": "gembed-test"}
    assert md["general.alignment"] == {"type": "u32", "value": ALIGNMENT}
    assert set(md) == {k for k, *_ in PY_METADATA} | {"general.architecture", "general.alignment"}
    for key, vt, value, sub in PY_METADATA:
        got = md[key]
        assert got["type"] == VT_NAME[vt], key
        if vt == GGUFValueType.ARRAY:
            assert got["elem_type"] == VT_NAME[sub], key
            assert got["length"] == len(value) and not got["truncated"], key
            for g, w in zip(got["values"], value, strict=True):
                ok = g == w if sub == GGUFValueType.STRING else same_number(VT_NAME[sub], g, w)
                assert ok, (key, g, w)
        elif vt == GGUFValueType.STRING:
            assert got["value"] == value
        else:
            assert same_number(VT_NAME[vt], got["value"], value), (key, got["value"], value)


def test_inspect_reads_gguf_py_tensors(gembed, py_file):
    j = inspect_json(gembed, py_file)
    reader = GGUFReader(py_file)
    want = py_tensors()
    assert j["data_offset"] == reader.data_offset
    assert [t["name"] for t in j["tensors"]] == [w[0] for w in want]
    for got, w, rt in zip(j["tensors"], want, reader.tensors, strict=True):
        name, data, _, shape, type_name = w
        assert got["type"] == type_name, name
        assert got["shape"] == shape, name
        assert got["nbytes"] == data.nbytes == rt.n_bytes, name
        assert got["offset"] == rt.data_offset - reader.data_offset, name
    params = sum(int(np.prod(w[3])) for w in want)
    assert j["totals"]["tensors"] == len(want)
    assert j["totals"]["parameters"] == params
    assert j["totals"]["tensor_bytes"] == sum(w[1].nbytes for w in want)
    assert j["totals"]["by_type"]["F32"]["tensors"] == 2
    assert j["totals"]["by_type"]["Q8_0"]["bytes"] == 5 * 3 * 34


def test_inspect_summarises_long_arrays(gembed, py_file):
    j = inspect_json(gembed, py_file)  # no --all: first 16 elements + length
    arr = j["metadata"]["test.arr_i32"]
    assert arr["length"] == 40 and arr["truncated"] is True
    assert arr["values"] == list(range(-20, -4))
    text = subprocess.run([str(gembed), "inspect", str(py_file)], capture_output=True, text=True,
                          timeout=60)
    assert text.returncode == 0, text.stderr
    assert '[3 strings: "<pad>", "\u2581the", "a b"]' in text.stdout
    assert "[40 i32: -20, -19, -18, -17, -16, -15, ...]" in text.stdout
    assert "blk.0.q8_0.weight" in text.stdout and "96 x 5" in text.stdout
    full = subprocess.run([str(gembed), "inspect", str(py_file), "--all"], capture_output=True,
                          text=True, timeout=60)
    assert "-20, -19" in full.stdout and ", 19]" in full.stdout


# ---------------------------------------------------------------------------
# 3. Broken and missing files


@pytest.mark.parametrize("case,content,word", [
    ("bad_magic", b"GGML" + bytes(60), "magic"),
    ("version1", b"GGUF" + (1).to_bytes(4, "little") + bytes(40), "version"),
    ("truncated", b"GGUF" + (3).to_bytes(4, "little") + bytes(3), "truncated"),
    ("empty", b"", "truncated"),
])
def test_inspect_broken_file(gembed, tmp_path, case, content, word):
    path = tmp_path / f"{case}.gguf"
    path.write_bytes(content)
    r = subprocess.run([str(gembed), "inspect", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith(f"gembed inspect: {path}: "), r.stderr
    assert word in r.stderr


def test_inspect_truncated_gguf_py_file(gembed, py_file, tmp_path):
    data = py_file.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 100])  # inside the last tensor's data
    r = subprocess.run([str(gembed), "inspect", str(cut), "--json"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert "past the end" in r.stderr


def test_inspect_missing_file(gembed, tmp_path):
    path = tmp_path / "does_not_exist.gguf"
    r = subprocess.run([str(gembed), "inspect", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith(f"gembed inspect: {path}: "), r.stderr
    assert "No such file" in r.stderr
