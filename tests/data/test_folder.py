"""Tests of the keypoint-folder reader, validator and writer (kept.data.folder)."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kept.data.folder import Pair, Recording, load_dataset, write_dataset
from pose.skeleton import Skeleton

#: A converted UI-PRMD keypoint folder, if you have one: KEPT_UIPRMD=DIR (the test skips otherwise).
UIPRMD = Path(os.environ.get("KEPT_UIPRMD", "/nonexistent/uiprmd"))

TINY = Skeleton(
    name="tiny",
    joints=("hip", "knee", "ankle", "shoulder", "elbow"),
    edges=(("hip", "knee"), ("knee", "ankle"), ("hip", "shoulder"), ("shoulder", "elbow")),
    node_types={"knee": ("knee",), "shoulder": ("shoulder",)},
)


def _recordings(splits: dict[str, str] | None = None) -> list[Recording]:
    """Two categories of 8 recordings: 0-5 train, 6-7 test (or as ``splits`` says)."""
    out = []
    for cat in ("squat", "lunge"):
        for i in range(8):
            rid = f"{cat}_{i}"
            split = (splits or {}).get(rid, "train" if i < 6 else "test")
            meta = {"camera": "front"} if i % 2 else {"note": f"take {i}"}
            out.append(Recording(rid, split, cat, i / 10, subject=f"p{i % 3}",
                                 commentary="good, deep" if i == 0 else None, meta=meta))
    return out


def _arrays(recordings: list[Recording]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for k, r in enumerate(recordings):
        a = rng.normal(size=(5 + k, 5, 3)).astype(np.float32)
        a[0, 2] = np.nan  # a missing joint
        out[r.id] = a
    return out


def _write(root: Path, recordings: list[Recording] | None = None, **kw) -> Path:
    recs = recordings if recordings is not None else _recordings()
    kw.setdefault("score_range", (0.0, 1.0))
    return write_dataset(root, name="tiny", fps=30, skeleton=TINY, recordings=recs,
                         keypoints=_arrays(recs), **kw)


def _listing(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size)
                  for p in root.rglob("*"))


# -- round trip, derived pairs, hold-out, metadata -------------------------------------------
def test_round_trip(tmp_path):
    recs = _recordings({"squat_5": "val", "squat_4": "val", "lunge_5": "val", "lunge_4": "val"})
    pairs = [Pair("squat_0", "squat_1", "train", "deeper", {"coach": "A"}),
             Pair("squat_4", "squat_5", "val"), Pair("lunge_6", "lunge_7", "test", None, {"x": "1"})]
    root = _write(tmp_path / "ds", recs, pairs=pairs, extra={"up_axis": "-z", "meta": {"k": 1}})
    assert not list(root.rglob("*.tmp"))
    ds = load_dataset(root)
    assert list(ds.recordings.values()) == recs
    assert ds.pairs == pairs
    assert ds.held_out_val == ()
    assert ds.skeleton == TINY and ds.name == "tiny" and ds.fps == 30.0 and ds.up_axis == "-z"
    assert ds.score_range == (0.0, 1.0) and ds.score_range_given
    arrays = _arrays(recs)
    for rid in ds.ids():
        kp = ds.keypoints(rid)
        assert kp.dtype == np.float32 and kp.shape == arrays[rid].shape
        np.testing.assert_array_equal(kp, arrays[rid])
    assert ds.ids("val") == ["squat_4", "squat_5", "lunge_4", "lunge_5"]
    assert ds.categories() == ["lunge", "squat"] and ds.pairs_in("test") == pairs[2:]


def test_builtin_skeleton_written_by_name(tmp_path):
    recs = [Recording(f"r{i}", "train", "a", 0.5) for i in range(2)]
    arrays = {r.id: np.zeros((3, 17, 3), np.float32) for r in recs}
    root = write_dataset(tmp_path, name="c", fps=25, skeleton="coco17", recordings=recs,
                         keypoints=arrays)
    assert json.loads((root / "dataset.json").read_text())["skeleton"] == "coco17"
    assert load_dataset(root).skeleton.name == "coco17"


def test_derived_pairs(tmp_path):
    recs = _recordings({"squat_5": "val", "squat_4": "val", "lunge_4": "val", "lunge_5": "val"})
    ds = load_dataset(_write(tmp_path, recs))
    expected = []
    for split, cat in itertools.product(("train", "val", "test"), ("lunge", "squat")):
        ids = sorted(r.id for r in recs if r.split == split and r.category == cat)
        expected += [(a, b, split) for a, b in itertools.combinations(ids, 2)]
    assert [(p.id_a, p.id_b, p.split) for p in ds.pairs] == expected
    assert len(ds.pairs_in("train")) == 2 * 6 and len(ds.pairs_in("val")) == 2


def test_val_hold_out_deterministic_and_stratified(tmp_path):
    root = _write(tmp_path)
    ds = load_dataset(root)
    assert ds.held_out_val == tuple(ds.ids("val")) and len(ds.held_out_val) == 4
    assert Counter(ds.recordings[i].category for i in ds.held_out_val) == {"squat": 2, "lunge": 2}
    assert all(int(i.split("_")[1]) < 6 for i in ds.held_out_val)  # drawn from train only
    assert load_dataset(root).held_out_val == ds.held_out_val
    assert len({load_dataset(root, seed=s).held_out_val for s in range(6)}) > 1
    val_pairs = ds.pairs_in("val")
    assert {(p.id_a, p.id_b) for p in val_pairs} == {
        tuple(sorted(i for i in ds.held_out_val if i.startswith(c))) for c in ("squat", "lunge")}
    assert load_dataset(root, val_fraction=0).held_out_val == ()


def test_no_hold_out_for_small_categories_or_given_val(tmp_path):
    recs = [r for r in _recordings() if not (r.category == "lunge" and r.id not in
                                             ("lunge_0", "lunge_1", "lunge_2"))]
    ds = load_dataset(_write(tmp_path / "a", recs), by_subject=False)
    assert {ds.recordings[i].category for i in ds.held_out_val} == {"squat"}
    given = _recordings({"lunge_0": "val", "lunge_1": "val"})
    ds = load_dataset(_write(tmp_path / "b", given))
    assert ds.held_out_val == () and ds.ids("val") == ["lunge_0", "lunge_1"]


def test_hold_out_keeps_given_pairs_whole(tmp_path):
    pairs = [Pair(f"{c}_{i}", f"{c}_{i + 1}", "train") for c in ("squat", "lunge") for i in (0, 2, 4)]
    ds = load_dataset(_write(tmp_path, pairs=pairs), by_subject=False)
    assert len(ds.held_out_val) == 4
    assert len(ds.pairs_in("train")) == 4 and len(ds.pairs_in("val")) == 2
    for p in ds.pairs_in("val"):
        assert {p.id_a, p.id_b} <= set(ds.held_out_val)


def test_hold_out_drops_pairs_split_between_train_and_val(tmp_path):
    # A chain links all six train squats: no group fits, so single recordings are drawn.
    pairs = [Pair(f"squat_{i}", f"squat_{i + 1}", "train") for i in range(5)]
    ds = load_dataset(_write(tmp_path, pairs=pairs), by_subject=False)
    val = set(ds.held_out_val)
    assert len(val) == 4
    for p in pairs:
        inside = (p.id_a in val) + (p.id_b in val)
        kept = [q for q in ds.pairs if (q.id_a, q.id_b) == (p.id_a, p.id_b)]
        assert kept == ([] if inside == 1 else [Pair(p.id_a, p.id_b, "val" if inside else "train")])


def test_metadata_kept(tmp_path):
    root = _write(tmp_path, pairs=[Pair("squat_0", "squat_1", "train", "x", {"who": "me"})],
                  extra={"source": "lab", "meta": {"units": "m"}})
    header = (root / "samples.csv").read_text().splitlines()[0]
    assert header == "id,split,category,score,subject,commentary,note,camera"
    ds = load_dataset(root, by_subject=False)
    assert ds.meta["source"] == "lab" and ds.meta["meta"] == {"units": "m"}
    assert ds.recordings["squat_0"].meta == {"note": "take 0"}  # empty cells omitted
    assert ds.recordings["squat_1"].meta == {"camera": "front"}
    assert ds.recordings["squat_0"].commentary == "good, deep"
    assert ds.pairs[0].meta == {"who": "me"} and ds.pairs[0].description == "x"


def test_score_range_derived_and_normalization(tmp_path):
    ds = load_dataset(_write(tmp_path, score_range=None))
    assert ds.score_range == (0.0, 0.7) and not ds.score_range_given
    assert ds.normalize_score(0.35) == pytest.approx(0.5)
    arr = np.array([0.0, 0.7])
    np.testing.assert_allclose(ds.normalize_score(arr), [0.0, 1.0])
    np.testing.assert_allclose(ds.denormalize_score(ds.normalize_score(arr)), arr)


def test_loading_leaves_folder_unchanged(tmp_path):
    root = _write(tmp_path, pairs=[Pair("squat_0", "squat_1", "train")])
    before = _listing(root)
    ds = load_dataset(root)
    for rid in ds.ids():
        ds.keypoints(rid)
    assert _listing(root) == before


def test_keypoints_cast_to_float32(tmp_path):
    root = _write(tmp_path)
    np.save(root / "keypoints" / "squat_0.npy", np.ones((4, 5, 3), np.float64))
    kp = load_dataset(root).keypoints("squat_0")
    assert kp.dtype == np.float32 and kp.shape == (4, 5, 3)


# -- errors ----------------------------------------------------------------------------------
def _edit_json(**changes):
    def edit(root: Path) -> None:
        spec = json.loads((root / "dataset.json").read_text())
        spec.update(changes)
        (root / "dataset.json").write_text(json.dumps(spec))
    return edit


def _drop_json_key(key):
    def edit(root: Path) -> None:
        spec = json.loads((root / "dataset.json").read_text())
        del spec[key]
        (root / "dataset.json").write_text(json.dumps(spec))
    return edit


def _edit_line(name: str, line: int, text: str):
    """Replace a 1-based line of a CSV (line past the end: append)."""
    def edit(root: Path) -> None:
        lines = (root / name).read_text().splitlines()
        lines[line - 1:line] = [text]
        (root / name).write_text("\n".join(lines) + "\n")
    return edit


def _save(rid: str, array: np.ndarray):
    return lambda root: np.save(root / "keypoints" / f"{rid}.npy", array)


_BAD_SKELETON = {**TINY.to_spec(), "edges": [["hip", "knee"], ["knee", "wrist"]]}
_ROW = "squat_0,train,squat,{score},p0,,note"

ERRORS = [
    ("no_dataset_json", lambda r: (r / "dataset.json").unlink(), FileNotFoundError,
     r"dataset\.json not found"),
    ("no_samples_csv", lambda r: (r / "samples.csv").unlink(), FileNotFoundError,
     r"samples\.csv not found"),
    ("no_keypoints", lambda r: (r / "keypoints" / "squat_1.npy").unlink(), FileNotFoundError,
     r"squat_1\.npy not found \(recording 'squat_1', samples\.csv line 3\)"),
    ("invalid_json", lambda r: (r / "dataset.json").write_text("{'name': 1"), ValueError,
     r"dataset\.json: invalid JSON at line 1"),
    ("missing_key", _drop_json_key("fps"), ValueError,
     r"dataset\.json: missing required keys \['fps'\]"),
    ("missing_column", _edit_line("samples.csv", 1, "id,split,category,points"), ValueError,
     r"samples\.csv line 1: missing columns \['score'\]"),
    ("missing_pair_column", _edit_line("pairs.csv", 1, "id_a,id_b"), ValueError,
     r"pairs\.csv line 1: missing columns \['split'\]"),
    ("score_not_numeric", _edit_line("samples.csv", 2, _ROW.format(score="good")), ValueError,
     r"samples\.csv line 2: score 'good' is not a finite number"),
    ("duplicate_id", _edit_line("samples.csv", 3, "squat_0,train,squat,0.1"), ValueError,
     r"samples\.csv line 3: duplicate id 'squat_0' \(first on line 2\)"),
    ("rank", _save("squat_2", np.zeros((4, 15), np.float32)), ValueError,
     r"squat_2\.npy: keypoints must have shape \(frames, joints, 3\).*rank 2"),
    ("last_dim", _save("squat_2", np.zeros((4, 5, 2), np.float32)), ValueError,
     r"squat_2\.npy: last dimension must be 3"),
    ("joint_count", _save("squat_2", np.zeros((4, 17, 3), np.float32)), ValueError,
     r"squat_2\.npy: 17 joints but skeleton 'tiny' has 5"),
    ("all_nan", _save("squat_2", np.full((4, 5, 3), np.nan, np.float32)), ValueError,
     r"squat_2\.npy: every value is NaN"),
    ("unknown_joint", _edit_json(skeleton=_BAD_SKELETON), ValueError,
     r"dataset\.json: skeleton 'tiny': unknown joint 'wrist'"),
    ("unknown_split", _edit_line("samples.csv", 4, "squat_2,dev,squat,0.2"), ValueError,
     r"samples\.csv line 4: unknown split 'dev'"),
    ("lonely_category", _edit_line("samples.csv", 18, "solo_0,test,solo,0.5"), ValueError,
     r"samples\.csv line 18: category 'solo' has only one recording"),
    ("score_out_of_range", _edit_line("samples.csv", 2, _ROW.format(score="1.5")), ValueError,
     r"samples\.csv line 2: score 1\.5 of 'squat_0' is outside score_range \[0\.0, 1\.0\]"),
    ("bad_score_range", _edit_json(score_range=[1, 0]), ValueError,
     r"'score_range' must be \[lo, hi\]"),
    ("pair_unknown_id", _edit_line("pairs.csv", 3, "squat_0,ghost,train"), ValueError,
     r"pairs\.csv line 3: unknown recording ids \['ghost'\]"),
    ("pair_categories", _edit_line("pairs.csv", 3, "squat_0,lunge_0,train"), ValueError,
     r"pairs\.csv line 3: .*a pair must share its category"),
    ("pair_split", _edit_line("pairs.csv", 3, "squat_0,squat_1,test"), ValueError,
     r"pairs\.csv line 3: pair split 'test'.*must be its recordings' split"),
    ("pair_unknown_split", _edit_line("pairs.csv", 3, "squat_0,squat_1,holdout"), ValueError,
     r"pairs\.csv line 3: unknown split 'holdout'"),
    ("pair_self", _edit_line("pairs.csv", 3, "squat_0,squat_0,train"), ValueError,
     r"pairs\.csv line 3: pairs recording 'squat_0' with itself"),
    ("up_axis", _edit_json(up_axis="up"), ValueError, r"'up_axis' must be one of"),
] + [(f"fps_{v}", _edit_json(fps=v), ValueError, r"dataset\.json: 'fps' must be a positive")
     for v in (0, -30, "30", True)]


@pytest.mark.parametrize("edit, error, match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_input_names_file_and_fix(tmp_path, edit, error, match):
    root = _write(tmp_path, pairs=[Pair("squat_0", "squat_1", "train")])
    edit(root)
    with pytest.raises(error, match=match):
        load_dataset(root)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope")) + " does not exist"):
        load_dataset(tmp_path / "nope")


def test_lazy_check_without_check_keypoints(tmp_path):
    root = _write(tmp_path)
    _save("squat_2", np.zeros((4, 5, 2), np.float32))(root)
    ds = load_dataset(root, check_keypoints=False)
    ds.keypoints("squat_1")
    with pytest.raises(ValueError, match=r"squat_2\.npy: last dimension must be 3"):
        ds.keypoints("squat_2")


# -- the real UI-PRMD conversion -------------------------------------------------------------
@pytest.mark.skipif(not UIPRMD.is_dir(), reason="UI-PRMD keypoint folder not available")
def test_uiprmd_loads():
    ds = load_dataset(UIPRMD)
    assert len(ds.recordings) == 2000 and ds.skeleton.num_joints == 22
    assert Counter(r.split for r in ds.recordings.values()) == {"train": 1200, "val": 200, "test": 600}
    # 700 given train pairs (correct/incorrect of one repetition): 10 per movement move to val whole.
    assert Counter(p.split for p in ds.pairs) == {"train": 600, "val": 100, "test": 300}
    assert Counter(ds.recordings[i].category for i in ds.held_out_val) == {
        f"m{k:02d}": 20 for k in range(1, 11)}
    assert all({p.id_a, p.id_b} <= set(ds.held_out_val) for p in ds.pairs_in("val"))
    kp = ds.keypoints(ds.ids("val")[0])
    assert kp.dtype == np.float32 and kp.shape[1:] == (22, 3)


def test_hold_out_by_subject_keeps_persons_apart(tmp_path):
    recs = [Recording(f"{c}_{i}", "train" if i < 8 else "test", c, i / 10, subject=f"p{i % 5}")
            for c in ("squat", "lunge") for i in range(10)]
    ds = load_dataset(_write(tmp_path, recs), seed=3)
    val, train = set(ds.ids("val")), set(ds.ids("train"))
    assert val and {ds.recordings[i].subject for i in val}.isdisjoint({ds.recordings[i].subject for i in train})
    assert {ds.recordings[i].category for i in val} == {"squat", "lunge"}
    assert load_dataset(_write(tmp_path / "again", recs), seed=3).held_out_val == ds.held_out_val


def test_hold_out_by_subject_falls_back_without_subjects(tmp_path):
    recs = [Recording(f"squat_{i}", "train" if i < 8 else "test", "squat", i / 10,
                      subject=None if i == 0 else f"p{i % 4}") for i in range(10)]
    ds = load_dataset(_write(tmp_path, recs))
    assert len(ds.held_out_val) == 2  # per-category draw: max(2, round(0.15 * 8))
