"""Grounding figures of descriptions: verdict parsing, body parts, repetition, the aggregate."""

from __future__ import annotations

import pytest

from kept.explain.grounding import body_parts, grounding_metrics, has_repetition, verdict


@pytest.mark.parametrize("text, expected", [
    ("Player 1 bends the knees more. Overall, Player 1 performs better.", 1),
    ("Player 2 gives the stronger performance overall.", 2),
    ("Overall, Player 2 has a small edge.", 2),
    ("Player 1 is worse at the release.", 2),
    ("Overall, the two performances are of similar quality.", 0),
    ("Overall they are close in quality.", 0),
    ("Player 1 keeps the knees soft.", None),
    ("", None),
    # the last verdict decides
    ("Player 1 is better at the dip. Overall, Player 2 performs better.", 2),
])
def test_verdict(text, expected):
    assert verdict(text) == expected


def test_body_parts_maps_words_to_parts():
    assert body_parts("Player 2 lands on locked knees and flares the shooting elbow; the arms swing") == \
        {"knee", "elbow", "arm"}
    assert body_parts("a smooth rhythm") == set()


def test_repetition_counts_repeated_sentences_and_long_ngrams_only():
    assert has_repetition("Player 1 is fast. Player 1 is fast.")
    assert has_repetition("player 1 keeps the balance arm long and player 1 keeps the balance arm long")
    assert not has_repetition("the kicking leg swings, whereas the kicking leg of Player 2 stops")
    assert has_repetition("the kicking leg swings, whereas the kicking leg of Player 2 stops", n=3)


def test_grounding_metrics_by_hand():
    refs = {"a": "Player 1 bends the knees. Overall, Player 1 performs better.",
            "b": "Player 2 flares the elbow. Overall, Player 2 performs better.",
            "c": "The shoulders differ. Overall they are close in quality."}
    hyps = {"a": "Player 1 bends the knees and hips. Overall, Player 1 performs better.",  # right verdict
            "b": "Overall, Player 1 performs better.",  # wrong verdict, no body part
            "c": "The shoulders differ. The shoulders differ."}  # no verdict, a repeat
    own = {"a": 1, "b": 2, "c": 0}
    faults = {"a": ["knee"], "b": ["elbow", "shoulder"], "c": []}
    m = grounding_metrics(refs, hyps, own, faults)
    assert m["verdict_accuracy"] == pytest.approx(1 / 3, abs=1e-4)  # a right; b wrong; c none stated
    assert m["verdict_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["self_consistency"] == pytest.approx(1 / 2, abs=1e-4)  # a agrees with the scores, b does not
    assert m["body_part_precision"] == pytest.approx((1 / 2 + 1) / 2, abs=1e-4)  # a: knee of {knee, hip}; c: shoulder
    assert m["body_part_recall"] == pytest.approx((1 + 0 + 1) / 3, abs=1e-4)
    assert m["fault_part_recall"] == pytest.approx((1 + 0) / 2, abs=1e-4)  # pairs without faults skipped
    assert m["repetition"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["n"] == 3
    assert grounding_metrics(refs, hyps)["self_consistency"] is None
