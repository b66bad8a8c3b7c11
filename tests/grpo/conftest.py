"""Shared fixtures of the VLM fine-tuning tests: a tiny pair dataset, a random KEPT model, the
prepared rows, a tiny random Qwen2.5-VL, and that model after a short supervised fine-tuning.

Everything is built offline and seeded. Torch runs on one thread here: on a machine whose cores
are busy, two threads of a tiny model spend most of their time waiting for each other.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

FIVE = {"joints": ["hip", "knee", "ankle", "shoulder", "elbow"],
        "edges": [["hip", "knee"], ["knee", "ankle"], ["hip", "shoulder"], ["shoulder", "elbow"]],
        "node_types": {"knee": ["knee"], "shoulder": ["shoulder"], "hip": ["hip"]}}

#: training settings that make a tiny CPU run fast: no checkpointing, fp32, one step per batch
CPU = ["gradient_checkpointing=false", "precision=fp32", "use_cpu=true", "logging_steps=1", "save_steps=100000",
       "per_device_batch_size=3", "gradient_accumulation_steps=1"]


@contextmanager
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for the tests of a module (the session fixtures below set it themselves:
    pytest builds them before any module-scoped fixture)."""
    with one_torch_thread():
        yield


def _squat(rng: np.random.Generator, depth: float, frames: int) -> np.ndarray:
    """A squat whose knee bend grows with ``depth``. (frames, 5, 3)"""
    t = np.linspace(0, 1, frames)
    bend = depth * np.sin(np.pi * t)
    hip = np.stack([np.zeros_like(t), 1.0 - 0.3 * bend, np.zeros_like(t)], -1)
    knee = hip + np.stack([0.2 * np.sin(bend), -0.5 * np.cos(bend), np.zeros_like(t)], -1)
    ankle = np.zeros_like(hip)
    shoulder = hip + np.array([0.0, 0.6, 0.0])
    elbow = shoulder + np.stack([0.3 * np.cos(bend), -0.1 * np.ones_like(t), np.zeros_like(t)], -1)
    xyz = np.stack([hip, knee, ankle, shoulder, elbow], axis=1)
    return (xyz + rng.normal(0, 0.01, xyz.shape)).astype(np.float32)


def write_pair_dataset(root, video: str | None = None):
    """Eight squats (5 train, 3 test) with described pairs; odd recordings annotate sub-actions."""
    from kept.data.folder import Pair, Recording, write_dataset
    from pose.skeleton import Skeleton

    rng = np.random.default_rng(2)
    recordings, keypoints, depth = [], {}, {}
    for i in range(8):
        rid = f"s{i}"
        depth[rid] = rng.uniform(0.2, 1.4)
        keypoints[rid] = _squat(rng, depth[rid], 40)
        meta = {"sub_actions": "descent; bottom; ascent", "segments": "0-0.4; 0.4-0.6; 0.6-1"} if i % 2 else {}
        if video and i == 0:
            meta["video"] = video
        recordings.append(Recording(id=rid, split="train" if i < 5 else "test", category="deep_squat",
                                    score=round(float(depth[rid] / 1.4 * 10), 2), meta=meta))
    pairs = []
    for split, ids in (("train", [f"s{i}" for i in range(5)]), ("test", [f"s{i}" for i in range(5, 8)])):
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                deeper = 1 if depth[ids[a]] > depth[ids[b]] else 2
                pairs.append(Pair(ids[a], ids[b], split, f"Player {deeper} bends the knees deeper than "
                                                         f"Player {3 - deeper}."))
    return write_dataset(root, name="squats", fps=30.0, skeleton=Skeleton.from_spec(FIVE, "five"),
                         recordings=recordings, keypoints=keypoints, pairs=pairs, score_range=(0, 10))


def write_kept_run(run_dir, data_root, cache) -> None:
    """A randomly initialised KEPT (score branch and a tiny decoder) saved as a run directory."""
    import torch

    from kept.config import load_config
    from kept.model.decoder import DifferenceDecoder
    from kept.train import build_model, save_model
    from pose.skeleton import Skeleton

    cfg = load_config(overrides=[
        "data.dataset=folder", f"data.data_root={data_root}", f"data.cache_dir={cache}", "data.num_keyframes=8",
        "data.segment_samples=4", "model.dim=16", "model.heads=2", "model.depth=2", "model.top_k=3",
        "text.hidden=32", "text.layers=1", "text.heads=2", "text.max_length=12", "train.progress_bar=false"])
    skeleton = Skeleton.from_spec(FIVE, "five")
    torch.manual_seed(0)
    model = build_model(cfg, skeleton)
    model.decoder = DifferenceDecoder(cfg.model.dim, cfg.text)
    info = {"name": "squats", "root": str(data_root), "score_range": [0, 10], "fps": 30.0, "up_axis": "y"}
    save_model(model.eval(), cfg, skeleton, info, run_dir / "model.pt")


#: the prepare settings of the tests: two 56-pixel keyframes per player (4 merged Qwen tokens each)
PREPARE = ["data.keyframes=2", "data.image_size=56"]


@pytest.fixture(scope="session")
def make_pair_dataset():
    """:func:`write_pair_dataset`, for tests that need their own copy (e.g. with a video)."""
    return write_pair_dataset


@pytest.fixture(scope="session")
def make_kept_run():
    """:func:`write_kept_run`."""
    return write_kept_run


@pytest.fixture(scope="session")
def prepare_overrides():
    """The prepare settings of the tests (see :data:`PREPARE`)."""
    return list(PREPARE)


@pytest.fixture(scope="session")
def cpu_overrides():
    """Trainer settings of a tiny CPU run, without the stage prefix (see :data:`CPU`)."""
    return list(CPU)


@pytest.fixture(scope="session")
def kept_run(tmp_path_factory):
    """(run directory of a random KEPT, its dataset root)."""
    base = tmp_path_factory.mktemp("kept")
    root = write_pair_dataset(base / "squats")
    write_kept_run(base / "run", root, base / "cache")
    return base / "run", root


@pytest.fixture(scope="session")
def prepared(kept_run, tmp_path_factory):
    """Folder of ``kept grpo prepare`` on the tiny data (train and test)."""
    from kept.grpo.config import load_grpo_config
    from kept.grpo.data import prepare_pairs

    out = tmp_path_factory.mktemp("prepared")
    with one_torch_thread():
        prepare_pairs(kept_run[0], out, load_grpo_config(overrides=PREPARE), ("train", "test"), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    """Folder of a tiny random Qwen2.5-VL with its tokenizer and processor."""
    from kept.grpo.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-vlm"), seed=0)


@pytest.fixture(scope="session")
def sft_vlm(tiny_vlm, prepared, tmp_path_factory):
    """The tiny model after 100 steps of ``kept sft`` at a high learning rate: it has memorised
    the three training answers, so its samples are mostly well-formed and GRPO's rewards vary."""
    from kept.cli import main

    out = tmp_path_factory.mktemp("sft")
    argv = ["sft", "--data", str(prepared), "--model", str(tiny_vlm), "--out", str(out), "model.dtype=float32",
            "sft.max_steps=100", "sft.learning_rate=1e-2", "sft.lr_scheduler_type=constant",
            *(f"sft.{c}" for c in CPU), "sft.logging_steps=20"]
    with one_torch_thread():
        assert main(argv) == 0
    return out
