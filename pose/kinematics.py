"""Node kinematics (a, v, p) of docs/method.md section 3, on NumPy arrays.

Shapes glossary: F frames, P joints, B node types, J joints per node type (the largest count
over node types; smaller node types are zero-padded).

Per joint of a node type and per frame:

- ``a`` in [0, 1]: interior angle at the joint between the two joints of ``skeleton.angles``
  (its two bones by default) divided by pi; a joint with one bone uses the bone's angle to the
  vertical axis, divided by pi.
- ``v``: speed in normalised units per second (central finite differences over real time, so the
  source frame rate matters).
- ``p = (x, y, z)``: position normalised per recording by the bounding box of all joints over all
  frames, with one scale for all three axes so that proportions survive.

A node's statistic is the concatenation over its joints of ``[a, v, x, y, z]``: h = 5 J.
"""

from __future__ import annotations

import numpy as np

from pose.skeleton import Skeleton

__all__ = [
    "fill_missing",
    "normalize_positions",
    "joint_angles",
    "joint_speeds",
    "node_kinematics",
    "canonical_facing",
    "UP_AXES",
]

#: Unit vectors of the accepted ``up_axis`` names (``dataset.json`` key ``up_axis``).
UP_AXES: dict[str, np.ndarray] = {
    name: sign * np.eye(3)[axis]
    for axis, letter in enumerate("xyz")
    for name, sign in ((letter, 1.0), (f"-{letter}", -1.0))
}


def fill_missing(xyz: np.ndarray) -> np.ndarray:
    """Fill NaN joints by linear interpolation over time, holding the ends.

    A joint never observed in the recording is placed at the per-frame mean of the observed
    joints (*decision*: it then contributes no motion of its own). A recording with no finite
    value at all raises ``ValueError``.

    Shapes:
        xyz: (F, P, 3), NaN where missing
        returns: (F, P, 3), all finite
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (frames, joints, 3), got {xyz.shape}")
    observed = np.isfinite(xyz).all(axis=-1)  # (F, P)
    if not observed.any():
        raise ValueError("keypoints are NaN everywhere: no joint was observed in any frame")
    out = xyz.copy()
    frames = np.arange(xyz.shape[0])
    never = []
    for p in range(xyz.shape[1]):
        seen = observed[:, p]
        if seen.all():
            continue
        if not seen.any():
            never.append(p)
            continue
        for c in range(3):
            out[:, p, c] = np.interp(frames, frames[seen], xyz[seen, p, c])
    if never:
        seen_any = observed.any(axis=0)
        centroid = out[:, seen_any].mean(axis=1)  # (F, 3)
        out[:, never] = centroid[:, None, :]
    return out


def normalize_positions(xyz: np.ndarray) -> np.ndarray:
    """Normalise into [0, 1]^3 by the recording's bounding box, one scale for all axes.

    ``p = (x - min) / max_extent`` where min is per axis over all joints and frames and
    max_extent is the largest of the three box sides, so the longest side spans [0, 1].

    Shapes:
        xyz: (F, P, 3), finite
        returns: (F, P, 3)
    """
    lo = xyz.reshape(-1, 3).min(axis=0)
    extent = float((xyz.reshape(-1, 3).max(axis=0) - lo).max())
    return (xyz - lo) / max(extent, 1e-9)


def _angle_between(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Angle in radians between vectors along the last axis; 0 where either has zero length."""
    nu = np.linalg.norm(u, axis=-1)
    nw = np.linalg.norm(w, axis=-1)
    cos = (u * w).sum(-1) / np.maximum(nu * nw, 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def joint_angles(
    xyz: np.ndarray, skeleton: Skeleton, joints: list[str], up_axis: str = "y"
) -> np.ndarray:
    """The ``a`` component: interior angle / pi at each named joint.

    Args:
        xyz: positions (any consistent unit).
        skeleton: gives each joint's angle definition (``skeleton.angles``).
        joints: the J joints to measure.
        up_axis: vertical axis for one-bone joints: ``x, y, z, -x, -y, -z``.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, J) in [0, 1]
    """
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {sorted(UP_AXES)}, got '{up_axis}'")
    out = np.zeros((xyz.shape[0], len(joints)))
    for i, joint in enumerate(joints):
        at = xyz[:, skeleton.index(joint)]
        ends = skeleton.angles[joint]
        u = xyz[:, skeleton.index(ends[0])] - at
        w = xyz[:, skeleton.index(ends[1])] - at if len(ends) == 2 else UP_AXES[up_axis][None]
        out[:, i] = _angle_between(u, np.broadcast_to(w, u.shape)) / np.pi
    return out


def joint_speeds(xyz: np.ndarray, fps: float) -> np.ndarray:
    """The ``v`` component: speed of every joint in units per second.

    Central differences inside, one-sided at the ends (``np.gradient`` with spacing 1/fps).

    Shapes:
        xyz: (F, P, 3)
        returns: (F, P)
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if xyz.shape[0] < 2:
        return np.zeros(xyz.shape[:2])
    vel = np.gradient(xyz, 1.0 / fps, axis=0)
    return np.linalg.norm(vel, axis=-1)


def node_kinematics(
    xyz: np.ndarray, skeleton: Skeleton, fps: float, up_axis: str = "y"
) -> np.ndarray:
    """Per-frame node statistics: ``[a, v, x, y, z]`` for each joint of each node type.

    Args:
        xyz: raw positions, NaN where missing (filled by :func:`fill_missing`).
        skeleton: node types and angle definitions.
        fps: frames per second of ``xyz``.
        up_axis: see :func:`joint_angles`.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, B, 5 J), node types in ``skeleton.node_names`` order, zero-padded
    """
    filled = fill_missing(xyz)
    norm = normalize_positions(filled)
    speed = joint_speeds(norm, fps)  # (F, P)
    J = skeleton.max_joints_per_node
    out = np.zeros((filled.shape[0], len(skeleton.node_types), 5 * J))
    for b, members in enumerate(skeleton.node_types.values()):
        idx = [skeleton.index(j) for j in members]
        ang = joint_angles(filled, skeleton, list(members), up_axis)  # (F, len)
        per_joint = np.concatenate(
            [ang[..., None], speed[:, idx, None], norm[:, idx]], axis=-1
        )  # (F, len, 5)
        out[:, b, : 5 * len(idx)] = per_joint.reshape(filled.shape[0], -1)
    return out


def rotation_about(up_axis: str, degrees: float) -> np.ndarray:
    """Rotation matrix about a named up axis (right-hand rule, Rodrigues' formula). (3, 3)"""
    u = UP_AXES[up_axis]
    a = np.deg2rad(degrees)
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.cos(a) * np.eye(3) + np.sin(a) * cross + (1 - np.cos(a)) * np.outer(u, u)


def canonical_facing(xyz: np.ndarray, left: int, right: int, up_axis: str = "y") -> np.ndarray:
    """Rotate a recording about the vertical axis so that its mean left-to-right line is +x.

    The left-to-right vector (e.g. left hip to right hip), averaged over the frames where both
    joints are seen and projected onto the horizontal plane, is turned onto the first horizontal
    axis (x, or y when x is up). Removes where the camera stood around the performer, as the
    view normalisation of skeleton action recognition does. NaNs stay NaN; a recording in which
    the two joints are never seen together is returned unchanged.

    Shapes:
        xyz: (F, P, 3)
        returns: (F, P, 3)
    """
    u = UP_AXES[up_axis]
    line = xyz[:, right] - xyz[:, left]  # (F, 3)
    line = line[np.isfinite(line).all(axis=1)]
    if len(line) == 0:
        return xyz
    v = line.mean(axis=0)
    v = v - (v @ u) * u  # horizontal part
    if np.linalg.norm(v) < 1e-9:
        return xyz
    ref = np.eye(3)[1 if abs(u[0]) > 0 else 0]  # first horizontal axis
    angle = np.degrees(np.arctan2(np.cross(v, ref) @ u, v @ ref))  # signed angle v -> ref about u
    return xyz @ rotation_about(up_axis, angle).T
