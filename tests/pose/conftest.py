"""Fixtures of the pose tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _drawn_person_video(path: Path, frames: int | None = None) -> tuple[Path, np.ndarray]:
    """A video of a person drawn with thick limbs from a demo recording (enough for MediaPipe's
    detector); returns its path and the drawn keypoints.

    Shapes:
        returns: the video path and xyz (F, 17, 3) of the coco17 skeleton
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kept.data.demo import simulate_recording
    from pose.skeleton import get_skeleton
    from pose.video import write_video

    xyz = simulate_recording(3, "mid_range_shooting", noise=False, dropout=False).xyz[:frames]
    sk = get_skeleton("coco17")
    lo, hi = np.nanmin(xyz.reshape(-1, 3), 0), np.nanmax(xyz.reshape(-1, 3), 0)
    fig, images = plt.figure(figsize=(6.4, 4.8), dpi=100), []
    for p in xyz:
        fig.clf()
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_facecolor("#d8d0c0")
        for a, b in sk.edges:
            i, j = sk.index(a), sk.index(b)
            ax.plot(p[[i, j], 0], p[[i, j], 1], color="#b07050", lw=18, solid_capstyle="round")
        ax.add_patch(plt.Circle((p[0, 0], p[0, 1] + 0.05), 0.11, color="#c08060"))
        ax.set_xlim(lo[0] - 0.6, hi[0] + 0.6), ax.set_ylim(lo[1] - 0.2, hi[1] + 0.3)
        ax.set_aspect("equal"), ax.axis("off")
        fig.canvas.draw()
        images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return write_video(path, np.stack(images), 30.0), xyz


@pytest.fixture
def drawn_person_video():
    """:func:`_drawn_person_video`: ``drawn_person_video(path, frames=None) -> (video, xyz)``."""
    return _drawn_person_video

