"""3D pose from video with MMPose's inferencer (2D detector + 2D pose + a 2D-to-3D lifter).

CONFIRMED from mmpose's code (open-mmlab/mmpose, ``mmpose/apis/inferencers/``):

* ``MMPoseInferencer(pose2d=None, pose2d_weights=None, pose3d=None, pose3d_weights=None,
  device=None, scope='mmpose', det_model=None, det_weights=None, det_cat_ids=None)``; with
  ``pose3d`` it wraps a ``Pose3DInferencer`` (mmpose_inferencer.py).
* Calling it returns a generator; each item is ``{"predictions": [...], "visualization": ...}``
  where ``predictions`` has one entry per input image of the batch, each a list of instance
  dicts built by ``mmpose.structures.split_instances``: ``{"keypoints": [[x, y, z] * K],
  "keypoint_scores": [K], "bbox": ([x0, y0, x1, y1],), "bbox_score": s}`` -- ``bbox`` is a
  1-tuple (a trailing comma in split_instances; a nested list once JSON-dumped) and appears
  only when the instances carry bboxes (structures/utils.py, base_mmpose_inferencer.py
  ``postprocess``). No per-instance ``track_id``: the 3D inferencer sorts instances by the
  track id of its IoU/OKS tracker (pose3d_inferencer.py ``forward``); we use one if present.
* Checkpoints: ``*_weights`` are checkpoint files, ``pose2d``/``pose3d``/``det_model`` configs or
  aliases. ``Pose3DInferencer`` builds its 2D model as ``Pose2DInferencer(pose2d or 'human',
  pose2d_weights, ..., det_model, det_weights, det_cat_ids)``; there, with ``det_model=None`` the
  detector is ``default_det_models[...]`` (``model='rtmdet-m'``, ``cat_ids=(0,)``) and
  ``det_weights`` is *replaced* by its default, so weights alone need a ``det_model``; an explicit
  ``det_model`` keeps ``det_cat_ids`` as given, and ``None`` becomes ``(None,)``, which matches no
  class (pose2d_inferencer.py ``_init_detector``, utils/default_det_models.py).
* Batching: ``MMPoseInferencer.preprocess`` "only supports inference with batch size 1";
  ``batch_size`` is passed on but has no effect with the 1.x inferencer.
* A video *path* input sets ``_video_input`` so the lifter gets a sequence of past/future 2D
  poses and the tracker runs across frames; a list of arrays is treated as unrelated images
  (the buffer is cleared per image: no temporal context). Hence this extractor always feeds the
  video path and, when ``fps`` is given, keeps the frames nearest ``k / fps`` afterwards.
* Call kwargs are filtered to known names: ``disable_rebase_keypoint`` (forward),
  ``num_instances``/``return_vis`` (visualize), ``bbox_thr``, ``nms_thr``,
  ``use_oks_tracking``, ``tracking_thr``, ``disable_norm_pose_2d`` (preprocess).
* Output axes: ``forward`` maps the lifter's camera-frame output ``(x, y, z)`` to
  ``(-x, z, -y)`` (so +z is up) and, unless ``disable_rebase_keypoint``, shifts z so the lowest
  joint is at 0. The temporal window is the lifter config's ``seq_len``, applied through
  ``Pose3DInferencer._pose_seq_extractor = partial(extract_pose_sequence, causal=..., seq_len=...,
  step=...)``; ``temporal_window`` replaces that ``seq_len`` (only for lifters that accept
  shorter sequences, e.g. MotionBERT; fixed-receptive-field VideoPose3D models need theirs).
* The ``human3d`` alias is a MotionBERT-style lifter on H36M-17 joints, hence skeleton
  ``h36m17``.

Known traps, handled below:

* torch >= 2.6 defaults ``torch.load(weights_only=True)``; mmengine's checkpoint loader calls
  ``torch.load`` without ``weights_only`` and its checkpoints pickle mmengine classes (e.g.
  ``HistoryBuffer``), so loading fails with ``UnpicklingError: Weights only load failed``
  (open-mmlab/mmengine issue #1655, PR #1650). :func:`_trusted_torch_load` restores the old
  default *only while the inferencer is built*. That unpickles arbitrary objects: use it only
  with checkpoints you trust (local files you made, or OpenMMLab's model zoo).
* mmpose 1.x asserts ``mmcv >= 2.0.0, < 2.2.0`` at import; a newer mmcv (or none) raises an
  ImportError here with the install recipe.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pose.sequence import KeypointSequence

__all__ = ["MMPoseExtractor", "INSTALL_HINT"]

INSTALL_HINT = (
    "the 'mmpose' pose extractor needs mmpose >= 1.3 with mmcv >= 2.0, < 2.2 (mmpose's own pin) in a "
    "separate environment with torch/torchvision: pip install -U openmim && mim install mmengine "
    "'mmcv>=2.0.1,<2.2.0' 'mmdet>=3.1.0' 'mmpose>=1.3' (mmcv 2.1 has prebuilt wheels only for "
    "older torch/CUDA pairs; see https://mmcv.readthedocs.io/en/latest/get_started/installation.html)"
)
H36M_JOINTS = 17
#: mmpose's default person detector (``default_det_models["human"]["model"]``, an mmdet alias),
#: used as the config of weights given alone
DEFAULT_DET_MODEL = "rtmdet-m"


@contextlib.contextmanager
def _trusted_torch_load() -> Iterator[None]:
    """Make ``torch.load`` default to ``weights_only=False`` inside the block (torch >= 2.6).

    Trusted checkpoints only: ``weights_only=False`` runs pickle, which can execute code. An
    explicit ``weights_only=...`` from the caller is respected. The original is restored.
    """
    import torch

    original = torch.load

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def _import_inferencer() -> type:
    try:
        from mmpose.apis import MMPoseInferencer
    except (ImportError, AssertionError) as e:  # mmpose asserts its mmcv version range
        raise ImportError(f"{INSTALL_HINT} ({type(e).__name__}: {e})") from e
    return MMPoseInferencer


def _build_inferencer(**kwargs: Any) -> Any:
    """``MMPoseInferencer(**kwargs)`` with checkpoints loaded the pre-2.6 way (see the module doc).

    Module-level so tests can replace it with a fake.
    """
    cls = _import_inferencer()
    with _trusted_torch_load():
        return cls(**kwargs)


def _probe_video(path: Path) -> tuple[float, tuple[int, int] | None]:
    """(frame rate, (width, height) as displayed) of a video, via :mod:`pose.video`."""
    from pose.video import probe

    info = probe(path)
    return float(info.fps), tuple(info.display_size)  # type: ignore[return-value]


def _flat_bbox(inst: dict) -> tuple[float, float, float, float] | None:
    b = inst.get("bbox")
    if b is None:
        return None
    arr = np.asarray(b, dtype=np.float64).reshape(-1)
    if arr.size != 4 or not np.isfinite(arr).all():
        return None
    if (arr[2] - arr[0]) <= 0 or (arr[3] - arr[1]) <= 0:
        return None  # mmpose zeroes the boxes of instances it drops
    return tuple(float(v) for v in arr)  # type: ignore[return-value]


def _frames_of(results: Any) -> Iterator[list[dict]]:
    """Instance lists, one per frame, from the inferencer's generator."""
    for res in results:
        preds = res.get("predictions", []) if isinstance(res, dict) else []
        if preds and isinstance(preds[0], dict):  # a single frame given as a flat instance list
            preds = [preds]
        if not preds:
            yield []
            continue
        for frame in preds:
            yield [i for i in (frame or []) if isinstance(i, dict)]


class MMPoseExtractor:
    """3D keypoints (H36M-17) of the main performer of a video, via MMPose.

    Args:
        model: the ``pose3d`` model: an alias (``"human3d"``), a config name or a config path.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:0"`` ...
        det_checkpoint: detector **weights** (a local .pth, mmpose's ``det_weights``), or a
            ``(config, weights)`` pair; None: the zoo weights of ``det_model``.
        det_model: detector config path or mmdet alias (mmpose's ``det_model``); None: mmpose's
            default person detector, or :data:`DEFAULT_DET_MODEL` (``rtmdet-m``, the model behind
            that default) when only ``det_checkpoint`` is given -- mmpose ignores ``det_weights``
            without a ``det_model``.
        det_cat_ids: detector class ids of a person, used with an explicit detector (mmpose finds
            nobody without them); default ``(0,)``, the COCO person class.
        pose2d_model: the 2D model (mmpose's ``pose2d``: alias, config name or path); None: the
            2D model the 3D alias implies (mmpose's ``"human"``).
        pose2d_checkpoint: 2D model weights (a local .pth, ``pose2d_weights``) of ``pose2d_model``;
            None: its zoo weights.
        pose3d_checkpoint: lifter weights (a local .pth, ``pose3d_weights``) of ``model``; None:
            the zoo weights of ``model``.
        batch_size: passed to the inferencer (mmpose 1.x processes one frame at a time anyway).
        fps: output sample rate; None keeps every frame. The model always sees every frame.
        temporal_window: override the lifter's sequence length (see the module docstring).
        max_gap: frames without the performer up to this long are interpolated (``fill_gaps``).
        disable_rebase_keypoint: keep mmpose from shifting z so the lowest joint is at 0.
    """

    name = "mmpose"

    def __init__(self, model: str = "human3d", device: str = "cpu", det_checkpoint: Any = None,
                 pose2d_checkpoint: str | None = None, pose3d_checkpoint: str | None = None,
                 batch_size: int = 16, fps: float | None = None, temporal_window: int | None = None,
                 max_gap: int = 5, disable_rebase_keypoint: bool = False, det_model: str | None = None,
                 pose2d_model: str | None = None, det_cat_ids: Any = (0,)) -> None:
        for flag, value, config_flag in (("det_checkpoint", det_checkpoint, "det_model (--det-model)"),
                                         ("pose2d_checkpoint", pose2d_checkpoint, "pose2d_model (--pose2d-model)"),
                                         ("pose3d_checkpoint", pose3d_checkpoint, "model (--model)")):
            if isinstance(value, (str, Path)) and str(value).endswith(".py"):
                raise ValueError(f"{flag} takes model weights (.pth); {value} is a config: pass it as "
                                 f"{config_flag}")
        if fps is not None and not float(fps) > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if temporal_window is not None and int(temporal_window) < 1:
            raise ValueError(f"temporal_window must be >= 1, got {temporal_window}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.model = str(model)
        self.device = device
        self.det_checkpoint = det_checkpoint
        self.det_model = None if det_model is None else str(det_model)
        self.pose2d_model = None if pose2d_model is None else str(pose2d_model)
        self.det_cat_ids = tuple(int(c) for c in (det_cat_ids if isinstance(det_cat_ids, (tuple, list))
                                                  else (det_cat_ids,)))
        self.pose2d_checkpoint = pose2d_checkpoint
        self.pose3d_checkpoint = pose3d_checkpoint
        self.batch_size = int(batch_size)
        self.fps = None if fps is None else float(fps)
        self.temporal_window = None if temporal_window is None else int(temporal_window)
        self.max_gap = int(max_gap)
        self.disable_rebase_keypoint = bool(disable_rebase_keypoint)
        self._inferencer: Any = None

    def settings(self) -> dict:
        det = self.det_checkpoint
        return {"model": self.model, "det_checkpoint": list(det) if isinstance(det, tuple) else det,
                "pose2d_checkpoint": self.pose2d_checkpoint,
                "pose3d_checkpoint": self.pose3d_checkpoint, "fps": self.fps,
                "temporal_window": self.temporal_window, "max_gap": self.max_gap,
                "disable_rebase_keypoint": self.disable_rebase_keypoint,
                # only when set, so that caches made before these options existed stay valid
                **{k: v for k, v in (("det_model", self.det_model), ("pose2d_model", self.pose2d_model))
                   if v is not None}}

    # -- model ---------------------------------------------------------------------------------
    def _init_kwargs(self) -> dict:
        kw: dict[str, Any] = {"pose3d": self.model, "device": self.device}
        if self.pose3d_checkpoint:
            kw["pose3d_weights"] = str(self.pose3d_checkpoint)
        if self.pose2d_model:
            kw["pose2d"] = self.pose2d_model
        if self.pose2d_checkpoint:
            kw["pose2d_weights"] = str(self.pose2d_checkpoint)
        det_model, det_weights = self.det_model, self.det_checkpoint
        if isinstance(det_weights, (tuple, list)):
            det_model, det_weights = det_weights
        if det_weights and not det_model:
            det_model = DEFAULT_DET_MODEL  # without det_model, mmpose replaces det_weights by its defaults
        if det_model:
            kw["det_model"] = str(det_model)
            kw["det_cat_ids"] = self.det_cat_ids  # None would match no class: nobody found
        if det_weights:
            kw["det_weights"] = str(det_weights)
        return kw

    def _apply_temporal_window(self, inferencer: Any) -> None:
        if self.temporal_window is None:
            return
        inner = getattr(inferencer, "inferencer", inferencer)
        ext = getattr(inner, "_pose_seq_extractor", None)
        if not isinstance(ext, functools.partial) or "seq_len" not in (ext.keywords or {}):
            raise ValueError("temporal_window: this mmpose version does not expose the lifter's "
                             "sequence length (Pose3DInferencer._pose_seq_extractor); leave it None "
                             "or set seq_len in the model config")
        inner._pose_seq_extractor = functools.partial(
            ext.func, *ext.args, **{**ext.keywords, "seq_len": self.temporal_window})

    def inferencer(self) -> Any:
        """The MMPose inferencer, built on first use."""
        if self._inferencer is None:
            inf = _build_inferencer(**self._init_kwargs())
            self._apply_temporal_window(inf)
            self._inferencer = inf
        return self._inferencer

    def check(self) -> None:
        """Fail now (ImportError, missing checkpoint) rather than on the first video: builds the model."""
        self.inferencer()

    # -- extraction ----------------------------------------------------------------------------
    def extract(self, video: str | Path) -> KeypointSequence:
        video = Path(video)
        if not video.is_file():
            raise FileNotFoundError(f"video not found: {video}")
        video_fps, frame_size = _probe_video(video)
        inf = self.inferencer()
        results = inf(str(video), return_vis=False, batch_size=self.batch_size,
                      disable_rebase_keypoint=self.disable_rebase_keypoint)
        frames = list(_frames_of(results))
        if not frames:
            raise ValueError(f"{video}: mmpose returned no frames")
        xyz, conf, chosen = self._convert(frames, frame_size)
        times = np.arange(len(frames)) / video_fps
        if self.fps is not None:  # nearest frame to each k / fps within the video
            n = int(np.floor(times[-1] * self.fps + 1e-9)) + 1
            idx = np.clip(np.rint(np.arange(n) / self.fps * video_fps).astype(int), 0, len(frames) - 1)
            xyz, conf, times = xyz[idx], conf[idx], times[idx]
            chosen = [chosen[i] for i in idx]
        from pose.tracking import fill_gaps

        observed = np.isfinite(xyz).all(axis=-1)
        xyz = fill_gaps(xyz, self.max_gap).astype(np.float32)
        filled = np.isfinite(xyz).all(axis=-1) & ~observed
        # observed joints keep their keypoint_scores; interpolated ones get 0 (not measured)
        conf = np.where(observed, conf, 0.0).astype(np.float32)
        out_fps = self.fps if self.fps is not None else video_fps
        return KeypointSequence(
            xyz=xyz, confidence=conf, skeleton="h36m17", fps=out_fps, source=f"mmpose:{self.model}",
            times=times, meta={"extractor": self.name, "settings": self.settings(),
                               "video": str(video), "video_fps": video_fps,
                               "up_axis": "z", "filled_frames": int(filled.any(axis=1).sum()),
                               "missing_frames": int(sum(c is None for c in chosen))})

    def _convert(self, frames: list[list[dict]], frame_size: tuple[int, int] | None
                 ) -> tuple[np.ndarray, np.ndarray, list[int | None]]:
        """(xyz (F, 17, 3) NaN where nobody, confidence (F, 17), chosen index per frame)."""
        chosen = _select(frames, frame_size)
        n = len(frames)
        xyz = np.full((n, H36M_JOINTS, 3), np.nan, dtype=np.float64)
        conf = np.zeros((n, H36M_JOINTS), dtype=np.float64)
        for f, (insts, k) in enumerate(zip(frames, chosen)):
            if k is None:
                continue
            inst = insts[k]
            kp = np.asarray(inst.get("keypoints"), dtype=np.float64)
            kp = kp.reshape(-1, kp.shape[-1]) if kp.ndim >= 2 else kp
            if kp.ndim != 2 or kp.shape != (H36M_JOINTS, 3):
                raise ValueError(f"mmpose frame {f}: expected keypoints of shape (17, 3), got "
                                 f"{kp.shape}; is the pose3d model an H36M-17 lifter?")
            sc = np.asarray(inst.get("keypoint_scores", np.ones(H36M_JOINTS)), dtype=np.float64).reshape(-1)
            if sc.shape != (H36M_JOINTS,):
                sc = np.ones(H36M_JOINTS)
            xyz[f] = kp
            conf[f] = np.clip(np.nan_to_num(sc, nan=0.0), 0.0, 1.0)
        bad = ~np.isfinite(xyz).all(axis=-1)
        xyz[bad] = np.nan
        conf[bad] = 0.0
        return xyz, conf, chosen


def _select(frames: list[list[dict]], frame_size: tuple[int, int] | None) -> list[int | None]:
    """Performer index per frame: :func:`pose.tracking.select_performer` on the boxes.

    Instances without a usable box are not candidates. If no instance has a box at all (a
    lifter that does not carry them), the first instance of each frame is taken: mmpose sorts
    instances by track id, so that is the earliest-tracked person.
    """
    from pose.tracking import select_performer

    boxed = [[(i, b) for i, inst in enumerate(insts) if (b := _flat_bbox(inst)) is not None]
             for insts in frames]
    if not any(boxed):
        return [0 if insts else None for insts in frames]
    picks = select_performer([[{"bbox": b} for _, b in row] for row in boxed], frame_size=frame_size)
    return [None if p is None else boxed[f][p][0] for f, p in enumerate(picks)]
