"""One performer out of many detections, and short gaps in keypoint tracks.

:func:`select_performer` picks, in every frame, the detection that belongs to one consistent
person: the largest and most central one over the whole recording. :func:`fill_gaps` bridges
short runs of missing frames by linear interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

__all__ = ["bbox_iou", "fill_gaps", "select_performer"]

IOU_THRESHOLD = 0.3


def _box(det: dict[str, Any]) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in det["bbox"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"a detection needs 'bbox': (x0, y0, x1, y1), got {det!r}") from None
    return x0, y0, x1, y1


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def bbox_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (0 for empty boxes)."""
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _link_tracks(boxes: list[list[tuple[float, float, float, float]]], threshold: float) -> list[dict[int, int]]:
    """Greedy IoU linking; returns tracks as {frame: detection index}.

    Each frame's detections are matched against the last box of every track seen so far (so a
    track survives frames where its person is not detected), pairs in order of decreasing IoU
    (ties: the more recently seen track first); a pair is linked when its IoU is at least
    ``threshold`` and neither side is taken yet. Unmatched detections start new tracks.
    """
    tracks: list[dict[int, int]] = []
    last: list[tuple[int, tuple[float, float, float, float]]] = []  # per track: (frame, box)
    for f, dets in enumerate(boxes):
        pairs = []
        for t, (tf, tb) in enumerate(last):
            for d, db in enumerate(dets):
                iou = bbox_iou(tb, db)
                if iou >= threshold:
                    pairs.append((-iou, -tf, t, d))
        pairs.sort()
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, _, t, d in pairs:
            if t in used_t or d in used_d:
                continue
            used_t.add(t)
            used_d.add(d)
            tracks[t][f] = d
            last[t] = (f, dets[d])
        for d, db in enumerate(dets):
            if d not in used_d:
                tracks.append({f: d})
                last.append((f, db))
    return tracks


def select_performer(
    instances: list[list[dict]],
    frame_size: tuple[int, int] | None = None,
    iou_threshold: float = IOU_THRESHOLD,
) -> list[int | None]:
    """The index of the performer's detection in every frame (``None`` where it is missing).

    Rule: detections are linked frame to frame into tracks by IoU (greedy, ``iou_threshold``,
    see :func:`_link_tracks`; a track may skip frames). Each track scores the sum over its frames
    of ``(bbox area / frame area) * (1 - distance of bbox centre from frame centre /
    half-diagonal)`` (the centrality factor clipped at 0), so a person who is large, central and
    present long wins. The best track is the performer (ties: the track that starts first);
    frames where it has no detection give ``None``.

    Args:
        instances: ``instances[f]`` = the detections of frame f, each a dict with ``"bbox":
            (x0, y0, x1, y1)`` in pixels (other keys, e.g. ``"score"``, are ignored).
        frame_size: ``(width, height)`` of the frame; without it, the frame is the extent of all
            boxes, from ``(min(0, min x0), min(0, min y0))`` to ``(max x1, max y1)``.
        iou_threshold: the least IoU that links two detections.

    Returns:
        one entry per frame.
    """
    boxes = [[_box(d) for d in dets] for dets in instances]
    flat = [b for dets in boxes for b in dets]
    if not flat:
        return [None] * len(instances)
    if frame_size is not None:
        fx0, fy0, fx1, fy1 = 0.0, 0.0, float(frame_size[0]), float(frame_size[1])
    else:
        arr = np.array(flat)
        fx0, fy0 = min(0.0, arr[:, 0].min()), min(0.0, arr[:, 1].min())
        fx1, fy1 = arr[:, 2].max(), arr[:, 3].max()
    frame_area = max((fx1 - fx0) * (fy1 - fy0), 1e-12)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    half_diag = max(float(np.hypot(fx1 - fx0, fy1 - fy0)) / 2, 1e-12)

    def frame_score(b: tuple[float, float, float, float]) -> float:
        dist = float(np.hypot((b[0] + b[2]) / 2 - cx, (b[1] + b[3]) / 2 - cy))
        return _area(b) / frame_area * max(0.0, 1.0 - dist / half_diag)

    tracks = _link_tracks(boxes, iou_threshold)
    scores = [sum(frame_score(boxes[f][d]) for f, d in tr.items()) for tr in tracks]
    best = tracks[int(np.argmax(scores))]  # argmax: first of equals, tracks are in start order
    return [best.get(f) for f in range(len(instances))]


def fill_gaps(xyz: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation over short runs of missing frames, joint by joint.

    A joint is missing in a frame when any of its coordinates is NaN. A run of missing frames
    is filled when it is at most ``max_gap`` frames long and has an observed frame on both
    sides; longer runs and leading or trailing runs stay NaN. ``max_gap=0`` returns an
    unchanged copy.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, P, 3), float dtype kept
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    xyz = np.asarray(xyz)
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValueError(f"xyz must have shape (frames, joints, 3), got {xyz.shape}")
    out = np.array(xyz, dtype=xyz.dtype if np.issubdtype(xyz.dtype, np.floating) else np.float64)
    if max_gap == 0:
        return out
    missing = np.isnan(out).any(axis=-1)  # (F, P)
    for p in np.flatnonzero(missing.any(axis=0)):
        obs = np.flatnonzero(~missing[:, p])
        if obs.size < 2:
            continue
        for a, b in pairwise(obs):  # consecutive observed frames a < b
            gap = b - a - 1
            if 0 < gap <= max_gap:
                w = (np.arange(1, gap + 1) / (gap + 1))[:, None]
                out[a + 1 : b, p] = (1 - w) * out[a, p] + w * out[b, p]
    return out
