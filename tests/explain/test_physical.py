"""The physical-difference report: DTW (fast row pass equals the naive recursion), alignment of a
time-stretched copy, the report finds a known fault, sentences, errors."""

from __future__ import annotations

import numpy as np
import pytest

from kept.data.demo import simulate_recording
from kept.explain.physical import align, dtw, physical_report, sentence
from pose.skeleton import get_skeleton

SK = get_skeleton("coco17")


def _naive_dtw(cost):
    n, m = cost.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(n):
        for j in range(m):
            D[i + 1, j + 1] = cost[i, j] + min(D[i, j], D[i, j + 1], D[i + 1, j])
    return D[n, m]


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (7, 9), (31, 24)])
def test_dtw_equals_the_naive_recursion_and_its_path_sums_to_the_cost(shape):
    cost = np.random.default_rng(sum(shape)).random(shape)
    path, total = dtw(cost)
    assert total == pytest.approx(_naive_dtw(cost))
    assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(total)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (shape[0] - 1, shape[1] - 1)
    steps = np.diff(path, axis=0)
    assert set(map(tuple, steps)) <= {(1, 0), (0, 1), (1, 1)}  # monotone, one step at a time


def test_dtw_band_keeps_the_path_near_the_diagonal_and_costs_at_least_the_free_path():
    cost = np.random.default_rng(1).random((40, 50))
    free, total = dtw(cost)
    banded, total_b = dtw(cost, band=0.1)
    centre = banded[:, 0] * 49 / 39
    assert np.abs(banded[:, 1] - centre).max() <= 0.1 * 50 + 1
    assert total_b >= total - 1e-12


@pytest.mark.parametrize("bad, match", [(np.zeros((0, 3)), "non-empty"), (np.full((2, 2), np.nan), "NaN"),
                                        (np.ones((2, 2)), "band")])
def test_dtw_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        dtw(bad, band=2.0 if match == "band" else None)


def test_alignment_recovers_a_known_time_stretch():
    t = np.linspace(0, 1, 60)
    a = np.stack([np.sin(2 * np.pi * t), np.cos(3 * np.pi * t)], axis=1)
    s = np.linspace(0, 1, 90)  # the same motion, 1.5 times slower
    b = np.stack([np.sin(2 * np.pi * s), np.cos(3 * np.pi * s)], axis=1)
    al = align(a, b, band=None)
    matched = al.path[:, 1] / 89 - al.path[:, 0] / 59  # both as fractions of the motion
    assert np.abs(matched).max() < 0.05
    assert al.warp(b, 1, 60).shape == (60, 2)
    np.testing.assert_allclose(al.warp(b, 1, 60), a, atol=0.1)


@pytest.fixture(scope="module")
def faulted_pair():
    kw = dict(noise=False, dropout=False)
    bad = simulate_recording(5, "mid_range_shooting", [{"kind": "shallow_dip", "magnitude": 1.0}], **kw)
    good = simulate_recording(5, "mid_range_shooting", **kw)  # the same person, without the fault
    return bad, good


def test_report_puts_the_known_fault_first(faulted_pair):
    bad, good = faulted_pair
    rep = physical_report(bad.xyz, good.xyz, 30.0, 30.0, SK, ("bad", "good"), 4, 0, ["elbow"] * 4,
                          path_first=False)
    top = rep["findings"][0]
    fault = bad.faults[0]
    assert top["node"] == fault["node_type"] == "knee"
    t0, t1 = (t / bad.duration for t in top["time"]["bad"])
    assert t0 < fault["t_end"] and t1 > fault["t_start"]  # in the faulted phase
    assert top["angle_deg"]["bad"] > top["angle_deg"]["good"] + 5  # a shallow dip: the knee stays straighter
    assert len(rep["findings"]) == 4 * 8  # every (segment, node joint)
    assert set(rep["joint_angle_diff_deg"]) == {j for js in SK.node_types.values() for j in js}


def test_report_lists_the_path_first_and_identical_recordings_differ_by_nothing(faulted_pair):
    _, good = faulted_pair
    path = ["elbow", "shoulder", "hip", "knee"]
    rep = physical_report(good.xyz, good.xyz, 30.0, 30.0, SK, ("a", "b"), 4, 1, path, path_first=True)
    first = rep["findings"][:8]  # 4 segments x 2 joints of the watched node
    assert all(f["on_path"] for f in first) and not any(f["on_path"] for f in rep["findings"][8:])
    assert all(f["node"] == path[f["segment"]] for f in first)
    assert all(abs(f["angle_diff_deg"]) < 1e-6 and abs(f["phase_offset_ms"]) < 1e-6 for f in rep["findings"])


def test_penalties_per_joint_order_findings_by_relevance(faulted_pair):
    bad, good = faulted_pair
    pen = [np.zeros((4, 4, 2)), np.zeros((4, 4, 2))]
    pen[0][1, 2, 1] = 0.7  # the subject loses 0.7 on the right hip in segment 2
    rep = physical_report(bad.xyz, good.xyz, 30.0, 30.0, SK, ("bad", "good"), 4, 0, ["knee"] * 4,
                          penalties=tuple(pen), rank="relevance", path_first=False)
    top = rep["findings"][0]
    assert (top["segment"], top["joint"], top["relevance"]) == (1, "right_hip", 0.7)
    assert top["score_lost"] == {"bad": 0.7, "good": 0.0}


def test_sentence_gives_both_angles_the_difference_and_the_direction():
    f = {"segment": 2, "joint": "right_elbow", "time": {"B": [1.38, 2.08], "A": [1.2, 1.9]},
         "angle_deg": {"B": 142.0, "A": 165.0}, "speed": {"B": 1.0, "A": 1.05}, "phase_offset_ms": -180.0}
    text = sentence(f, "B", "A")
    assert text.startswith("segment 3 (1.38-2.08 s), right elbow: B 142 deg vs A 165 deg, B bends 23 deg more")
    assert "moves" not in text  # speeds within 20 %
    assert "A reaches this phase 180 ms earlier" in text


@pytest.mark.parametrize("kw, match", [({"rank": "loudest"}, "rank"), ({"subject": 2}, "subject"),
                                       ({"path": ["knee"]}, "steps")])
def test_report_rejects_bad_arguments(faulted_pair, kw, match):
    bad, good = faulted_pair
    args = dict(subject=0, path=["knee"] * 4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        physical_report(bad.xyz, good.xyz, 30.0, 30.0, SK, ("a", "b"), 4, args.pop("subject"), args.pop("path"),
                        **args)
