"""Metrics of a VLM's pair answers, and an audit of its position bias.

Inputs are the evaluation rows (dicts with the reward columns of :mod:`kept.grpo.rewards` plus
``pair_id``, ``id_1``, ``id_2`` (recording ids in presented order), ``swapped`` (bool) and
``category``) and the model's completion for each row (text or TRL message list).

- :func:`answer_metrics`: the score metrics of docs/method.md section 9 through :mod:`kept.metrics`
  (per-recording predictions averaged over the pairs a recording appears in), the accuracy of the
  predicted better player, the share of parseable answers, and the text metrics of the
  descriptions (:mod:`kept.text_metrics`).
- :func:`bias_audit`: the checks suggested by "Can Vision Language Models Judge Action Quality? An
  Empirical Evaluation" (VLMs on AQA show systematic answer biases, and their pairwise accuracy grows with the score gap between the two
  samples): how often Player 1 is called better against how often it is, whether the verdict
  follows the recording when the two are presented in the other order, and accuracy per score gap.
- :func:`format_audit`: the audit as a short text table.

The *reference better player* of a row is ``ref_better`` (1, 2, 0 = equal) when given, else the
order of ``ref_score_1`` and ``ref_score_2``. Rows whose reference is equal (tied) are skipped by
accuracies, as :func:`kept.metrics.pair_accuracy` skips tied pairs; an unparseable answer or a
predicted "equal" on an untied row counts as wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kept.grpo.answer import PairAnswer, completion_text, parse_answer
from kept.grpo.rewards import finite_float
from kept.metrics import evaluate_scores

__all__ = ["GAP_BINS", "reference_better", "answer_metrics", "bias_audit", "format_audit"]

#: Edges of the score-gap bins of :func:`bias_audit`, as fractions of the score range: near ties
#: (< 0.1), small (0.1-0.2), medium (0.2-0.4) and obvious (>= 0.4) differences. Fixed edges,
#: not quantiles, so audits of different models or datasets line up.
GAP_BINS = (0.0, 0.1, 0.2, 0.4, 1.0)


def reference_better(row: Mapping) -> int | None:
    """The reference better player of a row: ``ref_better`` if it is 0/1/2, else the order of the
    reference scores (0 when equal); None when neither is given."""
    b = finite_float(row.get("ref_better"))
    if b in (0.0, 1.0, 2.0):
        return int(b)
    s1, s2 = finite_float(row.get("ref_score_1")), finite_float(row.get("ref_score_2"))
    if s1 is None or s2 is None:
        return None
    return 0 if s1 == s2 else 1 if s1 > s2 else 2


def _answers(rows: Sequence[Mapping], completions: Sequence) -> tuple[list[Mapping], list[PairAnswer | None]]:
    rows, completions = list(rows), list(completions)
    if len(rows) != len(completions):
        raise ValueError(f"got {len(rows)} rows but {len(completions)} completions: give one completion per row")
    return rows, [parse_answer(completion_text(c)) for c in completions]


def _score_range(rows: Sequence[Mapping]) -> tuple[float, float] | None:
    ranges = {(finite_float(r.get("score_min")), finite_float(r.get("score_max"))) for r in rows}
    ranges = {r for r in ranges if None not in r and r[1] > r[0]}
    if len(ranges) > 1:
        raise ValueError(f"rows disagree on the score range: {sorted(ranges)}; evaluate one dataset at a time")
    return ranges.pop() if ranges else None


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _recording_scores(rows, answers) -> tuple[dict, dict, dict]:
    """Reference scores, averaged predicted scores and categories, per recording id."""
    truth, cats, preds = {}, {}, {}
    for row, ans in zip(rows, answers):
        for side in (1, 2):
            rid, ref = row.get(f"id_{side}"), finite_float(row.get(f"ref_score_{side}"))
            if rid is None or ref is None:
                continue
            truth.setdefault(rid, ref)
            cats.setdefault(rid, str(row.get("category", "")))
            score = None if ans is None else finite_float(getattr(ans, f"score_{side}"))
            if score is not None:
                preds.setdefault(rid, []).append(score)
    return truth, {rid: float(np.mean(v)) for rid, v in preds.items()}, cats


def _preference(rows, answers) -> dict:
    """Accuracy of the predicted better player on untied rows, overall and per category."""
    hits: dict[str, list[int]] = {}
    for row, ans in zip(rows, answers):
        ref = reference_better(row)
        if ref in (1, 2):
            hits.setdefault(str(row.get("category", "")), []).append(int(ans is not None and ans.better == ref))
    every = [h for v in hits.values() for h in v]
    return {"pair_accuracy": _rate(sum(every), len(every)), "n_pairs": len(every),
            "per_category": {c: {"pair_accuracy": _rate(sum(v), len(v)), "n_pairs": len(v)}
                             for c, v in sorted(hits.items())}}


def _text(rows, answers, meteor) -> dict | None:
    """Text metrics of the described rows (kept.text_metrics.evaluate_text), or None."""
    refs, hyps, cats = {}, {}, {}
    for i, (row, ans) in enumerate(zip(rows, answers)):
        ref = row.get("ref_description")
        if isinstance(ref, str) and ref.strip():
            key = f"{row.get('pair_id', '')}#{i}"
            refs[key], hyps[key] = ref, "" if ans is None else ans.description
            cats[key] = str(row.get("category", ""))
    if not refs:
        return None
    from kept.text_metrics import evaluate_text

    return evaluate_text(refs, hyps, cats, meteor=meteor)


def answer_metrics(rows: Sequence[Mapping], completions: Sequence, *, text: bool = True, meteor=None) -> dict:
    """Score, preference and text metrics of the model's answers.

    Each recording's predicted score is the mean of its predictions over the rows it appears in
    (as Player 1 or 2); recordings never predicted (all their answers unparseable or without that
    score) are left out of the score metrics, and ``coverage`` says how many were kept. Score
    metrics come from :func:`kept.metrics.evaluate_scores` over the distinct pairs of predicted
    recordings, so ``score.pair_accuracy`` orders pairs by the predicted *scores*, as ``kept eval``
    does; ``preference.pair_accuracy`` uses the *stated* better player of each row instead.

    Args:
        rows: evaluation rows (see the module docstring).
        completions: one completion per row (string or TRL message list).
        text: compute the text metrics of the descriptions against ``ref_description`` (needs
            Java; rows with an empty reference are skipped).
        meteor: a :class:`kept.text_metrics.MeteorScorer` to reuse (None: one is started).

    Returns:
        ``{"n_pairs", "parsed", "scored", "score": {spearman, r_l2_x100, r_l1_x100,
        pair_accuracy}, "per_category": {cat: {same keys[, "text"]}}, "n_recordings", "coverage",
        "preference": {"pair_accuracy", "n_pairs", "per_category"}[, "text"]}``. ``parsed``: share
        of answers in the format; ``scored``: share with both scores; ``text`` is None when no
        row has a reference description. Undefined values are None.

    Raises:
        ValueError: rows and completions differ in length, or rows disagree on the score range,
            or no score range is given while scores are to be evaluated.
    """
    rows, answers = _answers(rows, completions)
    n = len(rows)
    truth, pred, cats = _recording_scores(rows, answers)
    ids = [i for i in truth if i in pred]
    out: dict = {"n_pairs": n, "parsed": _rate(sum(a is not None for a in answers), n),
                 "scored": _rate(sum(a is not None and a.score_1 is not None and a.score_2 is not None
                                     for a in answers), n)}
    if ids:
        score_range = _score_range(rows)
        if score_range is None:
            raise ValueError("rows need score_min < score_max (the dataset's score range) for the score metrics")
        pairs = list({frozenset((r["id_1"], r["id_2"])): (r["id_1"], r["id_2"]) for r in rows
                      if r.get("id_1") in pred and r.get("id_2") in pred and r["id_1"] != r["id_2"]}.values())
        scores = evaluate_scores({i: cats[i] for i in ids}, truth, pred, pairs, score_range)
    else:
        scores = {"score": {"spearman": None, "r_l2_x100": None, "r_l1_x100": None, "pair_accuracy": None},
                  "per_category": {}}
    out.update(score=scores["score"], per_category=scores["per_category"], n_recordings=len(ids),
               coverage=_rate(len(ids), len(truth)), preference=_preference(rows, answers))
    if text:
        result = _text(rows, answers, meteor)
        out["text"] = None if result is None else result["text"]
        for cat, metrics in ({} if result is None else result["per_category"]).items():
            out["per_category"].setdefault(cat, {})["text"] = metrics
    return out


def _winner(row: Mapping, better: int | None) -> object:
    """The recording a verdict names: id_1, id_2, "=" for equal, None for no verdict."""
    return {1: row.get("id_1"), 2: row.get("id_2"), 0: "="}.get(better)


def _swap_consistency(rows, answers) -> dict:
    """Share of (original, swapped) row combinations of a pair whose verdicts name the same
    recording (both "equal" counts as the same); combinations with an unparsed verdict skipped."""
    groups: dict[object, tuple[list, list]] = {}
    for row, ans in zip(rows, answers):
        side = 1 if bool(row.get("swapped", False)) else 0
        groups.setdefault(row.get("pair_id"), ([], []))[side].append(_winner(row, None if ans is None else ans.better))
    same = total = skipped = 0
    for originals, swapped in groups.values():
        for a in originals:
            for b in swapped:
                if a is None or b is None:
                    skipped += 1
                else:
                    total += 1
                    same += int(a == b)
    return {"consistency": _rate(same, total), "n": total, "n_unparsed": skipped}


def _by_gap(rows, answers, edges: Sequence[float]) -> dict:
    """Accuracy of the verdict per bin of |ref_score_1 - ref_score_2| / range (untied rows)."""
    score_range = _score_range(rows)
    hits: list[list[int]] = [[] for _ in edges[1:]]
    tied = no_gap = 0
    for row, ans in zip(rows, answers):
        ref = reference_better(row)
        s1, s2 = finite_float(row.get("ref_score_1")), finite_float(row.get("ref_score_2"))
        if ref == 0:
            tied += 1
        elif ref is None or s1 is None or s2 is None or score_range is None:
            no_gap += 1
        else:
            gap = abs(s1 - s2) / (score_range[1] - score_range[0])
            k = min(max(int(np.searchsorted(edges, gap, side="right")) - 1, 0), len(hits) - 1)
            hits[k].append(int(ans is not None and ans.better == ref))
    bins = [{"bin": [float(lo), float(hi)], "n": len(h), "accuracy": _rate(sum(h), len(h))}
            for lo, hi, h in zip(edges[:-1], edges[1:], hits)]
    return {"bins": bins, "n_tied": tied, "n_without_gap": no_gap}


def _shares(labels: list[int]) -> dict:
    n = len(labels)
    return {"player_1": _rate(labels.count(1), n), "player_2": _rate(labels.count(2), n),
            "equal": _rate(labels.count(0), n), "n": n}


def bias_audit(rows: Sequence[Mapping], completions: Sequence, *, gap_bins: Sequence[float] = GAP_BINS) -> dict:
    """Position bias, swap consistency and accuracy by score gap of the model's verdicts.

    Args:
        rows: evaluation rows (see the module docstring); swap consistency needs rows sharing a
            ``pair_id`` with opposite ``swapped``.
        completions: one completion per row.
        gap_bins: increasing bin edges for the normalised score gap (default :data:`GAP_BINS`);
            bins are [lo, hi), the last one closed; gaps beyond the last edge go to the last bin.

    Returns:
        ``{"n_pairs", "parsed": share of rows with a verdict,
        "predicted": {"player_1", "player_2", "equal", "n"} (shares among rows with a verdict),
        "reference": {same keys} (among rows with a reference),
        "player_1_excess": predicted minus reference share of Player 1,
        "accuracy_by_reference": {"player_1": {"accuracy", "n"}, "player_2": {...}},
        "swap": {"consistency", "n", "n_unparsed"},
        "gap": {"bins": [{"bin": [lo, hi], "n", "accuracy"}], "n_tied", "n_without_gap"}}``.
        A model that always answers "Player 1" has ``player_1`` = 1 and swap consistency 0.

    Raises:
        ValueError: rows and completions differ in length, bad ``gap_bins``, or rows disagree on
            the score range.
    """
    edges = [float(e) for e in gap_bins]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"gap_bins must be at least two increasing edges, got {list(gap_bins)}")
    rows, answers = _answers(rows, completions)
    verdicts = [a.better for a in answers if a is not None and a.better is not None]
    refs = [reference_better(r) for r in rows]
    predicted, reference = _shares(verdicts), _shares([r for r in refs if r is not None])
    excess = (None if predicted["player_1"] is None or reference["player_1"] is None
              else predicted["player_1"] - reference["player_1"])
    by_ref = {}
    for side in (1, 2):
        hits = [int(a is not None and a.better == side) for a, r in zip(answers, refs) if r == side]
        by_ref[f"player_{side}"] = {"accuracy": _rate(sum(hits), len(hits)), "n": len(hits)}
    return {"n_pairs": len(rows), "parsed": _rate(len(verdicts), len(rows)), "predicted": predicted,
            "reference": reference, "player_1_excess": excess, "accuracy_by_reference": by_ref,
            "swap": _swap_consistency(rows, answers), "gap": _by_gap(rows, answers, edges)}


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def format_audit(audit: Mapping) -> str:
    """A short text table of a :func:`bias_audit` result (undefined values as "-")."""
    p, r = audit["predicted"], audit["reference"]
    acc = audit["accuracy_by_reference"]
    swap = audit["swap"]
    lines = [
        f"Position bias over {audit['n_pairs']} pairs ({_fmt(audit['parsed'])} with a verdict)",
        f"{'':<12}{'Player 1':>10}{'Player 2':>10}{'equal':>8}{'n':>6}",
        *(f"{name:<12}{_fmt(s['player_1']):>10}{_fmt(s['player_2']):>10}{_fmt(s['equal']):>8}{s['n']:>6}"
          for name, s in (("predicted", p), ("reference", r))),
        f"Player 1 excess: {_fmt(audit['player_1_excess'], signed=True)}",
        (f"Accuracy when the reference is Player 1: {_fmt(acc['player_1']['accuracy'])} (n={acc['player_1']['n']}),"
         f" Player 2: {_fmt(acc['player_2']['accuracy'])} (n={acc['player_2']['n']})"),
        f"Swap consistency: {_fmt(swap['consistency'])} (n={swap['n']}, {swap['n_unparsed']} without a verdict)",
        "Accuracy by score gap |q1 - q2| / range:",
        f"  {'gap':<14}{'n':>6}{'accuracy':>10}",
    ]
    for b in audit["gap"]["bins"]:
        lo, hi = b["bin"]
        lines.append(f"  {f'[{lo:.2f}, {hi:.2f})':<14}{b['n']:>6}{_fmt(b['accuracy']):>10}")
    lines.append(f"  {'tied':<14}{audit['gap']['n_tied']:>6}")
    return "\n".join(lines)
