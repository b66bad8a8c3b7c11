"""``kept grpo prepare``: prompts, keyframes, presentation order, KEPT's outputs and the rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kept.grpo.answer import parse_answer
from kept.grpo.config import load_grpo_config
from kept.grpo.data import (
    better_of,
    build_prompt,
    load_rows,
    pair_dataset,
    prepare_pairs,
    swap_players,
)
from kept.grpo.keyframes import keyframe_indices, keyframe_times, render_skeleton

REWARD_COLUMNS = ("ref_score_1", "ref_score_2", "score_min", "score_max", "ref_better", "ref_action",
                  "ref_sub_actions", "ref_segments", "ref_description", "kept_score_1", "kept_score_2",
                  "kept_better", "kept_path", "kept_description")
EVAL_COLUMNS = ("pair_id", "id_1", "id_2", "swapped", "category")


def test_prompt_lists_both_players_images_then_the_question():
    cfg = load_grpo_config(overrides=["data.keyframes=3"]).data
    system, user = build_prompt(cfg, (1.0, 10.0))
    assert system["role"] == "system" and "<recognition>" in system["content"][0]["text"]
    kinds = [p["type"] for p in user["content"]]
    assert kinds == ["text"] + ["image"] * 3 + ["text"] + ["image"] * 3 + ["text"]
    assert [user["content"][i]["text"] for i in (0, 4)] == ["Player 1:", "Player 2:"]
    assert "from 1 to 10" in user["content"][-1]["text"]


def test_swap_players_and_better_of():
    assert swap_players("Player 1 bends deeper than player 2; unlike Player 1, ...") == \
        "Player 2 bends deeper than player 1; unlike Player 2, ..."
    assert swap_players(swap_players("Player 12 and Player 1")) == "Player 12 and Player 1"
    assert [better_of(6, 4, (0, 10)), better_of(4, 6, (0, 10)), better_of(5, 5.005, (0, 10))] == [1, 2, 0]


def test_keyframes_are_centres_of_equal_bins():
    assert np.allclose(keyframe_times(4.0, 4), [0.5, 1.5, 2.5, 3.5])
    assert keyframe_indices(40, 4).tolist() == [5, 15, 25, 35]
    assert keyframe_indices(2, 4).tolist() == [0, 0, 1, 1]


def test_render_skeleton_draws_square_images(kept_run):
    from kept.data.folder import load_dataset

    d = load_dataset(kept_run[1])
    xyz = d.keypoints("s0")
    xyz[10, 1] = np.nan  # a missing knee: its bones are skipped
    images = render_skeleton(xyz, d.skeleton, np.array([0, 10, 20]), 64)
    assert [im.size for im in images] == [(64, 64)] * 3
    pixels = np.asarray(images[1])
    assert (pixels < 128).any() and (pixels == 255).any()  # something drawn on white
    with pytest.raises(ValueError, match="all missing"):
        render_skeleton(np.full_like(xyz, np.nan), d.skeleton, np.array([0]), 64)


def test_prepared_rows(prepared):
    info = json.loads((prepared / "prepare.json").read_text())
    assert info["splits"]["test"]["rows"] == 2 * info["splits"]["test"]["pairs"]  # test: both orders
    assert info["images"]["skeleton"] == info["images"]["recordings"] and info["images"]["video"] == 0
    for split in ("train", "test"):
        for row in load_rows(prepared, split):
            assert set(REWARD_COLUMNS + EVAL_COLUMNS) <= set(row)
            a, b = row["pair_id"].split("|")
            assert (row["id_1"], row["id_2"]) == ((b, a) if row["swapped"] else (a, b))
            assert len(row["images"]) == 4 and all((prepared / p).is_file() for p in row["images"])
            assert row["images"][0].startswith(f"images/{row['id_1']}/") and row["images"][2].startswith(f"images/{row['id_2']}/")
            assert (row["score_min"], row["score_max"]) == (0.0, 10.0)
            assert row["ref_better"] == better_of(row["ref_score_1"], row["ref_score_2"], (0, 10))
            assert row["kept_better"] == better_of(row["kept_score_1"], row["kept_score_2"], (0, 10))
            assert row["ref_action"] == "deep squat" and len(row["kept_path"]) == 2
            lower = row["kept_path_2"] if row["kept_score_2"] < row["kept_score_1"] else row["kept_path_1"]
            assert row["kept_path"] == lower
            # the description was written for (a, b): "Player 1" must still mean Player 1
            deeper = 1 if row["ref_score_1"] > row["ref_score_2"] else 2
            assert row["ref_description"].startswith(f"Player {deeper} bends")
            answer = parse_answer(row["solution"])
            assert (answer.score_1, answer.score_2, answer.better) == (row["ref_score_1"], row["ref_score_2"], row["ref_better"])
            assert answer.body_parts == row["kept_path"] and answer.action == "deep squat"
            assert answer.sub_actions == row["ref_sub_actions"]
            assert answer.segments == [tuple(s) for s in row["ref_segments"]]
    test = load_rows(prepared, "test")
    by_order = {(r["pair_id"], r["swapped"]): parse_answer(r["solution"]) for r in test}
    for (pair, swapped), answer in by_order.items():  # the swapped order swaps the players
        if not swapped:
            other = by_order[(pair, True)]
            assert (other.score_1, other.score_2) == (answer.score_2, answer.score_1)
            assert {answer.better, other.better} in ({1, 2}, {0})
    assert {r["pair_id"]: sorted(x["swapped"] for x in test if x["pair_id"] == r["pair_id"]) for r in test} == \
        {r["pair_id"]: [False, True] for r in test}


def test_images_are_rendered_once_per_recording(prepared):
    rows = load_rows(prepared, "train") + load_rows(prepared, "test")
    recordings = {i for r in rows for i in (r["id_1"], r["id_2"])}
    assert {p.name for p in (prepared / "images").iterdir()} == recordings
    from PIL import Image

    assert Image.open(prepared / rows[0]["images"][0]).size == (56, 56)


def test_annotated_sub_actions_reach_the_reference(prepared):
    rows = load_rows(prepared, "train") + load_rows(prepared, "test")
    annotated = [r for r in rows if r["ref_sub_actions"]]
    assert annotated and all(r["ref_sub_actions"] == ["descent", "bottom", "ascent"] for r in annotated)
    assert all(r["ref_segments"] == [[0.0, 0.4], [0.4, 0.6], [0.6, 1.0]] for r in annotated)
    # a pair of two unannotated recordings has none (s0, s2, s4 are unannotated)
    assert any(not r["ref_sub_actions"] and "Sub-actions" not in r["solution"] for r in rows)


def test_bad_segment_annotation_names_the_recording():
    from kept.data.folder import Recording
    from kept.grpo.data import _annotation

    good = Recording("r1", "train", "squat", 5.0, meta={"sub_actions": "down; up", "segments": "0-0.5; .5-1"})
    assert _annotation(good) == (["down", "up"], [[0.0, 0.5], [0.5, 1.0]])
    for bad in ("0.6-0.2", "start-end", "0.2-1.5"):
        with pytest.raises(ValueError, match="recording 'r1': segment"):
            _annotation(Recording("r1", "train", "squat", 5.0, meta={"segments": bad}))


def test_prepare_is_deterministic_and_order_is_seeded(kept_run, prepared, prepare_overrides, tmp_path):
    again = prepare_pairs(kept_run[0], tmp_path / "a", load_grpo_config(overrides=prepare_overrides), ("train",),
                          progress=False)
    assert (tmp_path / "a" / "train.jsonl").read_text() == (prepared / "train.jsonl").read_text()
    assert again["splits"]["train"]["rows"] == len(load_rows(prepared, "train"))
    never = load_grpo_config(overrides=[*prepare_overrides, "data.swap_probability=0"])
    prepare_pairs(kept_run[0], tmp_path / "b", never, ("train",), progress=False)
    assert not any(r["swapped"] for r in load_rows(tmp_path / "b", "train"))


def test_reference_answers_earn_full_annotation_rewards(prepared):
    from kept.grpo.rewards import action_reward, assessment_reward, format_reward, temporal_iou_reward

    rows = load_rows(prepared, "train")
    cols = {k: [r[k] for r in rows] for k in REWARD_COLUMNS}
    solutions = [r["solution"] for r in rows]
    assert format_reward(solutions) == [1.0] * len(rows)
    assert assessment_reward(solutions, **cols) == [1.0] * len(rows)
    assert action_reward(solutions, **cols) == [1.0] * len(rows)
    iou = temporal_iou_reward(solutions, **cols)
    assert [v is None for v in iou] == [not r["ref_segments"] for r in rows]  # None only where unannotated
    assert any(v is not None for v in iou) and all(v == 1.0 for v in iou if v is not None)


def test_pair_dataset_for_trl(prepared):
    pytest.importorskip("datasets")
    rows = load_rows(prepared, "train")
    sft = pair_dataset(rows, prepared, kind="sft")
    assert set(sft.column_names) == {"prompt", "completion", "images"}
    item = sft[0]
    assert len(item["images"]) == 4 and item["images"][0].size == (56, 56)
    assert item["completion"][0]["content"][0]["text"] == rows[0]["solution"]
    grpo = pair_dataset(rows, prepared, kind="grpo")
    assert set(REWARD_COLUMNS) <= set(grpo.column_names)
    with pytest.raises(ValueError, match="kind"):
        pair_dataset(rows, prepared, kind="dpo")


def test_keyframes_from_video(make_pair_dataset, make_kept_run, prepare_overrides, tmp_path):
    from pose.video import write_video

    frames = np.zeros((30, 48, 64, 3), np.uint8)
    frames[:, :, :32] = 255  # left half white
    root = make_pair_dataset(tmp_path / "data", video="videos/s0.mp4")  # relative to the dataset root
    write_video(root / "videos" / "s0.mp4", frames, 30.0)
    make_kept_run(tmp_path / "run", root, tmp_path / "cache")
    info = prepare_pairs(tmp_path / "run", tmp_path / "out", load_grpo_config(overrides=prepare_overrides),
                         ("train",), progress=False)
    assert info["images"]["video"] == 1
    from PIL import Image

    image = Image.open(tmp_path / "out" / "images" / "s0" / "0.png")
    assert image.size == (56, 42)  # longer side 56, aspect of the 64 x 48 video kept
    assert np.asarray(image)[:, :20].mean() > 200 and np.asarray(image)[:, -20:].mean() < 50


def test_errors(kept_run, prepared, tmp_path, monkeypatch):
    from kept.data.folder import KeypointDataset

    cfg = load_grpo_config()
    with pytest.raises(FileNotFoundError, match="no trained model"):
        prepare_pairs(tmp_path / "missing", tmp_path / "o", cfg, ("train",))
    with monkeypatch.context() as m:
        m.setattr(KeypointDataset, "pairs_in", lambda self, split: [])
        with pytest.raises(ValueError, match="split 'test' has no pairs"):
            prepare_pairs(kept_run[0], tmp_path / "o", cfg, ("test",), progress=False)
    with pytest.raises(ValueError, match="--split takes"):
        prepare_pairs(kept_run[0], tmp_path / "o", cfg, ("dev",))
    with pytest.raises(FileNotFoundError, match="kept grpo prepare"):
        load_rows(prepared, "val")


def test_prepare_command(kept_run, tmp_path, capsys):
    from kept.cli import main

    assert main(["grpo", "prepare", "--checkpoint", str(kept_run[0]), "--out", str(tmp_path / "p"), "--split",
                 "test", "--quiet", "data.keyframes=1", "data.image_size=28"]) == 0
    assert "test: 6 rows (3 pairs, 3 swapped" in capsys.readouterr().out
    assert len(load_rows(tmp_path / "p", "test")[0]["images"]) == 2
    assert main(["grpo", "prepare", "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path / "q")]) == 2
    assert "no trained model" in capsys.readouterr().err
