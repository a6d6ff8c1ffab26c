"""gembed: EmbeddingGemma-300M text embeddings on the CPU.

    import gembed
    m = gembed.Model("models/embeddinggemma-300m")   # Hugging Face folder or GGUF
    q = m.encode_query("Which planet is known as the Red Planet?")   # (768,) float32
    d = m.encode_document(["Mars ...", "Venus ..."])                 # (2, 768) float32
    m.similarity(q, d)                                               # (1, 2) cosine

The engine is C++ (gembed._gembed); it releases the GIL while it runs, and
calls from several threads share its forward passes.
"""
from ._gembed import __version__, cpu_isa, supported_isas
from ._model import Model, ModelError

__all__ = ["Model", "ModelError", "__version__", "cpu_isa", "supported_isas"]
