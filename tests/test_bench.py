"""kept bench: the benchmark code runs and reports what it says (no timing is asserted)."""

import json

import pytest

from kept import bench
from kept.cli import main


def test_bench_paths_reports_every_form(tmp_path):
    result = bench.bench_paths(depths=(2, 3), recordings=4, batch=2, repeats=1, simulations=300,
                               naive_budget_s=60.0, progress=False)
    rows = result["depths"]
    assert [r["depth"] for r in rows] == [2, 3] and [r["paths"] for r in rows] == [16, 64]
    for r in rows:
        assert r["exhaustive_ms"] > 0 and r["floor_ms"] > 0 and r["naive_ms"] > 0
        assert r["ratio_to_floor"] == pytest.approx(r["exhaustive_ms"] / r["floor_ms"])
        # width 8 covers every prefix of these small trees, and 300 simulations every path
        assert r["beam_found_argmax"] == 1.0 and r["mcts_found_argmax"] == 1.0
        assert r["mcts_evaluations"] == r["paths"]
    assert rows[0]["beam_evaluations"] == 4 + 16
    assert "| 3 | 64 |" in bench.format_paths_table(result)


def test_naive_form_is_skipped_over_budget():
    row = bench.bench_paths(depths=(3,), recordings=2, batch=2, repeats=1, simulations=5, naive_budget_s=0.0,
                            progress=False)["depths"][0]
    assert row["naive_ms"] is None and row["naive_estimated_ms"] > 0
    assert "skipped" in bench.format_paths_table({"depths": [row]})


def test_bench_cli_paths_and_compare(tmp_path, capsys):
    out = tmp_path / "paths.json"
    assert main(["bench", "paths", "--depths", "2", "--recordings", "2", "--batch", "2", "--repeats", "1",
                 "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["machine"]["device"] == "cpu" and saved["depths"][0]["paths"] == 16
    assert main(["bench", "paths", "--depths", "2,x"]) == 2
    assert "comma-separated" in capsys.readouterr().err
    out = tmp_path / "compare.json"
    assert main(["bench", "compare", "--repeats", "1", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["compare_ms"] > 0 and saved["compare_without_text_ms"] > 0 and saved["text_branch"]


def test_bench_train_counts_pairs(tiny_config):
    tiny_config.text.enabled = False
    result = bench.bench_train(tiny_config, epochs=1, progress=False)
    assert result["steps"] >= 1 and result["pairs"] > 0 and result["pairs_per_second"] > 0
    assert result["peak_rss_mb"] > 0 and result["text_branch"] is False
