"""Skeletons as data: joint names, bones, node types and the joints whose angle is measured.

A skeleton is declared once, here (built-ins) or inline in a dataset's ``dataset.json``. Every
other part of the library reads joints, bones and node types from a :class:`Skeleton`; nothing
hard-codes joint indices.

Inline spec (the keypoint-folder format, see the README)::

    {"joints": ["hip", "knee", ...],             # order of the joints in the .npy files
     "edges": [["hip", "knee"], ...],             # bones
     "node_types": {"knee": ["knee_l", "knee_r"], ...},   # branches of the tree, in order
     "angles": {"shoulder_l": ["elbow_l", "hip_l"]},      # optional, see below
     "facing": ["hip_l", "hip_r"]}                         # optional: left and right joint

``angles`` (optional, a kept extension of docs/method.md section 3): the two joints that span the
interior angle measured at a node-type joint. Without it, a joint with exactly two bones uses its
two bone neighbours, a joint with one bone uses the bone's angle to the vertical axis, and a joint
with more than two bones uses the first two bones listed in ``edges`` (*decision*: deterministic
and documented; declare ``angles`` to choose others). The built-in skeletons declare the angles
that coaches read: elbow (shoulder-elbow-wrist), shoulder (elbow-shoulder-hip), hip
(shoulder-hip-knee) and knee (hip-knee-ankle).

``facing`` (optional): a left and a right joint (the hips for the built-ins) whose line defines
the performer's facing direction; with it, recordings can be rotated about the vertical axis
into a canonical view (:func:`pose.kinematics.canonical_facing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["Skeleton", "BUILTIN_SKELETONS", "get_skeleton"]


@dataclass(frozen=True)
class Skeleton:
    """A named skeleton.

    Args:
        name (str): registry name or the dataset's name for inline skeletons.
        joints (tuple[str, ...]): joint names in array order (P of them).
        edges (tuple[tuple[str, str], ...]): bones, as pairs of joint names.
        node_types (dict[str, tuple[str, ...]]): node type -> its joints (B node types), in
            the order of the tree's branches.
        angles (dict[str, tuple[str, ...]]): joint -> the two joints spanning its interior
            angle, or a single neighbour for an angle to the vertical axis. Filled in for every
            node-type joint by :meth:`__post_init__` when not given.
        facing (tuple[str, str], optional): left and right joint spanning the facing direction.
    """

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    node_types: dict[str, tuple[str, ...]]
    angles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    facing: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        where = f"skeleton '{self.name}'"
        if len(self.joints) < 2:
            raise ValueError(f"{where}: needs at least two joints, got {list(self.joints)}")
        dupes = sorted({j for j in self.joints if self.joints.count(j) > 1})
        if dupes:
            raise ValueError(f"{where}: joint names must be unique, repeated: {dupes}")
        known = set(self.joints)

        def check(name: str, context: str) -> None:
            if name not in known:
                raise ValueError(
                    f"{where}: unknown joint '{name}' in {context}; known joints are "
                    f"{list(self.joints)}. Fix the name or add the joint to 'joints'."
                )

        for a, b in self.edges:
            check(a, f"edge [{a}, {b}]")
            check(b, f"edge [{a}, {b}]")
            if a == b:
                raise ValueError(f"{where}: edge [{a}, {b}] joins a joint to itself")
        if not self.node_types:
            raise ValueError(f"{where}: 'node_types' is empty; name at least one node type")
        for node, members in self.node_types.items():
            if not members:
                raise ValueError(f"{where}: node type '{node}' has no joints")
            for j in members:
                check(j, f"node type '{node}'")
        angles = dict(self.angles)
        for joint, ends in angles.items():
            check(joint, "'angles'")
            if len(ends) not in (1, 2):
                raise ValueError(f"{where}: angle of '{joint}' needs one or two joints, got {ends}")
            for e in ends:
                check(e, f"angle of '{joint}'")
        for members in self.node_types.values():
            for j in members:
                if j not in angles:
                    angles[j] = self._default_angle(j)
        object.__setattr__(self, "angles", {k: tuple(v) for k, v in angles.items()})
        if self.facing is not None:
            if len(self.facing) != 2:
                raise ValueError(f"{where}: 'facing' needs a left and a right joint, got {list(self.facing)}")
            for j in self.facing:
                check(j, "'facing'")
            object.__setattr__(self, "facing", tuple(self.facing))

    def _default_angle(self, joint: str) -> tuple[str, ...]:
        neighbours = [b if a == joint else a for a, b in self.edges if joint in (a, b)]
        if not neighbours:
            raise ValueError(
                f"skeleton '{self.name}': node-type joint '{joint}' has no bone, so no angle can "
                "be measured; add a bone to 'edges' or declare it under 'angles'."
            )
        return tuple(neighbours[:2])

    # -- lookups -----------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        """P, the number of joints."""
        return len(self.joints)

    @property
    def node_names(self) -> tuple[str, ...]:
        """The node types, in branch order (B of them)."""
        return tuple(self.node_types)

    @property
    def max_joints_per_node(self) -> int:
        """The largest number of joints in one node type (J)."""
        return max(len(m) for m in self.node_types.values())

    def index(self, joint: str) -> int:
        """Array index of a joint name."""
        try:
            return self.joints.index(joint)
        except ValueError:
            raise ValueError(
                f"skeleton '{self.name}' has no joint '{joint}'; known: {list(self.joints)}"
            ) from None

    def edge_index(self) -> np.ndarray:
        """Bones as joint indices, both directions (PyG layout).

        Shapes:
            returns: (2, 2E) int64
        """
        idx = np.array([[self.index(a), self.index(b)] for a, b in self.edges], dtype=np.int64)
        if idx.size == 0:
            return np.zeros((2, 0), dtype=np.int64)
        return np.concatenate([idx.T, idx.T[::-1]], axis=1)

    def adjacency(self) -> np.ndarray:
        """Symmetric 0/1 bone adjacency without self-loops.

        Shapes:
            returns: (P, P) float32
        """
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        ei = self.edge_index()
        a[ei[0], ei[1]] = 1.0
        return a

    def to_spec(self) -> dict[str, Any]:
        """The inline JSON spec of this skeleton (round-trips through :meth:`from_spec`)."""
        return {
            "joints": list(self.joints),
            "edges": [list(e) for e in self.edges],
            "node_types": {k: list(v) for k, v in self.node_types.items()},
            "angles": {k: list(v) for k, v in self.angles.items()},
            **({"facing": list(self.facing)} if self.facing else {}),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], name: str = "inline") -> "Skeleton":
        """Build a skeleton from an inline spec (see the module docstring)."""
        if not isinstance(spec, Mapping):
            raise ValueError(f"skeleton '{name}': spec must be a JSON object, got {type(spec).__name__}")
        missing = [k for k in ("joints", "edges", "node_types") if k not in spec]
        if missing:
            raise ValueError(
                f"skeleton '{name}': inline spec lacks {missing}; it needs 'joints', 'edges' and "
                "'node_types' (see the README's keypoint-folder format)"
            )
        try:
            edges = tuple((str(a), str(b)) for a, b in spec["edges"])
        except (TypeError, ValueError):
            raise ValueError(f"skeleton '{name}': 'edges' must be a list of [joint, joint] pairs") from None
        return cls(
            name=str(spec.get("name", name)),
            joints=tuple(str(j) for j in spec["joints"]),
            edges=edges,
            node_types={str(k): tuple(str(j) for j in v) for k, v in spec["node_types"].items()},
            angles={str(k): tuple(str(j) for j in v) for k, v in spec.get("angles", {}).items()},
            facing=tuple(str(j) for j in spec["facing"]) if spec.get("facing") else None,
        )


_COCO_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_COCO_EDGES = (
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"),
    ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
    ("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
)
_SPORT_NODES = {
    "elbow": ("left_elbow", "right_elbow"),
    "shoulder": ("left_shoulder", "right_shoulder"),
    "hip": ("left_hip", "right_hip"),
    "knee": ("left_knee", "right_knee"),
}


def _limb_angles(hip_upper: dict[str, str], foot: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """The coach's angles of both sides; ``hip_upper``/``foot`` name the trunk and foot joints."""
    out: dict[str, tuple[str, ...]] = {}
    for side in ("left", "right"):
        s = lambda j: f"{side}_{j}"  # noqa: E731
        out[s("elbow")] = (s("shoulder"), s("wrist"))
        out[s("shoulder")] = (s("elbow"), s("hip"))
        out[s("hip")] = (hip_upper[side], s("knee"))
        out[s("knee")] = (s("hip"), foot[side])
    return out


def _sport_skeleton(name: str, joints: tuple[str, ...], edges: tuple[tuple[str, str], ...], foot: str) -> Skeleton:
    """A human skeleton with the sport node types, the coach's angles and hip-line facing."""
    return Skeleton(
        name=name, joints=joints, edges=edges, node_types=dict(_SPORT_NODES),
        angles=_limb_angles({"left": "left_shoulder", "right": "right_shoulder"},
                            {"left": f"left_{foot}", "right": f"right_{foot}"}),
        facing=("left_hip", "right_hip"),
    )


COCO17 = _sport_skeleton("coco17", _COCO_JOINTS, _COCO_EDGES, foot="ankle")

_H36M_JOINTS = (
    "root", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
    "spine", "thorax", "neck_base", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)
_H36M_EDGES = (
    ("root", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_foot"),
    ("root", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_foot"),
    ("root", "spine"), ("spine", "thorax"), ("thorax", "neck_base"), ("neck_base", "head"),
    ("thorax", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("thorax", "right_shoulder"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
)
H36M17 = _sport_skeleton("h36m17", _H36M_JOINTS, _H36M_EDGES, foot="foot")

# MediaPipe Pose (BlazePose) landmarks, in the order of mediapipe's ``PoseLandmark`` enum
# (mediapipe/python/solutions/pose.py); bones are its ``POSE_CONNECTIONS`` (35 pairs,
# mediapipe/python/solutions/pose_connections.py), written with joint names.
_MEDIAPIPE_JOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
_MEDIAPIPE_EDGES = (
    ("nose", "right_eye_inner"), ("right_eye_inner", "right_eye"), ("right_eye", "right_eye_outer"),
    ("right_eye_outer", "right_ear"), ("nose", "left_eye_inner"), ("left_eye_inner", "left_eye"),
    ("left_eye", "left_eye_outer"), ("left_eye_outer", "left_ear"), ("mouth_right", "mouth_left"),
    ("right_shoulder", "left_shoulder"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("right_wrist", "right_pinky"), ("right_wrist", "right_index"),
    ("right_wrist", "right_thumb"), ("right_pinky", "right_index"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("left_wrist", "left_pinky"),
    ("left_wrist", "left_index"), ("left_wrist", "left_thumb"), ("left_pinky", "left_index"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip"), ("right_hip", "left_hip"),
    ("right_hip", "right_knee"), ("left_hip", "left_knee"), ("right_knee", "right_ankle"),
    ("left_knee", "left_ankle"), ("right_ankle", "right_heel"), ("left_ankle", "left_heel"),
    ("right_heel", "right_foot_index"), ("left_heel", "left_foot_index"),
    ("right_ankle", "right_foot_index"), ("left_ankle", "left_foot_index"),
)

MEDIAPIPE33 = _sport_skeleton("mediapipe33", _MEDIAPIPE_JOINTS, _MEDIAPIPE_EDGES, foot="ankle")

BUILTIN_SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, H36M17, MEDIAPIPE33)}


def get_skeleton(spec: str | Mapping[str, Any], name: str = "inline") -> Skeleton:
    """A built-in skeleton by name, or an inline skeleton from its spec.

    Args:
        spec: a built-in name (``"coco17"``, ``"h36m17"``, ``"mediapipe33"``) or an inline spec mapping.
        name: the name given to an inline skeleton (e.g. the dataset's name).
    """
    if isinstance(spec, str):
        if spec not in BUILTIN_SKELETONS:
            raise ValueError(
                f"unknown skeleton '{spec}'; built-in skeletons are {sorted(BUILTIN_SKELETONS)}, "
                "or give an inline spec with 'joints', 'edges' and 'node_types'"
            )
        return BUILTIN_SKELETONS[spec]
    return Skeleton.from_spec(spec, name=name)
