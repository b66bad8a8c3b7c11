r"""Search for the best reasoning path when the B^K paths are too many to enumerate.

docs/method.md section 4: "For depths where B^K is too large to enumerate, a beam search and a Monte
Carlo tree search (UCT, with the score net as the value) over the same tree give l*."

All strategies work on the block vectors of :class:`~kept.model.score_net.ScoreNet`:

.. math::
    z[k, j] = \sum_{n \in k} \tfrac{1}{N}\,\mathrm{MHCA}(F_M(f_M)[n, j], F_V(f_V)), \qquad
    \mathrm{logit}(l) = F_R\Big(\sum_k z[k, l_k]\Big)

(the blocks are already weighted by w_k = N_k / N). :func:`score_blocks` computes them once per
recording (attention runs over N x B tokens, never per path); a strategy then only runs F_R on the
candidates it visits. :func:`exhaustive` scores all B^K paths and is the reference.

*Decision* (partial paths): a prefix (l_1, ..., l_m) is scored by F_R applied to
``sum_{k<m} z[k, l_k] / sum_{k<m} w_k``, the length-weighted mean of the seen segments' attended
vectors, which is on the scale of a full path's pooled vector (a mean over all N keyframes). In
other words the unseen segments are assumed to look like the seen ones on average. For m = K the
denominator is 1 and the partial logit is the path logit.

Shapes glossary: R recordings, K levels (= segments), B node types, D width, L candidate paths,
m prefix length, k (top_k) paths reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kept.model.score_net import ScoreNet
from kept.model.tree import enumerate_paths, gather_paths

__all__ = [
    "SearchResult",
    "score_blocks",
    "path_logits",
    "partial_logits",
    "exhaustive",
    "beam_search",
    "mcts",
    "search",
    "STRATEGIES",
]

#: the values of ``model.search``
STRATEGIES = ("exhaustive", "beam", "mcts")


@dataclass
class SearchResult:
    """The outcome of a path search, per recording.

    Attributes:
        best: l*, node index per level of the selected path (equal to ``top_paths[:, 0]``).
        top_paths: the best k complete paths found, best first.
        top_logits: their logits (pre-sigmoid Q), sorted descending.
        evaluations: number of path or partial-path evaluations by F_R per recording (for MCTS:
            distinct full paths scored; the largest over recordings where they differ).

    Shapes:
        best: (R, K) int64
        top_paths: (R, k, K) int64
        top_logits: (R, k)
    """

    best: torch.Tensor
    top_paths: torch.Tensor
    top_logits: torch.Tensor
    evaluations: int


def score_blocks(score_net: ScoreNet, node_stats: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
    """The per-(segment, node) attended and pooled block vectors z, weighted by N_k / N.

    :meth:`ScoreNet.blocks` without the node tokens.

    Shapes:
        node_stats: (R, N, B, h)
        visual: (R, N, D)
        returns: (R, K, B, D)
    """
    return score_net.blocks(node_stats, visual)[0]


def _gather(blocks: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
    """blocks[r, k, prefixes[r, l, k]] for k < m. (R, K, B, D), (R, L, m) or (L, m) -> (R, L, m, D)"""
    R, K, B, D = blocks.shape
    prefixes = prefixes.to(device=blocks.device, dtype=torch.long)
    if prefixes.dim() == 2:
        prefixes = prefixes.unsqueeze(0).expand(R, -1, -1)
    m = prefixes.shape[-1]
    if not 1 <= m <= K:
        raise ValueError(f"prefix length must be in [1, K={K}], got {m}")
    r = torch.arange(R, device=blocks.device)[:, None, None]
    k = torch.arange(m, device=blocks.device)[None, None, :]
    return blocks[r, k, prefixes]


def path_logits(score_net: ScoreNet, blocks: torch.Tensor, paths: torch.Tensor) -> torch.Tensor:
    """Logits of the given full paths: F_R(sum_k blocks[k, l_k]).

    Equal to the entries of ``ScoreNet.forward``'s logits for those paths.

    Shapes:
        blocks: (R, K, B, D)
        paths: (R, L, K), or (L, K) shared by all recordings
        returns: (R, L)
    """
    K = blocks.shape[1]
    if paths.shape[-1] != K:
        raise ValueError(f"full paths need K={K} levels, got {paths.shape[-1]}")
    return score_net.f_r(_gather(blocks, paths).sum(dim=2)).squeeze(-1)


def partial_logits(score_net: ScoreNet, blocks: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
    """Heuristic logits of path prefixes (the first m levels), for pruning.

    F_R of the block sum over the seen segments divided by the seen segments' total pooling
    weight sum_{k<m} N_k / N, i.e. the mean attended vector over the seen keyframes, on the scale
    of a full path's pooled vector. For m = K this is exactly :func:`path_logits`.

    Shapes:
        blocks: (R, K, B, D)
        prefixes: (R, L, m), or (L, m) shared, 1 <= m <= K
        returns: (R, L)
    """
    summed = _gather(blocks, prefixes).sum(dim=2)  # (R, L, D)
    m = prefixes.shape[-1]
    if m < blocks.shape[1]:
        seen = score_net.pool[:m].sum().to(blocks.dtype)
        if seen > 0:  # segments without keyframes have zero blocks; nothing to rescale then
            summed = summed / seen
    return score_net.f_r(summed).squeeze(-1)


def _result(paths: torch.Tensor, logits: torch.Tensor, top_k: int, evaluations: int) -> SearchResult:
    """Top-k of candidate paths (R, L, K) with logits (R, L)."""
    k = min(top_k, logits.shape[-1])
    top, index = logits.topk(k, dim=-1)  # (R, k) sorted descending
    top_paths = gather_paths(paths, index)
    return SearchResult(best=top_paths[:, 0], top_paths=top_paths, top_logits=top, evaluations=evaluations)


def exhaustive(score_net: ScoreNet, blocks: torch.Tensor, top_k: int = 10) -> SearchResult:
    """Score all B^K paths (the reference; only for small trees).

    Shapes:
        blocks: (R, K, B, D)
        returns: :class:`SearchResult` with k = min(top_k, B^K), evaluations = B^K
    """
    R, K, B, _ = blocks.shape
    paths = enumerate_paths(B, K).to(blocks.device)  # (T, K)
    logits = path_logits(score_net, blocks, paths)  # (R, T)
    return _result(paths.unsqueeze(0).expand(R, -1, -1), logits, top_k, paths.shape[0])


def beam_search(score_net: ScoreNet, blocks: torch.Tensor, width: int = 8, top_k: int = 10) -> SearchResult:
    """Beam search over the tree, level by level.

    Every kept prefix is extended by all B nodes; below the last level the ``width`` best
    extensions by :func:`partial_logits` are kept; at the last level the candidates are scored
    by their full-path logits and the best ``top_k`` are returned. With ``width >= B^(K-1)`` every
    path is scored at the last level, so the result equals :func:`exhaustive`.

    Shapes:
        blocks: (R, K, B, D)
        returns: :class:`SearchResult`, k = min(top_k, candidates at the last level),
            evaluations = sum over levels of the candidates scored (same for every recording)
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    R, K, B, _ = blocks.shape
    device = blocks.device
    nodes = torch.arange(B, device=device)
    beams = torch.zeros(R, 1, 0, dtype=torch.long, device=device)  # (R, L, m): the empty prefix
    evaluations = 0
    for level in range(K):
        L = beams.shape[1]
        cand = torch.cat(
            [beams.unsqueeze(2).expand(-1, -1, B, -1), nodes.view(1, 1, B, 1).expand(R, L, -1, -1)], dim=-1
        ).reshape(R, L * B, level + 1)  # (R, L B, m + 1)
        evaluations += L * B
        if level == K - 1:
            return _result(cand, path_logits(score_net, blocks, cand), top_k, evaluations)
        scores = partial_logits(score_net, blocks, cand)  # (R, L B)
        keep = scores.topk(min(width, L * B), dim=-1).indices  # (R, width)
        beams = gather_paths(cand, keep)
    raise AssertionError("unreachable")


class _Node:
    """A node of the UCT tree: a prefix with its visit count, value sum and expanded children."""

    __slots__ = ("visits", "value", "children")

    def __init__(self) -> None:
        self.visits = 0
        self.value = 0.0
        self.children: dict[int, _Node] = {}


def _mcts_one(score_net: ScoreNet, blocks: torch.Tensor, simulations: int, c_uct: float,
              generator: torch.Generator) -> dict[tuple[int, ...], float]:
    """UCT on one recording's blocks (1, K, B, D). Returns the cache {full path: logit}."""
    _, K, B, _ = blocks.shape
    cache: dict[tuple[int, ...], float] = {}
    root = _Node()
    for _ in range(simulations):
        node, prefix, trail = root, [], [root]
        # selection: descend through fully expanded nodes by UCB1 on the mean value
        while len(prefix) < K and len(node.children) == B:
            log_n = math.log(node.visits)
            j, node = max(
                node.children.items(),
                key=lambda item: item[1].value / item[1].visits + c_uct * math.sqrt(log_n / item[1].visits),
            )
            prefix.append(j)
            trail.append(node)
        # expansion: add one untried child, chosen at random
        if len(prefix) < K:
            untried = [j for j in range(B) if j not in node.children]
            j = untried[int(torch.randint(len(untried), (1,), generator=generator))]
            node.children[j] = node = _Node()
            prefix.append(j)
            trail.append(node)
        # rollout: complete the path with uniformly random nodes
        rest = torch.randint(B, (K - len(prefix),), generator=generator).tolist()
        path = tuple(prefix + rest)
        if path not in cache:
            cache[path] = float(path_logits(score_net, blocks, torch.tensor([path], device=blocks.device)))
        value = 1.0 / (1.0 + math.exp(-cache[path]))  # sigmoid: Q(l) in [0, 1]
        # backup
        for visited in trail:
            visited.visits += 1
            visited.value += value
    return cache


def mcts(score_net: ScoreNet, blocks: torch.Tensor, simulations: int = 200, c_uct: float = 1.4,
         top_k: int = 10, seed: int = 0) -> SearchResult:
    """Monte Carlo tree search (UCT) with the score net as the value, per recording.

    Each simulation: *selection* from the root by UCB1 (mean value + c_uct sqrt(ln N / n)) while
    the node is fully expanded; *expansion* of one random untried child; *rollout* completing the
    path with uniformly random nodes (seeded :class:`torch.Generator`); *backup* of the value
    sigmoid(path logit) along the visited tree nodes. Every completed path's logit is cached, so a
    path is scored by F_R at most once; the best cached paths are returned.

    Shapes:
        blocks: (R, K, B, D)
        returns: :class:`SearchResult`, k = min(top_k, distinct paths scored in any recording),
            evaluations = distinct full paths scored (the maximum over recordings)
    """
    if simulations < 1:
        raise ValueError(f"need at least one simulation, got {simulations}")
    R, K, _, _ = blocks.shape
    generator = torch.Generator().manual_seed(seed)
    caches = []
    with torch.no_grad():
        for r in range(R):
            caches.append(_mcts_one(score_net, blocks[r : r + 1], simulations, c_uct, generator))
    k = min(top_k, min(len(c) for c in caches))
    top_paths, top_logits = [], []
    for cache in caches:
        ranked = sorted(cache.items(), key=lambda item: item[1], reverse=True)[:k]
        top_paths.append([p for p, _ in ranked])
        top_logits.append([v for _, v in ranked])
    top_paths = torch.tensor(top_paths, dtype=torch.long, device=blocks.device).reshape(R, k, K)
    top_logits = torch.tensor(top_logits, dtype=blocks.dtype, device=blocks.device).reshape(R, k)
    return SearchResult(best=top_paths[:, 0], top_paths=top_paths, top_logits=top_logits,
                        evaluations=max(len(c) for c in caches))


def search(score_net: ScoreNet, blocks: torch.Tensor, strategy: str, top_k: int = 10, beam_width: int = 8,
           simulations: int = 200, c_uct: float = 1.4, seed: int = 0) -> SearchResult:
    """Run one of :data:`STRATEGIES` by name (the ``model.search`` setting) with its settings.

    Shapes:
        blocks: (R, K, B, D)
        returns: :class:`SearchResult`
    """
    if strategy == "exhaustive":
        return exhaustive(score_net, blocks, top_k)
    if strategy == "beam":
        return beam_search(score_net, blocks, beam_width, top_k)
    if strategy == "mcts":
        return mcts(score_net, blocks, simulations, c_uct, top_k, seed)
    raise ValueError(f"unknown search strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
