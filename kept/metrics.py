"""Score metrics of METHOD.md section 9, in the dataset's own units.

- ``spearman``: Spearman's rho over recordings, each recording counted once (scipy).
- ``r_l2_x100``: mean(((y - y_hat) / (y_max - y_min))^2) x 100, the relative L2 of the AQA
  literature (CoRe); ``r_l1_x100`` the absolute form printed in the KEPT appendix.
- ``pair_accuracy``: share of pairs whose predicted order matches the reference order, pairs
  with tied reference scores skipped.

Undefined values (rho of a constant vector, no untied pair) are reported as ``None`` (JSON null),
never as a made-up number.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

__all__ = ["spearman", "relative_l2", "relative_l1", "pair_accuracy", "score_metrics", "evaluate_scores"]


def spearman(y_true: Sequence[float], y_pred: Sequence[float]) -> float | None:
    """Spearman's rho; None with fewer than 2 recordings or a constant input."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return None
    return float(spearmanr(y_true, y_pred).statistic)


def relative_l2(y_true: Sequence[float], y_pred: Sequence[float], score_range: tuple[float, float]) -> float:
    """R-l2 x 100: mean of ((y - y_hat) / (y_max - y_min))^2 times 100."""
    span = score_range[1] - score_range[0]
    err = (np.asarray(y_true, float) - np.asarray(y_pred, float)) / span
    return float(np.mean(err**2) * 100)


def relative_l1(y_true: Sequence[float], y_pred: Sequence[float], score_range: tuple[float, float]) -> float:
    """R-l1 x 100: mean of |y - y_hat| / (y_max - y_min) times 100."""
    span = score_range[1] - score_range[0]
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)) / span) * 100)


def pair_accuracy(pairs: Iterable[tuple[str, str]], truth: Mapping[str, float], pred: Mapping[str, float]) -> float | None:
    """Share of pairs ordered correctly; reference ties skipped, predicted ties count as wrong."""
    right = total = 0
    for a, b in pairs:
        ref = truth[a] - truth[b]
        if ref == 0:
            continue
        total += 1
        right += int(np.sign(pred[a] - pred[b]) == np.sign(ref))
    return right / total if total else None


def score_metrics(ids: Sequence[str], truth: Mapping[str, float], pred: Mapping[str, float],
                  pairs: Sequence[tuple[str, str]], score_range: tuple[float, float]) -> dict:
    """The four score metrics over the given recordings and pairs."""
    y = [truth[i] for i in ids]
    y_hat = [pred[i] for i in ids]
    return {
        "spearman": spearman(y, y_hat),
        "r_l2_x100": relative_l2(y, y_hat, score_range),
        "r_l1_x100": relative_l1(y, y_hat, score_range),
        "pair_accuracy": pair_accuracy(pairs, truth, pred),
    }


def evaluate_scores(categories: Mapping[str, str], truth: Mapping[str, float], pred: Mapping[str, float],
                    pairs: Sequence[tuple[str, str]], score_range: tuple[float, float]) -> dict:
    """Overall and per-category metrics in the ``metrics.json`` layout.

    Args:
        categories: recording id -> category, for the evaluated recordings.
        truth, pred: recording id -> score in the dataset's units.
        pairs: evaluated pairs (both members among ``categories``).
        score_range: (min, max) of the dataset's scale.

    Returns:
        ``{"score": {...}, "per_category": {name: {...}}, "n_recordings", "n_pairs"}``
    """
    ids = list(categories)
    out = {"score": score_metrics(ids, truth, pred, pairs, score_range), "per_category": {}}
    for cat in sorted(set(categories.values())):
        cat_ids = [i for i in ids if categories[i] == cat]
        cat_pairs = [p for p in pairs if categories[p[0]] == cat]
        out["per_category"][cat] = score_metrics(cat_ids, truth, pred, cat_pairs, score_range)
    out["n_recordings"] = len(ids)
    out["n_pairs"] = len(pairs)
    return out


def fisher_z_mean(rhos: Iterable[float | None]) -> float | None:
    """Average correlations through Fisher's z (as the AQA papers average over classes)."""
    vals = [min(max(r, -0.9999), 0.9999) for r in rhos if r is not None and not math.isnan(r)]
    if not vals:
        return None
    return float(np.tanh(np.mean(np.arctanh(vals))))


def best_f1_threshold(y_true: Sequence[int], score: Sequence[float]) -> float:
    """The decision threshold (``score >= t`` means positive) that maximises F1; ties: smallest t.

    Used to turn a score into error detection, with the threshold chosen on the training split.
    """
    y = np.asarray(y_true, int)
    s = np.asarray(score, float)
    best_t, best_f = float(s.min()) if len(s) else 0.5, -1.0
    for t in np.unique(s):
        f = f1_at(y, s, float(t))
        if f > best_f:
            best_t, best_f = float(t), f
    return best_t


def f1_at(y_true: Sequence[int], score: Sequence[float], threshold: float) -> float:
    """F1 of ``score >= threshold`` against binary labels; 0.0 when nothing is positive."""
    from sklearn.metrics import f1_score

    y = np.asarray(y_true, int)
    return float(f1_score(y, (np.asarray(score, float) >= threshold).astype(int), zero_division=0.0))
