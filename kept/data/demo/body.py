"""The simulated person and their forward-kinematic body.

A subject's height, segment proportions, handedness/footedness, skill and personal style
offsets; rotations; and the forward kinematics from channel trajectories to the 17 COCO
keypoints (bone lengths from the person's height and proportions; the pelvis height follows the
lower foot, a soft minimum, so bending the knees lowers the body).
"""

from __future__ import annotations

import numpy as np

from kept.data.demo.activities import _ANGLE_CH, _CH_INDEX, _TUNING

#: Personal style spread (degrees, sd) per channel kind.
_STYLE_SD = {"hip_flex": 6.0, "hip_abd": 3.0, "knee": 7.0, "sh_flex": 8.0, "sh_abd": 6.0,
             "elbow": 8.0, "fore_abd": 3.0, "pitch": 4.0, "roll": 2.0, "twist": 4.0, "head": 6.0}
#: Bone lengths as fractions of height.
_BODY = {"thigh": 0.245, "shank": 0.25, "upper_arm": 0.172, "forearm": 0.15, "torso": 0.29,
         "shoulder_w": 0.23, "hip_w": 0.11, "neck": 0.085, "ankle_h": 0.04}

_COCO = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)


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


def _forward_kinematics(ch: np.ndarray, body: dict, grounded: bool) -> np.ndarray:
    """Joint positions of coco17 in the heading frame. Shapes: ch (F, C) -> (F, 17, 3)."""
    g = lambda name: ch[:, _CH_INDEX[name]]  # noqa: E731
    rad = np.deg2rad
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
