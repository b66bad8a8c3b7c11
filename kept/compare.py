"""``kept compare A B``: score two recordings with a trained model and explain the difference.

A and B are keypoint files (``.npy`` with the model's skeleton at the dataset's fps, ``.npz``
keypoint sequences from ``kept pose extract``), recordings of a keypoint-folder dataset
(``DATASET_DIR::RECORDING_ID``, or a bare id of the dataset the model was trained on), or videos
(keypoints extracted with the configured backend and cached).

``compare.json`` holds, for each recording, its score in the dataset's units, the selected
reasoning path as (segment, time span in seconds, node type) steps and the top-10 paths with
their Q values; with the statistics branch, the score's two parts (``score_parts``) and the five
(segment, node) blocks where the recording loses most score against its category's average
performer (``penalties``, in score units); for the pair, who is better and the per-joint size of the residual graph
||mean_k H_a[k] - mean_k H_b[k]|| (which joints differ most). *Decision*: paths are reported per
recording, since the tree search selects one path per recording (docs/method.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kept.config import RunConfig
from kept.features import prepare_keypoints, recording_features, stack_features
from kept.metrics import better_of
from kept.model import KEPT
from pose.batch import VIDEO_SUFFIXES
from pose.skeleton import Skeleton

__all__ = ["Recording", "load_recording", "compare", "format_report", "write_plots"]



@dataclass
class Recording:
    """Keypoints of one side of a comparison.

    Shapes:
        xyz: (F, P, 3), NaN where missing
    """

    name: str
    xyz: np.ndarray
    fps: float
    category: str | None = None  #: the recording's category when it comes from a dataset


def _dataset_category(root: str | Path, rid: str) -> str | None:
    """The category of recording ``rid`` in the samples.csv of dataset ``root`` (None if absent)."""
    import csv

    path = Path(root) / "samples.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("id") == rid:
                return row.get("category") or None
    return None


def load_recording(spec: str, skeleton: Skeleton, fps: float, dataset_root: str | None = None,
                   backend: str = "mmpose", cache_dir: str | Path | None = None) -> Recording:
    """Keypoints of ``spec`` (see the module docstring), checked against the model's skeleton.

    Args:
        spec: a file, ``DATASET_DIR::ID`` or a recording id of ``dataset_root``.
        skeleton: the model's skeleton.
        fps: frame rate of ``.npy`` inputs (the training dataset's).
        dataset_root: the training dataset, for bare recording ids.
        backend: pose extractor for videos.
        cache_dir: pose cache for videos.
    """
    from pose.extractors import make_extractor

    path = Path(spec)
    category = None
    if "::" in spec or (not path.exists() and dataset_root and (Path(dataset_root) / "keypoints" / f"{spec}.npy").exists()):
        target = spec if "::" in spec else f"{dataset_root}::{spec}"
        seq = make_extractor("file").extract(target)
        category = _dataset_category(*target.rsplit("::", 1))
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        from kept.data.datamodule import default_cache_dir
        from pose.batch import cached_extract
        from pose.cache import PoseCache

        seq, _ = cached_extract(path, make_extractor(backend), PoseCache(cache_dir or default_cache_dir() / "pose"))
        if seq.skeleton != skeleton.name:
            from pose.convert import convert

            seq = convert(seq, skeleton.name)
    elif path.suffix.lower() in (".npy", ".npz"):
        if not path.exists():
            raise FileNotFoundError(f"keypoint file not found: {path}")
        seq = make_extractor("file", skeleton=skeleton.name, fps=fps).extract(path) if path.suffix == ".npy" \
            else make_extractor("file").extract(path)
    else:
        raise FileNotFoundError(
            f"cannot read {spec!r}: give a video ({', '.join(VIDEO_SUFFIXES)}), a .npy/.npz keypoint file, "
            "DATASET_DIR::RECORDING_ID, or a recording id of the model's dataset"
        )
    xyz = np.asarray(seq.xyz, dtype=np.float64)
    if xyz.ndim != 3 or xyz.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(
            f"{spec}: keypoints of shape {xyz.shape} (skeleton '{seq.skeleton}') do not match the model's "
            f"skeleton '{skeleton.name}' with {skeleton.num_joints} joints; convert them first (pose.convert)"
        )
    if xyz.shape[0] < 2:
        raise ValueError(f"{spec}: a recording needs at least 2 frames, got {xyz.shape[0]}")
    if not np.isfinite(xyz).any():
        raise ValueError(f"{spec}: every keypoint is NaN; nothing to compare")
    return Recording(name=Path(spec.split("::")[-1]).stem, xyz=xyz, fps=float(seq.fps),
                     category=category)


@torch.no_grad()
def compare(model: KEPT, cfg: RunConfig, skeleton: Skeleton, score_range: tuple[float, float],
            a: Recording, b: Recording, up_axis: str = "y", top: int = 10, max_edges: int = 15,
            category: str | None = None) -> dict:
    """Score two recordings and collect the evidence for the report.

    Args:
        category: the sub-activity of both recordings, for the statistics branch's
            per-category model (default: each recording's own ``category``; the global model
            when neither is known).
        top: how many of the best paths to report per recording.
        max_edges: how many implicit-graph edges (the strongest, by mean weight) to report.

    Returns:
        The ``compare.json`` dict (see the module docstring).
    """
    if a.name == b.name:
        b = Recording(name=f"{b.name}_2", xyz=b.xyz, fps=b.fps)
    model.eval()
    feats = []
    for rec in (a, b):
        xyz = prepare_keypoints(rec.xyz, skeleton, up_axis, cfg.data.canonical_facing)
        feats.append(recording_features(xyz, skeleton, rec.fps, num_keyframes=cfg.data.num_keyframes,
                                        depth=cfg.model.depth, segment_samples=cfg.data.segment_samples,
                                        up_axis=up_axis))
    cats = [category or rec.category for rec in (a, b)]
    index = model.stats.index_of(cats) if model.stats is not None else None
    out = model(stack_features(feats), category=index)
    lo, hi = score_range
    scores = (out.score.numpy() * (hi - lo) + lo).tolist()
    K = cfg.model.depth
    names = skeleton.node_names
    sides = {}
    for i, rec in enumerate((a, b)):
        duration = rec.xyz.shape[0] / rec.fps
        span = [(round(k * duration / K, 3), round((k + 1) * duration / K, 3)) for k in range(K)]
        q = torch.sigmoid(out.logits[i])
        order = torch.argsort(q, descending=True)[:top]
        best = out.best_path[i].tolist()
        sides[rec.name] = {
            "score": round(scores[i], 4),
            "path": [{"segment": k, "time": list(span[k]), "node": names[j]} for k, j in enumerate(best)],
            "top_paths": [{"path": [names[j] for j in out.paths[i, t].tolist()], "q": round(float(q[t]), 6)}
                          for t in order.tolist()],
            "segment_times": [list(s) for s in span],
        }
        if out.contrib is not None:  # the statistics branch: where the score is lost, in score units
            stats = float(out.stats_score[i]) * (hi - lo) + lo
            sides[rec.name]["score_parts"] = {"statistics": round(stats, 4),  # what the network adds:
                                              "network": round(scores[i] - stats, 4),
                                              "net_weight": float(model.net_weight)}
            pen = (-out.contrib[i] * (hi - lo)).numpy()  # (K, B) score lost per block
            order_b = np.argsort(-pen, axis=None)[:5]
            sides[rec.name]["penalties"] = [
                {"segment": int(k), "time": list(span[k]), "node": names[j], "score_lost": round(float(pen[k, j]), 4)}
                for k, j in zip(*np.unravel_index(order_b, pen.shape))]
    h = out.graph.mean(dim=1)  # (2, P, D): H_i, the mean over segments
    residual = (h[0] - h[1]).norm(dim=-1).numpy()  # (P,)
    description = model.decoder.generate(h[:1], h[1:])[0] if model.decoder is not None else None
    implicit = None
    if out.ikg_weight is not None:  # (2, K, C): mean weight of each implicit edge over both recordings
        weight = out.ikg_weight.mean(dim=(0, 1)).numpy()
        keep = [i for i in np.argsort(-weight)[:max_edges] if weight[i] > 0]  # the strongest edges
        implicit = {"edges": model.gnn.ikg.candidates.numpy()[keep].tolist(), "weight": weight[keep].round(6).tolist()}
    diff = scores[0] - scores[1]
    better = (None, a.name, b.name)[better_of(scores[0], scores[1], (lo, hi))]
    return {
        "recordings": sides,
        "order": [a.name, b.name],
        "better": better,
        "score_difference": round(diff, 4),
        "residual": {j: round(float(r), 6) for j, r in sorted(zip(skeleton.joints, residual), key=lambda x: -x[1])},
        "implicit_edges": implicit,
        "description": description,
    }


def format_report(result: dict) -> str:
    """The comparison as readable text."""
    a, b = result["order"]
    ra, rb = result["recordings"][a], result["recordings"][b]
    lines = [f"{a}: score {ra['score']:.2f}", f"{b}: score {rb['score']:.2f}"]
    lines.append(f"better: {result['better']}" if result["better"] else "the two scores are level")
    for name in (a, b):
        steps = ", ".join(f"{s['node']} ({s['time'][0]:.1f}-{s['time'][1]:.1f} s)" for s in result["recordings"][name]["path"])
        lines.append(f"{name} reasoning path: {steps}")
    for name in (a, b):
        pen = [p for p in result["recordings"][name].get("penalties", []) if p["score_lost"] > 0][:3]
        if pen:
            lines.append(f"{name} loses most score at: " + ", ".join(
                f"{p['node']} in segment {p['segment'] + 1} ({p['time'][0]:.1f}-{p['time'][1]:.1f} s, "
                f"-{p['score_lost']:.2f})" for p in pen))
    top = list(result["residual"].items())[:5]
    lines.append("joints that differ most: " + ", ".join(f"{j} ({v:.3f})" for j, v in top))
    if result.get("description"):
        lines.append(f"difference: {result['description']}")
    return "\n".join(lines)


def write_plots(result: dict, a: Recording, b: Recording, skeleton: Skeleton, out_dir: str | Path,
                up_axis: str = "y", formats: tuple[str, ...] = ("png", "pdf"),
                kinds: tuple[str, ...] = ("paths", "residual", "poses")) -> list[Path]:
    """The three plots of a comparison: each recording's reasoning-path tree (top-10 paths with Q,
    l* highlighted), the residual keypoint graph on the skeleton (with the implicit edges), and
    the two recordings' key poses in the segments of the first recording's selected path.

    Args:
        kinds: which of ``paths``, ``residual`` and ``poses`` to draw.

    Returns:
        The files written.
    """
    from kept.plots import plot_paths, plot_poses, plot_residual

    out_dir = Path(out_dir)
    names = list(skeleton.node_names)
    up = up_axis if up_axis in ("y", "z") else up_axis.lstrip("-")
    written = []
    first, second = result["order"]
    for fmt in formats:
        for name in (first, second) if "paths" in kinds else ():
            side = result["recordings"][name]
            paths = np.array([[names.index(n) for n in p["path"]] for p in side["top_paths"]])
            q = np.array([p["q"] for p in side["top_paths"]])
            written.append(plot_paths(paths, q, 0, names, [tuple(t) for t in side["segment_times"]],
                                      out_dir / f"paths_{name}.{fmt}", title=f"{name}: reasoning paths"))
        ref = prepare_keypoints(a.xyz, skeleton, up_axis)
        mean_pose = np.nanmean(ref, axis=0)
        residual = np.array([result["residual"][j] for j in skeleton.joints])
        implicit = result.get("implicit_edges")
        edges = np.array(implicit["edges"]) if implicit and implicit["edges"] else None
        weight = np.array(implicit["weight"]) if edges is not None else None
        if "residual" in kinds:
            written.append(plot_residual(skeleton, mean_pose, residual, edges, weight, out_dir / f"residual.{fmt}",
                                         up_axis=up, title=f"where {first} and {second} differ"))
        if "poses" not in kinds:
            continue
        path_nodes = [s["node"] for s in result["recordings"][first]["path"]]
        written.append(plot_poses(skeleton, prepare_keypoints(a.xyz, skeleton, up_axis),
                                  prepare_keypoints(b.xyz, skeleton, up_axis), a.fps, b.fps, path_nodes,
                                  len(path_nodes), out_dir / f"poses.{fmt}", up_axis=up, labels=(first, second)))
    return written
