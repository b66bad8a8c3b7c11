"""Compare two recordings with a trained model and print the report.

    python examples/compare_two_recordings.py --checkpoint runs/adr-... \\
        mid_range_shooting_test_000 mid_range_shooting_test_001

Recordings are ids of the model's dataset, DATASET_DIR::ID, .npy/.npz keypoint files or videos.
"""

from __future__ import annotations

import argparse

from kept.explain.compare import compare, format_report, load_recording
from kept.train import load_model
from pose.skeleton import Skeleton


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run directory of `kept train`")
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()

    model, cfg, saved = load_model(args.checkpoint)
    skeleton = Skeleton.from_spec(saved["skeleton"], name=saved["skeleton"]["name"])
    data = saved["dataset"]  # where the model was trained: fps, score range, up axis
    a, b = (load_recording(x, skeleton, data["fps"], data["root"]) for x in (args.a, args.b))
    result = compare(model, cfg, skeleton, tuple(data["score_range"]), a, b, up_axis=data["up_axis"])
    print(format_report(result))


if __name__ == "__main__":
    main()
