"""Simulation of one recording: :func:`simulate_recording` and :class:`SimulatedRecording`.

A forward-kinematic body (pelvis position and heading, trunk lean/roll/twist, head pitch, per
side hip flexion/abduction, knee flexion, shoulder flexion/abduction, elbow flexion and forearm
abduction; bone lengths from the person's height and proportions) is driven by per-channel
trajectories: each sub-activity is a sequence of named phases, each phase one or more key poses
at key times, joined by monotone cubic (PCHIP) interpolation. The pelvis height follows the lower
foot (a soft minimum), so bending the knees lowers the body; ``lift`` raises it off the ground.

Variation that is *not* a fault: height and segment proportions, handedness/footedness (sides are
written as dominant/non-dominant roles), tempo and per-phase timing jitter, personal style offsets
(per person, shared by a sport's sub-activities) and per-recording offsets, amplitude and per-key
jitter on the joint angles, body heading, camera yaw/tilt/roll/translation, temporally correlated
sensor noise and dropped joints (short NaN gaps, sometimes a whole frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.signal import lfilter

from kept.data.demo.activities import (
    _ANGLE_CH,
    _CH_INDEX,
    _CHANNELS,
    _DOMINANCE,
    _LIMITS,
    _METRIC,
    _NEUTRAL_ROLE,
    _SIDE_CH,
    _SIGNED,
    _TEMPLATES,
    _TUNING,
    _check_category,
    _other,
)
from kept.data.demo.body import _forward_kinematics, _rot, _sample_person
from kept.data.demo.faults import _fault_spec


def _entropy(seed: int | Sequence[int]) -> list[int]:
    if isinstance(seed, (int, np.integer)):
        return [int(seed)]
    return [int(s) for s in seed]


# -- simulation -----------------------------------------------------------------------------------

@dataclass
class SimulatedRecording:
    """One simulated recording.

    Attributes:
        xyz: keypoints in the camera frame, metres, +y up, NaN where dropped.
        clean_xyz: the same without sensor noise and dropped joints.
        faults: the faults as written to faults.json (node_type, phase, t_start, t_end,
            magnitude, kind, side), in the order given.
        phases: phase name -> (t_start, t_end) as fractions of the duration (from the previous
            key to the phase's last key).
        channels: channel name -> trajectory (degrees; metres for fwd/lat/lift/rise), after
            style and faults.
        duration: seconds. person: the subject's parameters (height, hand, foot, skill, ...).

    Shapes:
        xyz, clean_xyz: (F, 17, 3) float32; channels[name]: (F,)
    """

    xyz: np.ndarray
    clean_xyz: np.ndarray
    faults: list[dict]
    phases: dict[str, tuple[float, float]]
    channels: dict[str, np.ndarray]
    duration: float
    person: dict
    category: str
    fps: float


def _role_targets(name: str, lead: str, dom: str) -> list[tuple[str, float]]:
    """Resolve a role channel name to raw channels and signs (dom: dominant side 'L'/'R')."""
    if "." not in name:
        if name not in _CH_INDEX:
            raise ValueError(f"unknown channel '{name}'")
        sign = (1.0 if dom == "L" else -1.0) if name in _SIGNED else 1.0
        return [(name, sign)]
    role, ch = name.split(".", 1)
    if ch not in _SIDE_CH:
        raise ValueError(f"unknown side channel '{name}'")
    roles = {"B": ("D", "N"), "D": ("D",), "N": ("N",), "A": (lead,), "P": (_other(lead),)}[role]
    nondom = "R" if dom == "L" else "L"
    return [(f"{dom if r == 'D' else nondom}.{ch}", 1.0) for r in roles]


def _apply_faults(values: np.ndarray, times: np.ndarray, keys: list[dict], faults: list[dict],
                  dom: str) -> None:
    """Apply fault offsets (to ``values``, (K, C)) and delays (to ``times``, (K, C)) in place."""
    gain = _TUNING["fault_gain"]
    for f in faults:
        m = f["magnitude"]
        for k, key in enumerate(keys):
            scale = 1.0 if key["phase"] == f["phase"] else f["also"].get(key["phase"], 0.0)
            if scale == 0.0 or (f["tags"] is not None and key["tag"] not in f["tags"]):
                continue
            for name, delta in f["offset"].items():
                for ch, sign in _role_targets(name, key["lead"], dom):
                    values[k, _CH_INDEX[ch]] += sign * delta * m * scale * gain
            if f["delay"] and key["phase"] == f["phase"] and k + 1 < len(keys):
                for name in f["delay"]["channels"]:
                    for ch, _ in _role_targets(name, key["lead"], dom):
                        c = _CH_INDEX[ch]
                        gap = times[k + 1, c] - times[k, c]
                        times[k, c] += min(0.9, f["delay"]["frac"] * gain) * m * gap


def _clip_limits(values: np.ndarray) -> None:
    for ch, i in _CH_INDEX.items():
        lim = _LIMITS.get(ch.split(".")[-1]) if "." in ch else None
        if lim:
            np.clip(values[:, i], lim[0], lim[1], out=values[:, i])


def _interpolate(values: np.ndarray, times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """PCHIP per channel; channels sharing key times go through one call.

    Shapes: values, times (K, C); t (F,) -> (F, C)
    """
    out = np.empty((t.size, values.shape[1]))
    base = times[:, 0]
    same = np.all(times == base[:, None], axis=0)
    if same.any():
        out[:, same] = PchipInterpolator(base, values[:, same], axis=0)(t)
    for c in np.flatnonzero(~same):
        out[:, c] = PchipInterpolator(times[:, c], values[:, c])(t)
    return out


def simulate_recording(
    rng_seed: int | Sequence[int],
    category: str,
    faults: Iterable[Mapping[str, Any]] = (),
    *,
    fps: float = 30.0,
    person_seed: int | Sequence[int] | None = None,
    noise: bool = True,
    dropout: bool = True,
) -> SimulatedRecording:
    """Simulate one recording of a sub-activity, with or without given faults.

    Every random draw (person, tempo, style, camera, noise, dropped joints) depends only on the
    seeds, never on ``faults``: the same seeds with and without a fault give the same person
    doing the same motion, differing only by the fault's kinematic effect.

    Args:
        rng_seed: entropy of the recording's random stream (int or sequence of ints).
        category: a sub-activity slug of :data:`ADR_SUBACTIVITIES`.
        faults: dicts with ``kind`` (from :data:`FAULT_CATALOGUE` of the category), ``magnitude``
            in [0, 1] and optionally ``phase`` (one of the kind's candidate phases; default the
            first).
        fps: frame rate.
        person_seed: entropy of the subject (default: derived from ``rng_seed``).
        noise, dropout: add sensor noise / NaN gaps to ``xyz``.

    Each returned fault's ``t_start``/``t_end`` bound the frames where the fault alone changes
    some joint-angle channel by at least 30 % of its largest change (first to last such frame),
    as fractions of the duration.
    """
    sport = _check_category(category)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    specs = [_fault_spec(category, f) for f in faults]
    rng = np.random.default_rng(_entropy(rng_seed))
    prng = np.random.default_rng(_entropy(person_seed) if person_seed is not None
                                 else _entropy(rng_seed) + [7919])
    person = _sample_person(prng, sport)
    dom = person["hand"] if _DOMINANCE[sport] == "hand" else person["foot"]

    # key poses and times (all random draws happen here, before any fault)
    keys = _TEMPLATES[category](rng)
    tempo = float(rng.uniform(0.85, 1.15)) * (1.0 - _TUNING["skill_tempo"] * person["skill"])
    durs = np.array([k["dur"] for k in keys]) * tempo * np.exp(rng.normal(0.0, 0.12, len(keys)))
    durs[0] = float(rng.uniform(0.2, 0.45))
    tail = float(rng.uniform(0.3, 0.55))
    key_t = np.cumsum(durs)
    T = float(key_t[-1] + tail)
    n_frames = max(int(round(T * fps)), 8)
    T = n_frames / fps

    C = len(_CHANNELS)
    values = np.zeros((len(keys), C))
    current = np.zeros(C)
    for name, v in _NEUTRAL_ROLE.items():
        for ch, sign in _role_targets(name, "D", dom):
            current[_CH_INDEX[ch]] = v * sign
    neutral = current.copy()
    for k, key in enumerate(keys):
        for name, v in key["pose"].items():
            for ch, sign in _role_targets(name, key["lead"], dom):
                current[_CH_INDEX[ch]] = v * sign
        values[k] = current
    # style: amplitude around neutral, personal and recording offsets, per-key jitter
    ang = np.array([_CH_INDEX[c] for c in _ANGLE_CH])
    amp = (rng.normal(1.0, 0.08) + rng.normal(0.0, 0.06, ang.size)
           + _TUNING["skill_amp"] * person["skill"])
    values[:, ang] = neutral[ang] + amp * (values[:, ang] - neutral[ang])
    rec_off = rng.normal(0.0, 3.0, ang.size)
    pers_off = np.array([person["style"][c] for c in _ANGLE_CH])
    jitter_sd = float(np.clip(4.5 * (1.0 - _TUNING["skill_jitter"] * person["skill"]), 1.5, 8.0))
    values[:, ang] += pers_off + rec_off + rng.normal(0.0, jitter_sd, (len(keys), ang.size))
    h = person["height"]
    stride = h / 1.78 * float(np.clip(rng.normal(1.0, 0.06), 0.8, 1.2))
    for c in ("fwd", "lat", "rise"):
        values[:, _CH_INDEX[c]] *= stride
    jump = rng.normal(1.0 + _TUNING["skill_lift"] * person["skill"], 0.15)
    values[:, _CH_INDEX["lift"]] *= float(np.clip(jump, 0.5, 1.5))
    values[:, _CH_INDEX["yaw"]] += rng.normal(0.0, 5.0, len(keys))
    heading = float(rng.uniform(-np.pi, np.pi))
    cam_yaw = float(rng.uniform(-np.pi, np.pi))
    cam_tilt = float(np.deg2rad(np.clip(rng.normal(0.0, 6.0), -15, 15)))
    cam_roll = float(np.deg2rad(np.clip(rng.normal(0.0, 3.0), -8, 8)))
    cam_t = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-1.3, -0.5), rng.uniform(3.5, 7.0)])
    noise_sd = float(rng.uniform(0.01, 0.03))
    rho = math.exp(-1.0 / (fps * float(rng.uniform(0.06, 0.15))))
    burn = int(min(60, 5 * fps))
    white = rng.normal(0.0, 1.0, (n_frames + burn, 17, 3))
    drop_mask = _sample_dropout(rng, n_frames)

    t = np.arange(n_frames) / fps
    # hold the first and last poses (boundary keys at 0 and T)
    times = np.concatenate([[0.0], key_t, [T]])[:, None].repeat(C, axis=1)
    base_values = np.concatenate([values[:1], values, values[-1:]], axis=0)
    _clip_limits(base_values)  # before the faults too, so a fault's change is not eaten by a limit
    ext_keys = ([dict(keys[0], phase="_start", tag="")] + keys
                + [dict(keys[-1], phase="_end", tag="")])

    body = {k: v * h for k, v in person["props"].items()}
    grounded = sport != "rock_climbing"

    def channels_with(fault_specs: list[dict]) -> np.ndarray:
        vals, tms = base_values.copy(), times.copy()
        _apply_faults(vals, tms, ext_keys, fault_specs, dom)
        _clip_limits(vals)
        return _interpolate(vals, tms, t)

    ch = channels_with(specs)
    local = _forward_kinematics(ch, body, grounded)
    # world (heading) -> camera
    world = local @ _rot("y", np.array([heading]))[0].T
    center = np.nanmean(world.reshape(-1, 3), axis=0) * np.array([1.0, 0.0, 1.0])
    cam_r = _rot("x", np.array([cam_tilt]))[0] @ _rot("z", np.array([cam_roll]))[0] @ _rot(
        "y", np.array([cam_yaw]))[0]
    clean = (world - center) @ cam_r.T + cam_t
    xyz = clean.copy()
    if noise:
        jit = lfilter([math.sqrt(1.0 - rho * rho)], [1.0, -rho], white, axis=0)[burn:]
        xyz = xyz + noise_sd * jit
    if dropout:
        xyz[drop_mask] = np.nan

    # fault windows: each fault alone against the fault-free channels
    resolved = []
    if specs:
        base_ch = channels_with([])
        angle_idx = np.array([_CH_INDEX[c] for c in _ANGLE_CH] + [_CH_INDEX["yaw"]])
        for f in specs:
            diff = np.abs(channels_with([f])[:, angle_idx] - base_ch[:, angle_idx]).max(axis=1)
            t0, t1 = _window(diff, n_frames)
            resolved.append({"node_type": f["node_type"], "phase": f["phase"],
                             "t_start": t0, "t_end": t1, "magnitude": round(f["magnitude"], 3),
                             "kind": f["kind"], "side": _fault_side(f, ext_keys, dom)})
    phases: dict[str, tuple[float, float]] = {}
    prev = 0.0
    for k, key in enumerate(keys):
        start = phases.get(key["phase"], (prev / T, 0.0))[0]
        phases[key["phase"]] = (round(start, 4), round(key_t[k] / T, 4))
        prev = key_t[k]
    return SimulatedRecording(
        xyz=xyz.astype(np.float32), clean_xyz=clean.astype(np.float32), faults=resolved,
        phases=phases, channels={c: ch[:, i] for c, i in _CH_INDEX.items()}, duration=T,
        person={**{k: v for k, v in person.items() if k != "style"}, "dominant": dom},
        category=category, fps=float(fps),
    )


def _window(diff: np.ndarray, n: int) -> tuple[float, float]:
    """First to last frame where diff >= 30 % of its peak, as fractions of the duration."""
    peak = float(diff.max()) if diff.size else 0.0
    if peak <= 0:
        return 0.0, 1.0
    above = np.flatnonzero(diff >= 0.3 * peak)
    return round(int(above[0]) / n, 4), round((int(above[-1]) + 1) / n, 4)


def _fault_side(f: dict, keys: list[dict], dom: str) -> str:
    """left/right/both: the sides of the fault's main channels (>= half its largest change;
    trunk channels and delays count as both sides where they dominate)."""
    weights: dict[str, float] = dict(f["offset"])
    for name in f["delay"].get("channels", []):
        weights[name] = 1.0
    weights = {n: abs(v) for n, v in weights.items() if n.split(".")[-1] not in _METRIC}
    if not weights:
        return "both"
    top = max(weights.values())
    sides: set[str] = set()
    for key in keys:
        if key["phase"] != f["phase"] or (f["tags"] is not None and key["tag"] not in f["tags"]):
            continue
        for name, w in weights.items():
            if w < 0.5 * top:
                continue
            for ch, _ in _role_targets(name, key["lead"], dom):
                sides |= {ch[0]} if "." in ch else {"L", "R"}
    if sides == {"L"}:
        return "left"
    if sides == {"R"}:
        return "right"
    return "both"


def _sample_dropout(rng: np.random.Generator, n: int) -> np.ndarray:
    """NaN mask: 1-4 short gaps on single joints (mostly extremities), sometimes a whole frame."""
    mask = np.zeros((n, 17), dtype=bool)
    weights = np.ones(17)
    weights[[0, 1, 2, 3, 4, 9, 10, 15, 16]] = 3.0
    weights /= weights.sum()
    for _ in range(int(rng.integers(1, 5))):
        j = int(rng.choice(17, p=weights))
        length = int(rng.integers(2, 13))
        start = int(rng.integers(0, max(1, n - length)))
        mask[start:start + length, j] = True
    if rng.random() < 0.3:
        f = int(rng.integers(0, n))
        mask[f] = True
    return mask
