"""The stepwise pair-answer format: HieroAction's four reasoning stages, adapted to two recordings.

HieroAction (Stepwise Action Reasoning) has the model answer in four tagged stages,
``<look>``, ``<recognition>``, ``<assessment>``, ``<answer>``. For a pair of recordings of the
same action (presented as Player 1 and Player 2) the canonical answer is::

    <look>Player 1: <free text>. Player 2: <free text>.</look>
    <recognition>Action: <class>. Sub-actions: <a>, <b>, <c>. Segments: 0.00-0.25, 0.25-0.60. Body parts: hip, knee, elbow, shoulder.</recognition>
    <assessment>Player 1 score: 6.50. Player 2 score: 4.00.</assessment>
    <answer>Better: Player 1. Description: <free text difference description></answer>

- ``Segments`` are (start, end) fractions of the recording duration in [0, 1].
- ``Body parts`` are node-type names (hip, knee, ...), one per temporal segment of the reasoning
  path, in segment order (as KEPT's selected path).
- ``Better`` is ``Player 1``, ``Player 2`` or ``equal``.
- Scores are in the dataset's units, written with two decimals.

:func:`format_answer` writes this text; :func:`parse_answer` reads it back leniently (keys in any
case, extra whitespace and newlines, optional parts missing) but returns ``None`` unless the four
blocks are present, closed and in order. :func:`completion_text` extracts the text of a TRL
completion (string or conversational message list).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

__all__ = ["TAGS", "PairAnswer", "format_answer", "parse_answer", "completion_text", "swap_answer"]

TAGS = ("look", "recognition", "assessment", "answer")


@dataclass
class PairAnswer:
    """One parsed (or to-be-written) pair answer.

    Attributes:
        look: the ``<look>`` text as written (describes Player 1 and Player 2).
        action: the action class, or None when not given.
        sub_actions: the sub-action sequence, in temporal order (may be empty).
        segments: (start, end) fractions of the recording duration, one per segment (may be empty).
        body_parts: node-type names, one per temporal segment of the reasoning path (may be empty).
        score_1, score_2: the scores of Player 1 and Player 2, or None when not given.
        better: 1 or 2 for the better player, 0 for equal, None when not given.
        description: the free-text difference description ("" when not given).
    """

    look: str = ""
    action: str | None = None
    sub_actions: list[str] = field(default_factory=list)
    segments: list[tuple[float, float]] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)
    score_1: float | None = None
    score_2: float | None = None
    better: int | None = None
    description: str = ""


# --- writing -------------------------------------------------------------------------------------

def _clean(text: str) -> str:
    """One line, no trailing period (the format adds its own)."""
    return " ".join(str(text).split()).rstrip(".").strip()


def format_answer(answer: PairAnswer) -> str:
    """The canonical text of ``answer`` (see the module docstring).

    Parts that are empty or None (action, sub-actions, segments, body parts, a score, better,
    description) are left out; scores and segment bounds get two decimals.

    Args:
        answer: the answer to write.

    Returns:
        Four lines, one tagged block each.
    """
    rec = []
    if answer.action:
        rec.append(f"Action: {_clean(answer.action)}.")
    if answer.sub_actions:
        rec.append("Sub-actions: " + ", ".join(_clean(s) for s in answer.sub_actions) + ".")
    if answer.segments:
        rec.append("Segments: " + ", ".join(f"{s:.2f}-{e:.2f}" for s, e in answer.segments) + ".")
    if answer.body_parts:
        rec.append("Body parts: " + ", ".join(_clean(b) for b in answer.body_parts) + ".")
    assess = [f"Player {i} score: {s:.2f}." for i, s in ((1, answer.score_1), (2, answer.score_2)) if s is not None]
    ans = []
    if answer.better is not None:
        ans.append("Better: " + ("equal" if answer.better == 0 else f"Player {answer.better}") + ".")
    if answer.description:
        ans.append(f"Description: {answer.description.strip()}")
    return (f"<look>{answer.look.strip()}</look>\n"
            f"<recognition>{' '.join(rec)}</recognition>\n"
            f"<assessment>{' '.join(assess)}</assessment>\n"
            f"<answer>{' '.join(ans)}</answer>")


# --- reading -------------------------------------------------------------------------------------

_OPEN = {t: re.compile(rf"<\s*{t}\s*>", re.IGNORECASE) for t in TAGS}
_CLOSE = {t: re.compile(rf"<\s*/\s*{t}\s*>", re.IGNORECASE) for t in TAGS}

# A plain decimal number not followed by more digits, a second decimal point or an exponent, so
# that "6.5.3" or "1e5" are rejected rather than read as 6.5 or 1.
_NUM = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?!\d|\.\d|[eE][-+]?\d)"
_SCORE = {i: re.compile(rf"player\s*{i}(?!\d)(?:'s)?\s*(?:score)?\s*[:=]\s*({_NUM})", re.IGNORECASE) for i in (1, 2)}
_BETTER = re.compile(r"better\s*[:=]\s*(?:player\s*([12])(?!\d)|(equal|tie|same)\b)", re.IGNORECASE)
_DESCRIPTION = re.compile(r"description\s*:\s*(.*)\Z", re.IGNORECASE | re.DOTALL)
_REC_KEY = re.compile(r"\b(sub[-\s]?actions|action|segments|body[-\s]?parts)\s*:", re.IGNORECASE)
_SEGMENT = re.compile(rf"({_NUM})\s*(?:-|–|—|to)\s*({_NUM})", re.IGNORECASE)


def _blocks(text: str) -> dict[str, str] | None:
    """The content of each tagged block, scanning for the tags in order; None if one is missing."""
    out, pos = {}, 0
    for tag in TAGS:
        opened = _OPEN[tag].search(text, pos)
        if opened is None:
            return None
        closed = _CLOSE[tag].search(text, opened.end())
        if closed is None:
            return None
        content = text[opened.end():closed.start()]
        if any(_OPEN[t].search(content) or _CLOSE[t].search(content) for t in TAGS if t != tag):
            return None  # another block opened or closed inside this one: unclosed or nested
        out[tag] = content.strip()
        pos = closed.end()
    return out


def _finite(token: str) -> float | None:
    try:
        value = float(token)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _items(value: str) -> list[str]:
    return [s for s in (_clean(p) for p in value.split(",")) if s]


def _recognition(content: str) -> dict:
    """Action, sub-actions, segments and body parts of a ``<recognition>`` block."""
    keys = list(_REC_KEY.finditer(content))
    values: dict[str, str] = {}
    for k, nxt in zip(keys, keys[1:] + [None]):
        name = re.sub(r"[-\s]", "", k.group(1).lower())
        values.setdefault(name, content[k.end():nxt.start() if nxt else len(content)])
    segments = []
    for m in _SEGMENT.finditer(values.get("segments", "")):
        start, end = _finite(m.group(1)), _finite(m.group(2))
        if start is not None and end is not None:
            segments.append((start, end))
    action = _clean(values.get("action", ""))
    return {"action": action or None, "sub_actions": _items(values.get("subactions", "")),
            "segments": segments, "body_parts": _items(values.get("bodyparts", ""))}


def _score(content: str, player: int) -> float | None:
    m = _SCORE[player].search(content)
    return _finite(m.group(1)) if m else None


def _better(content: str) -> int | None:
    m = _BETTER.search(content)
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) else 0


def parse_answer(text: str) -> PairAnswer | None:
    """Read an answer written in the format of the module docstring.

    Lenient about case, whitespace, newlines and missing optional parts (they come back as None or
    empty); a score that is not a plain finite decimal number ("6.5.3", "nan", "1e5") is missing.

    Args:
        text: the model's answer text.

    Returns:
        The :class:`PairAnswer`, or None when ``text`` is not a string or any of the four blocks is
        missing, unclosed, nested in another or out of order. Never raises.
    """
    if not isinstance(text, str):
        return None
    try:
        blocks = _blocks(text)
        if blocks is None:
            return None
        desc = _DESCRIPTION.search(blocks["answer"])
        return PairAnswer(look=blocks["look"], **_recognition(blocks["recognition"]),
                          score_1=_score(blocks["assessment"], 1), score_2=_score(blocks["assessment"], 2),
                          better=_better(blocks["answer"]), description=desc.group(1).strip() if desc else "")
    except Exception:  # pragma: no cover - defensive: a reward must never crash a training step
        return None


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def completion_text(completion) -> str:
    """The text of one TRL completion.

    TRL passes a completion as a string (standard datasets) or, for conversational datasets, as a
    list of messages ``[{"role": "assistant", "content": ...}]`` whose content is a string or a
    list of parts ``[{"type": "text", "text": ...}]``. The assistant messages' texts are joined
    with newlines (all messages' when none has the assistant role).

    Args:
        completion: a string, a message dict, or a list of message dicts.

    Returns:
        The text; "" for anything unusable (None, numbers, malformed messages). Never raises.
    """
    try:
        if isinstance(completion, str):
            return completion
        if isinstance(completion, dict):
            completion = [completion]
        if not isinstance(completion, (list, tuple)):
            return ""
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        return "\n".join(t for t in (_content_text(m.get("content")) for m in assistant) if t)
    except Exception:  # pragma: no cover - defensive
        return ""


def swap_answer(answer: PairAnswer) -> PairAnswer:
    """The same answer with Player 1 and Player 2 exchanged.

    Scores are swapped and ``better`` maps 1 <-> 2 (0 and None stay). The free texts (``look``,
    ``description``) are left as written: rewriting who is who inside free text is not reliable.
    Applying it twice gives back an equal answer.

    Args:
        answer: the answer.

    Returns:
        A new :class:`PairAnswer` (lists copied).
    """
    better = {1: 2, 2: 1}.get(answer.better, answer.better)
    return dataclasses.replace(answer, score_1=answer.score_2, score_2=answer.score_1, better=better,
                               sub_actions=list(answer.sub_actions), segments=list(answer.segments),
                               body_parts=list(answer.body_parts))
