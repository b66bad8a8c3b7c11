"""pose.cache: content hashes, the keypoint cache, and sharding."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pose.cache import PoseCache, cache_key, content_hash, parse_shard, shard
from pose.sequence import KeypointSequence

SETTINGS = {"model": "human3d", "fps": 10.0, "max_side": 640}


def make_seq(frames: int = 5, joints: int = 17, seed: int = 0) -> KeypointSequence:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(frames, joints, 3)).astype(np.float32)
    xyz[1, 3] = np.nan
    conf = rng.uniform(size=(frames, joints)).astype(np.float32)
    return KeypointSequence(xyz=xyz, confidence=conf, skeleton="coco17", fps=10.0, source="test",
                            times=np.arange(frames) * 0.1 + 0.05, meta={"extractor": "fake"})


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00fake video bytes" * 1000)
    return path


def test_content_hash(tmp_path, video):
    h = content_hash(video)
    assert len(h) == 64 and int(h, 16) >= 0
    assert content_hash(video, chunk=7) == h  # chunking does not matter
    copy = tmp_path / "elsewhere.bin"
    copy.write_bytes(video.read_bytes())
    assert content_hash(copy) == h  # by content, not name
    video.write_bytes(video.read_bytes() + b"!")
    assert content_hash(video) != h  # size/mtime changed: memo not reused
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        content_hash(tmp_path / "missing.mp4")


def test_content_hash_memo_sees_same_size_rewrite(video):
    h = content_hash(video)
    st = video.stat()
    data = bytearray(video.read_bytes())
    data[0] ^= 0xFF
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert content_hash(video) != h


def test_cache_key():
    k = cache_key("ab" * 32, SETTINGS)
    assert k == cache_key("ab" * 32, dict(reversed(list(SETTINGS.items()))))  # key order irrelevant
    assert k != cache_key("ab" * 32, {**SETTINGS, "fps": 5.0})
    assert k != cache_key("cd" * 32, SETTINGS)
    assert len(k) == 64


def test_round_trip(tmp_path, video):
    cache = PoseCache(tmp_path / "cache")
    seq = make_seq()
    assert cache.get(video, SETTINGS) is None and (video, SETTINGS) not in cache
    path = cache.put(video, SETTINGS, seq)
    key = cache_key(content_hash(video), SETTINGS)
    assert path == cache.path_for(key) == tmp_path / "cache" / key[:2] / f"{key}.npz"
    assert (video, SETTINGS) in cache and key in cache
    got = cache.get(video, SETTINGS)
    np.testing.assert_array_equal(got.xyz, seq.xyz)  # NaN positions equal too
    np.testing.assert_array_equal(got.confidence, seq.confidence)
    np.testing.assert_array_equal(got.times, seq.times)
    assert (got.skeleton, got.fps, got.source) == (seq.skeleton, seq.fps, seq.source)
    assert got.meta["extractor"] == "fake"
    assert got.meta["video"] == str(video) and got.meta["settings"] == SETTINGS
    assert got.meta["video_hash"] == content_hash(video) and got.meta["cache_key"] == key
    assert seq.meta == {"extractor": "fake"}  # the caller's sequence is untouched
    # no temp files left beside the entry
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_invalidation(tmp_path, video):
    cache = PoseCache(tmp_path / "cache")
    cache.put(video, SETTINGS, make_seq())
    assert cache.get(video, {**SETTINGS, "max_side": 320}) is None
    assert cache.get(video, {k: v for k, v in SETTINGS.items() if k != "fps"}) is None
    moved = tmp_path / "renamed.mp4"
    os.replace(video, moved)
    assert cache.get(moved, SETTINGS) is not None  # same bytes under a new name: still a hit
    moved.write_bytes(moved.read_bytes()[:-1] + b"?")
    assert cache.get(moved, SETTINGS) is None  # content changed


def test_corrupt_entry_is_a_miss(tmp_path, video):
    cache = PoseCache(tmp_path / "cache")
    path = cache.put(video, SETTINGS, make_seq())
    path.write_bytes(b"garbage")
    assert cache.get(video, SETTINGS) is None
    cache.put(video, SETTINGS, make_seq(seed=1))  # overwritten atomically
    assert cache.get(video, SETTINGS) is not None


def test_path_for_rejects_non_keys(tmp_path):
    with pytest.raises(ValueError):
        PoseCache(tmp_path).path_for("../etc/passwd")


@pytest.mark.parametrize("count", [1, 2, 3, 7, 12])
def test_shard_partitions(count):
    items = [f"video_{i:03d}.mp4" for i in range(10)]
    shuffled = list(np.random.default_rng(count).permutation(items))
    parts = [shard(items, i, count) for i in range(count)]
    assert sorted(x for p in parts for x in p) == sorted(items)  # covering
    assert sum(len(p) for p in parts) == len(items)  # disjoint
    assert [shard(shuffled, i, count) for i in range(count)] == parts  # stable whatever the input order
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced


def test_shard_validates():
    for index, count in [(-1, 2), (2, 2), (0, 0)]:
        with pytest.raises(ValueError):
            shard([1, 2, 3], index, count)
    with pytest.raises(TypeError):
        shard([1, 2], 0.5, 2)


def test_parse_shard_spec():
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard("3/4") == (3, 4)
    assert parse_shard(" 1 / 2 ") == (1, 2)
    for bad in ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3", "/2", "", "1.5/4"]:
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


ENV_VARS = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"]


def test_parse_shard_environment(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert parse_shard(None) == (0, 1)
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert parse_shard(None) == (5, 8)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert parse_shard(None) == (1, 2)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard(None) == (2, 4)  # torchrun's RANK/WORLD_SIZE first
    assert parse_shard("0/3") == (0, 3)  # an explicit spec wins
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK"):
        parse_shard(None)
