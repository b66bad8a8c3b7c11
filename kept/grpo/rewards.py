"""TRL reward functions for GRPO on the pair-answer format (:mod:`kept.grpo.answer`).

HieroAction's Hierarchical Policy Learning scores an answer with four rewards, combined as
``R = l_fmt R_form + l_temp R_temp + l_action R_action + l_score R_score`` with "0.1 for the format
reward and 0.3 for others". Here the same four groups score the pair answer against the dataset's
annotation, and a fifth group, KEPT, rewards agreement with KEPT's own predictions (distillation
from the keypoint model):

============================  =================================================================  =====
reward (``__name__``)         value                                                              weight
============================  =================================================================  =====
``format_reward``             1 if the four blocks appear once each, in order, nothing else      0.1
                              outside them, and the assessment holds two finite scores; else 0
``temporal_iou_reward``       sum of IoUs under the optimal one-to-one matching of predicted     0.3
                              and reference segments / max(n_pred, n_ref)
``action_reward``             0.5 [class correct] + 0.5 (1 - ned(sub-actions, reference))        0.3
``assessment_reward``         mean over players of exp(-lambda ((q - q*) / (max - min))^2)       0.3
``kept_score_reward``         the same against KEPT's two scores                                 0.075
``kept_preference_reward``    1 if the predicted better player is KEPT's                         0.075
``kept_path_reward``          1 - ned(body parts, KEPT's selected path)                          0.075
``kept_description_reward``   cosine of MiniLM embeddings, clipped to [0, 1], of the predicted   0.075
                              description and KEPT's (else the reference) description
============================  =================================================================  =====

(ned: Levenshtein distance over items / the longer sequence's length.)

Decisions:

- *Weights* (:data:`DEFAULT_WEIGHTS`): HieroAction's 0.1 for format and 0.3 for each other group;
  the KEPT group gets 0.3 like any other group, split equally over its four rewards (0.075 each),
  so adding KEPT's signals does not outweigh the annotation.
- *Format is all-or-nothing*, as HieroAction's R_form (an indicator). Partial credit for tags alone
  would pay for empty scaffolding; content is graded by the other rewards. It is also stricter than
  :func:`~kept.grpo.answer.parse_answer` (which tolerates duplicates and text around the blocks).
- *lambda* (:data:`DEFAULT_LAMBDA` = 10): HieroAction writes R_score = exp(-l_score (q - q*)^2 -
  l_diff (d - d*)^2) without giving l_score. Pairs have no difficulty term, so only the first
  term is kept, on errors normalised by the score range so one lambda serves every dataset. With
  lambda = 10 a normalised error of 0.1 gives 0.90, 0.2 gives 0.67, 0.3 gives 0.41, 0.5 gives 0.08:
  still graded over the errors seen in practice (KEPT's R-l2 x 100 of about 1-8 means RMS errors of
  0.1-0.28 of the range), where a large lambda (100) would be flat at 0 beyond 0.2 and a small one
  (1) would barely separate a good from a poor guess.
- *Sub-actions unannotated*: when ``ref_sub_actions`` is empty the class term gets the full weight
  (the reward is 1 for the right class, 0 otherwise), rather than treating "no sub-actions" as the
  reference to match.
- *Segments* are compared as written: a segment whose end is before its start has length 0 and
  IoU 0; bounds are not clipped to [0, 1].
- Names (sub-actions, body parts, classes) are compared case- and whitespace-insensitively.

Calling convention (TRL's ``GRPOTrainer``): ``fn(completions, **kwargs) -> list[float | None]``,
where ``kwargs`` holds the dataset columns as lists aligned with ``completions`` (names below)
plus TRL's extras (``prompts``, ``completion_ids``, ``trainer_state``, ``log_extra``,
``log_metric``...), which are ignored. A reward never raises on data: a malformed completion
scores 0.0; a row without the annotation the reward needs (column missing, None, NaN or empty)
gets ``None``.

What ``None`` does, checked in trl 1.16.0 (``trl/trainer/grpo_trainer.py``,
``_calculate_rewards`` and ``_generate_and_score_completions``): ``None`` is turned into NaN;
rewards are combined with ``nansum`` over the weighted functions, so a NaN term adds nothing (the
other weights are *not* renormalised); the per-function logged mean is a ``nanmean`` over the rows
where it applies; a completion for which every function returned None is "unscorable" and gets
advantage 0 (cannot happen here: ``format_reward`` always returns a float). Since all completions
of a GRPO group share one dataset row, a None reward is None for the whole group and does not move
the advantages.

Columns: ``ref_score_1``, ``ref_score_2``, ``score_min``, ``score_max``, ``ref_better``,
``ref_action``, ``ref_sub_actions``, ``ref_segments``, ``ref_description``, ``kept_score_1``,
``kept_score_2``, ``kept_better``, ``kept_path``, ``kept_description``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from kept.grpo.answer import TAGS, PairAnswer, completion_text, parse_answer

__all__ = [
    "DEFAULT_LAMBDA", "DEFAULT_WEIGHTS", "REWARDS", "DescriptionReward", "ScoreReward", "action_reward",
    "assessment_reward", "edit_distance", "format_reward", "kept_description_reward", "kept_path_reward",
    "kept_preference_reward", "kept_score_reward", "normalised_edit_distance", "reward_functions",
    "segment_iou", "temporal_iou_reward",
]

DEFAULT_LAMBDA = 10.0

RewardFunc = Callable[..., list]


# --- shared helpers ------------------------------------------------------------------------------

def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences of items (insert, delete, substitute cost 1)."""
    a, b = list(a), list(b)
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def normalised_edit_distance(a: Sequence, b: Sequence) -> float:
    """``edit_distance(a, b) / max(len(a), len(b))`` in [0, 1]; 0.0 when both are empty."""
    n = max(len(a), len(b))
    return edit_distance(a, b) / n if n else 0.0


def segment_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Temporal IoU of two (start, end) intervals; a reversed interval has length 0."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(0.0, a[1] - a[0]) + max(0.0, b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def _norm(name) -> str:
    return " ".join(str(name).lower().split()).rstrip(".").strip()


def _aligned(col, n: int) -> list:
    """A column as n values (None where missing or too short)."""
    if col is None or isinstance(col, (str, bytes)):
        return [None] * n
    try:
        col = list(col)[:n]
    except TypeError:
        return [None] * n
    return col + [None] * (n - len(col))


def finite_float(x) -> float | None:
    """``x`` as a finite float, or None (None, bools, strings, NaN, inf and non-numbers)."""
    if x is None or isinstance(x, (bool, str)):
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _choice(x) -> int | None:
    """A better-player label 0/1/2, or None."""
    x = finite_float(x)
    return int(x) if x in (0.0, 1.0, 2.0) else None


def _text(x) -> str:
    return x.strip() if isinstance(x, str) else ""


def _names(x) -> list[str] | None:
    """A list of names, or None when ``x`` is not a list (or holds non-strings)."""
    if x is None or isinstance(x, (str, bytes)):
        return None
    try:
        items = list(x)
    except TypeError:
        return None
    if not all(isinstance(i, str) for i in items):
        return None
    return [_norm(i) for i in items if _norm(i)]


def _intervals(x) -> list[tuple[float, float]]:
    """Reference segments as sorted (start, end) pairs; malformed entries dropped."""
    if x is None or isinstance(x, (str, bytes)):
        return []
    try:
        segs = list(x)
    except TypeError:
        return []
    out = []
    for seg in segs:
        try:
            s, e = (finite_float(v) for v in seg)
        except (TypeError, ValueError):
            continue  # not a pair of values
        if s is not None and e is not None:
            out.append((min(s, e), max(s, e)))
    return out


def _parsed(completions) -> list[PairAnswer | None]:
    """One parsed answer per completion; None for a completion that cannot be read (not text
    or a message list), so that every reward keeps one value per completion."""
    if completions is None:
        return []

    def one(c) -> PairAnswer | None:
        try:
            return parse_answer(completion_text(c))
        except TypeError:
            return None

    return [one(c) for c in completions]


def _score_term(pred: float | None, ref: float, span: float, lambda_: float) -> float:
    if pred is None:
        return 0.0
    return math.exp(-lambda_ * ((pred - ref) / span) ** 2)


# --- rewards against the annotation --------------------------------------------------------------

_STRICT = re.compile(r"\A\s*" + r"\s*".join(rf"<{t}>.*?</{t}>" for t in TAGS) + r"\s*\Z", re.DOTALL | re.IGNORECASE)


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 for a well-formed answer, else 0.0 (HieroAction's R_form, binary).

    Well-formed: each of ``<look>``, ``<recognition>``, ``<assessment>``, ``<answer>`` opens and
    closes exactly once, in that order, with only whitespace outside the blocks, and the assessment
    holds finite scores for both players.

    Args:
        completions: TRL completions (strings or message lists).
        **kwargs: ignored.

    Returns:
        One float per completion.
    """
    out = []
    for c in completions or []:
        text = completion_text(c)
        once = all(len(re.findall(rf"<\s*/?\s*{t}\s*>", text, re.IGNORECASE)) == 2 for t in TAGS)
        ans = parse_answer(text) if once and _STRICT.match(text) else None
        out.append(float(ans is not None and ans.score_1 is not None and ans.score_2 is not None))
    return out


def temporal_iou_reward(completions, ref_segments=None, **kwargs) -> list[float | None]:
    """HieroAction's R_temp: matched IoU of predicted and reference segments.

    ``sum_{(i, j) in M} IoU(tau*_i, tau_j) / max(n_pred, n_ref)`` with M the one-to-one matching
    maximising the total IoU (``scipy.optimize.linear_sum_assignment``); dividing by the larger
    count (not |M|) makes extra or missing segments cost.

    Args:
        completions: TRL completions.
        ref_segments: per row, a list of [start, end] fractions (empty or None: not annotated).
        **kwargs: ignored.

    Returns:
        One value per completion in [0, 1]; None for unannotated rows.
    """
    from scipy.optimize import linear_sum_assignment

    answers = _parsed(completions)
    refs = _aligned(ref_segments, len(answers))
    out: list[float | None] = []
    for ans, ref in zip(answers, refs):
        ref = _intervals(ref)
        if not ref:
            out.append(None)
            continue
        pred = ans.segments if ans is not None else []
        if not pred:
            out.append(0.0)
            continue
        iou = np.array([[segment_iou(r, p) for p in pred] for r in ref])  # (n_ref, n_pred)
        rows, cols = linear_sum_assignment(-iou)
        out.append(float(iou[rows, cols].sum() / max(len(pred), len(ref))))
    return out


def action_reward(completions, ref_action=None, ref_sub_actions=None, **kwargs) -> list[float | None]:
    """HieroAction's R_action = alpha R_cls + (1 - alpha) R_sub with alpha = 0.5.

    R_cls = [predicted class == reference class] (case/whitespace-insensitive); R_sub = 1 - ned of
    the predicted and reference sub-action sequences. With no reference sub-actions, R_cls alone
    (weight 1).

    Args:
        completions: TRL completions.
        ref_action: per row, the action class (None: not annotated).
        ref_sub_actions: per row, the sub-action sequence (may be empty).
        **kwargs: ignored.

    Returns:
        One value per completion in [0, 1]; None where ``ref_action`` is missing.
    """
    answers = _parsed(completions)
    actions = _aligned(ref_action, len(answers))
    subs = _aligned(ref_sub_actions, len(answers))
    out: list[float | None] = []
    for ans, action, sub in zip(answers, actions, subs):
        if not _text(action):
            out.append(None)
            continue
        if ans is None:
            out.append(0.0)
            continue
        cls = float(ans.action is not None and _norm(ans.action) == _norm(action))
        sub = _names(sub)
        if not sub:
            out.append(cls)
            continue
        pred = [_norm(s) for s in ans.sub_actions]
        out.append(0.5 * cls + 0.5 * (1.0 - normalised_edit_distance(pred, sub)))
    return out


class ScoreReward:
    """HieroAction's R_score on both players, against reference or KEPT scores.

    ``R = 1/2 sum_{p=1,2} exp(-lambda ((q_p - q*_p) / (score_max - score_min))^2)``; a missing
    predicted score contributes 0 for its player.

    Args:
        lambda_: sensitivity (default :data:`DEFAULT_LAMBDA`, see the module docstring).
        reference: ``"ref"`` (columns ``ref_score_1/2``, name ``assessment_reward``) or ``"kept"``
            (columns ``kept_score_1/2``, name ``kept_score_reward``).

    Call: ``(completions, **columns) -> list[float | None]``; None where the reference scores or
    the score range (``score_min`` < ``score_max``) are missing.
    """

    def __init__(self, lambda_: float = DEFAULT_LAMBDA, reference: str = "ref"):
        if reference not in ("ref", "kept"):
            raise ValueError(f"reference must be 'ref' or 'kept', got {reference!r}")
        if finite_float(lambda_) is None or finite_float(lambda_) <= 0:
            raise ValueError(f"lambda_ must be a positive finite number, got {lambda_!r}")
        self.lambda_ = finite_float(lambda_)
        self.reference = reference
        self.__name__ = "assessment_reward" if reference == "ref" else "kept_score_reward"

    def __repr__(self) -> str:
        return f"ScoreReward(lambda_={self.lambda_}, reference={self.reference!r})"

    def __call__(self, completions, **kwargs) -> list[float | None]:
        answers = _parsed(completions)
        n = len(answers)
        cols = [_aligned(kwargs.get(f"{self.reference}_score_{i}"), n) for i in (1, 2)]
        lo, hi = _aligned(kwargs.get("score_min"), n), _aligned(kwargs.get("score_max"), n)
        out: list[float | None] = []
        for k, ans in enumerate(answers):
            q1, q2, a, b = finite_float(cols[0][k]), finite_float(cols[1][k]), finite_float(lo[k]), finite_float(hi[k])
            if q1 is None or q2 is None or a is None or b is None or b <= a:
                out.append(None)
            elif ans is None:
                out.append(0.0)
            else:
                out.append(0.5 * (_score_term(ans.score_1, q1, b - a, self.lambda_)
                                  + _score_term(ans.score_2, q2, b - a, self.lambda_)))
        return out


assessment_reward = ScoreReward()


# --- rewards against KEPT's predictions ----------------------------------------------------------

kept_score_reward = ScoreReward(reference="kept")


def kept_preference_reward(completions, kept_better=None, **kwargs) -> list[float | None]:
    """1.0 when the predicted better player (1, 2 or 0 = equal) is KEPT's, else 0.0.

    Args:
        completions: TRL completions.
        kept_better: per row, KEPT's better player 1/2/0 in presented order (None: unknown).
        **kwargs: ignored.

    Returns:
        One value per completion; None where ``kept_better`` is missing.
    """
    answers = _parsed(completions)
    out: list[float | None] = []
    for ans, ref in zip(answers, _aligned(kept_better, len(answers))):
        ref = _choice(ref)
        out.append(None if ref is None else float(ans is not None and ans.better == ref))
    return out


def kept_path_reward(completions, kept_path=None, **kwargs) -> list[float | None]:
    """1 - ned of the predicted body parts (in order) and KEPT's selected path.

    Args:
        completions: TRL completions.
        kept_path: per row, the node-type names of KEPT's path, one per segment (empty: unknown).
        **kwargs: ignored.

    Returns:
        One value per completion in [0, 1]; None where ``kept_path`` is missing or empty.
    """
    answers = _parsed(completions)
    out: list[float | None] = []
    for ans, ref in zip(answers, _aligned(kept_path, len(answers))):
        ref = _names(ref)
        if not ref:
            out.append(None)
        elif ans is None:
            out.append(0.0)
        else:
            out.append(1.0 - normalised_edit_distance([_norm(b) for b in ans.body_parts], ref))
    return out


def _is_encoder(x) -> bool:
    """An encoder object (not a model name or path, which have no ``encode`` of their own)."""
    return not isinstance(x, (str, bytes, os.PathLike)) and callable(getattr(x, "encode", None))


class DescriptionReward:
    """Semantic similarity of the predicted difference description to a reference description.

    ``R = clip(cos(e(pred), e(ref)), 0, 1)`` with ``e`` a sentence encoder (by default the bundled
    all-MiniLM-L6-v2 through :class:`kept.commentary.SentenceEmbedder`, loaded on the first call).

    Args:
        encoder: None (bundled MiniLM), a local model path or hub id, or any object with
            ``encode(list[str]) -> (n, E) array``.
        reference: ``"kept"``: KEPT's description (``kept_description``), falling back to
            ``ref_description`` when empty (name ``kept_description_reward``); ``"ref"``:
            ``ref_description`` only (name ``ref_description_reward``).
        device: torch device of the encoder when it is built here.

    Call: ``(completions, **columns) -> list[float | None]``; None where both descriptions are
    empty, 0.0 for an unparseable answer or an empty predicted description. A failure to load the
    encoder raises (a setup error, not a data error).
    """

    def __init__(self, encoder=None, reference: str = "kept", device: str = "cpu"):
        if reference not in ("kept", "ref"):
            raise ValueError(f"reference must be 'kept' or 'ref', got {reference!r}")
        self.reference = reference
        self.device = device
        self._spec = encoder
        self._encoder = encoder if _is_encoder(encoder) else None
        self.__name__ = f"{reference}_description_reward"

    def __repr__(self) -> str:
        return f"DescriptionReward(encoder={self._spec!r}, reference={self.reference!r})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if not _is_encoder(self._spec):
            state["_encoder"] = None  # rebuilt lazily: do not pickle a loaded model
        return state

    @property
    def encoder(self):
        """The sentence encoder (built on first use)."""
        if self._encoder is None:
            from kept.commentary import SentenceEmbedder

            self._encoder = SentenceEmbedder(self._spec, device=self.device)
        return self._encoder

    def _reference(self, kept: object, ref: object) -> str:
        if self.reference == "kept" and _text(kept):
            return _text(kept)
        return _text(ref)

    def __call__(self, completions, **kwargs) -> list[float | None]:
        answers = _parsed(completions)
        n = len(answers)
        kept, ref = _aligned(kwargs.get("kept_description"), n), _aligned(kwargs.get("ref_description"), n)
        targets = [self._reference(k, r) for k, r in zip(kept, ref)]
        out: list[float | None] = [None if not t else 0.0 for t in targets]
        todo = [i for i, (a, t) in enumerate(zip(answers, targets)) if t and a is not None and a.description.strip()]
        if not todo:
            return out
        texts = sorted({answers[i].description.strip() for i in todo} | {targets[i] for i in todo})
        emb = np.asarray(self.encoder.encode(texts), dtype=np.float64)  # (len(texts), E)
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        row = {t: k for k, t in enumerate(texts)}
        for i in todo:
            cos = float(emb[row[answers[i].description.strip()]] @ emb[row[targets[i]]])
            out[i] = min(max(cos, 0.0), 1.0)
        return out


kept_description_reward = DescriptionReward()


# --- registry ------------------------------------------------------------------------------------

REWARDS: dict[str, RewardFunc] = {
    "format_reward": format_reward,
    "temporal_iou_reward": temporal_iou_reward,
    "action_reward": action_reward,
    "assessment_reward": assessment_reward,
    "kept_score_reward": kept_score_reward,
    "kept_preference_reward": kept_preference_reward,
    "kept_path_reward": kept_path_reward,
    "kept_description_reward": kept_description_reward,
}

DEFAULT_WEIGHTS: dict[str, float] = {
    "format_reward": 0.1,
    "temporal_iou_reward": 0.3,
    "action_reward": 0.3,
    "assessment_reward": 0.3,
    "kept_score_reward": 0.075,
    "kept_preference_reward": 0.075,
    "kept_path_reward": 0.075,
    "kept_description_reward": 0.075,
}


def _check_names(names, what: str) -> None:
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward {what} {unknown}; known rewards: {list(REWARDS)}")


def reward_functions(names: Sequence[str] | None = None, weights: Mapping[str, float] | Sequence[float] | None = None,
                     lambda_: float = DEFAULT_LAMBDA, encoder=None) -> tuple[list[RewardFunc], list[float]]:
    """The reward functions and weights for ``GRPOTrainer(reward_funcs=...)`` and
    ``GRPOConfig(reward_weights=...)``.

    Args:
        names: reward names (keys of :data:`REWARDS`), in order; None: all of them.
        weights: None (:data:`DEFAULT_WEIGHTS`), a mapping name -> weight overriding the defaults,
            or one weight per name.
        lambda_: sensitivity of ``assessment_reward`` and ``kept_score_reward``.
        encoder: sentence encoder of ``kept_description_reward`` (see :class:`DescriptionReward`);
            None: the bundled MiniLM, shared with the module-level instance.

    Returns:
        ``(functions, weights)``, aligned.

    Raises:
        ValueError: unknown names (the message lists the known ones), duplicated names, or weights
            of the wrong length.
    """
    names = list(REWARDS) if names is None else [names] if isinstance(names, str) else list(names)
    _check_names(names, "names")
    if len(set(names)) != len(names):
        raise ValueError(f"reward names repeat: {names}")
    if weights is None or isinstance(weights, Mapping):
        weights = dict(weights or {})
        _check_names(weights, "weights for")
        ws = [float(weights.get(n, DEFAULT_WEIGHTS[n])) for n in names]
    else:
        ws = [float(w) for w in weights]
        if len(ws) != len(names):
            raise ValueError(f"got {len(ws)} weights for {len(names)} rewards {names}")
    built = {"assessment_reward": ScoreReward(lambda_, "ref"), "kept_score_reward": ScoreReward(lambda_, "kept"),
             "kept_description_reward": kept_description_reward if encoder is None else DescriptionReward(encoder)}
    return [built.get(n, REWARDS[n]) for n in names], ws
