"""``kept eval``: predictions of a trained model and the metrics of docs/method.md section 9.

``metrics.json``::

    {"score": {"spearman", "r_l2_x100", "r_l1_x100", "pair_accuracy"},
     "per_category": {name: {same keys}}, "n_recordings", "n_pairs", "split",
     "paths": {...},          # only when the dataset ships true fault annotations (faults.json)
     "path_values": {"q_gap_1_10", "distinct_best", "n"},  # how separated and how varied l* is
     "f1": {error_type: F1}, "f1_threshold": t}   # only for binary error labels (FitnessAQA)

Scores are reported in the dataset's units. :func:`evaluate_model` also returns the predicted
scores (``"predictions"``: id -> score), which are left out of the file. Every recording is scored once, on its own (the
score branch does not look at the other recording of a pair), and pair accuracy orders the
split's pairs by those scores.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kept.config import RunConfig
from kept.data.datamodule import FeatureBank
from kept.data.folder import KeypointDataset
from kept.io import atomic_write_json, atomic_write_text
from kept.metrics import best_f1_threshold, evaluate_scores, f1_at, fisher_z_mean
from kept.model import KEPT
from kept.model.tree import gather_paths
from kept.system import features_of

__all__ = ["Predictions", "predict", "evaluate_model", "fault_path_agreement", "path_value_summary",
           "cross_validation_metrics",
           "without_predictions"]


@dataclass
class Predictions:
    """Per-recording outputs of the score branch.

    Shapes:
        score: (R,) normalised predicted scores
        best_path: (R, K) node index per level of the selected path l*
        top_paths: (R, k, K) the k best candidate paths, best first (k = ``top`` of :func:`predict`)
        top_q: (R, k) their values Q = sigmoid(logit)
        net_score, stats_score: (R,) the network's and the statistics branch's parts of the
            score (``stats_score`` None without the branch)
        contrib: (R, K, B) the statistics branch's block contributions, or None
    """

    ids: list[str]
    score: np.ndarray
    best_path: np.ndarray
    top_paths: np.ndarray
    top_q: np.ndarray
    graph: torch.Tensor | None = None  #: (R, P, D) H, the mean over segments (for the decoder)
    net_score: np.ndarray | None = None
    stats_score: np.ndarray | None = None
    contrib: np.ndarray | None = None


@torch.no_grad()
def predict(model: KEPT, bank: FeatureBank, ids: list[str], batch_size: int = 64, progress: bool = False,
            top: int = 10) -> Predictions:
    """Score recordings (no commentary needed) and select their reasoning paths.

    Args:
        top: how many of the best candidate paths to keep per recording.
    """
    model.eval()
    device = next(model.parameters()).device
    scores, paths, tops, qs, graphs, nets, stats, contribs = [], [], [], [], [], [], [], []
    for start in tqdm(range(0, len(ids), batch_size), desc="predict", disable=not progress, leave=False):
        batch = bank.batch(bank.rows(ids[start : start + batch_size]))
        category = _category_index(model, bank, batch["category"]).to(device)
        out = model(features_of(batch).to(device), category=category)
        nets.append(out.net_score.cpu())
        if out.stats_score is not None:
            stats.append(out.stats_score.cpu())
            contribs.append(out.contrib.cpu())
        scores.append(out.score.cpu())
        paths.append(out.best_path.cpu())
        logit, index = out.logits.topk(min(top, out.logits.shape[-1]), dim=-1)  # (R, k)
        tops.append(gather_paths(out.paths, index).cpu())
        qs.append(torch.sigmoid(logit).cpu())
        graphs.append(out.graph.mean(dim=1).cpu())
    if not ids:
        K = model.cfg.depth
        return Predictions([], np.zeros(0), np.zeros((0, K), int), np.zeros((0, 0, K), int), np.zeros((0, 0)))
    return Predictions(ids, torch.cat(scores).numpy(), torch.cat(paths).numpy(), torch.cat(tops).numpy(),
                       torch.cat(qs).numpy(), torch.cat(graphs), torch.cat(nets).numpy(),
                       torch.cat(stats).numpy() if stats else None, torch.cat(contribs).numpy() if contribs else None)


def _category_index(model: KEPT, bank: FeatureBank, category: torch.Tensor) -> torch.Tensor:
    """The bank's category indices mapped to the model's statistics branch (-1 where the branch
    was not fitted on a category, or without the branch). Shapes: (R,) -> (R,)"""
    if model.stats is None:
        return torch.full_like(category, -1)
    names = [bank.categories[int(c)] for c in category]
    return model.stats.index_of(names)


def fault_path_agreement(best_path: dict[str, np.ndarray], faults: dict[str, list[dict]],
                         node_names: tuple[str, ...], depth: int) -> dict:
    """How often the selected path watches a faulted node type in a faulted segment.

    A recording with faults counts as a hit when for some fault the path's node at a segment
    overlapping the fault's time span [t_start, t_end) is the fault's node type. ``chance_rate``
    is the hit rate of a path drawn uniformly at random, for comparison.

    Returns:
        ``{"hit_rate", "chance_rate", "n"}`` over the recordings that have faults.
    """
    hits, chance = [], []
    B = len(node_names)
    for rid, path in best_path.items():
        marked = [set() for _ in range(depth)]  # faulted node indices per segment
        for f in faults.get(rid, []):
            if f["node_type"] not in node_names:
                continue
            first = int(np.floor(f["t_start"] * depth))
            last = int(np.ceil(f["t_end"] * depth)) - 1
            for k in range(max(first, 0), min(last, depth - 1) + 1):
                marked[k].add(node_names.index(f["node_type"]))
        if not any(marked):
            continue
        hits.append(any(int(path[k]) in marked[k] for k in range(depth)))
        chance.append(1.0 - float(np.prod([1.0 - len(m) / B for m in marked])))
    if not hits:
        return {"hit_rate": None, "chance_rate": None, "n": 0}
    return {"hit_rate": float(np.mean(hits)), "chance_rate": float(np.mean(chance)), "n": len(hits)}


def path_value_summary(pred: Predictions) -> dict:
    """How decided the path values are: the mean gap in Q between l* and the 10th best path
    (``q_gap_1_10``; the last kept path if fewer), and how many distinct l* the recordings select."""
    if len(pred.ids) == 0 or pred.top_q.size == 0:
        return {"q_gap_1_10": None, "distinct_best": 0, "n": 0}
    gap = pred.top_q[:, 0] - pred.top_q[:, min(9, pred.top_q.shape[1] - 1)]
    return {"q_gap_1_10": float(np.mean(gap)), "distinct_best": len({tuple(p) for p in pred.best_path.tolist()}),
            "n": len(pred.ids)}


def evaluate_model(model: KEPT, dataset: KeypointDataset, cfg: RunConfig, split: str = "test",
                   bank: FeatureBank | None = None, out: str | Path | None = None,
                   predictions: str | Path | None = None, descriptions: str | Path | None = None) -> dict:
    """Metrics of a model on one split of a dataset; optionally written to files.

    Args:
        model: trained KEPT model.
        dataset: the dataset (same skeleton as the model).
        cfg: the model's run config (feature settings).
        split: ``train``, ``val`` or ``test``.
        bank: precomputed features of ``dataset`` (computed when None).
        out: write ``metrics.json`` here.
        predictions: write a per-recording CSV here.
        descriptions: write the generated and reference descriptions of the pairs here (CSV).
    """
    sk = dataset.skeleton
    if tuple(model.joints) != sk.joints or tuple(model.node_names) != sk.node_names:
        raise ValueError(
            f"the model was trained on a skeleton with joints {list(model.joints)} and node types "
            f"{list(model.node_names)}, but dataset {dataset.root} has skeleton '{sk.name}' with "
            f"{sk.num_joints} joints and node types {list(sk.node_names)}: evaluate on data of the "
            "same skeleton (or convert it, see pose/)"
        )
    ids = dataset.ids(split)
    if not ids:
        raise ValueError(f"{dataset.root}: split '{split}' has no recordings")
    bank = bank or FeatureBank(dataset, cfg, progress=cfg.train.progress_bar, commentary=False)
    pred = predict(model, bank, ids, cfg.train.eval_batch_size, progress=cfg.train.progress_bar)
    truth = {i: dataset.recordings[i].score for i in ids}
    scores = dict(zip(ids, dataset.denormalize_score(pred.score).tolist()))
    pairs = [(p.id_a, p.id_b) for p in dataset.pairs_in(split)]
    metrics = evaluate_scores({i: dataset.recordings[i].category for i in ids}, truth, scores, pairs,
                              dataset.score_range)
    metrics["split"] = split
    metrics["predictions"] = scores
    described = [p for p in dataset.pairs_in(split) if (p.description or "").strip()]
    if (model.decoder is not None or model.memory is not None) and described:
        metrics.update(_describe_pairs(model, dataset, pred, described, cfg, descriptions))
        for cat, text in metrics.pop("_text_per_category").items():
            metrics["per_category"][cat]["text"] = text
    if dataset.meta.get("labels") == "binary":
        metrics.update(_error_detection(model, bank, dataset, cfg, ids, pred.score))
    metrics["path_values"] = path_value_summary(pred)
    faults_file = Path(dataset.root) / "faults.json"
    if faults_file.exists():
        faults = json.loads(faults_file.read_text())
        metrics["paths"] = fault_path_agreement(dict(zip(ids, pred.best_path)), faults,
                                                dataset.skeleton.node_names, model.cfg.depth)
    if out is not None:
        atomic_write_json(out, without_predictions(metrics))
    if predictions is not None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id", "category", "score", "predicted", "path"])
        for i, rid in enumerate(ids):
            path = "-".join(dataset.skeleton.node_names[j] for j in pred.best_path[i])
            w.writerow([rid, dataset.recordings[rid].category, truth[rid], round(scores[rid], 4), path])
        atomic_write_text(predictions, buf.getvalue())
    return metrics


@torch.no_grad()
def describe_pairs(model: KEPT, pred: Predictions, orders: list[tuple[str, str]], num_beams: int = 1,
                   batch_size: int = 32, categories: list[str | None] | None = None) -> list[str]:
    """The difference description of each (first, second) pair of predicted recordings: from
    the description memory (``text.generator=retrieval``; ``categories``: each pair's
    sub-activity), else from the decoder reading their graph embeddings in ``pred`` ("" for
    every pair when the model has neither)."""
    row = {rid: i for i, rid in enumerate(pred.ids)}
    if model.memory is not None:
        from kept.model.memory import descriptor

        desc = descriptor(None if pred.contrib is None else torch.as_tensor(pred.contrib), pred.graph)
        first, second = [row[a] for a, _ in orders], [row[b] for _, b in orders]
        return model.memory.describe_scored(desc[first], desc[second], pred.score[first], pred.score[second],
                                            categories or [None] * len(orders))
    if model.decoder is None:
        return [""] * len(orders)
    out: list[str] = []
    for start in range(0, len(orders), batch_size):
        chunk = orders[start:start + batch_size]
        h1 = pred.graph[[row[a] for a, _ in chunk]]
        h2 = pred.graph[[row[b] for _, b in chunk]]
        out.extend(model.decoder.generate(h1, h2, num_beams=num_beams))
    return out


@torch.no_grad()
def _describe_pairs(model: KEPT, dataset: KeypointDataset, pred: Predictions, pairs: list, cfg: RunConfig,
                    out: str | Path | None) -> dict:
    """Generate the difference description of every pair that has a reference, and score the
    text (docs/method.md section 9) and its grounding (:mod:`kept.explain.grounding`):
    ``{"text": {...}}`` overall, and per category under ``per_category[cat]["text"]`` (added by
    the caller's metrics dict)."""
    from kept.explain.grounding import grounding_metrics, known_fault_nodes
    from kept.metrics import better_of
    from kept.text_metrics import evaluate_text

    texts = describe_pairs(model, pred, [(p.id_a, p.id_b) for p in pairs], cfg.text.num_beams,
                           categories=[dataset.recordings[p.id_a].category for p in pairs])
    hyps = {f"{p.id_a}|{p.id_b}": text for p, text in zip(pairs, texts)}
    refs = {f"{p.id_a}|{p.id_b}": p.description for p in pairs}
    cats = {f"{p.id_a}|{p.id_b}": dataset.recordings[p.id_a].category for p in pairs}
    scored = evaluate_text(refs, hyps, cats)
    row = {rid: i for i, rid in enumerate(pred.ids)}
    own = {f"{p.id_a}|{p.id_b}": better_of(float(pred.score[row[p.id_a]]), float(pred.score[row[p.id_b]]), (0.0, 1.0))
           for p in pairs}
    scored["text"].update(grounding_metrics(refs, hyps, own, known_fault_nodes(dataset, pairs)))
    if out is not None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id_a", "id_b", "category", "generated", "reference"])
        for p in pairs:
            key = f"{p.id_a}|{p.id_b}"
            w.writerow([p.id_a, p.id_b, cats[key], hyps[key], refs[key]])
        atomic_write_text(out, buf.getvalue())
    return {"text": scored["text"], "_text_per_category": scored["per_category"]}


def _error_detection(model: KEPT, bank: FeatureBank, dataset: KeypointDataset, cfg: RunConfig,
                     ids: list[str], score: np.ndarray) -> dict:
    """F1 of error detection for datasets of binary labels (``"labels": "binary"`` in
    dataset.json, as the FitnessAQA converter writes): the predicted score thresholded at the
    value that maximises F1 on the train split."""
    train_ids = dataset.ids("train")
    if not train_ids:
        raise ValueError(f"{dataset.root}: error detection needs train recordings to choose its threshold")
    train_pred = predict(model, bank, train_ids, cfg.train.eval_batch_size)
    label = lambda rids: [int(dataset.normalize_score(dataset.recordings[i].score) >= 0.5) for i in rids]  # noqa: E731
    threshold = best_f1_threshold(label(train_ids), train_pred.score)
    name = str(dataset.meta.get("error_type", dataset.name))
    return {"f1": {name: f1_at(label(ids), score, threshold)}, "f1_threshold": threshold}


def without_predictions(metrics: dict) -> dict:
    """The metrics without the per-recording predictions (what ``metrics.json`` holds)."""
    return {k: v for k, v in metrics.items() if k != "predictions"}


def cross_validation_metrics(folds: dict[str, dict], dataset: KeypointDataset) -> dict:
    """Aggregate the test predictions of cross-validation folds, as the AQA papers report them.

    Every recording is in the test split of one fold (leave-one-user-out or
    leave-one-supertrial-out), so the folds' predictions are pooled and the metrics computed once
    over all recordings; rho per category (task) is averaged over categories with Fisher's z.
    The mean over folds of each fold's own rho (Fisher's z) is reported as well.

    Args:
        folds: fold name -> the metrics returned by :func:`evaluate_model` for that fold.
        dataset: the dataset (any fold's view: ids, scores and categories are the same).

    Returns:
        The ``metrics.json`` layout over the pooled predictions, plus ``"spearman_fisher_z"``
        (over categories), ``"fold_spearman_fisher_z"`` (over folds) and ``"folds"`` (each fold's
        metrics without predictions).
    """
    pooled: dict[str, list[float]] = {}
    for m in folds.values():
        for rid, score in m["predictions"].items():
            pooled.setdefault(rid, []).append(score)
    pred = {rid: float(np.mean(v)) for rid, v in pooled.items()}
    ids = sorted(pred)
    cats = {i: dataset.recordings[i].category for i in ids}
    truth = {i: dataset.recordings[i].score for i in ids}
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if cats[a] == cats[b]]  # within category
    out = evaluate_scores(cats, truth, pred, pairs, dataset.score_range)
    out["split"] = "test (pooled over folds)"
    out["spearman_fisher_z"] = fisher_z_mean(m["spearman"] for m in out["per_category"].values())
    out["fold_spearman_fisher_z"] = fisher_z_mean(m["score"]["spearman"] for m in folds.values())
    out["folds"] = {name: without_predictions(m) for name, m in folds.items()}
    return out
