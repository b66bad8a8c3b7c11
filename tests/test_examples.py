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
