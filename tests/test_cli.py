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
    assert set(metrics["baselines"]) == {"ridge", "segment_ridge", "segment_gbm", "stats_branch", "ceiling"}  # demo: faults.json
    assert metrics["baselines"]["ridge"]["score"] == metrics["score"]
    out = capsys.readouterr().out
    assert "pair_acc" in out and "segment_ridge" in out and "ceiling" in out


def test_per_category_ridge_fits_each_category_on_its_own():
    import numpy as np

    from kept.baseline import per_category_ridge

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    cat = np.array(["a", "b"] * 100)
    y = np.where(cat == "a", X[:, 0], -X[:, 0])  # opposite signs: one global fit cannot do both
    pred = per_category_ridge(X[:150], y[:150], cat[:150], X[150:], cat[150:])
    assert np.corrcoef(pred, y[150:])[0, 1] > 0.99
    unseen = per_category_ridge(X[:150], y[:150], cat[:150], X[150:152], np.array(["c", "c"]))
    assert unseen.shape == (2,)  # a category without training data gets the global fit


@pytest.mark.skipif(shutil.which("kept") is None, reason="console script not installed")
def test_console_script_help():
    res = subprocess.run(["kept", "train", "--help"], capture_output=True, text=True, check=True)
    assert "--synthetic" in res.stdout and "key=value" in res.stdout


def test_stats_match_the_generators_counts(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["data", "demo", "--out", str(out), "--train-per-category", "4", "--test-per-category", "3"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert len(stats["categories"]) == 7 and stats["splits"] == ["train", "test"]
    for c in stats["categories"].values():
        assert c["recordings"] == {"train": 4, "test": 3}
        assert c["pairs"] == {"train": 6, "test": 3}  # all unordered pairs within sub-activity and split
    assert stats["total"]["pairs"] == {"train": 42, "test": 21}
    assert stats["with_commentary"] == 49 and stats["with_description"] == 63
    assert main(["data", "stats", str(out)]) == 0
    assert "total" in capsys.readouterr().out


def test_baseline_retrieves_descriptions(tmp_path, capsys):
    from kept.baseline import retrieval_descriptions
    from kept.data.folder import load_dataset

    out = tmp_path / "demo"
    assert main(["data", "demo", "--out", str(out), "--train-per-category", "4", "--test-per-category", "3"]) == 0
    ds = load_dataset(out)
    found = retrieval_descriptions(ds, "test", progress=False)
    train_texts = {p.description for p in ds.pairs_in("train")}
    assert set(found) == {(p.id_a, p.id_b) for p in ds.pairs_in("test")} and set(found.values()) <= train_texts
    capsys.readouterr()
    metrics_file = tmp_path / "b.json"
    assert main(["baseline", "--dataset", "folder", "--data-root", str(out), "--out", str(metrics_file)]) == 0
    metrics = json.loads(metrics_file.read_text())
    assert set(metrics["text"]) >= {"bleu_1", "bleu_4", "meteor", "rouge_l", "cider"}
    assert "text" in metrics["per_category"]["climbing"]
