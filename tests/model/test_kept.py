import numpy as np
import torch

from kept.config import load_config
from kept.features import recording_features, stack_features
from kept.model import KEPT
from kept.system import KEPTSystem
from pose.skeleton import get_skeleton


def _batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    sk = get_skeleton("coco17")
    feats = stack_features([recording_features(rng.normal(size=(30, 17, 3)).astype("f4"), sk, 30.0,
                                               num_keyframes=8, depth=2, segment_samples=4) for _ in range(n)])
    return sk, {"node_stats": feats.node_stats, "frames": feats.frames, "segments": feats.segments,
                "target": torch.rand(n), "commentary": torch.randn(n, 384),
                "has_commentary": torch.tensor([True, False] * (n // 2))}


def _model(*overrides):
    cfg = load_config(overrides=["model.dim=16", "model.heads=2", "model.depth=2", "data.num_keyframes=8",
                                 "data.segment_samples=4", *overrides])
    sk, batch = _batch()
    torch.manual_seed(0)
    return KEPTSystem(KEPT(sk, cfg.model, 8, 4), cfg), batch


def test_shapes():
    system, batch = _model()
    out = system(batch)
    assert out.score.shape == (4,) and out.logits.shape == (4, 16) and out.path_dist.shape == (4, 16)
    assert out.graph.shape == (4, 2, 17, 16) and out.semantic.shape == (4,)
    assert out.selection.index.shape == (4, 8)


def test_every_loss_reaches_the_score_net_and_phi():
    system, batch = _model()
    parts = system.losses(batch, system(batch))
    for name in ("score", "semantic", "kl"):
        system.zero_grad()
        parts = system.losses(batch, system(batch))
        parts[name].backward()
        f_r = [p.grad for p in system.model.score_net.f_r.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in f_r), name
    system.zero_grad()
    system.losses(batch, system(batch))["score"].backward()
    # phi's weight matrices; its last bias shifts every candidate alike, which the softmax ignores
    assert all(p.grad.abs().sum() > 0 for p in system.model.gnn.ikg.phi.parameters() if p.dim() > 1)


def test_ablation_switches():
    system, batch = _model("model.use_gnn=false", "model.use_commentary=false", "model.depth=3")
    out = system(batch)
    assert system.model.gnn is None and out.ikg_weight is None and out.semantic is None
    assert out.logits.shape == (4, 4**3)


def test_eval_mode_selects_argmax_and_needs_no_commentary():
    system, batch = _model()
    system.eval()
    out = system.model(__import__("kept.system").system.features_of(batch))
    assert torch.equal(out.selection.best, out.logits.argmax(-1))
