"""The description memory: nearest pair within the category, the verdict edit, state round trip, errors."""

from __future__ import annotations

import pytest
import torch

from kept.model.memory import DescriptionMemory, descriptor, pair_keys

TEXTS = ["Player 1 bends the knees. Overall, Player 1 performs better.",
         "Player 2 flares the elbow. Overall, Player 2 performs better.",
         "Player 1 kicks late. Overall they are close in quality.",
         "Player 2 kicks early without a verdict."]
KEYS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
CATS = ["shot", "shot", "kick", "kick"]


def _memory():
    return DescriptionMemory().fit(KEYS, CATS, TEXTS)


def test_nearest_stays_in_the_category_and_falls_back_to_all():
    m = _memory()
    q = torch.tensor([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]])
    # the nearest key overall is pair 2 (a kick); within "shot" it is pair 0
    assert m.nearest(q, ["shot", "kick", None]).tolist() == [0, 2, 2]
    assert m.nearest(q[:1], ["unseen"]).tolist() == [2]


def test_the_verdict_is_edited_to_agree_with_the_scores():
    m = _memory()
    assert m.verdict_sentences == {0: "Overall they are close in quality.", 1: "Overall, Player 1 performs better.",
                                   2: "Overall, Player 2 performs better."}
    assert m.edit(TEXTS[0], 2) == "Player 1 bends the knees. Overall, Player 2 performs better."
    assert m.edit(TEXTS[3], 0) == TEXTS[3] + " Overall they are close in quality."  # no verdict: one is added
    out = m.describe(torch.tensor([[0.9, 0.0]]), ["shot"], [0])
    assert out == ["Player 2 flares the elbow. Overall they are close in quality."]


def test_state_dict_round_trip_keeps_everything():
    m = _memory()
    fresh = DescriptionMemory()
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(fresh.keys, m.keys) and fresh.texts == m.texts and fresh.categories == CATS
    assert fresh.describe(KEYS, CATS, [1, 1, 1, 1]) == m.describe(KEYS, CATS, [1, 1, 1, 1])


def test_keys_and_descriptors():
    contrib, graph = torch.randn(3, 4, 2), torch.randn(3, 5, 6)
    assert descriptor(contrib, graph).shape == (3, 8)
    assert descriptor(None, graph).shape == (3, 30)
    k = pair_keys(descriptor(contrib, graph)[:2], descriptor(contrib, graph)[1:])
    assert k.shape == (2, 16) and torch.equal(k[0, 8:], contrib[1].flatten())


def test_errors():
    with pytest.raises(ValueError, match="do not agree"):
        DescriptionMemory().fit(KEYS, CATS[:2], TEXTS)
    with pytest.raises(ValueError, match="no described pair"):
        DescriptionMemory().fit(torch.zeros(0, 2), [], [])
    with pytest.raises(RuntimeError, match="empty"):
        DescriptionMemory().nearest(KEYS, CATS)
    with pytest.raises(ValueError, match="values"):
        _memory().nearest(torch.zeros(1, 3), ["shot"])


# block-contribution keys: K = 1 segment, B = 2 nodes (knee, elbow), two recordings -> 4 values
RERANK_TEXTS = ["Player 1 kicks late. Overall, Player 1 performs better.",       # nearest, no part
                "Player 2 keeps the legs straight. Overall, Player 2 performs better.",  # leg
                "Player 1 flares the elbow and drops the head. Overall, Player 1 performs better."]
RERANK_KEYS = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.2, 0.0, 0.0, 0.0], [0.3, 0.0, 0.0, 0.0]])
NODE_PARTS = [("knee", "leg"), ("elbow", "arm")]


def test_rerank_names_the_parts_where_score_is_lost():
    m = DescriptionMemory().fit(RERANK_KEYS, ["k"] * 3, RERANK_TEXTS, NODE_PARTS, rerank=(1, 3, 0.5))
    knee_lost = torch.tensor([[-1.0, 0.0, 0.0, 0.0]])  # recording 1 loses score at the knee
    assert m.lost_parts(knee_lost) == [{"knee", "leg"}]
    assert m.choose(knee_lost, ["k"]) == [1]  # names the leg, although pair 0 is nearer
    elbow_lost = torch.tensor([[0.0, 0.0, 0.0, -1.0]])  # recording 2, the elbow
    assert m.lost_parts(elbow_lost) == [{"elbow", "arm"}]
    assert m.choose(elbow_lost, ["k"]) == [2]  # elbow named; "head" costs 0.5 < 1
    assert m.choose(torch.zeros(1, 4), ["k"]) == [0]  # nothing lost: the nearest
    strict = DescriptionMemory().fit(RERANK_KEYS, ["k"] * 3, RERANK_TEXTS, NODE_PARTS, rerank=(1, 3, 2.0))
    assert strict.choose(elbow_lost, ["k"]) == [0]  # the extra part now costs more than the match
    off = DescriptionMemory().fit(RERANK_KEYS, ["k"] * 3, RERANK_TEXTS, NODE_PARTS, rerank=(0, 3, 0.5))
    assert off.choose(knee_lost, ["k"]) == off.nearest(knee_lost, ["k"]).tolist() == [0]
    few = DescriptionMemory().fit(RERANK_KEYS, ["k"] * 3, RERANK_TEXTS, NODE_PARTS, rerank=(1, 2, 0.5))
    assert few.choose(elbow_lost, ["k"]) == [0]  # pair 2 is not among the 2 nearest


def test_rerank_stays_in_the_category_and_survives_a_round_trip():
    m = DescriptionMemory().fit(RERANK_KEYS, ["k", "other", "k"], RERANK_TEXTS, NODE_PARTS, rerank=(1, 3, 0.5))
    knee_lost = torch.tensor([[-1.0, 0.0, 0.0, 0.0]])
    assert m.choose(knee_lost, ["k"]) == [0]  # the leg text is of another category
    fresh = DescriptionMemory()
    fresh.load_state_dict(m.state_dict())
    assert fresh.rerank == (1, 3, 0.5) and fresh.node_parts == NODE_PARTS
    assert fresh.choose(knee_lost, ["other"]) == [1]
    with pytest.raises(ValueError, match="block contributions"):
        DescriptionMemory().fit(torch.zeros(3, 3), ["k"] * 3, RERANK_TEXTS, NODE_PARTS)
