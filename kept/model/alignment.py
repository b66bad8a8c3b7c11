r"""Expert knowledge alignment (training only), docs/method.md section 5.

.. math::
    f_{CM} = \mathrm{MHCA}(f_C, f'_M), \quad f_{VM} = \mathrm{MHCA}(f_V, f'_M), \quad
    \mathcal{L}_{semantic} = 1 - \cos(\overline{f_{CM}}, \overline{f_{VM}})

*Decision*: one MHCA serves both queries, so that the commentary and the video are read out of
the path tokens in the same space; the commentary embedding is projected to D by a linear layer.
At inference only f_VM exists (no commentary is needed).

Shapes glossary: R recordings, N keyframes, E sentence-embedding size, D width.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from kept.model.layers import CrossAttention

__all__ = ["ExpertAlignment"]


class ExpertAlignment(nn.Module):
    """Reads the reasoning-path tokens with the video (and, in training, the commentary) as query.

    Args:
        dim (int): D.
        heads (int): attention heads.
        commentary_dim (int): E, size of the sentence encoder's embeddings.
        dropout (float): default 0.

    Shapes:
        visual: (R, N, D) f_V
        path_tokens: (R, N, D) f'_M
        commentary: (R, E) sentence embeddings, or None
        output: f_VM (R, N, D), and the per-recording L_semantic (R,) or None
    """

    def __init__(self, dim: int, heads: int, commentary_dim: int, dropout: float = 0.0):
        super().__init__()
        self.mhca = CrossAttention(dim, heads, dropout)
        self.f_c = nn.Linear(commentary_dim, dim)

    def forward(
        self, visual: torch.Tensor, path_tokens: torch.Tensor, commentary: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        f_vm = self.mhca(visual, path_tokens)  # (R, N, D)
        if commentary is None:
            return f_vm, None
        f_cm = self.mhca(self.f_c(commentary).unsqueeze(1), path_tokens)  # (R, 1, D)
        semantic = 1.0 - F.cosine_similarity(f_cm.mean(1), f_vm.mean(1), dim=-1)  # (R,)
        return f_vm, semantic
