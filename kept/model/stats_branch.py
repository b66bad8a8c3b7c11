r"""The statistics branch: the classical AQA model inside KEPT, one contribution per block.

*Decision* (not in the paper; ``model.stats_branch``). On small AQA datasets a ridge regression
on hand-made joint statistics is a strong peer, and a network trained from scratch on the same
recordings does not reliably reach it. So KEPT carries that model as a branch and learns what it
misses:

.. math::
    s_{stats} = b_c + \sum_{k, j} c[k, j] + c_{whole}, \qquad
    c[k, j] = \beta_{c, k, j}^\top \frac{x[k, j] - \mu_{c, k, j}}{\sigma_{c, k, j}}

with x[k, j] the statistics of node type j in segment k (:func:`kept.features.block_statistics`),
c_whole the same linear term on whole-recording statistics (angles of the node joints and speeds
of *all* joints, :func:`kept.features.whole_statistics`), and ridge regressions (strength by
leave-one-out cross-validation, ``RidgeCV``), plus a global one for recordings of unknown
category. Which variant (per category or pooled, with or without the whole-recording statistics)
is chosen per dataset by cross-validation on the training recordings (:meth:`StatsBranch.fit`).
It is fitted in closed form before the network trains, and frozen.

Because the model is additive over the (segment, node) blocks, c[k, j] says how much what node j
does in segment k moves the score away from the category's average performer: the *penalty*
-c[k, j] of a block is the evidence a referee would look at. KEPT's path values are taught to
rank paths by the penalty they watch (``loss.path``, :func:`path_targets`).

Shapes glossary: R recordings, K segments, B node types, g statistics per block, W whole-recording
statistics, C categories.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from kept.features import BLOCK_STATS

__all__ = ["StatsBranch", "path_targets", "Z_CLIP"]

#: Standardised statistics are clipped to +- this many standard deviations, so that one glitch
#: (a joint flying off in a noisy frame) cannot swing a linear model's score; the branch's score
#: is clipped to the normalised score range [0, 1] as well.
Z_CLIP = 5.0

#: Cross-validation repeats (fold draws seeded 0, 1, ..., the same for every run seed, so the
#: variant is a function of the data alone) averaged when the branch chooses its variant; on
#: ~170 recordings one 5-fold draw moves the criterion by about 0.1, more than the variants differ.
CV_REPEATS = 10


class StatsBranch(nn.Module):
    """Ridge regressions on block (and whole-recording) statistics, with exact per-block contributions.

    Args:
        categories (Sequence[str]): the C category names, in index order. Row C holds the global
            model, used for category index -1 (unknown).
        depth (int): K.
        num_nodes (int): B.
        stat_dim (int): g.
        whole_dim (int): W, size of the whole-recording statistics (0: none).

    Shapes:
        block_stats: (R, K, B, g)
        whole_stats: (R, W) or None (only when W = 0)
        category: (R,) int64 index into ``categories``, -1 for unknown
        output: ``(score (R,), contributions (R, K, B))``, normalised score units; the
            whole-recording statistics add to the score but belong to no block
    """

    def __init__(self, categories: Sequence[str], depth: int, num_nodes: int, stat_dim: int, whole_dim: int = 0):
        super().__init__()
        self.categories = tuple(categories)
        C, F = len(self.categories) + 1, depth * num_nodes * stat_dim + whole_dim
        self.shape = (depth, num_nodes, stat_dim)
        self.whole_dim = whole_dim
        self.register_buffer("mean", torch.zeros(C, F))
        self.register_buffer("scale", torch.ones(C, F))
        self.register_buffer("coef", torch.zeros(C, F))
        self.register_buffer("intercept", torch.zeros(C))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        #: the candidate cross-validation chose: pooled over categories, with whole-recording statistics
        self.register_buffer("pooled", torch.zeros((), dtype=torch.bool))
        self.register_buffer("use_whole", torch.zeros((), dtype=torch.bool))

    @property
    def choice(self) -> tuple[bool, bool]:
        """(pooled, use_whole) of the fitted model."""
        return bool(self.pooled), bool(self.use_whole)

    def index_of(self, names: Sequence[str | None]) -> torch.Tensor:
        """Category indices of names (-1 for None or a name the branch was not fitted on). (R,)"""
        pos = {c: i for i, c in enumerate(self.categories)}
        return torch.as_tensor([pos.get(n, -1) if n is not None else -1 for n in names], dtype=torch.long)

    def _inputs(self, block_stats: torch.Tensor, whole_stats: torch.Tensor | None) -> torch.Tensor:
        x = block_stats.reshape(block_stats.shape[0], -1)
        if self.whole_dim:
            if whole_stats is None:
                raise ValueError("this statistics branch needs whole_stats (RecordingFeatures.whole_stats)")
            x = torch.cat([x, whole_stats], dim=1)
        return x

    def forward(self, block_stats: torch.Tensor, category: torch.Tensor,
                whole_stats: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        R = block_stats.shape[0]
        row = torch.where(category < 0, torch.full_like(category, len(self.categories)), category)
        z = (self._inputs(block_stats, whole_stats) - self.mean[row]) / self.scale[row]  # (R, F)
        terms = z.clamp(-Z_CLIP, Z_CLIP) * self.coef[row]
        nb = int(np.prod(self.shape))
        contrib = terms[:, :nb].reshape(R, *self.shape).sum(-1)  # (R, K, B)
        return (self.intercept[row] + terms.sum(-1)).clamp(0.0, 1.0), contrib

    def joint_contributions(self, block_stats: torch.Tensor, category: torch.Tensor,
                            whole_stats: torch.Tensor | None = None) -> torch.Tensor:
        """The block contributions of :meth:`forward` split over the J joints of each node type
        (the statistics of one joint are consecutive in a block, see
        :func:`kept.features.block_statistics`); summed over joints they give the block's.

        Shapes:
            block_stats: (R, K, B, g); category: (R,); returns: (R, K, B, J), J = g / len(BLOCK_STATS)
        """
        R = block_stats.shape[0]
        row = torch.where(category < 0, torch.full_like(category, len(self.categories)), category)
        z = (self._inputs(block_stats, whole_stats) - self.mean[row]) / self.scale[row]
        terms = z.clamp(-Z_CLIP, Z_CLIP) * self.coef[row]
        K, B, g = self.shape
        n = len(BLOCK_STATS)
        return terms[:, : K * B * g].reshape(R, K, B, g // n, n).sum(-1)

    @torch.no_grad()
    def fit(self, block_stats: torch.Tensor, target: torch.Tensor, category: torch.Tensor,
            whole_stats: torch.Tensor | None = None, groups: Sequence[str | None] | None = None,
            alphas: Sequence[float] = tuple(np.logspace(-1, 4, 11)), folds: int = 5, seed: int = 0,
            choice: tuple[bool, bool] | None = None) -> torch.Tensor:
        """Choose the model by cross-validation (unless ``choice`` = (pooled, use_whole) fixes
        it), fit it, and return out-of-fold predictions.

        *Decision*: the candidates are {one ridge per category, one ridge pooled over categories
        (per-category means of features and scores, shared coefficients)} x {block statistics,
        block and whole-recording statistics}; the one whose out-of-fold predictions have the
        best Spearman rho plus within-category pair accuracy wins, averaged over
        :data:`CV_REPEATS` draws of the folds (seeded 0, 1, ...; folds grouped by subject when
        ``groups`` names every recording's subject), so the choice is made on the given
        recordings alone, per dataset. With ``choice`` given, one draw seeded by ``seed`` gives
        the out-of-fold predictions.

        The network trains on the residual of this branch; on the recordings the ridge was
        fitted on, that residual would be shrunk towards zero, so the returned predictions are
        the chosen candidate's out-of-fold ones: what the branch predicts for unseen recordings.

        Shapes:
            block_stats: (N, K, B, g); target: (N,) normalised scores; category: (N,) (no -1);
            whole_stats: (N, W); returns: (N,) out-of-fold predictions
        """
        nb = int(np.prod(self.shape))
        X = self._inputs(block_stats, whole_stats).double().numpy()
        y, cat = target.double().numpy(), category.numpy()
        repeats = CV_REPEATS if choice is None else 1
        splits = [s for r in range(repeats) for s in _folds(len(y), folds, groups, r if choice is None else seed)]
        best = None
        options = [(p, w) for p in (False, True) for w in ((False, True) if self.whole_dim else (False,))]
        for pooled, use_whole in ([choice] if choice is not None else options):
            cols = np.arange(X.shape[1]) if use_whole else np.arange(nb)
            oof = np.zeros((repeats, len(y)))
            for n, (tr, te) in enumerate(splits):
                model = _fit(X[tr][:, cols], y[tr], cat[tr], len(self.categories), pooled, alphas)
                oof[n // (len(splits) // repeats), te] = _predict(model, X[te][:, cols], cat[te])
            quality = float(np.mean([_quality(o, y, cat) for o in oof]))
            if best is None or quality > best[0]:
                best = (quality, pooled, use_whole, cols, oof[0])
        _, pooled, use_whole, cols, oof = best
        model = _fit(X[:, cols], y, cat, len(self.categories), pooled, alphas)
        self.mean.zero_(), self.scale.fill_(1.0), self.coef.zero_()
        idx = torch.as_tensor(cols)
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        for c, (mean, scale, coef, b) in enumerate(model):
            self.mean[c, idx], self.scale[c, idx], self.coef[c, idx] = f32(mean), f32(scale), f32(coef)
            self.intercept[c] = float(b)
        self.pooled.fill_(pooled), self.use_whole.fill_(use_whole), self.fitted.fill_(True)
        return torch.as_tensor(oof, dtype=torch.float32)


def _folds(n: int, folds: int, groups: Sequence[str | None] | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation splits: by group (subject) when every recording has one and there are
    at least ``folds`` of them, else shuffled K-fold (seeded)."""
    from sklearn.model_selection import GroupKFold, KFold

    folds = max(2, min(folds, n))
    if groups is not None and all(g for g in groups) and len(set(groups)) >= folds:
        codes = {g: i for i, g in enumerate(sorted(set(groups)))}
        perm = np.random.default_rng(seed).permutation(len(codes))
        return list(GroupKFold(folds).split(np.zeros(n), groups=[perm[codes[g]] for g in groups]))
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def _fit(X: np.ndarray, y: np.ndarray, cat: np.ndarray, num_categories: int, pooled: bool,
         alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """(mean, scale, coef, intercept) per category row and the global row (last)."""
    glob = _ridge(X, y, alphas)
    if pooled:
        means = {c: (X[cat == c].mean(0), y[cat == c].mean()) for c in np.unique(cat)}
        Xc = X - np.stack([means[c][0] for c in cat])
        yc = y - np.array([means[c][1] for c in cat])
        _, scale, coef, b = _ridge(Xc, yc, alphas, center=False)
        rows = [(means[c][0], scale, coef, means[c][1] + b) if c in means else glob for c in range(num_categories)]
    else:
        rows = [_ridge(X[cat == c], y[cat == c], alphas) if (cat == c).sum() >= 3 else glob
                for c in range(num_categories)]
    return rows + [glob]


def _predict(model: list, X: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """What :meth:`StatsBranch.forward` computes, in numpy. Shapes: X (M, F), cat (M,) -> (M,)"""
    out = np.zeros(len(X))
    for c in np.unique(cat):
        mean, scale, coef, b = model[c]
        out[cat == c] = b + np.clip((X[cat == c] - mean) / scale, -Z_CLIP, Z_CLIP) @ coef
    return np.clip(out, 0.0, 1.0)


def _quality(pred: np.ndarray, y: np.ndarray, cat: np.ndarray) -> float:
    """Spearman rho plus within-category pair accuracy (reference ties skipped)."""
    from scipy.stats import spearmanr

    rho = spearmanr(y, pred)[0] if np.ptp(y) > 0 and np.ptp(pred) > 0 else 0.0
    right = total = 0
    for c in np.unique(cat):
        yy, pp = y[cat == c], pred[cat == c]
        dy, dp = yy[:, None] - yy[None], pp[:, None] - pp[None]
        mask = dy > 0
        right += int((dp[mask] > 0).sum())
        total += int(mask.sum())
    return float(np.nan_to_num(rho)) + (right / total if total else 0.5)


def _ridge(X: np.ndarray, y: np.ndarray, alphas: Sequence[float],
           center: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """RidgeCV on standardised features: (mean, scale, coef, intercept)."""
    from sklearn.linear_model import RidgeCV

    mean = X.mean(0) if center else np.zeros(X.shape[1])
    scale = X.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    if len(y) < 3 or np.ptp(y) == 0:
        return mean, scale, np.zeros(X.shape[1]), float(y.mean())
    model = RidgeCV(alphas=tuple(float(a) for a in alphas)).fit(np.clip((X - mean) / scale, -Z_CLIP, Z_CLIP), y)
    return mean, scale, model.coef_, float(model.intercept_)


def path_targets(contrib: torch.Tensor, paths: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The teacher distribution over candidate paths: softmax of the penalty each path watches.

    The penalty of path l is sum_k -c[k, l_k], standardised per recording (divided by the
    standard deviation of the block penalties), then divided by ``temperature``.

    Shapes:
        contrib: (R, K, B) block contributions from :class:`StatsBranch`
        paths: (R, L, K) candidate paths
        returns: (R, L), rows sum to 1
    """
    pen = -contrib
    pen = pen / pen.flatten(1).std(dim=1).clamp(min=1e-8)[:, None, None]
    R, L, K = paths.shape
    picked = pen.unsqueeze(1).expand(R, L, K, -1).gather(3, paths.unsqueeze(-1)).squeeze(-1)  # (R, L, K)
    return torch.softmax(picked.sum(-1) / temperature, dim=-1)
