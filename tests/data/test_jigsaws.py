"""Tests of the JIGSAWS reader and converter (kept.data.jigsaws) on a small hand-made release."""

from __future__ import annotations

import itertools
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from kept.data.folder import load_dataset
from kept.data.jigsaws import (
    INSTRUMENT_SKELETON, JAW_LENGTH, SHAFT_STEP, apply_fold, convert_jigsaws, folds,
    instrument_keypoints, load_jigsaws, read_kinematics, read_meta,
)
from pose.kinematics import joint_angles
from pose.skeleton import Skeleton

TASKS = ("Knot_Tying", "Suturing")
TRIALS = {"B": (1, 2, 3), "C": (1, 2), "D": (1, 3)}
FRAMES = 40


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _kinematics(rng: np.random.Generator, frames: int = FRAMES) -> np.ndarray:
    """Synthetic 76-column rows: drifting positions (metres), valid rotations, gripper angles."""
    rows = np.zeros((frames, 76))
    for o in (0, 19, 38, 57):
        start = rng.uniform(-0.1, 0.1, 3)
        rows[:, o:o + 3] = start + np.cumsum(rng.normal(0, 1e-3, (frames, 3)), axis=0)
        rows[:, o + 3:o + 12] = np.stack([_rotation(rng).reshape(-1) for _ in range(frames)])
        rows[:, o + 12:o + 18] = rng.normal(0, 0.01, (frames, 6))
        rows[:, o + 18] = rng.uniform(0.05, 1.2, frames)
    return rows


def _write_kinematics(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{v:15.6f}" for v in row) + " \n" for row in rows))


def _make_release(root: Path) -> dict:
    """Two tasks, users B/C/D with 2-3 trials; Suturing_E001 has no kinematics, Suturing_D005
    no meta line. Returns trial -> (kinematics rows, meta dict)."""
    rng = np.random.default_rng(0)
    truth = {}
    for task in TASKS:
        lines = []
        for user, trials in TRIALS.items():
            for t in trials:
                name = f"{task}_{user}{t:03d}"
                rows = np.round(_kinematics(rng), 6)
                _write_kinematics(root / task / "kinematics" / "AllGestures" / f"{name}.txt", rows)
                items = [int(v) for v in rng.integers(1, 6, 6)]
                skill = {"B": "N", "C": "I", "D": "E"}[user]
                truth[name] = (rows, {"skill": skill, "grs": float(sum(items)),
                                      "grs_items": [float(v) for v in items]})
                lines.append(f"{name}\t\t{skill}\t{sum(items)}\t\t" + "\t".join(map(str, items)) + "  ")
        if task == "Suturing":
            lines.append("Suturing_E001\t\tE\t20\t\t3\t3\t3\t4\t3\t4")
            _write_kinematics(root / task / "kinematics" / "AllGestures" / "Suturing_D005.txt",
                              _kinematics(rng))
        (root / task / f"meta_file_{task}.txt").write_text("\n".join(lines) + "\n\n \n")
    return truth


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("jigsaws_release")
    return root, _make_release(root)


@pytest.fixture(scope="module")
def converted(release, tmp_path_factory):
    root, _ = release
    out, report = convert_jigsaws(root, tmp_path_factory.mktemp("conv") / "ds", progress=False)
    return out, report


def _load_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_jigsaws(*args, **kwargs)


# -- readers ---------------------------------------------------------------------------------
def test_read_kinematics(release):
    root, truth = release
    kin = read_kinematics(root / "Suturing" / "kinematics" / "AllGestures" / "Suturing_B001.txt")
    assert kin.shape == (FRAMES, 76) and kin.dtype == np.float64
    np.testing.assert_array_equal(kin, truth["Suturing_B001"][0])


def test_read_kinematics_errors(tmp_path):
    rows = np.zeros((4, 76))
    path = tmp_path / "Suturing_B001.txt"
    _write_kinematics(path, rows)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(maxsplit=1)[0]  # 75 values on line 3
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{path.name} line 3: 75 values, expected 76"):
        read_kinematics(path)
    lines = [" ".join(["0.1"] * 76)] * 3
    lines[1] = " ".join(["0.1"] * 4 + ["abc"] + ["0.1"] * 71)
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=rf"{path.name} line 2: column 5 holds 'abc'"):
        read_kinematics(path)
    path.write_text("\n  \n")
    with pytest.raises(ValueError, match="no frames"):
        read_kinematics(path)


def test_read_meta(release, tmp_path):
    root, truth = release
    meta = read_meta(root / "Suturing" / "meta_file_Suturing.txt")
    assert len(meta) == 8 and "Suturing_E001" in meta
    for name in ("Suturing_B001", "Suturing_D003"):
        assert meta[name] == truth[name][1]
    path = tmp_path / "meta_file_Suturing.txt"
    good = "Suturing_B001\t\tN\t12\t\t2\t2\t2\t2\t2\t2\n"
    for bad, match in [
        ("Suturing_B002 N 12 2 2 2 2 2\n", "line 2: 8 fields, expected 9"),
        ("Suturing_B002 X 12 2 2 2 2 2 2\n", "line 2: skill 'X'"),
        ("Suturing_B002 N twelve 2 2 2 2 2 2\n", "line 2: GRS scores"),
        ("Suturing_B002 N 40 2 2 2 2 2 2\n", r"line 2: GRS total 40 .* outside \[6, 30\]"),
        ("Suturing_B001 N 12 2 2 2 2 2 2\n", "line 2: trial 'Suturing_B001' listed twice"),
    ]:
        path.write_text(good + bad)
        with pytest.raises(ValueError, match=rf"{path.name} {match}"):
            read_meta(path)


# -- geometry --------------------------------------------------------------------------------
def _frame(g_left: float, g_right: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One kinematics row with hand-made slave poses; returns (row, R_left, R_right)."""
    c, s = np.cos(0.4), np.sin(0.4)
    r_left = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # tilted about x
    r_right = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # tilted about y
    row = np.zeros(76)
    row[38:41], row[41:50], row[56] = [0.1, 0.2, 0.3], r_left.reshape(-1), g_left
    row[57:60], row[60:69], row[75] = [0.16, 0.2, 0.3], r_right.reshape(-1), g_right
    return row, r_left, r_right


def test_instrument_geometry():
    skel = Skeleton.from_spec(INSTRUMENT_SKELETON, "jigsaws")
    assert skel.num_joints == 10 and skel.node_names == ("tip", "body", "tail")
    row, r_left, r_right = _frame(0.7, -0.3)
    kp = instrument_keypoints(row[None])
    assert kp.shape == (1, 10, 3)
    j = {name: kp[0, skel.index(name)] for name in skel.joints}
    np.testing.assert_allclose(j["tip_L"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(j["body_L"], j["tip_L"] - SHAFT_STEP * r_left[:, 2])
    np.testing.assert_allclose(j["tail_R"], j["tip_R"] - 2 * SHAFT_STEP * r_right[:, 2])
    for side in "LR":
        assert np.linalg.norm(j[f"body_{side}"] - j[f"tip_{side}"]) == pytest.approx(SHAFT_STEP)
        assert np.linalg.norm(j[f"jaw_a_{side}"] - j[f"tip_{side}"]) == pytest.approx(JAW_LENGTH)
    a = joint_angles(kp, skel, ["tip_L", "tip_R", "tail_L"], up_axis="z")[0]
    assert a[0] == pytest.approx(0.7 / np.pi)  # tip angle / pi == gripper angle / pi
    assert a[1] == pytest.approx(0.3 / np.pi)  # a negative angle keeps its magnitude
    assert a[2] == pytest.approx(0.4 / np.pi)  # shaft tilted 0.4 rad from vertical
    # the body angle follows the instruments' relative orientation
    turned, _, _ = _frame(0.7, -0.3)
    turned[41:50] = np.eye(3).reshape(-1)
    b0 = joint_angles(kp, skel, ["body_L"], up_axis="z")[0, 0]
    b1 = joint_angles(instrument_keypoints(turned[None]), skel, ["body_L"], up_axis="z")[0, 0]
    assert b0 != pytest.approx(b1)


def test_instrument_keypoints_rejects_wrong_width():
    with pytest.raises(ValueError, match="76"):
        instrument_keypoints(np.zeros((3, 75)))


# -- conversion ------------------------------------------------------------------------------
def test_convert_report(converted, release):
    out, report = converted
    assert report["converted"] == 14
    assert report["skipped"] == {"no_kinematics": ["Suturing_E001"], "no_meta": ["Suturing_D005"],
                                 "unreadable": []}
    ds = load_dataset(out, val_fraction=0)
    assert len(ds.recordings) == 14 and ds.categories() == list(TASKS)
    assert ds.score_range == (6.0, 30.0) and ds.up_axis == "z" and ds.fps == 30.0
    r = ds.recordings["Knot_Tying_C002"]
    truth = release[1]["Knot_Tying_C002"][1]
    assert (r.score, r.subject, r.meta["skill"], r.meta["supertrial"]) == (truth["grs"], "C", "I", "2")
    assert [float(r.meta[f"grs_{i}"]) for i in range(1, 7)] == truth["grs_items"]


def test_convert_counts_unreadable_and_missing_tasks(release, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(release[0], root)
    bad = root / "Knot_Tying" / "kinematics" / "AllGestures" / "Knot_Tying_B002.txt"
    bad.write_text(bad.read_text().replace("\n", " 1.0\n", 1))  # 77 values on line 1
    _, report = convert_jigsaws(root, tmp_path / "out", progress=False)
    assert report["converted"] == 13 and report["skipped"]["unreadable"] == ["Knot_Tying_B002"]
    assert "line 1" in report["errors"]["Knot_Tying_B002"]
    assert report["missing_tasks"] == ["Needle_Passing"]


def test_convert_empty_root_raises(tmp_path):
    (tmp_path / "Suturing").mkdir()
    with pytest.raises(ValueError, match=rf"no JIGSAWS trial converted from {tmp_path}.*AllGestures"):
        convert_jigsaws(tmp_path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="meta_file_<Task>.txt"):
        load_jigsaws(tmp_path, cache_dir=tmp_path / "cache")


def test_load_jigsaws_round_trip(release, tmp_path):
    root, truth = release
    with pytest.warns(UserWarning, match="1 without kinematics, 1 without a meta line"):
        ds = load_jigsaws(root, cache_dir=tmp_path / "cache")
    assert ds.root.parent == tmp_path / "cache" / "jigsaws"
    again = load_dataset(ds.root)
    assert again.recordings == ds.recordings and again.pairs == ds.pairs
    assert {r.split for r in ds.recordings.values()} == {"train", "val"}
    for rid in ("Suturing_B003", "Knot_Tying_D001"):
        expected = instrument_keypoints(truth[rid][0]).astype(np.float32)
        np.testing.assert_array_equal(ds.keypoints(rid), expected)
        assert ds.recordings[rid].score == truth[rid][1]["grs"]
    assert not list((tmp_path / "cache" / "jigsaws").glob(".*"))  # no temp folder left


def test_load_jigsaws_caches(release, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(release[0], root)
    first = _load_quiet(root, cache_dir=tmp_path / "cache")
    stamps = {p: p.stat().st_mtime_ns for p in first.root.rglob("*")}
    second = _load_quiet(root, cache_dir=tmp_path / "cache", fold="louo:C")
    assert second.root == first.root
    assert {p: p.stat().st_mtime_ns for p in first.root.rglob("*")} == stamps
    # a changed source is converted again
    meta = root / "Suturing" / "meta_file_Suturing.txt"
    meta.write_text(meta.read_text().replace("Suturing_E001\t\tE\t20", "Suturing_E001\t\tE\t21"))
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 10**9))
    (root / "Suturing" / "kinematics" / "AllGestures" / "Suturing_D005.txt").unlink()
    with pytest.warns(UserWarning, match="0 without a meta line"):
        third = load_jigsaws(root, cache_dir=tmp_path / "cache")
    assert third.root == first.root and third.meta["jigsaws_report"]["skipped"]["no_meta"] == []
    assert len(list((tmp_path / "cache" / "jigsaws").iterdir())) == 1


# -- folds -----------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["loso", "louo"])
def test_folds_partition(converted, release, scheme):
    ds = load_dataset(converted[0])
    fs = folds(ds, scheme)
    tests = [set(f["test"]) for f in fs]
    assert all(a.isdisjoint(b) for a, b in itertools.combinations(tests, 2))
    assert set().union(*tests) == set(ds.recordings)
    assert fs == folds(converted[0], scheme) == folds(release[0], scheme)
    if scheme == "louo":
        assert [f["name"] for f in fs] == ["louo:B", "louo:C", "louo:D"]
        for f in fs:
            user = f["name"].split(":")[1]
            assert set(f["test"]) == {r.id for r in ds.recordings.values() if r.subject == user}
    else:
        assert [f["name"] for f in fs] == ["loso:1", "loso:2", "loso:3"]
        assert set(fs[1]["test"]) == {f"{t}_{u}002" for t in TASKS for u in "BC"}


def test_folds_bad_scheme(converted):
    with pytest.raises(ValueError, match="'loso'.*'louo'"):
        folds(converted[0], "kfold")


@pytest.mark.parametrize("spec", ["louo:B", "loso:03"])
def test_apply_fold(converted, spec):
    ds = load_dataset(converted[0])
    out = apply_fold(ds, spec)
    name = "louo:B" if spec == "louo:B" else "loso:3"
    test = {f["name"]: set(f["test"]) for f in folds(ds, name.split(":")[0])}[name]
    assert set(out.ids("test")) == test and out.meta["fold"] == name
    assert set(out.ids("train")) | set(out.ids("val")) == set(ds.recordings) - test
    assert out.held_out_val and set(out.held_out_val) == set(out.ids("val"))
    expected = set()
    for split in ("train", "val", "test"):
        for cat in TASKS:
            ids = sorted(r.id for r in out.recordings.values() if r.split == split and r.category == cat)
            expected |= {(a, b, split) for a, b in itertools.combinations(ids, 2)}
    assert {(p.id_a, p.id_b, p.split) for p in out.pairs} == expected
    assert ds.ids("test") == []  # the input is not changed
    assert apply_fold(ds, spec).recordings == out.recordings  # deterministic


def test_apply_fold_errors(converted):
    ds = load_dataset(converted[0])
    for spec, match in [("louo", "must be 'loso"), ("kfold:1", "must be 'loso"),
                        ("loso:x", "must be a number"), ("louo:Z", r"folds are \['louo:B'")]:
        with pytest.raises(ValueError, match=match):
            apply_fold(ds, spec)


def test_train_every_fold_and_pool_with_eval(release, tmp_path, capsys):
    """`kept train --dataset jigsaws --fold louo` trains one model per user; `kept eval` pools them."""
    import json

    from kept.cli import main

    root, _ = release
    run = tmp_path / "cv"
    tiny = ["model.dim=8", "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
            "train.max_epochs=1", "train.progress_bar=false", f"data.cache_dir={tmp_path / 'cache'}"]
    with pytest.warns(UserWarning):
        assert main(["train", "--dataset", "jigsaws", "--data-root", str(root), "--fold", "louo",
                     "--run-dir", str(run), *tiny]) == 0
    pooled = json.loads((run / "metrics.json").read_text())
    assert set(pooled["folds"]) == {"louo:B", "louo:C", "louo:D"}
    assert pooled["n_recordings"] == 14 and set(pooled["per_category"]) == set(TASKS)
    assert "spearman_fisher_z" in pooled
    out = tmp_path / "eval.json"
    with pytest.warns(UserWarning):
        assert main(["eval", "--checkpoint", str(run), "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["score"] == pytest.approx(pooled["score"])
    assert "3 folds pooled" in capsys.readouterr().out
