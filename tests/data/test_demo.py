"""The ADR demo generator (kept.data.demo) and the hand-crafted ridge baseline (kept.baseline)."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from kept.baseline import gbm_baseline, handcrafted_features, ridge_baseline
from kept.data.demo import generate as demo  # generate_demo looks simulate_recording up here
from kept.data.demo import (
    ADR_SUBACTIVITIES,
    FAULT_CATALOGUE,
    generate_demo,
    load_faults,
    simulate_recording,
)
from pose.kinematics import fill_missing, joint_angles
from pose.skeleton import COCO17

N_TRAIN, N_TEST = 4, 3
CATEGORIES = [c for cats in ADR_SUBACTIVITIES.values() for c in cats]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adr") / "demo"
    return generate_demo(out, seed=3, train_per_category=N_TRAIN, test_per_category=N_TEST,
                         progress=False)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_subactivities() -> None:
    assert ADR_SUBACTIVITIES == {
        "basketball": ("mid_range_shooting", "mikan_layup", "reverse_layup"),
        "soccer": ("penalty_kick", "juggling", "dribbling"),
        "rock_climbing": ("climbing",),
    }
    assert set(FAULT_CATALOGUE) == set(CATEGORIES)
    for cat, faults in FAULT_CATALOGUE.items():
        assert len({f["kind"] for f in faults}) == len(faults)
        assert any(f["delay"] for f in faults), f"{cat} has no timing fault"
        assert {f["node_type"] for f in faults} <= set(COCO17.node_types)


def test_layout_and_counts(tiny: Path) -> None:
    assert sorted(p.name for p in tiny.iterdir()) == [
        "dataset.json", "faults.json", "keypoints", "pairs.csv", "samples.csv"]
    assert not list(tiny.parent.glob("demo.tmp-*")), "temp folder left behind"
    meta = json.loads((tiny / "dataset.json").read_text())
    assert meta["name"] == "adr-demo" and meta["fps"] == 30.0 and meta["skeleton"] == "coco17"
    assert meta["score_range"] == [1, 10] and meta["up_axis"] == "y"
    assert meta["generator"]["name"] == "kept.data.demo" and meta["generator"]["seed"] == 3

    samples = _rows(tiny / "samples.csv")
    assert list(samples[0]) == [
        "id", "split", "category", "score", "subject", "commentary", "sport"]
    assert len(samples) == len(CATEGORIES) * (N_TRAIN + N_TEST)
    assert len({r["id"] for r in samples}) == len(samples)
    for cat in CATEGORIES:
        for split, n in (("train", N_TRAIN), ("test", N_TEST)):
            assert sum(r["category"] == cat and r["split"] == split for r in samples) == n
    sport_of = {c: s for s, cats in ADR_SUBACTIVITIES.items() for c in cats}
    assert all(r["sport"] == sport_of[r["category"]] for r in samples)
    stems = sorted(p.stem for p in (tiny / "keypoints").glob("*.npy"))
    assert stems == sorted(r["id"] for r in samples)

    pairs = _rows(tiny / "pairs.csv")
    assert list(pairs[0]) == ["id_a", "id_b", "split", "description"]
    expected = set()
    for (cat, split) in {(r["category"], r["split"]) for r in samples}:
        ids = sorted(r["id"] for r in samples if r["category"] == cat and r["split"] == split)
        expected |= {(a, b, split) for a, b in combinations(ids, 2)}
    got = [(p["id_a"], p["id_b"], p["split"]) for p in pairs]
    assert len(got) == len(set(got)) == len(expected)
    assert set(got) == expected
    per_category = N_TRAIN * (N_TRAIN - 1) // 2 + N_TEST * (N_TEST - 1) // 2
    assert len(pairs) == len(CATEGORIES) * per_category


def test_arrays(tiny: Path) -> None:
    any_nan = False
    for path in sorted((tiny / "keypoints").glob("*.npy")):
        arr = np.load(path)
        assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[1:] == (17, 3)
        assert 30 <= arr.shape[0] <= 300, arr.shape
        finite = np.isfinite(arr)
        assert finite.mean() > 0.9
        assert np.all(np.abs(arr[finite]) < 30.0)
        assert not np.isinf(arr).any()
        any_nan |= bool(np.isnan(arr).any())
        # metres, a person: the body spans roughly 1-3 m vertically (+y up, camera tilt small)
        filled = fill_missing(arr)
        height = np.median(filled[:, [0, 1, 2], 1].mean(1) - filled[:, [15, 16], 1].mean(1))
        assert 1.0 < height < 2.3, height
    assert any_nan, "no recording has dropped joints"


def test_scores_and_text(tiny: Path) -> None:
    samples = _rows(tiny / "samples.csv")
    scores = np.array([float(r["score"]) for r in samples])
    assert np.all((scores >= 1.0) & (scores <= 10.0))
    assert all(r["score"] == f"{float(r['score']):.1f}" for r in samples)
    assert scores.std() > 0.5
    comments = [r["commentary"] for r in samples]
    assert all(c.strip() for c in comments)
    assert len(set(comments)) > len(comments) // 2
    assert all(1 <= c.count(". ") + 1 <= 3 for c in comments)
    pairs = _rows(tiny / "pairs.csv")
    descriptions = [p["description"] for p in pairs]
    assert all(d.strip() and "Player" in d for d in descriptions)
    assert len(set(descriptions)) > len(descriptions) // 2
    # more than one wording of the same comparison
    assert len({" ".join(d.split()[:3]) for d in descriptions}) > 3
    by_id = {r["id"]: float(r["score"]) for r in samples}
    for p in pairs:
        a, b = by_id[p["id_a"]], by_id[p["id_b"]]
        if abs(a - b) >= 1.0:
            better = "1" if a > b else "2"
            assert f"Player {better}" in p["description"].split(".")[-2], p["description"]


def test_faults_json(tiny: Path) -> None:
    samples = {r["id"]: r for r in _rows(tiny / "samples.csv")}
    faults = load_faults(tiny)
    assert faults == load_faults(tiny / "faults.json")
    assert set(faults) == set(samples)
    n_faulty = 0
    for rid, items in faults.items():
        cat = samples[rid]["category"]
        kinds = {f["kind"]: f for f in FAULT_CATALOGUE[cat]}
        assert len(items) <= 3
        assert len({f["kind"] for f in items}) == len(items)
        n_faulty += bool(items)
        for f in items:
            assert set(f) == {"node_type", "phase", "t_start", "t_end", "magnitude", "kind", "side"}
            assert f["node_type"] in COCO17.node_types
            assert f["kind"] in kinds and kinds[f["kind"]]["node_type"] == f["node_type"]
            assert f["phase"] in kinds[f["kind"]]["phases"]
            assert 0.0 <= f["t_start"] < f["t_end"] <= 1.0
            assert 0.0 <= f["magnitude"] <= 1.0
            assert f["side"] in ("left", "right", "both")
    assert n_faulty > len(faults) // 3


def test_deterministic(tiny: Path, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", seed=3, train_per_category=N_TRAIN,
                          test_per_category=N_TEST, progress=False)
    assert _tree_bytes(again) == _tree_bytes(tiny)
    other = generate_demo(tmp_path / "other", seed=4, train_per_category=N_TRAIN,
                          test_per_category=N_TEST, progress=False)
    a, b = _tree_bytes(other), _tree_bytes(tiny)
    assert a.keys() == b.keys()
    assert a["samples.csv"] != b["samples.csv"]
    assert sum(a[k] != b[k] for k in a if k.endswith(".npy")) == sum(k.endswith(".npy") for k in a)


def test_independent_of_hash_seed(tiny: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "hashed"
    code = ("from kept.data.demo import generate_demo; "
            f"generate_demo({str(out)!r}, seed=3, train_per_category={N_TRAIN}, "
            f"test_per_category={N_TEST}, progress=False)")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert _tree_bytes(out) == _tree_bytes(tiny)


def test_counts_do_not_reshuffle(tiny: Path, tmp_path: Path) -> None:
    fewer = generate_demo(tmp_path / "fewer", seed=3, train_per_category=2, test_per_category=3,
                          progress=False)
    for path in (fewer / "keypoints").glob("*.npy"):
        assert path.read_bytes() == (tiny / "keypoints" / path.name).read_bytes()


def test_refuses_non_empty(tmp_path: Path) -> None:
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate_demo(out, train_per_category=2, test_per_category=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    generate_demo(out, train_per_category=2, test_per_category=2, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "samples.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    empty = tmp_path / "empty"
    empty.mkdir()
    generate_demo(empty, train_per_category=2, test_per_category=2, progress=False)
    assert (empty / "pairs.csv").is_file()


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = demo.simulate_recording
    monkeypatch.setattr(demo, "simulate_recording", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(tmp_path / "cut", train_per_category=2, test_per_category=2, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("category", CATEGORIES)
def test_fault_changes_its_joint_angle_in_its_phase(category: str) -> None:
    for spec in FAULT_CATALOGUE[category]:
        fault = {"kind": spec["kind"], "magnitude": 0.8, "phase": spec["phases"][-1]}
        clean = simulate_recording([11, 5], category, [])
        faulty = simulate_recording([11, 5], category, [fault])
        assert clean.xyz.shape == faulty.xyz.shape
        assert np.array_equal(np.isnan(clean.xyz), np.isnan(faulty.xyz))  # same person, noise
        (f,) = faulty.faults
        assert (f["kind"], f["phase"], f["node_type"]) == (spec["kind"], fault["phase"],
                                                           spec["node_type"])
        sides = ["left", "right"] if f["side"] == "both" else [f["side"]]
        joints = [f"{s}_{f['node_type']}" for s in sides]
        a0 = joint_angles(fill_missing(clean.xyz), COCO17, joints)
        a1 = joint_angles(fill_missing(faulty.xyz), COCO17, joints)
        diff = np.abs(a1 - a0).max(axis=1) * 180.0  # degrees per frame
        n = len(diff)
        lo, hi = int(np.floor(f["t_start"] * n)), int(np.ceil(f["t_end"] * n))
        inside = diff[lo:hi].max()
        outside = np.concatenate([diff[:lo], diff[hi:]]).max(initial=0.0)
        assert inside > 5.0, (spec["kind"], inside)
        assert inside > outside, (spec["kind"], inside, outside)
        # the fault window lies around the fault's phase
        p0, p1 = faulty.phases[fault["phase"]]
        assert f["t_start"] < p1 + 0.1 and f["t_end"] > p0 - 0.1


def test_simulation_is_seeded() -> None:
    a = simulate_recording(7, "climbing", [], noise=False, dropout=False)
    b = simulate_recording(7, "climbing", [], noise=False, dropout=False)
    c = simulate_recording(8, "climbing", [], noise=False, dropout=False)
    assert np.array_equal(a.xyz, b.xyz) and not np.isnan(a.xyz).any()
    assert a.xyz.shape != c.xyz.shape or not np.allclose(a.xyz, c.xyz)
    with pytest.raises(ValueError, match="unknown fault kind"):
        simulate_recording(7, "climbing", [{"kind": "shallow_dip", "magnitude": 0.5}])
    with pytest.raises(ValueError, match="unknown sub-activity"):
        simulate_recording(7, "bowling", [])


def test_handcrafted_features_and_ridge(tiny: Path) -> None:
    samples = _rows(tiny / "samples.csv")
    X = np.stack([handcrafted_features(np.load(tiny / "keypoints" / f"{r['id']}.npy"), COCO17, 30.0)
                  for r in samples])
    n_angles = len({j for m in COCO17.node_types.values() for j in m})
    assert X.shape == (len(samples), 4 * (n_angles + COCO17.num_joints))
    assert np.isfinite(X).all()
    y = np.array([float(r["score"]) for r in samples])
    train = np.array([r["split"] == "train" for r in samples])
    pred = ridge_baseline(X[train], y[train], X[~train])
    assert pred.shape == ((~train).sum(),) and np.isfinite(pred).all()
    # a score that is linear in two features (in their own units) is recovered on held-out rows
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(200, 6)) * [1, 10, 0.1, 1, 1, 1] + [0, 50, 0, 0, 0, 0]
    target = 2.0 * Z[:, 0] - 0.3 * Z[:, 1] + 7.0
    np.testing.assert_allclose(ridge_baseline(Z[:150], target[:150], Z[150:]), target[150:], atol=0.05)
    with pytest.raises(ValueError):
        ridge_baseline(X[train], y[train][:-1], X[~train])


def test_gbm_baseline_learns_a_step_and_the_category() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    cats = np.where(rng.random(400) < 0.5, "kick", "shot")
    y = 3.0 * (X[:, 0] > 0) + np.where(cats == "kick", 2.0, 0.0)  # a step no linear model fits
    pred = gbm_baseline(X[:300], y[:300], cats[:300], X[300:], cats[300:])
    assert np.abs(pred - y[300:]).mean() < 0.3
    linear = ridge_baseline(np.hstack([X, (cats == "kick")[:, None]])[:300], y[:300],
                            np.hstack([X, (cats == "kick")[:, None]])[300:])
    assert np.abs(pred - y[300:]).mean() < 0.5 * np.abs(linear - y[300:]).mean()
    np.testing.assert_array_equal(pred, gbm_baseline(X[:300], y[:300], cats[:300], X[300:], cats[300:]))  # seeded
    with pytest.raises(ValueError, match="one score per training row"):
        gbm_baseline(X[:300], y[:299], cats[:300], X[300:], cats[300:])
