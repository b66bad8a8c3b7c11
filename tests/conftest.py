"""Shared fixtures: a five-joint skeleton and a tiny keypoint-folder dataset made by hand."""

from __future__ import annotations

import numpy as np
import pytest

from kept.config import load_config
from kept.data.folder import Pair, Recording, write_dataset
from pose.skeleton import Skeleton

FIVE_JOINTS = {
    "joints": ["hip", "knee", "ankle", "shoulder", "elbow"],
    "edges": [["hip", "knee"], ["knee", "ankle"], ["hip", "shoulder"], ["shoulder", "elbow"]],
    "node_types": {"knee": ["knee"], "shoulder": ["shoulder"], "hip": ["hip"]},
}


@pytest.fixture
def five_joint_skeleton() -> Skeleton:
    return Skeleton.from_spec(FIVE_JOINTS, name="five")


def _motion(rng: np.random.Generator, depth: float, frames: int) -> np.ndarray:
    """A squat-like motion whose knee bend grows with ``depth``. (frames, 5, 3)"""
    t = np.linspace(0, 1, frames)
    bend = depth * np.sin(np.pi * t)  # radians of knee flexion over time
    hip = np.stack([np.zeros_like(t), 1.0 - 0.3 * bend, np.zeros_like(t)], -1)
    knee = hip + np.stack([0.2 * np.sin(bend), -0.5 * np.cos(bend), np.zeros_like(t)], -1)
    ankle = np.stack([np.zeros_like(t), np.zeros_like(t), np.zeros_like(t)], -1)
    shoulder = hip + np.array([0.0, 0.6, 0.0])
    elbow = shoulder + np.stack([0.3 * np.cos(bend), -0.1 * np.ones_like(t), np.zeros_like(t)], -1)
    xyz = np.stack([hip, knee, ankle, shoulder, elbow], axis=1)
    return (xyz + rng.normal(0, 0.01, xyz.shape)).astype(np.float32)


@pytest.fixture
def tiny_dataset(tmp_path):
    """Two categories, 8 train and 4 test recordings each; score = squat depth on a 0-10 scale."""
    return make_tiny_dataset(tmp_path)


def make_tiny_dataset(tmp_path):
    """The dataset of :func:`tiny_dataset` under ``tmp_path / "tiny"`` (for fixtures of a wider scope)."""
    rng = np.random.default_rng(0)
    recordings, keypoints = [], {}
    for cat in ("squat", "lunge"):
        for i in range(12):
            rid = f"{cat}_{i:02d}"
            depth = rng.uniform(0.2, 1.4)
            keypoints[rid] = _motion(rng, depth, int(rng.integers(40, 70)))
            recordings.append(Recording(
                id=rid, split="train" if i < 8 else "test", category=cat,
                score=round(float(depth / 1.4 * 10), 2), subject=f"s{i}",
                commentary="Deep knee bend." if depth > 0.8 else "Shallow knee bend at the bottom."))
    root = write_dataset(tmp_path / "tiny", name="tiny", fps=30.0, skeleton=Skeleton.from_spec(FIVE_JOINTS, "five"),
                         recordings=recordings, keypoints=keypoints, score_range=(0, 10))
    return root


@pytest.fixture
def tiny_config(tiny_dataset, tmp_path):
    """A small, fast config on :func:`tiny_dataset`."""
    return make_tiny_config(tiny_dataset, tmp_path)


def make_tiny_config(tiny_dataset, tmp_path):
    """The config of :func:`tiny_config`."""
    return load_config(overrides=[
        "data.dataset=folder", f"data.data_root={tiny_dataset}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.num_keyframes=8", "data.segment_samples=4", "data.batch_size=8", "model.dim=16",
        "model.heads=2", "model.depth=2", "model.top_k=3", "train.max_epochs=2", "train.progress_bar=false",
    ])


@pytest.fixture
def binary_dataset(tmp_path):
    """Binary error labels (1 = shallow squat), as the FitnessAQA converter writes them."""
    rng = np.random.default_rng(1)
    recordings, keypoints = [], {}
    for i in range(16):
        depth = rng.uniform(0.2, 1.4)
        keypoints[f"r{i}"] = _motion(rng, depth, 40)
        recordings.append(Recording(id=f"r{i}", split="train" if i < 11 else "test", category="squat",
                                    score=float(depth < 0.8)))
    return write_dataset(tmp_path / "binary", name="binary", fps=30.0,
                         skeleton=Skeleton.from_spec(FIVE_JOINTS, "five"), recordings=recordings,
                         keypoints=keypoints, score_range=(0, 1), extra={"labels": "binary", "error_type": "shallow"})


@pytest.fixture
def described_dataset(tmp_path):
    """The tiny squat data with pairs.csv descriptions saying who bends the knees deeper."""
    rng = np.random.default_rng(2)
    recordings, keypoints, depths = [], {}, {}
    for i in range(10):
        rid = f"s{i}"
        depths[rid] = rng.uniform(0.2, 1.4)
        keypoints[rid] = _motion(rng, depths[rid], 40)
        recordings.append(Recording(id=rid, split="train" if i < 7 else "test", category="squat",
                                    score=round(float(depths[rid] / 1.4 * 10), 2)))
    pairs = []
    for split, ids in (("train", [f"s{i}" for i in range(7)]), ("test", [f"s{i}" for i in range(7, 10)])):
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                deeper = 1 if depths[ids[a]] > depths[ids[b]] else 2
                pairs.append(Pair(ids[a], ids[b], split, f"Player {deeper} bends the knees deeper."))
    return write_dataset(tmp_path / "described", name="described", fps=30.0,
                         skeleton=Skeleton.from_spec(FIVE_JOINTS, "five"), recordings=recordings,
                         keypoints=keypoints, pairs=pairs, score_range=(0, 10))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A model trained for one epoch on :func:`tiny_dataset` (the dataset is ``run.parent / "tiny"``).
    Shared by the session: tests must not change it."""
    from kept.train import train

    tmp = tmp_path_factory.mktemp("tiny_run")
    cfg = make_tiny_config(make_tiny_dataset(tmp), tmp)
    cfg.train.max_epochs = 1
    train(cfg, tmp / "run")
    return tmp / "run"
