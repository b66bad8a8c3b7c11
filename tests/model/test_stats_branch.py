import numpy as np
import torch

from kept.model.stats_branch import StatsBranch, path_targets
from kept.model.tree import enumerate_paths


def _data(n=200, K=2, B=3, g=4, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.normal(size=(n, K, B, g)), dtype=torch.float32)
    cat = torch.as_tensor(rng.integers(0, 2, n))
    w = torch.as_tensor(rng.normal(size=(2, K * B * g)), dtype=torch.float32)
    y = (x.reshape(n, -1) * w[cat]).sum(-1) * 0.03 + 0.45 + 0.1 * cat  # mostly inside [0, 1]
    return x, y, cat


def test_fit_recovers_a_per_category_linear_score_and_contributions_add_up():
    x, y, cat = _data()
    branch = StatsBranch(["a", "b"], 2, 3, 4)
    oof = branch.fit(x, y, cat)
    score, contrib = branch(x, cat)
    assert contrib.shape == (200, 2, 3) and bool(branch.fitted)
    assert not bool(branch.pooled)  # opposite-looking categories: cross-validation picks one ridge each
    assert torch.allclose(score, (branch.intercept[cat] + contrib.sum((1, 2))).clamp(0, 1), atol=1e-6)
    assert float(((score - y) ** 2).mean()) < 1e-3 * float(y.var())  # in-sample: near exact
    assert float(((oof - y) ** 2).mean()) < 0.3 * float(y.var())  # out-of-fold: still good
    assert not torch.allclose(oof, score)  # but not the in-sample fit


def test_unknown_category_uses_the_global_model():
    x, y, cat = _data()
    branch = StatsBranch(["a", "b"], 2, 3, 4)
    branch.fit(x, y, cat)
    assert branch.index_of(["b", None, "zzz", "a"]).tolist() == [1, -1, -1, 0]
    s_global, _ = branch(x[:5], torch.full((5,), -1))
    s_cat, _ = branch(x[:5], cat[:5])
    assert s_global.shape == (5,) and not torch.allclose(s_global, s_cat)


def test_state_dict_round_trip():
    x, y, cat = _data()
    a = StatsBranch(["a", "b"], 2, 3, 4)
    a.fit(x, y, cat)
    b = StatsBranch(["a", "b"], 2, 3, 4)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x, cat)[0], b(x, cat)[0])


def test_path_teacher_peaks_on_the_most_penalised_block_of_every_segment():
    gen = torch.Generator().manual_seed(0)
    contrib = torch.randn(5, 3, 4, generator=gen)
    paths = enumerate_paths(4, 3).unsqueeze(0).expand(5, -1, -1)
    teacher = path_targets(contrib, paths, temperature=0.5)
    assert torch.allclose(teacher.sum(-1), torch.ones(5))
    best = paths[0][teacher.argmax(-1)]  # (5, K)
    assert torch.equal(best, contrib.argmin(-1))


def test_cross_validation_picks_pooling_and_whole_statistics_when_they_carry_the_signal():
    gen = torch.Generator().manual_seed(1)
    n = 200
    x = torch.randn(n, 2, 3, 4, generator=gen)
    whole = torch.randn(n, 5, generator=gen)
    cat = torch.arange(n) % 4
    y = 0.5 + 0.1 * whole[:, 0] + 0.02 * torch.randn(n, generator=gen)  # same rule in every category
    branch = StatsBranch(["a", "b", "c", "d"], 2, 3, 4, whole_dim=5)
    oof = branch.fit(x, y, cat, whole, groups=[f"p{i % 10}" for i in range(n)])
    assert bool(branch.use_whole) and bool(branch.pooled)
    assert np.corrcoef(oof.numpy(), y.numpy())[0, 1] > 0.9
    score, contrib = branch(x, cat, whole)
    assert contrib.abs().mean() < 0.05 * score.std()  # the signal is not in any block


def test_joint_contributions_add_up_to_the_block_contributions():
    x, y, cat = _data(g=12)  # 2 joints x 6 statistics per block
    branch = StatsBranch(["a", "b"], 2, 3, 12)
    branch.fit(x, y, cat)
    _, contrib = branch(x, cat)
    joint = branch.joint_contributions(x, cat)
    assert joint.shape == (200, 2, 3, 2)
    assert torch.allclose(joint.sum(-1), contrib, atol=1e-6)
    assert not torch.allclose(joint[..., 0], joint[..., 1])
