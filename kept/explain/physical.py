r"""Physical differences between two recordings, in the units a coach uses.

The two performances are first aligned in time by dynamic time warping (DTW) on their joint
angles, so that a phase ("the dip", "the release") means the same moment in both. Then, for
each of the model's K time segments of the *subject* recording (the one whose reasoning path
the report follows: by default the one with the lower score) and each joint of each node type,
the report gives

- the mean joint angle of each side over the segment, in degrees (the other recording's frames
  are those DTW matched to the segment), and their difference;
- the mean joint speed of each side, in length units of the keypoints per second (metres per
  second for world-coordinate extractors);
- the timing offset of the phase: when the other recording reaches the segment's start,
  against the subject, in milliseconds from each recording's own start;
- with the statistics branch, the score each side loses on that (segment, node) block.

Every finding says whether the subject's selected reasoning path watches it (``on_path``).
Findings are ordered by ``rank``; with ``path_first`` the path's steps come before the rest.
*Decision*: ``path_first`` is off by default. Measured on demo recordings no model or setting
was chosen on (the demo generator's seed 1, a model trained on seed 0's train split), the top
finding named a faulted joint in its faulted phase for 0.41 of faulted-versus-fault-free
comparisons in ``"local"`` order, and 0.32 with the path first: the selected path still misses
the fault too often for its steps to lead the report.

The orders:

- ``"local"`` (default): the phase-local part of the difference: each joint's angle and speed
  differences minus their median over the K segments, in units of ``|d angle| / 10 deg +
  |d speed| / mean speed of that joint``. A difference that persists over the whole
  performance (one person's build or style: a straighter arm throughout) ranks below one that
  appears in a single phase, which is what a fault of technique looks like.
- ``"size"``: the same units on the raw differences.
- ``"relevance"``: the subject's score lost on the block minus the other's (score units, from
  the statistics branch), ties broken by size; ``"size"`` without the branch.

*Decision*: segments are the model's equal-time segments of the subject recording, so that a
finding's segment is the segment of the path step that selected it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from kept.dtw import dtw
from pose.kinematics import fill_missing, joint_angles, joint_speeds
from pose.skeleton import Skeleton

__all__ = ["dtw", "Alignment", "align", "Finding", "physical_report", "RANKS", "sentence"]

RANKS = ("local", "size", "relevance")
ANGLE_SCALE_DEG = 10.0  #: the angle difference that counts as one unit of size in ``rank="size"``


@dataclass
class Alignment:
    """Frame correspondence of two recordings.

    Shapes:
        path: (L, 2) int, (frame of recording 1, frame of recording 2), monotone
    """

    path: np.ndarray
    cost: float  #: mean cost per step of the warping path (z-scored angle units)

    def matches(self, frames: np.ndarray, side: int) -> np.ndarray:
        """The frames of the other recording matched to ``frames`` of recording ``side`` (0 or 1).

        Shapes:
            frames: (n,) int; returns: (n',) int, sorted and unique
        """
        mask = np.isin(self.path[:, side], frames)
        return np.unique(self.path[mask, 1 - side])

    def warp(self, values: np.ndarray, side: int, length: int) -> np.ndarray:
        """``values`` of recording ``side`` on the timeline of the other recording: for each of
        its ``length`` frames, the mean of the matched frames' values.

        Shapes:
            values: (F_side, ...); returns: (length, ...)
        """
        out = np.zeros((length,) + values.shape[1:])
        count = np.zeros(length)
        np.add.at(out, self.path[:, 1 - side], values[self.path[:, side]])
        np.add.at(count, self.path[:, 1 - side], 1)
        return out / count.reshape((-1,) + (1,) * (values.ndim - 1))


def _angle_joints(skeleton: Skeleton) -> list[tuple[str, str]]:
    """(node type, joint) for every joint of every node type, in node order."""
    return [(node, joint) for node, members in skeleton.node_types.items() for joint in members]


def align(angles_1: np.ndarray, angles_2: np.ndarray, band: float | None = 0.3) -> Alignment:
    """DTW alignment of two recordings on their joint angles, each channel z-scored over both.

    Shapes:
        angles_1: (F1, J); angles_2: (F2, J) in any unit
    """
    both = np.concatenate([angles_1, angles_2])
    mu, sd = both.mean(axis=0), both.std(axis=0) + 1e-6
    z1, z2 = (angles_1 - mu) / sd, (angles_2 - mu) / sd
    cost = np.sqrt(((z1[:, None] - z2[None]) ** 2).mean(axis=-1))
    path, total = dtw(cost, band)
    return Alignment(path=path, cost=total / len(path))


@dataclass
class Finding:
    """One (segment, joint) row of the physical report; the sides are keyed by recording name."""

    segment: int  #: the model's segment k of the subject recording (0-based)
    node: str
    joint: str
    on_path: bool  #: the subject's selected path watches this node in this segment
    time: dict[str, list[float]]  #: seconds from each recording's start, [start, end]
    angle_deg: dict[str, float]  #: mean joint angle over the (aligned) segment
    angle_diff_deg: float  #: other minus subject
    speed: dict[str, float]  #: mean joint speed, keypoint length units per second
    speed_diff: float  #: other minus subject
    phase_offset_ms: float  #: other's aligned segment start minus the subject's, ms
    score_lost: dict[str, float] | None = None  #: statistics branch, score units, per side
    size: float = 0.0  #: |d angle| / 10 deg + |d speed| / the joint's mean speed
    local: float = 0.0  #: ``size`` of the difference minus the joint's median difference over segments
    relevance: float | None = None  #: subject's score lost minus the other's (statistics branch)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 3)
            elif isinstance(value, dict):
                out[key] = {k: (round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v])
                            for k, v in value.items()}
        return out


def _joint_label(joint: str) -> str:
    return joint.replace("_", " ")


def sentence(f: Finding | dict, subject: str, other: str) -> str:
    """A finding as one short sentence with numbers, e.g. ``segment 3 (1.38-2.08 s), right elbow:
    B 142 deg vs A 165 deg, B bends 23 deg more``; the speed and the phase timing are added when
    they differ by at least 20 % and 100 ms."""
    f = f.to_dict() if isinstance(f, Finding) else f
    t0, t1 = f["time"][subject]
    a_s, a_o = f["angle_deg"][subject], f["angle_deg"][other]
    verb = "bends" if a_s < a_o else "opens"  # a smaller interior angle is a deeper bend
    text = (f"segment {f['segment'] + 1} ({t0:.2f}-{t1:.2f} s), {_joint_label(f['joint'])}: "
            f"{subject} {a_s:.0f} deg vs {other} {a_o:.0f} deg, {subject} {verb} {abs(a_o - a_s):.0f} deg more")
    v_s, v_o = f["speed"][subject], f["speed"][other]
    if max(v_s, v_o) > 0 and abs(v_o - v_s) / max(v_s, v_o) >= 0.2:
        text += f", moves {'slower' if v_s < v_o else 'faster'} ({v_s:.2f} vs {v_o:.2f} per s)"
    if abs(f["phase_offset_ms"]) >= 100:
        text += (f"; {other} reaches this phase {abs(f['phase_offset_ms']):.0f} ms "
                 f"{'later' if f['phase_offset_ms'] > 0 else 'earlier'}")
    return text


def physical_report(
    xyz_1: np.ndarray, xyz_2: np.ndarray, fps_1: float, fps_2: float, skeleton: Skeleton,
    names: tuple[str, str], depth: int, subject: int, path: Sequence[str],
    penalties: tuple[np.ndarray, np.ndarray] | None = None, rank: str = "local", path_first: bool = False,
    band: float | None = 0.3, up_axis: str = "y",
) -> dict:
    """The physical-difference table of a pair (see the module docstring).

    Args:
        xyz_1, xyz_2: the two recordings' keypoints as the model sees them (prepared), NaN where
            missing.
        names: the two recordings' names (the keys of each finding's per-side values).
        depth: K, the number of time segments.
        subject: 0 or 1, the recording whose segments and path the report follows.
        path: the subject's selected path, one node type per segment (K,).
        penalties: per recording, the score lost per (segment, node) block (K, B), in score
            units, from the statistics branch; or None.
        rank: ``"local"``, ``"size"`` or ``"relevance"`` (module docstring).
        path_first: list the findings on the subject's selected path before the rest.
        band: the DTW band (fraction of the longer length), or None.

    Shapes:
        xyz_1: (F1, P, 3); xyz_2: (F2, P, 3)

    Returns:
        ``{"subject", "other", "rank", "path_first", "alignment_cost", "speed_units",
        "findings": [...], "joint_angle_diff_deg": {...}, "curves": {...}}``: findings as dicts
        in report order; ``joint_angle_diff_deg`` is each node joint's mean absolute angle
        difference over the aligned performance (degrees, largest first); ``curves`` holds the angle
        curves (degrees) of every node joint of both recordings on the subject's timeline, for
        the aligned-curves plot (``{"time": (F,), names[0]: {joint: (F,)}, names[1]: ...}``).

    Raises:
        ValueError: a bad ``rank``, ``subject``, or a path whose length is not ``depth``.
    """
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
    if subject not in (0, 1):
        raise ValueError(f"subject must be 0 or 1, got {subject}")
    if len(path) != depth:
        raise ValueError(f"the path has {len(path)} steps, the model {depth} segments")
    pairs = _angle_joints(skeleton)
    joints = [j for _, j in pairs]
    xyz = [fill_missing(np.asarray(x, dtype=np.float64)) for x in (xyz_1, xyz_2)]
    fps = (float(fps_1), float(fps_2))
    angles = [np.degrees(joint_angles(x, skeleton, joints, up_axis) * np.pi) for x in xyz]  # (F, J)
    speeds = [joint_speeds(x, f)[:, [skeleton.index(j) for j in joints]] for x, f in zip(xyz, fps)]  # (F, J)
    alignment = align(angles[0], angles[1], band)
    s, o = subject, 1 - subject
    frames_s = angles[s].shape[0]
    duration_s = frames_s / fps[s]
    node_index = {n: b for b, n in enumerate(skeleton.node_names)}
    member = [skeleton.node_types[n].index(j) for n, j in pairs]  # each joint's place in its node type
    findings: list[Finding] = []
    for k in range(depth):
        lo, hi = int(round(k * frames_s / depth)), max(int(round((k + 1) * frames_s / depth)), int(round(k * frames_s / depth)) + 1)
        own = np.arange(lo, min(hi, frames_s))
        other = alignment.matches(own, s)
        t_s = [k * duration_s / depth, (k + 1) * duration_s / depth]
        t_o = [other[0] / fps[o], (other[-1] + 1) / fps[o]]
        offset = (t_o[0] - t_s[0]) * 1000.0
        for col, (node, joint) in enumerate(pairs):
            a_s, a_o = float(angles[s][own, col].mean()), float(angles[o][other, col].mean())
            v_s, v_o = float(speeds[s][own, col].mean()), float(speeds[o][other, col].mean())
            scale = float(np.concatenate([speeds[0][:, col], speeds[1][:, col]]).mean()) + 1e-9
            lost = None
            relevance = None
            if penalties is not None:
                at = (k, node_index[node]) if penalties[0].ndim == 2 else (k, node_index[node], member[col])
                lost = {names[s]: float(penalties[s][at]), names[o]: float(penalties[o][at])}
                relevance = lost[names[s]] - lost[names[o]]
            findings.append(Finding(
                segment=k, node=node, joint=joint, on_path=path[k] == node,
                time={names[s]: t_s, names[o]: t_o}, angle_deg={names[s]: a_s, names[o]: a_o},
                angle_diff_deg=a_o - a_s, speed={names[s]: v_s, names[o]: v_o}, speed_diff=v_o - v_s,
                phase_offset_ms=offset, score_lost=lost,
                size=abs(a_o - a_s) / ANGLE_SCALE_DEG + abs(v_o - v_s) / scale, relevance=relevance))

    for joint in joints:  # the phase-local part of each joint's difference: minus its median over segments
        rows = [f for f in findings if f.joint == joint]
        da = np.array([f.angle_diff_deg for f in rows])
        dv = np.array([f.speed_diff for f in rows])
        scale = float(np.mean([np.mean(list(f.speed.values())) for f in rows])) + 1e-9
        for f, a, v in zip(rows, da - np.median(da), dv - np.median(dv)):
            f.local = abs(a) / ANGLE_SCALE_DEG + abs(v) / scale

    def key(f: Finding):
        first = (not f.on_path,) if path_first else ()
        if rank == "relevance" and f.relevance is not None:
            return first + (-f.relevance, -f.size)
        return first + (-(f.local if rank == "local" else f.size),)

    findings.sort(key=key)
    time_s = np.arange(frames_s) / fps[s]
    curves = {"time": time_s, names[s]: {j: angles[s][:, c] for c, j in enumerate(joints)},
              names[o]: {j: alignment.warp(angles[o][:, c], o, frames_s) for c, j in enumerate(joints)}}
    mean_abs = {j: float(np.mean(np.abs(curves[names[s]][j] - curves[names[o]][j]))) for j in joints}
    return {
        "subject": names[s], "other": names[o], "rank": rank if (rank != "relevance" or penalties is not None) else "size",
        "path_first": path_first,
        "alignment_cost": round(alignment.cost, 4),
        "speed_units": "keypoint length units per second (metres per second for world coordinates)",
        "findings": [f.to_dict() for f in findings],
        "joint_angle_diff_deg": {j: round(v, 3) for j, v in sorted(mean_abs.items(), key=lambda x: -x[1])},
        "curves": curves,
    }
