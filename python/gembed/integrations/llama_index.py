"""LlamaIndex adapter: ``GembedEmbedding``, a ``llama_index.core`` ``BaseEmbedding``.

    from gembed.integrations.llama_index import GembedEmbedding
    from llama_index.core import Settings
    Settings.embed_model = GembedEmbedding("models/embeddinggemma-300m")

Needs ``llama-index-core`` (pip install llama-index-core). Queries get the
query prompt, texts (nodes) the document prompt. The async methods run the
engine on a worker thread (it releases the GIL, so they really overlap and
share forward passes).
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, List, Optional, Union

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field, PrivateAttr

from .._model import Model


class GembedEmbedding(BaseEmbedding):
    """EmbeddingGemma through gembed. ``model``: a path (GGUF file or Hugging
    Face folder) or an open ``gembed.Model``; ``dim``: a Matryoshka width
    (None: full); ``model_kwargs`` go to ``gembed.Model`` when a path is given."""

    dim: Optional[int] = Field(default=None, description="Matryoshka output width (None: the model's full width).")
    query_prompt_name: str = Field(default="query", description="Task name for queries.")
    document_prompt_name: str = Field(default="document", description="Task name for texts / nodes.")

    _model: Model = PrivateAttr()

    def __init__(self, model: Union[str, os.PathLike, Model], *, dim: Optional[int] = None,
                 query_prompt_name: str = "query", document_prompt_name: str = "document",
                 embed_batch_size: int = 64, model_kwargs: Optional[dict] = None, **kwargs: Any) -> None:
        if isinstance(model, Model):
            if model_kwargs:
                raise TypeError("model_kwargs apply only when a path is given")
            loaded = model
        else:
            loaded = Model(model, **(model_kwargs or {}))
        super().__init__(model_name=kwargs.pop("model_name", f"gembed:{loaded.path}"), dim=dim,
                         query_prompt_name=query_prompt_name, document_prompt_name=document_prompt_name,
                         embed_batch_size=embed_batch_size, **kwargs)
        self._model = loaded

    @classmethod
    def class_name(cls) -> str:
        return "GembedEmbedding"

    @property
    def model(self) -> Model:
        return self._model

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._model.encode(query, prompt_name=self.query_prompt_name, dim=self.dim).tolist()

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._model.encode(text, prompt_name=self.document_prompt_name, dim=self.dim).tolist()

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._model.encode(list(texts), prompt_name=self.document_prompt_name, dim=self.dim).tolist()

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> List[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
