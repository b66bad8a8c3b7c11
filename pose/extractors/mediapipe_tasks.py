"""3D pose from video with MediaPipe's Tasks API (``PoseLandmarker``), 33 BlazePose landmarks.

This backend runs in the main environment: current mediapipe releases (1.x) work with numpy 2
(``pip install -e ".[video]"``). It also works with mediapipe 0.10.x, which has the same Tasks API.

CONFIRMED from the installed mediapipe 1.2.3 (``mediapipe/tasks/python/vision/pose_landmarker.py``):

* ``PoseLandmarker.create_from_options(PoseLandmarkerOptions(base_options=BaseOptions(
  model_asset_path=...), running_mode=RunningMode.VIDEO, num_poses=1,
  min_pose_detection_confidence=0.5, min_pose_presence_confidence=0.5,
  min_tracking_confidence=0.5))``; the landmarker is a context manager (``close()``).
* ``detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb_uint8), timestamp_ms)``
  with timestamps that must increase from call to call; it returns a ``PoseLandmarkerResult``
  whose ``pose_world_landmarks`` is a list (one per person) of 33 ``Landmark(x, y, z,
  visibility, presence)`` -- metres, origin at the centre of the hips.
* ``import mediapipe`` binds ``mediapipe.tasks`` to ``mediapipe.tasks.python``, so the task
  classes are imported with ``from mediapipe.tasks.python.vision import ...``.
* The wheel ships no ``.task`` model file: the model comes by path (``model=``, ``--pose-model``,
  or ``$KEPT_POSE_MODEL``), or is downloaded once into the cache only when allowed
  (``allow_download=True``, ``--allow-download``, or ``KEPT_ALLOW_DOWNLOAD=1``) from
  :data:`MODEL_URL`.

ASSUMED (as for the legacy backend, :mod:`pose.extractors.mediapipe`): the world axes follow the
image's (x right, y down), so "up" is ``-y`` (``meta["up_axis"]``). ``visibility`` is taken as the
confidence; a frame whose values lie outside [0, 1] is treated as logits and passed through a
sigmoid (the Landmark docstring says it is "either a sigmoid or an argument of sigmoid").

The output skeleton is ``mediapipe33``, the same as the legacy backend's, so
:func:`pose.convert.convert` maps it to ``coco17`` / ``h36m17``.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from pose.sequence import KeypointSequence

__all__ = ["PoseLandmarkerExtractor", "INSTALL_HINT", "MODEL_URL", "VARIANTS", "MODEL_ENV",
           "ALLOW_DOWNLOAD_ENV", "resolve_model", "download_model", "cached_model_path", "model_hint"]

NUM_LANDMARKS = 33
VARIANTS = ("lite", "full", "heavy")
#: the official model files, by variant (``lite``, ``full``, ``heavy``)
MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/pose_landmarker/"
             "pose_landmarker_{variant}/float16/latest/pose_landmarker_{variant}.task")
MODEL_ENV = "KEPT_POSE_MODEL"
ALLOW_DOWNLOAD_ENV = "KEPT_ALLOW_DOWNLOAD"
INSTALL_HINT = (
    "the 'mediapipe-tasks' pose extractor needs mediapipe with the Tasks API (mediapipe >= 1.0 works "
    "with numpy 2): pip install -e \".[video]\" (or pip install mediapipe)"
)


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def model_cache_dir() -> Path:
    """Where downloaded models live: ``$KEPT_CACHE/models`` (default ``~/.cache/kept/models``)."""
    return Path(os.environ.get("KEPT_CACHE") or Path.home() / ".cache" / "kept") / "models"


def cached_model_path(variant: str = "full") -> Path:
    """The cache path of the ``variant`` model file."""
    _check_variant(variant)
    return model_cache_dir() / f"pose_landmarker_{variant}.task"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"pose model variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


def model_hint(variant: str = "full") -> str:
    """Where to get a model file and how to pass it."""
    return (f"the 'mediapipe-tasks' pose extractor needs a PoseLandmarker model file (.task), which the "
            f"mediapipe package does not include. Download one, e.g. {MODEL_URL.format(variant=variant)} "
            f"(variants: {', '.join(VARIANTS)}), and pass --pose-model FILE (or set {MODEL_ENV}=FILE); "
            f"or pass --allow-download (or set {ALLOW_DOWNLOAD_ENV}=1) to fetch the '{variant}' model once "
            f"into {cached_model_path(variant)}")


def _urlopen(url: str, timeout: float) -> Any:
    """``urllib.request.urlopen`` (module-level so tests can replace it)."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 -- fixed https URL


def download_model(variant: str = "full", dest: str | Path | None = None, *, timeout: float = 120.0) -> Path:
    """Fetch the official ``variant`` model into ``dest`` (default: the cache), atomically.

    The bytes go to a temp file in the target folder, are checked to be a model bundle (a zip
    archive), and are then renamed onto ``dest``: an interrupted download leaves no partial file.
    """
    _check_variant(variant)
    dest = Path(dest) if dest is not None else cached_model_path(variant)
    url = MODEL_URL.format(variant=variant)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            with _urlopen(url, timeout) as resp:
                while block := resp.read(1 << 20):
                    out.write(block)
        if not zipfile.is_zipfile(tmp):
            raise ValueError(f"downloaded {url} but it is not a MediaPipe model bundle (.task, a zip archive)")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except OSError as e:
        raise OSError(f"could not download the pose model from {url} ({e}); download it yourself and pass "
                      f"--pose-model FILE") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def resolve_model(model: str | Path | None = None, variant: str = "full",
                  allow_download: bool | None = None) -> Path:
    """The model file to use.

    In order: ``model`` (a path; or a variant name ``lite``/``full``/``heavy``, meaning the cached
    file of that variant), ``$KEPT_POSE_MODEL``, the cached file of ``variant``, a download into the
    cache if ``allow_download`` (default: ``$KEPT_ALLOW_DOWNLOAD``) is true.

    Raises:
        FileNotFoundError: no model file, with where to get one and which flag to pass.
    """
    if model is not None and str(model) in VARIANTS:
        variant, model = str(model), None
    _check_variant(variant)
    if model is not None:
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"pose model file not found: {path}; " + model_hint(variant))
        return path
    env = os.environ.get(MODEL_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{MODEL_ENV}={env}: no such model file; " + model_hint(variant))
        return path
    cached = cached_model_path(variant)
    if cached.is_file():
        return cached
    if allow_download is None:
        allow_download = _truthy(os.environ.get(ALLOW_DOWNLOAD_ENV))
    if allow_download:
        return download_model(variant, cached)
    raise FileNotFoundError(model_hint(variant))


def _import_tasks() -> SimpleNamespace:
    """The pieces of mediapipe's Tasks API this backend uses (ImportError with the install line)."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode
        image, image_format = mp.Image, mp.ImageFormat
    except (ImportError, AttributeError) as e:
        raise ImportError(f"{INSTALL_HINT} ({type(e).__name__}: {e})") from e
    return SimpleNamespace(Image=image, ImageFormat=image_format, BaseOptions=BaseOptions,
                           PoseLandmarker=PoseLandmarker, PoseLandmarkerOptions=PoseLandmarkerOptions,
                           RunningMode=RunningMode, version=getattr(mp, "__version__", "unknown"))


def tasks_available() -> bool:
    """Whether mediapipe's Tasks API can be imported here."""
    try:
        _import_tasks()
    except ImportError:
        return False
    return True


def _landmark_array(landmarks: Any) -> tuple[np.ndarray, np.ndarray]:
    """(xyz (33, 3), confidence (33,)) of one pose's world landmarks."""
    lms = list(landmarks)
    if len(lms) != NUM_LANDMARKS:
        raise ValueError(f"mediapipe returned {len(lms)} world landmarks, expected {NUM_LANDMARKS}")
    xyz = np.array([[_num(lm.x), _num(lm.y), _num(lm.z)] for lm in lms], dtype=np.float64)
    vis = np.array([_num(getattr(lm, "visibility", None), 1.0) for lm in lms], dtype=np.float64)
    if np.any(vis < 0) or np.any(vis > 1):  # logits, not probabilities
        vis = 1.0 / (1.0 + np.exp(-vis))
    return xyz, vis


def _num(value: Any, default: float = np.nan) -> float:
    return default if value is None else float(value)


class PoseLandmarkerExtractor:
    """World landmarks (skeleton ``mediapipe33``, metres, hip-centred) of one person per frame.

    Runs ``PoseLandmarker`` in VIDEO mode (it tracks the person across frames) with each frame's
    time from the video (``pts``, in ms, from the first frame). Frames where nobody is found are
    NaN; gaps up to ``max_gap`` frames are interpolated (confidence 0 there).

    Args:
        model: the ``.task`` file, or a variant name; None: ``$KEPT_POSE_MODEL``, else the cached
            ``variant`` file (see :func:`resolve_model`).
        variant: ``lite``, ``full`` or ``heavy`` (used when no file is given).
        allow_download: fetch the ``variant`` model into the cache when there is none; None:
            ``$KEPT_ALLOW_DOWNLOAD``.
        fps: sample the video at this rate; None processes every frame.
        max_gap: longest run of missing frames to interpolate.
        min_pose_detection_confidence, min_pose_presence_confidence, min_tracking_confidence:
            the landmarker's thresholds.
        max_side: downscale frames so the longer side is at most this (the models see 256 px
            anyway); None keeps the video's size.
    """

    name = "mediapipe-tasks"

    def __init__(self, model: str | Path | None = None, variant: str = "full",
                 allow_download: bool | None = None, fps: float | None = None, max_gap: int = 5,
                 min_pose_detection_confidence: float = 0.5, min_pose_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, max_side: int | None = None) -> None:
        if model is not None and str(model) in VARIANTS:
            variant, model = str(model), None
        _check_variant(variant)
        if fps is not None and not float(fps) > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        if max_side is not None and int(max_side) < 1:
            raise ValueError(f"max_side must be a positive integer, got {max_side}")
        self.model = None if model is None else str(model)
        self.variant = variant
        self.allow_download = allow_download
        self.fps = None if fps is None else float(fps)
        self.max_gap = int(max_gap)
        self.min_pose_detection_confidence = float(min_pose_detection_confidence)
        self.min_pose_presence_confidence = float(min_pose_presence_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.max_side = None if max_side is None else int(max_side)
        self._model_path: Path | None = None

    def model_path(self) -> Path:
        """The model file (resolved, and downloaded if allowed, on first use)."""
        if self._model_path is None:
            self._model_path = resolve_model(self.model, self.variant, self.allow_download)
        return self._model_path

    def check(self) -> None:
        """Fail now (ImportError / FileNotFoundError / ValueError) if mediapipe or a loadable model
        is missing: resolves the model and builds (and closes) a landmarker once."""
        tasks = _import_tasks()
        self._landmarker(tasks, self.model_path()).close()

    def _landmarker(self, tasks: SimpleNamespace, model: Path) -> Any:
        try:
            return tasks.PoseLandmarker.create_from_options(self._options(tasks, model))
        except (RuntimeError, ValueError) as e:  # e.g. "Unable to open zip archive."
            raise ValueError(f"mediapipe could not load the pose model {model} ({e}); is it a "
                             f"PoseLandmarker .task file? {model_hint(self.variant)}") from e

    def settings(self) -> dict:
        from pose.cache import content_hash

        path = self.model_path()  # the model's bytes decide the output, not its name
        return {"model": path.name, "model_sha256": content_hash(path)[:16], "fps": self.fps,
                "max_gap": self.max_gap, "max_side": self.max_side,
                "min_pose_detection_confidence": self.min_pose_detection_confidence,
                "min_pose_presence_confidence": self.min_pose_presence_confidence,
                "min_tracking_confidence": self.min_tracking_confidence}

    def _options(self, tasks: SimpleNamespace, model: Path) -> Any:
        return tasks.PoseLandmarkerOptions(
            base_options=tasks.BaseOptions(model_asset_path=str(model)),
            running_mode=tasks.RunningMode.VIDEO, num_poses=1,
            min_pose_detection_confidence=self.min_pose_detection_confidence,
            min_pose_presence_confidence=self.min_pose_presence_confidence,
            min_tracking_confidence=self.min_tracking_confidence)

    def extract(self, video: str | Path) -> KeypointSequence:
        tasks = _import_tasks()  # fail before decoding a long video
        model = self.model_path()
        from pose.tracking import fill_gaps
        from pose.video import iter_frames, probe

        video = Path(video)
        info = probe(video)  # FileNotFoundError / VideoError early
        xyz_rows: list[np.ndarray] = []
        conf_rows: list[np.ndarray] = []
        times: list[float] = []
        last_ms: int | None = None
        landmarker = self._landmarker(tasks, model)
        try:
            from tqdm.auto import tqdm

            expected = round(info.duration * self.fps) if self.fps else info.num_frames
            frames = tqdm(iter_frames(video, fps=self.fps, max_side=self.max_side), total=expected or None,
                          desc=f"pose {video.name}", unit="frame", leave=False)
            for t, frame in frames:
                ms = int(round(t * 1000.0))
                if last_ms is not None and ms <= last_ms:  # a repeated frame (fps above the video's)
                    ms = last_ms + 1
                last_ms = ms
                image = tasks.Image(image_format=tasks.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
                result = landmarker.detect_for_video(image, ms)
                world = list(getattr(result, "pose_world_landmarks", None) or [])
                if world:
                    xyz, conf = _landmark_array(world[0])
                else:
                    xyz, conf = np.full((NUM_LANDMARKS, 3), np.nan), np.zeros(NUM_LANDMARKS)
                xyz_rows.append(xyz)
                conf_rows.append(conf)
                times.append(t)
        finally:
            landmarker.close()
        xyz = np.stack(xyz_rows)
        observed = np.isfinite(xyz).all(axis=-1)
        xyz[~observed] = np.nan
        conf = np.where(observed, np.clip(np.nan_to_num(np.stack(conf_rows)), 0.0, 1.0), 0.0)
        missing = int((~observed.any(axis=1)).sum())
        xyz = fill_gaps(xyz, self.max_gap)
        fps = self.fps if self.fps is not None else float(info.fps)
        return KeypointSequence(
            xyz=xyz, confidence=conf, skeleton="mediapipe33", fps=fps,
            source=f"mediapipe-tasks:{model.stem}", times=np.asarray(times, dtype=np.float64),
            meta={"extractor": self.name, "settings": self.settings(), "video": str(video),
                  "video_fps": float(info.fps), "mediapipe": tasks.version, "up_axis": "-y",
                  "units": "m", "missing_frames": missing})
