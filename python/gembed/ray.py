"""gembed on Ray Data: the engine as one ``map_batches`` call.

    import ray, gembed.ray
    ds = ray.data.read_parquet("s3://bucket/corpus/")
    ds = gembed.ray.embed_dataset(ds, model="/models/embeddinggemma-300m", text_column="text",
                                  task="document", dim=768, concurrency=8, threads_per_actor=4)
    ds.write_parquet("s3://bucket/vectors/")

Each actor loads the model once (a GGUF or folder is memory-mapped, so actors on
one node share the page cache) and embeds the text column of every batch it is
given with its own engine threads; the vector column is added to the batch.
Ray keeps the rows of a batch together and, with ``preserve_order`` (on by
default here), the dataset order. A crashed actor is restarted and its batch
retried (``max_restarts`` / ``max_task_retries``), so nothing is lost or
duplicated.

A block is the unit an actor is given, and one Parquet file reads as one block
by default, so ``embed_dataset`` first splits blocks to ``batch_size`` rows
(Ray's streaming repartition); otherwise one actor would do all the work.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np


class GembedEmbedder:
    """A callable class for ``ray.data.Dataset.map_batches(GembedEmbedder, ...)``.

    Batches are dicts of NumPy arrays (``batch_format="numpy"``); the text column
    must hold str values. The result is the batch with ``output_column``
    added: a (rows, dim) float32 array.
    """

    def __init__(self, model: str, text_column: str = "text", output_column: str = "embedding",
                 task: Optional[str] = None, prompt: Optional[str] = None, dim: Optional[int] = None,
                 threads: Optional[int] = None, precision: str = "fast", truncation: bool = True):
        from ._model import Model

        self.model = Model(model, threads=threads, precision=precision)
        self.text_column = text_column
        self.output_column = output_column
        self.task = task
        self.prompt = prompt
        self.dim = dim
        self.truncation = truncation

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, Any]:
        if self.text_column not in batch:
            raise ValueError(f"the batch has no column {self.text_column!r} (columns: {', '.join(batch)})")
        texts = batch[self.text_column]
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise ValueError(f"column {self.text_column!r}: row {bad[0]} of this batch is "
                             f"{type(texts[bad[0]]).__name__}, not str")
        vecs = self.model.encode(list(texts), prompt_name=self.task, prompt=self.prompt, dim=self.dim,
                                 truncation=self.truncation)
        out = dict(batch)
        out[self.output_column] = vecs.reshape(len(texts), -1)
        return out


def _split_blocks(ds, rows_per_block: int):
    """``ds`` with blocks of at most ``rows_per_block`` rows (streaming, no shuffle). Ray versions whose
    ``repartition`` cannot do that leave the blocks as read, with a warning that says what it costs."""
    import inspect
    import warnings

    try:
        params = inspect.signature(ds.repartition).parameters
    except (TypeError, ValueError):  # pragma: no cover - not introspectable
        params = {}
    if "target_num_rows_per_block" not in params:  # pragma: no cover - Ray older than the pinned minimum
        warnings.warn("this Ray's Dataset.repartition has no target_num_rows_per_block: blocks are left as read, "
                      "so a dataset of few large files may keep one actor busy and the others idle "
                      "(upgrade Ray, or repartition the dataset before embed_dataset)", RuntimeWarning,
                      stacklevel=3)
        return ds
    return ds.repartition(target_num_rows_per_block=rows_per_block)


def embed_dataset(ds, model: str, text_column: str = "text", task: Optional[str] = "document",
                  dim: Optional[int] = 768, *, prompt: Optional[str] = None, output_column: str = "embedding",
                  concurrency: int = 1, threads_per_actor: int = 1, batch_size: int = 1024,
                  precision: str = "fast", max_restarts: int = 3, max_task_retries: int = 3,
                  preserve_order: bool = True, embedder_class: type = GembedEmbedder,
                  embedder_kwargs: Optional[Dict[str, Any]] = None, split_blocks: bool = True,
                  rows_per_block: Optional[int] = None):
    """``ds.map_batches`` with a pool of ``concurrency`` gembed actors of
    ``threads_per_actor`` engine threads (= the CPUs each actor reserves).

    ``task`` is a prompt name of the model ("document", "query", ...; None: the
    model's default prompt), ``prompt`` a custom prefix instead, ``dim`` a
    Matryoshka width. Returns the lazy dataset with ``output_column`` added.
    ``preserve_order`` sets Ray Data's execution option of the same name on
    ``ds``'s DataContext, so the output rows keep the input order.
    ``embedder_class`` / ``embedder_kwargs``: a subclass of GembedEmbedder and
    extra arguments for its constructor.

    Ray gives an actor whole blocks, and one Parquet file reads as one block, so
    a dataset of few large files would keep one actor busy and the rest idle.
    With ``split_blocks`` (default), larger blocks are first split to
    ``rows_per_block`` rows (None: ``batch_size``) with Ray's streaming
    repartition, so every actor gets work without materialising the dataset;
    ``split_blocks=False`` leaves the blocks as read.
    """
    if concurrency < 1 or threads_per_actor < 1 or batch_size < 1:
        raise ValueError("concurrency, threads_per_actor and batch_size must be >= 1")
    if rows_per_block is None:
        rows_per_block = batch_size
    if rows_per_block < 1:
        raise ValueError("rows_per_block must be >= 1 (or None for batch_size)")
    if task is not None and prompt is not None:
        raise ValueError("task and prompt cannot be used together")
    if preserve_order:
        # A Dataset keeps the DataContext of its creation: the option must be set on `ds` itself (setting
        # the global context now would not reach a dataset made before).
        ctx = getattr(ds, "context", None)
        if ctx is None:  # pragma: no cover - older Ray: datasets read the global context
            import ray.data

            ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
    kwargs = dict(
        fn_constructor_kwargs=dict(model=model, text_column=text_column, output_column=output_column, task=task,
                                   prompt=prompt, dim=dim, threads=threads_per_actor, precision=precision,
                                   **(embedder_kwargs or {})),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=threads_per_actor,
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
    )
    try:  # Ray >= 2.51 deprecates `concurrency` for `compute=ActorPoolStrategy(size=...)`
        from ray.data import ActorPoolStrategy

        kwargs["compute"] = ActorPoolStrategy(size=concurrency)
    except ImportError:  # pragma: no cover - older Ray
        kwargs["concurrency"] = concurrency
    if split_blocks:
        ds = _split_blocks(ds, rows_per_block)
    return ds.map_batches(embedder_class, **kwargs)
