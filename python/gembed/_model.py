"""gembed.Model: EmbeddingGemma embeddings with a sentence-transformers-style API.

Everything that decides a vector (prompts and task names, Matryoshka dims,
truncation, whitespace stripping, batching) is the C++ engine's; this file
shapes the calls. `encode` allocates one float32 NumPy array and the engine
writes the vectors straight into it, with the GIL released.
"""
from __future__ import annotations

import errno
import os
import sys
import threading
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _gembed

ModelError = _gembed.ModelError

Texts = Union[str, Iterable[str]]

# Thread counts above this are refused (a typo such as threads=10000 would
# otherwise start that many threads).
MAX_THREADS = 1024


def _as_texts(sentences: Texts) -> tuple[Sequence[str], bool]:
    """(texts, single): a str is one text; any other iterable of str is a batch."""
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, (list, tuple)):
        return sentences, False
    if isinstance(sentences, (bytes, bytearray, memoryview)):
        raise TypeError("texts must be str or an iterable of str, not bytes (decode them first)")
    if isinstance(sentences, np.ndarray):
        return sentences.tolist(), False
    try:
        return list(sentences), False
    except TypeError:
        raise TypeError(f"texts must be str or an iterable of str, not {type(sentences).__name__}") from None


def _check_int(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, not {value}")
    return value


class _Progress:
    """A progress bar over one encode call (tqdm when installed, else a line on stderr)."""

    def __init__(self, total: int):
        self.total = total
        self.shown = 0
        try:
            from tqdm.auto import tqdm  # optional

            self.bar = tqdm(total=total, desc="gembed", unit="text")
        except ImportError:
            self.bar = None
            self._line()

    def _line(self) -> None:
        sys.stderr.write(f"\rgembed: {self.shown}/{self.total} texts")
        sys.stderr.flush()

    def update_to(self, now: int) -> None:
        if now <= self.shown:
            return
        if self.bar is not None:
            self.bar.update(now - self.shown)
        self.shown = now
        if self.bar is None:
            self._line()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()


class Model:
    """An EmbeddingGemma model: a Hugging Face sentence-transformers folder or a GGUF file.

    ``threads``: compute threads (None: all cores); ``precision``: "fast" (int8
    activations against Q8_0 weights, like llama.cpp) or "high" (fp32
    activations; Q8_0 weights widened at load); ``max_batch_tokens``: the token
    budget of one forward pass (texts from all calling threads are packed up to
    it; below the model's context length it is raised to that, with a warning);
    ``isa``: force a kernel level ("generic", "avx2", "avx512vnni"; None:
    the best this CPU has).

    One Model may be used from many threads at once: their texts share the
    engine's forward passes.
    """

    similarity_fn_name = "cosine"

    def __init__(self, path: Union[str, os.PathLike], *, threads: Optional[int] = None,
                 precision: str = "fast", max_batch_tokens: int = 4096, isa: Optional[str] = None):
        path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError("path must be a str or os.PathLike naming a GGUF file or a Hugging Face folder")
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT,
                                    "no such model (a GGUF file or a Hugging Face sentence-transformers folder)",
                                    path)
        threads = 0 if threads is None else _check_int("threads", threads, 0, MAX_THREADS)
        max_batch_tokens = _check_int("max_batch_tokens", max_batch_tokens, 1, 1 << 24)
        if not isinstance(precision, str):
            raise TypeError("precision must be 'fast' or 'high'")
        self._engine = _gembed.Engine(path, threads, precision, max_batch_tokens, isa or "")
        self._path = path
        info = self._engine.info()
        self._output_dim: int = info["output_dim"]
        self._dims: list[int] = list(info["dims"])
        self._max_seq_length: int = info["max_seq_length"]
        self._default_prompt_name: Optional[str] = info["default_prompt_name"]
        self._prompts = {name: self._engine.resolve_prompt(task=name) for name in info["task_names"]}

    # ----------------------------------------------------------------- encode
    def encode(self, sentences: Texts, prompt_name: Optional[str] = None, prompt: Optional[str] = None,
               batch_size: Optional[int] = None, show_progress_bar: Optional[bool] = None, *,
               dim: Optional[int] = None, truncate_dim: Optional[int] = None,
               normalize: Optional[bool] = None, normalize_embeddings: Optional[bool] = None,
               titles: Union[None, str, Sequence[Optional[str]]] = None,
               truncation: bool = True, strip: bool = True,
               progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
        """Embeds a str (returns shape (dim,)) or an iterable of str (shape (n, dim)), float32.

        prompt_name: a task name: the model's own prompt table (for the real
            model "query", "document", "Retrieval-query", "STS", ...) or a
            built-in one ("query", "document", "similarity", "classification",
            "clustering", "question-answering", "fact-checking",
            "code-retrieval"); see ``prompts``. None with no ``prompt``: the
            model's default prompt, if it names one.
        prompt: a custom prefix, used verbatim (not together with prompt_name).
        dim / truncate_dim (sentence-transformers' name): a Matryoshka width
            from ``dims`` (None: the full width).
        normalize (alias normalize_embeddings): True (default): unit vectors;
            a truncated vector is re-normalised (the model card's rule).
            False: the model's output as it is. Its last layer normalises
            (as in sentence-transformers), so full-width vectors are unit
            length either way; truncated ones are then the first `dim`
            components of the unit vector, not re-normalised (what
            sentence-transformers returns for truncate_dim without
            normalize_embeddings).
        batch_size: at most this many texts per engine call (None: all at
            once; the engine packs forward passes by max_batch_tokens anyway).
        titles: with a task whose prompt has a title ("document"): one str for
            every text, or one str (or None = "none") per text.
        truncation: False makes a text longer than max_seq_length a ValueError
            (default: it is cut to max_seq_length tokens, BOS and EOS kept).
        strip: strip leading/trailing whitespace of prompt+text like
            sentence-transformers (False: embed as given, like llama.cpp).
        show_progress_bar / progress: a bar on stderr (tqdm when installed) /
            a callable(done, total) called on this thread as texts finish.
        Ctrl-C (KeyboardInterrupt) stops a long call after the forward pass
        under way.
        """
        texts, single = _as_texts(sentences)
        n = len(texts)
        if dim is not None and truncate_dim is not None and dim != truncate_dim:
            raise ValueError(f"dim={dim} and truncate_dim={truncate_dim} disagree (they are the same setting)")
        width = dim if dim is not None else truncate_dim
        width = 0 if width is None else _check_int("dim", width, 0)
        if normalize is not None and normalize_embeddings is not None and normalize != normalize_embeddings:
            raise ValueError("normalize and normalize_embeddings disagree (they are the same setting)")
        unit = True if normalize is None and normalize_embeddings is None else bool(
            normalize if normalize is not None else normalize_embeddings)
        if prompt_name is not None and not isinstance(prompt_name, str):
            raise TypeError("prompt_name must be a str")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError("prompt must be a str")
        if batch_size is not None:
            batch_size = _check_int("batch_size", batch_size, 1)
        if isinstance(titles, (list, tuple)) and len(titles) != n:
            raise ValueError(f"titles has {len(titles)} entries for {n} texts")
        elif titles is not None and not isinstance(titles, (str, list, tuple)):
            titles = list(titles)
            if len(titles) != n:
                raise ValueError(f"titles has {len(titles)} entries for {n} texts")

        out_dim = self._engine.output_dim(width)  # ValueError for a dim the model lacks
        raw_prefix = not unit and out_dim != self._output_dim
        if raw_prefix:
            # The engine writes full unit vectors; their first out_dim
            # components are then moved together in the same buffer.
            buf = np.empty(n * self._output_dim, dtype=np.float32)
            target = buf.reshape(n, self._output_dim)
            call_dim = 0
        else:
            out = np.empty((n, out_dim), dtype=np.float32)
            target = out
            call_dim = width

        bar = _Progress(n) if show_progress_bar else None
        base = 0  # texts of the earlier engine calls (batch_size)
        callback = None
        if bar is not None or progress is not None:
            def callback(done: int, _total: int) -> None:
                if bar is not None:
                    bar.update_to(base + done)
                if progress is not None:
                    progress(base + done, n)
        main = threading.current_thread() is threading.main_thread()
        task = prompt_name or ""
        step = batch_size or max(n, 1)
        try:
            for start in range(0, max(n, 1), step):
                stop = min(start + step, n)
                base = start
                chunk_titles = titles[start:stop] if isinstance(titles, (list, tuple)) else titles
                chunk = texts[start:stop] if (start, stop) != (0, n) else texts
                if not isinstance(chunk, (list, tuple)):
                    chunk = list(chunk)
                self._engine.embed_into(chunk, target[start:stop], task, chunk_titles, prompt, True, call_dim,
                                        truncation, strip, callback, main)
        finally:
            if bar is not None:
                bar.close()

        if raw_prefix:
            _gembed.compact_rows(buf, n, self._output_dim, out_dim)
            out = buf[:n * out_dim].reshape(n, out_dim)
        return out[0] if single else out

    def encode_query(self, sentences: Texts, **kwargs: Any) -> np.ndarray:
        """``encode`` with the query prompt (prompt_name "query" unless a prompt is given)."""
        if kwargs.get("prompt") is None:
            kwargs.setdefault("prompt_name", "query")
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences: Texts, titles: Union[None, str, Sequence[Optional[str]]] = None,
                        **kwargs: Any) -> np.ndarray:
        """``encode`` with the document prompt ("title: {title | none} | text: ")."""
        if kwargs.get("prompt") is None:
            kwargs.setdefault("prompt_name", "document")
        return self.encode(sentences, titles=titles, **kwargs)

    # ------------------------------------------------------------- similarity
    @staticmethod
    def similarity(a: Any, b: Any) -> np.ndarray:
        """Cosine similarity of every row of `a` with every row of `b` (1-D
        inputs are one row): shape (len(a), len(b)), float32, like
        SentenceTransformer.similarity."""
        a, b = _rows(a, "a"), _rows(b, "b")
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"vectors of different widths: {a.shape[1]} and {b.shape[1]}")
        return (_unit_rows(a) @ _unit_rows(b).T).astype(np.float32, copy=False)

    @staticmethod
    def similarity_pairwise(a: Any, b: Any) -> np.ndarray:
        """Cosine similarity of row i of `a` with row i of `b`: shape (n,)."""
        a, b = _rows(a, "a"), _rows(b, "b")
        if a.shape != b.shape:
            raise ValueError(f"pairwise similarity needs equal shapes, not {a.shape} and {b.shape}")
        return np.einsum("ij,ij->i", _unit_rows(a), _unit_rows(b)).astype(np.float32, copy=False)

    # ---------------------------------------------------------------- tokens
    def tokenize(self, texts: Texts, prompt_name: Optional[str] = None, prompt: Optional[str] = None,
                 title: Optional[str] = None, *, truncation: bool = True,
                 strip: bool = True) -> Union[list[int], list[list[int]]]:
        """The token ids the model runs: [BOS] prompt+text [EOS] (stripped, cut
        to max_seq_length). No prompt unless prompt_name / prompt is given.
        A str gives one list of ids, an iterable of str a list of them."""
        items, single = _as_texts(texts)
        if not isinstance(items, (list, tuple)):
            items = list(items)
        ids = self._engine.tokenize(items, prompt_name or "", title or "", prompt, False, truncation, strip)
        return ids[0] if single else ids

    def token_text(self, token_id: int) -> str:
        """The text of one token id."""
        return self._engine.token_text(_check_int("token_id", token_id, 0))

    # ------------------------------------------------------------ attributes
    @property
    def dims(self) -> list[int]:
        """Matryoshka widths this model offers (the full width first)."""
        return list(self._dims)

    @property
    def prompts(self) -> dict[str, str]:
        """Every task name ``prompt_name`` accepts -> the prefix it prepends."""
        return dict(self._prompts)

    @property
    def default_prompt_name(self) -> Optional[str]:
        return self._default_prompt_name

    @property
    def max_seq_length(self) -> int:
        """Tokens per text, BOS and EOS included; longer texts are truncated."""
        return self._max_seq_length

    @property
    def path(self) -> str:
        return self._path

    def get_sentence_embedding_dimension(self) -> int:
        return self._output_dim

    def info(self) -> dict[str, Any]:
        """What was loaded and how it runs: kernel level, precision, threads,
        weight type, dims, prompt table, load times, forward-pass statistics."""
        d = self._engine.info()
        d = {"version": _gembed.__version__, "path": self._path,
             "format": "huggingface-folder" if os.path.isdir(self._path) else "gguf", **d}
        d["stats"] = self._engine.stats()
        return d

    def close(self) -> None:
        """Frees the model now (calls still running on other threads finish first)."""
        self._engine.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._engine.closed:
            return f"gembed.Model({self._path!r}, closed)"
        i = self._engine.info()
        return (f"gembed.Model({self._path!r}, dim={self._output_dim}, {i['weight_type']}, "
                f"isa={i['isa']}, threads={i['threads']}, precision={i['precision']!r})")


def _rows(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be one vector or a 2-D array of vectors, not shape {a.shape}")
    return a


def _unit_rows(a: np.ndarray) -> np.ndarray:
    # Like torch.nn.functional.normalize (eps 1e-12): a zero row stays zero.
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norms, 1e-12)
