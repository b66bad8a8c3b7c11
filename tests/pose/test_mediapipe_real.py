"""MediaPipe for real, in its own environment (mediapipe 0.10.21 pins numpy < 2).

Set KEPT_MEDIAPIPE_PYTHON to the python of an environment with ``kept[mediapipe]`` and
``numpy<2`` installed (see the README); otherwise this test is skipped.
"""

import os
import subprocess
import textwrap

import numpy as np
import pytest

MP_PYTHON = os.environ.get("KEPT_MEDIAPIPE_PYTHON")


@pytest.mark.skipif(not MP_PYTHON, reason="KEPT_MEDIAPIPE_PYTHON not set (mediapipe needs its own environment)")
def test_mediapipe_finds_a_rendered_person(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kept.data.demo import simulate_recording
    from pose.skeleton import get_skeleton
    from pose.video import write_video

    xyz = simulate_recording(3, "mid_range_shooting", noise=False, dropout=False).xyz
    sk = get_skeleton("coco17")
    lo, hi = np.nanmin(xyz.reshape(-1, 3), 0), np.nanmax(xyz.reshape(-1, 3), 0)
    fig, frames = plt.figure(figsize=(6.4, 4.8), dpi=100), []
    for p in xyz:  # a person drawn with thick limbs: enough for MediaPipe's detector
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
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    video = write_video(tmp_path / "person.mp4", np.stack(frames), 30.0)
    out = tmp_path / "seq.npz"
    code = textwrap.dedent(f"""
        from pose.extractors.mediapipe import MediaPipeExtractor
        MediaPipeExtractor().extract({str(video)!r}).save({str(out)!r})
    """)
    subprocess.run([MP_PYTHON, "-c", code], check=True, capture_output=True, text=True, timeout=300)
    from pose.sequence import KeypointSequence

    seq = KeypointSequence.load(out)
    assert seq.skeleton == "mediapipe33" and seq.xyz.shape == (len(xyz), 33, 3)
    assert np.isfinite(seq.xyz).all(-1).any(-1).mean() > 0.5  # a person found in most frames
