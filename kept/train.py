"""``kept train``: fit KEPT on a keypoint-folder dataset and evaluate it on the test split.

A run directory holds::

    config.yaml            the full config of the run
    checkpoints/last.ckpt  Lightning checkpoint after every epoch (for --resume)
    checkpoints/best.ckpt  the epoch with the highest val rho (``train.keep=best``)
    logs/metrics.csv       losses per epoch (Lightning's CSVLogger; logs/resume-N/ after a resume)
    model.pt               the kept model (best val epoch, or the last with ``train.keep=last``),
                           decoder included (loaded by ``kept eval --checkpoint RUN_DIR``)
    metrics.json           test metrics at the end
    predictions.csv        per test recording: true and predicted score, selected path

Every file is written atomically, checkpoints included (:class:`AtomicCheckpointIO`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from kept.config import RunConfig, config_to_dict, load_config, save_config
from kept.data.datamodule import PairDataModule, load_configured_dataset
from kept.evaluate import cross_validation_metrics, evaluate_model, without_predictions
from kept.io import atomic_path, atomic_torch_save, atomic_write_json
from kept.model import KEPT
from kept.model.decoder import DifferenceDecoder
from kept.system import KEPTSystem
from pose.skeleton import Skeleton

__all__ = ["AtomicCheckpointIO", "build_model", "build_system", "train", "train_folds", "save_model", "load_model", "MODEL_FILE"]

MODEL_FILE = "model.pt"
LAST_CKPT = "checkpoints/last.ckpt"
BEST_CKPT = "checkpoints/best.ckpt"
#: candidate weights of the network's score next to the statistics branch (``model.net_weight=null``)
NET_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that writes a temp file and renames it into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def build_model(cfg: RunConfig, skeleton: Skeleton, commentary_dim: int = 384,
                categories: tuple[str, ...] | list[str] = ()) -> KEPT:
    """The KEPT model of a config (the default keypoint visual encoder)."""
    return KEPT(skeleton, cfg.model, cfg.data.num_keyframes, cfg.data.segment_samples, commentary_dim,
                categories=categories)


def fit_stats_branch(model: KEPT, dm: PairDataModule, splits: tuple[str, ...] = ("train",),
                     choice: tuple[bool, ...] | None = None) -> None:
    """Fit the statistics branch on the recordings of ``splits`` in closed form and hand the
    data module its out-of-fold predictions, which training batches carry as ``prior``.

    *Decision*: the branch's variant (pooled or per category, with or without whole-recording
    statistics) is chosen once, by cross-validation on train + val (the recordings the final
    branch is fitted on), and kept for the fit on train alone that the network and ``w`` are
    trained and chosen against; so the network learns the residual of the same model that
    ``kept eval`` runs."""
    bank = dm.bank
    ids = [i for s in splits for i in dm.dataset.ids(s)]
    rows = bank.rows(ids)
    f = bank.features
    oof = model.stats.fit(f.block_stats[rows], bank.target[rows], bank.category[rows], f.whole_stats[rows],
                          groups=[dm.dataset.recordings[i].subject for i in ids], seed=dm.cfg.train.seed,
                          choice=choice, curves=f.curves[rows], duration=f.duration[rows])
    bank.set_prior(rows, oof)


def build_text_branch(cfg: RunConfig) -> tuple[DifferenceDecoder, torch.nn.Module]:
    """The difference decoder of docs/method.md section 7 and the frozen sentence encoder of its
    L_comment surrogate (the bundled MiniLM, which shares the default decoder's tokenizer)."""
    from kept.model.decoder import load_sentence_encoder_for_surrogate

    decoder = DifferenceDecoder(cfg.model.dim, cfg.text)
    encoder, _ = load_sentence_encoder_for_surrogate(cfg.model.sentence_encoder)
    return decoder, encoder


def build_system(cfg: RunConfig) -> tuple[KEPTSystem, PairDataModule]:
    """The data module (set up for fitting) and the Lightning system of a run config: the KEPT
    model, plus the text branch when ``text.enabled``, ``loss.text > 0`` and the pairs have
    descriptions."""
    dm = PairDataModule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    model = build_model(cfg, dm.dataset.skeleton, dm.bank.commentary_dim, dm.bank.categories)
    if model.stats is not None:
        fit_stats_branch(model, dm, ("train", "val"))  # chooses the variant on train + val
        fit_stats_branch(model, dm, ("train",), choice=model.stats.choice)
    encoder = None
    if cfg.text.enabled and cfg.text.generator == "decoder" and cfg.loss.text > 0 and dm.has_descriptions():
        model.decoder, encoder = build_text_branch(cfg)
        dm.attach_text(model.decoder, encoder)
    return KEPTSystem(model, cfg, encoder), dm


def save_model(model: KEPT, cfg: RunConfig, skeleton: Skeleton, dataset_info: dict, path: str | Path) -> None:
    """Write a self-contained model file: weights (score branch and decoder), config, skeleton
    and score range."""
    atomic_torch_save({
        "format": "kept-model/1",
        "config": config_to_dict(cfg),
        "skeleton": {"name": skeleton.name, **skeleton.to_spec()},
        "commentary_dim": model.alignment.f_c.in_features,
        "dataset": dataset_info,
        "has_decoder": model.decoder is not None,
        "has_memory": model.memory is not None,
        "categories": list(model.stats.categories) if model.stats is not None else [],
        "state_dict": model.state_dict(),
    }, path)


def load_model(run_dir: str | Path) -> tuple[KEPT, RunConfig, dict]:
    """Load ``RUN_DIR/model.pt`` (or a model file given directly).

    Returns:
        ``(model in eval mode, config, saved dict without the weights)``
    """
    path = Path(run_dir)
    path = path / MODEL_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(
            f"no trained model at {path}: pass a run directory written by `kept train` "
            f"(it holds {MODEL_FILE} once training has finished)"
        )
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("format") != "kept-model/1":
        raise ValueError(f"{path} is not a kept model file (format {saved.get('format')!r})")
    cfg = load_config(base=saved["config"])
    skeleton = Skeleton.from_spec(saved["skeleton"], name=saved["skeleton"]["name"])
    model = build_model(cfg, skeleton, saved["commentary_dim"], saved.get("categories", []))
    if saved.get("has_decoder"):
        model.decoder = DifferenceDecoder(cfg.model.dim, cfg.text)
    if saved.get("has_memory"):
        from kept.model.memory import DescriptionMemory

        model.memory = DescriptionMemory()
    model.load_state_dict(saved.pop("state_dict"))
    model.eval()
    return model, cfg, saved


def _log_version(run_dir: Path, resume: bool) -> str:
    """``logs/metrics.csv`` for a new run; ``logs/resume-N/metrics.csv`` for the N-th resume,
    so that a resumed run never overwrites the log of the epochs before the interruption."""
    if not resume:
        return ""
    n = 1
    while (run_dir / "logs" / f"resume-{n}").exists():
        n += 1
    return f"resume-{n}"


def train(cfg: RunConfig, run_dir: str | Path, resume: bool = False,
          callbacks: list[L.Callback] | None = None) -> dict:
    """Train, save the final model, and evaluate on the test split.

    Args:
        cfg: the run config.
        run_dir: where everything is written (created if needed).
        resume: continue from ``run_dir/checkpoints/last.ckpt``.
        callbacks: extra Lightning callbacks (e.g. early stopping, your own logging).

    Returns:
        The test metrics (also written to ``run_dir/metrics.json``).
    """
    run_dir = Path(run_dir)
    last = run_dir / LAST_CKPT
    if resume and not last.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}; start without --resume")
    if not resume and (last.exists() or (run_dir / MODEL_FILE).exists()):
        raise ValueError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir"
        )
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    start = time.time()
    system, dm = build_system(cfg)
    model = system.model
    save_config(cfg, run_dir / "config.yaml")
    t = cfg.train
    has_val = len(dm.val_rows) > 0
    best_ckpt = (ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val/spearman",
                                 mode="max", save_top_k=1, enable_version_counter=False)
                 if t.keep == "best" and has_val else None)
    trainer = L.Trainer(
        max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        precision=t.precision, default_root_dir=run_dir, deterministic=True,
        logger=CSVLogger(run_dir, name="logs", version=_log_version(run_dir, resume)),
        # the best-val callback first, so that last.ckpt holds its updated state (for --resume)
        callbacks=[*([best_ckpt] if best_ckpt is not None else []),
                   ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1,
                                   enable_version_counter=False),
                   *(callbacks or [])],
        plugins=[AtomicCheckpointIO()], gradient_clip_val=t.gradient_clip or None,
        enable_progress_bar=t.progress_bar, enable_model_summary=False,
        reload_dataloaders_every_n_epochs=1, limit_val_batches=None if len(dm.val_rows) else 0,
        num_sanity_val_steps=0, log_every_n_steps=10,
    )
    trainer.fit(system, datamodule=dm, ckpt_path=str(last) if resume else None)
    if not trainer.is_global_zero:
        return {}
    info = {"name": dm.dataset.name, "root": str(dm.dataset.root), "score_range": list(dm.dataset.score_range),
            "fps": dm.dataset.fps, "up_axis": dm.dataset.up_axis}
    if best_ckpt is not None and best_ckpt.best_model_path:
        state = torch.load(best_ckpt.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
        system.load_state_dict(state)
    model = model.cpu().eval()
    if model.stats is not None:
        model.net_weight.fill_(choose_net_weight(model, dm, cfg) if cfg.model.net_weight is None
                               else cfg.model.net_weight)
    val_metrics = _val_score_metrics(model, dm, cfg) if len(dm.val_rows) else None
    if model.stats is not None and cfg.model.stats_refit and len(dm.val_rows):
        fit_stats_branch(model, dm, ("train", "val"), choice=model.stats.choice)
    if cfg.text.enabled and cfg.text.generator == "retrieval" and dm.has_descriptions():
        model.memory = fit_memory(model, dm, cfg)
    save_model(model, cfg, dm.dataset.skeleton, info, run_dir / MODEL_FILE)
    metrics = evaluate_model(model, dm.dataset, cfg, split="test", bank=dm.bank,
                             predictions=run_dir / "predictions.csv", descriptions=run_dir / "descriptions.csv")
    if val_metrics is not None:
        metrics["val"] = val_metrics
    metrics["train_seconds"] = round(time.time() - start, 1)
    atomic_write_json(run_dir / "metrics.json", without_predictions(metrics))
    return metrics


@torch.no_grad()
def fit_memory(model: KEPT, dm: PairDataModule, cfg: RunConfig, splits: tuple[str, ...] = ("train", "val")):
    """The description memory of ``text.generator=retrieval`` (:mod:`kept.model.memory`): every
    described pair of ``splits``, keyed by the final model's reading of its two recordings."""
    from kept.evaluate import predict
    from kept.explain.grounding import NODE_WORDS
    from kept.model.memory import DescriptionMemory, descriptor, pair_keys

    ds = dm.dataset
    pairs = [p for split in splits for p in ds.pairs_in(split) if (p.description or "").strip()]
    ids = sorted({i for p in pairs for i in (p.id_a, p.id_b)})
    pred = predict(model, dm.bank, ids, cfg.train.eval_batch_size)
    desc = descriptor(None if pred.contrib is None else torch.as_tensor(pred.contrib), pred.graph)
    row = {rid: i for i, rid in enumerate(ids)}
    keys = pair_keys(desc[[row[p.id_a] for p in pairs]], desc[[row[p.id_b] for p in pairs]])
    node_parts = [NODE_WORDS.get(n, (n,)) for n in ds.skeleton.node_names] if pred.contrib is not None else []
    t = cfg.text
    return DescriptionMemory().fit(keys, [ds.recordings[p.id_a].category for p in pairs],
                                   [p.description.strip() for p in pairs], node_parts,
                                   (t.rerank_parts, t.rerank_candidates, t.rerank_penalty))


@torch.no_grad()
def _val_score_metrics(model: KEPT, dm: PairDataModule, cfg: RunConfig) -> dict:
    """Score metrics of the kept model on the val split, before any refit on val: the figures
    to choose settings by (``metrics.json`` ``val``)."""
    from kept.evaluate import predict
    from kept.metrics import evaluate_scores

    ds = dm.dataset
    ids = ds.ids("val")
    pred = predict(model, dm.bank, ids, cfg.train.eval_batch_size)
    out = evaluate_scores({i: ds.recordings[i].category for i in ids}, {i: ds.recordings[i].score for i in ids},
                          dict(zip(ids, ds.denormalize_score(pred.score).tolist())),
                          [(p.id_a, p.id_b) for p in ds.pairs_in("val")], ds.score_range)
    return {"score": out["score"], "n_recordings": len(ids)}


#: bootstrap resamples of the val recordings behind the one-standard-error rule of :func:`choose_net_weight`
NET_WEIGHT_BOOTSTRAP = 200


@torch.no_grad()
def choose_net_weight(model: KEPT, dm: PairDataModule, cfg: RunConfig) -> float:
    """w of s_hat = s_stats + w s_net (or the blend, ``model.stats_mode``) among
    :data:`NET_WEIGHTS`, on the val split; 1 when there is no val split.

    *Decision*: the one-standard-error rule (as for the penalty of a lasso or the size of a
    tree). The w with the highest val rho is found, and the standard error of that rho is
    estimated by resampling the val recordings (:data:`NET_WEIGHT_BOOTSTRAP` draws, seeded).
    Then the smallest w whose val rho lies within one standard error of the best is taken. So
    the network's score is added to the frozen classical model only as far as val shows that it
    helps beyond noise. On the demo data, val holds 29 recordings. There the plain argmax chose
    w = 1 on both seeds measured, while w = 0 was better on test (rho 0.760 against 0.707 and
    0.658)."""
    from kept.evaluate import predict
    from kept.metrics import spearman

    ids = dm.dataset.ids("val")
    if len(ids) < 3:
        return 1.0
    model.net_weight.fill_(1.0)
    pred = predict(model, dm.bank, ids, cfg.train.eval_batch_size)
    truth = dm.bank.target[dm.bank.rows(ids)].numpy()
    scores = {w: (pred.stats_score + w * pred.net_score if cfg.model.stats_mode == "residual"
                  else (1 - w) * pred.stats_score + w * pred.net_score) for w in NET_WEIGHTS}
    rho = {w: (spearman(truth, s) if spearman(truth, s) is not None else -1.0) for w, s in scores.items()}
    best = max(NET_WEIGHTS, key=lambda w: (rho[w], w))
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(ids), len(ids)) for _ in range(NET_WEIGHT_BOOTSTRAP)]
    boot = [spearman(truth[d], scores[best][d]) for d in draws]
    se = float(np.std([b for b in boot if b is not None])) if any(b is not None for b in boot) else 0.0
    return float(min(w for w in NET_WEIGHTS if rho[w] >= rho[best] - se))


def train_folds(cfg: RunConfig, run_dir: str | Path, scheme: str, resume: bool = False) -> dict:
    """Train one model per cross-validation fold and pool their test predictions.

    Args:
        cfg: the run config (``data.dataset`` must support folds: ``jigsaws``).
        run_dir: each fold trains in ``run_dir/<scheme>-<held-out>``; the pooled metrics go to
            ``run_dir/metrics.json`` (:func:`kept.evaluate.cross_validation_metrics`).
        scheme: ``louo`` (leave one user out) or ``loso`` (leave one supertrial out).
        resume: resume unfinished folds; finished folds (with ``metrics.json``) are not retrained.
    """
    import copy

    from kept.data.jigsaws import folds as fold_list

    if cfg.data.dataset != "jigsaws":
        raise ValueError(f"cross-validation folds are defined for --dataset jigsaws, not '{cfg.data.dataset}'")
    run_dir = Path(run_dir)
    base = copy.deepcopy(cfg)
    base.data.fold = None
    dataset = load_configured_dataset(base)
    results = {}
    for fold in fold_list(dataset, scheme):
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.fold = fold["name"]
        fold_dir = run_dir / fold["name"].replace(":", "-")
        if (fold_dir / "metrics.json").exists() and (fold_dir / MODEL_FILE).exists():
            model, saved_cfg, _ = load_model(fold_dir)
            results[fold["name"]] = evaluate_model(model, load_configured_dataset(saved_cfg), saved_cfg)
            continue
        results[fold["name"]] = train(fold_cfg, fold_dir, resume=resume and (fold_dir / LAST_CKPT).exists())
    metrics = cross_validation_metrics(results, dataset)
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics
