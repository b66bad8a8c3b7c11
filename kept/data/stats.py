"""``kept data stats``: the counts of the KEPT paper's table 1 for any keypoint-folder dataset.

Recordings and pairs per category and split, as stored in the files (no val hold-out), plus the
score range and the number of recordings with commentary and pairs with descriptions.
"""

from __future__ import annotations

from collections import Counter

from kept.data.folder import KeypointDataset

__all__ = ["dataset_stats", "format_stats"]


def dataset_stats(dataset: KeypointDataset) -> dict:
    """Counts of a dataset.

    Returns:
        ``{"name", "skeleton", "splits": [...], "categories": {cat: {"recordings": {split: n},
        "pairs": {split: n}}}, "total": {...}, "with_commentary", "with_description",
        "score_range"}``
    """
    recs = dataset.recordings.values()
    splits = [s for s in ("train", "val", "test") if any(r.split == s for r in recs)]
    rec_count = Counter((r.category, r.split) for r in recs)
    cat_of = {r.id: r.category for r in recs}
    pair_count = Counter((cat_of[p.id_a], p.split) for p in dataset.pairs)
    categories = {
        cat: {"recordings": {s: rec_count[cat, s] for s in splits}, "pairs": {s: pair_count[cat, s] for s in splits}}
        for cat in sorted({r.category for r in recs})
    }
    total = {
        "recordings": {s: sum(c["recordings"][s] for c in categories.values()) for s in splits},
        "pairs": {s: sum(c["pairs"][s] for c in categories.values()) for s in splits},
    }
    return {
        "name": dataset.name,
        "skeleton": dataset.skeleton.name,
        "splits": splits,
        "categories": categories,
        "total": total,
        "with_commentary": sum(1 for r in recs if r.commentary),
        "with_description": sum(1 for p in dataset.pairs if p.description),
        "score_range": list(dataset.score_range),
    }


def format_stats(stats: dict) -> str:
    """The counts as a plain-text table in the layout of the paper's table 1."""
    splits = stats["splits"]
    rows = [(cat, c) for cat, c in stats["categories"].items()] + [("total", stats["total"])]
    width = max(len("category"), *(len(name) for name, _ in rows))
    head = "  ".join(f"{'rec ' + s:>10}" for s in splits) + "  " + "  ".join(f"{'pairs ' + s:>11}" for s in splits)
    lines = [f"{stats['name']} (skeleton {stats['skeleton']}, scores {stats['score_range'][0]:g}-{stats['score_range'][1]:g})",
             f"{'category':<{width}}  {head}"]
    for name, c in rows:
        cells = "  ".join(f"{c['recordings'][s]:>10}" for s in splits) + "  " + "  ".join(
            f"{c['pairs'][s]:>11}" for s in splits)
        lines.append(f"{name:<{width}}  {cells}")
    lines.append(f"{stats['with_commentary']} recordings with commentary, "
                 f"{stats['with_description']} pairs with a description")
    return "\n".join(lines)
