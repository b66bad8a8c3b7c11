"""TRL reward functions on hand-made good, bad and malformed completions."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from kept.grpo.answer import PairAnswer, format_answer
from kept.grpo.rewards import (
    DEFAULT_WEIGHTS, REWARDS, DescriptionReward, ScoreReward, action_reward, assessment_reward, edit_distance,
    format_reward, kept_path_reward, kept_preference_reward, kept_score_reward, normalised_edit_distance,
    reward_functions, segment_iou, temporal_iou_reward,
)

GOOD = PairAnswer(look="Player 1: deep. Player 2: shallow.", action="Squat", sub_actions=["descent", "bottom", "ascent"],
                  segments=[(0.0, 0.5), (0.5, 1.0)], body_parts=["hip", "knee", "elbow", "shoulder"], score_1=6.5,
                  score_2=4.0, better=1, description="Player 1 bends the knees more.")

# The extra keyword arguments GRPOTrainer passes to every reward function (trl 1.16).
TRL_EXTRAS = {"prompts": ["p"], "completion_ids": [[1, 2]], "trainer_state": object(), "log_extra": lambda *a: None,
              "log_metric": lambda *a: None, "unrelated_column": ["x"]}

MALFORMED = [None, "", 42, [], "<answer>Better: Player 1.</answer>",
             "<recognition>a</recognition><look>b</look><assessment>c</assessment><answer>d</answer>"]


def text(**changes) -> str:
    return format_answer(PairAnswer(**{**GOOD.__dict__, **changes}))


def conversational(t: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": t}]}]


@pytest.fixture
def row() -> dict:
    """One annotated dataset row, as one-element columns."""
    return {"ref_score_1": [6.5], "ref_score_2": [4.0], "score_min": [0.0], "score_max": [10.0], "ref_better": [1],
            "ref_action": ["squat"], "ref_sub_actions": [["descent", "bottom", "ascent"]],
            "ref_segments": [[[0.0, 0.5], [0.5, 1.0]]], "kept_score_1": [7.5], "kept_score_2": [4.0],
            "kept_better": [1], "kept_path": [["hip", "knee", "knee", "shoulder"]],
            "kept_description": ["Player 1 squats deeper."], "ref_description": ["The first squat is deeper."]}


def repeat(row: dict, n: int) -> dict:
    return {k: v * n for k, v in row.items()}


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance([], ["a", "b"]) == 2 and edit_distance([], []) == 0
    assert normalised_edit_distance(["a", "b", "c"], ["a", "c"]) == pytest.approx(1 / 3)
    assert normalised_edit_distance([], []) == 0.0
    assert normalised_edit_distance(["x"], ["y", "z"]) == 1.0


def test_segment_iou():
    assert segment_iou((0, 0.5), (0.25, 0.75)) == pytest.approx(1 / 3)
    assert segment_iou((0, 0.2), (0.5, 1.0)) == 0.0
    assert segment_iou((0.6, 0.2), (0.2, 0.6)) == 0.0  # reversed: length 0
    assert segment_iou((0.3, 0.3), (0.3, 0.3)) == 0.0


def test_names_are_the_registry_keys():
    for name, fn in REWARDS.items():
        assert fn.__name__ == name
    assert set(DEFAULT_WEIGHTS) == set(REWARDS)


@pytest.mark.parametrize("name", list(REWARDS))
def test_every_reward_on_good_malformed_and_extras(name, row):
    fn = DescriptionReward(encoder=_FakeEncoder()) if name == "kept_description_reward" else REWARDS[name]
    n = 2 + len(MALFORMED)
    out = fn([text(), conversational(text()), *MALFORMED], **repeat(row, n), **TRL_EXTRAS)
    assert len(out) == n
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in out)
    assert out[0] == out[1] > 0.0  # string and conversational forms agree
    assert out[2:] == [0.0] * len(MALFORMED)


def test_format_reward():
    good = text()
    assert format_reward([good, conversational(good), "\n  " + good + "\n"]) == [1.0, 1.0, 1.0]
    bad = [
        "Sure! " + good,                                    # text outside the blocks
        good + "<answer>again</answer>",                    # a tag twice
        good.replace("Player 2 score: 4.00.", ""),          # a missing score
        good.replace("4.00", "4.0.0"),                      # a garbage score
        good.replace("<look>", "").replace("</look>", ""),  # a missing block
        "\n".join(good.split("\n")[::-1]),                  # out of order
        None, "", 3,
    ]
    assert format_reward(bad, **TRL_EXTRAS) == [0.0] * len(bad)


def test_temporal_iou_optimal_matching(row):
    # IoU(A, X) = 1/2, IoU(A, Y) = 2/3, IoU(B, X) = 1/2, IoU(B, Y) = 0: best matching A-Y, B-X.
    ref = {"ref_segments": [[[0.0, 0.6], [0.4, 1.0]]]}
    assert temporal_iou_reward([text(segments=[(0.2, 0.8), (0.0, 0.4)])], **ref) == [pytest.approx(7 / 12)]
    # an extra segment costs: the same matched IoUs divided by 3
    extra = text(segments=[(0.2, 0.8), (0.0, 0.4), (0.9, 1.0)])
    assert temporal_iou_reward([extra], **ref) == [pytest.approx(7 / 18)]
    # a missing one too: IoU(A, (0, 0.6)) = 1, divided by 2
    assert temporal_iou_reward([text(segments=[(0.0, 0.6)])], **ref) == [pytest.approx(0.5)]
    assert temporal_iou_reward([text(segments=[])], **ref) == [0.0]
    assert temporal_iou_reward([text()], **row) == [1.0]


def test_temporal_iou_unannotated():
    t = text()
    assert temporal_iou_reward([t, t, t, None], ref_segments=[[], None, "junk", []]) == [None] * 4
    assert temporal_iou_reward([t, t]) == [None, None]  # column missing


def test_action_reward(row):
    assert action_reward([text()], **row) == [1.0]
    assert action_reward([text(action="  SQUAT ")], **row) == [1.0]
    # sub-actions: one deletion out of 3 -> ned 1/3
    assert action_reward([text(sub_actions=["descent", "ascent"])], **row) == [pytest.approx(0.5 + 0.5 * 2 / 3)]
    assert action_reward([text(action="Lunge", sub_actions=["descent", "ascent"])], **row) == [pytest.approx(1 / 3)]
    assert action_reward([text(action=None, sub_actions=[])], **row) == [0.0]


def test_action_reward_class_only_without_sub_actions(row):
    row = {**row, "ref_sub_actions": [[]]}
    assert action_reward([text(sub_actions=["whatever"])], **row) == [1.0]
    assert action_reward([text(action="Lunge")], **row) == [0.0]
    assert action_reward([text(), text()], ref_action=[None, ""], ref_sub_actions=[["a"], ["a"]]) == [None, None]


def test_assessment_reward(row):
    assert assessment_reward([text()], **row) == [1.0]
    # Player 1 off by 1 on a 0-10 range: exp(-10 * 0.1^2) for that player
    assert assessment_reward([text(score_1=7.5)], **row) == [pytest.approx((1 + math.exp(-0.1)) / 2)]
    errors = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    values = [assessment_reward([text(score_1=6.5 + e, score_2=4.0 - e)], **row)[0] for e in errors]
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]))
    # a missing score contributes 0 for its player
    assert assessment_reward([text(score_2=None)], **row) == [0.5]
    # lambda sets the sensitivity
    assert ScoreReward(lambda_=1.0)([text(score_1=7.5)], **row) == [pytest.approx((1 + math.exp(-0.01)) / 2)]


def test_assessment_reward_unannotated(row):
    t = text()
    for change in ({"ref_score_1": [None]}, {"ref_score_2": [float("nan")]}, {"score_max": [0.0]},
                   {"score_min": [None]}):
        assert assessment_reward([t], **{**row, **change}) == [None]
    assert assessment_reward([t]) == [None]
    with pytest.raises(ValueError, match="lambda_"):
        ScoreReward(lambda_=0)
    with pytest.raises(ValueError, match="reference"):
        ScoreReward(reference="gold")


def test_kept_score_reward(row):
    # KEPT says 7.5 for Player 1: the model's 6.5 is 0.1 of the range away
    assert kept_score_reward([text()], **row) == [pytest.approx((math.exp(-0.1) + 1) / 2)]
    assert kept_score_reward([text(score_1=7.5)], **row) == [1.0]
    assert kept_score_reward([text()], **{**row, "kept_score_1": [None]}) == [None]


def test_kept_preference_reward(row):
    answers = [text(better=1), text(better=2), text(better=0), text(better=None)]
    assert kept_preference_reward(answers, **repeat(row, 4)) == [1.0, 0.0, 0.0, 0.0]
    assert kept_preference_reward([text(better=0)], kept_better=[0]) == [1.0]
    assert kept_preference_reward([text(), text()], kept_better=[None, 7]) == [None, None]


def test_kept_path_reward(row):
    # [hip, knee, elbow, shoulder] vs KEPT's [hip, knee, knee, shoulder]: one substitution out of 4
    assert kept_path_reward([text()], **row) == [0.75]
    assert kept_path_reward([text(body_parts=["HIP", " knee", "knee", "Shoulder"])], **row) == [1.0]
    assert kept_path_reward([text(body_parts=[])], **row) == [0.0]
    assert kept_path_reward([text(), text()], kept_path=[[], None]) == [None, None]


class _FakeEncoder:
    """Fixed 2-d embeddings: texts mentioning 'knee' point one way, others the opposite or across."""

    calls = 0

    def encode(self, texts):
        _FakeEncoder.calls += 1
        table = {"knee": [1.0, 0.0], "hand": [0.0, 1.0], "away": [-1.0, 0.0]}
        return np.array([next((v for k, v in table.items() if k in t), [0.6, 0.8]) for t in texts])


def test_description_reward_with_a_fake_encoder():
    fn = DescriptionReward(encoder=_FakeEncoder())
    assert fn.__name__ == "kept_description_reward"
    comps = [text(description="knee"), text(description="hand"), text(description="away"), text(description=""),
             text(description="knee"), text(description="knee"), None]
    out = fn(comps, kept_description=["knee", "knee", "knee", "knee", "", "", "knee"],
             ref_description=["", "", "", "", "other knee", "", ""], **TRL_EXTRAS)
    # same direction, orthogonal, opposite (clipped), empty prediction, fallback to ref, no reference, unparsed
    assert out == [pytest.approx(1.0), 0.0, 0.0, 0.0, pytest.approx(1.0), None, 0.0]
    ref_only = DescriptionReward(encoder=_FakeEncoder(), reference="ref")
    assert ref_only.__name__ == "ref_description_reward"
    assert ref_only([text(description="knee")], kept_description=["knee"], ref_description=[""]) == [None]


def test_description_reward_is_lazy_and_picklable():
    fn = DescriptionReward()
    assert fn._encoder is None
    assert fn([text()], kept_description=[""], ref_description=[""]) == [None]
    assert fn._encoder is None  # nothing to embed: nothing loaded
    clone = pickle.loads(pickle.dumps(fn))
    assert clone.__name__ == "kept_description_reward" and clone._encoder is None


def test_description_reward_with_minilm():
    fn = DescriptionReward()  # the bundled all-MiniLM-L6-v2
    out = fn([text(description="Player 1 bends the knees much more at the bottom of the squat."),
              text(description="The weather was sunny and the stadium was full.")],
             kept_description=["Player 1 squats deeper, with more knee flexion."] * 2)
    assert 0.5 < out[0] <= 1.0 and 0.0 <= out[1] < 0.3


def test_reward_functions_defaults():
    fns, ws = reward_functions()
    assert [f.__name__ for f in fns] == list(REWARDS)
    assert ws == [0.1, 0.3, 0.3, 0.3, 0.075, 0.075, 0.075, 0.075]
    assert sum(ws[4:]) == pytest.approx(0.3)
    pickle.dumps(fns)


def test_reward_functions_selection(row):
    fns, ws = reward_functions(["format_reward", "assessment_reward"], weights={"format_reward": 1.0}, lambda_=1.0)
    assert [f.__name__ for f in fns] == ["format_reward", "assessment_reward"] and ws == [1.0, 0.3]
    assert fns[1]([text(score_1=7.5)], **row) == [pytest.approx((1 + math.exp(-0.01)) / 2)]
    fns, ws = reward_functions(["action_reward", "kept_path_reward"], weights=[2, 3])
    assert ws == [2.0, 3.0]


@pytest.mark.parametrize("kwargs, match", [
    ({"names": ["format_reward", "bleu_reward"]}, r"unknown reward names \['bleu_reward'\]; known rewards: \["),
    ({"weights": {"nope": 1.0}}, "unknown reward weights for"),
    ({"names": ["format_reward"], "weights": [1.0, 2.0]}, "got 2 weights for 1 rewards"),
    ({"names": ["format_reward", "format_reward"]}, "repeat"),
])
def test_reward_functions_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        reward_functions(**kwargs)


def test_a_completion_that_fails_to_parse_gets_its_own_none_and_the_others_keep_theirs(monkeypatch):
    import kept.grpo.rewards as rewards

    real = rewards.parse_answer

    def fragile(text):
        if "boom" in text:
            raise TypeError("cannot parse")
        return real(text)

    monkeypatch.setattr(rewards, "parse_answer", fragile)
    good = "<answer>Player 1</answer>"
    out = rewards._parsed([good, "boom", good])
    assert len(out) == 3 and out[1] is None
    assert out[0] == out[2] == real(good)
