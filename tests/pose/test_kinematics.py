import numpy as np
import pytest

from pose.kinematics import fill_missing, joint_angles, joint_speeds, node_kinematics, normalize_positions
from pose.skeleton import Skeleton

ARM = Skeleton.from_spec({
    "joints": ["shoulder", "elbow", "wrist"],
    "edges": [["shoulder", "elbow"], ["elbow", "wrist"]],
    "node_types": {"elbow": ["elbow"], "shoulder": ["shoulder"]},
}, name="arm")


def test_right_angle_at_elbow_is_half():
    xyz = np.array([[[0, 1, 0], [0, 0, 0], [1, 0, 0]]], dtype=float)  # shoulder above, wrist to the side
    assert joint_angles(xyz, ARM, ["elbow"])[0, 0] == pytest.approx(0.5)


def test_straight_arm_is_one_and_folded_is_zero():
    straight = np.array([[[0, 1, 0], [0, 0, 0], [0, -1, 0]]], dtype=float)
    folded = np.array([[[0, 1, 0], [0, 0, 0], [0, 2, 0]]], dtype=float)
    assert joint_angles(straight, ARM, ["elbow"])[0, 0] == pytest.approx(1.0)
    assert joint_angles(folded, ARM, ["elbow"])[0, 0] == pytest.approx(0.0)


def test_single_bone_joint_uses_vertical_axis():
    # shoulder has one bone (to the elbow); the elbow hangs straight below: angle to +y is pi
    xyz = np.array([[[0, 1, 0], [0, 0, 0], [1, 0, 0]]], dtype=float)
    assert ARM.angles["shoulder"] == ("elbow",)
    assert joint_angles(xyz, ARM, ["shoulder"], up_axis="y")[0, 0] == pytest.approx(1.0)
    assert joint_angles(xyz, ARM, ["shoulder"], up_axis="-y")[0, 0] == pytest.approx(0.0)
    assert joint_angles(xyz, ARM, ["shoulder"], up_axis="x")[0, 0] == pytest.approx(0.5)


def test_speed_uses_real_time():
    frames = np.arange(10, dtype=float)
    xyz = np.zeros((10, 3, 3))
    xyz[:, 2, 0] = frames * 0.1  # wrist moves 0.1 per frame along x
    assert joint_speeds(xyz, fps=30.0)[:, 2] == pytest.approx(np.full(10, 3.0))
    assert joint_speeds(xyz, fps=15.0)[:, 2] == pytest.approx(np.full(10, 1.5))
    assert joint_speeds(xyz, fps=30.0)[:, 0] == pytest.approx(np.zeros(10))


def test_normalisation_keeps_proportions():
    xyz = np.array([[[0, 0, 0], [2, 1, 0], [4, 0, 1]]], dtype=float)
    norm = normalize_positions(xyz)
    assert norm.min() == 0 and norm.max() == pytest.approx(1.0)
    assert norm[0, 1] == pytest.approx([0.5, 0.25, 0.0])  # one scale (4) for all axes


def test_fill_missing_interpolates_and_rejects_all_nan():
    xyz = np.zeros((3, 2, 3))
    xyz[:, 0, 0] = [0.0, np.nan, 2.0]
    xyz[:, 1] = np.nan  # never observed: placed at the observed joints' centroid
    out = fill_missing(xyz)
    assert out[1, 0, 0] == pytest.approx(1.0)
    assert np.allclose(out[:, 1], out[:, 0])
    with pytest.raises(ValueError, match="NaN everywhere"):
        fill_missing(np.full((4, 2, 3), np.nan))


def test_node_kinematics_layout():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(6, 3, 3))
    stats = node_kinematics(xyz, ARM, fps=30.0)
    assert stats.shape == (6, 2, 5)  # two node types, one joint each, [a, v, x, y, z]
    assert np.allclose(stats[:, 0, 0], joint_angles(xyz, ARM, ["elbow"])[:, 0])
    assert np.all((stats[:, :, 2:] >= 0) & (stats[:, :, 2:] <= 1))


def test_bad_up_axis_raises():
    with pytest.raises(ValueError, match="up_axis"):
        joint_angles(np.zeros((1, 3, 3)), ARM, ["shoulder"], up_axis="w")


@pytest.mark.parametrize("up", ["y", "z", "x"])
def test_canonical_facing_removes_the_camera_yaw(up):
    from pose.kinematics import canonical_facing, rotation_about

    rng = np.random.default_rng(2)
    xyz = rng.normal(size=(20, 4, 3))
    xyz[:, 1] = xyz[:, 0] + np.array([0.4, 0.05, -0.3])  # joint 1 right of joint 0, roughly
    xyz[5, 0] = np.nan
    a = canonical_facing(xyz, 0, 1, up)
    b = canonical_facing(xyz @ rotation_about(up, 137.0).T, 0, 1, up)
    np.testing.assert_allclose(a, b, atol=1e-9)
    line = np.nanmean(a[:, 1] - a[:, 0], axis=0)
    horizontal = [i for i in range(3) if i != "xyz".index(up)]
    assert line[horizontal[0]] > 0 and abs(line[horizontal[1]]) < 1e-9
