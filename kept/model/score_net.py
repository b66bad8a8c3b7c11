r"""The cross-attention score net R_psi: the value Q(l) of every reasoning path.

docs/method.md section 4, equation (2) of the KEPT paper:

.. math::
    Q(l) = \sigma\big(F_R(\mathrm{pool}_N\,\mathrm{MHCA}(F_M(f_M(l)),\ F_V(f_V)))\big)

Fast path (block assembly). The cross attention treats every query token on its own and the
tokens of a path at keyframe n depend only on (n, l[segment(n)]). So with mean pooling

.. math::
    \mathrm{pool}_N(l) = \sum_k w_k\, z[k, l_k], \qquad
    z[k, j] = \mathrm{mean}_{n \in k}\ \mathrm{MHCA}(F_M(f_M)[n, j], F_V(f_V)),
    \quad w_k = N_k / N

so attention runs once over the N x B node tokens, not T = B^K times. The first layer of F_R is
linear, so it is applied to the K x B block vectors before assembly as well; only the activation
and the last layer of F_R run per path. :meth:`ScoreNet.naive_logits` is the per-path form that
the tests compare against.

Shapes glossary: R recordings, N keyframes, B node types, h node-statistic size, K segments,
T paths, D width.
"""

from __future__ import annotations

import torch
from torch import nn

from kept.features import segment_of_keyframe
from kept.model.layers import MLP, CrossAttention
from kept.model.tree import enumerate_paths, path_tokens

__all__ = ["ScoreNet"]


class ScoreNet(nn.Module):
    """Scores all B^K paths of the keypoint-guided tree.

    Args:
        stat_dim (int): h, size of a node's statistics per keyframe.
        num_nodes (int): B, node types (branches per level).
        depth (int): K, levels = temporal segments.
        num_keyframes (int): N.
        dim (int): D.
        heads (int): attention heads.
        dropout (float): dropout in the mappers and attention (default 0).

    Shapes:
        node_stats: (R, N, B, h)
        visual: (R, N, D) the visual tokens f_V
        node_tokens (returned): (R, N, B, D) F_M(f_M) plus keyframe position embeddings
        logits (returned): (R, T) pre-sigmoid Q of every path, in :attr:`paths` order
    """

    def __init__(self, stat_dim: int, num_nodes: int, depth: int, num_keyframes: int, dim: int,
                 heads: int, dropout: float = 0.0):
        super().__init__()
        self.f_m = MLP(stat_dim, dim, dropout=dropout)  # F_M
        self.f_v = MLP(dim, dim, dropout=dropout)  # F_V
        self.position = nn.Parameter(torch.zeros(num_keyframes, dim))
        self.mhca = CrossAttention(dim, heads, dropout)
        self.f_r = MLP(dim, 1, hidden=dim, dropout=dropout)  # F_R
        self.num_nodes, self.depth = num_nodes, depth
        segment = torch.as_tensor(segment_of_keyframe(num_keyframes, depth))
        self.register_buffer("segment", segment, persistent=False)  # (N,)
        # (K, N) averaging weights: row k is 1/N at the keyframes of segment k
        pool = torch.nn.functional.one_hot(segment, depth).T.float() / num_keyframes
        self.register_buffer("pool", pool, persistent=False)
        self.reset_parameters()

    def _lazy_buffer(self, name: str, build) -> torch.Tensor:
        """A non-persistent buffer built on first use (on the module's device), so that a model
        that only ever searches (``model.search`` beam or mcts) never holds B^K-sized tensors."""
        if name not in self._buffers:
            self.register_buffer(name, build().to(self.pool.device), persistent=False)
        return self._buffers[name]

    @property
    def paths(self) -> torch.Tensor:
        """All T = B^K paths, node index per level, lexicographic. Built on first use. (T, K)"""
        return self._lazy_buffer("_paths", lambda: enumerate_paths(self.num_nodes, self.depth))

    @property
    def assign(self) -> torch.Tensor:
        """(T, K B) 0/1 assignment: path t takes block (k, paths[t, k]) at every level k. Assembly
        as a matmul is exact and its backward is a matmul too (indexing's backward is a scatter)."""
        return self._lazy_buffer(
            "_assign",
            lambda: torch.nn.functional.one_hot(self.paths, self.num_nodes).float().reshape(len(self.paths), -1),
        )

    def reset_parameters(self) -> None:
        nn.init.normal_(self.position, std=0.02)

    def node_tokens(self, node_stats: torch.Tensor) -> torch.Tensor:
        """F_M(f_M) of every (keyframe, node) plus a keyframe position embedding. (R, N, B, D)"""
        return self.f_m(node_stats) + self.position[None, :, None, :]

    def visual_kv(self, visual: torch.Tensor) -> torch.Tensor:
        """F_V(f_V), the keys and values of the score net's attention. (R, N, D)"""
        return self.f_v(visual)

    def blocks(self, node_stats: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attended block vectors z[k, j], weighted by N_k / N, and the node tokens.

        Attention runs once over the N x B node tokens. A path's pooled vector is the sum of its
        K blocks (see the module docstring); :mod:`kept.model.search` works on these.

        Shapes:
            node_stats: (R, N, B, h)
            visual: (R, N, D)
            returns: ``(blocks (R, K, B, D), node_tokens (R, N, B, D))``
        """
        tokens = self.node_tokens(node_stats)
        R, N, B, D = tokens.shape
        attended = self.mhca(tokens.reshape(R, N * B, D), self.visual_kv(visual))  # (R, N B, D)
        return torch.einsum("kn,rnbd->rkbd", self.pool, attended.reshape(R, N, B, D)), tokens

    def forward(self, node_stats: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of all T paths by block assembly. Returns ``(logits (R, T), node_tokens (R, N, B, D))``."""
        blocks, tokens = self.blocks(node_stats, visual)
        return self.assemble(blocks), tokens

    def assemble(self, blocks: torch.Tensor) -> torch.Tensor:
        """Logits of all T paths from the K x B block vectors (already weighted by N_k / N).

        Shapes:
            blocks: (R, K, B, D)
            returns: (R, T), in :attr:`paths` order
        """
        first, act, drop, last = self.f_r
        R, K, B, D = blocks.shape
        pre = blocks.reshape(R, K * B, D) @ first.weight.T  # F_R's first layer, without bias
        hidden = self.assign @ pre + first.bias  # (R, T, D) = sum_k pre[k, l_k] + b
        return last(drop(act(hidden))).squeeze(-1)

    def naive_logits(self, node_stats: torch.Tensor, visual: torch.Tensor,
                     paths: torch.Tensor | None = None) -> torch.Tensor:
        """Reference form: attention run once per path on its N tokens. Slow; for tests.

        Shapes:
            paths: (L, K) the paths to score (default: all T, :attr:`paths` order)
            returns: (R, L)
        """
        paths = self.paths if paths is None else paths
        tokens = self.node_tokens(node_stats)
        kv = self.visual_kv(visual)
        out = []
        for t in range(paths.shape[0]):
            query = path_tokens(tokens, paths[t : t + 1], self.segment)[:, 0]  # (R, N, D)
            pooled = self.mhca(query, kv).mean(dim=1)  # (R, D)
            out.append(self.f_r(pooled).squeeze(-1))
        return torch.stack(out, dim=-1)
