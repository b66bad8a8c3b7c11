"""Plot the reasoning paths of a trained model over a dataset.

For every recording of a split the model selects a path l* (which node type it watches in each
temporal segment). This script draws, per category, how often each node type is watched in each
segment, and the path tree of the first recording of each category.

    python examples/plot_reasoning_paths.py --checkpoint runs/adr-... --out plots/ [--split test]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from kept.data.datamodule import FeatureBank, load_configured_dataset  # noqa: E402
from kept.evaluate import predict  # noqa: E402
from kept.explain.plots import plot_paths  # noqa: E402
from kept.train import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    model, cfg, _ = load_model(args.checkpoint)
    cfg.train.progress_bar = False
    dataset = load_configured_dataset(cfg)
    ids = dataset.ids(args.split)
    pred = predict(model, FeatureBank(dataset, cfg, progress=False, commentary=False), ids)
    nodes, K = dataset.skeleton.node_names, cfg.model.depth
    cats = sorted({dataset.recordings[i].category for i in ids})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    cols = min(4, len(cats))
    rows_n = -(-len(cats) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3 * cols, 2.8 * rows_n), squeeze=False, sharey=True)
    for ax in axes.flat[len(cats):]:
        ax.axis("off")
    for ax, cat in zip(axes.flat, cats):
        rows = [n for n, i in enumerate(ids) if dataset.recordings[i].category == cat]
        share = np.stack([np.bincount(pred.best_path[rows, k], minlength=len(nodes)) / len(rows) for k in range(K)])
        bottom = np.zeros(K)
        for j, node in enumerate(nodes):  # stacked bars: share of recordings watching each node type
            ax.bar(range(1, K + 1), share[:, j], bottom=bottom, label=node)
            bottom += share[:, j]
        ax.set_title(cat, fontsize=9)
        ax.set_xlabel("segment")
        first = rows[0]  # the path tree of the category's first recording
        plot_paths(pred.top_paths[first], pred.top_q[first], 0, nodes, None, out / f"paths_{ids[first]}.png",
                   title=f"{ids[first]}: reasoning paths")
    for row in axes:
        row[0].set_ylabel("share of recordings")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "selected_nodes.png", dpi=120)
    print(f"wrote {out / 'selected_nodes.png'} and {len(cats)} path trees")


if __name__ == "__main__":
    main()
