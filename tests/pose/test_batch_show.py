"""Batch extraction with the cache, and `kept pose show`."""

import numpy as np
import pytest

from pose.batch import extract_many, find_videos
from pose.sequence import KeypointSequence
from pose.show import show
from pose.video import write_video


class CountingExtractor:
    """A stand-in extractor: a fixed pose per frame, counting the videos it is asked for."""

    name = "counting"

    def __init__(self, scale=1.0):
        self.scale = scale
        self.calls = []

    def settings(self):
        return {"scale": self.scale}

    def extract(self, video):
        self.calls.append(str(video))
        xyz = np.random.default_rng(0).normal(size=(5, 17, 3)) * self.scale
        return KeypointSequence(xyz, np.ones((5, 17)), "coco17", 10.0, f"counting:{video}")


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    for k, name in enumerate(("a", "b", "c")):  # different content, so different cache keys
        frames = np.zeros((6, 32, 32, 3), np.uint8)
        frames[:, 4 + 8 * k: 12 + 8 * k, 8:16] = 255
        write_video(folder / f"{name}.mp4", frames, 10.0)
    (folder / "sub").mkdir()
    (folder / "sub" / "broken.mp4").write_text("not a video")
    return folder


def test_find_videos(videos, tmp_path):
    assert [p.name for p in find_videos(videos)] == ["a.mp4", "b.mp4", "c.mp4", "broken.mp4"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no videos"):
        find_videos(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no video or folder"):
        find_videos(tmp_path / "missing")


def test_batch_caches_skips_records_failures_and_shards(videos, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    ext = CountingExtractor()
    broken = str(videos / "sub" / "broken.mp4")

    def failing_extract(video, _orig=ext.extract):
        if str(video) == broken:
            from pose.video import read_frames
            read_frames(video)  # raises VideoError naming the file
        return _orig(video)

    ext.extract = failing_extract
    report = extract_many(find_videos(videos), ext, out, cache, progress=False)
    assert len(report["extracted"]) == 3 and list(report["failed"]) == [broken]
    assert "broken.mp4" in report["failed"][broken]
    assert sorted(p.name for p in out.glob("*.npz")) == ["a.npz", "b.npz", "c.npz"]

    again = extract_many(find_videos(videos), ext, out, cache, progress=False)
    assert len(again["cached"]) == 3 and not again["extracted"]
    assert len(ext.calls) == 3  # nothing re-extracted

    changed = CountingExtractor(scale=2.0)
    assert len(extract_many(find_videos(videos)[:3], changed, out, cache, progress=False)["extracted"]) == 3

    parts = [extract_many(find_videos(videos)[:3], CountingExtractor(3.0), tmp_path / f"s{i}", cache,
                          shard=(i, 2), progress=False)["extracted"] for i in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(str(v) for v in find_videos(videos)[:3])
    assert not set(parts[0]) & set(parts[1])


def test_show_png_and_mp4_with_video(videos, tmp_path):
    from pose.video import probe

    seq = CountingExtractor().extract("x")
    seq.meta["xy"] = np.random.default_rng(1).uniform(0, 32, size=(5, 17, 2)).tolist()
    png = show(seq, tmp_path / "pose.png", video=videos / "a.mp4", frames=[0, 4])
    assert png.stat().st_size > 1000
    mp4 = show(seq, tmp_path / "pose.mp4", video=videos / "a.mp4")
    assert probe(mp4).num_frames in (5, None)
    with pytest.raises(ValueError, match="outside"):
        show(seq, tmp_path / "bad.png", frames=[9])
    with pytest.raises(ValueError, match="unsupported"):
        show(seq, tmp_path / "pose.gif")
