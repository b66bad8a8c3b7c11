r"""The implicit knowledge graph (IKG) and the two graph convolutions over it.

docs/method.md section 6, KEPT paper equation (5):

.. math::
    P_{ij} = \frac{\exp(-\phi(x_i, x_j))}{\sum_{(i', j') \in \mathcal{C}} \exp(-\phi(x_{i'}, x_{j'}))},
    \qquad H = \sigma\big(A_{IKG}\ \sigma(A_G\, f'_K\, W)\, W_{IKG}\big)

over the candidate pairs :math:`\mathcal{C}` (all unordered joint pairs that are neither bones
nor self-pairs). *Decisions*: phi is an MLP on the concatenated pair, symmetrised as
(phi(x_i, x_j) + phi(x_j, x_i)) / 2; the threshold is relative to the uniform probability,
tau = c / |C|; kept edges carry weight P_ij / max P (in (0, 1]) so that phi receives a gradient,
and dropped edges carry weight 0, which for a GCN's degree normalisation is the same as leaving
them out. Both adjacencies get self-loops and symmetric normalisation (PyG ``GCNConv``).

Shapes glossary: G graphs (recordings x segments), P joints, C candidate pairs, D width.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import GCNConv

from kept.model.layers import MLP

__all__ = ["candidate_pairs", "ImplicitKnowledgeGraph", "KeypointGraphNet"]


def candidate_pairs(adjacency: np.ndarray) -> torch.Tensor:
    """Unordered joint pairs (i < j) that are not bones.

    Shapes:
        adjacency: (P, P) 0/1 bone adjacency
        returns: (C, 2) int64
    """
    P = adjacency.shape[0]
    i, j = np.triu_indices(P, k=1)
    keep = adjacency[i, j] == 0
    return torch.as_tensor(np.stack([i[keep], j[keep]], axis=1), dtype=torch.long)


class ImplicitKnowledgeGraph(nn.Module):
    """Edge weights of the implicit graph from the joint embeddings.

    Args:
        dim (int): D.
        candidates (Tensor): (C, 2) candidate pairs from :func:`candidate_pairs`.
        threshold (float): c in tau = c / C (default 1: keep the pairs likelier than uniform).

    Shapes:
        x: (G, P, D) joint embeddings f'_K
        output: (G, C) edge weights in [0, 1] (0 for dropped edges), and (G, C) probabilities P
    """

    def __init__(self, dim: int, candidates: torch.Tensor, threshold: float = 1.0):
        super().__init__()
        if candidates.numel() == 0:
            raise ValueError("the skeleton has no candidate implicit edges (every pair is a bone)")
        self.phi = MLP(2 * dim, 1, hidden=dim)
        self.threshold = threshold
        self.register_buffer("candidates", candidates, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xi, xj = x[:, self.candidates[:, 0]], x[:, self.candidates[:, 1]]  # (G, C, D)
        phi = 0.5 * (self.phi(torch.cat([xi, xj], -1)) + self.phi(torch.cat([xj, xi], -1))).squeeze(-1)
        prob = torch.softmax(-phi, dim=-1)  # (G, C)
        tau = self.threshold / prob.shape[-1]
        keep = prob >= tau
        weight = torch.where(keep, prob / prob.max(dim=-1, keepdim=True).values, torch.zeros_like(prob))
        return weight, prob


class KeypointGraphNet(nn.Module):
    """Two graph convolutions: over the skeleton (weight W), then over the IKG (weight W_IKG).

    Args:
        dim (int): D.
        bone_index (Tensor): (2, E) skeleton bones, both directions.
        candidates (Tensor): (C, 2) candidate implicit pairs.
        threshold (float): IKG threshold c.

    Shapes:
        x: (G, P, D) knowledge-enhanced keypoint embeddings f'_K
        output: (G, P, D) keypoint graph embedding H, and (G, C) IKG edge weights
    """

    def __init__(self, dim: int, bone_index: torch.Tensor, candidates: torch.Tensor, threshold: float = 1.0):
        super().__init__()
        self.ikg = ImplicitKnowledgeGraph(dim, candidates, threshold)
        self.conv_skeleton = GCNConv(dim, dim)  # W
        self.conv_ikg = GCNConv(dim, dim)  # W_IKG
        self.act = nn.GELU()
        self.register_buffer("bone_index", bone_index, persistent=False)
        ikg_index = torch.cat([candidates.T, candidates.T.flip(0)], dim=1)  # (2, 2C)
        self.register_buffer("ikg_index", ikg_index, persistent=False)

    @staticmethod
    def _batched(edge_index: torch.Tensor, graphs: int, nodes: int) -> torch.Tensor:
        """Repeat one graph's edges for ``graphs`` disjoint copies (PyG's batching). (2, G E)"""
        offset = torch.arange(graphs, device=edge_index.device) * nodes
        return (edge_index[:, None, :] + offset[None, :, None]).reshape(2, -1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        G, P, D = x.shape
        weight, _ = self.ikg(x)  # (G, C)
        flat = x.reshape(G * P, D)
        h = self.act(self.conv_skeleton(flat, self._batched(self.bone_index, G, P)))
        ikg_weight = torch.cat([weight, weight], dim=1).reshape(-1)  # both directions, (G 2C)
        h = self.act(self.conv_ikg(h, self._batched(self.ikg_index, G, P), ikg_weight))
        return h.reshape(G, P, D), weight
