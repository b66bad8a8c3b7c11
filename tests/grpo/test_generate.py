"""``kept grpo eval``: greedy answers of a VLM, their metrics and bias audit, and recomputation."""

from __future__ import annotations

import json

import pytest

from kept.cli import main
from kept.grpo.data import load_rows
from kept.grpo.generate import read_completions, write_completions

pytest.importorskip("trl")

FAST = ["--quiet", "model.dtype=float32", "eval.max_new_tokens=160", "eval.batch_size=4", "eval.device=cpu"]


def test_eval_of_a_never_trained_model_handles_unparseable_answers(tiny_vlm, prepared, tmp_path, capsys):
    out = tmp_path / "m.json"
    argv = ["grpo", "eval", "--model", str(tiny_vlm), "--data", str(prepared), "--out", str(out), *FAST,
            "eval.max_new_tokens=8", "eval.text_metrics=false"]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    rows = load_rows(prepared, "test")
    assert result["n_rows"] == len(rows) and result["metrics"]["parsed"] == 0.0
    assert result["metrics"]["score"]["spearman"] is None and result["bias_audit"]["parsed"] == 0.0
    answers = read_completions(tmp_path / "m.completions.jsonl", rows)
    assert len(answers) == len(rows) and all(isinstance(a, str) for a in answers)
    assert "Position bias over 6 pairs" in capsys.readouterr().out


def test_eval_of_the_fine_tuned_model_and_recomputation(sft_vlm, prepared, tmp_path, capsys):
    assert main(["grpo", "eval", "--model", str(sft_vlm), "--data", str(prepared), *FAST]) == 0
    out = sft_vlm / "eval_test.json"  # the default: beside the model
    result = json.loads(out.read_text())
    m = result["metrics"]
    assert m["parsed"] > 0.5 and m["n_pairs"] == 6
    assert m["score"]["r_l2_x100"] is not None and set(m["text"]) >= {"bleu_4", "meteor", "rouge_l", "cider"}
    assert result["bias_audit"]["swap"]["n"] == 3  # the test split holds both orders of its 3 pairs
    capsys.readouterr()
    again = tmp_path / "again.json"
    assert main(["grpo", "eval", "--data", str(prepared), "--completions", result["completions"], "--out", str(again),
                 "eval.text_metrics=false", "--quiet"]) == 0
    recomputed = json.loads(again.read_text())
    assert recomputed["metrics"]["score"] == m["score"] and recomputed["bias_audit"] == result["bias_audit"]


def test_completions_must_line_up_with_the_rows(prepared, tmp_path):
    rows = load_rows(prepared, "test")
    write_completions(tmp_path / "c.jsonl", rows[::-1], ["x"] * len(rows))
    with pytest.raises(ValueError, match="one answer per row"):
        read_completions(tmp_path / "c.jsonl", rows)
    with pytest.raises(FileNotFoundError):
        read_completions(tmp_path / "none.jsonl", rows)


def test_eval_needs_a_model_or_completions(prepared, capsys):
    assert main(["grpo", "eval", "--data", str(prepared)]) == 2
    assert "--completions" in capsys.readouterr().err
