r"""The statistics branch: the time-aware classical model inside KEPT, one contribution per block.

*Decision* (not in the paper; ``model.stats_branch``). On small AQA datasets a ridge regression
on hand-made joint statistics is a strong peer, and a network trained from scratch on the same
recordings does not reliably reach it. So KEPT carries that model as a branch and learns what it
misses:

.. math::
    s_{stats} = b_c + \sum_{k, j} c[k, j], \qquad
    c[k, j] = \beta_{c, k, j}^\top \frac{x[k, j] - \mu_{c, k, j}}{\sigma_{c, k, j}}

with x[k, j] the statistics of node type j in segment k (:func:`kept.features.block_statistics`)
and one ridge regression per category c (regularisation by leave-one-out cross-validation,
``RidgeCV``), plus a global one for recordings of unknown category. It is fitted in closed form
on the training recordings before the network trains (:meth:`StatsBranch.fit`), and frozen.

Because the model is additive over the (segment, node) blocks, c[k, j] says how much watching
node j in segment k moves the score away from the category's average performer: the *penalty*
-c[k, j] of a block is the evidence a referee would look at. KEPT's path values are taught to
rank paths by the penalty they watch (``loss.path``, :func:`path_targets`).

Shapes glossary: R recordings, K segments, B node types, g statistics per block, C categories.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["StatsBranch", "path_targets"]


class StatsBranch(nn.Module):
    """Per-category ridge regressions on block statistics, with exact per-block contributions.

    Args:
        categories (Sequence[str]): the C category names, in index order. Row C holds the global
            model, used for category index -1 (unknown).
        depth (int): K.
        num_nodes (int): B.
        stat_dim (int): g.

    Shapes:
        block_stats: (R, K, B, g)
        category: (R,) int64 index into ``categories``, -1 for unknown
        output: ``(score (R,), contributions (R, K, B))``, normalised score units
    """

    def __init__(self, categories: Sequence[str], depth: int, num_nodes: int, stat_dim: int):
        super().__init__()
        self.categories = tuple(categories)
        C, F = len(self.categories) + 1, depth * num_nodes * stat_dim
        self.shape = (depth, num_nodes, stat_dim)
        self.register_buffer("mean", torch.zeros(C, F))
        self.register_buffer("scale", torch.ones(C, F))
        self.register_buffer("coef", torch.zeros(C, F))
        self.register_buffer("intercept", torch.zeros(C))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def index_of(self, names: Sequence[str | None]) -> torch.Tensor:
        """Category indices of names (-1 for None or a name the branch was not fitted on). (R,)"""
        pos = {c: i for i, c in enumerate(self.categories)}
        return torch.as_tensor([pos.get(n, -1) if n is not None else -1 for n in names], dtype=torch.long)

    def forward(self, block_stats: torch.Tensor, category: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        R = block_stats.shape[0]
        row = torch.where(category < 0, torch.full_like(category, len(self.categories)), category)
        z = (block_stats.reshape(R, -1) - self.mean[row]) / self.scale[row]  # (R, F)
        contrib = (z * self.coef[row]).reshape(R, *self.shape).sum(-1)  # (R, K, B)
        return self.intercept[row] + contrib.sum(dim=(1, 2)), contrib

    @torch.no_grad()
    def fit(self, block_stats: torch.Tensor, target: torch.Tensor, category: torch.Tensor,
            alphas: Sequence[float] = tuple(np.logspace(-1, 4, 11)), folds: int = 5, seed: int = 0) -> torch.Tensor:
        """Fit every category's ridge (and the global one) and return out-of-fold predictions.

        The network trains on the residual of this branch; on the recordings the ridge was
        fitted on, that residual would be shrunk towards zero, so the returned predictions of
        the training recordings are out-of-fold (``folds``-fold cross-fitting per category),
        which is what the branch predicts for recordings it has not seen.

        Shapes:
            block_stats: (N, K, B, g); target: (N,) normalised scores; category: (N,) (no -1)
            returns: (N,) out-of-fold predictions
        """
        from sklearn.model_selection import KFold

        X = block_stats.reshape(len(block_stats), -1).double().numpy()
        y = target.double().numpy()
        cat = category.numpy()
        oof = np.zeros(len(y))
        groups = [(c, np.flatnonzero(cat == c)) for c in range(len(self.categories))]
        for c, idx in groups + [(len(self.categories), np.arange(len(y)))]:
            if len(idx) == 0:
                continue
            mean, scale, coef, b = _ridge(X[idx], y[idx], alphas)
            self.mean[c], self.scale[c] = torch.as_tensor(mean), torch.as_tensor(scale)
            self.coef[c], self.intercept[c] = torch.as_tensor(coef), float(b)
            if c == len(self.categories):
                continue
            n_folds = min(folds, len(idx))
            if n_folds < 2:
                oof[idx] = b
                continue
            for tr, te in KFold(n_folds, shuffle=True, random_state=seed).split(idx):
                m, s, w, b0 = _ridge(X[idx[tr]], y[idx[tr]], alphas)
                oof[idx[te]] = b0 + ((X[idx[te]] - m) / s) @ w
        self.fitted.fill_(True)
        return torch.as_tensor(oof, dtype=torch.float32)


def _ridge(X: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """RidgeCV on standardised features: (mean, scale, coef, intercept)."""
    from sklearn.linear_model import RidgeCV

    mean, scale = X.mean(0), X.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    if len(y) < 3 or np.ptp(y) == 0:
        return mean, scale, np.zeros(X.shape[1]), float(y.mean())
    model = RidgeCV(alphas=tuple(float(a) for a in alphas)).fit((X - mean) / scale, y)
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
