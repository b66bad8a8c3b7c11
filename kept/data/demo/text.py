"""Wording of the expert commentary and of the pair descriptions.

Both are composed from a recording's faults (the ``bad``/``good``/``why`` phrases of
:data:`~kept.data.demo.faults.FAULT_CATALOGUE`) with sampled sentence templates.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from kept.data.demo.faults import _FAULT_BY_KIND, FAULT_CATALOGUE

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
