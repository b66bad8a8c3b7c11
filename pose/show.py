"""``kept pose show``: look at an extracted keypoint sequence.

Each picture has the video frame on the left (when the video is given) with the 2D keypoints
drawn over it where the sequence carries them (``meta["xy"]``: pixel coordinates (F, P, 2) from
a 2D detector), and the 3D skeleton on the right (alone when there is no video), with left limbs in blue and right limbs in red so that a swapped side is
obvious. Output is a PNG (a grid of chosen frames) or an MP4 (every frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pose.sequence import KeypointSequence
from pose.skeleton import get_skeleton

__all__ = ["bone_colour", "render_frame", "show"]

_LEFT, _RIGHT, _MID = "#1f77b4", "#d62728", "#555555"


def bone_colour(a: str, b: str) -> str:
    """Colour of the bone between joints a and b: blue on the left side, red on the right, grey
    in the middle (from the joint names)."""
    names = (a + b).lower()
    if "left" in names and "right" not in names:
        return _LEFT
    if "right" in names and "left" not in names:
        return _RIGHT
    return _MID


def _axes_limits(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    finite = xyz[np.isfinite(xyz).all(-1)]
    if len(finite) == 0:
        return np.zeros(3), 1.0
    centre = (finite.max(0) + finite.min(0)) / 2
    return centre, float((finite.max(0) - finite.min(0)).max() / 2) or 1.0


def render_frame(seq: KeypointSequence, index: int, frame: np.ndarray | None = None, ax_img=None, ax_3d=None,
                 up_axis: str | None = None):
    """Draw frame ``index`` of a sequence onto matplotlib axes (created when not given).

    Args:
        seq: the keypoint sequence.
        index: frame index into ``seq``.
        frame: the matching video frame, RGB uint8 (H, W, 3), or None.
        ax_img, ax_3d: axes for the image and the 3D view.
        up_axis: vertical axis of ``seq`` (default: ``seq.meta["up_axis"]``, else ``y``).
    """
    import matplotlib.pyplot as plt

    skeleton = get_skeleton(seq.skeleton)
    if ax_3d is None:
        fig = plt.figure(figsize=(8, 4))
        ax_img = fig.add_subplot(1, 2, 1) if frame is not None else None
        ax_3d = fig.add_subplot(1, 2, 2, projection="3d")
    up = up_axis or seq.meta.get("up_axis", "y")
    order = {"y": (0, 2, 1), "-y": (0, 2, 1), "z": (0, 1, 2), "-z": (0, 1, 2), "x": (1, 2, 0), "-x": (1, 2, 0)}[up]
    sign = -1.0 if up.startswith("-") else 1.0
    pts = seq.xyz[index][:, order] * np.array([1.0, 1.0, sign])
    centre, half = _axes_limits(seq.xyz[:, :, order] * np.array([1.0, 1.0, sign]))
    for a, b in skeleton.edges:
        i, j = skeleton.index(a), skeleton.index(b)
        seg = pts[[i, j]]
        if np.isfinite(seg).all():
            ax_3d.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=bone_colour(a, b), lw=2)
    ax_3d.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=6, color="k")
    for k, setter in enumerate((ax_3d.set_xlim, ax_3d.set_ylim, ax_3d.set_zlim)):
        setter(centre[k] - half, centre[k] + half)
    ax_3d.set_title(f"3D, t = {seq.times[index]:.2f} s")
    ax_3d.set_xticks([]), ax_3d.set_yticks([]), ax_3d.set_zticks([])
    if ax_img is not None:
        ax_img.axis("off")
        if frame is not None:
            ax_img.imshow(frame)
        xy = seq.meta.get("xy")
        if xy is not None:
            p2 = np.asarray(xy, dtype=float)[index]
            for a, b in skeleton.edges:
                i, j = skeleton.index(a), skeleton.index(b)
                if np.isfinite(p2[[i, j]]).all():
                    ax_img.plot(p2[[i, j], 0], p2[[i, j], 1], color=bone_colour(a, b), lw=2)
        ax_img.set_title(seq.source if frame is None else "video")
    return ax_img, ax_3d


def show(seq: KeypointSequence, out: str | Path, *, video: str | Path | None = None,
         frames: Sequence[int] | None = None, up_axis: str | None = None, fps: float | None = None) -> Path:
    """Render a sequence to ``out``: ``.png``/``.pdf`` (chosen frames, default 4 evenly spaced)
    or ``.mp4`` (every frame, at ``fps`` or the sequence's rate).

    Args:
        seq: the keypoint sequence.
        out: output file; the suffix chooses the format.
        video: the source video, drawn beside the 3D view (frames matched by time).
        frames: frame indices for a picture (ignored for video output).
        up_axis: vertical axis of the keypoints.
        fps: frame rate of an MP4.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".pdf", ".mp4"):
        raise ValueError(f"unsupported output {out}: use .png, .pdf or .mp4")
    if seq.num_frames == 0:
        raise ValueError("the keypoint sequence has no frames")
    if suffix == ".mp4":
        indices = list(range(seq.num_frames))
    else:
        indices = list(frames) if frames else np.linspace(0, seq.num_frames - 1, min(4, seq.num_frames)).round().astype(int).tolist()
        bad = [i for i in indices if not 0 <= i < seq.num_frames]
        if bad:
            raise ValueError(f"frame indices {bad} outside 0..{seq.num_frames - 1}")
    images: list[np.ndarray | None] = [None] * len(indices)
    if video is not None:
        from pose.video import read_frames

        decoded, _ = read_frames(video, times=[float(seq.times[i]) for i in indices], max_side=480)
        images = list(decoded)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = 2 if (video is not None or seq.meta.get("xy") is not None) else 1
    if suffix == ".mp4":
        from pose.video import write_video

        rendered = []
        fig = plt.figure(figsize=(4 * cols, 4), dpi=80)
        for k, i in enumerate(indices):
            fig.clf()
            ax_img = fig.add_subplot(1, cols, 1) if cols == 2 else None
            ax_3d = fig.add_subplot(1, cols, cols, projection="3d")
            render_frame(seq, i, images[k], ax_img, ax_3d, up_axis)
            fig.canvas.draw()
            rendered.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
        return write_video(out, np.stack(rendered), fps or seq.fps)
    n = len(indices)
    fig = plt.figure(figsize=(4 * cols, 4 * n) if cols == 2 else (4 * n, 4))
    for k, i in enumerate(indices):
        if cols == 2:
            ax_img = fig.add_subplot(n, 2, 2 * k + 1)
            ax_3d = fig.add_subplot(n, 2, 2 * k + 2, projection="3d")
        else:
            ax_img, ax_3d = None, fig.add_subplot(1, n, k + 1, projection="3d")
        render_frame(seq, i, images[k], ax_img, ax_3d, up_axis)
    fig.subplots_adjust(top=0.9, bottom=0.02, left=0.02, right=0.98)
    from kept.io import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=suffix[1:], dpi=100)
    plt.close(fig)
    return out
