"""The ``kept`` command.

    kept train    --dataset {adr,folder} [--data-root DIR] [--synthetic] [--config FILE]
                  [--run-dir DIR] [--seed N] [--resume] [key=value ...]
    kept eval     --checkpoint RUN_DIR [--dataset ...] [--data-root DIR] [--synthetic]
                  [--split test] [--out FILE]
    kept compare A B --checkpoint RUN_DIR [--out DIR] [--format text|json] [--backend B] [--pose-model FILE]
    kept plot paths|residual|poses|all A B --checkpoint RUN_DIR --out DIR [--backend B] [--pose-model FILE]
    kept app      --checkpoint RUN_DIR [--host 127.0.0.1] [--port 7860] [--max-video-seconds S]
    kept baseline --dataset ... [--data-root DIR] [--synthetic] [--split test] [--out FILE]
    kept ablate   --dataset ... --out DIR [--seeds 0,1,2] [--ablations full,no_kl,...] [key=value ...]
    kept bench    paths|train|compare [--out FILE.json] ...
    kept data demo --out DIR [--seed S]
    kept data adr --egoexo-root ROOT --out DIR [--pose-source ...] [--describer SPEC]
    kept data fitnessaqa MANIFEST --out DIR
    kept data stats DIR [--json]
    kept pose extract VIDEO_OR_DIR --out DIR [--backend auto|mediapipe-tasks|mmpose|mediapipe|egoexo|file]
                  [--pose-model FILE.task | --allow-download] [--shard I/N]
    kept pose show FILE.npz --out FILE.png|FILE.mp4 [--video VIDEO]
    kept grpo prepare --checkpoint RUN_DIR --out DIR [--split train,test] [key=value ...]
    kept sft  --data DIR --model PATH_OR_ID --out OUT [--config FILE] [key=value ...]
    kept grpo --data DIR --model PATH_OR_ID --out OUT [--config FILE] [key=value ...]
    kept grpo eval --model OUT --data DIR [--split test] [--out FILE]
    kept grpo tiny-model --out DIR

``key=value`` arguments override the config (``model.depth=5``, ``train.max_epochs=10``); see
``configs/default.yaml`` for every key.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _data_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--dataset", choices=["adr", "folder", "jigsaws"], required=required,
                   help="adr: the ADR dataset (or its demo with --synthetic); folder: any keypoint-folder "
                        "dataset; jigsaws: the JIGSAWS release folder")
    p.add_argument("--data-root", help="dataset root")
    p.add_argument("--synthetic", action="store_true", help="adr only: use the bundled demo data generator")
    p.add_argument("--fold", help="jigsaws: a fold (louo:B, loso:3); for train also a whole scheme (louo, loso)")


_VIDEO_BACKENDS = ["auto", "mediapipe-tasks", "mmpose", "mediapipe"]


def _video_pose_args(p: argparse.ArgumentParser, backend: bool = True) -> None:
    """``--backend``, ``--pose-model`` and ``--allow-download``: the pose extractor for videos."""
    if backend:
        p.add_argument("--backend", default="auto", choices=_VIDEO_BACKENDS,
                       help="pose extractor for videos (default auto: mediapipe-tasks when installed and a "
                            "model is at hand, else mmpose, else legacy mediapipe)")
    p.add_argument("--pose-model", metavar="FILE.task",
                   help="mediapipe-tasks: the PoseLandmarker model file (default: $KEPT_POSE_MODEL, else "
                        "the cached download)")
    p.add_argument("--allow-download", action="store_true", default=None,
                   help="mediapipe-tasks: download the official model once into the cache if there is "
                        "none (also KEPT_ALLOW_DOWNLOAD=1)")


def _pose_options(args) -> dict:
    return {"pose_model": getattr(args, "pose_model", None), "allow_download": getattr(args, "allow_download", None)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kept", description="Action difference reasoning with KEPT.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train KEPT and evaluate it on the test split")
    _data_args(p, required=True)
    p.add_argument("--config", help="YAML config (default: built-in defaults, see configs/default.yaml)")
    p.add_argument("--run-dir", help="output folder (default: runs/<dataset>-<time>)")
    p.add_argument("--seed", type=int, help="seed of the run (train.seed)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    p = sub.add_parser("eval", help="evaluate a trained model")
    p.add_argument("--checkpoint", required=True, nargs="+",
                   help="run directory of `kept train` (or its model.pt); several, or a cross-validation "
                        "run directory, to pool the folds")
    _data_args(p, required=False)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", help="metrics file (default: print only)")
    p.add_argument("--predictions", help="also write per-recording predictions as CSV")

    p = sub.add_parser("compare", help="score two recordings and explain how they differ")
    p.add_argument("a", help="video, .npy/.npz keypoints, DATASET_DIR::ID, or a recording id of the model's dataset")
    p.add_argument("b", help="the other recording (same forms)")
    p.add_argument("--checkpoint", required=True, help="run directory of `kept train`")
    p.add_argument("--out", help="folder for compare.json and the plots (default: print only)")
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.add_argument("--rank", default="local", choices=["local", "size", "relevance"],
                   help="order of the physical differences: phase-local size (default), raw size, or the "
                        "statistics branch's score-lost difference")
    p.add_argument("--path-first", action="store_true",
                   help="list the physical differences on the selected reasoning path first")
    _video_pose_args(p)
    p.add_argument("--category", help="sub-activity of both recordings, for the per-category statistics branch "
                                      "(default: their dataset category if known, else the global model)")

    p = sub.add_parser("plot", help="draw the reasoning of a trained model for a pair of recordings")
    p.add_argument("kind", choices=["paths", "residual", "poses", "angles", "all"])
    p.add_argument("a", help="as for `kept compare`")
    p.add_argument("b")
    p.add_argument("--checkpoint", required=True, help="run directory of `kept train`")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="png", choices=["png", "pdf"])
    _video_pose_args(p)

    p = sub.add_parser("app", help="a local web page on which two recordings are compared (pip install -e \".[app]\")")
    p.add_argument("--checkpoint", required=True, help="run directory of `kept train`")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-video-seconds", type=float, default=300.0,
                   help="longer uploaded videos are refused before pose extraction (default 300)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    _video_pose_args(p)

    p = sub.add_parser("ablate", help="the ablation study of docs/method.md section 8: several seeds, a markdown "
                                      "table; resumable (finished runs are kept)")
    _data_args(p, required=True)
    p.add_argument("--config", help="base YAML config (each ablation's overrides go on top)")
    p.add_argument("--out", required=True, help="output folder: one run per ablation and seed, ablation.md")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    p.add_argument("--ablations", help="comma-separated subset (default: all): "
                                       "full,no_kl,no_semantic,no_gnn,no_residual,no_commentary,depth3,depth5,depth6")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="base config overrides")

    p = sub.add_parser("bench", help="speed benchmarks: path search per depth, training throughput, "
                                     "comparison latency (JSON + a printed table)")
    bench = p.add_subparsers(dest="bench_command", required=True)
    b = bench.add_parser("paths", help="exhaustive (block-assembled) vs naive vs beam vs MCTS per depth")
    b.add_argument("--depths", default="2,4,6,8", help="comma-separated tree depths (default 2,4,6,8)")
    b.add_argument("--recordings", type=int, default=32, help="recordings for the found-argmax shares")
    b.add_argument("--batch", type=int, default=8, help="recordings per timed call")
    b.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up (median)")
    b.add_argument("--naive-budget", type=float, default=10.0,
                   help="seconds: skip the per-path naive form where its estimate exceeds this")
    b.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    b.add_argument("--out", help="JSON file")
    b = bench.add_parser("train", help="training throughput (pairs/s) and peak memory of a run config")
    _data_args(b, required=False)
    b.add_argument("--config", help="YAML config (default: built-in defaults)")
    b.add_argument("--epochs", type=int, default=1, help="epochs to time (default 1)")
    b.add_argument("--out", help="JSON file")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    b = bench.add_parser("compare", help="latency of one comparison, keypoints given")
    b.add_argument("--checkpoint", help="run directory of `kept train` (default: a random default-config model)")
    b.add_argument("--repeats", type=int, default=20)
    b.add_argument("--out", help="JSON file")

    p = sub.add_parser("baseline", help="ridge regression on hand-crafted angle/speed statistics (scores) and "
                                        "nearest-training-pair retrieval (descriptions)")
    _data_args(p, required=True)
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--seed", type=int, default=0, help="seed of the val hold-out")
    p.add_argument("--out", help="metrics file (default: print only)")

    p = sub.add_parser("pose", help="keypoints from videos or annotation files")
    psub = p.add_subparsers(dest="pose_command", required=True)
    e = psub.add_parser("extract", help="extract 3D keypoints of a video or a folder of videos (cached)")
    e.add_argument("source", help="a video, a folder of videos, or (egoexo/file backends) take ids / files")
    e.add_argument("--out", required=True, help="folder for one <name>.npz keypoint sequence per input")
    e.add_argument("--backend", default="auto", choices=_VIDEO_BACKENDS + ["egoexo", "file"],
                   help="default auto: a video backend, as for `kept compare`")
    _video_pose_args(e, backend=False)
    e.add_argument("--device", help="mmpose: torch device, e.g. cuda:0 (default cpu)")
    e.add_argument("--fps", type=float, help="sample the video at this rate (default: every frame)")
    e.add_argument("--max-gap", type=int, help="interpolate missing stretches up to this many frames")
    e.add_argument("--model", help="mmpose: the 3D model alias or config (default human3d)")
    e.add_argument("--det-checkpoint", help="mmpose: detector weights (.pth) of --det-model")
    e.add_argument("--det-model", help="mmpose: detector config or mmdet alias (default: mmpose's person "
                                       "detector, rtmdet-m)")
    e.add_argument("--pose2d-checkpoint", help="mmpose: 2D pose weights (.pth) of --pose2d-model")
    e.add_argument("--pose2d-model", help="mmpose: 2D pose config or alias (default: the one the 3D model "
                                          "implies, mmpose's 'human')")
    e.add_argument("--pose3d-checkpoint", help="mmpose: 3D lifter weights (.pth) of --model")
    e.add_argument("--egoexo-root", help="egoexo: the Ego-Exo4D root")
    e.add_argument("--skeleton", help="file: skeleton of .npy inputs")
    e.add_argument("--shard", help="I/N: this worker's share (default: RANK/WORLD_SIZE from torchrun, else 0/1)")
    e.add_argument("--cache", help="cache folder (default: <cache>/pose)")
    s_ = psub.add_parser("show", help="draw a keypoint sequence (next to its video) to PNG/PDF or MP4")
    s_.add_argument("file", help="a .npz keypoint sequence (from kept pose extract)")
    s_.add_argument("--out", required=True, help="FILE.png, FILE.pdf or FILE.mp4")
    s_.add_argument("--video", help="the source video, drawn beside the 3D view")
    s_.add_argument("--frames", help="comma-separated frame indices for a picture (default: 4 evenly spaced)")
    s_.add_argument("--up-axis", help="vertical axis of the keypoints (x, y, z, -x, -y, -z)")

    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", required=True)
    d = dsub.add_parser("demo", help="generate the ADR-format demo dataset")
    d.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--train-per-category", type=int, default=24)
    d.add_argument("--test-per-category", type=int, default=12)
    d.add_argument("--overwrite", action="store_true")
    d = dsub.add_parser("adr", help="build the ADR dataset from an Ego-Exo4D download")
    d.add_argument("--egoexo-root", required=True, help="Ego-Exo4D root (takes.json, annotations/)")
    d.add_argument("--out", required=True, help="output keypoint-folder dataset")
    d.add_argument("--pose-source", default="annotation", choices=["annotation", "automatic", "extract"],
                   help="manual body-pose annotations where present (else automatic), automatic only, or "
                        "the pose extractor on the exo video")
    _video_pose_args(d)
    d.add_argument("--device", help="--pose-source extract with mmpose: torch device, e.g. cuda:0")
    d.add_argument("--pose-cache", help="--pose-source extract: pose cache folder (default: <cache>/pose)")
    d.add_argument("--score-source", default="expert", choices=["expert", "proficiency"],
                   help="mean expert rating (1-10) or the demonstrator's proficiency level (1-4)")
    d.add_argument("--describer", help="pair descriptions: hf:MODEL_PATH_OR_ID, openai:URL#MODEL, jsonl:FILE "
                                       "(default: none; nothing is sent anywhere unless you set this)")
    d.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    d.add_argument("--cache", help="per-pair description cache (default: OUT.descriptions-cache)")
    d = dsub.add_parser("fitnessaqa", help="convert FitnessAQA (manifest) into one dataset per error type")
    d.add_argument("source", help="the manifest CSV (see kept/data/fitnessaqa.py)")
    d.add_argument("--out", required=True)
    d.add_argument("--keypoints-root", help="folder the manifest's keypoint paths are relative to")
    d = dsub.add_parser("stats", help="recordings and pairs per category and split (the paper's table 1)")
    d.add_argument("root", help="keypoint-folder dataset")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _grpo_parsers(sub)
    return parser


def _config(args, overrides: list[str]):
    from kept.config import load_config

    extra = []
    if getattr(args, "dataset", None):
        extra.append(f"data.dataset={args.dataset}")
    if getattr(args, "data_root", None):
        extra.append(f"data.data_root={args.data_root}")
    if getattr(args, "synthetic", False):
        extra.append("data.synthetic=true")
    if getattr(args, "fold", None):
        extra.append(f"data.fold={args.fold}")
    if getattr(args, "seed", None) is not None:
        extra.append(f"train.seed={args.seed}")
    return load_config(getattr(args, "config", None), extra + list(overrides))


def _print_metrics(metrics: dict) -> None:
    def fmt(v):
        return "   n/a" if v is None else f"{v:6.3f}"

    rows = [("all", metrics["score"])] + list(metrics["per_category"].items())
    width = max(len(r[0]) for r in rows)
    print(f"{'category':<{width}}  spearman  R-l2x100  R-l1x100  pair_acc")
    for name, m in rows:
        print(f"{name:<{width}}  {fmt(m['spearman'])}    {fmt(m['r_l2_x100'])}    "
              f"{fmt(m['r_l1_x100'])}    {fmt(m['pair_accuracy'])}")
    if "paths" in metrics and metrics["paths"]["n"]:
        p = metrics["paths"]
        print(f"selected path watches a faulted node in a faulted segment: {p['hit_rate']:.3f} "
              f"(chance {p['chance_rate']:.3f}, {p['n']} recordings)")
    if "text" in metrics:
        print("text: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in metrics["text"].items() if v is not None))
    for name, f1 in metrics.get("f1", {}).items():
        print(f"error detection F1 ({name}): {f1:.3f} at threshold {metrics['f1_threshold']:.3f} (chosen on train)")
    print(f"{metrics['n_recordings']} recordings, {metrics['n_pairs']} pairs")


def _train(args) -> None:
    from kept.train import train

    _quiet_libraries()

    if args.resume and not args.run_dir:
        raise ValueError("--resume needs the --run-dir of the run to continue")
    saved = Path(args.run_dir) / "config.yaml" if args.run_dir else None
    if args.resume and saved.exists() and not args.config:
        args.config = str(saved)  # continue with the run's own config, plus any new overrides
    cfg = _config(args, args.overrides)
    run_dir = Path(args.run_dir or f"runs/{cfg.data.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    if cfg.data.fold and ":" not in cfg.data.fold:  # a whole scheme: every fold, then pooled
        from kept.train import train_folds

        scheme, cfg.data.fold = cfg.data.fold, None
        metrics = train_folds(cfg, run_dir, scheme, resume=args.resume)
    else:
        metrics = train(cfg, run_dir, resume=args.resume)
    if metrics:
        _print_metrics(metrics)
        print(f"run directory: {run_dir}" + (f" (trained in {metrics['train_seconds']} s)" if "train_seconds" in metrics else ""))


def _ablate(args) -> None:
    from kept.ablate import run_ablations

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got '{args.seeds}'") from None
    names = [n.strip() for n in args.ablations.split(",") if n.strip()] if args.ablations else None
    cfg = _config(args, args.overrides)
    run_ablations(cfg, args.out, names, seeds)
    print((Path(args.out) / "ablation.md").read_text())
    print(f"table: {Path(args.out) / 'ablation.md'} (per-seed values in ablation.json)")


def _bench(args) -> None:
    from kept import bench
    from kept.io import atomic_write_json

    if args.bench_command == "paths":
        try:
            depths = [int(d) for d in args.depths.split(",") if d.strip()]
        except ValueError:
            raise ValueError(f"--depths must be comma-separated integers, got '{args.depths}'") from None
        result = bench.bench_paths(depths, recordings=args.recordings, batch=args.batch, repeats=args.repeats,
                                   naive_budget_s=args.naive_budget, device=args.device)
        print(bench.format_paths_table(result))
        print("ms per recording (median); found argmax = share of recordings whose l* is the exhaustive argmax")
    elif args.bench_command == "train":
        if not args.dataset:
            args.dataset, args.synthetic = "adr", True  # the bundled demo data
        result = bench.bench_train(_config(args, args.overrides), epochs=args.epochs)
        gpu = f", peak GPU {result['peak_gpu_mb']:.0f} MiB" if result["peak_gpu_mb"] else ""
        print(f"{result['pairs_per_second']:.1f} pairs/s over {result['steps']} steps ({result['pairs']} pairs, "
              f"{result['seconds']:.1f} s; text branch {'on' if result['text_branch'] else 'off'}); "
              f"peak RSS {result['peak_rss_mb']:.0f} MiB{gpu}")
    else:
        result = bench.bench_compare(args.checkpoint, repeats=args.repeats)
        print(f"one comparison: {result['compare_ms']:.1f} ms (without the description: "
              f"{result['compare_without_text_ms']:.1f} ms); model: {result['model']}")
    if args.out:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")


def _eval(args) -> None:
    from kept.data.datamodule import load_configured_dataset
    from kept.evaluate import cross_validation_metrics, evaluate_model, without_predictions
    from kept.io import atomic_write_json
    from kept.train import MODEL_FILE, load_model

    _quiet_libraries()

    runs = [Path(c) for c in args.checkpoint]
    if len(runs) == 1 and runs[0].is_dir() and not (runs[0] / MODEL_FILE).exists():
        runs = sorted(p.parent for p in runs[0].glob(f"*/{MODEL_FILE}")) or runs  # a cross-validation run
    results, dataset = {}, None
    for run in runs:
        model, cfg, _ = load_model(run)
        if args.dataset:
            cfg.data.dataset, cfg.data.data_root, cfg.data.synthetic = args.dataset, args.data_root, args.synthetic
            cfg.data.fold = args.fold or cfg.data.fold
        dataset = load_configured_dataset(cfg)
        results[cfg.data.fold or str(run)] = evaluate_model(model, dataset, cfg, split=args.split,
                                                             predictions=args.predictions if len(runs) == 1 else None)
    metrics = results.popitem()[1] if len(results) == 1 else cross_validation_metrics(results, dataset)
    metrics = without_predictions(metrics)
    if args.out:
        atomic_write_json(args.out, metrics)
    _print_metrics(metrics)
    if metrics.get("spearman_fisher_z") is not None:
        print(f"{len(results)} folds pooled; rho averaged over categories with Fisher's z: "
              f"{metrics['spearman_fisher_z']:.3f}")


def _compare(args) -> None:
    from kept.explain.compare import compare, format_report, load_recording
    from kept.io import atomic_write_json
    from kept.train import load_model

    model, cfg, saved = load_model(args.checkpoint)
    skeleton = model_skeleton(saved)
    info = saved["dataset"]
    recs = [load_recording(x, skeleton, info["fps"], info.get("root"), args.backend, pose_options=_pose_options(args))
            for x in (args.a, args.b)]
    if args.category and model.stats is not None and args.category not in model.stats.categories:
        raise ValueError(f"--category {args.category!r} is not one the model was trained on: "
                         f"{', '.join(model.stats.categories)}")
    result = compare(model, cfg, skeleton, tuple(info["score_range"]), *recs, up_axis=info.get("up_axis", "y"),
                     category=args.category, rank=args.rank, path_first=args.path_first)
    if args.out:
        from kept.explain.compare import write_plots

        out = Path(args.out)
        atomic_write_json(out / "compare.json", result)
        write_plots(result, *recs, skeleton, out, up_axis=info.get("up_axis", "y"),
                    canonical=cfg.data.canonical_facing, depth=cfg.model.depth)
    print(json.dumps(result, indent=2) if args.format == "json" else format_report(result))


def _plot(args) -> None:
    from kept.explain.compare import compare, load_recording, write_plots
    from kept.train import load_model

    model, cfg, saved = load_model(args.checkpoint)
    skeleton, info = model_skeleton(saved), saved["dataset"]
    recs = [load_recording(x, skeleton, info["fps"], info.get("root"), args.backend, pose_options=_pose_options(args))
            for x in (args.a, args.b)]
    result = compare(model, cfg, skeleton, tuple(info["score_range"]), *recs, up_axis=info.get("up_axis", "y"))
    kinds = ("paths", "residual", "poses", "angles") if args.kind == "all" else (args.kind,)
    for path in write_plots(result, *recs, skeleton, args.out, up_axis=info.get("up_axis", "y"),
                            formats=(args.format,), kinds=kinds, canonical=cfg.data.canonical_facing,
                            depth=cfg.model.depth):
        print(path)


def _app(args) -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ImportError("kept app needs Gradio: pip install -e \".[app]\"") from None
    from kept.app import Comparer, launch

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1-65535, got {args.port}")
    comparer = Comparer(args.checkpoint, backend=args.backend, pose_options=_pose_options(args),
                        max_video_seconds=args.max_video_seconds)
    try:
        launch(comparer, host=args.host, port=args.port, open_browser=args.open)
    except OSError as e:
        raise ValueError(f"cannot serve on {args.host}:{args.port} ({e}); choose another --port "
                         "(or --host) or stop what is using it") from None


def model_skeleton(saved: dict):
    from pose.skeleton import Skeleton

    return Skeleton.from_spec(saved["skeleton"], name=saved["skeleton"]["name"])


def _baseline(args) -> None:
    from kept.data.datamodule import load_configured_dataset
    from kept.io import atomic_write_json

    from kept.baseline import evaluate_baselines

    cfg = _config(args, [])
    dataset = load_configured_dataset(cfg, seed=args.seed)
    baselines = evaluate_baselines(dataset, split=args.split, depth=cfg.model.depth)
    metrics = dict(baselines["ridge"])
    metrics["baselines"] = {name: {"score": m["score"], "per_category": m["per_category"]}
                            for name, m in baselines.items()}
    if any((p.description or "").strip() for p in dataset.pairs_in(args.split)):
        from kept.baseline import evaluate_retrieval_text

        text = evaluate_retrieval_text(dataset, split=args.split)
        metrics["text"] = text["text"]
        for cat, values in text["per_category"].items():
            metrics["per_category"][cat]["text"] = values
    if args.out:
        atomic_write_json(args.out, metrics)
    _print_metrics(metrics)
    print("\nbaseline          rho     R-l2x100  pair acc")
    for name, m in metrics["baselines"].items():
        sc = m["score"]
        fmt = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
        print(f"{name:15s} {fmt(sc['spearman'])}   {fmt(sc['r_l2_x100'])}   {fmt(sc['pair_accuracy'])}")


def _pose(args) -> None:
    if args.pose_command == "show":
        from pose.sequence import KeypointSequence
        from pose.show import show

        frames = [int(f) for f in args.frames.split(",")] if args.frames else None
        out = show(KeypointSequence.load(args.file), args.out, video=args.video, frames=frames, up_axis=args.up_axis)
        print(f"written {out}")
        return
    from kept.data.datamodule import default_cache_dir
    from kept.io import atomic_write_json
    from pose.batch import extract_many, find_videos
    from pose.cache import parse_shard
    from pose.extractors import VIDEO_BACKENDS, build_extractor

    options = {"device": args.device, "fps": args.fps, "max_gap": args.max_gap, "model": args.model,
               "det_checkpoint": args.det_checkpoint, "det_model": args.det_model,
               "pose2d_checkpoint": args.pose2d_checkpoint, "pose2d_model": args.pose2d_model,
               "pose3d_checkpoint": args.pose3d_checkpoint, "root": args.egoexo_root, "skeleton": args.skeleton}
    extractor = build_extractor(args.backend, **_pose_options(args), **options)
    if extractor.name in VIDEO_BACKENDS:
        inputs = find_videos(args.source)
    else:
        inputs = [Path(x) for x in args.source.split(",")]
    if hasattr(extractor, "check"):
        extractor.check()  # a missing model or package fails once here, not once per video
    shard = parse_shard(args.shard)
    report = extract_many(inputs, extractor, args.out, args.cache or default_cache_dir() / "pose", shard=shard)
    atomic_write_json(Path(args.out) / f"extract-report-{shard[0]}of{shard[1]}.json", report)
    print(f"{len(report['extracted'])} extracted, {len(report['cached'])} from the cache, "
          f"{len(report['failed'])} failed" + (f" (see {args.out}/extract-report-*.json)" if report["failed"] else ""))
    for video, message in report["failed"].items():
        print(f"  failed: {video}: {message}", file=sys.stderr)


def _data(args) -> None:
    if args.data_command == "stats":
        from kept.data.folder import load_dataset
        from kept.data.stats import dataset_stats, format_stats

        stats = dataset_stats(load_dataset(args.root, val_fraction=0.0))
        print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
        return
    if args.data_command == "adr":
        from kept.data.describe import make_describer
        from kept.data.egoexo import build_adr

        extractor = None
        if args.pose_source == "extract":
            from kept.data.datamodule import default_cache_dir
            from pose.batch import array_extractor
            from pose.extractors import build_extractor

            video_extractor = build_extractor(args.backend, **_pose_options(args), device=args.device)
            if hasattr(video_extractor, "check"):
                video_extractor.check()  # fail here, not as one skipped take after another
            extractor = array_extractor(video_extractor, args.pose_cache or default_cache_dir() / "pose", "coco17")
        elif args.pose_model or args.allow_download or args.device:
            raise ValueError("--pose-model, --allow-download and --device apply to --pose-source extract")
        extra = {"api_key_env": args.api_key_env} if (args.describer or "").startswith("openai:") else {}
        describer = make_describer(args.describer, cache_dir=args.cache or f"{args.out}.descriptions-cache", **extra)
        out, report = build_adr(args.egoexo_root, args.out, pose_source=args.pose_source,
                                score_source=args.score_source, describer=describer, extractor=extractor)
        print(f"ADR written to {out}: {report['converted']} takes; skipped: "
              + (", ".join(f"{k} {len(v)}" for k, v in report["skipped"].items() if v) or "none"))
        return
    if args.data_command == "fitnessaqa":
        from kept.data.fitnessaqa import convert_fitnessaqa

        paths, report = convert_fitnessaqa(args.source, args.out, keypoints_root=args.keypoints_root)
        for name, path in paths.items():
            print(f"{name}: {path}")
        return
    from kept.data.demo import generate_demo

    out = generate_demo(args.out, seed=args.seed, train_per_category=args.train_per_category,
                        test_per_category=args.test_per_category, overwrite=args.overwrite)
    print(f"demo dataset written to {out}")


_GRPO_COMMANDS = ("prepare", "train", "eval", "tiny-model")


def _grpo_parsers(sub) -> None:
    """``kept sft`` and ``kept grpo [prepare|train|eval|tiny-model]`` (VLM fine-tuning, kept.grpo)."""
    def training(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="folder written by `kept grpo prepare`")
        p.add_argument("--model", metavar="DIR_OR_HUB_ID",
                       help="base model: a local model folder (--model DIR, e.g. the output of `kept sft` or "
                            "`kept grpo tiny-model`) or a hub id; default: model.name of the config, "
                            "Qwen/Qwen2.5-VL-7B-Instruct, which downloads about 16 GB from the Hugging Face hub "
                            "on first use (with HF_HUB_OFFLINE set and no cached copy it stops and asks for --model)")
        p.add_argument("--out", required=True, help="output folder of the fine-tuned model")
        p.add_argument("--config", help="YAML run config (see configs/grpo/)")
        p.add_argument("--split", default="train", help="prepared rows to train on (default train)")
        p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUT/checkpoints")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. grpo.beta=0.04")

    training(sub.add_parser("sft", help="stage one: supervised fine-tuning of a VLM on prepared pairs (TRL)",
                            description="Stage one: supervised fine-tuning of a VLM on prepared pairs (TRL). "
                                        "Without --model it fine-tunes Qwen/Qwen2.5-VL-7B-Instruct, which downloads "
                                        "about 16 GB from the Hugging Face hub; mixed precision follows the "
                                        "device (sft.precision=auto: bf16, fp16 or fp32 on the CPU)."))
    p = sub.add_parser("grpo", help="stage two: GRPO of a VLM with hierarchical and KEPT rewards (TRL); also "
                                    "`grpo prepare`, `grpo eval`, `grpo tiny-model`",
                       description="VLM fine-tuning. `kept grpo --data DIR --model DIR --out OUT` is `kept grpo train "
                                   "...` (GRPO); without --model it starts from Qwen/Qwen2.5-VL-7B-Instruct, which "
                                   "downloads about 16 GB from the Hugging Face hub. See `kept grpo train --help`.")
    gsub = p.add_subparsers(dest="grpo_command", required=True)
    training(gsub.add_parser("train", help="GRPO (the default: `kept grpo --data ...` means `kept grpo train ...`)",
                             description="Stage two: GRPO of a VLM with hierarchical and KEPT rewards (TRL). "
                                         "Without --model it starts from Qwen/Qwen2.5-VL-7B-Instruct, which "
                                         "downloads about 16 GB from the Hugging Face hub (normally --model is the "
                                         "output folder of `kept sft`); mixed precision follows the device "
                                         "(grpo.precision=auto: bf16, fp16 or fp32 on the CPU)."))
    g = gsub.add_parser("prepare", help="run a trained KEPT over a pair dataset and write VLM training rows")
    g.add_argument("--checkpoint", required=True, help="run directory of `kept train`")
    _data_args(g, required=False)
    g.add_argument("--out", required=True, help="output folder (<split>.jsonl, images/, prepare.json)")
    g.add_argument("--split", default="train,test", help="comma-separated splits (default train,test)")
    g.add_argument("--config", help="YAML run config (its data section)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.keyframes=8")
    g = gsub.add_parser("eval", help="greedy answers of a fine-tuned VLM on prepared rows: metrics and bias audit")
    g.add_argument("--model", help="the fine-tuned model folder (or hub id)")
    g.add_argument("--data", required=True, help="folder written by `kept grpo prepare`")
    g.add_argument("--split", default="test")
    g.add_argument("--out", help="metrics JSON (default: MODEL/eval_<split>.json); answers beside it")
    g.add_argument("--completions", help="score the answers of this completions JSONL instead of generating")
    g.add_argument("--config", help="YAML run config (its eval and model sections)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. eval.batch_size=8")
    g = gsub.add_parser("tiny-model", help="write a tiny random Qwen2.5-VL (for smoke tests; no download)")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)


def _grpo_argv(argv: list[str] | None) -> list[str]:
    """``kept grpo --data ...`` (no sub-command) means ``kept grpo train --data ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["grpo"] and len(argv) > 1 and argv[1] not in _GRPO_COMMANDS + ("-h", "--help"):
        argv.insert(1, "train")
    return argv


def _grpo_config(args):
    from kept.grpo.config import load_grpo_config

    cfg = load_grpo_config(getattr(args, "config", None), args.overrides)
    if getattr(args, "model", None):
        cfg.model.name = args.model
    return cfg


def _sft(args) -> None:
    from kept.grpo.train import run_sft

    summary = run_sft(_grpo_config(args), args.data, args.out, split=args.split, resume=args.resume)
    print(f"fine-tuned model written to {args.out} ({summary['global_step']} steps, {summary['seconds']} s)")


def _grpo(args) -> None:
    if args.grpo_command == "tiny-model":
        from kept.grpo.tiny import build_tiny_model

        print(f"tiny random Qwen2.5-VL written to {build_tiny_model(args.out, seed=args.seed)}")
    elif args.grpo_command == "prepare":
        from kept.grpo.data import prepare_pairs

        splits = [s.strip() for s in args.split.split(",") if s.strip()]
        data = {"dataset": args.dataset, "data_root": args.data_root, "synthetic": args.synthetic or None,
                "fold": args.fold}
        info = prepare_pairs(args.checkpoint, args.out, _grpo_config(args), splits, dataset=data,
                             progress=not args.quiet)
        for split, c in info["splits"].items():
            print(f"{split}: {c['rows']} rows ({c['pairs']} pairs, {c['swapped']} swapped, {c['recordings']} recordings)")
        print(f"keyframes of {info['images']['recordings']} recordings ({info['images']['video']} from video, "
              f"{info['images']['skeleton']} skeleton renderings); written to {args.out}")
    elif args.grpo_command == "eval":
        from kept.grpo.evaluate import format_audit
        from kept.grpo.generate import evaluate_answers

        cfg = _grpo_config(args)
        if not args.model and not args.completions:
            raise ValueError("give --model (to generate answers) or --completions (to score earlier ones)")
        folder = args.model if args.model and Path(args.model).is_dir() else "."
        out = args.out or Path(folder) / f"eval_{args.split}.json"
        result = evaluate_answers(args.model, args.data, args.split, cfg.eval, out, completions=args.completions,
                                  dtype=cfg.model.dtype, device=cfg.eval.device, progress=not args.quiet)
        m = result["metrics"]

        def fmt(v):
            return "n/a" if v is None else f"{v:.3f}"

        print(f"{result['n_rows']} rows: {fmt(m['parsed'])} parsed, {fmt(m['scored'])} with both scores")
        print(f"spearman {fmt(m['score']['spearman'])}  R-l2x100 {fmt(m['score']['r_l2_x100'])}  "
              f"pair_acc {fmt(m['score']['pair_accuracy'])}  stated-better acc {fmt(m['preference']['pair_accuracy'])}")
        if m.get("text"):
            print("text: " + "  ".join(f"{k} {v:.3f}" for k, v in m["text"].items()))
        print(format_audit(result["bias_audit"]))
        print(f"metrics: {out}; answers: {result['completions']}")
    else:
        from kept.grpo.train import run_grpo

        summary = run_grpo(_grpo_config(args), args.data, args.out, split=args.split, resume=args.resume)
        print(f"fine-tuned model written to {args.out} ({summary['global_step']} steps, {summary['seconds']} s)")


def _quiet_libraries() -> None:
    """Keep Lightning's banners and third-party deprecation notes out of the command's output."""
    import logging
    import warnings

    if "lightning" in sys.modules or "kept.train" in sys.modules:
        import lightning.pytorch  # noqa: F401  (it sets its loggers' level when imported)
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(_grpo_argv(argv))
    _quiet_libraries()
    handlers = {"train": _train, "ablate": _ablate, "bench": _bench, "eval": _eval, "compare": _compare, "plot": _plot, "app": _app, "baseline": _baseline,
                "data": _data, "pose": _pose}
    handlers.update(sft=_sft, grpo=_grpo)
    try:
        handlers[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"kept {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
