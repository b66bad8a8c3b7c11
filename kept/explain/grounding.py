"""Grounding figures of difference descriptions: what captioning metrics do not measure.

- **verdict accuracy**: the player a description calls better (or "similar quality") agrees
  with the reference description's verdict; over the pairs whose reference states one.
- **self-consistency**: the description's verdict agrees with the model's own two scores
  (:func:`kept.metrics.better_of`: a tie within the metrics' tolerance reads "similar"); over
  the descriptions that state a verdict. A model whose text contradicts its scores scores < 1.
- **verdict rate**: the share of descriptions that state a verdict at all.
- **body-part precision and recall**: the body parts a description names (:data:`BODY_PARTS`)
  against those the reference names (macro average over the pairs where either set is
  non-empty: precision over descriptions naming a part, recall over references naming one); on
  data with known faults, recall also against the node types of the two recordings' faults.
- **repetition**: the share of descriptions that repeat a sentence or a word n-gram of
  :data:`REPEAT_N` = 6 words (the demo's reference descriptions: 0.016; they repeat trigrams such
  as "the kicking leg" in 46 % of descriptions, so a trigram repeat is no sign of a decoder
  stuck in a loop); ``repetition_trigram`` counts trigram repeats as well, for comparison.

Verdicts are read with a few English patterns ("Player 1 performs better", "Player 2 has a
small edge", "of similar quality", "close in quality"): :func:`verdict`.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

__all__ = ["REPEAT_N", "BODY_PARTS", "NODE_WORDS", "sentences", "verdict", "body_parts", "has_repetition", "grounding_metrics",
           "known_fault_nodes"]

REPEAT_N = 6  #: n-gram size of the repetition figure (see the module docstring)

#: body part -> the words that name it
BODY_PARTS: dict[str, tuple[str, ...]] = {
    "elbow": ("elbow", "elbows"),
    "shoulder": ("shoulder", "shoulders"),
    "hip": ("hip", "hips", "pelvis"),
    "knee": ("knee", "knees"),
    "ankle": ("ankle", "ankles"),
    "wrist": ("wrist", "wrists"),
    "arm": ("arm", "arms", "forearm", "forearms"),
    "leg": ("leg", "legs", "thigh", "thighs"),
    "foot": ("foot", "feet", "toe", "toes", "heel", "heels"),
    "hand": ("hand", "hands", "finger", "fingers"),
    "trunk": ("trunk", "torso", "back", "spine", "chest"),
    "head": ("head", "neck", "eyes", "gaze"),
}
_WORD_PART = {w: part for part, words in BODY_PARTS.items() for w in words}

#: node type -> the body parts of :data:`BODY_PARTS` that count as naming it (for fault recall)
NODE_WORDS: dict[str, tuple[str, ...]] = {
    "elbow": ("elbow", "arm"), "shoulder": ("shoulder", "arm"), "hip": ("hip", "trunk"),
    "knee": ("knee", "leg"), "tip": ("tip",), "body": ("body",), "tail": ("tail",),
}

_NUM = r"(1|2|one|two)"
_BETTER = re.compile(rf"player\s+{_NUM}\b[^.;]*?\b(better|stronger|cleaner|superior|outperforms|wins|edge|ahead)\b")
_WORSE = re.compile(rf"player\s+{_NUM}\b[^.;]*?\b(worse|weaker|poorer|inferior)\b")
_LEVEL = re.compile(r"\b(similar|comparable|equal|level|same|close)\s+(in\s+)?(quality|level|standard)|\bequally\b|"
                    r"\bneither\b[^.]*\bbetter\b|\bon a par\b|\bevenly matched\b")


def sentences(text: str) -> list[str]:
    """``text`` split after each ``.``, ``!`` or ``?`` (empty pieces dropped)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", (text or "").strip()) if s]


def _player(word: str) -> int:
    return 1 if word in ("1", "one") else 2


def verdict(text: str) -> int | None:
    """Who a description says is better: 1, 2, 0 (similar quality) or None (no verdict).

    The last sentence that states a verdict decides (descriptions end with their overall call).
    """
    for sentence in reversed(sentences(text.lower() if text else "")):
        if _LEVEL.search(sentence):
            return 0
        m = _BETTER.search(sentence)
        if m:
            return _player(m.group(1))
        m = _WORSE.search(sentence)
        if m:
            return 3 - _player(m.group(1))
    return None


def body_parts(text: str) -> set[str]:
    """The body parts of :data:`BODY_PARTS` that ``text`` names."""
    return {_WORD_PART[w] for w in re.findall(r"[a-z]+", (text or "").lower()) if w in _WORD_PART}


def has_repetition(text: str, n: int = REPEAT_N) -> bool:
    """Whether ``text`` repeats a sentence or a word n-gram."""
    said = [s.strip(" .!?;,") for s in sentences((text or "").lower()) if s.strip(" .!?;,")]
    if len(said) != len(set(said)):
        return True
    words = re.findall(r"[a-z0-9']+", (text or "").lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def grounding_metrics(references: Mapping[str, str], hypotheses: Mapping[str, str],
                      model_verdicts: Mapping[str, int] | None = None,
                      fault_nodes: Mapping[str, Sequence[str]] | None = None) -> dict:
    """The figures of the module docstring over the keys of ``hypotheses``.

    Args:
        references, hypotheses: pair key -> reference / generated description.
        model_verdicts: pair key -> the model's own verdict from its scores (1, 2 or 0), for
            self-consistency.
        fault_nodes: pair key -> node types of the two recordings' true faults, for the fault
            recall (pairs without faults are skipped).

    Returns:
        ``{"verdict_accuracy", "verdict_rate", "self_consistency", "body_part_precision",
        "body_part_recall", "fault_part_recall", "repetition", "repetition_trigram", "n"}``
        (None where undefined).
    """
    keys = list(hypotheses)
    acc, stated, consistent, prec, rec, fault_rec, rep, rep3 = [], [], [], [], [], [], [], []
    for k in keys:
        gen, ref = hypotheses[k], references.get(k, "")
        vg, vr = verdict(gen), verdict(ref)
        stated.append(vg is not None)
        if vr is not None:
            acc.append(vg == vr)
        if model_verdicts is not None and vg is not None and k in model_verdicts:
            consistent.append(vg == model_verdicts[k])
        pg, pr = body_parts(gen), body_parts(ref)
        if pg:
            prec.append(len(pg & pr) / len(pg))
        if pr:
            rec.append(len(pg & pr) / len(pr))
        if fault_nodes is not None and fault_nodes.get(k):
            nodes = set(fault_nodes[k])
            fault_rec.append(np.mean([bool(pg & set(NODE_WORDS.get(n, (n,)))) for n in nodes]))
        rep.append(has_repetition(gen))
        rep3.append(has_repetition(gen, 3))
    return {
        "verdict_accuracy": _mean(acc), "verdict_rate": _mean(stated),
        "self_consistency": _mean(consistent) if model_verdicts is not None else None,
        "body_part_precision": _mean(prec), "body_part_recall": _mean(rec),
        "fault_part_recall": _mean(fault_rec) if fault_nodes is not None else None,
        "repetition": _mean(rep), "repetition_trigram": _mean(rep3), "n": len(keys),
    }


def known_fault_nodes(dataset, pairs) -> dict[str, list[str]] | None:
    """Pair key ``"id_a|id_b"`` -> the node types of both recordings' faults, from the dataset's
    ``faults.json`` (the demo data writes one); None when the dataset has none."""
    import json
    from pathlib import Path

    path = Path(dataset.root) / "faults.json"
    if not path.is_file():
        return None
    faults = json.loads(path.read_text())
    return {f"{p.id_a}|{p.id_b}": sorted({f["node_type"] for rid in (p.id_a, p.id_b) for f in faults.get(rid, [])})
            for p in pairs}

