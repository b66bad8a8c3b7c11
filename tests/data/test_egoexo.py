"""Rebuilding ADR from a small fake Ego-Exo4D tree (built in tmp_path, documented layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kept.data.describe import CachedDescriber, JSONLDescriber
from kept.data.egoexo import (
    ADR_TASKS, EGOEXO_BODY_JOINTS, build_adr, read_body_pose, read_expert_commentary,
    read_splits, read_takes, resample,
)
from kept.data.folder import load_dataset

MID = "Basketball Drills - Mid-Range Jump Shooting"
MIKAN = "Basketball Drills - Mikan Layup"
PK = "Soccer Drills - Penalty Kick"
CLIMB = "Rock Climbing"

# uid: (task, parent, split or None, proficiency)
TAKES = {
    "b1": (MID, "Basketball", "train", "Late Expert"),
    "b2": (MID, "Basketball", "train", "Novice"),
    "b3": (MID, "Basketball", "val", "Intermediate Expert"),
    "m1": (MIKAN, "Basketball", "train", "Early Expert"),
    "m2": (MIKAN, "Basketball", "train", "Novice"),
    "m3": (MIKAN, "Basketball", "train", "Novice"),  # no pose file
    "m4": (MIKAN, "Basketball", "train", "Novice"),  # unreadable pose JSON
    "s1": (PK, "Soccer", "train", "Late Expert"),
    "s2": (PK, "Soccer", "val", "Early Expert"),
    "s3": (PK, "Soccer", "val", "Intermediate Expert"),
    "n1": (PK, "Soccer", None, "Novice"),  # not in splits.json
    "c1": (CLIMB, "Rock Climbing", "train", "Novice"),  # no expert commentary
    "x1": ("Cooking Tomato & Eggs", "Cooking", "train", "Novice"),  # not an ADR task
}
# uid -> [(expert, rating, [comments])]; b2's only expert is in the second form
COMMENTS = {
    "b1": [("aaaaaa", 6, ["B1 elbow tucked.", "B1 good arc."]), ("bbbbbb", 8, ["B1 fine balance."])],
    "b2": [("cccccc", 3, ["B2 late release."])],
    "b3": [("aaaaaa", 5, ["B3 ok."])],
    "m1": [("dddddd", 7, ["M1 nice step."])],
    "m2": [("dddddd", 4, ["M2 off foot."]), ("eeeeee", 5, ["M2 weak hand."])],
    "m3": [("dddddd", 4, ["M3."])],
    "m4": [("dddddd", 4, ["M4."])],
    "s1": [("ffffff", 9, ["S1 plants well."])],
    "s2": [("ffffff", 2, ["S2 leans back."])],
    "s3": [("gggggg", 6, ["S3 good contact."])],
    "n1": [("ffffff", 5, ["N1."])],
}
SECOND_FORM_ONLY = {"b2"}


def _pose_json(first: int, last: int, fps: float, skip: set[int] = frozenset(),
               drop_nose: int | None = None) -> dict:
    """x = time in seconds + joint index, y = 0.1 * joint, z = 1: linear in time."""
    out = {}
    for n in range(first, last + 1):
        if n in skip:
            continue
        joints = {name: {"x": n / fps + j, "y": 0.1 * j, "z": 1.0}
                  for j, name in enumerate(EGOEXO_BODY_JOINTS)}
        if n == drop_nose:
            del joints["nose"]
        out[str(n)] = [{"annotation3D": joints, "annotation2D": {"cam01": {}}}]
    return out


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def make_egoexo(root: Path) -> Path:
    takes = []
    for uid, (task, parent, _, prof) in TAKES.items():
        name = f"take_{uid}"
        vids = {"aria01": {"rgb": {"cam_id": "aria01", "relative_path": "frame_aligned_videos/aria01_214-1.mp4"}},
                "cam02": {"0": {"cam_id": "cam02", "relative_path": "frame_aligned_videos/cam02.mp4"}},
                "cam01": {"0": {"cam_id": "cam01", "relative_path": "frame_aligned_videos/cam01.mp4"}}}
        takes.append({"take_uid": uid, "take_name": name, "root_dir": f"takes/{name}",
                      "task_name": task, "parent_task_name": parent, "participant_uid": 100,
                      "best_exo": "cam02", "frame_aligned_videos": vids})
    _write(root / "takes.json", takes)
    _write(root / "annotations" / "splits.json", {"take_uid_to_split": {
        u: s.upper() if u == "b3" else s for u, (_, _, s, _) in TAKES.items() if s}})
    first = {"train": {}, "val": {}}
    for uid, experts in COMMENTS.items():
        split = TAKES[uid][2] or "train"
        for expert, rating, texts in experts:
            folder = root / "annotations" / "expert_commentary" / f"take_{uid}" / expert
            _write(folder / "data.json", {"user_id": expert, "video_name": f"take_{uid}",
                                          "ds": "20240101", "annotations": [],
                                          "proficiency": {"rating": rating, "why": "because"}})
            _write(folder / "transcriptions.json", {
                f"{i}.webm": {"text": t, "language": "en", "error": False, "error_desc": None}
                for i, t in enumerate(texts)})
            if uid in SECOND_FORM_ONLY:
                continue
            first[split].setdefault(uid, []).append({
                "take_name": f"take_{uid}", "take_uid": uid, "task_id": 1, "task_name": "t",
                "commentary": f"take_{uid}/{expert}",
                "commentary_data": [{"recording": f"{i}.webm", "video_time": float(i), "text": t,
                                     "duration_approx": 1.0, "error": False}
                                    for i, t in enumerate(texts)]})
    for split, anns in first.items():
        _write(root / "annotations" / f"expert_commentary_{split}.json",
               {"ds": "20240101", "annotations": anns})
    for split in ("train", "val"):
        _write(root / "annotations" / f"proficiency_demonstrator_{split}.json", {"annotations": [
            {"take_uid": u, "proficiency_score": p, "scenario_name": parent}
            for u, (_, parent, s, p) in TAKES.items() if s == split]})
    body = root / "annotations" / "ego_pose"
    # b1: manual (frames 100..119, 105-107 missing, no nose at 110) AND automatic
    _write(body / "train/body/annotation/b1.json", _pose_json(100, 119, 30, {105, 106, 107}, 110))
    _write(body / "train/body/automatic/b1.json", _pose_json(200, 260, 60))
    _write(body / "train/body/automatic/b2.json", _pose_json(7, 47, 60))  # automatic only
    _write(body / "val/body/annotation/b3.json", _pose_json(0, 9, 30))
    _write(body / "train/body/annotation/m1.json", _pose_json(0, 9, 30))
    _write(body / "train/body/automatic/m2.json", _pose_json(3, 30, 60))
    (body / "train/body/annotation").mkdir(parents=True, exist_ok=True)
    (body / "train/body/annotation/m4.json").write_text("{not json", encoding="utf-8")
    _write(body / "train/body/automatic/s1.json", _pose_json(0, 20, 60))
    _write(body / "val/body/annotation/s2.json", _pose_json(5, 15, 30))
    _write(body / "val/body/automatic/s3.json", _pose_json(0, 20, 60))
    _write(body / "train/body/annotation/c1.json", _pose_json(0, 9, 30))
    _write(body / "train/body/annotation/n1.json", _pose_json(0, 9, 30))
    return root


@pytest.fixture
def egoexo(tmp_path: Path) -> Path:
    return make_egoexo(tmp_path / "egoexo")


def test_readers(egoexo: Path) -> None:
    assert len(read_takes(egoexo)) == len(TAKES)
    splits = read_splits(egoexo)
    assert splits["b3"] == "val" and "n1" not in splits
    com = read_expert_commentary(egoexo)
    assert com["b1"] == {"score": 7.0, "commentary": "B1 elbow tucked. B1 good arc. B1 fine balance.",
                         "n_experts": 2}
    assert com["b2"]["commentary"] == "B2 late release." and com["b2"]["score"] == 3.0
    assert "c1" not in com


def test_read_body_pose_offsets_gaps_and_missing_joints(egoexo: Path) -> None:
    xyz, fps = read_body_pose(egoexo / "annotations/ego_pose/train/body/annotation/b1.json")
    assert fps == 30.0 and xyz.shape == (20, 17, 3)
    assert np.isnan(xyz[5:8]).all() and np.isfinite(xyz[:5]).all()
    assert np.isnan(xyz[10, 0]).all() and np.isfinite(xyz[10, 1:]).all()
    np.testing.assert_allclose(xyz[0, 3], [100 / 30 + 3, 0.3, 1.0])
    _, fps60 = read_body_pose(egoexo / "annotations/ego_pose/train/body/automatic/b2.json")
    assert fps60 == 60.0


def test_resample_linear_and_keeps_gaps() -> None:
    t = np.arange(7) / 60.0
    x = np.repeat(t[:, None, None], 3, axis=2).repeat(2, axis=1)
    out = resample(x, 60.0, 30.0)
    assert out.shape == (4, 2, 3)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(4) / 30.0)
    x24 = np.arange(5, dtype=float)[:, None, None] * np.ones((1, 1, 3))
    np.testing.assert_allclose(resample(x24, 24.0, 30.0)[:, 0, 0], np.arange(6) * 0.8)
    x[2] = np.nan
    g = resample(x, 60.0, 30.0)
    assert np.isnan(g[1]).all() and np.isfinite(g[[0, 2, 3]]).all()


def test_build_adr_expert_scores(egoexo: Path, tmp_path: Path, capsys) -> None:
    out, report = build_adr(egoexo, tmp_path / "adr", progress=False)
    printed = capsys.readouterr().out
    assert "converted 8" in printed and "no_pose_file=1" in printed
    assert report["converted"] == 8
    assert report["skipped"] == {"no_pose_file": ["m3"], "unreadable_pose": ["m4"],
                                 "not_in_splits": ["n1"], "no_expert_commentary": ["c1"]}
    assert report["not_adr_tasks"] == 1
    ds = load_dataset(out)
    assert ds.fps == 30.0 and ds.skeleton.name == "coco17" and ds.up_axis == "z"
    assert ds.score_range == (1.0, 10.0)
    by = {r.meta["take_uid"]: r for r in ds.recordings.values()}
    counts = {(r.category, r.split) for r in ds.recordings.values()}
    assert counts == {("mid_range_shooting", "train"), ("mid_range_shooting", "test"),
                      ("mikan_layup", "train"), ("penalty_kick", "train"), ("penalty_kick", "test")}
    assert sorted(ds.ids("test")) == ["take_b3", "take_s2", "take_s3"]
    assert len(ds.ids("train")) == 5 and ds.ids("val") == []
    assert by["b1"].score == 7.0 and by["m2"].score == 4.5 and by["s1"].score == 9.0
    assert by["b1"].commentary == "B1 elbow tucked. B1 good arc. B1 fine balance."
    assert by["m2"].commentary == "M2 off foot. M2 weak hand."
    assert by["b1"].meta["pose_source"] == "annotation" and by["b2"].meta["pose_source"] == "automatic"
    assert by["b1"].meta["source_fps"] == "30" and by["b2"].meta["source_fps"] == "60"
    assert by["b1"].meta["exo_camera"] == "cam01" and by["b1"].meta["sport"] == "basketball"
    assert by["b1"].meta["n_experts"] == "2"
    assert float(by["b1"].meta["start_sec"]) == pytest.approx(100 / 30)
    # b1 is at 30 fps already: kept frame for frame, gap and missing joint NaN
    k1 = ds.keypoints("take_b1")
    assert k1.shape == (20, 17, 3) and np.isnan(k1[5:8]).all() and np.isnan(k1[10, 0]).all()
    # b2: 60 fps frames 7..47 -> 21 frames at 30 fps, x = t + joint
    k2 = ds.keypoints("take_b2")
    assert k2.shape == (21, 17, 3)
    np.testing.assert_allclose(k2[:, 2, 0], (7 + 2 * np.arange(21)) / 60 + 2, rtol=1e-5)
    assert [(p.id_a, p.id_b, p.split) for p in ds.pairs] == [
        ("take_b1", "take_b2", "train"), ("take_m1", "take_m2", "train"),
        ("take_s2", "take_s3", "test")]
    assert not (tmp_path / "adr" / "pairs.csv").exists()  # no describer -> no description column


def test_automatic_only_and_rebuild_replaces(egoexo: Path, tmp_path: Path) -> None:
    build_adr(egoexo, tmp_path / "adr", progress=False)
    out, report = build_adr(egoexo, tmp_path / "adr", pose_source="automatic", progress=False)
    ds = load_dataset(out)
    assert {r.meta["pose_source"] for r in ds.recordings.values()} == {"automatic"}
    # b1 now uses its automatic file (60 fps, frames 200..260 -> 31 frames)
    assert ds.keypoints("take_b1").shape == (31, 17, 3)
    # b3, m1, s2 have only manual pose; mid_range keeps b1, b2; mikan is left with m2 alone
    assert set(report["skipped"]["no_pose_file"]) >= {"b3", "m1", "s2", "m3"}
    assert report["skipped"]["category_too_small"] == ["m2"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adr")]


def test_proficiency_scores(egoexo: Path, tmp_path: Path) -> None:
    out, _ = build_adr(egoexo, tmp_path / "adr", score_source="proficiency", progress=False)
    ds = load_dataset(out)
    assert ds.score_range == (1.0, 4.0)
    by = {r.meta["take_uid"]: r for r in ds.recordings.values()}
    assert (by["b1"].score, by["b2"].score, by["b3"].score, by["m1"].score) == (4.0, 1.0, 3.0, 2.0)
    assert by["b1"].meta["proficiency"] == "Late Expert"


def test_jsonl_describer_fills_pairs(egoexo: Path, tmp_path: Path) -> None:
    lines = [{"id_a": "take_b1", "id_b": "take_b2", "description": "Player 1 shoots better."},
             {"id_a": "take_m2", "id_b": "take_m1", "description": "Player 2 steps better."},
             {"id_a": "take_s2", "id_b": "take_s3", "description": "Player 2 kicks better."}]
    path = tmp_path / "desc.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out, report = build_adr(egoexo, tmp_path / "adr", describer=JSONLDescriber(path), progress=False)
    ds = load_dataset(out)
    got = {(p.id_a, p.id_b): p.description for p in ds.pairs}
    assert got == {("take_b1", "take_b2"): "Player 1 shoots better.",
                   ("take_m1", "take_m2"): "Player 2 steps better.",
                   ("take_s2", "take_s3"): "Player 2 kicks better."}
    assert report["described"] == 3 and report["description_errors"] == {}


def test_describer_errors_are_reported_not_fatal(egoexo: Path, tmp_path: Path) -> None:
    class Flaky:
        name = "flaky"

        def describe(self, c1: str, c2: str) -> str:
            if c1.startswith("M"):
                raise RuntimeError("quota")
            return f"{c1[:2]} vs {c2[:2]}"

    cached = CachedDescriber(Flaky(), tmp_path / "cache")
    out, report = build_adr(egoexo, tmp_path / "adr", describer=cached, progress=False)
    ds = load_dataset(out)
    got = {(p.id_a, p.id_b): p.description for p in ds.pairs}
    assert got[("take_b1", "take_b2")] == "B1 vs B2" and got[("take_m1", "take_m2")] is None
    assert report["described"] == 2 and list(report["description_errors"]) == ["take_m1|take_m2"]


def test_extract_needs_extractor_and_uses_first_exo_camera(egoexo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pose extraction extra"):
        build_adr(egoexo, tmp_path / "adr", pose_source="extract", progress=False)
    for uid in ("b1", "b2", "m1"):
        video = egoexo / "takes" / f"take_{uid}" / "frame_aligned_videos" / "cam01.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"")
    seen = []

    def extractor(path: Path):
        seen.append(Path(path))
        return np.ones((12, 17, 3)), 60.0

    out, report = build_adr(egoexo, tmp_path / "adr", pose_source="extract", extractor=extractor,
                            progress=False)
    assert {p.name for p in seen} == {"cam01.mp4"} and len(seen) == 3
    ds = load_dataset(out)
    assert ds.keypoints("take_b1").shape == (6, 17, 3)
    assert "video_missing" in report["skipped"] and "category_too_small" in report["skipped"]


def test_empty_root_raises(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty.*takes.json"):
        build_adr(empty, tmp_path / "adr", progress=False)
    (empty / "takes.json").write_text("[]")
    with pytest.raises(ValueError, match="no ADR take could be converted"):
        build_adr(empty, tmp_path / "adr", progress=False)
    assert not (tmp_path / "adr").exists()


def test_task_table_covers_the_paper() -> None:
    assert {slug for _, slug in ADR_TASKS.values()} == {
        "mid_range_shooting", "mikan_layup", "reverse_layup", "penalty_kick", "juggling",
        "dribbling", "climbing"}


def test_cli_builds_adr_then_stats(egoexo: Path, tmp_path: Path, capsys) -> None:
    import json

    from kept.cli import main

    out = tmp_path / "adr"
    assert main(["data", "adr", "--egoexo-root", str(egoexo), "--out", str(out)]) == 0
    assert "ADR written to" in capsys.readouterr().out
    assert main(["data", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["name"] == "adr" and sum(stats["total"]["recordings"].values()) >= 2
    assert main(["data", "adr", "--egoexo-root", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
