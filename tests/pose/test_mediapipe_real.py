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
def test_mediapipe_finds_a_rendered_person(tmp_path, drawn_person_video):
    video, xyz = drawn_person_video(tmp_path / "person.mp4")
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
