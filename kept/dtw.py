"""Dynamic time warping (DTW): the least-cost monotone matching of two sequences in time.

Two forms share one band definition (:func:`band_limits`): :func:`dtw` matches one pair and
returns its path (the physical report of :mod:`kept.explain.physical`); :func:`dtw_warp` warps a
batch of sequences onto one template at once (the phase-aligned statistics of
:mod:`kept.model.alignment_stats`). Steps are (1, 0), (0, 1) and (1, 1), the cost of a path is the
sum of its cells' costs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["band_limits", "dtw", "dtw_warp"]


def band_limits(n: int, m: int, band: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The allowed columns [lo_i, hi_i] of each row of an (n, m) cost matrix under a Sakoe-Chiba
    band of ``band`` times the longer length around the diagonal (None: every column).

    Shapes: returns lo (n,), hi (n,) int

    Raises:
        ValueError: a band outside (0, 1].
    """
    if band is None:
        return np.zeros(n, dtype=int), np.full(n, m - 1)
    if not 0 < band <= 1:
        raise ValueError(f"dtw band must be in (0, 1], got {band}")
    width = max(band * max(n, m), 1.0)
    centre = np.arange(n) * (m - 1) / max(n - 1, 1)
    lo = np.clip(np.floor(centre - width), 0, m - 1).astype(int)
    hi = np.clip(np.ceil(centre + width), 0, m - 1).astype(int)
    return lo, hi


def dtw(cost: np.ndarray, band: float | None = None) -> tuple[np.ndarray, float]:
    """Dynamic time warping of a cost matrix: the monotone path from (0, 0) to (n-1, m-1) with the
    least summed cost, steps (1, 0), (0, 1) and (1, 1).

    Each row is filled in one vectorised pass: with ``m_j = c_ij + min(D_{i-1,j-1}, D_{i-1,j})``
    and ``C`` the running sum of row i of the costs, ``D_ij = C_j + min_{l <= j}(m_l - C_l)``.

    Args:
        cost: pairwise costs, >= 0.
        band: Sakoe-Chiba band as a fraction of the longer length (cells farther from the
            diagonal are forbidden), or None for no band.

    Shapes:
        cost: (n, m)
        returns: path (L, 2) int of (i, j) pairs, and the path's total cost

    Raises:
        ValueError: an empty or non-finite cost matrix, or a band outside (0, 1].
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"dtw needs a non-empty (n, m) cost matrix, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("dtw: the cost matrix has NaN or infinite entries")
    n, m = cost.shape
    lo, hi = band_limits(n, m, band)
    D = np.full((n, m), np.inf)
    D[0, : hi[0] + 1] = np.cumsum(cost[0, : hi[0] + 1])
    for i in range(1, n):
        a, b = lo[i], hi[i] + 1
        prev = D[i - 1]
        diag = np.concatenate([[np.inf], prev[:-1]])[a:b]
        mj = cost[i, a:b] + np.minimum(diag, prev[a:b])
        C = np.cumsum(cost[i, a:b])
        D[i, a:b] = C + np.minimum.accumulate(mj - C)
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i or j:
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        i, j = min((s for s in steps if s[0] >= 0 and s[1] >= 0), key=lambda s: D[s])
        path.append((i, j))
    return np.array(path[::-1]), float(D[-1, -1])


def dtw_warp(queries: np.ndarray, template: np.ndarray, band: float | None = 0.2
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp each query onto the template's time axis by DTW (squared Euclidean cost), batched.

    The recursion runs over anti-diagonals i + j = d, which depend only on the two before, so
    one vectorised step serves every cell of a diagonal and every query. Each template step then
    gets the mean of the query samples matched to it, and their mean time (0..1).

    Shapes:
        queries: (R, M, Ch); template: (N, Ch)
        returns: ``(warped (R, N, Ch), timing (R, N), cost (R,))``, cost the path's total (as
            :func:`dtw` on the same costs returns) divided by M + N
    """
    R, M, _ = queries.shape
    N = template.shape[0]
    cost = ((queries[:, :, None, :] - template[None, None]) ** 2).sum(-1)  # (R, M, N)
    lo, hi = band_limits(M, N, band)
    acc = np.full((R, M + 1, N + 1), np.inf)  # acc[:, i, j]: best path cost to cell (i-1, j-1)
    acc[:, 0, 0] = 0.0
    for d in range(2, M + N + 1):
        i = np.arange(max(1, d - N), min(M, d - 1) + 1)
        j = d - i
        keep = (j - 1 >= lo[i - 1]) & (j - 1 <= hi[i - 1])
        i, j = i[keep], j[keep]
        acc[:, i, j] = cost[:, i - 1, j - 1] + np.minimum(np.minimum(acc[:, i - 1, j - 1], acc[:, i - 1, j]),
                                                          acc[:, i, j - 1])
    warped = np.zeros((R, N, queries.shape[2]))
    timing = np.zeros((R, N))
    count = np.zeros((R, N))
    rows = np.arange(R)
    i, j = np.full(R, M), np.full(R, N)
    active = np.ones(R, dtype=bool)
    while active.any():  # walk every path back from (M, N) to (1, 1) at once
        r = rows[active]
        warped[r, j[r] - 1] += queries[r, i[r] - 1]
        timing[r, j[r] - 1] += i[r] - 1
        count[r, j[r] - 1] += 1
        done = (i[r] == 1) & (j[r] == 1)
        steps = np.stack([acc[r, i[r] - 1, j[r] - 1], acc[r, i[r] - 1, j[r]], acc[r, i[r], j[r] - 1]], axis=1)
        move = np.argmin(steps, axis=1)
        i[r] -= (move != 2) & ~done
        j[r] -= (move != 1) & ~done
        active[r[done]] = False
    return warped / count[..., None], timing / count / max(M - 1, 1), acc[:, M, N] / (M + N)
