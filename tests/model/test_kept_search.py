"""KEPT with model.search = beam | mcts: same outputs as the exhaustive form where they must agree."""

import pytest
import torch

from kept.config import load_config
from kept.system import features_of

SEARCH = {"depth": 3, "commentary": (True,)}  # every recording has commentary
NO_DROPOUT = "model.dropout=0"


def _same_weights(a, b):
    b.model.load_state_dict(a.model.state_dict())


@pytest.mark.parametrize("search", ["beam", "mcts"])
def test_search_outputs_and_gradients(kept_system, search):
    system, batch = kept_system(NO_DROPOUT, f"model.search={search}", "model.search_top=12",
                                "model.mcts_simulations=60", **SEARCH)
    out = system(batch)
    assert out.logits.shape == (4, 12) and out.paths.shape == (4, 12, 3) and out.best_path.shape == (4, 3)
    assert torch.all(out.logits[:, :-1] >= out.logits[:, 1:])  # best first
    parts = system.losses(batch, out)
    for name in ("score", "kl"):
        system.zero_grad()
        system.losses(batch, system(batch))[name].backward()
        grads = [p.grad for p in system.model.score_net.f_r.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), (search, name)
    assert torch.isfinite(parts["loss"])
    # a search model never builds the B^K tensors
    assert "_assign" not in dict(system.model.score_net.named_buffers())


def test_full_width_beam_equals_exhaustive(kept_system):
    exh, batch = kept_system(NO_DROPOUT, **SEARCH)
    beam, _ = kept_system(NO_DROPOUT, "model.search=beam", "model.beam_width=16", "model.search_top=64", **SEARCH)
    _same_weights(exh, beam)
    exh.eval(), beam.eval()
    x = features_of(batch)
    a, b = exh.model(x), beam.model(x)
    assert torch.allclose(a.score, b.score, atol=1e-6)
    assert torch.equal(a.best_path, b.best_path)
    # the same 64 paths with the same logits, in the same (descending) order
    order = a.logits.argsort(dim=-1, descending=True)
    assert torch.allclose(a.logits.gather(1, order), b.logits, atol=1e-6)
    # and the pair KL on the union support equals the exhaustive KL up to the duplicated support
    pa, pb = beam.model.pair_distributions(b)
    assert pa.shape == (2, 128) and torch.allclose(pa.sum(-1), torch.ones(2))


def test_training_mixture_under_search_matches_exhaustive_top_k(kept_system):
    exh, batch = kept_system(NO_DROPOUT, **SEARCH)
    beam, _ = kept_system(NO_DROPOUT, "model.search=beam", "model.beam_width=16", **SEARCH)
    _same_weights(exh, beam)
    a, b = exh(batch), beam(batch)  # training mode: top-8 mixture
    assert torch.allclose(a.score, b.score, atol=1e-6)


def test_unknown_search_is_a_config_error():
    with pytest.raises(ValueError, match="model.search"):
        load_config(overrides=["model.search=greedy"])
    with pytest.raises(ValueError, match="2..8"):
        load_config(overrides=["model.depth=10"])
    cfg = load_config(overrides=["model.depth=10", "model.search=beam"])
    assert cfg.model.depth == 10
