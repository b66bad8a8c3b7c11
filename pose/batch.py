"""``kept pose extract``: run an extractor over a video or a folder of videos, with a cache.

Every result is cached by the video's content hash and the extractor's settings
(:class:`pose.cache.PoseCache`), so a rerun skips what is done and changing a setting
re-extracts. A bad video is recorded and the batch goes on. ``shard=(I, N)`` takes every N-th
video from the I-th (sorted), so several machines or GPUs (torchrun sets RANK and WORLD_SIZE)
can share one folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from pose.sequence import KeypointSequence

__all__ = ["VIDEO_SUFFIXES", "find_videos", "cached_extract", "extract_many", "array_extractor"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def find_videos(path: str | Path) -> list[Path]:
    """A video file, or every video below a folder (recursively, sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no video or folder at {path}")
    videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not videos:
        raise FileNotFoundError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) below {path}")
    return videos


def cached_extract(video: str | Path, extractor, cache) -> tuple["KeypointSequence", bool]:
    """The keypoints of one video from ``cache`` (a :class:`pose.cache.PoseCache`), extracting
    and storing them on a miss. Returns ``(sequence, whether it came from the cache)``."""
    settings = {"extractor": extractor.name, **extractor.settings()}
    seq = cache.get(video, settings)
    if seq is not None:
        return seq, True
    seq = extractor.extract(video)
    cache.put(video, settings, seq)
    return seq, False


def array_extractor(extractor, cache_dir: str | Path, skeleton: str = "coco17"):
    """``video -> (xyz (F, P, 3), fps)`` in ``skeleton``, through the cache: the callable that
    :func:`kept.data.egoexo.build_adr` takes for ``pose_source="extract"``."""
    from pose.cache import PoseCache
    from pose.convert import convert

    cache = PoseCache(cache_dir)

    def extract(video: str | Path):
        seq, _ = cached_extract(video, extractor, cache)
        if seq.skeleton != skeleton:
            seq = convert(seq, skeleton)
        return seq.xyz, float(seq.fps)

    return extract


def extract_many(videos: Sequence[str | Path], extractor, out_dir: str | Path, cache_dir: str | Path,
                 shard: tuple[int, int] = (0, 1), progress: bool = True) -> dict:
    """Extract keypoints of many videos into ``out_dir/<video stem>.npz``.

    Args:
        videos: video files.
        extractor: any :class:`pose.extractors.Extractor`.
        out_dir: where each video's :class:`~pose.sequence.KeypointSequence` is written.
        cache_dir: the content-hash cache.
        shard: ``(index, count)`` of this worker.
        progress: show a progress bar.

    Returns:
        ``{"extracted": [...], "cached": [...], "failed": {video: message}, "shard": [i, n]}``
    """
    from tqdm.auto import tqdm

    from pose.cache import PoseCache, shard as take_shard

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = PoseCache(cache_dir)
    report: dict = {"extracted": [], "cached": [], "failed": {}, "shard": list(shard)}
    mine = take_shard([Path(v) for v in videos], *shard)
    for video in tqdm(mine, desc=f"extract {shard[0]}/{shard[1]}", disable=not progress):
        target = out_dir / f"{video.stem}.npz"
        try:
            seq, hit = cached_extract(video, extractor, cache)
            report["cached" if hit else "extracted"].append(str(video))
            seq.save(target)
        except (ValueError, OSError, RuntimeError) as err:  # VideoError is a ValueError
            report["failed"][str(video)] = f"{type(err).__name__}: {err}"
    return report

