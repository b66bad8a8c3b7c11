"""A deterministic generator of demo data in the ADR format (keypoint-folder layout).

The real ADR dataset (KEPT paper: Ego-Exo4D sports recordings with expert scores 1-10, expert
commentary and LLM difference descriptions of pairs within a sub-activity) is licensed. This
module simulates data of the same shape with real kinematic content, so that every part of the
library can be run and tested end to end::

    <out>/dataset.json        name, fps, score_range [1, 10], skeleton coco17, up_axis y, generator
    <out>/samples.csv         id,split,category,score,subject,commentary,sport
    <out>/keypoints/<id>.npy  float32 (frames, 17, 3), metres, +y up, NaN for dropped joints
    <out>/pairs.csv           id_a,id_b,split,description (all unordered pairs per sub-activity
                              and split)
    <out>/faults.json         {id: [{node_type, phase, t_start, t_end, magnitude, kind, side}]}

``t_start``/``t_end`` in ``faults.json`` are fractions of the recording's duration (segment k of
K covers [k/K, (k+1)/K)), measured where the fault changes the joint-angle trajectories by at
least 30 % of its peak change (see :func:`simulate_recording`).

Simulation
----------
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

Technique faults come from :data:`FAULT_CATALOGUE` (data: a tuple of dicts per sub-activity).
Each fault has a node type (elbow, shoulder, hip, knee), a phase, a magnitude in [0, 1], a
prevalence (relative sampling weight: two common faults per sub-activity) and an effect:
``offset`` (degrees added to role channels at the phase's key poses, optionally also at other
phases with a scale) or ``delay`` (the channels reach the phase's key pose late by
``frac * magnitude`` of the time to the next key: a timing fault that global statistics barely
see). Each recording gets 0-3 distinct faults. The subject's skill (N(0, 1), per person) makes
faults fewer and smaller and shows globally (quicker tempo, higher jumps, steadier and fuller
motion). Scores: ``9.2 - 3.0 * sum(weight * magnitude) + 0.6 * skill + N(0, 0.35)`` (the last
term: expert disagreement), clipped to [1, 10] and rounded to 0.1. Commentary and pair
descriptions are composed from the faults with sampled templates.

Random streams are seeded per recording from ``(seed, category, split, index)`` (and the person
from ``(seed, sport, split, index)``: the same subject performs all of a sport's sub-activities),
so changing the counts does not reshuffle the recordings that remain.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.signal import lfilter

__all__ = [
    "ADR_SUBACTIVITIES",
    "FAULT_CATALOGUE",
    "GENERATOR_VERSION",
    "SimulatedRecording",
    "generate_demo",
    "load_faults",
    "simulate_recording",
    "sample_faults",
    "score_from_faults",
]

GENERATOR_VERSION = 1

#: sport -> its sub-activity slugs (the ``category`` column).
ADR_SUBACTIVITIES: dict[str, tuple[str, ...]] = {
    "basketball": ("mid_range_shooting", "mikan_layup", "reverse_layup"),
    "soccer": ("penalty_kick", "juggling", "dribbling"),
    "rock_climbing": ("climbing",),
}
_SPORT_OF = {c: s for s, cats in ADR_SUBACTIVITIES.items() for c in cats}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}

# -- body model -------------------------------------------------------------------------------
_GLOBAL_CH = ("fwd", "lat", "lift", "rise", "yaw", "pitch", "roll", "twist", "head")
_SIDE_CH = ("hip_flex", "hip_abd", "knee", "sh_flex", "sh_abd", "elbow", "fore_abd")
_CHANNELS = _GLOBAL_CH + tuple(f"{s}.{c}" for s in "LR" for c in _SIDE_CH)
_CH_INDEX = {c: i for i, c in enumerate(_CHANNELS)}
#: Global channels whose sign follows the dominant side (+ = towards the dominant side).
_SIGNED = ("lat", "yaw", "roll", "twist")
#: Channels in metres; all others are degrees.
_METRIC = ("fwd", "lat", "lift", "rise")
_ANGLE_CH = tuple(c for c in _CHANNELS if c not in _METRIC and c != "yaw")
_NEUTRAL_ROLE = {
    "fwd": 0.0, "lat": 0.0, "lift": 0.0, "rise": 0.0, "yaw": 0.0, "pitch": 5.0, "roll": 0.0,
    "twist": 0.0, "head": 0.0, "B.hip_flex": 3.0, "B.hip_abd": 4.0, "B.knee": 6.0,
    "B.sh_flex": 8.0, "B.sh_abd": 8.0, "B.elbow": 15.0, "B.fore_abd": 0.0,
}
#: Physiological limits (degrees) applied after style and faults.
_LIMITS = {"knee": (0.0, 150.0), "elbow": (0.0, 155.0), "hip_abd": (-10.0, 70.0),
           "sh_flex": (-60.0, 180.0), "sh_abd": (-10.0, 130.0), "hip_flex": (-45.0, 130.0)}
#: Personal style spread (degrees, sd) per channel kind.
_STYLE_SD = {"hip_flex": 6.0, "hip_abd": 3.0, "knee": 7.0, "sh_flex": 8.0, "sh_abd": 6.0,
             "elbow": 8.0, "fore_abd": 3.0, "pitch": 4.0, "roll": 2.0, "twist": 4.0, "head": 6.0}
#: Bone lengths as fractions of height.
_BODY = {"thigh": 0.245, "shank": 0.25, "upper_arm": 0.172, "forearm": 0.15, "torso": 0.29,
         "shoulder_w": 0.23, "hip_w": 0.11, "neck": 0.085, "ankle_h": 0.04}

#: Knobs of the simulation's difficulty (changing them changes the data: bump GENERATOR_VERSION).
#: fault_gain scales every fault's offsets and delays; style_gain the personal style spread;
#: skill_* tie the subject's skill (N(0, 1)) to the score (points per sd), to global kinematics
#: (tempo, jump height, per-key jitter, range of motion) and to fewer/smaller faults.
_TUNING = {"fault_gain": 1.2, "style_gain": 1.0, "skill_score": 0.6, "skill_tempo": 0.06,
           "skill_lift": 0.18, "skill_jitter": 0.25, "skill_faults": 0.7, "skill_magnitude": 0.15,
           "skill_amp": 0.05}

_COCO = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)


def _key(phase: str, dur: float, pose: Mapping[str, float], lead: str = "D", tag: str = "") -> dict:
    return {"phase": phase, "dur": float(dur), "pose": dict(pose), "lead": lead, "tag": tag}


def _other(role: str) -> str:
    return "N" if role == "D" else "D"


# -- sub-activity templates ---------------------------------------------------------------------
# Each returns the key poses: phase name, duration from the previous key (s; the first key's
# duration is the lead-in), a partial pose in role channels (B. both sides, D./N. dominant or
# not, A./P. the key's lead side or the other one; lat/yaw/roll/twist positive towards the
# dominant side) and the lead role. Unlisted channels keep their previous value.

def _tpl_mid_range_shooting(rng: np.random.Generator) -> list[dict]:
    return [
        _key("set", 0.35, {"B.knee": 15, "B.hip_flex": 10, "pitch": 8, "B.sh_flex": 35,
                           "B.sh_abd": 12, "B.elbow": 105, "head": -5}),
        _key("dip", 0.55, {"B.knee": 62, "B.hip_flex": 48, "pitch": 24, "B.sh_flex": 45,
                           "B.elbow": 112, "head": -10}),
        _key("rise", 0.32, {"B.knee": 18, "B.hip_flex": 12, "pitch": 8, "D.sh_flex": 125,
                            "D.elbow": 95, "D.sh_abd": 12, "N.sh_flex": 115, "N.sh_abd": 28,
                            "N.elbow": 80, "lift": 0.08, "head": 5}),
        _key("release", 0.18, {"B.knee": 4, "B.hip_flex": 0, "pitch": 3, "lift": 0.28,
                               "D.sh_flex": 158, "D.elbow": 12, "D.sh_abd": 8, "N.sh_flex": 125,
                               "N.elbow": 60, "N.sh_abd": 30, "head": 8}),
        _key("landing", 0.33, {"lift": 0.0, "B.knee": 40, "B.hip_flex": 30, "pitch": 12,
                               "D.sh_flex": 140, "D.elbow": 35, "N.sh_flex": 70, "N.elbow": 40}),
        _key("recover", 0.5, {"B.knee": 12, "B.hip_flex": 8, "pitch": 6, "D.sh_flex": 40,
                              "D.elbow": 50, "N.sh_flex": 25, "N.elbow": 30, "head": 0,
                              "B.sh_abd": 10}),
    ]


def _tpl_mikan_layup(rng: np.random.Generator) -> list[dict]:
    return [
        _key("ready", 0.3, {"B.knee": 20, "B.hip_flex": 15, "pitch": 12, "B.sh_flex": 60,
                            "B.elbow": 90, "head": 10}),
        _key("take_off_strong", 0.45, {"lat": 0.45, "yaw": 15, "N.knee": 45, "N.hip_flex": 30,
                                       "D.hip_flex": 50, "D.knee": 70, "pitch": 16,
                                       "B.sh_flex": 85, "B.elbow": 85}),
        _key("lay_in_strong", 0.35, {"lift": 0.3, "D.hip_flex": 80, "D.knee": 95,
                                     "N.hip_flex": 5, "N.knee": 10, "D.sh_flex": 165,
                                     "D.elbow": 15, "D.sh_abd": 10, "N.sh_flex": 90,
                                     "N.elbow": 70, "pitch": 3, "head": 25}),
        _key("landing_strong", 0.35, {"lift": 0.0, "B.knee": 38, "B.hip_flex": 28,
                                      "D.sh_flex": 120, "D.elbow": 45, "N.sh_flex": 70,
                                      "pitch": 12, "head": 10}),
        _key("take_off_weak", 0.5, {"lat": -0.45, "yaw": -15, "D.knee": 45, "D.hip_flex": 30,
                                    "N.hip_flex": 50, "N.knee": 70, "pitch": 16,
                                    "B.sh_flex": 85, "B.elbow": 85, "head": 5}, lead="N"),
        _key("lay_in_weak", 0.35, {"lift": 0.3, "N.hip_flex": 80, "N.knee": 95, "D.hip_flex": 5,
                                   "D.knee": 10, "N.sh_flex": 165, "N.elbow": 15, "N.sh_abd": 10,
                                   "D.sh_flex": 90, "D.elbow": 70, "pitch": 3, "head": 25},
             lead="N"),
        _key("landing_weak", 0.35, {"lift": 0.0, "B.knee": 38, "B.hip_flex": 28,
                                    "N.sh_flex": 120, "N.elbow": 45, "D.sh_flex": 70,
                                    "pitch": 12, "head": 10}, lead="N"),
        _key("recover", 0.5, {"lat": -0.3, "yaw": 0, "B.knee": 15, "B.hip_flex": 10,
                              "B.sh_flex": 40, "B.elbow": 80, "pitch": 8, "head": 0}),
    ]


def _tpl_reverse_layup(rng: np.random.Generator) -> list[dict]:
    return [
        _key("approach", 0.3, {"B.knee": 25, "B.hip_flex": 20, "pitch": 18, "D.sh_flex": 30,
                               "D.elbow": 60, "N.sh_flex": 30, "N.sh_abd": 20, "N.elbow": 70}),
        _key("approach", 0.32, {"fwd": 0.9, "lat": -0.1, "D.hip_flex": 40, "D.knee": 60,
                                "N.hip_flex": -10, "N.knee": 15, "D.sh_flex": 40,
                                "D.elbow": 70, "N.sh_flex": 20}),
        _key("approach", 0.32, {"fwd": 1.8, "lat": -0.2, "N.hip_flex": 40, "N.knee": 60,
                                "D.hip_flex": -10, "D.knee": 15, "D.sh_flex": 25,
                                "D.elbow": 50}),
        _key("gather", 0.3, {"fwd": 2.5, "lat": -0.3, "B.knee": 45, "B.hip_flex": 35,
                             "D.hip_flex": 45, "N.hip_flex": 10, "pitch": 22, "B.sh_flex": 60,
                             "B.elbow": 95, "N.sh_abd": 12}),
        _key("take_off", 0.25, {"fwd": 2.9, "lat": -0.4, "lift": 0.1, "N.knee": 35,
                                "N.hip_flex": 15, "D.hip_flex": 70, "D.knee": 90, "yaw": 30,
                                "twist": 15, "pitch": 10, "B.sh_flex": 100, "B.elbow": 80}),
        _key("lay_in", 0.3, {"fwd": 3.2, "lat": -0.5, "lift": 0.35, "yaw": 70, "twist": 30,
                             "head": 25, "D.sh_flex": 170, "D.elbow": 20, "D.sh_abd": 25,
                             "N.sh_flex": 80, "N.elbow": 60, "N.hip_flex": 5, "N.knee": 10,
                             "pitch": -5}),
        _key("landing", 0.35, {"fwd": 3.4, "lift": 0.0, "B.knee": 40, "B.hip_flex": 30,
                               "pitch": 12, "D.sh_flex": 100, "D.elbow": 40, "twist": 0,
                               "yaw": 80, "head": 5}),
        _key("recover", 0.5, {"B.knee": 15, "B.hip_flex": 10, "pitch": 6, "B.sh_flex": 25,
                              "B.elbow": 40, "B.sh_abd": 10, "head": 0}),
    ]


def _tpl_penalty_kick(rng: np.random.Generator) -> list[dict]:
    return [
        _key("run_up", 0.3, {"B.knee": 10, "B.hip_flex": 5, "pitch": 8, "B.sh_flex": 10,
                             "B.elbow": 30, "yaw": -20}),
        _key("run_up", 0.35, {"fwd": 0.8, "N.hip_flex": 40, "N.knee": 60, "D.hip_flex": -10,
                              "D.knee": 20, "pitch": 12, "D.sh_flex": 35, "N.sh_flex": -20,
                              "B.elbow": 80}),
        _key("run_up", 0.33, {"fwd": 1.7, "D.hip_flex": 40, "D.knee": 60, "N.hip_flex": -10,
                              "N.knee": 20, "N.sh_flex": 35, "D.sh_flex": -20}),
        _key("plant", 0.3, {"fwd": 2.5, "N.hip_flex": 25, "N.knee": 30, "D.hip_flex": -20,
                            "D.knee": 60, "pitch": 10, "N.sh_abd": 55, "N.sh_flex": 30,
                            "N.elbow": 40, "D.sh_abd": 20, "D.sh_flex": 0, "roll": -8,
                            "yaw": -5}),
        _key("swing", 0.18, {"fwd": 2.6, "D.hip_flex": -35, "D.knee": 105, "N.knee": 35,
                             "N.hip_flex": 20, "N.sh_abd": 70, "D.sh_flex": -25, "twist": -15,
                             "roll": -12}),
        _key("contact", 0.12, {"fwd": 2.7, "D.hip_flex": 35, "D.knee": 20, "N.knee": 30,
                               "pitch": 12, "N.sh_abd": 60, "D.sh_flex": 30, "twist": 10}),
        _key("follow_through", 0.3, {"fwd": 3.0, "D.hip_flex": 80, "D.knee": 15, "N.knee": 15,
                                     "lift": 0.05, "pitch": 5, "twist": 20, "N.sh_abd": 40,
                                     "D.sh_flex": 45, "roll": -4}),
        _key("recover", 0.5, {"fwd": 3.4, "lift": 0.0, "D.hip_flex": 10, "D.knee": 10,
                              "N.knee": 10, "B.sh_abd": 15, "B.sh_flex": 10, "B.elbow": 30,
                              "twist": 0, "roll": 0, "pitch": 6}),
    ]


def _tpl_juggling(rng: np.random.Generator) -> list[dict]:
    keys = [_key("settle", 0.35, {"N.knee": 18, "N.hip_flex": 8, "D.knee": 20, "D.hip_flex": 10,
                                   "pitch": 10, "B.sh_abd": 35, "B.elbow": 40, "B.sh_flex": 15,
                                   "head": -25})]
    alternating = rng.random() < 0.35
    n = 0
    for group in ("first_touches", "middle_touches", "last_touches"):
        for _ in range(int(rng.integers(2, 4))):
            lead = "N" if alternating and n % 2 else "D"
            keys.append(_key(group, 0.25, {"A.hip_flex": 45, "A.knee": 55, "A.hip_abd": 6,
                                           "P.hip_flex": 8, "P.knee": 18, "head": -28}, lead,
                             tag="touch"))
            keys.append(_key(group, 0.25, {"A.hip_flex": 8, "A.knee": 20, "A.hip_abd": 4,
                                           "head": -22}, lead, tag="reset"))
            n += 1
    keys.append(_key("recover", 0.45, {"B.knee": 10, "B.hip_flex": 5, "B.sh_abd": 15,
                                       "B.sh_flex": 30, "B.elbow": 80, "head": -10}))
    return keys


def _tpl_dribbling(rng: np.random.Generator) -> list[dict]:
    keys = [_key("acceleration", 0.3, {"B.knee": 20, "B.hip_flex": 15, "pitch": 14,
                                        "B.elbow": 85, "head": -15})]
    fwd = 0.0

    def stride(phase: str, lead: str, step: float, touch: bool = False, dur: float = 0.3) -> dict:
        nonlocal fwd
        fwd += step
        if touch:
            pose = {"A.hip_flex": 25, "A.knee": 35, "P.hip_flex": -5, "P.knee": 30, "pitch": 20,
                    "head": -22, "P.sh_flex": 20, "A.sh_flex": -10, "fwd": fwd}
        else:
            pose = {"A.hip_flex": 45, "A.knee": 75, "P.hip_flex": -15, "P.knee": 20,
                    "pitch": 15, "head": -12, "P.sh_flex": 35, "A.sh_flex": -25, "fwd": fwd}
        return _key(phase, dur, pose, lead, tag="touch" if touch else "stride")

    keys += [stride("acceleration", "D", 0.5), stride("acceleration", "N", 0.7)]
    keys += [stride("touch_run", "D", 0.55, touch=True), stride("touch_run", "N", 0.7),
             stride("touch_run", "D", 0.55, touch=True), stride("touch_run", "N", 0.7)]
    keys.append(_key("cut", 0.3, {"fwd": fwd + 0.4, "D.knee": 55, "D.hip_flex": 40,
                                  "N.hip_flex": 20, "N.knee": 40, "pitch": 25, "roll": -12,
                                  "B.sh_abd": 40, "B.sh_flex": 20, "head": -10}, "D"))
    keys.append(_key("cut", 0.3, {"fwd": fwd + 0.6, "lat": -0.5, "yaw": -50, "twist": -20,
                                  "N.hip_flex": 50, "N.knee": 70, "D.knee": 30, "D.hip_flex": 10,
                                  "pitch": 18, "roll": -5}, "N"))
    keys.append(_key("exit", 0.3, {"fwd": fwd + 1.0, "lat": -1.1, "twist": 0, "roll": 0,
                                   "D.hip_flex": 45, "D.knee": 75, "N.hip_flex": -15,
                                   "N.knee": 20, "B.sh_abd": 10, "N.sh_flex": 35,
                                   "D.sh_flex": -25}, "D", tag="stride"))
    keys.append(_key("exit", 0.3, {"fwd": fwd + 1.4, "lat": -1.7, "N.hip_flex": 45,
                                   "N.knee": 75, "D.hip_flex": -15, "D.knee": 20,
                                   "D.sh_flex": 35, "N.sh_flex": -25}, "N", tag="stride"))
    keys.append(_key("recover", 0.45, {"fwd": fwd + 1.6, "lat": -2.0, "B.knee": 15,
                                       "B.hip_flex": 10, "pitch": 8, "B.sh_flex": 10,
                                       "B.elbow": 40, "head": 0}))
    return keys


def _tpl_climbing(rng: np.random.Generator) -> list[dict]:
    hold = {"B.hip_flex": 40, "B.knee": 70, "B.hip_abd": 30, "pitch": -3, "B.sh_flex": 140,
            "B.elbow": 45, "B.sh_abd": 20, "head": 20}
    keys = [_key("start", 0.3, hold)]
    rise = 0.0
    for k, lead in enumerate(("D", "N", "D"), start=1):
        keys.append(_key(f"reach_{k}", 0.45, {"A.sh_flex": 170, "A.elbow": 10, "A.sh_abd": 15,
                                              "P.sh_flex": 130, "P.elbow": 70, "head": 30},
                         lead))
        rise += 0.35
        keys.append(_key(f"pull_{k}", 0.5, {"rise": rise, "B.sh_flex": 115, "B.elbow": 100,
                                            "B.sh_abd": 25, "pitch": -6, "head": 15,
                                            "B.hip_flex": 25, "B.knee": 40}, lead))
        keys.append(_key(f"step_{k}", 0.45, {"A.hip_flex": 85, "A.knee": 115, "A.hip_abd": 35,
                                             "P.hip_flex": 20, "P.knee": 40, "P.hip_abd": 25,
                                             "B.sh_flex": 135, "B.elbow": 60, "pitch": -2},
                         _other(lead)))
    keys.append(_key("rest", 0.4, {**hold, "rise": rise}))
    return keys


_TEMPLATES = {
    "mid_range_shooting": _tpl_mid_range_shooting,
    "mikan_layup": _tpl_mikan_layup,
    "reverse_layup": _tpl_reverse_layup,
    "penalty_kick": _tpl_penalty_kick,
    "juggling": _tpl_juggling,
    "dribbling": _tpl_dribbling,
    "climbing": _tpl_climbing,
}
#: Which dominance decides the sides: hand (basketball, climbing) or foot (soccer).
_DOMINANCE = {"basketball": "hand", "soccer": "foot", "rock_climbing": "hand"}

# -- fault catalogue ----------------------------------------------------------------------------
# kind, node_type, phases (candidates; one is drawn), weight (score cost per unit magnitude),
# offset {role channel: degrees (metres for lift) at magnitude 1} or delay {channels, frac},
# also {other phase: scale of the offset}, tags (only keys with these tags), bad / good phrases
# (third person, for commentary and pair descriptions) and why (consequence clauses).

def _F(kind, node, phases, weight, *, offset=None, delay=None, also=None, tags=None,
       prevalence=1.0, bad=(), good=(), why=()) -> dict:
    return {"kind": kind, "node_type": node, "phases": tuple(phases), "weight": float(weight),
            "prevalence": float(prevalence),
            "offset": dict(offset or {}), "delay": dict(delay or {}), "also": dict(also or {}),
            "tags": tuple(tags) if tags else None, "bad": tuple(bad), "good": tuple(good),
            "why": tuple(why)}


FAULT_CATALOGUE: dict[str, tuple[dict, ...]] = {
    "mid_range_shooting": (
        _F("shallow_dip", "knee", ["dip"], 1.0,
           offset={"B.knee": -30, "B.hip_flex": -18, "pitch": -6},
           prevalence=3.0,
           bad=["barely bends the knees in the dip", "sits too high in the dip",
                "has a shallow dip with little leg load"],
           good=["gets a deep knee bend in the dip", "loads the legs well in the dip"],
           why=["so the shot has to be pushed with the arms", "which costs range and rhythm"]),
        _F("stiff_landing", "knee", ["landing"], 0.6, offset={"B.knee": -26, "B.hip_flex": -16},
           prevalence=3.0,
           bad=["lands stiff-legged", "lands on locked knees instead of absorbing the landing"],
           good=["lands softly on bent knees", "absorbs the landing through the knees"],
           why=["which upsets the balance for the next play", "which is hard on the knees"]),
        _F("elbow_flare", "elbow", ["release"], 1.0,
           offset={"D.sh_abd": 30, "D.fore_abd": -32, "D.elbow": 15}, also={"rise": 0.7},
           bad=["flares the shooting elbow out at release",
                "lets the shooting elbow drift away from the body"],
           good=["keeps the shooting elbow tucked under the ball",
                 "keeps the elbow in line with the rim"],
           why=["so the ball comes off the hand sideways", "which pushes the shot off line"]),
        _F("incomplete_extension", "elbow", ["release"], 0.9, offset={"D.elbow": 40},
           bad=["does not fully extend the shooting arm at release",
                "cuts the release short with a bent elbow"],
           good=["extends the shooting arm fully at release",
                 "finishes the release with a straight arm"],
           why=["so the shot comes out flat", "which leaves the ball short"]),
        _F("low_release", "shoulder", ["release"], 0.9,
           offset={"D.sh_flex": -32, "N.sh_flex": -15}, also={"rise": 0.5},
           bad=["releases the ball from too low", "has a low release point"],
           good=["releases the ball high above the head", "gets a high release point"],
           why=["which makes the shot easy to block", "so the arc is flat"]),
        _F("shoulders_not_square", "shoulder", ["rise"], 0.8,
           offset={"twist": 28}, also={"release": 1.0},
           bad=["does not square the shoulders to the basket",
                "turns the shoulders away from the rim on the way up"],
           good=["keeps the shoulders square to the basket", "faces the rim with square shoulders"],
           why=["so the shot drifts sideways", "which makes the aim inconsistent"]),
        _F("weak_hip_drive", "hip", ["rise"], 0.9,
           offset={"B.hip_flex": 24, "pitch": 12, "lift": -0.06}, also={"release": 0.8},
           bad=["does not drive the hips through on the rise",
                "stays bent at the hips as the jump starts"],
           good=["drives the hips up fully on the rise",
                 "extends the hips powerfully into the jump"],
           why=["so the jump loses height", "which robs the shot of power from the legs"]),
        _F("late_release", "elbow", ["release"], 0.9,
           delay={"channels": ["D.elbow", "D.sh_flex"], "frac": 0.75},
           bad=["releases late, on the way down from the jump",
                "holds the ball too long and shoots while falling"],
           good=["releases the ball at the top of the jump",
                 "times the release at the peak of the jump"],
           why=["which breaks the rhythm of the shot", "so the power of the legs is wasted"]),
        _F("late_leg_drive", "knee", ["rise"], 0.8,
           delay={"channels": ["B.knee", "B.hip_flex"], "frac": 0.7},
           bad=["starts the leg drive late, after the arms",
                "lets the arms go before the legs extend"],
           good=["starts the shot from the legs, in sync with the arms",
                 "links the leg drive and the arm motion smoothly"],
           why=["so the shot looks disjointed", "which turns it into an all-arms shot"]),
    ),
    "mikan_layup": (
        _F("weak_hand_bent_elbow", "elbow", ["lay_in_weak"], 1.0,
           offset={"A.elbow": 45, "A.sh_flex": -10},
           prevalence=3.0,
           bad=["finishes the off-hand layup with a bent elbow",
                "does not extend the weak-hand arm on the lay-in"],
           good=["extends the off hand fully on the weak-side lay-in",
                 "finishes with a straight arm on the weak side"],
           why=["so the ball is pushed rather than laid in",
                "which makes the weak side unreliable"]),
        _F("no_knee_drive", "knee", ["lay_in_strong"], 1.0,
           offset={"A.knee": -45, "A.hip_flex": -35, "lift": -0.08}, also={"take_off_strong": 0.4},
           prevalence=3.0,
           bad=["does not drive the knee up on the strong-side layup",
                "keeps the lead knee low on the jump"],
           good=["drives the knee up hard on the strong-side layup",
                 "gets a strong knee drive into the jump"],
           why=["which costs height at the rim", "so the jump lacks lift"]),
        _F("low_reach", "shoulder", ["lay_in_strong"], 0.9, offset={"A.sh_flex": -35},
           bad=["does not reach up fully toward the rim",
                "lays the ball in with the arm short of full reach"],
           good=["reaches up fully toward the rim", "stretches the shooting arm high to the rim"],
           why=["so the ball has further to travel", "which makes the finish easier to block"]),
        _F("stiff_landing", "knee", ["landing_weak"], 0.6,
           offset={"B.knee": -26, "B.hip_flex": -16},
           bad=["lands stiffly after the weak-side layup",
                "lands on straight legs on the weak side"],
           good=["lands softly and balanced after each layup",
                 "absorbs every landing through the knees"],
           why=["which slows the transition to the next layup",
                "so the rhythm of the drill suffers"]),
        _F("no_hip_load", "hip", ["take_off_strong"], 0.8,
           offset={"B.hip_flex": -22, "pitch": -10, "P.knee": -20},
           bad=["does not sink the hips before the take-off",
                "takes off from a tall, upright stance"],
           good=["sinks the hips to load the take-off", "loads the hips well before jumping"],
           why=["so the jump has little spring", "which costs explosiveness"]),
        _F("late_arm_lift", "shoulder", ["lay_in_weak"], 0.8,
           delay={"channels": ["A.sh_flex", "A.elbow"], "frac": 0.7},
           bad=["lifts the off hand late on the weak side",
                "brings the weak-side arm up after the jump has peaked"],
           good=["brings the off hand up in time with the jump",
                 "times the weak-side arm lift with the jump"],
           why=["so the ball is released on the way down", "which wastes the jump"]),
        _F("late_take_off", "hip", ["take_off_weak"], 0.7,
           delay={"channels": ["B.hip_flex", "B.knee", "pitch"], "frac": 0.65},
           bad=["is late loading the hips for the weak-side take-off",
                "hesitates before the weak-side take-off"],
           good=["flows straight into the weak-side take-off",
                 "keeps a quick rhythm into the weak-side take-off"],
           why=["which breaks the rhythm of the drill", "so the drill loses its flow"]),
    ),
    "reverse_layup": (
        _F("flat_take_off", "knee", ["take_off"], 1.0,
           offset={"A.knee": -40, "A.hip_flex": -35, "lift": -0.05}, also={"lay_in": 0.7},
           prevalence=3.0,
           bad=["takes off without driving the knee up", "jumps flat without a knee drive"],
           good=["drives the knee up on the take-off", "gets a strong knee lift into the jump"],
           why=["so the finish is low", "which costs height under the rim"]),
        _F("bent_elbow_finish", "elbow", ["lay_in"], 0.9, offset={"A.elbow": 45},
           prevalence=3.0,
           bad=["finishes with a bent elbow instead of extending to the rim",
                "pushes the reverse finish with a bent arm"],
           good=["extends the arm fully to finish on the far side of the rim",
                 "finishes the reverse with a long, straight arm"],
           why=["so the ball is easy to block", "which makes the finish less soft"]),
        _F("no_reach_back", "shoulder", ["lay_in"], 0.9,
           offset={"A.sh_flex": -30, "twist": -25},
           bad=["does not reach back over the head for the reverse finish",
                "turns the shoulders too little to finish on the other side"],
           good=["reaches back over the head to use the rim as protection",
                 "turns the shoulders well for the reverse finish"],
           why=["so the rim does not protect the ball", "which exposes the ball to the defender"]),
        _F("upright_gather", "hip", ["gather"], 0.8,
           offset={"B.hip_flex": -25, "pitch": -14, "B.knee": -15},
           bad=["gathers the ball standing too upright", "does not bend at the hips in the gather"],
           good=["gathers low with the hips bent", "stays low through the gather"],
           why=["so the take-off lacks power", "which makes the ball easy to strip"]),
        _F("late_gather", "hip", ["gather"], 0.7,
           delay={"channels": ["B.hip_flex", "B.knee", "pitch"], "frac": 0.65},
           bad=["gathers late and rushes the last steps",
                "is late lowering the hips into the gather"],
           good=["times the gather smoothly with the last steps",
                 "lowers into the gather right on time"],
           why=["which throws off the footwork", "so the take-off is hurried"]),
        _F("ball_away_from_body", "elbow", ["take_off"], 0.7,
           offset={"B.sh_abd": 30, "B.fore_abd": -25, "B.elbow": -30},
           bad=["lets the elbows flare out on the take-off",
                "carries the ball away from the body with flared elbows"],
           good=["keeps the elbows in and the ball protected at take-off",
                 "protects the ball close to the body on the take-off"],
           why=["so the ball is exposed", "which invites a strip"]),
    ),
    "penalty_kick": (
        _F("stiff_plant_leg", "knee", ["plant"], 0.9,
           offset={"P.knee": -22, "P.hip_flex": -10}, also={"contact": 1.0},
           prevalence=3.0,
           bad=["plants on a stiff, straight standing leg", "does not flex the plant knee"],
           good=["plants with a flexed, stable standing knee", "keeps a soft plant knee"],
           why=["so the body cannot stay over the ball", "which costs balance at contact"]),
        _F("short_backswing", "hip", ["swing"], 0.9,
           offset={"A.hip_flex": 28, "A.knee": -35},
           prevalence=3.0,
           bad=["has a short backswing of the kicking leg",
                "does not draw the kicking leg back far enough"],
           good=["draws the kicking leg back fully before the strike",
                 "gets a long backswing with the kicking leg"],
           why=["so the shot lacks pace", "which takes power out of the strike"]),
        _F("cut_off_follow_through", "hip", ["follow_through"], 0.8,
           offset={"A.hip_flex": -40, "A.knee": 10},
           bad=["cuts off the follow-through after contact",
                "stops the kicking leg right after contact"],
           good=["follows through fully toward the target", "lets the kicking leg follow through"],
           why=["so the ball loses pace and direction", "which makes the placement unreliable"]),
        _F("no_balance_arm", "shoulder", ["contact"], 0.8,
           offset={"P.sh_abd": -45, "P.sh_flex": -15}, also={"swing": 1.0, "plant": 0.6},
           bad=["keeps the non-kicking arm tucked in instead of using it for balance",
                "does not open the balance arm"],
           good=["opens the non-kicking arm wide for balance",
                 "uses the balance arm well through the strike"],
           why=["so the upper body sways at contact", "which costs accuracy"]),
        _F("leaning_back", "hip", ["contact"], 0.9, offset={"pitch": -22, "P.hip_flex": -8},
           also={"follow_through": 0.6},
           bad=["leans back at contact", "gets the chest behind the ball and leans back"],
           good=["keeps the chest over the ball at contact", "stays over the ball at contact"],
           why=["so the shot tends to fly over the bar", "which lifts the ball too high"]),
        _F("late_knee_snap", "knee", ["contact"], 0.8,
           delay={"channels": ["A.knee"], "frac": 0.7},
           bad=["snaps the knee through late, after the hip has swung",
                "is late extending the kicking knee"],
           good=["times the knee snap with the hip swing", "extends the knee right at contact"],
           why=["so the foot meets the ball weakly", "which wastes the leg swing"]),
        _F("cramped_balance_arm", "elbow", ["swing"], 0.6,
           offset={"P.elbow": 55}, also={"contact": 1.0},
           bad=["keeps the balance arm bent and cramped",
                "holds the balance arm bent at the elbow"],
           good=["keeps the balance arm long and relaxed", "extends the balance arm naturally"],
           why=["so it does little for balance", "which stiffens the upper body"]),
    ),
    "juggling": (
        _F("straight_leg_touch", "knee", ["first_touches", "middle_touches", "last_touches"], 1.0,
           offset={"A.knee": -35}, tags=["touch"],
           prevalence=3.0,
           bad=["juggles with a straight, locked knee", "touches the ball with a stiff leg"],
           good=["keeps a soft knee on every touch", "cushions the touches with a relaxed knee"],
           why=["so the ball bounces away", "which makes the touches hard to control"]),
        _F("high_kick", "hip", ["first_touches", "middle_touches", "last_touches"], 0.8,
           offset={"A.hip_flex": 28}, tags=["touch"],
           prevalence=3.0,
           bad=["lifts the thigh too high on the touches", "kicks the ball up too high"],
           good=["keeps the touches low and controlled from the hip",
                 "keeps the thigh low on the touches"],
           why=["so the ball climbs too high", "which costs control"]),
        _F("dropped_arms", "shoulder", ["first_touches", "middle_touches", "last_touches"], 0.7,
           offset={"B.sh_abd": -28},
           bad=["lets the arms drop to the sides", "does not use the arms for balance"],
           good=["holds the arms out for balance", "uses the arms well for balance"],
           why=["so the balance wobbles", "which makes the standing leg work harder"]),
        _F("flailing_elbows", "elbow", ["first_touches", "middle_touches", "last_touches"], 0.6,
           offset={"B.elbow": 50, "B.sh_abd": 10},
           bad=["flails the arms with bent, jerky elbows", "pumps the elbows while juggling"],
           good=["keeps the arms quiet and relaxed", "keeps the elbows calm while juggling"],
           why=["which shows tension", "so the upper body is restless"]),
        _F("irregular_rhythm", "hip", ["first_touches", "middle_touches", "last_touches"], 0.9,
           delay={"channels": ["A.hip_flex", "A.knee"], "frac": 0.65}, tags=["touch"],
           bad=["loses the rhythm with late touches",
                "is late to some touches and breaks the rhythm"],
           good=["keeps an even rhythm from touch to touch", "juggles with a steady rhythm"],
           why=["so the ball has to be chased", "which makes the sequence scrappy"]),
        _F("leaning_back", "hip", ["first_touches", "middle_touches", "last_touches"], 0.7,
           offset={"pitch": -18},
           bad=["leans back while juggling", "sits back away from the ball"],
           good=["stays balanced over the standing leg", "keeps the weight over the ball"],
           why=["so the touches push the ball away", "which costs control"]),
    ),
    "dribbling": (
        _F("upright_running", "knee", ["touch_run"], 0.8, offset={"B.knee": -22, "pitch": -8},
           prevalence=3.0,
           bad=["runs upright with little knee bend", "dribbles tall with straight knees"],
           good=["stays low with bent knees while dribbling",
                 "dribbles with a low, bent-knee stance"],
           why=["so changes of pace are slow", "which makes the ball harder to protect"]),
        _F("high_cut", "hip", ["cut"], 1.0,
           offset={"B.hip_flex": -25, "B.knee": -25, "pitch": -12},
           prevalence=3.0,
           bad=["stays high through the cut instead of sinking the hips",
                "cuts without lowering the hips"],
           good=["sinks the hips to make a sharp cut", "drops the hips low into the cut"],
           why=["so the change of direction is wide", "which makes the cut easy to read"]),
        _F("straight_arms", "elbow", ["acceleration"], 0.6, offset={"B.elbow": -55},
           also={"touch_run": 0.7},
           bad=["runs with straight, stiff arms", "swings the arms without bending the elbows"],
           good=["drives the arms with bent elbows", "uses a compact arm swing"],
           why=["so the acceleration is sluggish", "which wastes energy"]),
        _F("arms_pinned", "shoulder", ["cut"], 0.7, offset={"B.sh_abd": -30, "B.sh_flex": -15},
           bad=["keeps the arms pinned to the body in the cut",
                "does not open the arms in the cut"],
           good=["opens the arms for balance in the cut", "uses the arms to balance the cut"],
           why=["so the balance suffers when turning", "which makes the turn wobbly"]),
        _F("late_body_turn", "hip", ["cut"], 0.9,
           delay={"channels": ["yaw", "twist", "B.hip_flex", "B.knee"], "frac": 0.7},
           bad=["turns the hips late in the cut",
                "is late turning the body into the new direction"],
           good=["turns the hips into the new direction right on time",
                 "turns the body smoothly with the cut"],
           why=["so the ball runs away in the cut", "which costs a step"]),
        _F("heavy_touch", "knee", ["touch_run"], 0.8,
           offset={"A.hip_flex": 22, "A.knee": 28}, tags=["touch"],
           bad=["takes heavy touches, swinging the leg too far",
                "pushes the ball too far with each touch"],
           good=["keeps the ball close with short touches", "takes light, close touches"],
           why=["so the ball gets away", "which gives a defender a chance"]),
    ),
    "climbing": (
        _F("bent_arm_reach", "elbow", ["reach_1", "reach_2", "reach_3"], 1.0,
           offset={"A.elbow": 45},
           prevalence=3.0,
           bad=["reaches with a bent arm instead of straightening it",
                "reaches with the elbow bent"],
           good=["reaches with a straight arm to the next hold",
                 "extends the arm fully to the hold"],
           why=["so the forearms tire quickly", "which wastes reach"]),
        _F("chicken_wing", "elbow", ["pull_1", "pull_2", "pull_3"], 0.9,
           offset={"B.sh_abd": 32, "B.fore_abd": -30, "B.elbow": 20},
           prevalence=3.0,
           bad=["chicken-wings the elbows out when pulling", "flares the elbows out on the pull"],
           good=["keeps the elbows down and close when pulling", "pulls with the elbows tucked"],
           why=["so the shoulders do all the work", "which pulls the body away from the wall"]),
        _F("short_reach", "shoulder", ["reach_1", "reach_2", "reach_3"], 0.8,
           offset={"A.sh_flex": -32},
           bad=["stops short of a full reach", "does not reach up fully from the shoulder"],
           good=["reaches fully from the shoulder", "reaches high and long"],
           why=["so more moves are needed", "which wastes energy"]),
        _F("hips_off_wall", "hip", ["step_1", "step_2", "step_3"], 0.9,
           offset={"pitch": 20, "B.hip_flex": 20},
           bad=["lets the hips sag away from the wall", "sticks the hips out from the wall"],
           good=["keeps the hips close to the wall", "holds the hips in to the wall"],
           why=["so the weight hangs on the arms", "which loads the arms"]),
        _F("low_step", "knee", ["step_1", "step_2", "step_3"], 0.9,
           offset={"A.hip_flex": -35, "A.knee": -35},
           bad=["takes small steps without bringing the knee up", "steps too low"],
           good=["steps high with a well-bent knee", "brings the foot up high on each step"],
           why=["so the arms must do more pulling", "which makes the climb inefficient"]),
        _F("late_step", "knee", ["step_1", "step_2", "step_3"], 0.8,
           delay={"channels": ["A.hip_flex", "A.knee"], "frac": 0.7},
           bad=["moves the feet late, pulling with the arms first", "is late bringing the foot up"],
           good=["moves the feet in time so the legs do the work", "steps up right on time"],
           why=["so the arms take the load", "which makes the climb jerky"]),
    ),
}
_FAULT_BY_KIND = {cat: {f["kind"]: f for f in faults} for cat, faults in FAULT_CATALOGUE.items()}

# -- small helpers ---------------------------------------------------------------------------------

def _entropy(seed: int | Sequence[int]) -> list[int]:
    if isinstance(seed, (int, np.integer)):
        return [int(seed)]
    return [int(s) for s in seed]


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _check_category(category: str) -> str:
    if category not in _SPORT_OF:
        raise ValueError(f"unknown sub-activity '{category}'; known: {sorted(_SPORT_OF)}")
    return _SPORT_OF[category]


def _rot(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about a basis axis (right-handed). Shapes: angle (F,) -> (F, 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    if axis == "x":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Shapes: rot (F, 3, 3), vec (F, 3) or (3,) -> (F, 3)."""
    if vec.ndim == 1:
        return rot @ vec
    return np.einsum("fij,fj->fi", rot, vec)


def _limb_dir(flex: np.ndarray, abd: np.ndarray, sign: float) -> np.ndarray:
    """Unit limb direction in the local frame (x left, y up, z forward).

    ``flex`` swings the limb forward from hanging down, ``abd`` outwards (``sign`` +1 for the
    left side, -1 for the right). Shapes: (F,) -> (F, 3).
    """
    return np.stack([sign * np.sin(abd) * np.cos(flex), -np.cos(abd) * np.cos(flex), np.sin(flex)],
                    axis=-1)


# -- people ---------------------------------------------------------------------------------------

def _sample_person(rng: np.random.Generator, sport: str) -> dict:
    """Height, proportions, dominance, skill and personal style offsets of one subject."""
    mean_h = {"basketball": 1.86, "soccer": 1.77, "rock_climbing": 1.74}[sport]
    height = float(np.clip(rng.normal(mean_h, 0.08), 1.5, 2.1))
    props = {k: float(v * np.clip(rng.normal(1.0, 0.035), 0.9, 1.1)) for k, v in _BODY.items()}
    hand = "R" if rng.random() < 0.85 else "L"
    foot = hand if rng.random() < 0.8 else ("L" if hand == "R" else "R")
    skill = float(np.clip(rng.normal(0.0, 1.0), -2.5, 2.5))
    style = {}
    for ch in _ANGLE_CH:
        kind = ch.split(".")[-1]
        style[ch] = float(rng.normal(0.0, _STYLE_SD[kind] * _TUNING["style_gain"]))
    return {"height": height, "props": props, "hand": hand, "foot": foot, "skill": skill,
            "style": style}


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


def _fault_spec(category: str, fault: Mapping[str, Any]) -> dict:
    kinds = _FAULT_BY_KIND[category]
    kind = fault.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown fault kind {kind!r} for '{category}'; known: {sorted(kinds)}")
    spec = kinds[kind]
    phase = fault.get("phase") or spec["phases"][0]
    if phase not in spec["phases"]:
        raise ValueError(f"fault '{kind}' happens in one of {list(spec['phases'])}, not '{phase}'")
    mag = float(fault.get("magnitude", 1.0))
    if not 0.0 <= mag <= 1.0:
        raise ValueError(f"fault magnitude must lie in [0, 1], got {mag}")
    return {**spec, "phase": phase, "magnitude": mag}


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


def _forward_kinematics(ch: np.ndarray, body: dict, grounded: bool) -> np.ndarray:
    """Joint positions of coco17 in the heading frame. Shapes: ch (F, C) -> (F, 17, 3)."""
    g = lambda name: ch[:, _CH_INDEX[name]]  # noqa: E731
    rad = np.deg2rad
    F = ch.shape[0]
    r_pel = _rot("y", rad(g("yaw")))
    r_trunk = (r_pel @ _rot("y", rad(g("twist"))) @ _rot("x", rad(g("pitch")))
               @ _rot("z", -rad(g("roll"))))
    r_head = r_trunk @ _rot("x", -rad(g("head")))
    L = body
    joints: dict[str, np.ndarray] = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        s = "L" if side == "left" else "R"
        hip = _apply(r_pel, np.array([sign * L["hip_w"] / 2, 0.0, 0.0]))
        hf, ha, kn = rad(g(f"{s}.hip_flex")), rad(g(f"{s}.hip_abd")), rad(g(f"{s}.knee"))
        knee = hip + L["thigh"] * _apply(r_pel, _limb_dir(hf, ha, sign))
        ankle = knee + L["shank"] * _apply(r_pel, _limb_dir(hf - kn, ha, sign))
        joints[f"{side}_hip"], joints[f"{side}_knee"], joints[f"{side}_ankle"] = hip, knee, ankle
    neck = _apply(r_trunk, np.array([0.0, L["torso"], 0.0]))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        s = "L" if side == "left" else "R"
        sh = neck + _apply(r_trunk, np.array([sign * L["shoulder_w"] / 2, -0.01, 0.0]))
        sf, sa = rad(g(f"{s}.sh_flex")), rad(g(f"{s}.sh_abd"))
        el, fa = rad(g(f"{s}.elbow")), rad(g(f"{s}.fore_abd"))
        elbow = sh + L["upper_arm"] * _apply(r_trunk, _limb_dir(sf, sa, sign))
        wrist = elbow + L["forearm"] * _apply(r_trunk, _limb_dir(sf + el, sa + fa, sign))
        joints[f"{side}_shoulder"] = sh
        joints[f"{side}_elbow"], joints[f"{side}_wrist"] = elbow, wrist
    hs = L["neck"] / _BODY["neck"]  # head scale (height-relative)
    head_c = neck + _apply(r_head, np.array([0.0, L["neck"], 0.01 * hs]))
    joints["nose"] = head_c + _apply(r_head, np.array([0.0, 0.0, 0.10 * hs * 0.95]))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        joints[f"{side}_eye"] = head_c + _apply(r_head, hs * np.array([sign * 0.033, 0.035, 0.085]))
        joints[f"{side}_ear"] = head_c + _apply(r_head, hs * np.array([sign * 0.075, 0.015, 0.0]))
    xyz = np.stack([joints[j] for j in _COCO], axis=1)  # (F, 17, 3), pelvis at the origin
    if grounded:
        a = xyz[:, [15, 16], 1]
        tau = 0.02
        lowest = -tau * np.logaddexp(-a[:, 0] / tau, -a[:, 1] / tau)
        height = L["ankle_h"] - lowest + g("lift")
    else:
        height = 1.0 + g("rise") + g("lift")
    offset = np.stack([g("lat"), height, g("fwd")], axis=-1)
    return xyz + offset[:, None, :]


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


# -- faults, scores, text -------------------------------------------------------------------------

def sample_faults(rng: np.random.Generator, category: str, skill: float = 0.0) -> list[dict]:
    """Draw 0-3 distinct faults (kind, phase, magnitude) of a sub-activity's catalogue.

    Kinds are drawn by their ``prevalence``; more skilled subjects (``skill`` > 0, in standard
    deviations) tend to have fewer and smaller faults.
    """
    _check_category(category)
    cat = FAULT_CATALOGUE[category]
    base = np.array([0.2, 0.35, 0.3, 0.15])
    base = base * np.exp(-_TUNING["skill_faults"] * skill * np.arange(4))
    n = int(rng.choice(4, p=base / base.sum()))
    prev = np.array([f.get("prevalence", 1.0) for f in cat], dtype=float)
    idx = rng.choice(len(cat), size=n, replace=False, p=prev / prev.sum())
    shrink = float(np.clip(1.0 - _TUNING["skill_magnitude"] * skill, 0.6, 1.4))
    out = []
    for i in sorted(int(i) for i in idx):
        spec = cat[i]
        phase = spec["phases"][int(rng.integers(len(spec["phases"])))]
        mag = float(np.clip(rng.uniform(0.25, 1.0) * shrink, 0.1, 1.0))
        out.append({"kind": spec["kind"], "phase": phase, "magnitude": round(mag, 3)})
    return out


def score_from_faults(faults: Iterable[Mapping[str, Any]], category: str, skill: float,
                      rng: np.random.Generator) -> float:
    """Expert score: 9.2 - 3.0 sum(weight * magnitude) + 0.6 skill + N(0, 0.35), in [1, 10].

    Rounded to 0.1.

    The N(0, 0.35) term mimics the disagreement of the experts whose mean is the score.
    """
    kinds = _FAULT_BY_KIND[category]
    penalty = sum(kinds[f["kind"]]["weight"] * float(f["magnitude"]) for f in faults)
    s = 9.2 - 3.0 * penalty + _TUNING["skill_score"] * skill + rng.normal(0.0, 0.35)
    return float(np.round(np.clip(s, 1.0, 10.0), 1))


_ACTION = {"mid_range_shooting": "jump shot", "mikan_layup": "Mikan drill",
           "reverse_layup": "reverse layup", "penalty_kick": "penalty kick",
           "juggling": "juggling sequence", "dribbling": "dribbling run", "climbing": "climb"}
_SUBJECT = {"mid_range_shooting": ("The player", "The shooter"),
            "mikan_layup": ("The player", "The athlete"),
            "reverse_layup": ("The player", "The athlete"),
            "penalty_kick": ("The player", "The kicker"),
            "juggling": ("The player", "The athlete"),
            "dribbling": ("The player", "The dribbler"),
            "climbing": ("The climber", "The athlete")}
_OPENERS = (
    (8.5, ("A clean, well-controlled {a}.", "Very good {a} overall.", "An excellent {a}.")),
    (6.5, ("A solid {a} with room to improve.", "A decent {a}.",
           "Good {a}, with a few details to fix.")),
    (4.5, ("An uneven {a}.", "This {a} has some clear flaws.", "A mixed {a}.")),
    (-1.0, ("A poor {a} overall.", "This {a} needs a lot of work.", "A weak {a}.")),
)
_MINOR = ("A small detail: {s} {b}", "Minor point: {s} {b}", "One thing to tidy up: {s} {b}")
_MAJOR = ("The main problem is that {s} {b}", "Most importantly, {s} {b}", "Biggest issue: {s} {b}")
_PLAIN = ("{S} {b}", "Watch how {s} {b}", "Note that {s} {b}")
_PRAISE = ("{S} {g}.", "Good work: {s} {g}.", "On the plus side, {s} {g}.", "Nice: {s} {g}.")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def make_commentary(faults: Sequence[Mapping[str, Any]], category: str, score: float,
                    rng: np.random.Generator) -> str:
    """A coach's 1-3 sentences from a recording's faults (and praise where a node is clean)."""
    kinds = _FAULT_BY_KIND[category]
    action = _ACTION[category]
    subj = _pick(rng, _SUBJECT[category])
    opener = next(_pick(rng, opts) for lo, opts in _OPENERS if score >= lo).format(a=action)
    sentences = [opener]
    ranked = sorted(faults, key=lambda f: -float(f["magnitude"]) * kinds[f["kind"]]["weight"])
    for f in ranked[:2]:
        spec = kinds[f["kind"]]
        m = float(f["magnitude"])
        tpl = _pick(rng, _MINOR if m < 0.45 else _MAJOR if m > 0.75 else _PLAIN)
        text = tpl.format(s=subj.lower(), S=subj, b=_pick(rng, spec["bad"]))
        if spec["why"] and rng.random() < 0.6:
            text += ", " + _pick(rng, spec["why"])
        sentences.append(_sentence(text) + ".")
    if len(sentences) < 3:
        faulty_nodes = {kinds[f["kind"]]["node_type"] for f in faults}
        clean = [s for s in FAULT_CATALOGUE[category]
                 if s["node_type"] not in faulty_nodes and s["offset"]]
        n_praise = 1 if faults else int(rng.integers(1, 3))
        if clean:
            picks = rng.choice(len(clean), size=min(n_praise, len(clean), 3 - len(sentences)),
                               replace=False)
            for i in picks:
                g = _pick(rng, clean[int(i)]["good"])
                sentences.append(_sentence(_pick(rng, _PRAISE).format(s=subj.lower(), S=subj, g=g)))
    return " ".join(sentences)


_ONE_SIDED = (
    "Player {g} {good}, whereas Player {w} {bad}.",
    "Player {w} {bad}, while Player {g} {good}.",
    "Unlike Player {g}, Player {w} {bad}.",
    "Player {g} {good}; Player {w}, by contrast, {bad}.",
)
_BOTH_WORSE = (
    "Both players share a flaw, but Player {w} {bad} more clearly than Player {g}.",
    "Player {w} {bad} more noticeably than Player {g}.",
)
_OVERALL_CLEAR = ("Overall, Player {w} performs better.",
                  "Player {w} gives the stronger performance overall.",
                  "On balance, Player {w}'s {a} is better.")
_OVERALL_SLIGHT = ("Player {w} is slightly better overall.",
                   "Overall, Player {w} has a small edge.")
_OVERALL_EVEN = ("Overall, the two performances are of similar quality.",
                 "Overall they are close in quality.")


def make_pair_description(rec1: Mapping[str, Any], rec2: Mapping[str, Any], category: str,
                          rng: np.random.Generator) -> str:
    """How Player 1 (rec1) and Player 2 (rec2) differ and who does what better.

    ``rec1``/``rec2`` need ``faults`` (kind, magnitude), ``score`` and ``duration``. Always
    names at least one difference, and the better player when the scores differ by >= 0.5.
    """
    kinds = _FAULT_BY_KIND[category]
    f1 = {f["kind"]: float(f["magnitude"]) for f in rec1["faults"]}
    f2 = {f["kind"]: float(f["magnitude"]) for f in rec2["faults"]}
    only1 = sorted(sorted(set(f1) - set(f2)), key=lambda k: -f1[k])  # no set order: hash seed
    only2 = sorted(sorted(set(f2) - set(f1)), key=lambda k: -f2[k])
    clauses: list[str] = []
    if only1 and only2 and rng.random() < 0.5:
        k1, k2 = only1.pop(0), only2.pop(0)
        clauses.append(
            f"Player 1 {_pick(rng, kinds[k2]['good'])}, whereas Player 2 "
            f"{_pick(rng, kinds[k1]['good'])} but {_pick(rng, kinds[k2]['bad'])}.")
    diffs = [(k, 2, 1) for k in only1] + [(k, 1, 2) for k in only2]  # (kind, good, worse)
    diffs.sort(key=lambda d: -(f1.get(d[0], 0.0) + f2.get(d[0], 0.0)))
    for kind, good, worse in diffs:
        if len(clauses) >= 3:
            break
        clauses.append(_pick(rng, _ONE_SIDED).format(
            g=good, w=worse, good=_pick(rng, kinds[kind]["good"]),
            bad=_pick(rng, kinds[kind]["bad"])))
    for kind in sorted(set(f1) & set(f2)):
        if len(clauses) >= 3:
            break
        if abs(f1[kind] - f2[kind]) >= 0.25:
            worse, good = (1, 2) if f1[kind] > f2[kind] else (2, 1)
            clauses.append(_pick(rng, _BOTH_WORSE).format(w=worse, g=good,
                                                          bad=_pick(rng, kinds[kind]["bad"])))
    if not clauses:
        d1, d2 = float(rec1["duration"]), float(rec2["duration"])
        quick, slow = (1, 2) if d1 < d2 else (2, 1)
        if max(d1, d2) / min(d1, d2) > 1.05:
            clauses.append(f"Player {quick} moves through the {_ACTION[category]} at a quicker "
                           f"tempo than Player {slow}.")
        else:
            clauses.append(f"Both players show the same technique, with Player {quick} marginally "
                           f"quicker through the {_ACTION[category]}.")
    diff = float(rec1["score"]) - float(rec2["score"])
    better = 1 if diff > 0 else 2
    if abs(diff) >= 1.0:
        overall = _pick(rng, _OVERALL_CLEAR)
    elif abs(diff) >= 0.5:
        overall = _pick(rng, _OVERALL_SLIGHT)
    else:
        overall = _pick(rng, _OVERALL_EVEN)
    return " ".join(clauses + [overall.format(w=better, a=_ACTION[category])])


# -- dataset generation ---------------------------------------------------------------------------

def _recording_plan(seed: int, category: str, split: str, index: int) -> dict:
    sport = _SPORT_OF[category]
    code = _SPLIT_CODE[split]
    base = [int(seed), _crc(category), code, int(index)]
    return {
        "id": f"{category}_{split}_{index:03d}",
        "sim_seed": base + [0],
        "fault_seed": base + [1],
        "text_seed": base + [2],
        "person_seed": [int(seed), _crc(sport), code, int(index), 9],
        "subject": f"{sport}_{split}_{index:03d}",
    }


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def generate_demo(
    out: str | Path,
    seed: int = 0,
    *,
    train_per_category: int = 24,
    test_per_category: int = 12,
    fps: float = 30.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate the ADR-format demo dataset into ``out`` and return its path.

    Deterministic: the same arguments give byte-identical files. The data are written into a
    sibling temp folder (``<out>.tmp-XXXX``) that is renamed onto ``out`` at the end, so an
    interrupted run leaves no partial dataset.

    Args:
        out: target folder; must be absent or empty unless ``overwrite`` (then it is replaced).
        seed: base seed.
        train_per_category, test_per_category: recordings per sub-activity and split.
        fps: frame rate of the keypoints.
        overwrite: replace a non-empty ``out``.
        progress: show a tqdm progress bar.

    Raises:
        FileExistsError: ``out`` is a non-empty folder (or a file) and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out} is not empty; pass overwrite=True to replace it or choose another folder")
    if train_per_category < 0 or test_per_category < 0:
        raise ValueError("recording counts must be >= 0")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    out.parent.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    plans = [(cat, split, i) for cat in _SPORT_OF
             for split, n in (("train", train_per_category), ("test", test_per_category))
             for i in range(n)]
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.tmp-"))
    try:
        os.chmod(tmp, 0o755)
        (tmp / "keypoints").mkdir()
        samples, faults_out = [], {}
        info: dict[tuple[str, str], list[dict]] = {}
        for cat, split, i in tqdm(plans, desc="adr-demo", unit="rec", disable=not progress):
            plan = _recording_plan(seed, cat, split, i)
            frng = np.random.default_rng(plan["fault_seed"])
            person = _sample_person(np.random.default_rng(plan["person_seed"]), _SPORT_OF[cat])
            skill = person["skill"]
            chosen = sample_faults(frng, cat, skill)
            rec = simulate_recording(plan["sim_seed"], cat, chosen, fps=fps,
                                     person_seed=plan["person_seed"])
            score = score_from_faults(chosen, cat, rec.person["skill"], frng)
            trng = np.random.default_rng(plan["text_seed"])
            comment = make_commentary(rec.faults, cat, score, trng)
            _atomic_bytes(tmp / "keypoints" / f"{plan['id']}.npy", _npy_bytes(rec.xyz))
            samples.append([plan["id"], split, cat, f"{score:.1f}", plan["subject"], comment,
                            _SPORT_OF[cat]])
            faults_out[plan["id"]] = rec.faults
            info.setdefault((cat, split), []).append(
                {"id": plan["id"], "index": i, "faults": rec.faults, "score": score,
                 "duration": rec.duration})
        pairs = []
        for split in ("train", "test"):
            for cat in _SPORT_OF:
                recs = sorted(info.get((cat, split), []), key=lambda r: r["id"])
                for a, b in combinations(recs, 2):
                    prng = np.random.default_rng(
                        [int(seed), _crc(cat), _SPLIT_CODE[split], a["index"], b["index"], 3])
                    pairs.append([a["id"], b["id"], split, make_pair_description(a, b, cat, prng)])
        meta = {
            "name": "adr-demo", "fps": float(fps), "score_range": [1, 10], "skeleton": "coco17",
            "up_axis": "y",
            "generator": {"name": "kept.data.demo", "version": GENERATOR_VERSION, "seed": int(seed),
                          "train_per_category": int(train_per_category),
                          "test_per_category": int(test_per_category),
                          "subactivities": {k: list(v) for k, v in ADR_SUBACTIVITIES.items()}},
        }
        _atomic_bytes(tmp / "dataset.json", (json.dumps(meta, indent=2) + "\n").encode())
        _atomic_bytes(tmp / "samples.csv", _csv_bytes(
            ("id", "split", "category", "score", "subject", "commentary", "sport"), samples))
        _atomic_bytes(tmp / "pairs.csv",
                      _csv_bytes(("id_a", "id_b", "split", "description"), pairs))
        _atomic_bytes(tmp / "faults.json", (json.dumps(faults_out, indent=1) + "\n").encode())
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.old-"))
            os.rmdir(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_faults(root: str | Path) -> dict[str, list[dict]]:
    """The ground-truth faults of a generated dataset: recording id -> list of fault dicts.

    Args:
        root: the dataset folder (or its ``faults.json``).
    """
    path = Path(root)
    if path.is_dir():
        path = path / "faults.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; generate the data with kept.data.demo.generate_demo")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of recording id -> list of faults")
    return {str(k): [dict(f) for f in v] for k, v in data.items()}
