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

__all__ = ["Extractor", "BACKENDS", "VIDEO_BACKENDS", "make_extractor", "get_backend", "build_extractor",
           "default_video_backend"]


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
    "mediapipe-tasks": _Lazy("pose.extractors.mediapipe_tasks", "PoseLandmarkerExtractor"),
    "egoexo": _Lazy("pose.extractors.egoexo", "EgoExoExtractor"),
    "file": _Lazy("pose.extractors.file", "FileExtractor"),
}


#: backends that read videos, in the order ``"auto"`` considers them (see :func:`default_video_backend`)
VIDEO_BACKENDS = ("mediapipe-tasks", "mmpose", "mediapipe")


def default_video_backend(pose_model: Any = None, allow_download: bool = False) -> str:
    """The video backend ``"auto"`` stands for: the first of these that can run here.

    1. ``mediapipe-tasks`` when a model file is given (``pose_model``), downloading is allowed,
       or a model is at hand (``$KEPT_POSE_MODEL`` or one in the cache);
    2. ``mmpose`` when installed (its own GPU environment);
    3. ``mediapipe`` (legacy ``solutions`` API, mediapipe 0.10.x: bundled model, offline);
    4. ``mediapipe-tasks`` when mediapipe's Tasks API is installed (it then says how to get a model).

    Raises:
        ImportError: none of them is installed, with the install line of each.
    """
    import importlib.util

    from pose.extractors import mediapipe_tasks as tasks

    if pose_model is not None or allow_download:
        return "mediapipe-tasks"
    has_tasks = tasks.tasks_available()
    if has_tasks:
        try:
            tasks.resolve_model(None, allow_download=False)
            return "mediapipe-tasks"
        except (FileNotFoundError, ValueError):
            pass
    if importlib.util.find_spec("mmpose") is not None:
        return "mmpose"
    if importlib.util.find_spec("mediapipe") is not None:
        try:
            import mediapipe

            if hasattr(mediapipe, "solutions"):
                return "mediapipe"
        except ImportError:
            pass
    if has_tasks:
        return "mediapipe-tasks"
    from pose.extractors.mediapipe import INSTALL_HINT as MEDIAPIPE_HINT
    from pose.extractors.mmpose import INSTALL_HINT as MMPOSE_HINT

    raise ImportError("no pose extractor for videos is installed. In the main environment: "
                      f"{tasks.INSTALL_HINT}, then give it a model with --pose-model FILE or "
                      f"--allow-download. Or: {MMPOSE_HINT}. Or: {MEDIAPIPE_HINT}")


def build_extractor(backend: str = "auto", *, pose_model: Any = None, allow_download: bool | None = None,
                    **options: Any) -> Extractor:
    """An extractor from command-line style options: ``None`` options are dropped, ``"auto"``
    is resolved (:func:`default_video_backend`) and every remaining option must apply.

    ``pose_model`` (``--pose-model``, the MediaPipe ``.task`` file) and ``allow_download``
    (``--allow-download``) are the ``mediapipe-tasks`` backend's ``model`` and
    ``allow_download``; giving them selects that backend under ``"auto"``.

    Raises:
        ValueError: an unknown backend, or options that do not apply to it.
    """
    import inspect

    options = {k: v for k, v in options.items() if v is not None}
    if backend == "auto":
        backend = default_video_backend(pose_model, bool(allow_download))
    if backend == "mediapipe-tasks":
        if "model" in options:
            raise ValueError("the mediapipe-tasks backend takes its model file as --pose-model "
                             "(--model is mmpose's 3D model)")
        if pose_model is not None:
            options["model"] = str(pose_model)
        if allow_download:
            options["allow_download"] = True
    elif pose_model is not None or allow_download:
        raise ValueError(f"--pose-model and --allow-download apply to the mediapipe-tasks backend, "
                         f"not to {backend!r}")
    cls = get_backend(backend)
    accepted = inspect.signature(cls).parameters
    ignored = sorted(k for k in options if k not in accepted)
    if ignored:
        raise ValueError(f"options {ignored} do not apply to the {backend} backend")
    return cls(**options)


def get_backend(name: str) -> type:
    """The extractor class registered under ``name``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown pose extractor {name!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[name].load()


def make_extractor(name: str, **options: Any) -> Extractor:
    """Build the extractor ``name`` with ``options`` (the backend's constructor arguments).

    ``name="auto"`` picks a video backend (:func:`default_video_backend`).
    """
    if name == "auto":
        name = default_video_backend()
    cls = get_backend(name)
    try:
        return cls(**options)
    except TypeError as e:
        raise TypeError(f"pose extractor {name!r}: bad options {sorted(options)} ({e})") from None
