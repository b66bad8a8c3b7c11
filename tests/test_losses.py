import pytest
import torch

from kept.losses import kl_divergence, masked_mean, path_kl


def test_kl_known_value():
    p = torch.tensor([[0.5, 0.5]])
    q = torch.tensor([[0.25, 0.75]])
    expected = 0.5 * torch.log(torch.tensor(2.0)) + 0.5 * torch.log(torch.tensor(2 / 3))
    assert kl_divergence(p, q).item() == pytest.approx(expected.item(), abs=1e-6)


def test_symmetric_kl_ignores_pair_order_and_vanishes_on_equal():
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(3, 8), -1)
    q = torch.softmax(torch.randn(3, 8), -1)
    assert path_kl(p, q).item() == pytest.approx(path_kl(q, p).item(), abs=1e-6)
    assert path_kl(p, q, symmetric=False).item() != pytest.approx(path_kl(q, p, symmetric=False).item())
    assert path_kl(p, p).item() == pytest.approx(0.0, abs=1e-6)
    assert path_kl(p, q).item() > 0


def test_masked_mean():
    v = torch.tensor([1.0, 2.0, 3.0])
    assert masked_mean(v, torch.tensor([True, False, True])).item() == 2.0
    assert masked_mean(v, torch.tensor([False, False, False])).item() == 0.0
