import pytest
import torch

from kept.model.score_net import ScoreNet
from kept.model.search import (
    SearchResult,
    beam_search,
    exhaustive,
    mcts,
    partial_logits,
    path_logits,
    score_blocks,
)
from kept.model.tree import enumerate_paths

B, N, D = 3, 8, 16


def _setup(depth, recordings=3, seed=0):
    torch.manual_seed(seed)
    net = ScoreNet(stat_dim=10, num_nodes=B, depth=depth, num_keyframes=N, dim=D, heads=2).eval()
    stats = torch.randn(recordings, N, B, 10)
    visual = torch.randn(recordings, N, D)
    with torch.no_grad():
        logits, _ = net(stats, visual)
        blocks = score_blocks(net, stats, visual)
    return net, blocks, logits


def _check_sorted(result: SearchResult, R, K):
    k = result.top_logits.shape[1]
    assert result.top_paths.shape == (R, k, K) and result.best.shape == (R, K)
    assert (result.top_logits[:, :-1] >= result.top_logits[:, 1:]).all()
    assert torch.equal(result.best, result.top_paths[:, 0])


@pytest.mark.parametrize("depth", [3, 4])
def test_path_logits_equal_forward(depth):
    net, blocks, logits = _setup(depth)
    assert blocks.shape == (3, depth, B, D)
    with torch.no_grad():
        torch.testing.assert_close(path_logits(net, blocks, net.paths), logits, atol=1e-5, rtol=1e-4)
        batched = net.paths.unsqueeze(0).expand(3, -1, -1)
        torch.testing.assert_close(path_logits(net, blocks, batched), logits, atol=1e-5, rtol=1e-4)


def test_partial_logits_at_full_depth_equal_path_logits():
    net, blocks, _ = _setup(4)
    with torch.no_grad():
        torch.testing.assert_close(partial_logits(net, blocks, net.paths), path_logits(net, blocks, net.paths))
        short = partial_logits(net, blocks, enumerate_paths(B, 2))
    assert short.shape == (3, B**2) and torch.isfinite(short).all()


def test_exhaustive_matches_topk():
    net, blocks, logits = _setup(4)
    with torch.no_grad():
        result = exhaustive(net, blocks, top_k=5)
    top, index = logits.topk(5, dim=-1)
    torch.testing.assert_close(result.top_logits, top, atol=1e-5, rtol=1e-4)
    assert torch.equal(result.top_paths, net.paths[index])
    assert torch.equal(result.best, net.paths[logits.argmax(-1)])
    assert result.evaluations == B**4
    _check_sorted(result, 3, 4)


@pytest.mark.parametrize("depth", [3, 4])
def test_full_width_beam_finds_argmax(depth):
    net, blocks, logits = _setup(depth)
    with torch.no_grad():
        result = beam_search(net, blocks, width=B ** (depth - 1), top_k=5)
    assert torch.equal(result.best, net.paths[logits.argmax(-1)])
    torch.testing.assert_close(result.top_logits, logits.topk(5, dim=-1).values, atol=1e-5, rtol=1e-4)
    _check_sorted(result, 3, depth)


def test_narrow_beam_is_cheap_and_sorted():
    net, blocks, logits = _setup(4)
    with torch.no_grad():
        result = beam_search(net, blocks, width=2, top_k=4)
    assert result.evaluations == B + 2 * B * 3 < B**4
    _check_sorted(result, 3, 4)
    assert result.top_logits.shape == (3, 4)
    # the reported logits are the true path logits of the reported paths
    torch.testing.assert_close(result.top_logits, path_logits(net, blocks, result.top_paths).detach())


def test_mcts_with_large_budget_finds_argmax():
    net, blocks, logits = _setup(4, recordings=2)
    result = mcts(net, blocks, simulations=2000, top_k=5, seed=0)
    assert torch.equal(result.best, net.paths[logits.argmax(-1)])
    torch.testing.assert_close(result.top_logits, logits.topk(5, dim=-1).values, atol=1e-5, rtol=1e-4)
    assert result.evaluations <= B**4
    _check_sorted(result, 2, 4)


def test_mcts_small_budget_is_cheap_sorted_and_seeded():
    net, blocks, _ = _setup(4, recordings=2)
    first = mcts(net, blocks, simulations=20, top_k=5, seed=3)
    again = mcts(net, blocks, simulations=20, top_k=5, seed=3)
    assert first.evaluations <= 20 < B**4
    assert torch.equal(first.top_paths, again.top_paths)
    _check_sorted(first, 2, 4)
    with torch.no_grad():
        torch.testing.assert_close(first.top_logits, path_logits(net, blocks, first.top_paths))
