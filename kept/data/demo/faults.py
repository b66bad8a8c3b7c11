"""The technique-fault catalogue, and how faults are drawn and turned into scores.

Technique faults come from :data:`FAULT_CATALOGUE` (data: a tuple of dicts per sub-activity).
Each fault has a node type (elbow, shoulder, hip, knee), a phase, a magnitude in [0, 1], a
prevalence (relative sampling weight: two common faults per sub-activity) and an effect:
``offset`` (degrees added to role channels at the phase's key poses, optionally also at other
phases with a scale) or ``delay`` (the channels reach the phase's key pose late by
``frac * magnitude`` of the time to the next key: a timing fault that global statistics barely
see). Each recording gets 0-3 distinct faults. The subject's skill (N(0, 1), per person) makes
faults fewer and smaller and shows globally (quicker tempo, higher jumps, steadier and fuller
motion). Scores: ``9.2 - 3.0 * sum(weight * magnitude) + 0.6 * skill + N(0, 0.35)`` (the last
term: expert disagreement), clipped to [1, 10] and rounded to 0.1.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from kept.data.demo.activities import _TUNING, _check_category

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
