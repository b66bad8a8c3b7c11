"""The scripts in examples/ run on the public API (so they never rot)."""

import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_train_own_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train_own_dataset.py", "--out", str(tmp_path / "own"), "--epochs", "1"])
    runpy.run_path(str(EXAMPLES / "train_own_dataset.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "my-shots" in out and "test spearman" in out
    assert (tmp_path / "own" / "run" / "metrics.json").exists()


def test_compare_two_recordings(tiny_config, tmp_path, monkeypatch, capsys):
    from kept.train import train

    tiny_config.train.max_epochs = 1
    train(tiny_config, tmp_path / "run")
    monkeypatch.setattr(sys, "argv", ["compare_two_recordings.py", "--checkpoint", str(tmp_path / "run"),
                                      "squat_08", "squat_10"])
    runpy.run_path(str(EXAMPLES / "compare_two_recordings.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "squat_08: score" in out and "squat_10 reasoning path" in out


def test_plot_reasoning_paths(tiny_config, tmp_path, monkeypatch, capsys):
    from kept.train import train

    tiny_config.train.max_epochs = 1
    train(tiny_config, tmp_path / "run")
    monkeypatch.setattr(sys, "argv", ["plot_reasoning_paths.py", "--checkpoint", str(tmp_path / "run"),
                                      "--out", str(tmp_path / "plots")])
    runpy.run_path(str(EXAMPLES / "plot_reasoning_paths.py"), run_name="__main__")
    assert "2 path trees" in capsys.readouterr().out
    assert (tmp_path / "plots" / "selected_nodes.png").stat().st_size > 1000
    assert len(list((tmp_path / "plots").glob("paths_*.png"))) == 2
