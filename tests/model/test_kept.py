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


def test_statistics_branch_combines_scores_by_mode(kept_system):
    import torch

    for mode in ("residual", "blend"):
        system, batch = kept_system(f"model.stats_mode={mode}")
        model = system.model
        model.stats.fit(batch["block_stats"], batch["target"], torch.zeros(4, dtype=torch.long), batch["whole_stats"])
        model.net_weight.fill_(0.25)
        cat = torch.zeros(4, dtype=torch.long)
        model.eval()
        out = model(features_of(batch), category=cat)
        expect = (out.stats_score + 0.25 * out.net_score if mode == "residual"
                  else 0.75 * out.stats_score + 0.25 * out.net_score)
        assert torch.allclose(out.score, expect)
        assert out.contrib.shape == (4, 2, 4)
        model.train()
        prior = torch.full((4,), 0.5)
        out = model(features_of(batch), category=cat, prior=prior)
        if mode == "residual":  # training reads the out-of-fold prior, not the in-sample fit
            assert torch.allclose(out.score, 0.5 + 0.25 * out.net_score)
        else:  # the network learns the score on its own
            assert torch.equal(out.score, out.net_score)


def test_path_teacher_trains_the_score_net(kept_system):
    import torch

    system, batch = kept_system("loss.path=1.0", "loss.kl=0", "loss.semantic=0", "loss.rank=0")
    system.model.stats.fit(batch["block_stats"], batch["target"], torch.zeros(4, dtype=torch.long), batch["whole_stats"])
    batch["category"] = torch.zeros(4, dtype=torch.long)
    out = system(batch)
    parts = system.losses(batch, out)
    parts["path"].backward()
    grad = system.model.score_net.f_r[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
