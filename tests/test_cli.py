"""The `kept data demo` and `kept baseline` commands, and the installed console script."""

import json
import shutil
import subprocess

import pytest

from kept.cli import main


def test_demo_then_baseline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["data", "demo", "--out", str(out), "--seed", "1", "--train-per-category", "4",
                 "--test-per-category", "3"]) == 0
    assert (out / "faults.json").exists()
    assert main(["data", "demo", "--out", str(out)]) == 2  # refuses to overwrite
    assert "overwrite" in capsys.readouterr().err.lower()

    metrics_file = tmp_path / "baseline.json"
    assert main(["baseline", "--dataset", "folder", "--data-root", str(out), "--out", str(metrics_file)]) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["n_recordings"] == 21 and metrics["n_pairs"] == 21
    assert len(metrics["per_category"]) == 7
    assert "pair_acc" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("kept") is None, reason="console script not installed")
def test_console_script_help():
    res = subprocess.run(["kept", "train", "--help"], capture_output=True, text=True, check=True)
    assert "--synthetic" in res.stdout and "key=value" in res.stdout
