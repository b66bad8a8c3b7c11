"""Small building blocks shared by the KEPT modules: an MLP mapper and multi-head cross attention.

Shapes glossary: R recordings in a batch, Q query tokens, M key/value tokens, D width.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "CrossAttention"]


class MLP(nn.Sequential):
    """The paper's "mapper function": Linear -> GELU -> Linear, applied to the last axis.

    Args:
        in_dim (int): input size.
        out_dim (int): output size.
        hidden (int, optional): hidden size (default: ``out_dim``).
        dropout (float): dropout after the activation (default 0).

    Shapes:
        input: (*, in_dim)
        output: (*, out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None, dropout: float = 0.0):
        hidden = hidden or out_dim
        super().__init__(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


class CrossAttention(nn.Module):
    r"""Multi-head cross attention (MHCA) with a residual connection and layer norm.

    .. math::
        \mathrm{MHCA}(q, kv) = \mathrm{LN}(q + \mathrm{MultiHead}(q, kv, kv))

    Each query token attends to the keys on its own, so the output of one query never depends
    on the other queries: the block assembly of the tree's path scores relies on this.

    Args:
        dim (int): D.
        heads (int): attention heads (``dim`` must be divisible by it).
        dropout (float): attention dropout (default 0).

    Shapes:
        query: (R, Q, D)
        kv: (R, M, D)
        key_padding_mask: (R, M) bool, True where a key is padding (optional)
        output: (R, Q, D)
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, query: torch.Tensor, kv: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        out, _ = self.attn(query, kv, kv, key_padding_mask=key_padding_mask, need_weights=False)
        return self.norm(query + out)
