"""`kept pose extract` and `kept pose show` from the command line."""

import json

import numpy as np

from kept.cli import main
from pose.sequence import KeypointSequence


def test_extract_files_then_show(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", rng.normal(size=(8, 17, 3)).astype(np.float32))
    out, cache = tmp_path / "out", tmp_path / "cache"
    src = f"{tmp_path / 'a.npy'},{tmp_path / 'b.npy'}"
    args = ["pose", "extract", src, "--backend", "file", "--skeleton", "coco17", "--fps", "30",
            "--out", str(out), "--cache", str(cache), "--shard", "0/1"]
    assert main(args) == 0
    assert "2 extracted" in capsys.readouterr().out
    seq = KeypointSequence.load(out / "a.npz")
    assert seq.xyz.shape == (8, 17, 3) and seq.skeleton == "coco17" and seq.fps == 30.0
    assert main(args) == 0
    assert "2 from the cache" in capsys.readouterr().out
    report = json.loads((out / "extract-report-0of1.json").read_text())
    assert len(report["cached"]) == 2

    assert main(["pose", "show", str(out / "a.npz"), "--out", str(tmp_path / "a.png"), "--frames", "0,7"]) == 0
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_extract_errors_are_clear(tmp_path, capsys):
    assert main(["pose", "extract", str(tmp_path), "--backend", "mmpose", "--out", str(tmp_path / "o")]) == 2
    assert "no videos" in capsys.readouterr().err
    assert main(["pose", "extract", "x.npy", "--backend", "file", "--device", "cuda:0",
                 "--out", str(tmp_path / "o")]) == 2
    assert "do not apply" in capsys.readouterr().err
