"""LangChain adapter: ``GembedEmbeddings``, a ``langchain_core.embeddings.Embeddings``.

    from gembed.integrations.langchain import GembedEmbeddings
    emb = GembedEmbeddings("models/embeddinggemma-300m")
    vectors = emb.embed_documents(["Mars is red.", "Venus is hot."])   # document prompt
    query = emb.embed_query("Which planet is red?")                     # query prompt

Needs ``langchain-core`` (pip install langchain-core). The async methods are
LangChain's defaults (a worker thread); the engine releases the GIL, so
concurrent calls really run together and share forward passes.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Union

from langchain_core.embeddings import Embeddings

from .._model import Model


class GembedEmbeddings(Embeddings):
    """EmbeddingGemma through gembed. ``model``: a path (GGUF file or Hugging
    Face folder) or an open ``gembed.Model`` (shared, not closed here);
    ``dim``: a Matryoshka width from ``Model.dims`` (None: full); the prompt
    names default to the model card's retrieval prompts; ``model_kwargs`` go to
    ``gembed.Model`` when a path is given."""

    def __init__(self, model: Union[str, os.PathLike, Model], *, dim: Optional[int] = None,
                 query_prompt_name: str = "query", document_prompt_name: str = "document",
                 batch_size: Optional[int] = None, **model_kwargs: Any) -> None:
        if isinstance(model, Model):
            if model_kwargs:
                raise TypeError("model_kwargs apply only when a path is given")
            self.model = model
        else:
            self.model = Model(model, **model_kwargs)
        self.dim = dim
        self.query_prompt_name = query_prompt_name
        self.document_prompt_name = document_prompt_name
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(list(texts), prompt_name=self.document_prompt_name, dim=self.dim,
                                 batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode(text, prompt_name=self.query_prompt_name, dim=self.dim).tolist()
