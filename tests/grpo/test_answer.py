"""The pair-answer format: writing, lenient reading, TRL completion forms, player swap."""

from __future__ import annotations

import pytest

from kept.grpo.answer import TAGS, PairAnswer, completion_text, format_answer, parse_answer, swap_answer

CANONICAL = (
    "<look>Player 1: deep squat, upright trunk. Player 2: shallow squat.</look>\n"
    "<recognition>Action: Squat. Sub-actions: descent, bottom, ascent. Segments: 0.00-0.25, 0.25-0.60. "
    "Body parts: hip, knee, elbow, shoulder.</recognition>\n"
    "<assessment>Player 1 score: 6.50. Player 2 score: 4.00.</assessment>\n"
    "<answer>Better: Player 1. Description: Player 1 bends the knees more. Player 2 leans forward.</answer>"
)


@pytest.fixture
def answer() -> PairAnswer:
    return PairAnswer(look="Player 1: deep squat, upright trunk. Player 2: shallow squat.", action="Squat",
                      sub_actions=["descent", "bottom", "ascent"], segments=[(0.0, 0.25), (0.25, 0.6)],
                      body_parts=["hip", "knee", "elbow", "shoulder"], score_1=6.5, score_2=4.0, better=1,
                      description="Player 1 bends the knees more. Player 2 leans forward.")


def test_tags():
    assert TAGS == ("look", "recognition", "assessment", "answer")


def test_format_is_canonical(answer):
    assert format_answer(answer) == CANONICAL


def test_parse_canonical(answer):
    assert parse_answer(CANONICAL) == answer


def test_round_trip(answer):
    assert parse_answer(format_answer(answer)) == answer
    equal = PairAnswer(look="x", action=None, score_1=5.0, score_2=5.0, better=0, description="")
    assert parse_answer(format_answer(equal)) == equal


def test_format_omits_empty_parts():
    text = format_answer(PairAnswer(look="L", action="Jump", body_parts=["knee"], score_1=1, score_2=2, better=2,
                                    description="D"))
    assert "Sub-actions" not in text and "Segments" not in text
    assert "<recognition>Action: Jump. Body parts: knee.</recognition>" in text
    assert "<assessment>Player 1 score: 1.00. Player 2 score: 2.00.</assessment>" in text
    assert "<answer>Better: Player 2. Description: D</answer>" in text


def test_parse_is_lenient():
    text = """  <LOOK>  P1 ok.
    P2 ok. </LOOK>
    <recognition>
      action :  Jump shot .
      SUB ACTIONS: dip ,  release
      segments: 0.1 - 0.4, 0.4 to 0.9
      body-parts: Knee, elbow.
    </recognition>
    <assessment>player 1 SCORE: 7 ; Player2 score:3.25</assessment>
    <answer>better: player 2
    description:
      Player 2 releases higher.
    </answer> trailing words"""
    ans = parse_answer(text)
    assert ans == PairAnswer(look="P1 ok.\n    P2 ok.", action="Jump shot", sub_actions=["dip", "release"],
                             segments=[(0.1, 0.4), (0.4, 0.9)], body_parts=["Knee", "elbow"], score_1=7.0,
                             score_2=3.25, better=2, description="Player 2 releases higher.")


def test_parse_missing_optional_parts():
    ans = parse_answer("<look></look><recognition></recognition><assessment>Player 2 score: 3</assessment>"
                       "<answer>no verdict here</answer>")
    assert ans == PairAnswer(look="", action=None, sub_actions=[], segments=[], body_parts=[], score_1=None,
                             score_2=3.0, better=None, description="")


@pytest.mark.parametrize("score", ["6.5.3", "nan", "inf", "1e5", "six", "", "1e999"])
def test_garbage_scores_are_missing(score):
    ans = parse_answer(CANONICAL.replace("Player 1 score: 6.50", f"Player 1 score: {score}"))
    assert ans is not None and ans.score_1 is None and ans.score_2 == 4.0


def test_equal_verdict():
    assert parse_answer(CANONICAL.replace("Better: Player 1", "Better: Equal")).better == 0


@pytest.mark.parametrize("text", [
    CANONICAL.replace("<look>", ""),                                        # missing open tag
    CANONICAL.replace("</assessment>", ""),                                 # unclosed
    CANONICAL.replace("<answer>", "").replace("</answer>", ""),             # missing block
    "<recognition>a</recognition><look>b</look><assessment>c</assessment><answer>d</answer>",  # out of order
    "<look>a<recognition>b</recognition></look><assessment>c</assessment><answer>d</answer>",  # nested
    "", "plain text", "<look></look>",
])
def test_parse_rejects_bad_structure(text):
    assert parse_answer(text) is None


@pytest.mark.parametrize("value", [None, 3, 2.5, [CANONICAL], {"content": CANONICAL}, b"<look>"])
def test_parse_never_raises_on_other_types(value):
    assert parse_answer(value) is None


def test_completion_text_forms():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"},
                                                              {"type": "image"}, {"type": "text", "text": "bc"}]}]) == "abc"
    assert completion_text({"role": "assistant", "content": "abc"}) == "abc"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "abc"}]) == "abc"
    for bad in (None, 3, [], [None], [{"role": "assistant", "content": None}], [{"role": "assistant"}], object()):
        assert completion_text(bad) == ""


def test_swap(answer):
    swapped = swap_answer(answer)
    assert (swapped.score_1, swapped.score_2, swapped.better) == (4.0, 6.5, 2)
    assert swapped.look == answer.look and swapped.description == answer.description
    assert swap_answer(swapped) == answer
    assert swapped.body_parts is not answer.body_parts
    for better in (0, None):
        a = PairAnswer(better=better, score_1=1.0)
        assert swap_answer(a).better == better and swap_answer(a).score_2 == 1.0
