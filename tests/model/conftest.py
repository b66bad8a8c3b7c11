import numpy as np
import pytest
import torch

from kept.config import load_config
from kept.features import recording_features, stack_features
from kept.model import KEPT
from kept.system import KEPTSystem
from pose.skeleton import get_skeleton


@pytest.fixture
def kept_system():
    """``make(*overrides, depth=2, commentary=(True, False))`` -> (KEPTSystem, pair batch): a small
    seeded KEPT (D=16, N=8, S=4) on 4 random coco17 recordings whose features have ``depth``
    segments; ``commentary`` is the has-commentary pattern, repeated over the batch."""

    def make(*overrides, depth=2, commentary=(True, False), n=4):
        rng = np.random.default_rng(0)
        sk = get_skeleton("coco17")
        feats = stack_features([recording_features(rng.normal(size=(30, 17, 3)).astype("f4"), sk, 30.0,
                                                   num_keyframes=8, depth=depth, segment_samples=4)
                                for _ in range(n)])
        gen = torch.Generator().manual_seed(0)
        batch = {"node_stats": feats.node_stats, "frames": feats.frames, "segments": feats.segments,
                 "block_stats": feats.block_stats, "whole_stats": feats.whole_stats,
                 "target": torch.rand(n, generator=gen), "commentary": torch.randn(n, 384, generator=gen),
                 "has_commentary": torch.tensor(list(commentary) * (n // len(commentary)))}
        cfg = load_config(overrides=["model.dim=16", "model.heads=2", f"model.depth={depth}",
                                     "data.num_keyframes=8", "data.segment_samples=4", *overrides])
        torch.manual_seed(0)
        return KEPTSystem(KEPT(sk, cfg.model, 8, 4), cfg), batch

    return make
