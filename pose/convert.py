"""Converting keypoints between the built-in skeletons (``coco17``, ``h36m17``, ``mediapipe33``).

Every target joint is the mean of a (multi)set of source joints; a joint listed twice counts twice,
so a midpoint-like point can be written as a mean (see ``neck_base`` below). A target joint with no
source joints is not available and comes out as NaN (confidence 0). A derived joint is NaN as soon
as one of the joints it averages is NaN. Left stays left and right stays right throughout: every
``left_*`` joint is built only from ``left_*`` joints (or from joints of both sides, for the
midline joints).

Supported conversions (besides the identity, which returns a copy, for every built-in):

``coco17 -> h36m17``
    - ``left/right_hip, _knee, _shoulder, _elbow, _wrist``: the COCO joint of the same name.
    - ``left/right_foot``: the COCO ankle of that side (COCO has no foot point).
    - ``root``: mean of the two hips (pelvis centre).
    - ``thorax``: mean of the two shoulders.
    - ``spine``: mean of root and thorax, i.e. mean of both hips and both shoulders.
    - ``neck_base``: midpoint of thorax and nose, i.e. mean of (left_shoulder, right_shoulder,
      nose, nose). *Decision*: COCO has no neck point; halfway from the shoulder centre to the
      nose is a mean of source joints and lies on the thorax-head line.
    - ``head``: the nose. *Decision*: COCO has no head-top point; the nose is the highest
      reliable midline joint (the eyes and ears are dropped).

``h36m17 -> coco17``
    - shoulders, elbows, wrists, hips, knees: the joint of the same name.
    - ``left/right_ankle``: the H36M foot of that side.
    - ``nose``: the H36M ``head`` (the inverse of the decision above, so that
      ``coco17 -> h36m17 -> coco17`` gives the nose back).
    - ``left/right_eye``, ``left/right_ear``: not available (NaN, confidence 0).

``mediapipe33 -> coco17``
    - Direct picks by name: nose, left/right_eye (MediaPipe's eye centre, not the inner or outer
      corner), left/right_ear, shoulders, elbows, wrists, hips, knees, ankles.

``mediapipe33 -> h36m17``
    - The composition ``mediapipe33 -> coco17 -> h36m17`` (exact: every mean is expanded into
      the MediaPipe landmarks it averages), so e.g. ``root`` = mean of MediaPipe's hips and
      ``head`` = MediaPipe's nose.

MediaPipe's hand (pinky, index, thumb), foot (heel, foot_index), mouth and eye-corner landmarks
have no counterpart in the other skeletons and are dropped. Conversions *into* ``mediapipe33``
are not offered (most of its landmarks would be missing).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from pose.sequence import KeypointSequence
from pose.skeleton import BUILTIN_SKELETONS, get_skeleton

__all__ = ["convert", "convert_xyz", "joint_map", "node_joints", "supported_pairs"]

_SIDES = ("left", "right")
_LIMBS = ("shoulder", "elbow", "wrist", "hip", "knee")

# target joint -> source joint names whose mean gives it (by name; resolved to indices below)
_COCO_TO_H36M: dict[str, tuple[str, ...]] = {
    "root": ("left_hip", "right_hip"),
    "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
    "thorax": ("left_shoulder", "right_shoulder"),
    "neck_base": ("left_shoulder", "right_shoulder", "nose", "nose"),
    "head": ("nose",),
    **{f"{s}_{j}": (f"{s}_{j}",) for s in _SIDES for j in _LIMBS},
    **{f"{s}_foot": (f"{s}_ankle",) for s in _SIDES},
}
_H36M_TO_COCO: dict[str, tuple[str, ...]] = {
    "nose": ("head",),
    **{f"{s}_{j}": (f"{s}_{j}",) for s in _SIDES for j in _LIMBS},
    **{f"{s}_ankle": (f"{s}_foot",) for s in _SIDES},
}
_MEDIAPIPE_TO_COCO: dict[str, tuple[str, ...]] = {
    j: (j,) for j in BUILTIN_SKELETONS["coco17"].joints  # every COCO joint has a same-named landmark
}

_BY_NAME: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("coco17", "h36m17"): _COCO_TO_H36M,
    ("h36m17", "coco17"): _H36M_TO_COCO,
    ("mediapipe33", "coco17"): _MEDIAPIPE_TO_COCO,
}
# conversions built by composing two of the above: (source, target) -> intermediate skeleton
_COMPOSED: dict[tuple[str, str], str] = {("mediapipe33", "h36m17"): "coco17"}


def supported_pairs() -> list[tuple[str, str]]:
    """The (source, target) pairs :func:`joint_map` accepts, identities excluded."""
    return sorted([*_BY_NAME, *_COMPOSED])


def _unsupported(source: str, target: str) -> ValueError:
    pairs = ", ".join(f"{a} -> {b}" for a, b in supported_pairs())
    return ValueError(
        f"no conversion from skeleton '{source}' to '{target}'; supported: {pairs} "
        f"(and the identity for each built-in: {sorted(BUILTIN_SKELETONS)})"
    )


def _direct_map(source: str, target: str) -> list[tuple[int, ...]]:
    src, tgt = BUILTIN_SKELETONS[source], BUILTIN_SKELETONS[target]
    by_name = _BY_NAME[(source, target)]
    return [tuple(src.index(j) for j in by_name.get(name, ())) for name in tgt.joints]


def _compose(first: list[tuple[int, ...]], second: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """``second`` after ``first``, as exact means: each intermediate mean is repeated so that all
    intermediates weigh the same in the outer mean."""
    out: list[tuple[int, ...]] = []
    for mids in second:
        parts = [first[m] for m in mids]
        if not parts or any(len(p) == 0 for p in parts):
            out.append(())
            continue
        common = math.lcm(*(len(p) for p in parts))
        out.append(tuple(i for p in parts for i in p * (common // len(p))))
    return out


def joint_map(source: str, target: str) -> list[tuple[int, ...]]:
    """For each target joint, the source joint indices whose mean gives it.

    An empty tuple means the target joint is not available from ``source`` (NaN). An index may
    appear more than once (it then weighs more in the mean). See the module docstring for the
    mapping of every derived joint.

    Raises:
        ValueError: for a pair that is not supported; the message lists the supported pairs.
    """
    if source == target and source in BUILTIN_SKELETONS:
        return [(i,) for i in range(BUILTIN_SKELETONS[source].num_joints)]
    if (source, target) in _BY_NAME:
        return _direct_map(source, target)
    if (source, target) in _COMPOSED:
        mid = _COMPOSED[(source, target)]
        return _compose(joint_map(source, mid), joint_map(mid, target))
    raise _unsupported(source, target)


def convert_xyz(xyz: np.ndarray, source: str, target: str) -> np.ndarray:
    """Positions of one skeleton as positions of another (see :func:`joint_map`).

    Shapes:
        xyz: (F, P_src, 3)
        returns: (F, P_tgt, 3), NaN where a target joint is not available; float dtype kept
    """
    mapping = joint_map(source, target)
    xyz = np.asarray(xyz)
    if not np.issubdtype(xyz.dtype, np.floating):
        xyz = xyz.astype(np.float64)
    p_src = BUILTIN_SKELETONS[source].num_joints
    if xyz.ndim != 3 or xyz.shape[1:] != (p_src, 3):
        raise ValueError(f"xyz of skeleton '{source}' must have shape (frames, {p_src}, 3), got {xyz.shape}")
    out = np.full((xyz.shape[0], len(mapping), 3), np.nan, dtype=xyz.dtype)
    for t, idx in enumerate(mapping):
        if len(idx) == 1:
            out[:, t] = xyz[:, idx[0]]
        elif idx:
            out[:, t] = xyz[:, list(idx)].mean(axis=1)
    return out


def _convert_confidence(confidence: np.ndarray, mapping: list[tuple[int, ...]]) -> np.ndarray:
    out = np.zeros((confidence.shape[0], len(mapping)), dtype=confidence.dtype)
    for t, idx in enumerate(mapping):
        if idx:
            out[:, t] = confidence[:, list(idx)].min(axis=1)
    return out


def convert(seq: KeypointSequence, target: str) -> KeypointSequence:
    """A keypoint sequence in another built-in skeleton.

    Positions as in :func:`convert_xyz`; a target joint's confidence is the minimum confidence of
    the source joints it averages (0 where it is not available). ``fps``, ``source``, ``times``
    and ``meta`` are kept (copied); ``skeleton`` becomes ``target``. The identity returns a copy.
    """
    mapping = joint_map(seq.skeleton, target)
    return KeypointSequence(
        xyz=convert_xyz(seq.xyz, seq.skeleton, target),
        confidence=_convert_confidence(seq.confidence, mapping),
        skeleton=target,
        fps=seq.fps,
        source=seq.source,
        times=None if seq.times is None else np.array(seq.times, copy=True),
        meta=copy.deepcopy(seq.meta),
    )


def node_joints(skeleton: str) -> dict[str, tuple[str, ...]]:
    """The node types of a built-in skeleton and their joints, in the tree's branch order."""
    return {node: tuple(members) for node, members in get_skeleton(skeleton).node_types.items()}
