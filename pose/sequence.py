"""A keypoint sequence: what every pose extractor returns and every consumer reads.

Shapes glossary: F frames, P joints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KeypointSequence"]


@dataclass
class KeypointSequence:
    """3D keypoints of one performer in one recording.

    Args:
        xyz: positions, NaN where a joint is missing.
        confidence: per-joint confidence in [0, 1] (0 where missing; 1 for annotations).
        skeleton: built-in skeleton name (``coco17``, ``h36m17``, ``mediapipe33``).
        fps: frames per second of ``xyz`` (the sampling rate, not necessarily the video's).
        source: where it came from, e.g. ``mmpose:human3d``, ``egoexo:annotation``, a file path.
        times: time of each frame in seconds (default ``arange(F) / fps``).
        meta: anything else (extractor settings, video path, content hash).

    Shapes:
        xyz: (F, P, 3) float32
        confidence: (F, P) float32
        times: (F,) float64
    """

    xyz: np.ndarray
    confidence: np.ndarray
    skeleton: str
    fps: float
    source: str
    times: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyz = np.asarray(self.xyz, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        if self.xyz.ndim != 3 or self.xyz.shape[-1] != 3:
            raise ValueError(f"xyz must have shape (frames, joints, 3), got {self.xyz.shape}")
        if self.confidence.shape != self.xyz.shape[:2]:
            raise ValueError(f"confidence must have shape {self.xyz.shape[:2]}, got {self.confidence.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.times is None:
            self.times = np.arange(self.xyz.shape[0]) / float(self.fps)
        self.times = np.asarray(self.times, dtype=np.float64)
        if self.times.shape != (self.xyz.shape[0],):
            raise ValueError(f"times must have one entry per frame ({self.xyz.shape[0]}), got {self.times.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.xyz.shape[0])

    def save(self, path: str | Path) -> None:
        """Write as ``.npz`` (arrays plus a JSON header), atomically."""
        from kept.io import atomic_path  # local: pose must not need torch to import

        header = {"skeleton": self.skeleton, "fps": float(self.fps), "source": self.source, "meta": self.meta}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, xyz=self.xyz, confidence=self.confidence, times=self.times,
                         header=np.array(json.dumps(header)))

    @classmethod
    def load(cls, path: str | Path) -> "KeypointSequence":
        """Read a sequence written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"keypoint sequence not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("xyz", "confidence", "times", "header") if k not in z.files]
            if missing:
                raise ValueError(f"{path} is not a kept keypoint sequence (missing {missing})")
            header = json.loads(str(z["header"]))
            return cls(xyz=z["xyz"], confidence=z["confidence"], skeleton=header["skeleton"], fps=header["fps"],
                       source=header["source"], times=z["times"], meta=header.get("meta", {}))
