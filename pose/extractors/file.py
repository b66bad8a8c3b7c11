"""Keypoints already on disk: ``.npy``, ``.npz`` or a keypoint-folder dataset recording.

Inputs accepted by :meth:`FileExtractor.extract`:

* ``x.npy``: an array (F, P, 3); needs ``skeleton`` and ``fps`` given to the extractor.
* ``x.npz``: a file written by :meth:`KeypointSequence.save`, or arrays ``xyz`` (or
  ``keypoints``) (F, P, 3) with optional ``confidence`` (F, P), ``fps`` and ``skeleton``
  (0-d arrays); the extractor's ``skeleton``/``fps`` fill in what the file lacks (and override
  the plain-array form).
* ``DATASET_DIR::RECORDING_ID``: ``DATASET_DIR/keypoints/RECORDING_ID.npy`` of a keypoint-folder
  dataset; skeleton and fps come from ``DATASET_DIR/dataset.json``. An inline skeleton spec is
  named after the dataset (the name from dataset.json) and kept in ``meta["skeleton_spec"]``.

Confidence is 1 where all three coordinates of a joint are finite, 0 elsewhere (unless the file
carries a confidence array).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pose.sequence import KeypointSequence

__all__ = ["FileExtractor"]

_SEP = "::"


def _scalar(z: Any, key: str) -> Any:
    v = np.asarray(z[key])
    if v.shape not in ((), (1,)):
        raise ValueError(f"'{key}' must be a scalar, got shape {v.shape}")
    return v.reshape(()).item()


def _check_xyz(xyz: np.ndarray, where: str) -> np.ndarray:
    xyz = np.asarray(xyz)
    if xyz.dtype.kind not in "fiu":
        raise ValueError(f"{where}: keypoints must be numeric, got dtype {xyz.dtype}")
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValueError(f"{where}: keypoints must have shape (frames, joints, 3), got "
                         f"{xyz.shape} (rank {xyz.ndim})")
    if xyz.shape[0] == 0:
        raise ValueError(f"{where}: no frames")
    xyz = xyz.astype(np.float32)
    xyz[~np.isfinite(xyz)] = np.nan
    return xyz


def _check_joints(skeleton: str, xyz: np.ndarray, where: str) -> None:
    """Joint count against a built-in skeleton (unknown names are not checked here)."""
    from pose.skeleton import BUILTIN_SKELETONS

    sk = BUILTIN_SKELETONS.get(skeleton)
    if sk is not None and len(sk.joints) != xyz.shape[1]:
        raise ValueError(f"{where}: {xyz.shape[1]} joints, but skeleton '{skeleton}' has "
                         f"{len(sk.joints)}")


def _confidence(xyz: np.ndarray) -> np.ndarray:
    return np.isfinite(xyz).all(axis=-1).astype(np.float32)


class FileExtractor:
    """Read keypoints from a file (see the module docstring for the accepted forms).

    Args:
        skeleton: skeleton name for ``.npy`` (and ``.npz`` arrays without one).
        fps: frame rate for ``.npy`` (and ``.npz`` arrays without one).
    """

    name = "file"

    def __init__(self, skeleton: str | None = None, fps: float | None = None) -> None:
        if fps is not None and not float(fps) > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.skeleton = skeleton
        self.fps = None if fps is None else float(fps)

    def settings(self) -> dict:
        return {"skeleton": self.skeleton, "fps": self.fps}

    def extract(self, video: str | Path) -> KeypointSequence:
        text = str(video)
        if _SEP in text:
            root, rid = text.rsplit(_SEP, 1)
            return self._dataset(Path(root), rid)
        path = Path(video)
        suffix = path.suffix.lower()
        if suffix not in (".npy", ".npz"):
            raise ValueError(f"{path}: unsupported keypoint file '{suffix or '(no suffix)'}'; "
                             f"give a .npy, a .npz or DATASET_DIR{_SEP}RECORDING_ID")
        if not path.is_file():
            raise FileNotFoundError(f"keypoint file not found: {path}")
        return self._npy(path) if suffix == ".npy" else self._npz(path)

    def _meta(self, path: Path, **extra: Any) -> dict:
        return {"extractor": self.name, "settings": self.settings(), "path": str(path), **extra}

    def _npy(self, path: Path) -> KeypointSequence:
        if self.skeleton is None or self.fps is None:
            raise ValueError(f"{path}: a .npy file has no skeleton or frame rate; pass "
                             "skeleton=... and fps=... to the file extractor")
        xyz = _check_xyz(np.load(path, allow_pickle=False), str(path))
        _check_joints(self.skeleton, xyz, str(path))
        return KeypointSequence(xyz=xyz, confidence=_confidence(xyz), skeleton=self.skeleton,
                                fps=self.fps, source=str(path), meta=self._meta(path))

    def _npz(self, path: Path) -> KeypointSequence:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "header" in files:
                return KeypointSequence.load(path)
            key = "xyz" if "xyz" in files else "keypoints" if "keypoints" in files else None
            if key is None:
                raise ValueError(f"{path}: expected a kept keypoint sequence (KeypointSequence.save) "
                                 f"or an array 'xyz' or 'keypoints'; found {sorted(files)}")
            xyz = _check_xyz(z[key], f"{path}:{key}")
            conf = None
            if "confidence" in files:
                conf = np.asarray(z["confidence"], dtype=np.float32)
                if conf.shape != xyz.shape[:2]:
                    raise ValueError(f"{path}: confidence must have shape {xyz.shape[:2]}, got {conf.shape}")
            fps = self.fps if self.fps is not None else (
                float(_scalar(z, "fps")) if "fps" in files else None)
            skeleton = self.skeleton if self.skeleton is not None else (
                str(_scalar(z, "skeleton")) if "skeleton" in files else None)
        missing = [n for n, v in (("skeleton", skeleton), ("fps", fps)) if v is None]
        if missing:
            raise ValueError(f"{path}: no {' or '.join(missing)} in the file; pass "
                             + " and ".join(f"{m}=..." for m in missing) + " to the file extractor")
        _check_joints(skeleton, xyz, str(path))
        if conf is None:
            conf = _confidence(xyz)
        conf = np.where(np.isfinite(xyz).all(axis=-1), conf, 0.0)
        return KeypointSequence(xyz=xyz, confidence=conf, skeleton=skeleton, fps=fps,
                                source=str(path), meta=self._meta(path))

    def _dataset(self, root: Path, rid: str) -> KeypointSequence:
        info_path = root / "dataset.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{info_path} not found; DATASET_DIR{_SEP}RECORDING_ID needs a "
                                    "keypoint-folder dataset (dataset.json + keypoints/<id>.npy)")
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        if not isinstance(info, dict) or "fps" not in info or "skeleton" not in info:
            raise ValueError(f"{info_path}: needs 'fps' and 'skeleton'")
        path = root / "keypoints" / f"{rid}.npy"
        if not rid or "/" in rid or "\\" in rid or not path.is_file():
            raise FileNotFoundError(f"recording {rid!r} not found: {path}")
        xyz = _check_xyz(np.load(path, allow_pickle=False), str(path))
        spec = info["skeleton"]
        extra: dict[str, Any] = {"dataset": str(root), "recording": rid}
        if isinstance(spec, dict):
            skeleton = str(info.get("name") or root.name)
            extra["skeleton_spec"] = spec
            joints = spec.get("joints") or []
            if len(joints) != xyz.shape[1]:
                raise ValueError(f"{path}: {xyz.shape[1]} joints, but the inline skeleton of "
                                 f"{info_path} has {len(joints)}")
        else:
            skeleton = str(spec)
            _check_joints(skeleton, xyz, str(path))
        return KeypointSequence(xyz=xyz, confidence=_confidence(xyz), skeleton=skeleton,
                                fps=float(info["fps"]), source=f"{root}{_SEP}{rid}",
                                meta=self._meta(path, **extra))
