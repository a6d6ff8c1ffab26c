"""Parquet in, Parquet out: `python -m gembed embed --input x.parquet --output y.parquet`.

Debian 12 has no Arrow C++ package, so Parquet is read and written here with
pyarrow (an optional dependency: ``pip install gembed[parquet]``), streaming one
record batch at a time: memory holds one batch of texts and vectors, whatever
the file size. The output has the input's columns (or those named by
``keep_columns``) plus a ``fixed_size_list<float32, dim>`` vector column, in input
order. Every vector comes from the C++ engine (task prompts, truncation, dims
are its policy), so it equals ``gembed embed``'s for the same text.

Bad rows (a null or non-string text) stop the run naming the row (0-based
index in the file), or with ``on_error="skip"`` are left out and counted.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Parquet needs pyarrow: pip install pyarrow (or gembed[parquet])") from e
    return pa, pq


@dataclass
class ParquetResult:
    rows_read: int = 0
    embedded: int = 0
    skipped: int = 0
    dim: int = 0


def embed_parquet(model, input_path: str, output_path: str, *, text_column: str = "text",
                  vector_column: str = "embedding", keep_columns: Optional[Sequence[str]] = None,
                  task: Optional[str] = None, prompt: Optional[str] = None, dim: Optional[int] = None,
                  truncation: bool = True, batch_rows: int = 10000, on_error: str = "stop",
                  progress: Optional[Callable[[int, int], None]] = None) -> ParquetResult:
    """Embeds the `text_column` of a Parquet file into a new Parquet file.

    The output is written to OUTPUT.partial and renamed when complete, so a
    failed run never leaves a truncated file under the final name.
    """
    pa, pq = _pyarrow()
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', not {on_error!r}")
    if batch_rows < 1:
        raise ValueError("batch_rows must be >= 1")
    if os.path.abspath(input_path) == os.path.abspath(output_path):
        raise ValueError("the output is the input file")
    if os.path.lexists(output_path) and not os.path.isfile(output_path):
        raise ValueError(f"{output_path} exists and is not a regular file; refusing to replace it")
    src = pq.ParquetFile(input_path)
    names = src.schema_arrow.names
    if text_column not in names:
        raise ValueError(f"{input_path} has no column {text_column!r} (columns: {', '.join(names)})")
    keep = list(names) if keep_columns is None else list(keep_columns)
    for c in keep:
        if c not in names:
            raise ValueError(f"{input_path} has no column {c!r} (columns: {', '.join(names)})")
    if vector_column in keep:
        raise ValueError(f"the output column {vector_column!r} already exists in the input; choose another name")
    columns = list(dict.fromkeys(keep + [text_column]))
    if dim is not None and dim not in model.dims:
        raise ValueError(f"dim {dim} is not supported by this model (allowed: {', '.join(map(str, model.dims))})")
    out_dim = dim if dim is not None else model.dims[0]
    vec_type = pa.list_(pa.float32(), out_dim)
    fields = [src.schema_arrow.field(c) for c in keep] + [pa.field(vector_column, vec_type)]
    schema = pa.schema(fields)
    total = src.metadata.num_rows
    result = ParquetResult(dim=out_dim)
    partial = output_path + ".partial"
    if os.path.islink(partial):
        raise ValueError(f"{partial} is a symbolic link; refusing to write through it")
    writer = pq.ParquetWriter(partial, schema)
    ok = False
    try:
        for batch in src.iter_batches(batch_size=batch_rows, columns=columns):
            texts = batch.column(columns.index(text_column))
            good = np.ones(len(texts), dtype=bool)
            if not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type):
                raise ValueError(f"column {text_column!r} is {texts.type}, not a string column")
            if texts.null_count:
                nulls = np.asarray(texts.is_null().to_numpy(zero_copy_only=False))
                if on_error == "stop":
                    row = result.rows_read + int(np.flatnonzero(nulls)[0])
                    raise ValueError(f"{input_path} row {row}: {text_column!r} is null (on_error='skip' skips such rows)")
                good &= ~nulls
                result.skipped += int(nulls.sum())
            text_list = [t for t, g in zip(texts.to_pylist(), good) if g]
            vecs = model.encode(text_list, prompt_name=task, prompt=prompt, dim=dim, truncation=truncation)
            if vecs.ndim == 1:
                vecs = vecs.reshape(len(text_list), out_dim)
            table = pa.Table.from_batches([batch]).select(keep)
            if not good.all():
                table = table.filter(pa.array(good))
            flat = pa.array(np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1), type=pa.float32())
            table = table.append_column(pa.field(vector_column, vec_type),
                                        pa.FixedSizeListArray.from_arrays(flat, out_dim))
            writer.write_table(table)
            result.rows_read += len(texts)
            result.embedded += len(text_list)
            if progress:
                progress(result.rows_read, total)
        ok = True
    finally:
        writer.close()
        if not ok:
            try:
                os.unlink(partial)
            except OSError:
                pass
    os.replace(partial, output_path)
    return result


# ---- `python -m gembed embed` -----------------------------------------------------

def add_cli_arguments(p) -> None:
    p.add_argument("--model", required=True, help="a GGUF file or a Hugging Face sentence-transformers folder")
    p.add_argument("--input", required=True, help="a Parquet file")
    p.add_argument("--output", required=True, help="the Parquet file to write (input columns + the vector column)")
    p.add_argument("--text-column", default="text", help="the column holding the texts (default: text)")
    p.add_argument("--vector-column", default="embedding", help="the output column of vectors (default: embedding)")
    p.add_argument("--keep-columns", default=None,
                   help="comma-separated input columns to carry to the output (default: all)")
    p.add_argument("--task", default=None, help="a prompt name of the model (query, document, ...)")
    p.add_argument("--prompt", default=None, help="a custom prompt prefix (instead of --task)")
    p.add_argument("--dim", type=int, default=None, help="Matryoshka output dim (768, 512, 256, 128)")
    p.add_argument("--no-truncate", action="store_true", help="fail on texts longer than the context")
    p.add_argument("--batch-rows", type=int, default=10000, help="rows read and embedded at a time (memory ~ this)")
    p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                   help="null texts: stop naming the row (default) or skip them")
    p.add_argument("--threads", type=int, default=None, help="compute threads (default: all cores)")
    p.add_argument("--precision", default="fast", choices=["fast", "high"])
    p.add_argument("--progress", action="store_true", help="progress on stderr even when it is not a terminal")


def run_cli(args) -> int:
    import time

    from ._model import Model

    keep = None if args.keep_columns is None else [c for c in args.keep_columns.split(",") if c]
    show = args.progress or sys.stderr.isatty()
    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        if not show:
            return
        s = time.monotonic() - t0
        rate = done / s if s > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        end = "\n" if not sys.stderr.isatty() else ""
        sys.stderr.write(f"\rpython -m gembed embed: {done}/{total} rows, {rate:.0f} rows/s, ETA {eta:.0f}s{end}")
        sys.stderr.flush()

    with Model(args.model, threads=args.threads, precision=args.precision) as m:
        r = embed_parquet(m, args.input, args.output, text_column=args.text_column,
                          vector_column=args.vector_column, keep_columns=keep, task=args.task, prompt=args.prompt,
                          dim=args.dim, truncation=not args.no_truncate, batch_rows=args.batch_rows,
                          on_error=args.on_error, progress=progress)
    if show and sys.stderr.isatty():
        sys.stderr.write("\n")
    if r.skipped:
        sys.stderr.write(f"python -m gembed embed: warning: skipped {r.skipped} row(s) with a null text\n")
    return 0
