"""Visual encoders E_V: one token per keyframe (docs/method.md section 2).

*Decision*: E_V is pluggable. Any ``nn.Module`` that maps the keyframe inputs to (R, N, D) works;
the model receives it ready-built. The default, :class:`KeypointEncoder`, encodes each keyframe's
keypoints (normalised position and speed of every joint), so no pixels are needed.
:class:`PrecomputedEncoder` projects per-keyframe features of any backbone (e.g. an image or
video model run offline) to D.

Shapes glossary: R recordings, N keyframes, P joints, C channels per joint, E feature size, D width.
"""

from __future__ import annotations

import torch
from torch import nn

from kept.model.layers import MLP

__all__ = ["KeypointEncoder", "PrecomputedEncoder"]


class KeypointEncoder(nn.Module):
    """Each keyframe's pose, flattened, through an MLP, plus a learned keyframe embedding.

    Args:
        num_joints (int): P.
        channels (int): C, values per joint (4: x, y, z, speed).
        num_keyframes (int): N.
        dim (int): D.
        dropout (float): default 0.

    Shapes:
        frames: (R, N, P, C)
        output: (R, N, D)
    """

    def __init__(self, num_joints: int, channels: int, num_keyframes: int, dim: int, dropout: float = 0.0):
        super().__init__()
        self.mlp = MLP(num_joints * channels, dim, hidden=2 * dim, dropout=dropout)
        self.position = nn.Parameter(torch.zeros(num_keyframes, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.position, std=0.02)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        R, N = frames.shape[:2]
        return self.mlp(frames.reshape(R, N, -1)) + self.position


class PrecomputedEncoder(nn.Module):
    """Per-keyframe features of a pretrained backbone, projected to D.

    Args:
        feature_dim (int): E.
        dim (int): D.

    Shapes:
        features: (R, N, E)
        output: (R, N, D)
    """

    def __init__(self, feature_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)
