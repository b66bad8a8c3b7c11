"""The three reasoning plots: files written (PNG and PDF), highlight colours, errors."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba

from kept.data.demo import simulate_recording
from kept.explain.plots import (
    HIGHLIGHT,
    _figure_paths,
    _figure_poses,
    _figure_residual,
    plot_paths,
    plot_poses,
    plot_residual,
)
from pose.skeleton import get_skeleton

SK = get_skeleton("coco17")
NAMES = list(SK.node_names)  # elbow, shoulder, hip, knee


@pytest.fixture(scope="module")
def recordings():
    return simulate_recording(3, "penalty_kick"), simulate_recording(4, "penalty_kick")


def _paths():
    paths = np.array([[3, 1, 0, 2], [3, 1, 0, 0], [0, 0, 2, 2], [1, 2, 3, 3], [2, 2, 0, 1]])
    q = np.array([0.41, 0.2, 0.15, 0.1, 0.0004])
    return paths, q


def _path_lines(fig):
    return {a.get_gid(): a for a in fig.axes[0].get_lines() if (a.get_gid() or "").startswith("path-")}


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_plot_paths_writes_file(tmp_path, suffix):
    paths, q = _paths()
    spans = [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    out = plot_paths(paths, q, 0, NAMES, spans, tmp_path / f"paths{suffix}", title="pair")
    assert out == tmp_path / f"paths{suffix}" and out.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left behind


def test_plot_paths_selected_is_highlighted():
    paths, q = _paths()
    fig = _figure_paths(paths, q, 2, NAMES, None)
    lines = _path_lines(fig)
    assert len(lines) == len(paths)
    red = to_rgba(HIGHLIGHT)
    sel = lines["path-2"]
    assert to_rgba(sel.get_color()) == red
    assert all(to_rgba(l.get_color()) != red for g, l in lines.items() if g != "path-2")
    assert sel.get_linewidth() > max(l.get_linewidth() for g, l in lines.items() if g != "path-2")
    # polyline root -> K levels, through the node rows (node b at y = B - 1 - b, offset 0 for l*)
    assert np.allclose(sel.get_xdata(), np.arange(5))
    assert np.allclose(sel.get_ydata()[1:], [len(NAMES) - 1 - b for b in paths[2]])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("0.150" in t and "selected" in t for t in texts)
    assert any("Q = 4.0e-04" in t for t in texts)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "segment 1"


def test_plot_paths_errors(tmp_path):
    paths, q = _paths()
    with pytest.raises(ValueError, match="png or .pdf"):
        plot_paths(paths, q, 0, NAMES, None, tmp_path / "p.svg")
    with pytest.raises(ValueError, match="q must be"):
        _figure_paths(paths, q[:3], 0, NAMES, None)
    with pytest.raises(ValueError, match="outside"):
        _figure_paths(paths, q, 0, NAMES[:2], None)
    with pytest.raises(ValueError, match="selected"):
        _figure_paths(paths, q, 5, NAMES, None)
    with pytest.raises(ValueError, match="segment_times"):
        _figure_paths(paths, q, 0, NAMES, [(0, 1)])
    with pytest.raises(ValueError, match="at most 10"):
        _figure_paths(np.zeros((11, 2), int), np.full(11, 0.05), 0, NAMES, None)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _figure_paths(paths, q * 3, 0, NAMES, None)
    with pytest.raises(ValueError, match=r"\(L, K\)"):
        _figure_paths(paths[0], q, 0, NAMES, None)


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_plot_residual_writes_file(tmp_path, recordings, suffix):
    r1, r2 = recordings
    mean1 = np.nanmean(r1.xyz, axis=0)
    residual = np.linalg.norm(mean1 - np.nanmean(r2.xyz, axis=0), axis=-1)
    edges = np.array([[9, 10], [7, 13], [15, 16]])
    out = plot_residual(SK, mean1, residual, edges, np.array([1.0, 0.4, 0.1]), tmp_path / f"res{suffix}")
    assert out.stat().st_size > 1000
    out = plot_residual(SK, mean1, residual, None, None, tmp_path / f"res_plain{suffix}", title="t")
    assert out.stat().st_size > 1000


def test_plot_residual_content():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(SK.num_joints, 3))
    xyz[2] = np.nan  # skipped
    residual = np.linspace(0, 1, SK.num_joints)
    fig = _figure_residual(SK, xyz, residual, np.array([[0, 16], [5, 6], [1, 2]]), np.array([1.0, 0.5, 1.0]))
    ax = fig.axes[0]
    implicit = [p for p in ax.patches if p.get_gid() == "implicit"]
    assert len(implicit) == 2  # the edge to the NaN joint is skipped
    assert implicit[0].get_alpha() > implicit[1].get_alpha()
    names = " ".join(t.get_text() for t in ax.texts)
    assert all(SK.joints[j] in names for j in (16, 15, 14))  # the three largest residuals
    # a z-up recording draws the same front view as its y-up copy
    def drawn(fig):
        return [c.get_offsets().copy() for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    no_angle = residual.copy()
    no_angle[3] = np.nan  # drawn grey
    y_up = drawn(_figure_residual(SK, xyz, no_angle))
    z_up = drawn(_figure_residual(SK, xyz[:, [0, 2, 1]] * [1, 5, 1], no_angle, up_axis="z"))  # depth scaled
    assert [len(o) for o in y_up] == [SK.num_joints - 2, 1]  # coloured joints, the grey one (NaN joint 2 not drawn)
    for a, b in zip(y_up, z_up):
        np.testing.assert_allclose(a, b)


def test_plot_residual_errors(tmp_path):
    xyz = np.zeros((SK.num_joints, 3))
    res = np.ones(SK.num_joints)
    with pytest.raises(ValueError, match="xyz must be"):
        _figure_residual(SK, xyz[:5], res)
    with pytest.raises(ValueError, match="residual must be"):
        _figure_residual(SK, xyz, res[:3])
    with pytest.raises(ValueError, match=">= 0"):
        _figure_residual(SK, xyz, -res)
    with pytest.raises(ValueError, match="both"):
        _figure_residual(SK, xyz, res, np.array([[0, 1]]), None)
    with pytest.raises(ValueError, match=r"\(E, 2\)"):
        _figure_residual(SK, xyz, res, np.array([0, 1, 2]), np.ones(3))
    with pytest.raises(ValueError, match="outside"):
        _figure_residual(SK, xyz, res, np.array([[0, 99]]), np.ones(1))
    with pytest.raises(ValueError, match="up_axis"):
        _figure_residual(SK, xyz, res, up_axis="x")
    with pytest.raises(ValueError, match="png or .pdf"):
        plot_residual(SK, xyz, res, None, None, tmp_path / "r.jpg")


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_plot_poses_writes_file(tmp_path, recordings, suffix):
    r1, r2 = recordings
    out = plot_poses(SK, r1.xyz, r2.xyz, r1.fps, r2.fps, ["knee", "hip", "knee"], 3, tmp_path / f"poses{suffix}")
    assert out.stat().st_size > 1000


def test_plot_poses_content(recordings):
    r1, r2 = recordings
    xyz2 = r2.xyz.copy()
    xyz2[:, SK.index("left_knee")] = np.nan  # NaN joints are skipped
    watched = {"knee": ["left_knee", "right_knee"], "wrist": ["left_wrist"]}
    fig = _figure_poses(SK, r1.xyz, xyz2, 30.0, 25.0, ["knee", "wrist"], 2, watched=watched,
                        labels=("A", "B"))
    axes = np.array(fig.axes).reshape(2, 2)
    red = to_rgba(HIGHLIGHT)

    def marked(ax):
        cols = [c for c in ax.collections if c.get_gid() == "watched"]
        assert len(cols) == 1 and tuple(cols[0].get_facecolor()[0]) == red
        return len(cols[0].get_offsets())

    assert [marked(a) for a in axes[0]] == [2, 1]
    assert [marked(a) for a in axes[1]] == [1, 1]  # left knee is NaN in recording 2
    assert "segment 1: knee" in axes[0, 0].get_title() and "segment 2: wrist" in axes[0, 1].get_title()
    f2 = len(xyz2)
    assert f"{f2 / 2 / 25.0:.2f}" in axes[1, 1].get_title()  # span of segment 2 ends at F2 / fps_2
    assert axes[0, 0].get_ylabel() == "A" and axes[1, 0].get_ylabel() == "B"
    # equal scaling within a row
    w = [np.diff(a.get_xlim())[0] for a in axes[0]]
    assert np.isclose(w[0], w[1])


def test_plot_poses_errors(tmp_path, recordings):
    r1, r2 = recordings
    with pytest.raises(ValueError, match="depth"):
        _figure_poses(SK, r1.xyz, r2.xyz, 30, 30, ["knee", "hip"], 3)
    with pytest.raises(ValueError, match="unknown node type"):
        _figure_poses(SK, r1.xyz, r2.xyz, 30, 30, ["ankle"], 1)
    with pytest.raises(ValueError, match="xyz_2"):
        _figure_poses(SK, r1.xyz, r2.xyz[:, :5], 30, 30, ["knee"], 1)
    with pytest.raises(ValueError, match="fps"):
        _figure_poses(SK, r1.xyz, r2.xyz, 0, 30, ["knee"], 1)
    with pytest.raises(ValueError, match="no joint"):
        _figure_poses(SK, r1.xyz, r2.xyz, 30, 30, ["knee"], 1, watched={"knee": ["kneecap"]})
    with pytest.raises(ValueError, match="png or .pdf"):
        plot_poses(SK, r1.xyz, r2.xyz, 30, 30, ["knee"], 1, tmp_path / "p.gif")
