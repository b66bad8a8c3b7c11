"""Keyframe images of a recording, as the vision-language model sees it.

TRL's vision-language path takes images, not videos, so every recording becomes N images at
evenly spaced times: the centres of N equal time bins, ``t_i = (i + 1/2) T / N``.

- With a video (``samples.csv`` column ``video``, a path relative to the dataset root), the
  frames nearest those times are decoded with PyAV (:func:`pose.video.read_frames`) and scaled so
  the longer side is ``image_size``.
- Without one (keypoint-only data such as the demo, UI-PRMD or JIGSAWS kinematics), the skeleton
  is drawn at those frames with matplotlib. *Decision*: the VLM then sees skeleton renderings,
  not people: a square white image per keyframe, the recording turned to face the same way as
  KEPT sees it (:func:`kept.features.prepare_keypoints`), viewed from the front-left (35 degrees
  about the vertical axis, orthographic, so depth and sideways motion both show), left limbs blue,
  right limbs red, joints black, the floor level of the whole recording as a grey line. The
  axes' scale is fixed per recording, so motion between keyframes stays visible.

Shapes: xyz (F, P, 3); images are PIL RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pose.kinematics import UP_AXES
from pose.show import bone_colour
from pose.skeleton import Skeleton

__all__ = ["keyframe_times", "keyframe_indices", "render_skeleton", "video_keyframes", "fit_image"]

VIEW_DEGREES = 35.0


def keyframe_times(duration: float, n: int) -> np.ndarray:
    """The centres of ``n`` equal time bins of ``[0, duration)``: ``(i + 1/2) duration / n``.

    Shapes:
        returns: (N,) seconds
    """
    return (np.arange(n) + 0.5) * duration / n


def keyframe_indices(num_frames: int, n: int) -> np.ndarray:
    """Frame indices nearest the keyframe times of a recording of ``num_frames`` frames.

    Shapes:
        returns: (N,) int, in [0, num_frames - 1] (repeats when ``n`` > ``num_frames``)
    """
    return np.clip(np.floor(keyframe_times(num_frames, n)).astype(int), 0, num_frames - 1)


def _view(xyz: np.ndarray, up_axis: str) -> np.ndarray:
    """Orthographic screen coordinates (horizontal, vertical) of a front-left view.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, P, 2)
    """
    up = UP_AXES[up_axis]
    axis = int(np.argmax(np.abs(up)))
    h1 = np.eye(3)[0 if axis != 0 else 1]  # left-to-right after canonical facing
    h2 = np.cross(up, h1)  # the remaining horizontal axis (depth)
    a = np.deg2rad(VIEW_DEGREES)
    across = np.cos(a) * (xyz @ h1) + np.sin(a) * (xyz @ h2)
    return np.stack([across, xyz @ up], axis=-1)


def render_skeleton(xyz: np.ndarray, skeleton: Skeleton, frames: np.ndarray, size: int,
                    up_axis: str = "y") -> list:
    """Draw the skeleton at the given frames, one square image each.

    Args:
        xyz: keypoints, NaN where missing (bones with a missing end are not drawn).
        skeleton: the dataset's skeleton (joint order of ``xyz``).
        frames: frame indices to draw.
        size: image side in pixels.
        up_axis: the vertical axis of ``xyz``.

    Shapes:
        xyz: (F, P, 3)
        frames: (N,)

    Returns:
        N PIL RGB images of ``size`` x ``size``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    pts = _view(np.asarray(xyz, dtype=np.float64), up_axis)  # (F, P, 2)
    finite = pts[np.isfinite(pts).all(-1)]
    if len(finite) == 0:
        raise ValueError("cannot draw a recording whose keypoints are all missing")
    lo, hi = finite.min(0), finite.max(0)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.1 or 1.0
    edges = [(skeleton.index(a), skeleton.index(b), bone_colour(a, b)) for a, b in skeleton.edges]
    images = []
    for f in frames:
        fig = Figure(figsize=(size / 100, size / 100), dpi=100, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.axhline(lo[1], color="#bbbbbb", lw=1)
        p = pts[int(f)]
        lw = max(1.0, size / 120)
        for i, j, colour in edges:
            if np.isfinite(p[[i, j]]).all():
                ax.plot(p[[i, j], 0], p[[i, j], 1], color=colour, lw=lw, solid_capstyle="round")
        seen = np.isfinite(p).all(-1)
        ax.scatter(p[seen, 0], p[seen, 1], s=lw * 3, color="black", zorder=3)
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3].copy()).resize((size, size)))
    return images


def fit_image(image, size: int):
    """Scale a PIL image so that its longer side is ``size`` pixels (aspect kept)."""
    w, h = image.size
    scale = size / max(w, h)
    if scale == 1:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))))


def video_keyframes(path: str | Path, n: int, size: int) -> list:
    """Decode the frames nearest the ``n`` keyframe times of a video.

    Args:
        path: the video file.
        n: number of keyframes.
        size: longer image side in pixels.

    Returns:
        N PIL RGB images.

    Raises:
        FileNotFoundError: no such video.
        pose.video.VideoError: unreadable video.
    """
    from PIL import Image

    from pose.video import probe, read_frames

    info = probe(path)
    frames, _ = read_frames(path, times=keyframe_times(info.duration, n).tolist())
    return [fit_image(Image.fromarray(f), size) for f in frames]
