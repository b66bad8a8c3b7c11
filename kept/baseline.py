"""Classical baselines for score regression, and the ceiling of data that ships its faults.

- ``ridge``: global statistics only (no temporal segments): for every node-type joint its
  interior angle ``a`` (docs/method.md section 3) and for every joint its speed ``v`` in normalised
  units per second, each summarised by mean, standard deviation, minimum and maximum over the
  whole recording; one ridge regression (regularisation strength chosen by cross-validation) on
  the standardised features for all categories. It sees how far and how fast joints move, but
  not *when* in the action they do it.
- ``segment_ridge``: the time-aware peer: per temporal segment (K equal time spans, K = the
  model's depth) and node-type joint, the mean, std, min and max of its angle and the mean and
  max of its speed (:func:`kept.features.block_statistics`), one ridge regression *per category*
  (the strongest classical model on the demo data among those we measured).
- ``segment_gbm``: the same per-segment statistics and the whole-recording ones of ``ridge``,
  one gradient-boosted tree ensemble for all categories with the category as one-hot features
  (scikit-learn's ``HistGradientBoostingRegressor``: 300 trees of at most 8 leaves, learning
  rate 0.05, at least 5 recordings per leaf, L2 1.0; seed 0), the non-linear classical peer.
  *Decision*: pooled rather than one model per category, chosen on the demo's val split
  (fitted on train: rho 0.316 / pair accuracy 0.606 pooled, 0.155 / 0.576 per category).
- ``stats_branch``: KEPT's statistics branch fitted on its own, without the network: per-segment
  statistics of the node joints and optionally the whole-recording ones, per category or pooled,
  the variant chosen by cross-validation on the training recordings
  (:mod:`kept.model.stats_branch`). The strongest classical model here, and what KEPT must beat
  to show that its network adds anything.
- ``ceiling`` (only when the dataset has ``faults.json``, as the demo data does): one linear fit
  per category of the score on the *true* fault magnitudes (one feature per fault kind). It
  shows how much of the score the faults explain, i.e. the headroom above the baselines.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pose.kinematics import fill_missing
from pose.skeleton import Skeleton

__all__ = ["handcrafted_features", "segment_features", "ridge_baseline", "per_category_ridge",
           "gbm_baseline", "evaluate_baseline", "evaluate_baselines", "retrieval_descriptions", "evaluate_retrieval_text",
           "BASELINES"]

#: The score baselines of :func:`evaluate_baselines`, in report order.
BASELINES = ("ridge", "segment_ridge", "segment_gbm", "stats_branch", "ceiling")


def handcrafted_features(
    xyz: np.ndarray, skeleton: Skeleton, fps: float, up_axis: str = "y"
) -> np.ndarray:
    """Global angle and speed statistics of one recording: :func:`kept.features.whole_statistics`.

    Shapes:
        xyz: (F, P, 3)
        returns: (4 (A + P),) float64, A the number of node-type joints
    """
    from kept.features import whole_statistics

    return whole_statistics(xyz, skeleton, fps, up_axis)


def segment_features(xyz: np.ndarray, skeleton: Skeleton, fps: float, up_axis: str = "y",
                     depth: int = 4) -> np.ndarray:
    """Per-segment angle and speed statistics of every node-type joint (the block statistics
    of KEPT's statistics branch, flattened).

    Shapes:
        xyz: (F, P, 3)
        returns: (K B 6 J,) float64
    """
    from kept.features import block_statistics
    from pose.kinematics import node_kinematics

    return block_statistics(node_kinematics(fill_missing(xyz), skeleton, fps, up_axis), depth).reshape(-1)


def per_category_ridge(train_X: np.ndarray, train_y: np.ndarray, train_cat: Sequence[str],
                       test_X: np.ndarray, test_cat: Sequence[str],
                       alphas: Sequence[float] = tuple(np.logspace(-1, 4, 11))) -> np.ndarray:
    """One :func:`ridge_baseline` per category; a test category unseen in training gets the
    global fit.

    Shapes:
        train_X: (N, D); train_y: (N,); test_X: (M, D); returns: (M,)
    """
    train_cat, test_cat = np.asarray(train_cat), np.asarray(test_cat)
    out = np.zeros(len(test_X))
    fallback = None
    for c in np.unique(test_cat):
        te = test_cat == c
        tr = train_cat == c
        if tr.sum() >= 3:
            out[te] = ridge_baseline(train_X[tr], train_y[tr], test_X[te], alphas)
        else:
            fallback = ridge_baseline(train_X, train_y, test_X, alphas) if fallback is None else fallback
            out[te] = fallback[te]
    return out


def gbm_baseline(train_X: np.ndarray, train_y: np.ndarray, train_cat: Sequence[str],
                 test_X: np.ndarray, test_cat: Sequence[str], seed: int = 0) -> np.ndarray:
    """One gradient-boosted regressor on all categories, the category given as one-hot
    features (settings in the module docstring).

    Shapes:
        train_X: (N, D); train_y: (N,); test_X: (M, D); returns: (M,)
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    train_X, test_X = np.asarray(train_X, dtype=np.float64), np.asarray(test_X, dtype=np.float64)
    train_y = np.asarray(train_y, dtype=np.float64).reshape(-1)
    if train_X.ndim != 2 or test_X.ndim != 2 or train_X.shape[1] != test_X.shape[1] or len(train_X) != len(train_y):
        raise ValueError(f"features must be 2-D with the same width and one score per training row, got "
                         f"{train_X.shape}, {test_X.shape} and {train_y.shape}")
    cats = sorted(set(train_cat))
    onehot = lambda names: np.array([[n == c for c in cats] for n in names], dtype=np.float64)  # noqa: E731
    model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, max_leaf_nodes=8,
                                          min_samples_leaf=5, l2_regularization=1.0, random_state=seed)
    model.fit(np.hstack([train_X, onehot(train_cat)]), train_y)
    return model.predict(np.hstack([test_X, onehot(test_cat)]))


def ridge_baseline(
    train_X: np.ndarray,
    train_y: np.ndarray,
    test_X: np.ndarray,
    alphas: Sequence[float] = (0.1, 1, 10, 100),
) -> np.ndarray:
    """Fit a ridge regression on standardised features and predict the test scores.

    The features are standardised with the training mean and standard deviation; the ridge
    strength is picked from ``alphas`` by scikit-learn's efficient leave-one-out
    cross-validation (``RidgeCV``).

    Args:
        train_X, train_y: training features and scores.
        test_X: features to predict.
        alphas: candidate regularisation strengths.

    Shapes:
        train_X: (N, D); train_y: (N,); test_X: (M, D)
        returns: (M,) predicted scores, in the units of ``train_y``
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_X = np.asarray(train_X, dtype=np.float64)
    test_X = np.asarray(test_X, dtype=np.float64)
    train_y = np.asarray(train_y, dtype=np.float64).reshape(-1)
    if train_X.ndim != 2 or test_X.ndim != 2 or train_X.shape[1] != test_X.shape[1]:
        raise ValueError(
            f"features must be 2-D with the same width, got {train_X.shape} and {test_X.shape}")
    if train_X.shape[0] != train_y.shape[0]:
        raise ValueError(f"{train_X.shape[0]} training rows but {train_y.shape[0]} scores")
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=tuple(float(a) for a in alphas)))
    model.fit(train_X, train_y)
    return model.predict(test_X)


def evaluate_baseline(dataset, split: str = "test", progress: bool = True) -> dict:
    """Fit :func:`ridge_baseline` on the train split of a dataset and score ``split``.

    One ridge model for all categories, trained on the train and val recordings when ``split``
    is test (the ridge chooses its own strength by cross-validation, so it needs no val split;
    KEPT's statistics branch is refitted on the same recordings), on train alone when ``split``
    is val; evaluated with the same metrics code as KEPT.

    Args:
        dataset: a :class:`kept.data.folder.KeypointDataset`.
        split: ``val`` or ``test``.

    Returns:
        The ``metrics.json`` layout of :func:`kept.metrics.evaluate_scores`, with ``"split"``.
    """
    from tqdm.auto import tqdm

    from kept.metrics import evaluate_scores

    train_ids = dataset.ids("train") + (dataset.ids("val") if split == "test" else [])
    eval_ids = dataset.ids(split)
    if not train_ids or not eval_ids:
        raise ValueError(f"{dataset.root}: the baseline needs train and {split} recordings")

    def features(ids: list[str]) -> np.ndarray:
        return np.stack([handcrafted_features(dataset.keypoints(i), dataset.skeleton, dataset.fps,
                                              dataset.up_axis)
                         for i in tqdm(ids, desc="features", disable=not progress, leave=False)])

    y = np.array([dataset.recordings[i].score for i in train_ids])
    pred = ridge_baseline(features(train_ids), y, features(eval_ids))
    metrics = evaluate_scores({i: dataset.recordings[i].category for i in eval_ids},
                              {i: dataset.recordings[i].score for i in eval_ids},
                              dict(zip(eval_ids, pred.tolist())),
                              [(p.id_a, p.id_b) for p in dataset.pairs_in(split)], dataset.score_range)
    metrics["split"] = split
    return metrics


def evaluate_baselines(dataset, split: str = "test", depth: int = 4, progress: bool = True) -> dict:
    """All score baselines of the module docstring on one split, fitted as
    :func:`evaluate_baseline` (train + val for the test split).

    Returns:
        name -> the ``metrics.json`` layout of :func:`kept.metrics.evaluate_scores`, for
        every name of :data:`BASELINES` (``ceiling`` only with ``faults.json``).
    """
    import json
    from pathlib import Path

    from tqdm.auto import tqdm

    from kept.metrics import evaluate_scores

    train_ids = dataset.ids("train") + (dataset.ids("val") if split == "test" else [])
    eval_ids = dataset.ids(split)
    if not train_ids or not eval_ids:
        raise ValueError(f"{dataset.root}: the baselines need train and {split} recordings")
    rec = dataset.recordings
    y = np.array([rec[i].score for i in train_ids])
    cat_tr, cat_ev = [rec[i].category for i in train_ids], [rec[i].category for i in eval_ids]

    def evaluate(pred: np.ndarray) -> dict:
        m = evaluate_scores({i: rec[i].category for i in eval_ids}, {i: rec[i].score for i in eval_ids},
                            dict(zip(eval_ids, pred.tolist())),
                            [(p.id_a, p.id_b) for p in dataset.pairs_in(split)], dataset.score_range)
        m["split"] = split
        return m

    whole = {i: handcrafted_features(dataset.keypoints(i), dataset.skeleton, dataset.fps, dataset.up_axis)
             for i in tqdm(train_ids + eval_ids, desc="features", disable=not progress, leave=False)}
    out = {"ridge": evaluate(ridge_baseline(np.stack([whole[i] for i in train_ids]), y,  # evaluate_baseline's
                                            np.stack([whole[i] for i in eval_ids])))}
    seg = {i: segment_features(dataset.keypoints(i), dataset.skeleton, dataset.fps, dataset.up_axis, depth)
           for i in tqdm(train_ids + eval_ids, desc="segment features", disable=not progress, leave=False)}
    out["segment_ridge"] = evaluate(per_category_ridge(np.stack([seg[i] for i in train_ids]), y, cat_tr,
                                                       np.stack([seg[i] for i in eval_ids]), cat_ev))
    both = {i: np.concatenate([seg[i], whole[i]]) for i in seg}
    out["segment_gbm"] = evaluate(gbm_baseline(np.stack([both[i] for i in train_ids]), y, cat_tr,
                                               np.stack([both[i] for i in eval_ids]), cat_ev))
    out["stats_branch"] = evaluate(_stats_branch_alone(dataset, train_ids, eval_ids, depth, progress))
    faults_file = Path(dataset.root) / "faults.json"
    if faults_file.is_file():
        faults = json.loads(faults_file.read_text())
        kinds = sorted({f["kind"] for i in train_ids + eval_ids for f in faults.get(i, [])})
        pos = {k: j for j, k in enumerate(kinds)}

        def fault_vector(rid: str) -> np.ndarray:
            v = np.zeros(len(kinds))
            for f in faults.get(rid, []):
                v[pos[f["kind"]]] += float(f.get("magnitude", 1.0))
            return v

        out["ceiling"] = evaluate(per_category_ridge(
            np.stack([fault_vector(i) for i in train_ids]), y, cat_tr,
            np.stack([fault_vector(i) for i in eval_ids]), cat_ev, alphas=(1e-3, 1e-2, 0.1, 1.0)))
    return out


def _stats_branch_alone(dataset, train_ids: list[str], eval_ids: list[str], depth: int,
                        progress: bool) -> np.ndarray:
    """Predictions of KEPT's statistics branch fitted on its own (no network): the classical
    model inside KEPT, its variant chosen by cross-validation on ``train_ids``
    (:meth:`kept.model.stats_branch.StatsBranch.fit`). Shapes: returns (len(eval_ids),)"""
    import torch
    from tqdm.auto import tqdm

    from kept.features import (ALIGN_SAMPLES, BLOCK_STATS, alignment_channels, prepare_keypoints, recording_features,
                               stack_features)
    from kept.model.alignment_stats import AlignedStatistics
    from kept.model.kept import _channel_joints
    from kept.model.stats_branch import StatsBranch

    sk, rec = dataset.skeleton, dataset.recordings
    feats = stack_features([recording_features(prepare_keypoints(dataset.keypoints(i), sk, dataset.up_axis), sk,
                                               dataset.fps, depth=depth, up_axis=dataset.up_axis)
                            for i in tqdm(train_ids + eval_ids, desc="branch features", disable=not progress,
                                          leave=False)])
    cats = sorted({rec[i].category for i in train_ids})
    branch = StatsBranch(cats, depth, len(sk.node_types), len(BLOCK_STATS) * sk.max_joints_per_node,
                         feats.whole_stats.shape[1],
                         aligned=AlignedStatistics(cats, ALIGN_SAMPLES, alignment_channels(sk), depth),
                         channel_joints=_channel_joints(sk))
    category = branch.index_of([rec[i].category for i in train_ids + eval_ids])
    n = len(train_ids)
    y = torch.as_tensor(dataset.normalize_score(np.array([rec[i].score for i in train_ids])), dtype=torch.float32)
    branch.fit(feats.block_stats[:n], y, category[:n], feats.whole_stats[:n], groups=[rec[i].subject for i in train_ids],
               curves=feats.curves[:n], duration=feats.duration[:n])
    score, _ = branch(feats.block_stats[n:], category[n:], feats.whole_stats[n:], feats.curves[n:], feats.duration[n:])
    return dataset.denormalize_score(score.numpy().astype(np.float64))


def retrieval_descriptions(dataset, split: str = "test", progress: bool = True) -> dict[tuple[str, str], str]:
    """The text baseline: each pair gets the description of the most similar training pair.

    A pair is the concatenation [f_a; f_b] of its two recordings' :func:`handcrafted_features`
    (standardised with the training recordings' mean and spread; order kept, since descriptions
    speak of Player 1 and Player 2); the nearest described training pair in Euclidean distance
    lends its description.

    Returns:
        (id_a, id_b) -> description, for every pair of ``split``.
    """
    from tqdm.auto import tqdm

    train = [p for p in dataset.pairs_in("train") if (p.description or "").strip()]
    pairs = dataset.pairs_in(split)
    if not train:
        raise ValueError(f"{dataset.root}: no training pair has a description to retrieve")
    ids = sorted({i for p in train + pairs for i in (p.id_a, p.id_b)})
    feats = {i: handcrafted_features(dataset.keypoints(i), dataset.skeleton, dataset.fps, dataset.up_axis)
             for i in tqdm(ids, desc="features", disable=not progress, leave=False)}
    train_ids = dataset.ids("train")
    ref = np.stack([feats[i] for i in train_ids if i in feats])
    mean, std = ref.mean(0), ref.std(0) + 1e-8
    vec = lambda p: np.concatenate([(feats[p.id_a] - mean) / std, (feats[p.id_b] - mean) / std])  # noqa: E731
    bank = np.stack([vec(p) for p in train])  # (T, 2D)
    out = {}
    for p in pairs:
        nearest = int(np.argmin(((bank - vec(p)) ** 2).sum(1)))
        out[(p.id_a, p.id_b)] = train[nearest].description
    return out


def evaluate_retrieval_text(dataset, split: str = "test", progress: bool = True) -> dict:
    """Captioning metrics of :func:`retrieval_descriptions` against the split's references.

    Returns:
        ``{"text": {metric: value}, "per_category": {cat: {metric: value}}}``
    """
    from kept.text_metrics import evaluate_text

    described = [p for p in dataset.pairs_in(split) if (p.description or "").strip()]
    if not described:
        raise ValueError(f"{dataset.root}: no {split} pair has a reference description")
    from kept.explain.grounding import grounding_metrics, known_fault_nodes

    hyps = retrieval_descriptions(dataset, split, progress)
    key = lambda p: f"{p.id_a}|{p.id_b}"  # noqa: E731
    refs = {key(p): p.description for p in described}
    gen = {key(p): hyps[(p.id_a, p.id_b)] for p in described}
    out = evaluate_text(refs, gen, {key(p): dataset.recordings[p.id_a].category for p in described})
    out["text"].update(grounding_metrics(refs, gen, None, known_fault_nodes(dataset, described)))
    return out
