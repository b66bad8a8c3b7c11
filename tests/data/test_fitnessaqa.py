"""Tests of the FitnessAQA converter (kept.data.fitnessaqa)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kept.data.fitnessaqa import (
    ERROR_TYPES, OFFICIAL_LABEL_FILES, best_threshold, convert_fitnessaqa, f1_at, read_manifest,
    read_official,
)
from kept.data.folder import load_dataset

HEADER = "id,split,exercise,keypoints,ohp_knee,ohp_elbow,squat_forward,squat_inward,subject"
P = 17  # coco17


def _kp(path: Path, seed: int, frames: int = 6, joints: int = P) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).normal(size=(frames, joints, 3)).astype(np.float32)
    a[0, 3] = np.nan
    np.save(path, a)


def _manifest(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _full_manifest(tmp_path: Path) -> Path:
    """OHP: 4 train, 2 val, 2 test; Squat: 4 train, 2 val, 2 test; plus skipped rows."""
    rows = []
    k = 0
    for ex, split_n in (("OHP", {"train": 4, "val": 2, "test": 2}),
                        ("Squat", {"train": 4, "val": 2, "test": 2})):
        for split, n in split_n.items():
            for i in range(n):
                rid = f"{ex.lower()}_{split}_{i}"
                _kp(tmp_path / "kp" / f"{rid}.npy", k)
                k += 1
                a, b = i % 2, (i + 1) % 2
                labels = f"{a},{b},," if ex == "OHP" else f",,{a},{b}"
                rows.append(f"{rid},{split},{ex},kp/{rid}.npy,{labels},s{i % 2}")
    # an OHP row with only the knee label (elbow not annotated)
    _kp(tmp_path / "kp" / "ohp_knee_only.npy", 99)
    rows.append("ohp_knee_only,train,ohp,kp/ohp_knee_only.npy,1,,,,s0")
    # skipped: missing file, unreadable file, wrong joint count, no label at all
    rows.append("gone,train,OHP,kp/gone.npy,1,1,,,s0")
    (tmp_path / "kp" / "broken.npy").write_bytes(b"not an array")
    rows.append("broken,test,Squat,kp/broken.npy,,,1,0,s1")
    _kp(tmp_path / "kp" / "fewjoints.npy", 5, joints=5)
    rows.append("fewjoints,val,Squat,kp/fewjoints.npy,,,0,0,s1")
    _kp(tmp_path / "kp" / "nolabel.npy", 6)
    rows.append("nolabel,train,OHP,kp/nolabel.npy,,,,,s1")
    return _manifest(tmp_path, rows)


# -- manifest ----------------------------------------------------------------------------------
def test_read_manifest_parses_rows(tmp_path):
    path = _manifest(tmp_path, ["a,train,ohp,kp/a.npy,1,0,,,s1", "b,test,SQUAT,/x/b.npy,,,0,1,",
                                "c,val,BarbellRow,c.npy,,,,,"])
    rows = read_manifest(path)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["exercise"] == "OHP" and rows[1]["exercise"] == "Squat"
    assert rows[2]["exercise"] == "BarbellRow"
    assert rows[0]["labels"] == {"ohp_knee": 1, "ohp_elbow": 0, "squat_forward": None,
                                 "squat_inward": None}
    assert rows[1]["labels"]["squat_inward"] == 1 and rows[1]["subject"] is None
    assert rows[0]["subject"] == "s1" and rows[0]["line"] == 2 and rows[2]["line"] == 4
    assert all(v is None for v in rows[2]["labels"].values())


@pytest.mark.parametrize("row, message", [
    ("a,train,OHP,kp/a.npy,2,0,,,", r"line 3: ohp_knee label '2' must be 0, 1 or empty"),
    ("a,train,OHP,kp/a.npy,yes,0,,,", r"line 3: ohp_knee label 'yes'"),
    ("a,train,OHP,kp/a.npy,,,1,,", r"line 3: squat_forward is an Squat error"),
    ("a,training,OHP,kp/a.npy,1,,,,", r"line 3: unknown split 'training'"),
    (",train,OHP,kp/a.npy,1,,,,", r"line 3: id '' must be"),
    ("a,train,,kp/a.npy,1,,,,", r"line 3: empty exercise"),
    ("a,train,OHP,,1,,,,", r"line 3: empty keypoints cell"),
    ("z,train,OHP,kp/z.npy,1,,,,", r"line 3: duplicate id 'z' \(first on line 2\)"),
    ("a,train,OHP,kp/a.npy,1,,,,,extra", r"line 3: more cells than header columns"),
])
def test_read_manifest_errors_name_file_and_line(tmp_path, row, message):
    path = _manifest(tmp_path, ["z,train,OHP,kp/z.npy,0,,,,", row])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + message):
        read_manifest(path)


def test_read_manifest_header_and_file_errors(tmp_path):
    path = _manifest(tmp_path, ["a,train,OHP,kp/a.npy,1"], header="id,split,exercise,keypoints,ohp_knee")
    with pytest.raises(ValueError, match=r"manifest.csv line 1: missing columns \['ohp_elbow'"):
        read_manifest(path)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_manifest(tmp_path / "nope.csv")
    empty = _manifest(tmp_path, [])
    with pytest.raises(ValueError, match="no rows"):
        read_manifest(empty)
    bad_skel = tmp_path / "skel.csv"
    bad_skel.write_text(HEADER + ",skeleton\na,train,OHP,a.npy,1,,,,,smpl99\n")
    with pytest.raises(ValueError, match=r"skel.csv line 2: unknown skeleton 'smpl99'"):
        read_manifest(bad_skel)


# -- conversion --------------------------------------------------------------------------------
def test_convert_writes_four_datasets_with_counts_and_skip_report(tmp_path):
    manifest = _full_manifest(tmp_path)
    with pytest.warns(UserWarning, match=r"missing_keypoints: 1; unreadable_keypoints: 2; no_label: 1"):
        paths, report = convert_fitnessaqa(manifest, tmp_path / "out", progress=False)
    assert set(paths) == set(ERROR_TYPES)
    assert report["skipped"] == {"missing_keypoints": 1, "unreadable_keypoints": 2, "no_label": 1}
    assert report["skipped_ids"] == {"missing_keypoints": ["gone"],
                                     "unreadable_keypoints": ["broken", "fewjoints"],
                                     "no_label": ["nolabel"]}
    assert set(report["errors"]) == {"broken", "fewjoints"}
    assert report["not_written"] == {} and report["n_rows"] == 21
    d = report["datasets"]
    assert d["ohp_knee"]["n"] == {"train": 5, "val": 2, "test": 2}
    assert d["ohp_elbow"]["n"] == {"train": 4, "val": 2, "test": 2}
    assert d["ohp_elbow"]["unlabeled"] == 2  # ohp_knee_only and nolabel
    assert d["squat_inward"]["n"] == {"train": 4, "val": 2, "test": 2}
    assert d["ohp_knee"]["positives"] == {"train": 3, "val": 1, "test": 1}

    for et, (ex, _) in ERROR_TYPES.items():
        assert paths[et] == tmp_path / "out" / et
        ds = load_dataset(paths[et])
        assert ds.meta["error_type"] == et and ds.meta["labels"] == "binary"
        assert ds.score_range == (0.0, 1.0) and ds.categories() == [ex]
        assert ds.skeleton.name == "coco17" and ds.fps == 30.0
        assert not (paths[et] / "pairs.csv").exists()
        for r in ds.recordings.values():
            assert r.score in (0.0, 1.0)
            assert r.id.startswith(ex.lower())
        # pairs: all pairs within the split
        assert len(ds.pairs_in("val")) == 1 and len(ds.pairs_in("test")) == 1
    knee = load_dataset(paths["ohp_knee"])
    assert knee.recordings["ohp_train_1"].score == 1.0  # i=1 -> knee label 1
    assert knee.recordings["ohp_train_0"].score == 0.0
    assert knee.recordings["ohp_knee_only"].score == 1.0
    assert knee.recordings["ohp_train_1"].subject == "s1"
    assert "ohp_knee_only" not in load_dataset(paths["ohp_elbow"]).recordings
    inward = load_dataset(paths["squat_inward"])
    assert inward.recordings["squat_test_0"].score == 1.0  # i=0 -> inward label 1
    # round trip of the arrays
    orig = np.load(tmp_path / "kp" / "ohp_val_1.npy")
    np.testing.assert_array_equal(knee.keypoints("ohp_val_1"), orig)


def test_convert_small_split_is_reported_not_written(tmp_path):
    rows = []
    for i, split in enumerate(["train", "train", "train", "test", "test"]):
        _kp(tmp_path / "kp" / f"o{i}.npy", i)
        rows.append(f"o{i},{split},OHP,kp/o{i}.npy,{i % 2},{i % 2},,,")
    for i, split in enumerate(["train", "train", "test", "test", "val"]):
        _kp(tmp_path / "kp" / f"s{i}.npy", 10 + i)
        rows.append(f"s{i},{split},Squat,kp/s{i}.npy,,,{i % 2},{i % 2},")
    manifest = _manifest(tmp_path, rows)
    with pytest.warns(UserWarning, match="squat_forward not written"):
        paths, report = convert_fitnessaqa(manifest, tmp_path / "out", progress=False)
    assert set(paths) == {"ohp_knee", "ohp_elbow"}  # OHP has no val: allowed
    assert report["not_written"]["squat_inward"] == "fewer than 2 recordings in val (1)"
    assert not (tmp_path / "out" / "squat_forward").exists()
    ds = load_dataset(paths["ohp_knee"])  # no val rows: load_dataset holds none out (<4 train)
    assert len(ds.ids()) == 5


def test_convert_keypoints_root_error_types_and_2d(tmp_path, capsys):
    kroot = tmp_path / "poses"
    rows = []
    for i in range(4):
        a = np.random.default_rng(i).normal(size=(5, P, 2))
        (kroot / "sub").mkdir(parents=True, exist_ok=True)
        np.save(kroot / "sub" / f"q{i}.npy", a)
        rows.append(f"q{i},{'train' if i < 2 else 'test'},Squat,sub/q{i}.npy,,,{i % 2},1,")
    manifest = _manifest(tmp_path, rows)
    paths, report = convert_fitnessaqa(manifest, tmp_path / "out", keypoints_root=kroot,
                                       error_types=["squat_forward"], fps=25)
    assert list(paths) == ["squat_forward"] and report["skipped"]["missing_keypoints"] == 0
    ds = load_dataset(paths["squat_forward"])
    assert ds.fps == 25.0
    kp = ds.keypoints("q0")
    assert kp.shape == (5, P, 3) and np.all(kp[..., 2] == 0)
    assert "squat_forward: train 2 (1 with error)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown error types"):
        convert_fitnessaqa(manifest, tmp_path / "o2", error_types=["row_back"])


def test_convert_rejects_mixed_skeletons_before_writing(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + ",skeleton\n"
                    "a,train,OHP,a.npy,1,,,,,coco17\nb,train,OHP,b.npy,0,,,,,h36m17\n")
    with pytest.raises(ValueError, match="mixes skeletons"):
        convert_fitnessaqa(path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


# -- official layout ---------------------------------------------------------------------------
def _release(root: Path) -> Path:
    base = root / "Fitness-AQA_dataset_release"
    splits = {"OHP": {"train": ["o1", "o2", "o3"], "val": ["o4", "o5"], "test": ["o6", "o7"]},
              "Squat": {"train": ["q1", "q2"], "val": ["q3", "q4"], "test": ["q5", "q6"]}}
    for ex, sp in splits.items():
        lab = base / ex / "Labeled_Dataset"
        (lab / "Splits").mkdir(parents=True)
        (lab / "Labels").mkdir()
        for s, keys in sp.items():
            (lab / "Splits" / f"{s}_keys.json").write_text(json.dumps(keys))
        keys = [k for ks in sp.values() for k in ks]
        for et, (e, _) in ERROR_TYPES.items():
            if e != ex:
                continue
            # error in every odd-numbered key; o7 not annotated for elbows
            labels = {k: ([[0.5, 1.25]] if int(k[1:]) % 2 else []) for k in keys
                      if not (et == "ohp_elbow" and k == "o7")}
            (lab / "Labels" / OFFICIAL_LABEL_FILES[et]).write_text(json.dumps(labels))
        (lab / "Labels" / "labels_shallow_depth.json").write_text("{}")
    return root


def test_read_official(tmp_path):
    root = _release(tmp_path)
    recs = read_official(root)
    assert len(recs) == 13
    by_id = {r["id"]: r for r in recs}
    assert by_id["o1"]["split"] == "train" and by_id["o4"]["split"] == "val"
    assert by_id["o1"]["labels"] == {"ohp_knee": 1, "ohp_elbow": 1, "squat_forward": None,
                                     "squat_inward": None}
    assert by_id["o2"]["labels"]["ohp_knee"] == 0
    assert by_id["o7"]["labels"]["ohp_elbow"] is None and by_id["o7"]["labels"]["ohp_knee"] == 1
    assert by_id["q6"]["exercise"] == "Squat" and by_id["q6"]["labels"]["squat_inward"] == 0
    # the release folder itself also works
    assert len(read_official(root / "Fitness-AQA_dataset_release")) == 13


def test_read_official_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no FitnessAQA release"):
        read_official(tmp_path)
    root = _release(tmp_path / "r1")
    splits = root / "Fitness-AQA_dataset_release" / "OHP" / "Labeled_Dataset" / "Splits"
    (splits / "test_keys.json").write_text(json.dumps(["o6", "o1"]))
    with pytest.raises(ValueError, match=r"test_keys.json: key 'o1' is also in .*train_keys.json"):
        read_official(root)
    (splits / "test_keys.json").write_text('{"o6": 1}')
    with pytest.raises(ValueError, match=r"test_keys.json: must be a JSON list"):
        read_official(root)
    (splits / "test_keys.json").write_text('["o6",')
    with pytest.raises(ValueError, match=r"test_keys.json: invalid JSON"):
        read_official(root)
    labels = splits.parent / "Labels" / "error_knees.json"
    labels.write_text('{"o1": "yes"}')
    with pytest.raises(ValueError, match=r"error_knees.json: key 'o1'"):
        read_official(root)
    labels.unlink()
    with pytest.raises(FileNotFoundError, match="error_knees.json not found"):
        read_official(root)


def test_convert_official(tmp_path):
    root = _release(tmp_path / "rel")
    kroot = tmp_path / "kp"
    for i, k in enumerate(["o1", "o2", "o3", "o4", "o5", "o6", "o7"]):
        _kp(kroot / "OHP" / f"{k}.npy", i)
    for i, k in enumerate(["q1", "q2", "q3", "q4", "q5"]):  # q6 missing
        _kp(kroot / f"{k}.npy", 20 + i)  # flat layout also found
    with pytest.raises(ValueError, match="pass keypoints_root"):
        convert_fitnessaqa(root, tmp_path / "out")
    with pytest.warns(UserWarning, match="missing_keypoints: 1") as rec:
        paths, report = convert_fitnessaqa(root, tmp_path / "out", keypoints_root=kroot,
                                           progress=False)
    assert "squat_forward not written" in str(rec[0].message)
    assert report["skipped_ids"]["missing_keypoints"] == ["q6"]
    assert set(paths) == {"ohp_knee"}  # squat test has only q5; elbow test only o6
    assert report["datasets"]["ohp_elbow"]["n"] == {"train": 3, "val": 2, "test": 1}
    assert report["not_written"] == {
        et: "fewer than 2 recordings in test (1)" for et in ("ohp_elbow", "squat_forward",
                                                                "squat_inward")}
    ds = load_dataset(paths["ohp_knee"])
    assert {r.id: r.score for r in ds.recordings.values()} == {
        "o1": 1.0, "o2": 0.0, "o3": 1.0, "o4": 0.0, "o5": 1.0, "o6": 0.0, "o7": 1.0}


# -- thresholds and F1 -------------------------------------------------------------------------
def test_best_threshold_and_f1_hand_computed():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    t = best_threshold(y, s)
    assert t == 0.35
    assert f1_at(y, s, t) == pytest.approx(0.8)  # preds 0,1,1,1: P 2/3, R 1
    assert f1_at(y, s, 0.4) == pytest.approx(0.5)  # preds 0,1,0,1: P 1/2, R 1/2
    assert f1_at(y, s, 0.1) == pytest.approx(2 / 3)
    assert f1_at(y, s, 0.9) == 0.0  # nothing predicted


def test_best_threshold_ties_take_smallest_and_no_positive():
    # t=0.1: TP2 FP2 -> 2/3; t=0.3: TP1 FP2 FN1 -> 0.4; t=0.5: TP1 FP1 FN1 -> 0.5;
    # t=0.9: TP1 FN1 -> 2/3. The tie at 2/3 goes to the smaller threshold.
    y, s = [1, 0, 0, 1], [0.9, 0.5, 0.3, 0.1]
    assert best_threshold(y, s) == 0.1
    assert f1_at(y, s, 0.1) == pytest.approx(2 / 3) == f1_at(y, s, 0.9)
    # t=0.1: TP2 FP1 -> 0.8; t=0.2: TP2 -> 1.0; t=0.5: TP1 FN1 -> 2/3
    assert best_threshold([0, 1, 1], [0.1, 0.2, 0.5]) == 0.2
    assert best_threshold([1, 0, 1, 0], [3, 3, 3, 3]) == 3
    # no positive label: every F1 is 0, the smallest score is returned
    assert best_threshold([0, 0], [0.7, 0.2]) == 0.2
    assert f1_at([0, 0], [0.7, 0.2], 0.1) == 0.0
    assert f1_at([0, 0], [0.7, 0.2], 0.9) == 0.0


def test_threshold_input_errors():
    with pytest.raises(ValueError, match="empty"):
        best_threshold([], [])
    with pytest.raises(ValueError, match="has 2 values but score has 1"):
        f1_at([0, 1], [0.5], 0.5)
    with pytest.raises(ValueError, match="0/1 labels"):
        best_threshold([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        best_threshold([0, 1], [0.1, float("nan")])


def test_cli_convert_then_train_reports_f1(tmp_path, capsys):
    """`kept data fitnessaqa` then `kept train` on one error type: metrics.json holds its F1."""
    import json

    from kept.cli import main

    manifest = _full_manifest(tmp_path)
    with pytest.warns(UserWarning):
        assert main(["data", "fitnessaqa", str(manifest), "--out", str(tmp_path / "faqa")]) == 0
    assert "ohp_knee" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--data-root", str(tmp_path / "faqa" / "ohp_knee"),
                 "--run-dir", str(run), "model.dim=8", "model.heads=2", "model.depth=2",
                 "data.num_keyframes=4", "data.segment_samples=2", "train.max_epochs=1",
                 "train.progress_bar=false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["f1"]) == {"ohp_knee"} and 0.0 <= metrics["f1"]["ohp_knee"] <= 1.0
