"""Pose extractors: one interface, backends chosen by name.

Every backend turns one input (a video, a take uid, a keypoint file) into a
:class:`pose.sequence.KeypointSequence`. Backends are imported lazily, so a missing optional
dependency (mmpose, mediapipe) only fails when that backend is used.

>>> ex = make_extractor("file", skeleton="coco17", fps=30)   # doctest: +SKIP
>>> seq = ex.extract("recording.npy")                         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pose.sequence import KeypointSequence

__all__ = ["Extractor", "BACKENDS", "make_extractor", "get_backend"]


@runtime_checkable
class Extractor(Protocol):
    """What every backend provides.

    ``name`` is the backend name (a key of :data:`BACKENDS`); ``settings()`` the options that
    determine its output (JSON-serialisable, e.g. for cache keys); ``extract`` the sequence.
    """

    name: str

    def settings(self) -> dict: ...

    def extract(self, video: str | Path) -> KeypointSequence: ...


class _Lazy:
    """A backend class named by module and attribute, imported on first use."""

    def __init__(self, module: str, attr: str) -> None:
        self.module, self.attr = module, attr

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self.module}.{self.attr}>"


#: backend name -> class (lazily imported: ``BACKENDS[name](**options)`` or ``.load()``).
#: Importing a backend module never imports its heavy dependency either; that happens in
#: ``extract`` (or when the model is built).
BACKENDS: dict[str, _Lazy] = {
    "mmpose": _Lazy("pose.extractors.mmpose", "MMPoseExtractor"),
    "mediapipe": _Lazy("pose.extractors.mediapipe", "MediaPipeExtractor"),
    "egoexo": _Lazy("pose.extractors.egoexo", "EgoExoExtractor"),
    "file": _Lazy("pose.extractors.file", "FileExtractor"),
}


def get_backend(name: str) -> type:
    """The extractor class registered under ``name``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown pose extractor {name!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[name].load()


def make_extractor(name: str, **options: Any) -> Extractor:
    """Build the extractor ``name`` with ``options`` (the backend's constructor arguments)."""
    cls = get_backend(name)
    try:
        return cls(**options)
    except TypeError as e:
        raise TypeError(f"pose extractor {name!r}: bad options {sorted(options)} ({e})") from None
