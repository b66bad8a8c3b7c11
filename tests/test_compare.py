"""`kept compare`: two recordings through a trained model, and the errors it promises."""

import json

import numpy as np
import pytest

from kept.cli import main
from kept.train import train


@pytest.fixture
def run(tiny_config, tmp_path):
    tiny_config.train.max_epochs = 1
    train(tiny_config, tmp_path / "run")
    return tmp_path / "run"


def test_compare_by_id_and_by_file_agree_with_eval(run, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "squat_08", "squat_09", "--checkpoint", str(run), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "reasoning path" in text and "physical differences" in text and " deg vs " in text
    result = json.loads((out / "compare.json").read_text())
    for name in ("paths_squat_08", "paths_squat_09", "residual", "poses", "angles"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").exists()
    assert result["order"] == ["squat_08", "squat_09"]
    side = result["recordings"]["squat_08"]
    assert len(side["path"]) == 2 and len(side["top_paths"]) == 9  # 3 node types, depth 2: 9 paths
    qs = [p["q"] for p in side["top_paths"]]
    assert qs == sorted(qs, reverse=True) and side["path"][0]["node"] == side["top_paths"][0]["path"][0]
    assert set(result["residual"]) == {"hip", "knee", "ankle", "shoulder", "elbow"}
    physical = result["physical"]
    subject = "squat_08" if side["score"] < result["recordings"]["squat_09"]["score"] else "squat_09"
    assert physical["subject"] == subject and physical["rank"] == "local"
    assert len(physical["findings"]) == 2 * 3  # depth 2 x the tiny skeleton's 3 node joints
    top = physical["findings"][0]
    assert top["angle_deg"][subject] + top["angle_diff_deg"] == pytest.approx(
        top["angle_deg"][physical["other"]], abs=2e-3)
    predicted = {row.split(",")[0]: float(row.split(",")[3]) for row in (run / "predictions.csv").read_text().splitlines()[1:]}
    assert side["score"] == pytest.approx(predicted["squat_08"], abs=1e-3)

    np.save(tmp_path / "a.npy", np.load(tiny_dataset / "keypoints" / "squat_08.npy"))
    assert main(["compare", str(tmp_path / "a.npy"), f"{tiny_dataset}::squat_09", "--checkpoint", str(run),
                 "--format", "json", "--category", "squat"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["recordings"]["a"]["score"] == pytest.approx(side["score"], abs=1e-4)
    parts = side["score_parts"]  # the statistics branch's part and what the network adds
    assert parts["statistics"] + parts["network"] == pytest.approx(side["score"], abs=1e-3)
    assert 1 <= len(side["penalties"]) <= 5 and set(side["penalties"][0]) == {"segment", "time", "node", "score_lost"}
    lost = [p["score_lost"] for p in side["penalties"]]
    assert lost == sorted(lost, reverse=True)
    assert main(["compare", "squat_08", "squat_09", "--checkpoint", str(run), "--category", "golf"]) == 2
    assert "not one the model was trained on" in capsys.readouterr().err


@pytest.mark.parametrize("array, message", [
    (np.zeros((10, 4, 3)), "do not match the model's skeleton"),
    (np.zeros((1, 5, 3)), "at least 2 frames"),
    (np.full((10, 5, 3), np.nan), "NaN"),
])
def test_compare_errors(run, tmp_path, capsys, array, message):
    np.save(tmp_path / "bad.npy", array.astype(np.float32))
    np.save(tmp_path / "ok.npy", np.random.default_rng(0).normal(size=(10, 5, 3)).astype(np.float32))
    assert main(["compare", str(tmp_path / "bad.npy"), str(tmp_path / "ok.npy"), "--checkpoint", str(run)]) == 2
    assert message in capsys.readouterr().err


def test_compare_unknown_input(run, capsys):
    assert main(["compare", "nope.txt", "squat_09", "--checkpoint", str(run)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_plot_command(run, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", "residual", "squat_08", "squat_09", "--checkpoint", str(run), "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["residual.png"]
    assert main(["plot", "paths", "squat_08", "squat_09", "--checkpoint", str(run), "--out", str(out),
                 "--format", "pdf"]) == 0
    assert sorted(p.name for p in out.glob("paths_*.pdf")) == ["paths_squat_08.pdf", "paths_squat_09.pdf"]


@pytest.mark.parametrize("generator", ["retrieval", "decoder"])
def test_compare_end_to_end_on_demo_keypoints(tmp_path, capsys, generator):
    """Demo data (with descriptions) -> a tiny KEPT with its description generator -> `kept compare`."""
    from kept.data.demo import generate_demo
    from kept.explain.grounding import verdict

    demo = generate_demo(tmp_path / "demo", seed=0, train_per_category=3, test_per_category=2, progress=False)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--data-root", str(demo), "--run-dir", str(run),
                 "model.dim=8", "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
                 "text.layers=1", "text.hidden=32", "text.max_length=16", "train.max_epochs=1",
                 f"text.generator={generator}", "train.progress_bar=false", f"data.cache_dir={tmp_path / 'cache'}"]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["compare", "climbing_test_000", "climbing_test_001", "--checkpoint", str(run), "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert set(result) == {"recordings", "order", "better", "score_difference", "residual", "implicit_edges",
                           "physical", "description"}
    side = result["recordings"]["climbing_test_000"]
    assert set(side) == {"score", "path", "top_paths", "segment_times", "score_parts", "penalties"}
    assert len(side["top_paths"]) == 10
    assert all(set(step) == {"segment", "time", "node"} for step in side["path"])
    assert len(result["residual"]) == 17 and result["implicit_edges"]["edges"]
    assert isinstance(result["description"], str) and f"difference: {result['description']}" in capsys.readouterr().out
    if generator == "retrieval":  # a training description whose verdict follows the two scores
        says = {None: 0, "climbing_test_000": 1, "climbing_test_001": 2}[result["better"]]
        assert verdict(result["description"]) == says
        train_texts = [line for line in (demo / "pairs.csv").read_text().splitlines() if ",train," in line]
        first = result["description"].split(". ")[0]
        assert any(first in line for line in train_texts)
