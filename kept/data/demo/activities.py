"""The sub-activities and the channels that drive the simulated body.

The seven ADR sub-activities (grouped by sport), the trajectory channels (global pelvis and
trunk channels, per-side joint channels; degrees, metres for ``fwd``/``lat``/``lift``/``rise``),
their neutral pose and physiological limits, the knobs of the simulation's difficulty, and per
sub-activity the phase template: a sequence of named phases, each one or more key poses at key
times.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

GENERATOR_VERSION = 1

#: sport -> its sub-activity slugs (the ``category`` column).
ADR_SUBACTIVITIES: dict[str, tuple[str, ...]] = {
    "basketball": ("mid_range_shooting", "mikan_layup", "reverse_layup"),
    "soccer": ("penalty_kick", "juggling", "dribbling"),
    "rock_climbing": ("climbing",),
}
_SPORT_OF = {c: s for s, cats in ADR_SUBACTIVITIES.items() for c in cats}


def _check_category(category: str) -> str:
    if category not in _SPORT_OF:
        raise ValueError(f"unknown sub-activity '{category}'; known: {sorted(_SPORT_OF)}")
    return _SPORT_OF[category]


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

#: Knobs of the simulation's difficulty (changing them changes the data: bump GENERATOR_VERSION).
#: fault_gain scales every fault's offsets and delays; style_gain the personal style spread;
#: skill_* tie the subject's skill (N(0, 1)) to the score (points per sd), to global kinematics
#: (tempo, jump height, per-key jitter, range of motion) and to fewer/smaller faults.
_TUNING = {"fault_gain": 1.2, "style_gain": 1.0, "skill_score": 0.6, "skill_tempo": 0.06,
           "skill_lift": 0.18, "skill_jitter": 0.25, "skill_faults": 0.7, "skill_magnitude": 0.15,
           "skill_amp": 0.05}


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
