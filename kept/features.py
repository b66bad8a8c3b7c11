"""From a keypoint sequence to the model's inputs: keyframes, node statistics, segment trajectories.

Shapes glossary: F frames, P joints, N keyframes, B node types, J joints per node type,
h = 5 J node-statistic size, K segments (tree depth), S samples per segment trajectory,
g = 6 J block-statistic size.

Time is sampled, not frames: keyframe n sits at the centre of the n-th of N equal time bins of
the recording, and segment k covers the k-th of K equal time spans (docs/method.md section 4), so
recordings of any length and frame rate give the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pose.kinematics import (canonical_facing, fill_missing, joint_angles, joint_speeds, node_kinematics,
                             normalize_positions, rotation_about)
from pose.skeleton import Skeleton

__all__ = [
    "RecordingFeatures",
    "recording_features",
    "resample",
    "segment_of_keyframe",
    "stack_features",
    "rotate_about_up",
    "prepare_keypoints",
    "block_statistics",
    "whole_statistics",
    "alignment_curves",
    "alignment_channels",
    "BLOCK_STATS",
    "ALIGN_SAMPLES",
]

#: Channels per joint in ``frames`` and per sample in ``segments``: x, y, z, speed.
JOINT_CHANNELS = 4

#: Statistics per joint in ``block_stats``, in order (angles as angle / pi, speeds in
#: normalised units per second).
BLOCK_STATS = ("angle_mean", "angle_std", "angle_min", "angle_max", "speed_mean", "speed_max")

#: Samples per segment from which the block statistics are taken.
_BLOCK_SAMPLES = 16

#: M, the samples of the kinematic curves that the phase-aligned statistics warp
#: (:func:`alignment_curves`, :mod:`kept.model.alignment_stats`).
ALIGN_SAMPLES = 48


@dataclass
class RecordingFeatures:
    """Model inputs of one recording (or a batch, with a leading batch dimension).

    Shapes:
        node_stats: (N, B, h) node kinematics [a, v, x, y, z] per joint of each node type
        frames: (N, P, 4) normalised position and speed of every joint at the keyframes
        segments: (K, P, 4 S) every joint's trajectory (position, speed) over each segment
        block_stats: (K, B, g) summary statistics of each node type's joints in each segment
            (:func:`block_statistics`), an input of the statistics branch; None when not computed
        whole_stats: (W,) whole-recording statistics (:func:`whole_statistics`: angles of the
            node joints and speeds of all joints), the statistics branch's other input; None
            when not computed
        curves: (M, Ch) the kinematic curves of :func:`alignment_curves` at M evenly spaced
            times, which the phase-aligned statistics warp; None when not computed
        duration: () the recording's length in seconds; None when not computed
    """

    node_stats: torch.Tensor
    frames: torch.Tensor
    segments: torch.Tensor
    block_stats: torch.Tensor | None = None
    whole_stats: torch.Tensor | None = None
    curves: torch.Tensor | None = None
    duration: torch.Tensor | None = None

    def _map(self, fn) -> "RecordingFeatures":
        opt = lambda t: None if t is None else fn(t)  # noqa: E731
        return RecordingFeatures(fn(self.node_stats), fn(self.frames), fn(self.segments),
                                 opt(self.block_stats), opt(self.whole_stats), opt(self.curves),
                                 opt(self.duration))

    def to(self, device: torch.device | str) -> "RecordingFeatures":
        return self._map(lambda t: t.to(device))

    def index(self, idx: torch.Tensor | list[int]) -> "RecordingFeatures":
        """Select recordings from a batched instance along the batch dimension."""
        return self._map(lambda t: t[idx])

    def __len__(self) -> int:
        return self.node_stats.shape[0]


def resample(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 at fractional times in [0, 1] of the recording.

    Frame f is taken to sit at the centre of its time bin, ``(f + 0.5) / F``.

    Shapes:
        values: (F, ...)
        times: (M,)
        returns: (M, ...)
    """
    F = values.shape[0]
    pos = np.clip(times * F - 0.5, 0.0, F - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, F - 1)
    w = (pos - lo).reshape(-1, *([1] * (values.ndim - 1)))
    return values[lo] * (1 - w) + values[hi] * w


def segment_of_keyframe(num_keyframes: int, depth: int) -> np.ndarray:
    """Segment index of each keyframe: keyframe n at time (n + 0.5) / N is in segment floor(t K).

    Shapes:
        returns: (N,) int64 with values in [0, K)
    """
    t = (np.arange(num_keyframes) + 0.5) / num_keyframes
    return np.minimum((t * depth).astype(np.int64), depth - 1)


def recording_features(
    xyz: np.ndarray,
    skeleton: Skeleton,
    fps: float,
    *,
    num_keyframes: int = 32,
    depth: int = 4,
    segment_samples: int = 8,
    up_axis: str = "y",
) -> RecordingFeatures:
    """Compute the model inputs of one recording.

    Args:
        xyz: keypoints, NaN where a joint is missing.
        skeleton: the recording's skeleton.
        fps: its frame rate (speeds are per second).
        num_keyframes: N.
        depth: K, the number of temporal segments.
        segment_samples: S.
        up_axis: vertical axis for one-bone angles.

    Shapes:
        xyz: (F, P, 3) with F >= 2
        returns: :class:`RecordingFeatures` without a batch dimension
    """
    if xyz.ndim != 3 or xyz.shape[1] != skeleton.num_joints or xyz.shape[2] != 3:
        raise ValueError(
            f"keypoints of shape {xyz.shape} do not match skeleton '{skeleton.name}': expected "
            f"(frames, {skeleton.num_joints}, 3)"
        )
    if xyz.shape[0] < 2:
        raise ValueError(f"a recording needs at least 2 frames to measure speed, got {xyz.shape[0]}")
    filled = fill_missing(xyz)  # once: node_kinematics finds nothing left to fill
    stats = node_kinematics(filled, skeleton, fps, up_axis)  # (F, B, h)
    blocks = block_statistics(stats, depth)  # (K, B, g)
    whole = whole_statistics(filled, skeleton, fps, up_axis)  # (W,)
    norm = normalize_positions(filled)  # (F, P, 3)
    per_joint = np.concatenate([norm, joint_speeds(norm, fps)[..., None]], axis=-1)  # (F, P, 4)

    curve_t = (np.arange(ALIGN_SAMPLES) + 0.5) / ALIGN_SAMPLES
    curves = resample(alignment_curves(filled, skeleton, up_axis), curve_t)  # (M, Ch)
    key_t = (np.arange(num_keyframes) + 0.5) / num_keyframes
    seg_t = (np.arange(depth)[:, None] + (np.arange(segment_samples)[None] + 0.5) / segment_samples) / depth
    seg = resample(per_joint, seg_t.reshape(-1))  # (K S, P, 4)
    seg = seg.reshape(depth, segment_samples, skeleton.num_joints, JOINT_CHANNELS)
    seg = seg.transpose(0, 2, 1, 3).reshape(depth, skeleton.num_joints, -1)  # (K, P, S 4)
    return RecordingFeatures(
        node_stats=torch.as_tensor(resample(stats, key_t), dtype=torch.float32),
        frames=torch.as_tensor(resample(per_joint, key_t), dtype=torch.float32),
        segments=torch.as_tensor(seg, dtype=torch.float32),
        block_stats=torch.as_tensor(blocks, dtype=torch.float32),
        whole_stats=torch.as_tensor(whole, dtype=torch.float32),
        curves=torch.as_tensor(curves, dtype=torch.float32),
        duration=torch.tensor(xyz.shape[0] / fps, dtype=torch.float32),
    )


def _node_joints(skeleton: Skeleton) -> list[str]:
    return list(dict.fromkeys(j for members in skeleton.node_types.values() for j in members))


def _limb_ends(skeleton: Skeleton) -> list[str]:
    """The joints that end the node joints' angles without being node joints themselves (the
    wrists and ankles of a human skeleton: where a limb acts)."""
    node = set(_node_joints(skeleton))
    return list(dict.fromkeys(e for j in _node_joints(skeleton) for e in skeleton.angles[j] if e not in node))


def alignment_channels(skeleton: Skeleton) -> list[str]:
    """Names of the channels of :func:`alignment_curves`: the node joints (their angles), then
    ``centre_height``, then the limb ends (their heights above the centre)."""
    return _node_joints(skeleton) + ["centre_height"] + _limb_ends(skeleton)


def alignment_curves(xyz: np.ndarray, skeleton: Skeleton, up_axis: str = "y") -> np.ndarray:
    """The per-frame kinematic curves that DTW aligns (:mod:`kept.model.alignment_stats`).

    Channels (:func:`alignment_channels`): the angle of every node joint (angle / pi, as in
    :func:`pose.kinematics.joint_angles`); the height of the node joints' centroid along the up
    axis (bounding-box-normalised positions, so a jump or a squat shows); and the height of
    every limb end (wrist, ankle) above that centroid. All are unchanged by turning about the
    vertical axis.

    Shapes:
        xyz: (F, P, 3) finite
        returns: (F, Ch) float64
    """
    from pose.kinematics import UP_AXES

    joints = _node_joints(skeleton)
    ang = joint_angles(xyz, skeleton, joints, up_axis)  # (F, A)
    height = normalize_positions(xyz) @ UP_AXES[up_axis]  # (F, P)
    centre = height[:, [skeleton.index(j) for j in joints]].mean(1, keepdims=True)  # (F, 1)
    ends = height[:, [skeleton.index(j) for j in _limb_ends(skeleton)]] - centre  # (F, E)
    return np.concatenate([ang, centre, ends], axis=1)


def block_statistics(node_stats: np.ndarray, depth: int) -> np.ndarray:
    """Per segment and node type: mean, std, min and max of each joint's angle, and mean and max
    of its speed (:data:`BLOCK_STATS`), over the segment's time span.

    These are the time-aware hand-made statistics of the classical AQA baselines, per
    (segment, node) block of the keypoint-guided tree, so that a linear model on them decomposes
    exactly into one contribution per block. Each segment is resampled at 16 evenly spaced
    times, so recordings of any length and frame rate give the same statistics.

    Args:
        node_stats: per-frame node kinematics from :func:`pose.kinematics.node_kinematics`
            ([a, v, x, y, z] per joint, zero-padded).
        depth: K.

    Shapes:
        node_stats: (F, B, 5 J)
        returns: (K, B, 6 J)
    """
    F, B, h = node_stats.shape
    J = h // 5
    t = (np.arange(depth)[:, None] + (np.arange(_BLOCK_SAMPLES)[None] + 0.5) / _BLOCK_SAMPLES) / depth
    x = resample(node_stats, t.reshape(-1)).reshape(depth, _BLOCK_SAMPLES, B, J, 5)
    a, v = x[..., 0], x[..., 1]  # (K, S, B, J)
    out = np.stack([a.mean(1), a.std(1), a.min(1), a.max(1), v.mean(1), v.max(1)], axis=-1)  # (K, B, J, 6)
    return out.reshape(depth, B, J * len(BLOCK_STATS))


def whole_statistics(xyz: np.ndarray, skeleton: Skeleton, fps: float, up_axis: str = "y") -> np.ndarray:
    """Whole-recording angle and speed statistics (the features of the classical ridge baseline).

    NaN joints are filled by :func:`pose.kinematics.fill_missing`. Angles (in [0, 1], angle/pi)
    are measured at every joint of every node type, in ``skeleton.node_types`` order (a joint
    listed under two node types is measured once); speeds of all P joints are computed on the
    bounding-box-normalised positions, as in :func:`pose.kinematics.node_kinematics`.

    Shapes:
        xyz: (F, P, 3)
        returns: (W,) float64 with W = 4 (A + P), A the number of node-type joints: the mean, std,
            min and max over frames of the A angles, then the same four statistics of the P speeds
    """
    filled = fill_missing(xyz)
    joints = list(dict.fromkeys(j for members in skeleton.node_types.values() for j in members))
    ang = joint_angles(filled, skeleton, joints, up_axis)  # (F, A)
    speed = joint_speeds(normalize_positions(filled), fps)  # (F, P)
    stats = lambda x: np.concatenate([x.mean(0), x.std(0), x.min(0), x.max(0)])  # noqa: E731
    return np.concatenate([stats(ang), stats(speed)])


def stack_features(items: list[RecordingFeatures]) -> RecordingFeatures:
    """Stack single recordings into a batch (leading dimension R)."""
    def opt(name: str) -> torch.Tensor | None:
        values = [getattr(f, name) for f in items]
        return torch.stack(values) if all(v is not None for v in values) else None

    return RecordingFeatures(
        node_stats=torch.stack([f.node_stats for f in items]),
        frames=torch.stack([f.frames for f in items]),
        segments=torch.stack([f.segments for f in items]),
        block_stats=opt("block_stats"), whole_stats=opt("whole_stats"), curves=opt("curves"),
        duration=opt("duration"),
    )


def rotate_about_up(xyz: np.ndarray, degrees: float, up_axis: str = "y") -> np.ndarray:
    """Rotate a recording about the vertical axis (a camera moved around the performer).

    Training augmentation: joint angles and speeds do not change, positions do, so a model
    trained with random rotations does not learn where the camera stood. NaNs stay NaN.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, P, 3)
    """
    return xyz @ rotation_about(up_axis, degrees).T


def prepare_keypoints(xyz: np.ndarray, skeleton: Skeleton, up_axis: str = "y", canonical: bool = True) -> np.ndarray:
    """Keypoints as every consumer of a trained model must see them: float64, and turned into
    the canonical facing direction (:func:`pose.kinematics.canonical_facing`) when ``canonical``
    and the skeleton declares ``facing``.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, P, 3)
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if canonical and skeleton.facing is not None:
        left, right = (skeleton.index(j) for j in skeleton.facing)
        xyz = canonical_facing(xyz, left, right, up_axis)
    return xyz
