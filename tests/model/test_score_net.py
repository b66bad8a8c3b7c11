import pytest
import torch

from kept.model.score_net import ScoreNet


@pytest.mark.parametrize("num_keyframes, depth", [(8, 2), (7, 3), (12, 4)])
def test_block_assembly_equals_per_path_attention(num_keyframes, depth):
    torch.manual_seed(0)
    net = ScoreNet(stat_dim=10, num_nodes=3, depth=depth, num_keyframes=num_keyframes, dim=16, heads=2).eval()
    stats = torch.randn(2, num_keyframes, 3, 10)
    visual = torch.randn(2, num_keyframes, 16)
    fast, tokens = net(stats, visual)
    assert fast.shape == (2, 3**depth) and tokens.shape == (2, num_keyframes, 3, 16)
    torch.testing.assert_close(fast, net.naive_logits(stats, visual), atol=1e-5, rtol=1e-4)


def test_unequal_segments_are_weighted_by_length():
    net = ScoreNet(stat_dim=5, num_nodes=2, depth=3, num_keyframes=7, dim=8, heads=2)
    assert net.pool.sum().item() == pytest.approx(1.0)
    assert sorted(net.pool.gt(0).sum(1).tolist()) == [2, 2, 3]
