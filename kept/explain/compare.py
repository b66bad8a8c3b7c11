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
from kept.explain.physical import physical_report, sentence
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
                   backend: str = "auto", cache_dir: str | Path | None = None,
                   pose_options: dict | None = None) -> Recording:
    """Keypoints of ``spec`` (see the module docstring), checked against the model's skeleton.

    Args:
        spec: a file, ``DATASET_DIR::ID`` or a recording id of ``dataset_root``.
        skeleton: the model's skeleton.
        fps: frame rate of ``.npy`` inputs (the training dataset's).
        dataset_root: the training dataset, for bare recording ids.
        backend: pose extractor for videos (``"auto"``: see
            :func:`pose.extractors.default_video_backend`).
        cache_dir: pose cache for videos.
        pose_options: options of the video extractor, as :func:`pose.extractors.build_extractor`
            takes them (``pose_model``, ``allow_download``, ``device`` ...); None values are dropped.
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
        from pose.extractors import build_extractor

        if not path.is_file():
            raise FileNotFoundError(f"video not found: {path}")
        extractor = build_extractor(backend, **(pose_options or {}))
        seq, _ = cached_extract(path, extractor, PoseCache(cache_dir or default_cache_dir() / "pose"))
        if seq.skeleton != skeleton.name:
            from pose.convert import convert

            seq = convert(seq, skeleton.name)
    elif path.suffix.lower() in (".npy", ".npz"):
        if not path.exists():
            raise FileNotFoundError(f"keypoint file not found: {path}")
        seq = make_extractor("file", skeleton=skeleton.name, fps=fps).extract(path) if path.suffix.lower() == ".npy" \
            else make_extractor("file").extract(path)
        if seq.skeleton != skeleton.name:  # e.g. a mediapipe33 .npz of kept pose extract, for a coco17 model
            from pose.convert import convert

            try:
                seq = convert(seq, skeleton.name)
            except (ValueError, KeyError):
                pass  # reported below as a skeleton mismatch
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
            category: str | None = None, rank: str = "local", path_first: bool = False) -> dict:
    """Score two recordings and collect the evidence for the report.

    Args:
        category: the sub-activity of both recordings, for the statistics branch's
            per-category model (default: each recording's own ``category``; the global model
            when neither is known).
        top: how many of the best paths to report per recording.
        max_edges: how many implicit-graph edges (the strongest, by mean weight) to report.
        rank, path_first: the order of the physical findings (:mod:`kept.explain.physical`).

    Returns:
        The ``compare.json`` dict (see the module docstring).
    """
    if a.name == b.name:
        b = Recording(name=f"{b.name}_2", xyz=b.xyz, fps=b.fps, category=b.category)
    model.eval()
    feats = []
    for rec in (a, b):
        xyz = prepare_keypoints(rec.xyz, skeleton, up_axis, cfg.data.canonical_facing)
        feats.append(recording_features(xyz, skeleton, rec.fps, num_keyframes=cfg.data.num_keyframes,
                                        depth=cfg.model.depth, segment_samples=cfg.data.segment_samples,
                                        up_axis=up_axis))
    cats = [category or rec.category for rec in (a, b)]
    index = model.stats.index_of(cats) if model.stats is not None else None
    x = stack_features(feats)
    out = model(x, category=index)
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
    description = None
    if model.memory is not None:
        from kept.model.memory import descriptor

        desc = descriptor(out.contrib, out.graph.mean(dim=1))
        description = model.memory.describe_scored(desc[:1], desc[1:], out.score[:1], out.score[1:],
                                                   [cats[0] or cats[1]])[0]
    elif model.decoder is not None:
        description = model.decoder.generate(h[:1], h[1:])[0]
    implicit = None
    if out.ikg_weight is not None:  # (2, K, C): mean weight of each implicit edge over both recordings
        weight = out.ikg_weight.mean(dim=(0, 1)).numpy()
        keep = [i for i in np.argsort(-weight)[:max_edges] if weight[i] > 0]  # the strongest edges
        implicit = {"edges": model.gnn.ikg.candidates.numpy()[keep].tolist(), "weight": weight[keep].round(6).tolist()}
    diff = scores[0] - scores[1]
    better = (None, a.name, b.name)[better_of(scores[0], scores[1], (lo, hi))]
    lost = None  # per joint: (2, K, B, J) score lost, so that left and right are told apart
    if out.contrib is not None:
        lost = (-model.stats.joint_contributions(x.block_stats, index, x.whole_stats, x.curves, x.duration) * (hi - lo)).numpy()
    physical = physical_differences(cfg, skeleton, a, b, scores, [out.best_path[i].tolist() for i in (0, 1)],
                                    lost, up_axis=up_axis, rank=rank, path_first=path_first)
    physical.pop("curves")  # for the plots only
    return {
        "recordings": sides,
        "order": [a.name, b.name],
        "better": better,
        "score_difference": round(diff, 4),
        "residual": {j: round(float(r), 6) for j, r in sorted(zip(skeleton.joints, residual), key=lambda x: -x[1])},
        "implicit_edges": implicit,
        "physical": physical,
        "description": description,
    }


def physical_differences(cfg: RunConfig, skeleton: Skeleton, a: Recording, b: Recording, scores: list[float],
                         best_paths: list[list[int]], lost: list[np.ndarray] | None, up_axis: str = "y",
                         rank: str = "local", path_first: bool = False) -> dict:
    """The physical-difference report of a scored pair (:func:`kept.explain.physical.physical_report`),
    following the reasoning path of the recording with the lower score (the first when level).

    Args:
        scores: the two scores; best_paths: each recording's l* as node indices (K,);
        lost: each recording's score lost per (segment, node) block (K, B) or per (segment,
            node, joint of the node) (K, B, J), or None.
    """
    subject = 1 if scores[1] < scores[0] else 0
    path = [skeleton.node_names[j] for j in best_paths[subject]]
    xyz = [prepare_keypoints(r.xyz, skeleton, up_axis, cfg.data.canonical_facing) for r in (a, b)]
    return physical_report(xyz[0], xyz[1], a.fps, b.fps, skeleton, (a.name, b.name), cfg.model.depth, subject,
                           path, penalties=None if lost is None else (lost[0], lost[1]), rank=rank, path_first=path_first,
                           up_axis=up_axis)


def format_report(result: dict, findings: int = 5) -> str:
    """The comparison as readable text, with the first ``findings`` physical differences as sentences."""
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
    physical = result.get("physical")
    if physical:
        subject, other = physical["subject"], physical["other"]
        lines.append(f"physical differences ({subject}'s segments, phases matched by DTW"
                     + (f"; {subject}'s reasoning path first):" if physical.get("path_first") else "):"))
        for f in physical["findings"][:findings]:
            lines.append(("  [path] " if f["on_path"] else "  ") + sentence(f, subject, other))
    if result.get("description"):
        lines.append(f"difference: {result['description']}")
    return "\n".join(lines)


def write_plots(result: dict, a: Recording, b: Recording, skeleton: Skeleton, out_dir: str | Path,
                up_axis: str = "y", formats: tuple[str, ...] = ("png", "pdf"),
                kinds: tuple[str, ...] = ("paths", "residual", "poses", "angles"), canonical: bool = True,
                depth: int | None = None) -> list[Path]:
    """The plots of a comparison: each recording's reasoning-path tree (top-10 paths with Q,
    l* highlighted), the residual on the skeleton (each joint's mean absolute angle difference
    over the DTW-aligned performance in degrees, with the implicit edges; the graph-embedding
    residual when the result has no physical report), the two recordings' key poses in the
    segments of the first recording's selected path, and the aligned angle curves of the joints
    the subject's path watches.

    Args:
        kinds: which of ``paths``, ``residual``, ``poses`` and ``angles`` to draw.
        canonical: turn the keypoints into the canonical facing, as the model saw them
            (``data.canonical_facing``).
        depth: K (default: the number of steps of the selected paths).

    Returns:
        The files written.
    """
    from kept.explain.plots import plot_angle_curves, plot_paths, plot_poses, plot_residual

    out_dir = Path(out_dir)
    names = list(skeleton.node_names)
    up = up_axis if up_axis in ("y", "z") else up_axis.lstrip("-")
    written = []
    first, second = result["order"]
    recs = {first: a, second: b}
    physical = result.get("physical")
    curves = None
    if physical and "angles" in kinds:
        s = 0 if physical["subject"] == first else 1
        path = [step["node"] for step in result["recordings"][physical["subject"]]["path"]]
        xyz = [prepare_keypoints(r.xyz, skeleton, up_axis, canonical) for r in (a, b)]
        rep = physical_report(xyz[0], xyz[1], a.fps, b.fps, skeleton, (first, second), depth or len(path), s,
                              path, up_axis=up_axis)
        curves = (rep["curves"], path, result["recordings"][physical["subject"]]["segment_times"])
    for fmt in formats:
        for name in (first, second) if "paths" in kinds else ():
            side = result["recordings"][name]
            paths = [[names.index(n) for n in p["path"]] for p in side["top_paths"]]
            q = [p["q"] for p in side["top_paths"]]
            best = [names.index(step["node"]) for step in side["path"]]
            if best not in paths:  # l* of a search that does not score every path the same way
                paths, q = [best] + paths[:-1], [max(q)] + q[:-1]
            written.append(plot_paths(np.array(paths), np.array(q), paths.index(best), names,
                                      [tuple(t) for t in side["segment_times"]],
                                      out_dir / f"paths_{name}.{fmt}", title=f"{name}: reasoning paths"))
        ref = prepare_keypoints(a.xyz, skeleton, up_axis, canonical)
        mean_pose = np.nanmean(ref, axis=0)
        implicit = result.get("implicit_edges")
        edges = np.array(implicit["edges"]) if implicit and implicit["edges"] else None
        weight = np.array(implicit["weight"]) if edges is not None else None
        if "residual" in kinds:
            if physical and physical.get("joint_angle_diff_deg"):
                diff = physical["joint_angle_diff_deg"]
                residual = np.array([diff.get(j, np.nan) for j in skeleton.joints])
                units = "mean |angle difference| after alignment (deg); grey: no angle"
            else:
                residual = np.array([result["residual"][j] for j in skeleton.joints])
                units = "graph-embedding distance ||H_1 - H_2|| (no physical unit)"
            written.append(plot_residual(skeleton, mean_pose, residual, edges, weight, out_dir / f"residual.{fmt}",
                                         up_axis=up, title=f"where {first} and {second} differ", units=units))
        if "poses" in kinds:
            path_nodes = [s["node"] for s in result["recordings"][first]["path"]]
            written.append(plot_poses(skeleton, ref, prepare_keypoints(b.xyz, skeleton, up_axis, canonical),
                                      a.fps, b.fps, path_nodes, len(path_nodes), out_dir / f"poses.{fmt}",
                                      up_axis=up, labels=(first, second)))
        if curves is not None:
            c, path, spans = curves
            subject = physical["subject"]
            other = second if subject == first else first
            written.append(plot_angle_curves(c["time"], c, (subject, other), path, [tuple(t) for t in spans],
                                             dict(skeleton.node_types), out_dir / f"angles.{fmt}"))
    return written
