"""Tests for kept.text_metrics.

Hand-checked values use the pair

    reference:  "the man bends his knees more"   (6 tokens)
    hypothesis: "The man bends the knees."       -> the man bends the knees (5 tokens)

* BLEU-1: clipped unigram matches the(1 of 2) man bends knees = 4/5; brevity
  penalty exp(1 - 6/5) -> 0.8 * exp(-0.2).
* BLEU-2: bigram matches "the man", "man bends" = 2/4 -> sqrt(0.8 * 0.5) * exp(-0.2).
* ROUGE-L (pycocoevalcap, beta = 1.2): LCS = "the man bends knees" = 4,
  P = 4/5, R = 4/6, F = (1 + b^2) P R / (R + b^2 P).
* ROUGE-1 F1: overlap 4, P = 4/5, R = 4/6 -> 8/11.
* ROUGE-2 F1: overlap 2, P = 2/4, R = 2/5 -> 4/9.

METEOR, CIDEr and BLEU-3/4 (whose value depends on pycocoevalcap's 1e-9 / 1e-15
smoothing constants) are impractical by hand: they are checked against the
reference implementation called directly on the same hand-written token
strings.  METEOR's Java process is started once for the module (fixture).
"""

from __future__ import annotations

import math
import shutil

import pytest

pytest.importorskip("pycocoevalcap")
pytest.importorskip("rouge_score")

from kept.text_metrics import (
    TEXT_METRICS,
    MeteorScorer,
    evaluate_text,
    text_metrics,
    tokenize,
)

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer and METEOR need Java")

REF = "the man bends his knees more"
HYP = "The man bends the knees."
HYP_TOK = "the man bends the knees"

REF2 = "arms swing wide at the top"
HYP2 = "The arms swing wide!"
HYP2_TOK = "the arms swing wide"


@pytest.fixture(scope="module")
def meteor():
    scorer = MeteorScorer()
    yield scorer
    scorer.close()
    assert scorer.meteor.meteor_p.poll() is not None  # the Java process is gone


@pytest.fixture(scope="module")
def single(meteor):
    return text_metrics({"p1": REF}, {"p1": HYP}, meteor=meteor)


def test_tokenize_ptb():
    assert tokenize("The Man's knees, bend MORE -- quickly!") == ["the", "man", "'s", "knees", "bend", "more", "quickly"]
    assert tokenize("He doesn't jump.") == ["he", "does", "n't", "jump"]
    assert tokenize("") == []
    assert tokenize("  ...  ") == []
    assert tokenize("two\nlines") == ["two", "lines"]


def test_keys_and_order(single):
    assert tuple(single) == TEXT_METRICS
    assert all(isinstance(v, float) for v in single.values())


def test_bleu_1_2_by_hand(single):
    bp = math.exp(1 - 6 / 5)
    assert single["bleu_1"] == pytest.approx(0.8 * bp, abs=1e-8)  # 0.654985
    assert single["bleu_2"] == pytest.approx(math.sqrt(0.8 * 0.5) * bp, abs=1e-8)  # 0.517811


def test_rouge_by_hand(single):
    p, r, b2 = 4 / 5, 4 / 6, 1.2**2
    assert single["rouge_l"] == pytest.approx((1 + b2) * p * r / (r + b2 * p), abs=1e-12)  # 0.715543
    assert single["rouge_1"] == pytest.approx(8 / 11, abs=1e-12)
    assert single["rouge_2"] == pytest.approx(4 / 9, abs=1e-12)


def test_against_reference_implementation(meteor):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    gts = {"p1": [REF], "p2": [REF2]}
    res = {"p1": [HYP_TOK], "p2": [HYP2_TOK]}
    got = text_metrics({"p1": REF, "p2": [REF2]}, {"p1": HYP, "p2": HYP2}, meteor=meteor)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(4):
        assert got[f"bleu_{n + 1}"] == pytest.approx(bleu[n], abs=1e-12)
    cider, _ = Cider().compute_score(gts, res)
    assert got["cider"] == pytest.approx(cider, abs=1e-12)
    assert got["cider"] > 0
    met, _ = meteor.meteor.compute_score(gts, res)  # pycocoevalcap's Meteor directly
    assert got["meteor"] == pytest.approx(met, abs=1e-12)
    assert 0 < got["meteor"] < 1


def test_identical_is_perfect(meteor):
    # Two pairs sharing no n-gram: every n-gram has IDF log(2), so CIDEr = 10.
    refs = {"a": "the left knee bends much more", "b": "arms swing wide at the top"}
    got = text_metrics(refs, dict(refs), meteor=meteor)
    for m in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_1", "rouge_2", "rouge_l", "meteor"):
        assert got[m] == pytest.approx(1.0, abs=1e-6), m
    assert got["cider"] == pytest.approx(10.0, abs=1e-6)


def test_single_pair_cider_is_zero(single):
    # Documented property of corpus-level CIDEr: IDF is log(1/1) = 0 with one pair.
    assert single["cider"] == 0.0


def test_tokenisation_identical_on_both_sides(meteor):
    # Case and punctuation differ only; the same tokenizer on both sides makes them equal.
    got = text_metrics({"a": "The man's knees, bend MORE!"}, {"a": "the MAN 'S knees bend more ..."}, meteor=meteor)
    for m in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_1", "rouge_2", "rouge_l", "meteor"):
        assert got[m] == pytest.approx(1.0, abs=1e-6), m


def test_multiple_references_and_empty_hypothesis(meteor):
    got = text_metrics({"a": ["he jumps higher", "the jump is higher"]}, {"a": "The jump is higher."}, meteor=meteor)
    assert got["bleu_1"] == pytest.approx(1.0, abs=1e-6)
    assert got["rouge_1"] == pytest.approx(1.0) and got["rouge_l"] == pytest.approx(1.0)
    empty = text_metrics({"a": REF, "b": REF2}, {"a": "", "b": "  "}, meteor=meteor)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in empty.values()), empty


def test_per_category(meteor):
    refs = {"a": REF, "b": REF2, "c": "he jumps higher"}
    hyps = {"a": HYP, "b": HYP2, "c": "He jumps higher!"}
    cats = {"a": "knees", "b": "arms", "c": "knees"}
    out = evaluate_text(refs, hyps, cats, meteor=meteor)
    assert set(out) == {"text", "per_category"}
    assert out["text"] == pytest.approx(text_metrics(refs, hyps, meteor=meteor))
    assert set(out["per_category"]) == {"knees", "arms"}
    knees = text_metrics({"a": REF, "c": refs["c"]}, {"a": HYP, "c": hyps["c"]}, meteor=meteor)
    assert out["per_category"]["knees"] == pytest.approx(knees)
    arms = out["per_category"]["arms"]
    assert arms["rouge_1"] == pytest.approx(2 * 1 * (4 / 6) / (1 + 4 / 6))  # 4 of 4 hyp tokens, 4 of 6 ref tokens: 0.8
    assert arms["cider"] == 0.0  # one-pair corpus


def test_errors(meteor):
    with pytest.raises(ValueError, match="non-empty"):
        text_metrics({}, {}, meteor=meteor)
    with pytest.raises(ValueError, match="only in references"):
        text_metrics({"a": REF, "b": REF2}, {"a": HYP}, meteor=meteor)
    with pytest.raises(ValueError, match="pair ids differ"):
        text_metrics({"a": REF}, {"a": HYP, "z": HYP}, meteor=meteor)
    with pytest.raises(ValueError, match="references must be"):
        text_metrics({"a": []}, {"a": HYP}, meteor=meteor)
    with pytest.raises(ValueError, match="empty reference"):
        text_metrics({"a": ["  "]}, {"a": HYP}, meteor=meteor)
    with pytest.raises(TypeError):
        text_metrics({"a": REF}, {"a": None}, meteor=meteor)
    with pytest.raises(ValueError, match="categor"):
        evaluate_text({"a": REF, "b": REF2}, {"a": HYP, "b": HYP2}, {"a": "x"}, meteor=meteor)
    with pytest.raises(ValueError, match="categor"):
        evaluate_text({"a": REF}, {"a": HYP}, {"a": "x", "q": "y"}, meteor=meteor)
