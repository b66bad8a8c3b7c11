import numpy as np
import pytest
import torch

from kept.dtw import dtw, dtw_warp
from kept.model.alignment_stats import AlignedStatistics, mirror_permutation
from kept.model.stats_branch import StatsBranch

CHANNELS = ("left_knee", "right_knee", "centre_height")


def _curve(t: np.ndarray, shift: float = 0.0, bump: float = 0.0) -> np.ndarray:
    """(M, 3): two knee-like channels and a height; a bump in the left knee near t = 0.6 + shift."""
    left = np.sin(2 * np.pi * (t - shift)) + bump * np.exp(-((t - 0.6 - shift) / 0.05) ** 2)
    right = np.cos(2 * np.pi * (t - shift))
    return np.stack([left, right, 0.5 * np.sin(4 * np.pi * (t - shift))], 1)


@pytest.mark.parametrize("band", [None, 0.1, 0.25])
def test_batched_warp_finds_the_same_path_cost_as_the_single_pair_dtw(band):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(3, 12, 2))
    tmpl = rng.normal(size=(10, 2))
    _, _, cost = dtw_warp(q, tmpl, band=band)
    single = [dtw(((x[:, None] - tmpl[None]) ** 2).sum(-1), band)[1] / (12 + 10) for x in q]
    assert np.allclose(cost, single)


def test_a_query_equal_to_the_template_is_the_identity_warp():
    t = np.linspace(0, 1, 24)
    tmpl = _curve(t)
    warped, timing, cost = dtw_warp(tmpl[None], tmpl)
    assert np.allclose(warped[0], tmpl) and np.allclose(timing[0], t) and cost[0] == 0


def test_warping_undoes_a_change_of_tempo():
    t = np.linspace(0, 1, 48)
    tmpl = _curve(t)
    late = _curve(np.clip(t ** 1.4, 0, 1))  # the same motion, performed at another tempo
    warped, timing, _ = dtw_warp(late[None], tmpl)
    assert np.abs(warped[0] - tmpl).mean() < 0.3 * np.abs(late - tmpl).mean()
    assert timing[0, 24] > t[24]  # mid-template is matched later in the slower-starting query


def test_mirror_permutation_swaps_left_and_right_names():
    assert mirror_permutation(["left_elbow", "right_elbow", "centre_height", "left_wrist", "right_wrist"]) == [1, 0, 2, 4, 3]
    assert mirror_permutation(["a", "b"]) == [0, 1]


def _recordings(n=40, seed=0):
    rng = np.random.default_rng(seed)
    t = (np.arange(48) + 0.5) / 48
    bump = rng.uniform(0, 1, n) * (rng.random(n) < 0.5)
    curves = np.stack([_curve(t, rng.normal(0, 0.03), 1.5 * b) + 0.05 * rng.normal(size=(48, 3)) for b in bump])
    duration = rng.uniform(1.0, 2.0, n)
    cat = np.arange(n) % 2
    y = 0.8 - 0.4 * bump + 0.01 * rng.normal(size=n)
    f = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return f(curves), f(duration), f(cat, torch.long), f(y), bump


def test_statistics_shapes_unknown_category_and_round_trip():
    curves, duration, cat, _, _ = _recordings()
    stats = AlignedStatistics(["a", "b"], 48, CHANNELS, depth=4).fit(curves, cat)
    out = stats(curves, duration, cat)
    assert out.shape == (40, stats.dim) and stats.dim == 4 * 3 + 4 + 2 * 3 + 4
    assert torch.isfinite(out).all()
    unknown = stats(curves[:3], duration[:3], torch.full((3,), -1))
    assert not torch.allclose(unknown, out[:3])  # the all-category template
    other = AlignedStatistics(["a", "b"], 48, CHANNELS, depth=4)
    other.load_state_dict(stats.state_dict())
    assert torch.equal(other(curves, duration, cat), out)


def test_a_mirrored_performer_gets_the_same_statistics():
    curves, duration, cat, _, _ = _recordings()
    stats = AlignedStatistics(["a", "b"], 48, CHANNELS, depth=4).fit(curves, cat)
    mirrored = curves[:, :, [1, 0, 2]]
    assert torch.allclose(stats(mirrored, duration, cat), stats(curves, duration, cat), atol=1e-5)


def test_segment_deviation_finds_the_bump_in_its_segment_and_channel():
    curves, duration, cat, _, bump = _recordings()
    stats = AlignedStatistics(["a", "b"], 48, CHANNELS, depth=4).fit(curves, cat)
    seg = stats(curves, duration, cat)[:, :12].reshape(40, 4, 3).numpy()
    corr = np.array([[abs(np.corrcoef(seg[:, k, c], bump)[0, 1]) for c in range(3)] for k in range(4)])
    assert corr.argmax() == 2 * 3 + 0  # segment 2 (t in [0.5, 0.75)), left knee


def test_branch_chooses_the_aligned_statistics_and_credits_the_right_block():
    curves, duration, cat, y, _ = _recordings(n=80)
    K, B, g = 4, 2, 12  # 2 joints per node
    block = torch.randn(80, K, B, g, generator=torch.Generator().manual_seed(0))  # no signal
    aligned = AlignedStatistics(["a", "b"], 48, CHANNELS, depth=K)
    # knees are node 1, joints 0 (left) and 1 (right); the height belongs to no block
    branch = StatsBranch(["a", "b"], K, B, g, aligned=aligned, channel_joints=[(1, 0), (1, 1), (-1, -1)])
    oof = branch.fit(block, y, cat, groups=[f"p{i % 16}" for i in range(80)], curves=curves, duration=duration)
    assert branch.choice == (True, False, True)
    assert np.corrcoef(oof.numpy(), y.numpy())[0, 1] > 0.8
    score, contrib = branch(block, cat, None, curves, duration)
    assert contrib.shape == (80, K, B)
    spread = contrib.std(0)  # (K, B): which blocks move the score across recordings
    assert spread.argmax() == 2 * B + 1  # segment 2, knee
    joint = branch.joint_contributions(block, cat, None, curves, duration)
    assert torch.allclose(joint.sum(-1), contrib, atol=1e-6)
    with pytest.raises(ValueError, match="curves"):
        branch(block, cat)
    with pytest.raises(ValueError, match="joint 2"):
        StatsBranch(["a", "b"], K, B, g, aligned=aligned, channel_joints=[(1, 0), (1, 2), (-1, -1)])


def test_pooled_ridge_keeps_category_offsets_without_centring_the_scores():
    gen = torch.Generator().manual_seed(3)
    n = 120
    x = torch.randn(n, 2, 3, 4, generator=gen)
    cat = torch.arange(n) % 3
    y = 0.3 + 0.15 * cat + 0.05 * x[:, 0, 0, 0] + 0.01 * torch.randn(n, generator=gen)
    branch = StatsBranch(["a", "b", "c"], 2, 3, 4)
    branch.fit(x, y, cat, choice=(True, False))
    score, _ = branch(x, cat)
    means = [float(score[cat == c].mean()) for c in range(3)]
    assert np.allclose(means, [0.3, 0.45, 0.6], atol=0.03)
    assert np.corrcoef(score.numpy(), y.numpy())[0, 1] > 0.95


def test_coco_channels_map_to_their_node_joints():
    from kept.features import alignment_channels, alignment_curves
    from kept.model.kept import _channel_joints
    from pose.skeleton import get_skeleton

    sk = get_skeleton("coco17")
    names = alignment_channels(sk)
    place = dict(zip(names, _channel_joints(sk)))
    nodes = list(sk.node_types)
    assert place["left_wrist"] == (nodes.index("elbow"), sk.node_types["elbow"].index("left_elbow"))
    assert place["right_ankle"] == (nodes.index("knee"), sk.node_types["knee"].index("right_knee"))
    assert place["centre_height"] == (-1, -1) and place["left_hip"][0] == nodes.index("hip")
    xyz = np.random.default_rng(0).normal(size=(20, sk.num_joints, 3))
    curves = alignment_curves(xyz, sk)
    assert curves.shape == (20, len(names)) and np.isfinite(curves).all()
    turned = xyz @ np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]).T  # 90 degrees about the vertical (y)
    assert np.allclose(alignment_curves(turned, sk), curves)
