"""The keypoint-guided tree: paths, their tokens, the path distribution and path selection.

docs/method.md section 4. Depth level k of the tree is the k-th of K consecutive temporal segments;
a root-to-leaf path l = (j_1, ..., j_K) names the node type watched in each segment, so there are
T = B^K paths. Shapes glossary: R recordings, N keyframes, B node types, K segments, T paths,
D width, k (top_k) paths in the training mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "enumerate_paths",
    "path_tokens",
    "mixture_tokens",
    "PathSelection",
    "select_paths",
    "path_distribution",
    "gather_paths",
]


def enumerate_paths(num_nodes: int, depth: int) -> torch.Tensor:
    """All root-to-leaf paths of a tree of depth K over B node types, in lexicographic order.

    Path t has node ``(t // B^(K-1-k)) % B`` at level k, so path 0 is (0, ..., 0).

    Shapes:
        returns: (T, K) int64, T = B^K
    """
    if num_nodes < 1 or depth < 1:
        raise ValueError(f"need at least one node type and one level, got B={num_nodes}, K={depth}")
    grids = torch.meshgrid(*[torch.arange(num_nodes)] * depth, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=-1)


def path_tokens(node_tokens: torch.Tensor, paths: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
    """The reasoning-path tokens f'_M(l): keyframe n carries the token of node l[segment(n)].

    Args:
        node_tokens: F_M of each node's statistics per keyframe.
        paths: node index per level, per recording (or shared, without the R axis).
        segment: segment of each keyframe.

    Shapes:
        node_tokens: (R, N, B, D)
        paths: (R, L, K) or (L, K), L paths
        segment: (N,) int64
        returns: (R, L, N, D)
    """
    R, N, B, D = node_tokens.shape
    if paths.dim() == 2:
        paths = paths.unsqueeze(0).expand(R, -1, -1)
    node_at = paths[:, :, segment]  # (R, L, N): node watched at each keyframe
    src = node_tokens.unsqueeze(1).expand(-1, node_at.shape[1], -1, -1, -1)  # (R, L, N, B, D)
    idx = node_at[..., None, None].expand(-1, -1, -1, 1, D)  # (R, L, N, 1, D)
    return src.gather(3, idx).squeeze(3)


def mixture_tokens(node_tokens: torch.Tensor, paths: torch.Tensor, weight: torch.Tensor,
                   segment: torch.Tensor) -> torch.Tensor:
    """The weighted mixture sum_i w_i f'_M(l_i) of several paths' tokens, without building them.

    Keyframe n of path l carries node l[segment(n)], so the mixture at keyframe n is
    sum_j m[segment(n), j] node_tokens[n, j] with m[k, j] the total weight of the chosen paths
    that watch node j in segment k. Equal to weighting :func:`path_tokens` (tested), at the cost
    of one path's tokens instead of L.

    Shapes:
        node_tokens: (R, N, B, D)
        paths: (R, L, K) node per level of each chosen path
        weight: (R, L) mixture weights
        segment: (N,) int64
        returns: (R, N, D)
    """
    B = node_tokens.shape[2]
    onehot = torch.nn.functional.one_hot(paths, B).to(weight.dtype)  # (R, L, K, B)
    marginal = torch.einsum("rl,rlkb->rkb", weight, onehot)  # (R, K, B)
    per_keyframe = marginal[:, segment]  # (R, N, B)
    return torch.einsum("rnb,rnbd->rnd", per_keyframe, node_tokens)


def gather_paths(paths: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The paths at ``index`` of each recording's candidate list.

    Shapes:
        paths: (R, L, K) candidate paths
        index: (R, k) positions in L
        returns: (R, k, K)
    """
    return paths.gather(1, index[..., None].expand(-1, -1, paths.shape[-1]))


def path_distribution(logits: torch.Tensor) -> torch.Tensor:
    """p_r(l) = Q(l) / sum_l Q(l) with Q = sigmoid(logits).

    Shapes:
        logits: (R, T)
        returns: (R, T), rows sum to 1
    """
    q = torch.sigmoid(logits)
    return q / q.sum(dim=-1, keepdim=True)


@dataclass
class PathSelection:
    """The paths chosen for each recording and their mixture weights.

    Shapes:
        index: (R, k) path indices into the enumerated paths, best first
        weight: (R, k) mixture weights summing to 1 (one-hot at inference)
    """

    index: torch.Tensor
    weight: torch.Tensor

    @property
    def best(self) -> torch.Tensor:
        """l*, the argmax path index of each recording. Shapes: (R,)"""
        return self.index[:, 0]


def select_paths(logits: torch.Tensor, top_k: int, temperature: float = 1.0, training: bool = True) -> PathSelection:
    """Choose paths: a softmax-weighted top-k mixture while training, the argmax l* otherwise.

    *Decision* (docs/method.md section 4): the mixture weights are ``softmax(logit / temperature)``
    over the k best path logits, so the score net receives gradient from every loss downstream
    of the path tokens; ``top_k=1`` is the hard argmax, which gives the score net no gradient
    through the tokens.

    Shapes:
        logits: (R, T)
        returns: :class:`PathSelection` with k = min(top_k, T) while training, 1 otherwise
    """
    k = min(top_k, logits.shape[-1]) if training else 1
    top, index = logits.topk(k, dim=-1)  # (R, k), sorted best first
    weight = torch.softmax(top / temperature, dim=-1)
    return PathSelection(index=index, weight=weight)
