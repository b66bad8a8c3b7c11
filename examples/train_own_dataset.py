"""Train KEPT on your own recordings: write them as a keypoint-folder dataset, train, evaluate.

Your keypoints are (frames, joints, 3) arrays of a built-in skeleton (here COCO-17) or of an
inline one; here we borrow a few recordings of the bundled demo generator to stand in for them.

    python examples/train_own_dataset.py --out runs/own --epochs 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kept.config import load_config
from kept.data.demo import simulate_recording
from kept.data.folder import Recording, load_dataset, write_dataset
from kept.train import train


def make_dataset(root: Path) -> Path:
    """Twenty jump shots from the demo simulator, written as a keypoint folder."""
    recordings, keypoints = [], {}
    for i in range(20):
        sim = simulate_recording(i, "mid_range_shooting")
        rid = f"shot_{i:02d}"
        keypoints[rid] = sim.xyz
        recordings.append(Recording(id=rid, split="train" if i < 14 else "test", category="jump_shot",
                                    score=round(10 - 3 * len(sim.faults) * 0.8, 1), subject=f"p{i:02d}"))
    return write_dataset(root, name="my-shots", fps=30.0, skeleton="coco17", recordings=recordings,
                         keypoints=keypoints, score_range=(0, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/own-example", help="folder for the dataset and the run")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    out = Path(args.out)

    root = make_dataset(out / "data")
    dataset = load_dataset(root)
    print(f"{dataset.name}: {len(dataset.ids('train'))} train, {len(dataset.ids('val'))} val, "
          f"{len(dataset.ids('test'))} test recordings, {len(dataset.pairs_in('train'))} train pairs")

    cfg = load_config(overrides=["data.dataset=folder", f"data.data_root={root}", "model.dim=32",
                                 f"train.max_epochs={args.epochs}", "train.progress_bar=false"])
    metrics = train(cfg, out / "run")
    print("test spearman:", metrics["score"]["spearman"], "pair accuracy:", metrics["score"]["pair_accuracy"])


if __name__ == "__main__":
    main()
