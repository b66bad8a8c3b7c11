import pytest
import torch

from kept.model.tree import enumerate_paths, mixture_tokens, path_distribution, path_tokens, select_paths


def test_enumerate_paths_is_lexicographic_and_complete():
    paths = enumerate_paths(3, 2)
    assert paths.shape == (9, 2)
    assert paths[0].tolist() == [0, 0] and paths[1].tolist() == [0, 1] and paths[-1].tolist() == [2, 2]
    assert len({tuple(p) for p in paths.tolist()}) == 9


def test_path_tokens_follow_segments():
    R, N, B, D = 2, 4, 3, 5
    tokens = torch.randn(R, N, B, D)
    segment = torch.tensor([0, 0, 1, 1])
    paths = torch.tensor([[2, 1]])
    out = path_tokens(tokens, paths, segment)
    assert out.shape == (R, 1, N, D)
    assert torch.equal(out[:, 0, :2], tokens[:, :2, 2]) and torch.equal(out[:, 0, 2:], tokens[:, 2:, 1])


def test_distribution_and_selection():
    logits = torch.tensor([[0.0, 3.0, 1.0, -1.0]])
    p = path_distribution(logits)
    assert p.sum().item() == pytest.approx(1.0)
    train = select_paths(logits, top_k=2, training=True)
    assert train.index.tolist() == [[1, 2]] and train.weight.sum().item() == pytest.approx(1.0)
    assert train.weight[0, 0] > train.weight[0, 1]
    infer = select_paths(logits, top_k=2, training=False)
    assert infer.best.tolist() == [1] and infer.weight.tolist() == [[1.0]]


def test_mixture_tokens_equal_weighted_path_tokens():
    torch.manual_seed(0)
    R, N, B, D, K, L = 2, 6, 3, 4, 3, 5
    tokens = torch.randn(R, N, B, D)
    segment = torch.tensor([0, 0, 1, 1, 2, 2])
    paths = torch.randint(0, B, (R, L, K))
    weight = torch.softmax(torch.randn(R, L), -1)
    naive = (weight[..., None, None] * path_tokens(tokens, paths, segment)).sum(1)
    torch.testing.assert_close(mixture_tokens(tokens, paths, weight, segment), naive)
