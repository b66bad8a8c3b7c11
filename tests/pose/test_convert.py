import numpy as np
import pytest

from pose.convert import convert, convert_xyz, joint_map, node_joints, supported_pairs
from pose.kinematics import node_kinematics
from pose.sequence import KeypointSequence
from pose.skeleton import BUILTIN_SKELETONS, get_skeleton

PAIRS = supported_pairs()
ALL_PAIRS = PAIRS + [(s, s) for s in BUILTIN_SKELETONS]
COCO_CARRIED = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "nose"]


def random_xyz(skeleton, frames=4, seed=0):
    return np.random.default_rng(seed).normal(size=(frames, get_skeleton(skeleton).num_joints, 3))


def sided_pose(skeleton):
    """A pose whose left joints have x > 0, right joints x < 0, midline joints x = 0."""
    s = get_skeleton(skeleton)
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0.5, 1.5, size=(2, s.num_joints, 3))
    for i, j in enumerate(s.joints):  # |x| = 1 on both sides, so midline means stay at x = 0
        xyz[:, i, 0] = 1 if j.startswith("left_") else -1 if j.startswith("right_") else 0
    return xyz


def test_supported_pairs():
    assert set(PAIRS) == {("coco17", "h36m17"), ("h36m17", "coco17"),
                          ("mediapipe33", "coco17"), ("mediapipe33", "h36m17")}


@pytest.mark.parametrize("source, target", ALL_PAIRS)
def test_shapes(source, target):
    out = convert_xyz(random_xyz(source, frames=5), source, target)
    assert out.shape == (5, get_skeleton(target).num_joints, 3)
    assert len(joint_map(source, target)) == get_skeleton(target).num_joints


@pytest.mark.parametrize("source, target", ALL_PAIRS)
def test_left_stays_left(source, target):
    out = convert_xyz(sided_pose(source), source, target)
    tgt = get_skeleton(target)
    for i, j in enumerate(tgt.joints):
        if np.isnan(out[:, i]).all():
            continue
        if j.startswith("left_"):
            assert (out[:, i, 0] > 0).all(), j
        elif j.startswith("right_"):
            assert (out[:, i, 0] < 0).all(), j
        else:
            assert np.allclose(out[:, i, 0], 0), j


@pytest.mark.parametrize("source, target", PAIRS)
def test_bone_lengths_kept(source, target):
    src, tgt = get_skeleton(source), get_skeleton(target)
    xyz = random_xyz(source)
    out = convert_xyz(xyz, source, target)
    mapping = joint_map(source, target)
    src_bones = {frozenset(e) for e in src.edges}
    checked = 0
    for a, b in tgt.edges:
        ma, mb = mapping[tgt.index(a)], mapping[tgt.index(b)]
        if len(ma) == 1 and len(mb) == 1 and frozenset((src.joints[ma[0]], src.joints[mb[0]])) in src_bones:
            want = np.linalg.norm(xyz[:, ma[0]] - xyz[:, mb[0]], axis=-1)
            got = np.linalg.norm(out[:, tgt.index(a)] - out[:, tgt.index(b)], axis=-1)
            np.testing.assert_allclose(got, want)
            checked += 1
    assert checked >= 6  # at least the four leg bones and the two forearms/upper arms


def test_coco_h36m_round_trip():
    coco = get_skeleton("coco17")
    xyz = random_xyz("coco17")
    back = convert_xyz(convert_xyz(xyz, "coco17", "h36m17"), "h36m17", "coco17")
    idx = [coco.index(j) for j in COCO_CARRIED]
    np.testing.assert_allclose(back[:, idx], xyz[:, idx])
    for j in ("left_eye", "right_eye", "left_ear", "right_ear"):
        assert np.isnan(back[:, coco.index(j)]).all()


def test_coco_to_h36m_derived_joints():
    coco, h36m = get_skeleton("coco17"), get_skeleton("h36m17")
    xyz = random_xyz("coco17")
    out = convert_xyz(xyz, "coco17", "h36m17")
    c = lambda j: xyz[:, coco.index(j)]
    h = lambda j: out[:, h36m.index(j)]
    root = (c("left_hip") + c("right_hip")) / 2
    thorax = (c("left_shoulder") + c("right_shoulder")) / 2
    np.testing.assert_allclose(h("root"), root)
    np.testing.assert_allclose(h("thorax"), thorax)
    np.testing.assert_allclose(h("spine"), (root + thorax) / 2)
    np.testing.assert_allclose(h("neck_base"), (thorax + c("nose")) / 2)
    np.testing.assert_allclose(h("head"), c("nose"))
    np.testing.assert_allclose(h("left_foot"), c("left_ankle"))


def test_mediapipe_to_coco_picks_landmarks():
    mp, coco = get_skeleton("mediapipe33"), get_skeleton("coco17")
    xyz = np.zeros((1, 33, 3))
    xyz[0, :, 0] = np.arange(33)  # x encodes the landmark index
    out = convert_xyz(xyz, "mediapipe33", "coco17")
    assert out[0, :, 0].tolist() == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    for i, j in enumerate(coco.joints):
        assert mp.joints[int(out[0, i, 0])] == j


def test_mediapipe_to_h36m_is_composition():
    xyz = random_xyz("mediapipe33")
    direct = convert_xyz(xyz, "mediapipe33", "h36m17")
    via = convert_xyz(convert_xyz(xyz, "mediapipe33", "coco17"), "coco17", "h36m17")
    np.testing.assert_allclose(direct, via)


def test_identity_is_a_copy():
    xyz = random_xyz("h36m17")
    out = convert_xyz(xyz, "h36m17", "h36m17")
    np.testing.assert_array_equal(out, xyz)
    out[0, 0, 0] = 99.0
    assert xyz[0, 0, 0] != 99.0


def test_nan_propagates_to_derived_joints():
    coco, h36m = get_skeleton("coco17"), get_skeleton("h36m17")
    xyz = random_xyz("coco17")
    xyz[0, coco.index("left_hip")] = np.nan
    out = convert_xyz(xyz, "coco17", "h36m17")
    assert np.isnan(out[0, h36m.index("root")]).all() and np.isnan(out[0, h36m.index("spine")]).all()
    assert not np.isnan(out[0, h36m.index("thorax")]).any()


def test_convert_sequence_confidence_and_fields():
    coco, h36m = get_skeleton("coco17"), get_skeleton("h36m17")
    conf = np.linspace(0.1, 0.9, 17)[None].repeat(3, axis=0)
    seq = KeypointSequence(xyz=random_xyz("coco17", frames=3), confidence=conf, skeleton="coco17", fps=25.0,
                           source="test", times=np.array([0.0, 0.1, 0.3]), meta={"video": "a.mp4"})
    out = convert(seq, "h36m17")
    assert out.skeleton == "h36m17" and out.fps == 25.0 and out.source == "test"
    assert out.meta == {"video": "a.mp4"} and out.meta is not seq.meta
    np.testing.assert_array_equal(out.times, seq.times)
    c = conf[0]
    got = out.confidence[0]
    assert got[h36m.index("root")] == pytest.approx(min(c[coco.index("left_hip")], c[coco.index("right_hip")]))
    assert got[h36m.index("neck_base")] == pytest.approx(
        min(c[coco.index(j)] for j in ("left_shoulder", "right_shoulder", "nose")))
    assert got[h36m.index("left_knee")] == pytest.approx(c[coco.index("left_knee")])
    back = convert(out, "coco17")
    assert back.skeleton == "coco17"
    for j in ("left_eye", "right_eye", "left_ear", "right_ear"):
        assert (back.confidence[:, coco.index(j)] == 0).all()
    same = convert(seq, "coco17")
    np.testing.assert_array_equal(same.xyz, seq.xyz)
    assert same.xyz is not seq.xyz


@pytest.mark.parametrize("source, target", [("coco17", "mediapipe33"), ("h36m17", "smpl24"), ("foo", "foo")])
def test_unknown_pair(source, target):
    with pytest.raises(ValueError, match="supported: .*coco17 -> h36m17"):
        joint_map(source, target)


def test_wrong_shape():
    with pytest.raises(ValueError, match="17, 3"):
        convert_xyz(np.zeros((2, 33, 3)), "coco17", "h36m17")


def test_mediapipe33_skeleton():
    s = get_skeleton("mediapipe33")
    assert s.num_joints == 33 and len(s.edges) == 35
    assert s.joints[:4] == ("nose", "left_eye_inner", "left_eye", "left_eye_outer")
    assert s.joints[-2:] == ("left_foot_index", "right_foot_index")
    assert s.node_names == ("elbow", "shoulder", "hip", "knee")
    assert s.angles["left_knee"] == ("left_hip", "left_ankle")
    assert s.angles["right_shoulder"] == ("right_elbow", "right_hip")
    assert s.facing == ("left_hip", "right_hip")
    adj = s.adjacency()
    assert np.array_equal(adj, adj.T) and adj.trace() == 0 and adj.sum() == 70
    out = node_kinematics(random_xyz("mediapipe33", frames=6), s, fps=30.0)
    assert out.shape == (6, 4, 10) and np.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(BUILTIN_SKELETONS))
def test_node_joints(name):
    nj = node_joints(name)
    assert list(nj) == ["elbow", "shoulder", "hip", "knee"]
    assert nj["knee"] == ("left_knee", "right_knee")
    s = get_skeleton(name)
    assert all(j in s.joints for members in nj.values() for j in members)
