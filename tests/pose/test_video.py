"""pose.video: reading back small videos written with PyAV (mpeg4, 64x48)."""

from __future__ import annotations

import types

import numpy as np
import pytest

av = pytest.importorskip("av")

from pose.video import (
    VideoError,
    VideoInfo,
    _frame_rotation,
    probe,
    read_frames,
    rotate_frame,
    write_video,
)

W, H, N, FPS = 64, 48, 24, 24.0


def gray_frames(n: int = N) -> np.ndarray:
    """Frame i is uniform gray 8 * i + 8 (so the index survives lossy coding)."""
    levels = (8 * np.arange(n) + 8).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, H, W, 3)).copy()


def frame_index(frames: np.ndarray) -> np.ndarray:
    return np.round((frames[:, H // 4:, W // 4:].astype(float).mean(axis=(1, 2, 3)) - 8) / 8).astype(int)


@pytest.fixture
def cfr(tmp_path):
    return write_video(tmp_path / "cfr.mp4", gray_frames(), FPS, codec="mpeg4", bit_rate=4_000_000)


def test_round_trip_constant_rate(cfr):
    info = probe(cfr)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.rotation, info.codec) == (W, H, 0, "mpeg4")
    assert info.fps == pytest.approx(FPS) and info.num_frames == N and info.duration == pytest.approx(N / FPS)
    frames, times = read_frames(cfr)
    assert frames.shape == (N, H, W, 3) and frames.dtype == np.uint8 and times.dtype == np.float64
    np.testing.assert_allclose(times, np.arange(N) / FPS, atol=1e-6)
    np.testing.assert_array_equal(frame_index(frames), np.arange(N))


def test_fps_sampling_picks_nearest(cfr):
    frames, times = read_frames(cfr, fps=7)
    targets = np.arange(0, (N - 1) / FPS + 1e-9, 1 / 7)
    expected = np.round(targets * FPS).astype(int)  # nearest frame index to each k/7
    assert len(frames) == len(targets) == 7
    np.testing.assert_array_equal(frame_index(frames), expected)
    np.testing.assert_allclose(times, expected / FPS, atol=1e-6)
    # denser than the video: frames repeat, never invented
    frames, times = read_frames(cfr, fps=2 * FPS)
    assert len(frames) == 2 * N - 1
    np.testing.assert_allclose(times[::2], np.arange(N) / FPS, atol=1e-6)


def test_times_sampling_keeps_request_order(cfr):
    req = [0.5, 0.1, 0.02, 5.0, -1.0, 0.5]
    frames, times = read_frames(cfr, times=req)
    expected = [12, 2, 0, N - 1, 0, 12]  # 0.1 s -> 2.4 -> frame 2; 0.02 -> 0.48 -> 0; past the end -> last
    np.testing.assert_array_equal(frame_index(frames), expected)
    np.testing.assert_allclose(times, np.array(expected) / FPS, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        read_frames(cfr, fps=2, times=[0.0])


def test_variable_frame_rate_gives_true_times(tmp_path):
    true_times = np.array([0.0, 0.04, 0.30, 0.33, 1.0, 1.01, 1.75, 2.5])
    path = write_video(tmp_path / "vfr.mp4", gray_frames(len(true_times)), 25.0, codec="mpeg4",
                       times=true_times, bit_rate=4_000_000)
    frames, times = read_frames(path)
    np.testing.assert_allclose(times, true_times, atol=2e-3)
    np.testing.assert_array_equal(frame_index(frames), np.arange(len(true_times)))
    # nearest in time, not in frame count: 0.9 s is nearest to frame 4 (1.0 s), 0.6 s to frame 3 (0.33 s)
    frames, times = read_frames(path, times=[0.9, 0.6, 2.2])
    np.testing.assert_array_equal(frame_index(frames), [4, 3, 7])
    frames, times = read_frames(path, fps=1)  # targets 0, 1, 2 s
    np.testing.assert_array_equal(frame_index(frames), [0, 4, 6])


def test_max_side(cfr):
    frames, _ = read_frames(cfr, max_side=32)
    assert frames.shape == (N, 24, 32, 3)
    frames, _ = read_frames(cfr, max_side=1000)  # never upscales
    assert frames.shape == (N, H, W, 3)


def marked(n: int = 3) -> np.ndarray:
    frames = np.zeros((n, H, W, 3), np.uint8)
    frames[:, :12, :12] = 255  # white block in the top-left corner
    return frames


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_from_display_matrix(tmp_path, rotation):
    """A video whose display matrix says 'turn 90 clockwise' (e.g. a portrait phone video) is read upright."""
    path = write_video(tmp_path / "rot.mp4", marked(), 25.0, codec="mpeg4", rotation=rotation, bit_rate=2_000_000)
    assert probe(path).rotation == rotation
    assert probe(path).display_size == ((H, W) if rotation != 180 else (W, H))
    frames, _ = read_frames(path)
    expected = rotate_frame(marked(1)[0], rotation)
    assert frames.shape[1:] == expected.shape
    assert np.abs(frames[0].astype(int) - expected).mean() < 8
    # clockwise: the top-left corner goes to the top-right (90), bottom-right (180), bottom-left (270)
    corner = {90: (slice(0, 8), slice(-8, None)), 180: (slice(-8, None), slice(-8, None)),
              270: (slice(-8, None), slice(0, 8))}[rotation]
    assert frames[0][corner].mean() > 200


def test_rotation_helpers():
    img = np.arange(6).reshape(2, 3)[..., None]
    np.testing.assert_array_equal(rotate_frame(img, 90)[..., 0], [[3, 0], [4, 1], [5, 2]])  # clockwise
    np.testing.assert_array_equal(rotate_frame(img, 270)[..., 0], [[2, 5], [1, 4], [0, 3]])
    np.testing.assert_array_equal(rotate_frame(img, -90), rotate_frame(img, 270))
    with pytest.raises(ValueError):
        rotate_frame(img, 45)
    # the legacy 'rotate' tag (clockwise) is used when the frame has no display matrix; current ffmpeg muxers
    # no longer write that tag, so it is tested on stand-in objects
    no_matrix = types.SimpleNamespace(rotation=0)
    assert _frame_rotation(no_matrix, types.SimpleNamespace(metadata={"rotate": "90"})) == 90
    assert _frame_rotation(no_matrix, types.SimpleNamespace(metadata={"rotate": "-90"})) == 270
    assert _frame_rotation(no_matrix, types.SimpleNamespace(metadata={})) == 0
    # display matrix angles are counter-clockwise: -90 means turn 90 clockwise
    assert _frame_rotation(types.SimpleNamespace(rotation=-90), types.SimpleNamespace(metadata={})) == 90
    assert _frame_rotation(types.SimpleNamespace(rotation=-180), types.SimpleNamespace(metadata={})) == 180


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    for fn in (probe, read_frames):
        with pytest.raises(FileNotFoundError, match="nope.mp4"):
            fn(missing)


def test_not_a_video(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    for fn in (probe, read_frames):
        with pytest.raises(VideoError, match="notes.mp4"):
            fn(fake)


def test_truncated_video(tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
    good = write_video(tmp_path / "good.mp4", noisy, FPS, codec="mpeg4", bit_rate=4_000_000)
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mp4"):
        read_frames(cut)
    with pytest.raises(VideoError, match="cut.mp4"):
        probe(cut)


def test_zero_frames(tmp_path):
    # a container with a video stream but no frames (AVI keeps the empty stream) ...
    empty = tmp_path / "empty.avi"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        c.start_encoding()
    with pytest.raises(VideoError, match="empty.avi.*no video frames"):
        read_frames(empty)
    with pytest.raises(VideoError, match="empty.avi"):
        probe(empty)
    # ... and an MP4 whose empty track is dropped on writing: no video stream
    empty_mp4 = tmp_path / "empty.mp4"
    with av.open(str(empty_mp4), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        c.start_encoding()
    with pytest.raises(VideoError, match="empty.mp4"):
        read_frames(empty_mp4)


def test_write_video_is_atomic_and_validates(tmp_path):
    out = write_video(tmp_path / "sub" / "odd.mp4", gray_frames(4)[:, :47, :63], 30.0, codec="mpeg4")
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["odd.mp4"]  # no temp left behind
    assert probe(out).width == 64 and probe(out).height == 48  # odd sizes padded to even
    with pytest.raises(ValueError):
        write_video(tmp_path / "bad.mp4", gray_frames(2).astype(np.float32), 30.0)
    with pytest.raises(ValueError):
        write_video(tmp_path / "bad.mp4", gray_frames(2), 30.0, times=[0.0, 0.0])
    assert not (tmp_path / "bad.mp4").exists()
