import numpy as np
import pytest

from kept.features import recording_features, resample, rotate_about_up, segment_of_keyframe
from pose.skeleton import get_skeleton


def test_resample_hits_frame_centres_and_interpolates():
    values = np.arange(4, dtype=float)[:, None]  # frame f sits at time (f + 0.5) / 4
    assert resample(values, np.array([0.125, 0.375, 0.5, 1.0]))[:, 0] == pytest.approx([0, 1, 1.5, 3])


def test_segments_of_keyframes():
    assert segment_of_keyframe(8, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert np.bincount(segment_of_keyframe(32, 3)).tolist() == [11, 10, 11]


def test_feature_shapes_do_not_depend_on_length_or_rate():
    sk = get_skeleton("coco17")
    rng = np.random.default_rng(0)
    a = recording_features(rng.normal(size=(40, 17, 3)), sk, 30.0, num_keyframes=16, depth=4, segment_samples=3)
    b = recording_features(rng.normal(size=(400, 17, 3)), sk, 120.0, num_keyframes=16, depth=4, segment_samples=3)
    for x, y in zip((a.node_stats, a.frames, a.segments), (b.node_stats, b.frames, b.segments)):
        assert x.shape == y.shape
    assert a.node_stats.shape == (16, 4, 10) and a.frames.shape == (16, 17, 4) and a.segments.shape == (4, 17, 12)


def test_wrong_joint_count_and_too_short():
    sk = get_skeleton("coco17")
    with pytest.raises(ValueError, match=r"expected \(frames, 17, 3\)"):
        recording_features(np.zeros((10, 16, 3)), sk, 30.0)
    with pytest.raises(ValueError, match="at least 2 frames"):
        recording_features(np.zeros((1, 17, 3)), sk, 30.0)


@pytest.mark.parametrize("up", ["y", "z", "-y"])
def test_rotation_about_up_keeps_angles_and_heights(up):
    sk = get_skeleton("coco17")
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(30, 17, 3))
    xyz[3, 4] = np.nan
    rot = rotate_about_up(xyz, 73.0, up)
    axis = "xyz".index(up[-1])
    assert np.allclose(rot[..., axis], xyz[..., axis], equal_nan=True)
    assert np.isnan(rot[3, 4]).all()
    f0, f1 = recording_features(xyz, sk, 30.0, up_axis=up), recording_features(rot, sk, 30.0, up_axis=up)
    angles = f0.node_stats[..., ::5], f1.node_stats[..., ::5]  # a of each joint
    np.testing.assert_allclose(angles[0], angles[1], atol=1e-5)
    assert not np.allclose(f0.frames.numpy(), f1.frames.numpy())


def test_block_statistics_summarise_each_segment():
    from kept.features import BLOCK_STATS, block_statistics

    F, B, J = 40, 2, 2
    stats = np.zeros((F, B, 5 * J))
    stats[:20, 0, 0] = 0.25  # node 0, joint 0 angle: 0.25 in the first half, 0.75 in the second
    stats[20:, 0, 0] = 0.75
    stats[:, 1, 6] = np.linspace(0, 1, F)  # node 1, joint 1 speed rises
    out = block_statistics(stats, depth=2)
    assert out.shape == (2, B, len(BLOCK_STATS) * J)
    per = out.reshape(2, B, J, len(BLOCK_STATS))
    assert np.allclose(per[:, 0, 0, 0], [0.25, 0.75]) and np.allclose(per[:, 0, 0, 1], 0)
    assert per[0, 1, 1, 4] < per[1, 1, 1, 4] and per[1, 1, 1, 5] <= 1.0


def test_recording_features_carry_block_statistics():
    sk = get_skeleton("coco17")
    f = recording_features(np.random.default_rng(0).normal(size=(40, 17, 3)), sk, 30.0, num_keyframes=16, depth=4)
    assert f.block_stats.shape == (4, 4, 12)
