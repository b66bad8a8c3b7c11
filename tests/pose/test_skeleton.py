import numpy as np
import pytest

from pose.skeleton import BUILTIN_SKELETONS, Skeleton, get_skeleton


@pytest.mark.parametrize("name", ["coco17", "h36m17"])
def test_builtins(name):
    s = get_skeleton(name)
    assert s.num_joints == 17
    assert s.node_names == ("elbow", "shoulder", "hip", "knee")
    adj = s.adjacency()
    assert np.array_equal(adj, adj.T) and adj.trace() == 0
    assert all(len(s.angles[j]) == 2 for members in s.node_types.values() for j in members)


def test_spec_round_trip():
    s = BUILTIN_SKELETONS["coco17"]
    assert Skeleton.from_spec(s.to_spec(), name="coco17") == s


def test_default_angles_from_bones():
    s = Skeleton.from_spec({"joints": ["a", "b", "c"], "edges": [["a", "b"], ["b", "c"]],
                            "node_types": {"mid": ["b"], "end": ["c"]}})
    assert s.angles == {"b": ("a", "c"), "c": ("b",)}


@pytest.mark.parametrize("spec, match", [
    ({"joints": ["a", "b"], "edges": [["a", "x"]], "node_types": {"n": ["a"]}}, "unknown joint 'x'"),
    ({"joints": ["a", "b"], "edges": [["a", "b"]], "node_types": {"n": ["z"]}}, "unknown joint 'z'"),
    ({"joints": ["a", "a"], "edges": [], "node_types": {"n": ["a"]}}, "unique"),
    ({"joints": ["a", "b"], "edges": [["a", "b"]]}, "lacks"),
    ({"joints": ["a", "b", "c"], "edges": [["a", "b"]], "node_types": {"n": ["c"]}}, "has no bone"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        Skeleton.from_spec(spec)


def test_unknown_builtin():
    with pytest.raises(ValueError, match="built-in skeletons"):
        get_skeleton("smpl24")
