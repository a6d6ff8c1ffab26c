"""A small, fast GGUF (v2/v3) reader for the test oracle.

Why not only gguf.GGUFReader: it builds NumPy views for every element of every
array, which takes 15-25 s on the 262,144-entry Gemma3 vocabulary (2 cores),
and the oracle tests open many GGUFs. This parser reads the same header with
`struct` in well under a second. It is cross-checked against gguf.GGUFReader in
tests/python/test_oracle_numpy.py (same keys, values, tensor shapes, types and
bytes), so the oracle still rests on gguf-py for the file format.

Layout (little-endian; see ggml's gguf.h): magic "GGUF", u32 version, u64
n_tensors, u64 n_kv; n_kv × (string key, u32 type, value); n_tensors ×
(string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset); padding
to `general.alignment` (default 32); tensor data (offsets relative to here).
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

import numpy as np

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
_NP = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?",
       10: "<u8", 11: "<i8", 12: "<f8"}
GGUF_TYPE_STRING, GGUF_TYPE_ARRAY = 8, 9


@dataclass
class TensorInfo:
    name: str
    ne: tuple[int, ...]        # ne[0] innermost (contiguous) dimension
    ggml_type: int
    offset: int                # absolute file offset of the data
    n_bytes: int
    data: np.ndarray           # uint8 view of the bytes, shape (n_rows, row_bytes)


class GGUFFile:
    """Parses the header eagerly; tensor data stays memory-mapped (read-only)."""

    def __init__(self, path: str):
        self.path = str(path)
        with open(self.path, "rb") as f:
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self._mm
        if buf[:4] != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        self.version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if self.version not in (2, 3):
            raise ValueError(f"{path}: unsupported GGUF version {self.version}")
        self._pos = 24
        self.kv: dict[str, object] = {}
        for _ in range(n_kv):
            key = self._string()
            (vtype,) = self._unpack("<I")
            self.kv[key] = self._value(vtype)
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            (n_dims,) = self._unpack("<I")
            ne = struct.unpack_from(f"<{n_dims}Q", buf, self._pos)
            self._pos += 8 * n_dims
            ggml_type, offset = self._unpack("<IQ")
            infos.append((name, tuple(int(x) for x in ne), int(ggml_type), int(offset)))
        align = int(self.kv.get("general.alignment", 32))
        data_start = (self._pos + align - 1) // align * align
        whole = np.frombuffer(buf, dtype=np.uint8)
        self.tensors: dict[str, TensorInfo] = {}
        for name, ne, t, off in infos:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(t)]
            if ne[0] % block:
                raise ValueError(f"{name}: ne0={ne[0]} not a multiple of block size {block}")
            row_bytes = ne[0] // block * type_size
            n_rows = 1
            for d in ne[1:]:
                n_rows *= d
            start = data_start + off
            n_bytes = row_bytes * n_rows
            if start + n_bytes > len(buf):
                raise ValueError(f"{name}: data runs past the end of the file")
            view = whole[start:start + n_bytes].reshape(n_rows, row_bytes)
            self.tensors[name] = TensorInfo(name, ne, t, start, n_bytes, view)

    def _unpack(self, fmt: str):
        v = struct.unpack_from(fmt, self._mm, self._pos)
        self._pos += struct.calcsize(fmt)
        return v

    def _string(self) -> str:
        (n,) = struct.unpack_from("<Q", self._mm, self._pos)
        s = self._mm[self._pos + 8: self._pos + 8 + n]
        self._pos += 8 + n
        return s.decode("utf-8")

    def _value(self, vtype: int):
        if vtype in _SCALAR:
            (v,) = self._unpack(_SCALAR[vtype])
            return v
        if vtype == GGUF_TYPE_STRING:
            return self._string()
        if vtype == GGUF_TYPE_ARRAY:
            etype, count = self._unpack("<IQ")
            if etype in _NP:
                dt = np.dtype(_NP[etype])
                arr = np.frombuffer(self._mm, dtype=dt, count=count, offset=self._pos)
                self._pos += dt.itemsize * count
                return arr.tolist()
            return [self._value(etype) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {vtype}")

    def get(self, key: str, default=None):
        return self.kv.get(key, default)
