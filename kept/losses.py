"""Loss terms of docs/method.md sections 4-6 that are not part of a module.

Shapes glossary: R recordings (or pairs), T paths.
"""

from __future__ import annotations

import torch

__all__ = ["kl_divergence", "path_kl", "masked_mean"]


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KL(p || q) per row.

    Shapes:
        p, q: (R, T) distributions (rows sum to 1)
        returns: (R,)
    """
    return (p * (torch.log(p + eps) - torch.log(q + eps))).sum(dim=-1)


def path_kl(p1: torch.Tensor, p2: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
    """L_KL between the path distributions of the two recordings of each pair, averaged.

    *Decision* (docs/method.md section 4): symmetric by default, 0.5 (KL(p1||p2) + KL(p2||p1)),
    because the order inside a pair carries no meaning; ``symmetric=False`` is the paper's
    KL(p1 || p2).

    Shapes:
        p1, p2: (R, T)
        returns: () scalar
    """
    if not symmetric:
        return kl_divergence(p1, p2).mean()
    return 0.5 * (kl_divergence(p1, p2) + kl_divergence(p2, p1)).mean()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true; 0 (with gradient graph intact) if none is.

    Shapes:
        values, mask: (R,)
        returns: () scalar
    """
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)
