"""Answer metrics and the position-bias audit on hand-made rows with known values."""

from __future__ import annotations

import shutil

import pytest

from kept.grpo.answer import PairAnswer, format_answer
from kept.grpo.evaluate import GAP_BINS, answer_metrics, bias_audit, format_audit, reference_better

TRUTH = {"A": 8.0, "B": 6.0, "C": 4.0, "D": 2.0}


def row(pair_id: str, id_1: str, id_2: str, swapped: bool = False, category: str = "squat", **extra) -> dict:
    s1, s2 = TRUTH[id_1], TRUTH[id_2]
    return {"pair_id": pair_id, "id_1": id_1, "id_2": id_2, "swapped": swapped, "category": category,
            "ref_score_1": s1, "ref_score_2": s2, "ref_better": 0 if s1 == s2 else 1 if s1 > s2 else 2,
            "score_min": 0.0, "score_max": 10.0, "ref_description": "", **extra}


def say(score_1: float | None, score_2: float | None, better: int | None, description: str = "") -> str:
    return format_answer(PairAnswer(look="x", score_1=score_1, score_2=score_2, better=better,
                                    description=description))


@pytest.fixture
def rows() -> list[dict]:
    """Pairs p1 (A-B) and p2 (C-D) in both orders, p3 (A-D) once; gaps 0.2, 0.2 and 0.6 of the range."""
    return [row("p1", "A", "B"), row("p1", "B", "A", swapped=True), row("p2", "C", "D"),
            row("p2", "D", "C", swapped=True), row("p3", "A", "D")]


@pytest.fixture
def answers() -> list:
    """A decent model: A predicted 7, 9, 8 (mean 8), B 4, C 6, D 2; one answer unparseable."""
    return [say(7, 4, 1), [{"role": "assistant", "content": say(4, 9, 2)}], say(6, 2, 1), "I cannot tell.",
            say(8, 2, 1)]


def test_reference_better():
    assert reference_better({"ref_better": 2, "ref_score_1": 9, "ref_score_2": 1}) == 2  # the label wins
    assert reference_better({"ref_score_1": 9, "ref_score_2": 1}) == 1
    assert reference_better({"ref_better": None, "ref_score_1": 3, "ref_score_2": 3}) == 0
    assert reference_better({}) is None


def test_answer_metrics_known_values(rows, answers):
    m = answer_metrics(rows, answers, text=False)
    assert m["n_pairs"] == 5 and m["parsed"] == pytest.approx(0.8) and m["scored"] == pytest.approx(0.8)
    # predicted ranks A > C > B > D against A > B > C > D: one adjacent swap, rho = 1 - 6 * 2 / (4 * 15)
    assert m["score"]["spearman"] == pytest.approx(0.8)
    assert m["score"]["r_l2_x100"] == pytest.approx(2.0)   # errors 0, 0.2, 0.2, 0 of the range
    assert m["score"]["r_l1_x100"] == pytest.approx(10.0)
    assert m["score"]["pair_accuracy"] == 1.0              # A-B, C-D, A-D ordered right by the scores
    assert m["n_recordings"] == 4 and m["coverage"] == 1.0
    assert m["preference"]["pair_accuracy"] == pytest.approx(0.8) and m["preference"]["n_pairs"] == 5
    assert m["per_category"]["squat"]["spearman"] == pytest.approx(0.8)
    assert "text" not in m


def test_answer_metrics_coverage_and_unparsed(rows):
    # only p3 (A-D) answered: B and C have no prediction and are left out
    m = answer_metrics(rows, ["", None, 3, [], say(9, 1, 1)], text=False)
    assert m["n_recordings"] == 2 and m["coverage"] == 0.5 and m["parsed"] == 0.2
    assert m["score"]["spearman"] == pytest.approx(1.0)
    assert m["preference"]["pair_accuracy"] == pytest.approx(0.2)  # unparsed answers count as wrong
    m = answer_metrics(rows, [None] * 5, text=False)
    assert m["score"]["spearman"] is None and m["n_recordings"] == 0 and m["preference"]["pair_accuracy"] == 0.0


def test_answer_metrics_errors(rows, answers):
    with pytest.raises(ValueError, match="5 rows but 4 completions"):
        answer_metrics(rows, answers[:4], text=False)
    bad = [dict(r) for r in rows]
    bad[0]["score_max"] = 100.0
    with pytest.raises(ValueError, match="disagree on the score range"):
        answer_metrics(bad, answers, text=False)


@pytest.mark.skipif(shutil.which("java") is None, reason="text metrics need Java")
def test_answer_metrics_text(rows):
    ref = "Player 1 bends the knees more at the bottom."
    described = [dict(r, ref_description=ref if i < 2 else "") for i, r in enumerate(rows)]
    m = answer_metrics(described, [say(7, 4, 1, ref), say(4, 9, 2, ref)] + [None] * 3)
    assert m["text"]["bleu_1"] == pytest.approx(1.0, abs=1e-6)
    assert set(m["per_category"]["squat"]["text"]) == set(m["text"])


def test_bias_audit_always_player_1(rows):
    audit = bias_audit(rows, [say(5, 5, 1)] * len(rows))
    assert audit["predicted"] == {"player_1": 1.0, "player_2": 0.0, "equal": 0.0, "n": 5}
    assert audit["reference"]["player_1"] == pytest.approx(0.6)
    assert audit["player_1_excess"] == pytest.approx(0.4)
    assert audit["accuracy_by_reference"] == {"player_1": {"accuracy": 1.0, "n": 3},
                                              "player_2": {"accuracy": 0.0, "n": 2}}
    assert audit["swap"] == {"consistency": 0.0, "n": 2, "n_unparsed": 0}
    bins = audit["gap"]["bins"]
    assert [b["bin"] for b in bins] == [[0.0, 0.1], [0.1, 0.2], [0.2, 0.4], [0.4, 1.0]]
    assert [b["n"] for b in bins] == [0, 0, 4, 1]
    assert [b["accuracy"] for b in bins] == [None, None, 0.5, 1.0]


def test_bias_audit_consistent_model(rows, answers):
    audit = bias_audit(rows, answers)
    assert audit["parsed"] == pytest.approx(0.8)
    assert audit["swap"] == {"consistency": 1.0, "n": 1, "n_unparsed": 1}  # p2's swapped answer is unparsed
    assert audit["predicted"]["player_1"] == pytest.approx(0.75) and audit["predicted"]["n"] == 4


def test_bias_audit_equal_and_ties():
    rows = [row("p", "A", "B"), row("p", "B", "A", swapped=True), row("t", "A", "A")]
    audit = bias_audit(rows, [say(5, 5, 0)] * 3)
    assert audit["predicted"]["equal"] == 1.0
    assert audit["swap"]["consistency"] == 1.0  # "equal" both ways names the same verdict
    assert audit["gap"]["n_tied"] == 1
    assert audit["accuracy_by_reference"]["player_1"]["accuracy"] == 0.0


def test_bias_audit_custom_bins_and_errors(rows, answers):
    audit = bias_audit(rows, answers, gap_bins=(0.0, 0.5))  # the 0.6 gap goes into the last bin
    assert audit["gap"]["bins"] == [{"bin": [0.0, 0.5], "n": 5, "accuracy": pytest.approx(0.8)}]
    assert GAP_BINS == (0.0, 0.1, 0.2, 0.4, 1.0)
    with pytest.raises(ValueError, match="increasing"):
        bias_audit(rows, answers, gap_bins=(0.5, 0.1))
    with pytest.raises(ValueError, match="completions"):
        bias_audit(rows, answers[:2])


def test_format_audit(rows):
    table = format_audit(bias_audit(rows, [say(5, 5, 1)] * len(rows)))
    assert "Position bias over 5 pairs (1.00 with a verdict)" in table
    assert "Player 1 excess: +0.40" in table
    assert "Swap consistency: 0.00 (n=2, 0 without a verdict)" in table
    assert "[0.20, 0.40)" in table and "0.50" in table
    lines = table.splitlines()
    assert lines[2].split() == ["predicted", "1.00", "0.00", "0.00", "5"]
    assert any(line.split() == ["[0.00,", "0.10)", "0", "-"] for line in lines)
