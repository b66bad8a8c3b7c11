r"""Phase-aligned statistics: each recording warped onto its category's template by dynamic time warping.

*Decision* (not in the paper; ``model.stats_aligned``). People perform the phases of an action at
their own tempo, so equal-time segments compare a jump in one recording with the landing of
another. The classic remedy of the rehabilitation and skill-assessment literature is to warp a
recording onto a reference performance by dynamic time warping (DTW) and to measure the
deviations from the reference at matched moments. Here:

1. Every recording is summarised by a few kinematic curves (:func:`kept.features.alignment_curves`:
   the node joints' angles, the height of their centroid, the heights of the limb ends relative
   to it), resampled at M times and standardised per channel.
2. Per category, the template is the DTW barycentre of the training recordings (DBA: average
   the recordings warped onto the current template, three times), and each recording is also
   tried left/right mirrored, keeping whichever orientation warps onto the template at the lower
   cost, so left- and right-handed performers compare like with like.
3. The statistics of a recording are its warped deviations from the template: the mean deviation
   of each channel in each of the K aligned segments (attributable to a (segment, node) block),
   and recording-level ones: log duration, DTW cost, RMS deviation (raw and with each channel's
   offset removed), per channel the RMS of the centred deviation and the absolute offset, and per
   aligned segment the absolute timing offset (how early or late it happens).

The statistics branch (:mod:`kept.model.stats_branch`) offers these, pooled over categories with
the whole-recording statistics, as one more candidate that its cross-validation may choose.

Shapes glossary: R recordings, M curve samples, Ch channels, K aligned segments, C categories.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from kept.dtw import dtw_warp

__all__ = ["AlignedStatistics", "mirror_permutation", "DTW_BAND", "DBA_ITERATIONS"]

#: Sakoe-Chiba band of the warping, as a share of the curve length.
DTW_BAND = 0.2
#: Refinements of the DTW barycentre (the first template is the plain mean).
DBA_ITERATIONS = 3


def mirror_permutation(names: Sequence[str]) -> list[int]:
    """The channel order of the left/right mirror image: ``left_x`` and ``right_x`` swap places;
    a channel without a counterpart stays. Shapes: returns a permutation of range(len(names))."""
    pos = {n: i for i, n in enumerate(names)}

    def swapped(n: str) -> str:
        return n.replace("left", "\0").replace("right", "left").replace("\0", "right")

    return [pos.get(swapped(n), i) for i, n in enumerate(names)]


class AlignedStatistics(nn.Module):
    """Per-category DTW templates and the statistics of a recording warped onto its template.

    Args:
        categories (Sequence[str]): the C category names; row C holds the template of all
            categories together (recordings of unknown category).
        samples (int): M.
        channels (Sequence[str]): the Ch channel names (left/right names pair up for mirroring).
        depth (int): K, the aligned segments.

    Shapes:
        curves: (R, M, Ch) (:attr:`kept.features.RecordingFeatures.curves`)
        duration: (R,) seconds
        category: (R,) int64, -1 for unknown
        output: (R, dim) statistics, the first K Ch the segment deviations in (segment, channel)
            order
    """

    def __init__(self, categories: Sequence[str], samples: int, channels: Sequence[str], depth: int):
        super().__init__()
        from kept.features import segment_of_keyframe

        self.categories = tuple(categories)
        self.channels = tuple(channels)
        self.depth = depth
        C, Ch = len(self.categories) + 1, len(self.channels)
        self.register_buffer("template", torch.zeros(C, samples, Ch))
        self.register_buffer("mean", torch.zeros(C, Ch))
        self.register_buffer("scale", torch.ones(C, Ch))
        self.perm = mirror_permutation(self.channels)
        self.segment = segment_of_keyframe(samples, depth)  # (M,) segment of each curve sample

    @property
    def dim(self) -> int:
        """Number of statistics per recording."""
        K, Ch = self.depth, len(self.channels)
        return K * Ch + 4 + 2 * Ch + K

    def segment_channels(self) -> list[tuple[int, int]]:
        """(segment, channel) of each of the first K Ch statistics."""
        return [(k, c) for k in range(self.depth) for c in range(len(self.channels))]

    def _standardise(self, curves: np.ndarray, row: int) -> np.ndarray:
        return (curves - self.mean[row].double().numpy()) / self.scale[row].double().numpy()

    def _orient(self, z: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Warp both orientations of each curve; keep the cheaper. (R, M, Ch) -> warped, timing, cost"""
        both = np.concatenate([z, z[:, :, self.perm]])
        warped, timing, cost = dtw_warp(both, template, DTW_BAND)
        R = len(z)
        mirror = cost[R:] < cost[:R]
        pick = lambda a: np.where(mirror.reshape(-1, *[1] * (a.ndim - 1)), a[R:], a[:R])  # noqa: E731
        return pick(warped), pick(timing), pick(cost)

    @torch.no_grad()
    def fit(self, curves: torch.Tensor, category: torch.Tensor) -> "AlignedStatistics":
        """Build each category's template (and the all-category one) from these recordings.

        Shapes: curves (N, M, Ch); category (N,) (no -1)
        """
        x, cat = curves.double().numpy(), category.numpy()
        for row in range(len(self.categories) + 1):
            sel = x if row == len(self.categories) else x[cat == row]
            if len(sel) == 0:
                sel = x
            # one mean and scale for both sides of a left/right pair, so that mirroring is exact
            mean = sel.mean((0, 1))
            scale = sel.std((0, 1))
            mean, scale = (mean + mean[self.perm]) / 2, (scale + scale[self.perm]) / 2
            self.mean[row] = torch.as_tensor(mean)
            self.scale[row] = torch.as_tensor(np.where(scale > 1e-8, scale, 1.0))
            z = self._standardise(sel, row)
            template = z.mean(0)
            for _ in range(DBA_ITERATIONS):
                template = self._orient(z, template)[0].mean(0)
            self.template[row] = torch.as_tensor(template)
        return self

    @torch.no_grad()
    def forward(self, curves: torch.Tensor, duration: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        R, M, Ch = curves.shape
        K = self.depth
        rows = torch.where(category < 0, torch.full_like(category, len(self.categories)), category).cpu().numpy()
        x = curves.detach().cpu().double().numpy()
        out = np.zeros((R, self.dim))
        grid = np.linspace(0.0, 1.0, M)
        for row in np.unique(rows):
            sel = rows == row
            template = self.template[row].double().numpy()
            warped, timing, cost = self._orient(self._standardise(x[sel], row), template)
            dev = warped - template  # (r, M, Ch)
            offset = dev.mean(1)  # (r, Ch)
            centred = dev - offset[:, None]
            segments = np.stack([dev[:, self.segment == k].mean(1) for k in range(K)], 1).reshape(len(dev), -1)
            late = np.abs(np.stack([(timing - grid)[:, self.segment == k].mean(1) for k in range(K)], 1))
            dur = np.log(np.maximum(duration.detach().cpu().double().numpy()[sel], 1e-3))
            overall = np.stack([dur, cost, np.sqrt((dev**2).mean((1, 2))), np.sqrt((centred**2).mean((1, 2)))], 1)
            out[sel] = np.concatenate([segments, overall, np.sqrt((centred**2).mean(1)), np.abs(offset), late], 1)
        return torch.as_tensor(out, dtype=torch.float32, device=curves.device)
