import torch

from kept.system import features_of


def test_shapes(kept_system):
    system, batch = kept_system()
    out = system(batch)
    assert out.score.shape == (4,) and out.logits.shape == (4, 16) and out.path_dist.shape == (4, 16)
    assert out.graph.shape == (4, 2, 17, 16) and out.semantic.shape == (4,)
    assert out.selection.index.shape == (4, 8)


def test_every_loss_reaches_the_score_net_and_phi(kept_system):
    system, batch = kept_system()
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


def test_ablation_switches(kept_system):
    system, batch = kept_system("model.use_gnn=false", "model.use_commentary=false", "model.depth=3", depth=3)
    out = system(batch)
    assert system.model.gnn is None and out.ikg_weight is None and out.semantic is None
    assert out.logits.shape == (4, 4**3)


def test_eval_mode_selects_argmax_and_needs_no_commentary(kept_system):
    system, batch = kept_system()
    system.eval()
    out = system.model(features_of(batch))
    assert torch.equal(out.selection.best, out.logits.argmax(-1))
