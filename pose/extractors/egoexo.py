"""Ego-Exo4D body pose: the annotation JSON reader and an extractor over a download folder.

File layout (CONFIRMED in ``kept/data/egoexo.py``'s module docstring, with its sources):
``<root>/annotations/ego_pose/<split>/body/{annotation,automatic}/<take_uid>.json`` holding
``{"<frame_number>": [{"annotation3D": {"left-shoulder": {"x", "y", "z"}, ...},
"annotation2D": {...}}]}``; joints that are not annotated are absent; the 17 joint names are
the COCO joints with hyphens. ASSUMED: manual ``annotation`` files are 30 fps, ``automatic``
60 fps (pass ``fps`` to override).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pose.sequence import KeypointSequence

__all__ = ["EGOEXO_BODY_JOINTS", "POSE_FPS", "read_body_pose", "find_body_pose", "EgoExoExtractor"]

#: Ego-Exo4D body joints in coco17 order (pose.skeleton's coco17 uses underscores).
EGOEXO_BODY_JOINTS = (
    "nose", "left-eye", "right-eye", "left-ear", "right-ear", "left-shoulder", "right-shoulder",
    "left-elbow", "right-elbow", "left-wrist", "right-wrist", "left-hip", "right-hip",
    "left-knee", "right-knee", "left-ankle", "right-ankle",
)
#: frame rate per body-pose folder (ASSUMED, see the module docstring).
POSE_FPS = {"annotation": 30.0, "automatic": 60.0}
_SOURCES = ("annotation", "automatic", "auto")


def _read_body_pose(path: Path, fps: float | None = None) -> tuple[np.ndarray, float, int]:
    """(xyz (F, 17, 3) from the first annotated frame, fps, first frame number)."""
    path = Path(path)
    if fps is None:
        fps = POSE_FPS.get(path.parent.name)
        if fps is None:
            raise ValueError(f"{path}: cannot tell the frame rate from folder "
                             f"'{path.parent.name}'; pass fps")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of frame number -> annotations")
    frames: dict[int, dict] = {}
    for key, entries in data.items():
        try:
            n = int(key)
        except (TypeError, ValueError):
            continue
        if isinstance(entries, dict):
            entries = [entries]
        for e in entries if isinstance(entries, list) else []:
            joints = e.get("annotation3D") if isinstance(e, dict) else None
            if isinstance(joints, dict) and joints:
                frames[n] = joints
                break
    if not frames:
        raise ValueError(f"{path}: no frame with 3D joints (annotation3D)")
    first, last = min(frames), max(frames)
    xyz = np.full((last - first + 1, len(EGOEXO_BODY_JOINTS), 3), np.nan, dtype=np.float64)
    for n, joints in frames.items():
        for j, name in enumerate(EGOEXO_BODY_JOINTS):
            p = joints.get(name) or joints.get(name.replace("-", "_"))
            if isinstance(p, dict):
                try:
                    xyz[n - first, j] = [float(p["x"]), float(p["y"]), float(p["z"])]
                except (KeyError, TypeError, ValueError):
                    pass
    xyz[~np.isfinite(xyz)] = np.nan
    return xyz, float(fps), first


def read_body_pose(path: str | Path, fps: float | None = None) -> tuple[np.ndarray, float]:
    """Read an Ego-Exo4D body-pose JSON into coco17 order.

    Args:
        path: ``.../body/annotation/<uid>.json`` or ``.../body/automatic/<uid>.json``.
        fps: the file's frame rate (default: 30 for ``annotation``, 60 for ``automatic``).

    Returns:
        ``(xyz, fps)``: row ``i`` is frame ``first + i`` (first = lowest annotated frame
        number); NaN where a frame or joint is missing.

    Shapes:
        xyz: (F, 17, 3) float64
    """
    xyz, fps, _ = _read_body_pose(Path(path), fps)
    return xyz, fps


def find_body_pose(root: str | Path, take_uid: str, kind: str) -> Path | None:
    """``annotations/ego_pose/<split>/body/<kind>/<take_uid>.json`` under ``root``, any split."""
    for p in sorted((Path(root) / "annotations" / "ego_pose").glob(f"*/body/{kind}/{take_uid}.json")):
        if p.is_file():
            return p
    return None


class EgoExoExtractor:
    """Body pose of an Ego-Exo4D take, from its annotation files (no video needed).

    Args:
        root: the Ego-Exo4D download folder (holding ``annotations/ego_pose/``).
        source: ``"annotation"`` (manual), ``"automatic"``, or ``"auto"`` (manual where present,
            else automatic).
        fps: override the frame rate (default per folder, see :data:`POSE_FPS`).

    ``extract(take)`` takes a take uid or the path of a body-pose JSON file and returns a coco17
    sequence: confidence 1 where a joint is observed, 0 (and NaN) elsewhere; ``times`` are
    ``frame_number / fps`` (so the first annotated frame keeps its offset); source
    ``egoexo:annotation`` or ``egoexo:automatic``.
    """

    name = "egoexo"

    def __init__(self, root: str | Path, source: str = "annotation", fps: float | None = None) -> None:
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {list(_SOURCES)}, got {source!r}")
        self.root = Path(root)
        self.source = source
        self.fps = None if fps is None else float(fps)

    def settings(self) -> dict:
        return {"root": str(self.root), "source": self.source, "fps": self.fps}

    def _locate(self, take: str | Path) -> Path:
        p = Path(take)
        if p.suffix.lower() == ".json":
            if not p.is_file():
                raise FileNotFoundError(f"Ego-Exo4D body-pose file not found: {p}")
            return p
        uid = str(take)
        kinds = ("annotation", "automatic") if self.source == "auto" else (self.source,)
        for kind in kinds:
            found = find_body_pose(self.root, uid, kind)
            if found is not None:
                return found
        raise FileNotFoundError(
            f"no Ego-Exo4D body pose for take {uid!r} under {self.root} (looked for "
            + " or ".join(f"annotations/ego_pose/<split>/body/{k}/{uid}.json" for k in kinds)
            + "); download it with '--parts annotations' or try source='auto'")

    def extract(self, video: str | Path) -> KeypointSequence:
        path = self._locate(video)
        xyz, fps, first = _read_body_pose(path, self.fps)
        kind = path.parent.name if path.parent.name in POSE_FPS else "file"
        observed = np.isfinite(xyz).all(axis=-1)
        xyz[~observed] = np.nan
        meta: dict[str, Any] = {"extractor": self.name, "settings": self.settings(),
                                "path": str(path), "take_uid": path.stem, "start_frame": int(first)}
        return KeypointSequence(
            xyz=xyz, confidence=observed.astype(np.float32), skeleton="coco17", fps=fps,
            source=f"egoexo:{kind}", times=(first + np.arange(xyz.shape[0])) / fps, meta=meta)
