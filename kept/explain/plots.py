"""The three plots of KEPT's reasoning: the path tree, the residual keypoint graph, the key poses.

Every function takes plain arrays (no model), so the plots can be drawn for any pair of
recordings from whatever produced the numbers. Figures are built with the object-oriented
matplotlib API on an Agg canvas (``pyplot`` and its global state are never touched) and written
atomically with :func:`kept.io.atomic_path`; the file format follows the suffix of ``out``
(``.png`` or ``.pdf``).

- :func:`plot_paths`: the top-L paths of the tree search as in the KEPT paper's figure 5: a
  root on the left, one level per temporal segment, the node types as the nodes of each level;
  each path is a polyline root -> level 1 -> ... -> level K, its Q value written at its end, the
  selected path l* in red.
- :func:`plot_residual`: the residual keypoint graph on the skeleton (front view): joints and
  bones coloured by the size of the difference, the implicit graph's edges as dashed curves.
- :func:`plot_poses`: side by side, the pose of each recording at the middle of each segment,
  the joints of the selected path's node type in that segment marked in red.

Shapes glossary: L paths shown, K segments (tree depth), B node types, P joints, E implicit
edges, F frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from kept.io import atomic_path
from pose.skeleton import Skeleton

__all__ = ["HIGHLIGHT", "plot_paths", "plot_poses", "plot_residual"]

#: Colour of the selected path (plot_paths) and of the watched joints (plot_poses).
HIGHLIGHT = "#d62728"
_SUFFIXES = (".png", ".pdf")
_DPI = 150
_MAX_PATHS = 10


# -- shared helpers -------------------------------------------------------------------------------
def _check_out(out: str | Path) -> Path:
    path = Path(out)
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"plot file '{path}' must end in .png or .pdf, got suffix '{path.suffix}'")
    return path


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: Path) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lower()[1:], dpi=_DPI, bbox_inches="tight", pad_inches=0.15)
    return out


def _up_axis_columns(up_axis: str) -> tuple[int, int]:
    """Columns of the 2D front view: x and the vertical axis (the depth axis is projected out)."""
    if up_axis == "y":
        return 0, 1
    if up_axis == "z":
        return 0, 2
    raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")


def _bones(skeleton: Skeleton) -> np.ndarray:
    """Bones as joint index pairs. Shapes: returns (nb, 2) int."""
    return np.array([[skeleton.index(a), skeleton.index(b)] for a, b in skeleton.edges], dtype=int).reshape(-1, 2)


# -- plot 1: the path tree ------------------------------------------------------------------------
def _figure_paths(paths, q, selected, node_names, segment_times=None, title=None) -> Figure:
    """Build the path-tree figure (see :func:`plot_paths`) without writing it."""
    paths = np.asarray(paths)
    q = np.asarray(q, dtype=float)
    names = [str(n) for n in node_names]
    if paths.ndim != 2 or paths.shape[0] < 1 or paths.shape[1] < 1:
        raise ValueError(f"paths must be (L, K) with L, K >= 1, got shape {paths.shape}")
    L, K = paths.shape
    if L > _MAX_PATHS:
        raise ValueError(f"at most {_MAX_PATHS} paths can be shown, got L = {L}")
    if not np.issubdtype(paths.dtype, np.integer):
        if not np.all(np.isfinite(paths)) or not np.all(paths == np.round(paths)):
            raise ValueError("paths must hold integer node indices")
        paths = paths.astype(int)
    if q.shape != (L,):
        raise ValueError(f"q must be (L,) = ({L},) to match paths, got shape {q.shape}")
    if not np.all(np.isfinite(q)) or q.min() < 0 or q.max() > 1:
        raise ValueError(f"q values must lie in [0, 1], got {q.tolist()}")
    B = len(names)
    if B < 1:
        raise ValueError("node_names is empty")
    if len(set(names)) != B:
        raise ValueError(f"node_names must be unique, got {names}")
    if paths.min() < 0 or paths.max() >= B:
        raise ValueError(f"paths hold node indices outside [0, {B}) (node_names has {B} names)")
    if isinstance(selected, (bool, np.bool_)) or not isinstance(selected, (int, np.integer)):
        raise ValueError(f"selected must be an int row of paths, got {selected!r}")
    selected = int(selected)
    if not 0 <= selected < L:
        raise ValueError(f"selected = {selected} is not a row of paths (L = {L})")
    if segment_times is not None:
        spans = [tuple(float(v) for v in s) for s in segment_times]
        if len(spans) != K or any(len(s) != 2 for s in spans):
            raise ValueError(f"segment_times must hold K = {K} (t0, t1) pairs, got {list(segment_times)}")
        col_labels = [f"segment {k + 1}\n({t0:.2f}\u2013{t1:.2f} s)" for k, (t0, t1) in enumerate(spans)]
    else:
        col_labels = [f"segment {k + 1}" for k in range(K)]

    # Layout: root at x = 0, level k at x = k + 1; node b at y = B - 1 - b (first name on top).
    def node_y(b: int) -> int:
        return B - 1 - b

    root_y = (B - 1) / 2
    box_w, box_h = 0.30, 0.62
    order = np.argsort(-q, kind="stable")  # rank 0 = largest Q
    rank = np.empty(L, dtype=int)
    rank[order] = np.arange(L)
    # Side-by-side offsets of the paths: the selected one through the node centres, the others
    # alternately above and below it by Q rank.
    delta = min(0.05, 0.23 / max(np.ceil((L - 1) / 2), 1))
    offset = np.zeros(L)
    for i, l in enumerate(l for l in order if l != selected):
        offset[l] = (i // 2 + 1) * delta * (1 if i % 2 == 0 else -1)
    qn = q / q.max() if q.max() > 0 else np.ones(L)

    label_col = max(3.2, 1.6 + 0.13 * 2.6 * K)  # inches of the Q-label column
    width = 1.25 * (K + 1) + 0.9 + label_col
    height = max(2.8, 0.75 * B + 1.3, 0.3 * L + 1.3)
    fig = _new_figure(width, height)
    ax = fig.add_axes([0.9 / width + 0.02, 0.08, 1.25 * (K + 1) / width, 0.72])

    # Nodes (each (level, node type) exists once: paths through it share it).
    visits: dict[tuple[int, int], int] = {}
    for l in range(L):
        for k in range(K):
            visits[(k, int(paths[l, k]))] = visits.get((k, int(paths[l, k])), 0) + 1
    sel_nodes = {(k, int(paths[selected, k])) for k in range(K)}

    def box(x, y, visited, on_sel, text=None):
        face = "#e8eef7" if visited else "#f4f4f4"
        edge = HIGHLIGHT if on_sel else ("#5a6f8f" if visited else "#c8c8c8")
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0,rounding_size=0.08", mutation_aspect=1,
                                    facecolor=face, edgecolor=edge, lw=1.6 if on_sel else 1.0, zorder=1))
        if text:
            ax.text(x, y - box_h / 2 - 0.06, text, ha="center", va="top", fontsize=7, color="#555555", zorder=5)

    box(0, root_y, True, True)
    ax.text(0, root_y - box_h / 2 - 0.06, "root", ha="center", va="top", fontsize=8, color="#333333")
    for k in range(K):
        for b in range(B):
            n = visits.get((k, b), 0)
            box(k + 1, node_y(b), n > 0, (k, b) in sel_nodes, f"\u00d7{n}" if n > 1 else None)

    # Paths: weakest first so the stronger ones and the selected one lie on top.
    cmap = _cmap("Blues")
    x_pts = np.arange(K + 1, dtype=float)
    x_lab = K + 0.5
    top, bottom = B - 1 + 0.35, -0.35
    spacing = min((top - bottom) / max(L - 1, 1), 0.5)
    centre = (top + bottom) / 2
    label_y = centre + ((L - 1) / 2 - np.arange(L)) * spacing  # by rank, top = largest Q
    draw_order = [int(l) for l in order[::-1] if l != selected] + [selected]
    for l in draw_order:
        y_pts = np.array([root_y] + [node_y(int(b)) for b in paths[l]], dtype=float) + offset[l]
        is_sel = l == selected
        colour = HIGHLIGHT if is_sel else cmap(0.45 + 0.5 * qn[l])
        lw = 4.0 if is_sel else 1.0 + 2.2 * qn[l]
        alpha = 1.0 if is_sel else 0.35 + 0.6 * qn[l]
        z = 10 if is_sel else 3 + qn[l]
        line = Line2D(x_pts, y_pts, color=colour, lw=lw, alpha=alpha, solid_capstyle="round",
                      solid_joinstyle="round", zorder=z, gid=f"path-{l}",
                      label=f"path {l}" + (" (selected)" if is_sel else ""))
        ax.add_line(line)
        ax.plot([x_pts[0]], [y_pts[0]], "o", ms=3, color=colour, alpha=alpha, zorder=z)
        # leader to the Q label in the right-hand column
        ly = label_y[rank[l]]
        ax.add_line(Line2D([K + box_w / 2, x_lab - 0.05], [y_pts[-1], ly], color=colour,
                           lw=0.9, alpha=max(alpha, 0.5), ls=":", zorder=2, clip_on=False))
        seq = " \u2192 ".join(names[int(b)] for b in paths[l])
        qs = f"{q[l]:.3f}" if q[l] == 0 or q[l] >= 1e-3 else f"{q[l]:.1e}"
        txt = f"Q = {qs}   {seq}" + ("   (selected l*)" if is_sel else "")
        ax.text(x_lab, ly, txt, ha="left", va="center", fontsize=8, clip_on=False,
                color=HIGHLIGHT if is_sel else "#222222", fontweight="bold" if is_sel else "normal")

    ax.set_xlim(-0.35, K + 0.35)
    ax.set_ylim(-0.75, B - 1 + 0.55)
    ax.set_yticks([node_y(b) for b in range(B)], names, fontsize=9)
    ax.set_xticks(np.arange(1, K + 1), col_labels, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.text(x_lab, top + 0.45, f"top-{L} paths by Q", ha="left", va="bottom", fontsize=8.5,
            fontweight="bold", color="#333333", clip_on=False)
    fig.suptitle(title or "KEPT tree search: top paths through the temporal segments",
                 fontsize=10, x=0.02, ha="left", y=0.995)
    return fig


def _cmap(name: str):
    from matplotlib import colormaps

    return colormaps[name]


def plot_paths(paths: np.ndarray, q: np.ndarray, selected: int, node_names: Sequence[str],
               segment_times: Sequence[tuple[float, float]] | None, out: str | Path,
               title: str | None = None) -> Path:
    """Draw the top-L paths of the tree search (KEPT paper, figure 5) and write the figure.

    One level per temporal segment (columns, left to right), the node types as the nodes of
    each level (rows), a root on the left. Each path is a polyline root -> level-1 node -> ... ->
    level-K node; a node visited by several paths is one box (``×n`` under it counts the paths),
    the paths through it run side by side, slightly offset so they stay distinguishable. Line
    width, opacity and shade grow with Q relative to the largest shown; the selected path is
    red and thicker. A column on the right lists the paths sorted by Q, each joined to its end
    by a dotted leader.

    Args:
        paths: node indices (into ``node_names``) of the top-L paths, L <= 10.
        q: their Q values, in [0, 1].
        selected: row of ``paths`` of the selected path l*.
        node_names: the node types (B).
        segment_times: the K segments' (t0, t1) in seconds, or None for "segment k" only.
        out: the file to write, ``.png`` or ``.pdf``.
        title: figure title (a default is used when None).

    Shapes:
        paths: (L, K) int; q: (L,); node_names: (B,); segment_times: (K, 2)

    Returns:
        the written path.

    Raises:
        ValueError: shape mismatches, node indices outside [0, B), Q outside [0, 1], a bad
            ``selected``, more than 10 paths, or a suffix other than .png/.pdf.
    """
    out = _check_out(out)
    return _save(_figure_paths(paths, q, selected, node_names, segment_times, title), out)


# -- plot 2: the residual keypoint graph ----------------------------------------------------------
def _figure_residual(skeleton, xyz, residual, implicit_edges=None, implicit_weight=None,
                     up_axis="y", title=None, units="residual (size of the difference)") -> Figure:
    """Build the residual-graph figure (see :func:`plot_residual`) without writing it."""
    P = skeleton.num_joints
    xyz = np.asarray(xyz, dtype=float)
    residual = np.asarray(residual, dtype=float)
    if xyz.shape != (P, 3):
        raise ValueError(f"xyz must be (P, 3) = ({P}, 3) for skeleton '{skeleton.name}', got {xyz.shape}")
    if residual.shape != (P,):
        raise ValueError(f"residual must be (P,) = ({P},), got {residual.shape}")
    if np.any(residual[np.isfinite(residual)] < 0):
        raise ValueError("residual must be >= 0 (a per-joint size of the difference)")
    if (implicit_edges is None) != (implicit_weight is None):
        raise ValueError("give both implicit_edges and implicit_weight, or neither")
    cx, cy = _up_axis_columns(up_axis)
    xy = xyz[:, [cx, cy]]
    ok = np.all(np.isfinite(xy), axis=1)
    if not ok.any():
        raise ValueError("xyz has no finite joint to draw")
    res_ok = np.isfinite(residual)
    vmax = float(residual[res_ok].max()) if res_ok.any() else 1.0
    norm = Normalize(vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
    cmap = _cmap("viridis")

    fig = _new_figure(5.4, 6.0)
    ax = fig.add_axes([0.05, 0.05, 0.72, 0.86])
    cax = fig.add_axes([0.81, 0.15, 0.035, 0.66])

    bones = _bones(skeleton)
    segs, vals = [], []
    for a, b in bones:
        if ok[a] and ok[b]:
            segs.append([xy[a], xy[b]])
            vals.append(np.nanmean([residual[a], residual[b]]) if res_ok[a] or res_ok[b] else np.nan)
    if segs:
        lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=5, capstyle="round", zorder=2)
        lc.set_array(np.ma.masked_invalid(np.array(vals)))
        lc.set_gid("bones")
        ax.add_collection(lc)
        ax.add_collection(LineCollection(segs, colors="#444444", linewidths=6.5, capstyle="round", zorder=1))

    extent = np.ptp(xy[ok], axis=0).max() if ok.sum() > 1 else 1.0
    extent = extent if extent > 0 else 1.0
    n_implicit = 0
    if implicit_edges is not None:
        edges = np.asarray(implicit_edges)
        weight = np.asarray(implicit_weight, dtype=float)
        if edges.size == 0:
            edges = edges.reshape(0, 2)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ValueError(f"implicit_edges must be (E, 2) joint index pairs, got {edges.shape}")
        if weight.shape != (edges.shape[0],):
            raise ValueError(f"implicit_weight must be (E,) = ({edges.shape[0]},), got {weight.shape}")
        if edges.size and (edges.min() < 0 or edges.max() >= P):
            raise ValueError(f"implicit_edges hold joint indices outside [0, {P})")
        if np.any(~np.isfinite(weight)) or np.any(weight < 0):
            raise ValueError("implicit_weight must be finite and >= 0")
        wmax = weight.max() if weight.size and weight.max() > 0 else 1.0
        for (a, b), w in zip(edges.astype(int), weight):
            if a == b or not (ok[a] and ok[b]) or w <= 0:
                continue
            patch = FancyArrowPatch(xy[a], xy[b], arrowstyle="-", connectionstyle="arc3,rad=0.3",
                                    linestyle=(0, (4, 3)), lw=1.0 + 1.5 * w / wmax, color="#e8590c",
                                    alpha=0.15 + 0.85 * w / wmax, zorder=3)
            patch.set_gid("implicit")
            ax.add_patch(patch)
            n_implicit += 1

    sc = ax.scatter(xy[ok & res_ok, 0], xy[ok & res_ok, 1], c=residual[ok & res_ok], cmap=cmap, norm=norm,
                    s=90, edgecolors="#222222", linewidths=0.8, zorder=4)
    if np.any(ok & ~res_ok):
        ax.scatter(xy[ok & ~res_ok, 0], xy[ok & ~res_ok, 1], s=60, c="#bbbbbb", edgecolors="#666666",
                   zorder=4)
    cb = fig.colorbar(sc, cax=cax)
    cb.set_label(units, fontsize=9)
    cb.ax.tick_params(labelsize=8)

    # The three largest residuals, labelled beside the joint on the outer side of the body.
    centre_x = (xy[ok, 0].min() + xy[ok, 0].max()) / 2
    cand = np.where(ok & res_ok)[0]
    top3 = cand[np.argsort(-residual[cand], kind="stable")[:3]]
    side = {int(j): (1.0 if xy[j, 0] >= centre_x else -1.0) for j in top3}

    # Limits: the pose plus room for the labels, widened to the axes' shape so x and y share a scale.
    pad = 0.12 * extent
    lo, hi = xy[ok].min(axis=0) - pad, xy[ok].max(axis=0) + pad
    lo[0] -= (0.6 if -1.0 in side.values() else 0.05) * extent
    hi[0] += (0.6 if 1.0 in side.values() else 0.05) * extent
    ax_w, ax_h = 5.4 * 0.72, 6.0 * 0.86  # axes width and height in inches
    rx, ry = hi - lo
    if rx / ry < ax_w / ax_h:
        grow = (ry * ax_w / ax_h - rx) / 2
        lo[0] -= grow
        hi[0] += grow
    else:
        grow = (rx * ax_h / ax_w - ry) / 2
        lo[1] -= grow
        hi[1] += grow
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")

    # Stagger labels on one side so that they keep a line's height (0.25 in) apart.
    sep = 0.25 * (hi[1] - lo[1]) / ax_h
    label_y: dict[int, float] = {}
    for sd in (-1.0, 1.0):
        js = sorted((j for j in side if side[j] == sd), key=lambda j: -xy[j, 1])
        prev = np.inf
        for j in js:
            label_y[j] = min(xy[j, 1], prev - sep)
            prev = label_y[j]
    for i, j in enumerate(top3):
        j = int(j)
        ax.annotate(f"{i + 1}. {skeleton.joints[j]} ({residual[j]:.3g})", xy[j],
                    xytext=(xy[j, 0] + side[j] * 0.16 * extent, label_y[j]), fontsize=8,
                    ha="left" if side[j] > 0 else "right", va="center", zorder=6,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#999999", "alpha": 0.9},
                    arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.8, "shrinkA": 0, "shrinkB": 5})
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("#dddddd")
    handles = [Line2D([], [], color="#444444", lw=4, label="bone (mean of its joints)")]
    if n_implicit:
        handles.append(Line2D([], [], color="#e8590c", lw=1.5, ls=(0, (4, 3)),
                              label="implicit edge (opacity \u221d weight)"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=7.5,
              frameon=False)
    ax.set_title(title or "Residual keypoint graph (front view)", fontsize=10)
    return fig


def plot_residual(skeleton: Skeleton, xyz: np.ndarray, residual: np.ndarray,
                  implicit_edges: np.ndarray | None, implicit_weight: np.ndarray | None,
                  out: str | Path, up_axis: str = "y", title: str | None = None,
                  units: str = "residual (size of the difference)") -> Path:
    """Draw the residual keypoint graph on the skeleton and write the figure.

    A 2D front view of the reference pose (the depth axis is projected out: (x, y) for
    ``up_axis="y"``, (x, z) for ``"z"``). Joints are coloured by their residual (viridis, with a
    colourbar), bones by the mean residual of their two joints, the implicit graph's edges are
    dashed orange curves whose opacity and width grow with their weight, and the three joints
    with the largest residual are labelled by name and value. Joints with NaN coordinates are
    skipped; a NaN residual draws the joint in grey.

    Args:
        skeleton: the skeleton (P joints).
        xyz: the reference pose, e.g. the mean pose of recording 1.
        residual: per-joint size of the difference, >= 0.
        implicit_edges: the implicit graph's edges as joint index pairs, or None.
        implicit_weight: their weights (>= 0), or None (with ``implicit_edges``).
        out: the file to write, ``.png`` or ``.pdf``.
        up_axis: ``"y"`` or ``"z"``.
        title: figure title (a default is used when None).
        units: the colourbar's label: what the residual measures, in which unit.

    Shapes:
        xyz: (P, 3); residual: (P,); implicit_edges: (E, 2) int; implicit_weight: (E,)

    Returns:
        the written path.

    Raises:
        ValueError: shape mismatches, negative residuals or weights, edge indices outside
            [0, P), only one of the implicit arrays, a bad ``up_axis`` or suffix.
    """
    out = _check_out(out)
    return _save(_figure_residual(skeleton, xyz, residual, implicit_edges, implicit_weight, up_axis, title,
                                  units), out)


# -- plot 3: key poses ----------------------------------------------------------------------------
def _segment_frame(xyz: np.ndarray, k: int, depth: int) -> tuple[int, float, float]:
    """Frame at the middle of segment k (or the nearest frame in it with a finite joint), its
    span in frames as (start, stop). Shapes: xyz (F, P, 3)."""
    F = xyz.shape[0]
    start, stop = k * F / depth, (k + 1) * F / depth
    mid = int(min(F - 1, np.floor((start + stop) / 2)))
    lo, hi = int(np.floor(start)), max(int(np.ceil(stop)) - 1, int(np.floor(start)))
    has = np.isfinite(xyz).all(axis=2).any(axis=1)
    if has[mid]:
        return mid, start, stop
    cand = [f for f in range(lo, min(hi, F - 1) + 1) if has[f]]
    if cand:
        return min(cand, key=lambda f: abs(f - mid)), start, stop
    return mid, start, stop


def _figure_poses(skeleton, xyz_1, xyz_2, fps_1, fps_2, path_nodes, depth, watched=None, up_axis="y",
                  labels=("Player 1", "Player 2"), title=None) -> Figure:
    """Build the key-pose figure (see :func:`plot_poses`) without writing it."""
    P = skeleton.num_joints
    recs = [np.asarray(xyz_1, dtype=float), np.asarray(xyz_2, dtype=float)]
    for i, r in enumerate(recs):
        if r.ndim != 3 or r.shape[1:] != (P, 3) or r.shape[0] < 1:
            raise ValueError(f"xyz_{i + 1} must be (F, P, 3) = (F, {P}, 3) with F >= 1, got {r.shape}")
    fps = [float(fps_1), float(fps_2)]
    if not all(np.isfinite(f) and f > 0 for f in fps):
        raise ValueError(f"fps_1 and fps_2 must be > 0, got {fps}")
    if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    depth = int(depth)
    path_nodes = [str(n) for n in path_nodes]
    if len(path_nodes) != depth:
        raise ValueError(f"path_nodes must name K = depth = {depth} node types, got {len(path_nodes)}: {path_nodes}")
    if len(labels) != 2:
        raise ValueError(f"labels must be two strings, got {labels!r}")
    watched = dict(skeleton.node_types if watched is None else watched)
    for n in path_nodes:
        if n not in watched:
            raise ValueError(f"unknown node type '{n}' in path_nodes; known: {list(watched)}")
    watch_idx = {n: [skeleton.index(j) for j in watched[n]] for n in set(path_nodes)}
    cx, cy = _up_axis_columns(up_axis)
    bones = _bones(skeleton)

    # Frames and 2D poses first, to fix one scale per row.
    frames = [[_segment_frame(r, k, depth) for k in range(depth)] for r in recs]
    poses = [[recs[i][frames[i][k][0]][:, [cx, cy]] for k in range(depth)] for i in range(2)]
    col_w = 2.0 if depth > 1 else 2.6
    fig = _new_figure(max(col_w * depth + 0.8, 4.2), 2 * 2.9 + 0.7)
    axes = fig.subplots(2, depth, squeeze=False)
    fig.subplots_adjust(left=0.08 if depth > 1 else 0.14, right=0.98, bottom=0.03, top=0.86,
                        wspace=0.08, hspace=0.28)
    for i in range(2):
        finite = [p[np.isfinite(p).all(axis=1)] for p in poses[i]]
        spans = [np.ptp(f, axis=0) for f in finite if len(f)]
        half = (np.max(spans, axis=0) / 2 if spans else np.array([0.5, 0.5])) * 1.12
        half = np.maximum(half, 0.05 * max(half.max(), 1e-6))
        half = np.maximum(half, half.max() * np.array([0.45, 0.45]))  # room for a bent/tilted pose
        for k in range(depth):
            ax = axes[i, k]
            p = poses[i][k]
            okj = np.isfinite(p).all(axis=1)
            f, s0, s1 = frames[i][k]
            t0, t1, tm = s0 / fps[i], s1 / fps[i], f / fps[i]
            node = path_nodes[k]
            if okj.any():
                segs = [[p[a], p[b]] for a, b in bones if okj[a] and okj[b]]
                if segs:
                    ax.add_collection(LineCollection(segs, colors="#4a4a4a", linewidths=2.2,
                                                     capstyle="round", zorder=2))
                ax.scatter(p[okj, 0], p[okj, 1], s=14, c="#4a4a4a", zorder=3)
                w = [j for j in watch_idx[node] if okj[j]]
                if w:
                    ax.scatter(p[w, 0], p[w, 1], s=150, c=HIGHLIGHT, edgecolors="white", linewidths=1.2,
                               zorder=4, gid="watched")
                c = (p[okj].min(axis=0) + p[okj].max(axis=0)) / 2
            else:
                c = np.zeros(2)
                ax.text(0.5, 0.5, "no pose", transform=ax.transAxes, ha="center", va="center",
                        color="#888888")
            ax.set_xlim(c[0] - half[0], c[0] + half[0])
            ax.set_ylim(c[1] - half[1], c[1] + half[1])
            ax.set_aspect("equal", adjustable="box")
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_color("#cccccc")
            head = f"segment {k + 1}: {node}\n" if i == 0 else ""
            ax.set_title(f"{head}{t0:.2f}\u2013{t1:.2f} s (t = {tm:.2f} s)", fontsize=8,
                         fontweight="normal")
            if k == 0:
                ax.set_ylabel(str(labels[i]), fontsize=10)
    fig.suptitle(title or "Key poses at the middle of each segment (red: joints of the selected path)",
                 fontsize=10, y=0.985)
    return fig


def plot_poses(skeleton: Skeleton, xyz_1: np.ndarray, xyz_2: np.ndarray, fps_1: float, fps_2: float,
               path_nodes: Sequence[str], depth: int, out: str | Path,
               watched: Mapping[str, Sequence[str]] | None = None, up_axis: str = "y",
               labels: Sequence[str] = ("Player 1", "Player 2"), title: str | None = None) -> Path:
    """Draw the key poses of two recordings side by side and write the figure.

    Two rows (recording 1 on top, recording 2 below) and K columns: in column k, the front-view
    pose (depth axis projected out) of each recording at the middle of its segment k (segment k
    covers [k/K, (k+1)/K) of that recording's duration; when the middle frame has no finite
    joint, the nearest frame of the segment that has one). The watched joints of
    ``path_nodes[k]`` are large red markers. Each panel's title gives the segment's time span and
    the frame's time; the top panel also names the segment and the node type. Panels of a row
    share one scale (metres per inch) with equal x/y scaling, each centred on its pose. NaN
    joints, and bones touching them, are skipped.

    Args:
        skeleton: the skeleton (P joints).
        xyz_1, xyz_2: the two recordings' keypoints.
        fps_1, fps_2: their frame rates.
        path_nodes: node type names of the selected path, one per segment.
        depth: K, the number of segments.
        out: the file to write, ``.png`` or ``.pdf``.
        watched: node type -> joint names to mark (default ``skeleton.node_types``).
        up_axis: ``"y"`` or ``"z"``.
        labels: the two row labels.
        title: figure title (a default is used when None).

    Shapes:
        xyz_1: (F1, P, 3); xyz_2: (F2, P, 3); path_nodes: (K,)

    Returns:
        the written path.

    Raises:
        ValueError: shape mismatches, ``len(path_nodes) != depth``, unknown node types or
            joint names, non-positive fps, a bad ``up_axis`` or suffix.
    """
    out = _check_out(out)
    fig = _figure_poses(skeleton, xyz_1, xyz_2, fps_1, fps_2, path_nodes, depth, watched, up_axis, labels, title)
    return _save(fig, out)


# -- plot 4: aligned angle curves -----------------------------------------------------------------

_SIDE_STYLE = {"left": "--", "right": "-"}


def _figure_angles(time, curves, names, path, segment_times, node_types, title=None) -> Figure:
    """Build the aligned-angle-curves figure (see :func:`plot_angle_curves`) without writing it."""
    time = np.asarray(time, dtype=float)
    if len(path) != len(segment_times):
        raise ValueError(f"the path has {len(path)} steps but there are {len(segment_times)} segments")
    watched = list(dict.fromkeys(path))  # the node types the path watches, in order of first use
    for n in watched:
        if n not in node_types:
            raise ValueError(f"path node {n!r} is not a node type of the skeleton ({', '.join(node_types)})")
    for name in names:
        if name not in curves:
            raise ValueError(f"no angle curves for recording {name!r}")
    fig = _new_figure(8.0, 1.9 + 2.1 * len(watched))
    colours = ("#1f77b4", "#d62728")
    axes = fig.subplots(len(watched), 1, sharex=True, squeeze=False)[:, 0]
    for ax, node in zip(axes, watched):
        for k, (t0, t1) in enumerate(segment_times):
            if path[k] == node:
                ax.axvspan(t0, t1, color="#ffe08a", alpha=0.6, zorder=0, lw=0)
            ax.axvline(t0, color="#bbbbbb", lw=0.6, zorder=0)
        for name, colour in zip(names, colours):
            for joint in node_types[node]:
                side = joint.split("_")[0]
                y = np.asarray(curves[name][joint], dtype=float)
                if y.shape != time.shape:
                    raise ValueError(f"curve {name}/{joint} has {y.shape[0]} points, time has {time.shape[0]}")
                ax.plot(time, y, _SIDE_STYLE.get(side, "-"), color=colour, lw=1.5,
                        label=f"{name}, {joint.replace('_', ' ')}")
        ax.set_ylabel(f"{node} angle (deg)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.grid(alpha=0.25)
    top = axes[0]
    for k, (t0, t1) in enumerate(segment_times):
        top.annotate(f"seg {k + 1}: {path[k]}", ((t0 + t1) / 2, 1.02), xycoords=("data", "axes fraction"),
                     ha="center", va="bottom", fontsize=8)
    axes[-1].set_xlabel(f"time of {names[0]} (s); {names[1]} warped onto it by DTW", fontsize=9)
    fig.suptitle(title or f"Joint angles the reasoning path of {names[0]} watches (shaded: its segments)",
                 fontsize=10, y=0.995)
    fig.subplots_adjust(left=0.1, right=0.72, top=1 - 0.55 / fig.get_figheight(), bottom=0.45 / fig.get_figheight() + 0.05,
                        hspace=0.25)
    return fig


def plot_angle_curves(time: np.ndarray, curves: dict, names: Sequence[str], path: Sequence[str],
                      segment_times: Sequence[tuple[float, float]], node_types: dict,
                      out: str | Path, title: str | None = None) -> Path:
    """Draw the joint angles of two recordings on one timeline and write the figure.

    One panel per node type that the path watches (in order of first use), with its joints
    (left dashed, right solid) for the first recording (blue) and the second (red), the second
    warped onto the first's timeline (:mod:`kept.explain.physical`); the segments in which the
    path watches the panel's node type are shaded, every segment is labelled with its node.

    Args:
        time: the first recording's frame times (s).
        curves: ``{name: {joint: angles in degrees}}`` for both names.
        names: (first, second): the first is the recording whose path and timeline are used.
        path: node type per segment (K,).
        segment_times: the K (start, end) spans in seconds on the first recording.
        node_types: ``skeleton.node_types`` (node type -> its joints).
        out: the file to write, ``.png`` or ``.pdf``.

    Shapes:
        time: (F,); each curve: (F,)

    Returns:
        the written path.

    Raises:
        ValueError: a path node that is not a node type, missing or mis-sized curves, a path
            and segment list of different lengths, or a bad suffix.
    """
    out = _check_out(out)
    return _save(_figure_angles(time, curves, names, path, segment_times, node_types, title), out)

