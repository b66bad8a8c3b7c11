"""Check the physical-difference report against known faults (the demo data's ``faults.json``).

For every faulted recording of a split, compared with every fault-free recording of the same
sub-activity in that split (``kept compare`` with the faulted one first), a finding *hits* when
it names a faulted node type in a segment whose time span on the faulted recording overlaps the
fault's. Reported: the share of comparisons whose top finding hits (in the order ``compare``
gives, and with the selected path's steps moved first), the same for a finding drawn at random
(chance), the share whose subject (the recording with the lower score, whose path the report
follows) is the faulted one, and the share where any step of the subject's path hits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from kept.explain.compare import Recording, compare

__all__ = ["fault_check"]


def _hits(finding: dict, name: str, duration: float, faults: list[dict]) -> bool:
    t0, t1 = (t / duration for t in finding["time"][name])
    return any(f["node_type"] == finding["node"] and f["t_start"] < t1 and f["t_end"] > t0 for f in faults)


def fault_check(model, cfg, skeleton, dataset, split: str = "test", faults_file: str | Path | None = None,
                up_axis: str = "y", progress: bool = True, **compare_kw) -> dict:
    """Run the check of the module docstring.

    Args:
        model, cfg, skeleton: a trained model (:func:`kept.train.load_model`).
        dataset: the keypoint dataset the faults belong to (:class:`kept.data.folder.KeypointDataset`).
        faults_file: the faults (default: ``faults.json`` in the dataset's root).
        compare_kw: passed to :func:`kept.explain.compare.compare` (``rank``, ``path_first``).

    Returns:
        ``{"comparisons", "top_hit", "top_hit_with_path_first", "top_hit_chance",
        "subject_is_faulted", "path_hit"}``; shares in [0, 1].

    Raises:
        FileNotFoundError: no faults file.
    """
    path = Path(faults_file) if faults_file else Path(dataset.root) / "faults.json"
    if not path.is_file():
        raise FileNotFoundError(f"no faults file at {path}: the check needs the demo data's faults.json")
    faults = json.loads(path.read_text())
    recs = [r for r in dataset.recordings.values() if r.split == split]
    clean = {c: [r for r in recs if r.category == c and not faults.get(r.id)] for c in {r.category for r in recs}}
    pairs = [(r, c) for r in recs if faults.get(r.id) for c in clean[r.category]]
    if not pairs:
        raise ValueError(f"split {split!r} has no faulted recording with a fault-free one of its sub-activity")

    def side(r):
        return Recording(r.id, np.asarray(dataset.keypoints(r.id)), dataset.fps, r.category)

    counts = dict(top_hit=0, top_hit_with_path_first=0, top_hit_chance=0.0, subject_is_faulted=0, path_hit=0)
    for bad, good in tqdm(pairs, desc="fault check", disable=not progress):
        a = side(bad)
        result = compare(model, cfg, skeleton, tuple(dataset.score_range), a, side(good), up_axis=up_axis,
                         category=bad.category, **compare_kw)
        findings = result["physical"]["findings"]
        duration = a.xyz.shape[0] / a.fps
        hits = [_hits(f, bad.id, duration, faults[bad.id]) for f in findings]
        counts["top_hit"] += hits[0]
        path_first = sorted(range(len(findings)), key=lambda i: not findings[i]["on_path"])  # stable
        counts["top_hit_with_path_first"] += hits[path_first[0]]
        counts["top_hit_chance"] += float(np.mean(hits))  # a finding drawn at random
        counts["subject_is_faulted"] += result["physical"]["subject"] == bad.id
        counts["path_hit"] += any(h for h, f in zip(hits, findings) if f["on_path"])
    return {"comparisons": len(pairs), **{k: round(v / len(pairs), 4) for k, v in counts.items()}}
