"""A content-addressed cache of extracted keypoints, and sharding of work across processes.

A cached sequence is keyed by the **content** of the video (not its name or path) and by the extraction
settings, so renaming or moving a video still hits the cache, and changing either the video's bytes or any
setting misses it::

    cache = PoseCache("~/.cache/kept/pose")
    seq = cache.get(video, settings)
    if seq is None:
        seq = extract(video, **settings)
        cache.put(video, settings, seq)

Files live at ``root / key[:2] / f"{key}.npz"`` (:meth:`KeypointSequence.save` format, written atomically),
and each one's ``meta`` records the video path, its content hash and the settings it was made with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pose.sequence import KeypointSequence

__all__ = ["PoseCache", "cache_key", "content_hash", "parse_shard", "shard"]

T = TypeVar("T")

_HASH_MEMO: dict[tuple[str, int, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def content_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits, read in ``chunk``-byte pieces (memory stays bounded).

    Memoised within the process per (resolved path, size, mtime_ns, inode): an unchanged file is hashed once;
    a file rewritten in place (new mtime or size) is hashed again.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"file to hash not found: {path}") from None
    if not path.is_file():
        raise IsADirectoryError(f"cannot hash {path}: not a regular file")
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    with _HASH_LOCK:
        hit = _HASH_MEMO.get(memo_key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(max(1, int(chunk))):
            h.update(block)
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASH_MEMO[memo_key] = digest
    return digest


def _canonical_settings(settings: Mapping[str, Any] | None) -> str:
    """Settings as canonical JSON (sorted keys, no spaces); non-JSON values (paths, ...) via ``str``."""
    return json.dumps(dict(settings or {}), sort_keys=True, separators=(",", ":"), default=str)


def cache_key(video_hash: str, settings: Mapping[str, Any] | None) -> str:
    """SHA-256 (64 hex digits) over the video's content hash and the canonical JSON of the settings.

    Equal settings give equal keys whatever their key order; any different value gives a different key.
    """
    payload = json.dumps({"video": str(video_hash), "settings": json.loads(_canonical_settings(settings))},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class PoseCache:
    """Keypoint sequences cached on disk by (video content, extraction settings).

    Args:
        root: cache folder (created on the first :meth:`put`); ``~`` is expanded.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"PoseCache({str(self.root)!r})"

    def key(self, video: str | Path, settings: Mapping[str, Any] | None) -> str:
        """The cache key of ``video`` (by content) under ``settings``."""
        return cache_key(content_hash(video), settings)

    def path_for(self, key: str) -> Path:
        """Where the entry for ``key`` lives: ``root / key[:2] / f"{key}.npz"``."""
        key = str(key)
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key (lowercase hex expected): {key!r}")
        return self.root / key[:2] / f"{key}.npz"

    def get(self, video: str | Path, settings: Mapping[str, Any] | None) -> KeypointSequence | None:
        """The cached sequence for ``video`` under ``settings``, or None on a miss.

        An unreadable (e.g. truncated by a crash of another writer) entry counts as a miss.

        Raises:
            FileNotFoundError: ``video`` does not exist.
        """
        path = self.path_for(self.key(video, settings))
        if not path.is_file():
            return None
        try:
            return KeypointSequence.load(path)
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def put(self, video: str | Path, settings: Mapping[str, Any] | None, seq: KeypointSequence) -> Path:
        """Store ``seq`` for ``video`` under ``settings`` (atomically) and return the file's path.

        The stored copy's ``meta`` gains ``video`` (the path given), ``video_hash``, ``settings`` and
        ``cache_key``; ``seq`` itself is not modified.
        """
        video_hash = content_hash(video)
        key = cache_key(video_hash, settings)
        meta = dict(seq.meta)
        meta.update(video=str(video), video_hash=video_hash,
                    settings=json.loads(_canonical_settings(settings)), cache_key=key)
        path = self.path_for(key)
        dataclasses.replace(seq, meta=meta).save(path)
        return path

    def __contains__(self, item: object) -> bool:
        """``(video, settings) in cache``, or ``key in cache`` for a key string."""
        if isinstance(item, tuple) and len(item) == 2:
            video, settings = item
            try:
                return self.path_for(self.key(video, settings)).is_file()
            except FileNotFoundError:
                return False
        if isinstance(item, str):
            try:
                return self.path_for(item).is_file()
            except ValueError:
                return False
        raise TypeError(f"expected (video, settings) or a key string, got {type(item).__name__}")


# ----------------------------------------------------------------------------------------------- sharding


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """The ``index``-th of ``count`` disjoint shards: ``sorted(items, key=str)[index::count]``.

    Sorting by ``str`` first makes every process see the same order whatever order it listed the items in
    (e.g. from ``os.listdir``), so the shards are disjoint and together cover all items.
    """
    for name, v in (("index", index), ("count", count)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"shard {name} must be an int, got {v!r}")
    if count < 1:
        raise ValueError(f"shard count must be >= 1, got {count}")
    if not 0 <= index < count:
        raise ValueError(f"shard index must be in [0, {count}), got {index}")
    return sorted(items, key=str)[index::count]


_ENV_PAIRS = (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))


def _parse_pair(index: str, count: str, where: str) -> tuple[int, int]:
    try:
        i, n = int(str(index).strip()), int(str(count).strip())
    except ValueError:
        raise ValueError(f"bad shard {where}: index and count must be integers") from None
    if n < 1:
        raise ValueError(f"bad shard {where}: count must be >= 1, got {n}")
    if not 0 <= i < n:
        raise ValueError(f"bad shard {where}: index must be in [0, {n}), got {i}")
    return i, n


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` (0-based I, ``0 <= I < N``).

    With ``spec=None`` the shard comes from the environment, the first complete pair of:
    ``RANK``/``WORLD_SIZE`` (torchrun), ``LOCAL_RANK``/``LOCAL_WORLD_SIZE``, ``SLURM_PROCID``/``SLURM_NTASKS``;
    else ``(0, 1)`` (everything).

    Raises:
        ValueError: a malformed spec or environment value (message says what is expected).
    """
    if spec is None:
        for rank_var, size_var in _ENV_PAIRS:
            rank, size = os.environ.get(rank_var), os.environ.get(size_var)
            if rank not in (None, "") and size not in (None, ""):
                return _parse_pair(rank, size, f"from environment {rank_var}={rank!r} {size_var}={size!r}")
        return 0, 1
    text = str(spec).strip()
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(f"bad shard spec {spec!r}: expected 'I/N' with 0 <= I < N, e.g. '0/4'")
    return _parse_pair(parts[0], parts[1], f"spec {spec!r} (expected 'I/N' with 0 <= I < N)")
