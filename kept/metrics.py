"""Score metrics of docs/method.md section 9, in the dataset's own units.

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

__all__ = ["spearman", "relative_l2", "relative_l1", "pair_accuracy", "score_metrics", "evaluate_scores",
           "fisher_z_mean", "best_f1_threshold", "f1_at", "better_of", "TIE_TOLERANCE"]

#: two scores closer than this share of the score range are a tie (``kept compare``, GRPO rows)
TIE_TOLERANCE = 1e-3


def better_of(s1: float, s2: float, score_range: tuple[float, float]) -> int:
    """1 or 2 for the higher score, 0 when they differ by at most :data:`TIE_TOLERANCE` of the range."""
    tol = TIE_TOLERANCE * ((score_range[1] - score_range[0]) or 1.0)
    return 0 if abs(s1 - s2) <= tol else 1 if s1 > s2 else 2


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


def _check_binary(y_true: Sequence[float], score: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y_true, dtype=float).ravel(), np.asarray(score, dtype=float).ravel()
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} values but score has {len(s)}")
    if len(y) == 0:
        raise ValueError("no recordings: y_true and score are empty")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"y_true must hold 0/1 labels, got {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(s).all():
        raise ValueError("score holds NaN or infinite values")
    return y.astype(int), s


def best_f1_threshold(y_true: Sequence[float], score: Sequence[float]) -> float:
    """The threshold maximising F1 of ``score >= threshold`` against ``y_true``.

    Candidates are the observed scores; ties go to the smallest threshold. Without any positive
    label every F1 is 0, so the smallest score is returned.

    Args:
        y_true: 0/1 labels (1 = error present), e.g. of the training split.
        score: the predicted error scores.

    Returns:
        The threshold (one of the scores).
    """
    y, s = _check_binary(y_true, score)
    cands = np.unique(s)  # ascending
    pred = s[None, :] >= cands[:, None]
    tp = (pred & (y[None, :] == 1)).sum(1)
    fp = (pred & (y[None, :] == 0)).sum(1)
    fn = int(y.sum()) - tp
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(cands[int(np.argmax(f1))])  # argmax: first (smallest) of the ties


def f1_at(y_true: Sequence[float], score: Sequence[float], threshold: float) -> float:
    """F1 (sklearn) of ``score >= threshold`` against ``y_true``; 0.0 without any positive label."""
    y, s = _check_binary(y_true, score)
    if not y.any() or math.isnan(threshold):
        return 0.0
    from sklearn.metrics import f1_score

    return float(f1_score(y, (s >= threshold).astype(int), zero_division=0.0))
