"""``kept bench``: speed of the tree search, of training and of one comparison (never timed tests).

    kept bench paths   [--depths 2,4,6,8] [--recordings 32] [--repeats 5] [--out FILE.json]
    kept bench train   [--dataset adr --synthetic] [--epochs 1] [--out FILE.json] [key=value ...]
    kept bench compare [--checkpoint RUN_DIR] [--repeats 20] [--out FILE.json]

Every timing is the median over ``repeats`` runs after one warm-up run, on the current device
(``--device``; CUDA is synchronised before the clock is read). Each command prints a table and
writes JSON with the machine it ran on (:func:`machine`).

``paths`` (docs/method.md section 4), per depth K with B node types (the default skeleton's 4):

* ``exhaustive``: the score net's block assembly of all B^K path logits
  (:meth:`ScoreNet.blocks` + :meth:`ScoreNet.assemble`), attention included;
* ``floor``: the path head alone, F_R applied to B^K ready D-vectors. The goal is that the
  exhaustive form costs little more than this; ``ratio_to_floor`` = exhaustive / floor. Because
  F_R's first layer is applied to the K B blocks before assembly, the ratio can go below 1;
* ``naive``: attention run once per path (:meth:`ScoreNet.naive_logits`), timed only while the
  estimate from the first paths stays under ``naive_budget_s``;
* ``beam`` and ``mcts``: :mod:`kept.model.search` at default settings (width 8; 200 simulations),
  with ``found_argmax``: the share of recordings whose selected path is the exhaustive argmax.

*Decision*: the path benchmark uses a randomly initialised score net (seeded) on random node
statistics and visual tokens of the default sizes (N=32, D=64, 4 heads): costs do not depend on
the values, and a trained net exists only at one depth. The argmax shares are therefore those of
an untrained value landscape.

Times are per recording: a batch of ``batch`` recordings is timed and divided by its size
(MCTS runs recording by recording, so its time is the batch's total divided likewise).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

__all__ = ["machine", "timed", "bench_paths", "bench_train", "bench_compare", "format_paths_table"]


def machine(device: str = "cpu") -> dict:
    """What the numbers were measured on."""
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def bench_paths(depths=(2, 4, 6, 8), num_nodes: int = 4, stat_dim: int = 15, num_keyframes: int = 32,
                dim: int = 64, heads: int = 4, recordings: int = 32, batch: int = 8, repeats: int = 5,
                beam_width: int = 8, simulations: int = 200, naive_budget_s: float = 10.0, device: str = "cpu",
                seed: int = 0, progress: bool = True) -> dict:
    """Time the exhaustive, naive, beam and MCTS forms per depth (see the module docstring).

    Args:
        depths: tree depths K.
        num_nodes: B; stat_dim: h (5 x the most joints per node type; 15 for coco17).
        recordings: recordings for the argmax shares (timing uses the first ``batch``).
        naive_budget_s: skip the naive form where its estimated time per batch exceeds this.

    Returns:
        ``{"machine": ..., "settings": ..., "depths": [{"depth", "paths", "exhaustive_ms", "floor_ms",
        "ratio_to_floor", "naive_ms" (None when skipped), "naive_estimated_ms", "beam_ms",
        "beam_evaluations", "beam_found_argmax", "mcts_ms", "mcts_evaluations", "mcts_found_argmax"}]}``,
        times in milliseconds per recording.
    """
    from tqdm.auto import tqdm

    from kept.model.score_net import ScoreNet
    from kept.model.search import beam_search, exhaustive, mcts

    if batch > recordings:
        raise ValueError(f"--batch ({batch}) must not exceed --recordings ({recordings})")
    rows = []
    for K in tqdm(list(depths), desc="depths", disable=not progress):
        if K > num_keyframes:
            raise ValueError(f"depth {K} needs at least {K} keyframes (num_keyframes={num_keyframes})")
        torch.manual_seed(seed)
        net = ScoreNet(stat_dim, num_nodes, K, num_keyframes, dim, heads).to(device).eval()
        gen = torch.Generator().manual_seed(seed + K)
        stats = torch.randn(recordings, num_keyframes, num_nodes, stat_dim, generator=gen).to(device)
        visual = torch.randn(recordings, num_keyframes, dim, generator=gen).to(device)
        xs, xv = stats[:batch], visual[:batch]
        T = num_nodes ** K
        _ = net.assign  # build the B^K buffers outside the clock
        exh_s = timed(lambda: net.assemble(net.blocks(xs, xv)[0]), repeats, device=device)
        pooled = torch.randn(batch, T, dim, generator=gen).to(device)
        floor_s = timed(lambda: net.f_r(pooled), repeats, device=device)
        # naive: estimate from a few paths, run in full only within the budget
        probe = min(T, 4)
        start = time.perf_counter()
        net.naive_logits(xs, xv, net.paths[:probe])
        _sync(device)
        naive_est = (time.perf_counter() - start) / probe * T
        naive_s = timed(lambda: net.naive_logits(xs, xv), max(1, min(repeats, 3)), device=device) \
            if naive_est <= naive_budget_s else None
        beam_s = timed(lambda: beam_search(net, net.blocks(xs, xv)[0], beam_width), repeats, device=device)
        mcts_s = timed(lambda: mcts(net, net.blocks(xs, xv)[0], simulations), max(1, min(repeats, 3)), device=device)
        # argmax shares over all recordings
        b_found, m_found, b_eval, m_eval = 0, 0, 0, 0
        for start_r in range(0, recordings, batch):
            blocks = net.blocks(stats[start_r : start_r + batch], visual[start_r : start_r + batch])[0]
            ref = exhaustive(net, blocks, top_k=1).best
            b = beam_search(net, blocks, beam_width)
            m = mcts(net, blocks, simulations)
            b_found += int((b.best == ref).all(dim=-1).sum())
            m_found += int((m.best == ref).all(dim=-1).sum())
            b_eval, m_eval = b.evaluations, max(m_eval, m.evaluations)
        ms = 1000.0 / batch
        rows.append({
            "depth": K, "paths": T,
            "exhaustive_ms": exh_s * ms, "floor_ms": floor_s * ms, "ratio_to_floor": exh_s / floor_s,
            "naive_ms": None if naive_s is None else naive_s * ms, "naive_estimated_ms": naive_est * ms,
            "beam_ms": beam_s * ms, "beam_evaluations": b_eval, "beam_found_argmax": b_found / recordings,
            "mcts_ms": mcts_s * ms, "mcts_evaluations": m_eval, "mcts_found_argmax": m_found / recordings,
        })
    settings = {"num_nodes": num_nodes, "stat_dim": stat_dim, "num_keyframes": num_keyframes, "dim": dim,
                "heads": heads, "recordings": recordings, "batch": batch, "repeats": repeats,
                "beam_width": beam_width, "mcts_simulations": simulations, "naive_budget_s": naive_budget_s,
                "seed": seed}
    return {"machine": machine(device), "settings": settings, "depths": rows}


def format_paths_table(result: dict) -> str:
    """Markdown table of :func:`bench_paths` (ms per recording)."""
    def f(v, digits=2):
        return "–" if v is None else f"{v:.{digits}f}"

    lines = ["| K | paths B^K | exhaustive ms | floor (F_R only) ms | ratio to floor | naive ms | beam ms "
             "(evals, found argmax) | MCTS ms (evals, found argmax) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["depths"]:
        naive = f(r["naive_ms"]) if r["naive_ms"] is not None else f"skipped (≈{r['naive_estimated_ms']:.0f})"
        lines.append(f"| {r['depth']} | {r['paths']:,} | {f(r['exhaustive_ms'], 3)} | {f(r['floor_ms'], 3)} | "
                     f"{r['ratio_to_floor']:.2f} | {naive} | {f(r['beam_ms'])} ({r['beam_evaluations']}, "
                     f"{r['beam_found_argmax']:.2f}) | {f(r['mcts_ms'])} ({r['mcts_evaluations']}, "
                     f"{r['mcts_found_argmax']:.2f}) |")
    return "\n".join(lines) + "\n"


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bench_train(cfg, epochs: int = 1, progress: bool = True) -> dict:
    """Training throughput of a run config: pairs per second over the training batches of
    ``epochs`` epochs (no validation, no checkpoints, no evaluation), and peak memory.

    Peak memory is the process's peak resident set (CPU; it includes loading the data) and, on a
    GPU, ``torch.cuda.max_memory_allocated``.

    Returns:
        ``{"machine", "pairs", "seconds", "pairs_per_second", "steps", "peak_rss_mb",
        "peak_gpu_mb", "text_branch", "config"}``
    """
    import lightning as L

    from kept.config import config_to_dict
    from kept.train import build_system

    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    system, dm = build_system(cfg)

    class Clock(L.Callback):
        def __init__(self):
            self.seconds, self.pairs, self.steps, self._t = 0.0, 0, 0, 0.0

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            _sync(str(module.device))
            self._t = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            _sync(str(module.device))
            self.seconds += time.perf_counter() - self._t
            self.pairs += batch["target"].shape[0] // 2
            self.steps += 1

    clock = Clock()
    t = cfg.train
    if str(t.accelerator).startswith(("gpu", "cuda")) and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = L.Trainer(max_epochs=epochs, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                        precision=t.precision, logger=False, enable_checkpointing=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[clock], enable_progress_bar=progress,
                        enable_model_summary=False, gradient_clip_val=t.gradient_clip or None,
                        reload_dataloaders_every_n_epochs=1)
    trainer.fit(system, datamodule=dm)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    device = "cuda" if gpu is not None and str(t.accelerator) != "cpu" else "cpu"
    return {"machine": machine(device), "epochs": epochs, "steps": clock.steps, "pairs": clock.pairs,
            "seconds": clock.seconds, "pairs_per_second": clock.pairs / clock.seconds if clock.seconds else None,
            "peak_rss_mb": _peak_rss_mb(), "peak_gpu_mb": gpu, "text_branch": system.model.decoder is not None,
            "config": config_to_dict(cfg)}


@torch.no_grad()
def bench_compare(checkpoint: str | Path | None = None, cfg=None, repeats: int = 20, frames: int = 90) -> dict:
    """Latency of one :func:`kept.explain.compare.compare` (CPU, as ``kept compare`` runs it) with the
    keypoints given (no pose extraction): features of both recordings, the score branch, the
    report fields, and the description when the model has a decoder (timed with and without).

    Without ``checkpoint`` a randomly initialised model of ``cfg`` (default config, coco17) is
    used, with the default decoder: latency does not depend on the weights, except that a random
    decoder may generate up to ``text.max_length`` tokens before it stops.

    Returns:
        ``{"machine", "model", "frames", "compare_ms", "compare_without_text_ms", "text_branch"}``
    """
    import numpy as np

    from kept.explain.compare import Recording, compare
    from kept.config import load_config
    from kept.train import build_model, build_text_branch, load_model
    from pose.skeleton import Skeleton, get_skeleton

    if checkpoint is not None:
        model, cfg, saved = load_model(checkpoint)
        skeleton = Skeleton.from_spec(saved["skeleton"], name=saved["skeleton"]["name"])
        info = saved["dataset"]
        score_range, up_axis, fps = tuple(info["score_range"]), info.get("up_axis", "y"), info["fps"]
    else:
        cfg = cfg or load_config()
        skeleton = get_skeleton("coco17")
        torch.manual_seed(0)
        model = build_model(cfg, skeleton)
        if cfg.text.enabled:
            model.decoder, _ = build_text_branch(cfg)
        score_range, up_axis, fps = (0.0, 10.0), "y", 30.0
    model = model.cpu().eval()
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, skeleton.num_joints, 3)).astype("f4")
    a = Recording("a", base + 0.05 * rng.normal(size=(frames, skeleton.num_joints, 3)).astype("f4"), fps)
    b = Recording("b", base + 0.05 * rng.normal(size=(frames, skeleton.num_joints, 3)).astype("f4"), fps)
    with_text = timed(lambda: compare(model, cfg, skeleton, score_range, a, b, up_axis), repeats)
    decoder, model.decoder = model.decoder, None
    try:
        without = timed(lambda: compare(model, cfg, skeleton, score_range, a, b, up_axis), repeats)
    finally:
        model.decoder = decoder
    return {"machine": machine("cpu"), "model": str(checkpoint) if checkpoint else "random (default config)",
            "frames": frames, "compare_ms": with_text * 1000, "compare_without_text_ms": without * 1000,
            "text_branch": decoder is not None}
