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
