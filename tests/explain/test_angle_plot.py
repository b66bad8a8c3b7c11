"""The aligned-angle-curves plot: a file per format, one panel per watched node type, shading, errors."""

from __future__ import annotations

import numpy as np
import pytest

from kept.explain.plots import _figure_angles, plot_angle_curves
from pose.skeleton import get_skeleton

SK = get_skeleton("coco17")
T = np.linspace(0, 2, 50)
JOINTS = [j for joints in SK.node_types.values() for j in joints]
CURVES = {n: {j: 150 + 10 * np.sin(T + i + s) for i, j in enumerate(JOINTS)} for s, n in enumerate(("A", "B"))}
SPANS = [(0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_writes_the_file(tmp_path, suffix):
    out = plot_angle_curves(T, CURVES, ("A", "B"), ["knee", "knee", "hip", "elbow"], SPANS, SK.node_types,
                            tmp_path / f"angles{suffix}")
    assert out.is_file() and out.stat().st_size > 1000


def test_one_panel_per_watched_node_with_both_sides_and_the_path_segments_shaded():
    fig = _figure_angles(T, CURVES, ("A", "B"), ["knee", "knee", "hip", "knee"], SPANS, SK.node_types)
    assert [ax.get_ylabel() for ax in fig.axes] == ["knee angle (deg)", "hip angle (deg)"]
    knee = fig.axes[0]
    assert len(knee.get_lines()) - 4 == 4  # 2 recordings x (left, right); 4 segment boundary lines
    shaded = [p for p in knee.patches]
    assert len(shaded) == 3  # the knee is watched in segments 1, 2 and 4
    assert len(fig.axes[1].patches) == 1


@pytest.mark.parametrize("kw, match", [({"path": ["toe"] * 4}, "node type"), ({"path": ["knee"] * 3}, "segments"),
                                       ({"names": ("A", "C")}, "no angle curves")])
def test_rejects_bad_input(tmp_path, kw, match):
    args = dict(names=("A", "B"), path=["knee"] * 4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        plot_angle_curves(T, CURVES, args["names"], args["path"], SPANS, SK.node_types, tmp_path / "x.png")
