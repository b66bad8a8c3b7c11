"""3D pose from video with MediaPipe Pose (legacy ``mediapipe.solutions.pose``), 33 landmarks.

CONFIRMED: MediaPipe Pose's world landmarks are "real-world 3D coordinates of pose landmarks
(in meters with the origin at center of hips)" (google/mediapipe release v0.8.6 notes); the
legacy API is ``mp.solutions.pose.Pose(static_image_mode, model_complexity,
min_detection_confidence, ...)``, ``results = pose.process(rgb_uint8_image)``,
``results.pose_world_landmarks.landmark[i].x/.y/.z/.visibility`` (None when nobody is found).
ASSUMED (not confirmed from a public source here): the world axes follow the image's (x right,
y down, z towards the camera is negative), so "up" is ``-y``; recorded in ``meta["up_axis"]``.

mediapipe 0.10.21 pins ``numpy < 2``, so it cannot share an environment with numpy 2: install
it in a separate virtual environment (``pip install "kept[mediapipe]"`` in a fresh venv with
``numpy<2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pose.sequence import KeypointSequence

__all__ = ["MediaPipeExtractor", "INSTALL_HINT", "NUM_LANDMARKS"]

NUM_LANDMARKS = 33
INSTALL_HINT = (
    "the 'mediapipe' pose extractor needs the mediapipe package, which (0.10.21) requires numpy<2 and "
    "so cannot share an environment with numpy 2: create a separate virtual environment and run "
    "pip install \"kept[mediapipe]\" \"numpy<2\" there"
)


def _import_mediapipe() -> Any:
    try:
        import mediapipe as mp
        pose_solution = mp.solutions.pose
    except (ImportError, AttributeError) as e:
        newer = ""
        if isinstance(e, AttributeError):  # mediapipe >= 1.0: no legacy solutions API
            newer = (f"mediapipe {getattr(mp, '__version__', '?')} has no legacy 'solutions' API; in this "
                     "environment use --backend mediapipe-tasks (the Tasks API PoseLandmarker). Otherwise: ")
        raise ImportError(f"{newer}{INSTALL_HINT} ({type(e).__name__}: {e})") from e
    return pose_solution


class MediaPipeExtractor:
    """World landmarks (skeleton ``mediapipe33``, metres, hip-centred) of one person per frame.

    MediaPipe Pose tracks a single person. Confidence is the landmark ``visibility``; frames
    where nobody is detected are NaN, and gaps up to ``max_gap`` frames are interpolated
    (confidence 0 there).

    Args:
        model_complexity: 0, 1 or 2 (MediaPipe's pose landmark model size). Default 1: the
            mediapipe 0.10.21 wheel ships only the "full" model (``pose_landmark_full.tflite``,
            complexity 1); 0 ("lite") and 2 ("heavy") are downloaded by MediaPipe on first use,
            which fails offline (checked here: complexity 2 tried to download
            ``pose_landmark_heavy.tflite``).
        min_detection_confidence: MediaPipe's person detection threshold.
        fps: sample rate; None processes every frame.
        max_gap: longest run of missing frames to interpolate.
    """

    name = "mediapipe"

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 fps: float | None = None, max_gap: int = 5) -> None:
        if model_complexity not in (0, 1, 2):
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {model_complexity}")
        if fps is not None and not float(fps) > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.model_complexity = int(model_complexity)
        self.min_detection_confidence = float(min_detection_confidence)
        self.fps = None if fps is None else float(fps)
        self.max_gap = int(max_gap)

    def settings(self) -> dict:
        return {"model_complexity": self.model_complexity,
                "min_detection_confidence": self.min_detection_confidence,
                "fps": self.fps, "max_gap": self.max_gap}

    def check(self) -> None:
        """Fail now (ImportError with the install recipe) if mediapipe's legacy API is missing."""
        _import_mediapipe()

    def extract(self, video: str | Path) -> KeypointSequence:
        pose_solution = _import_mediapipe()  # fail before decoding a long video
        from pose.tracking import fill_gaps
        from pose.video import probe, read_frames

        video = Path(video)
        frames, times = read_frames(video, fps=self.fps)
        n = len(frames)
        xyz = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float64)
        conf = np.zeros((n, NUM_LANDMARKS), dtype=np.float64)
        with pose_solution.Pose(static_image_mode=False, model_complexity=self.model_complexity,
                                min_detection_confidence=self.min_detection_confidence) as model:
            from tqdm.auto import tqdm

            for f in tqdm(range(n), desc=f"pose {video.name}", unit="frame", leave=False):
                res = model.process(np.ascontiguousarray(frames[f]))  # RGB uint8, as MediaPipe wants
                world = getattr(res, "pose_world_landmarks", None)
                if world is None:
                    continue
                lms = list(world.landmark)
                if len(lms) != NUM_LANDMARKS:
                    raise ValueError(f"mediapipe returned {len(lms)} world landmarks, expected 33")
                xyz[f] = [[lm.x, lm.y, lm.z] for lm in lms]
                conf[f] = [getattr(lm, "visibility", 1.0) for lm in lms]
        observed = np.isfinite(xyz).all(axis=-1)
        xyz[~observed] = np.nan
        conf = np.where(observed, np.clip(np.nan_to_num(conf), 0.0, 1.0), 0.0)
        xyz = fill_gaps(xyz, self.max_gap)
        if self.fps is not None:
            fps = self.fps
        else:
            fps = float(probe(video).fps)
        return KeypointSequence(
            xyz=xyz, confidence=conf, skeleton="mediapipe33", fps=fps,
            source=f"mediapipe:pose{self.model_complexity}", times=times,
            meta={"extractor": self.name, "settings": self.settings(), "video": str(video),
                  "up_axis": "-y", "units": "m", "missing_frames": int((~observed.any(axis=1)).sum())})
