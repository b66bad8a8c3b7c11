"""The ablation study of docs/method.md section 8: one training run per (ablation, seed), then a table.

    kept ablate --dataset adr --synthetic --seeds 0,1,2 --out runs/ablate [key=value ...]

Each ablation is the run config plus the overrides of :data:`ABLATIONS` (the same overrides are
in ``configs/ablations/<name>.yaml``, for ``kept train --config``; a test keeps them equal). Every
run trains in ``OUT/<ablation>/seed<S>/`` with :func:`kept.train.train`; a run whose
``metrics.json`` exists is finished and is never repeated, and an interrupted one continues from
its last checkpoint, so the command can be killed and restarted at any time. The table is
rebuilt from all finished runs at the end (``OUT/ablation.md`` and ``OUT/ablation.json``).

Several workers may share one ``OUT`` (e.g. one per GPU, or ``--seeds`` split between machines
on a shared disk): each run is claimed with a lock file (``OUT/<ablation>/seed<S>/.ablate.lock``,
holding host and process id), and a worker skips runs another live process holds. A lock left by
a process that died on the same host is taken over. Rerun the command once all workers are done
to get the table of every run (finished runs are only read).

Table layout (the KEPT paper's tables 2, 4 and 6): one row per ablation, score metrics (Spearman
rho, R-l2 x100, pair accuracy) and, where the runs trained the text branch, the captioning
metrics, each as mean ± sample standard deviation over seeds.

*Decision* (what "changes the result" means): an ablation's mean is marked with ``*`` when it
differs from the full model's mean by more than the larger of the two seed standard deviations
(the spread between seeds). With three seeds this is a rough screen, not a significance test.

*Decision* (ablations that need the text branch): ``no_residual`` only changes the decoder; when
the base config has no text branch (``text.enabled=false``) it is skipped with a message.
"""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from kept.config import RunConfig, config_to_dict, load_config
from kept.io import atomic_write_json, atomic_write_text

__all__ = ["ABLATIONS", "ablation_overrides", "run_ablations", "summarize", "format_table"]

#: name -> (label in the table, overrides). ``full`` is the unablated model.
ABLATIONS: dict[str, tuple[str, dict]] = {
    "full": ("KEPT (full)", {}),
    "no_kl": ("w/o L_KL", {"loss": {"kl": 0.0}}),
    "no_semantic": ("w/o L_semantic", {"loss": {"semantic": 0.0}}),
    "no_gnn": ("w/o GNN (IKG + skeleton)", {"model": {"use_gnn": False}}),
    "no_residual": ("w/o residual graph tokens", {"text": {"use_residual": False}}),
    "no_commentary": ("w/o expert commentary", {"model": {"use_commentary": False}}),
    "depth3": ("depth K=3", {"model": {"depth": 3}}),
    "depth5": ("depth K=5", {"model": {"depth": 5}}),
    "depth6": ("depth K=6", {"model": {"depth": 6}}),
    # this project's decisions on top of the paper (README "Decisions"), each removed alone,
    # and the paper's reading with all of them removed (configs/paper.yaml)
    "no_stats": ("w/o statistics branch (and path teacher)", {"model": {"stats_branch": False}, "loss": {"path": 0.0}}),
    "no_aligned": ("w/o phase-aligned statistics", {"model": {"stats_aligned": False}}),
    "no_rank": ("w/o L_rank", {"loss": {"rank": 0.0}}),
    "no_path": ("w/o path teacher L_path", {"loss": {"path": 0.0}}),
    "no_subject_val": ("val not held out by subject", {"data": {"val_by_subject": False}}),
    "keep_last": ("last epoch instead of best val", {"train": {"keep": "last"}}),
    "paper": ("paper's reading (configs/paper.yaml)", {"model": {"stats_branch": False},
                                                     "loss": {"rank": 0.0, "path": 0.0},
                                                     "data": {"val_by_subject": False},
                                                     "train": {"keep": "last"}}),
}

SCORE_COLUMNS = [("spearman", "rho ↑"), ("r_l2_x100", "R-l2 x100 ↓"), ("pair_accuracy", "pair acc ↑")]
TEXT_COLUMNS = [("bleu_1", "BLEU-1 ↑"), ("bleu_4", "BLEU-4 ↑"), ("meteor", "METEOR ↑"), ("rouge_l", "ROUGE-L ↑"),
                ("cider", "CIDEr ↑")]  # keys of metrics.json's "text" (kept.text_metrics)


def ablation_overrides(name: str) -> dict:
    """The config overrides of an ablation (nested dict). Unknown names raise with the known ones."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation '{name}'; known: {', '.join(ABLATIONS)}")
    return copy.deepcopy(ABLATIONS[name][1])


def _merge(cfg: RunConfig, overrides: dict) -> RunConfig:
    """The config with an ablation's nested overrides on top (checked like any config)."""
    merged = OmegaConf.merge(OmegaConf.create(config_to_dict(cfg)), OmegaConf.create(overrides))
    return load_config(base=OmegaConf.to_container(merged))


@dataclass
class Planned:
    name: str
    seed: int
    cfg: RunConfig
    run_dir: Path


def plan(cfg: RunConfig, out: str | Path, names: list[str], seeds: list[int]) -> tuple[list[Planned], list[str]]:
    """The runs to do, and messages about ablations that were skipped.

    Returns:
        (runs in the order they will train, skipped-ablation messages)
    """
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; known: {', '.join(ABLATIONS)}")
    if not seeds:
        raise ValueError("give at least one seed (e.g. --seeds 0,1,2)")
    runs, skipped = [], []
    for name in names:
        if name == "no_residual" and not cfg.text.enabled:
            skipped.append("no_residual skipped: it ablates the text branch, which text.enabled=false turns off")
            continue
        ablated = _merge(cfg, ablation_overrides(name))
        for seed in seeds:
            run_cfg = copy.deepcopy(ablated)
            run_cfg.train.seed = seed
            runs.append(Planned(name, seed, run_cfg, Path(out) / name / f"seed{seed}"))
    return runs, skipped


def run_ablations(cfg: RunConfig, out: str | Path, names: list[str] | None = None,
                  seeds: list[int] = (0, 1, 2), train_fn: Callable | None = None,
                  log: Callable[[str], None] = print) -> dict:
    """Train every (ablation, seed) that has not finished, then write the table.

    Args:
        cfg: the base run config (dataset, epochs, ...); each ablation's overrides go on top.
        out: output folder.
        names: ablations to run (default: all of :data:`ABLATIONS`).
        seeds: training seeds.
        train_fn: ``train(cfg, run_dir, resume) -> metrics`` (default :func:`kept.train.train`).
        log: progress messages.

    Returns:
        :func:`summarize` of the finished runs.
    """
    from kept.train import LAST_CKPT, train

    train_fn = train_fn or train
    names = list(names or ABLATIONS)
    runs, skipped = plan(cfg, out, names, list(seeds))
    for msg in skipped:
        log(msg)
    for i, run in enumerate(runs, 1):
        tag = f"[{i}/{len(runs)}] {run.name} seed {run.seed}"
        if (run.run_dir / "metrics.json").exists():
            log(f"{tag}: done before, kept")
            continue
        lock = run.run_dir / LOCK_FILE
        if not acquire_lock(lock):
            log(f"{tag}: running in another process ({lock}), skipped")
            continue
        try:
            if (run.run_dir / "metrics.json").exists():  # finished by another worker meanwhile
                continue
            resume = (run.run_dir / LAST_CKPT).exists()
            log(f"{tag}: {'resuming' if resume else 'training'} in {run.run_dir}")
            metrics = train_fn(run.cfg, run.run_dir, resume=resume)
        finally:
            lock.unlink(missing_ok=True)
        if metrics:
            log(f"{tag}: rho {metrics['score']['spearman']:.3f}, pair acc {metrics['score']['pair_accuracy']:.3f}")
    summary = summarize(out, list(dict.fromkeys(run.name for run in runs)))
    atomic_write_json(Path(out) / "ablation.json", summary)
    atomic_write_text(Path(out) / "ablation.md", format_table(summary))
    return summary


LOCK_FILE = ".ablate.lock"


def acquire_lock(path: Path) -> bool:
    """Claim a run for this process: create ``path`` exclusively with ``host pid``.

    Returns False when another live process holds it. A lock of a process that no longer runs
    on this host is stale and is taken over; a lock from another host is always respected.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
            except (OSError, ValueError):
                return False  # being written right now, or not ours to judge
            if host != socket.gethostname() or _alive(int(pid)):
                return False
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values), "values": values}


def summarize(out: str | Path, names: list[str]) -> dict:
    """Mean and spread over seeds of every finished run under ``out``.

    Returns:
        ``{"rows": {name: {"label", "seeds", "metrics": {metric: {"mean", "sd", "n", "values"}},
        "changed": [metrics beyond the seed spread]}}}``
    """
    rows = {}
    for name in names:
        found = sorted((Path(out) / name).glob("seed*/metrics.json"))
        if not found:
            continue
        per_metric: dict[str, list[float]] = {}
        seeds = []
        for f in found:
            m = json.loads(f.read_text())
            seeds.append(int(f.parent.name[4:]))
            for key, _ in SCORE_COLUMNS:
                per_metric.setdefault(key, []).append(m["score"].get(key))
            for key, _ in TEXT_COLUMNS:
                if key in m.get("text", {}):
                    per_metric.setdefault(key, []).append(m["text"][key])
            if m.get("paths", {}).get("n"):
                per_metric.setdefault("path_hit_rate", []).append(m["paths"]["hit_rate"])
        label = ABLATIONS[name][0]
        rows[name] = {"label": label, "seeds": seeds, "metrics": {k: _stats(v) for k, v in per_metric.items()}}
    full = rows.get("full")
    for name, row in rows.items():
        row["changed"] = []
        if full is None or name == "full":
            continue
        for key, s in row["metrics"].items():
            f = full["metrics"].get(key)
            if f and f["mean"] is not None and s["mean"] is not None:
                if abs(s["mean"] - f["mean"]) > max(s["sd"], f["sd"]):
                    row["changed"].append(key)
    return {"rows": rows}


def format_table(summary: dict) -> str:
    """Markdown table: one row per ablation, mean ± sd over seeds; ``*`` marks a mean that differs
    from the full model's by more than the larger seed standard deviation."""
    rows = summary["rows"]
    keys = [k for k, _ in SCORE_COLUMNS]
    heads = [h for _, h in SCORE_COLUMNS]
    if any("path_hit_rate" in r["metrics"] for r in rows.values()):
        keys.append("path_hit_rate")
        heads.append("fault-path share ↑")
    for k, h in TEXT_COLUMNS:
        if any(k in r["metrics"] for r in rows.values()):
            keys.append(k)
            heads.append(h)
    lines = ["| ablation | seeds | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(keys)]
    for row in rows.values():
        cells = []
        for k in keys:
            s = row["metrics"].get(k)
            if not s or s["mean"] is None:
                cells.append("–")
                continue
            mark = "*" if k in row["changed"] else ""
            cells.append(f"{s['mean']:.3f} ± {s['sd']:.3f}{mark}")
        lines.append(f"| {row['label']} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("mean ± sample sd over seeds; * = differs from the full model by more than the larger "
                 "of the two seed sds.")
    return "\n".join(lines) + "\n"
