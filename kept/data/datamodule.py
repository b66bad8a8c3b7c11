"""Pairs of recordings as batches: the Lightning DataModule of KEPT training.

``setup`` loads the keypoint-folder dataset once, turns every recording into model inputs
(:func:`kept.features.recording_features`, progress bar) and embeds the expert commentary
(cached on disk). Training batches are pairs of the train split; validation batches are the
recordings of the val split. The pair order is reshuffled every epoch from ``seed + epoch``, so
a run resumed from an end-of-epoch checkpoint sees the same batches as an uninterrupted one.
Training recordings are augmented by a random rotation about the up axis
(``data.augment_yaw``), drawn from a seed that travels with each pair, so augmentation is
reproducible too and independent of the number of loader workers.

Batch layout (a dict of tensors, so Lightning moves it between devices): the first half of every
tensor is recording a of each pair, the second half recording b.

Shapes (R = 2 x pairs in training, recordings in validation):
    node_stats (R, N, B, h), frames (R, N, P, 4), segments (R, K, P, 4 S), block_stats (R, K, B, g),
    whole_stats (R, W)
    target (R,) normalised score, commentary (R, E), has_commentary (R,) bool, row (R,) int64,
    category (R,) int64 index into ``FeatureBank.categories``
    with a fitted statistics branch, in training batches: prior (R,) its out-of-fold prediction
    with the text branch, per pair (R / 2): desc_ids (R/2, L), desc_mask (R/2, L),
    desc_target (R/2, E) sentence embedding of the description, has_desc (R/2,) bool
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from kept.commentary import SentenceEmbedder, embed_commentary
from kept.config import RunConfig
from kept.data.folder import KeypointDataset, load_dataset
from kept.features import RecordingFeatures, prepare_keypoints, recording_features, rotate_about_up, stack_features

__all__ = ["default_cache_dir", "resolve_data_root", "load_configured_dataset", "PairDataModule", "FeatureBank"]


def default_cache_dir(configured: str | None = None) -> Path:
    """The cache folder: the configured one, else $KEPT_CACHE, else ~/.cache/kept."""
    return Path(configured or os.environ.get("KEPT_CACHE") or Path.home() / ".cache" / "kept")


def resolve_data_root(cfg: RunConfig) -> Path:
    """The keypoint-folder root the config points at; generates the demo data when asked to."""
    data = cfg.data
    if data.dataset == "adr" and data.synthetic:
        from kept.data.demo import generate_demo

        root = default_cache_dir(data.cache_dir) / "demo" / f"adr-demo-seed{data.demo_seed}"
        if not (root / "dataset.json").exists():
            generate_demo(root, seed=data.demo_seed, overwrite=root.exists())
        return root
    if data.data_root is None:
        if data.dataset == "adr":
            raise ValueError(
                "no ADR data given. ADR is built from Ego-Exo4D, which you license yourself: build "
                "it with `kept data adr --egoexo-root ROOT --out DIR` and pass --data-root DIR, or "
                "train on the bundled demo data with --synthetic."
            )
        raise ValueError("--dataset folder needs --data-root DIR (a keypoint-folder dataset)")
    root = Path(data.data_root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data root not found: {root}")
    return root


def load_configured_dataset(cfg: RunConfig, seed: int | None = None) -> KeypointDataset:
    """The dataset a config names: ``adr`` / ``folder`` (keypoint folders, the demo with
    ``data.synthetic``) or ``jigsaws`` (the official release, converted once into the cache, with
    the cross-validation fold ``data.fold`` applied).

    Args:
        cfg: the run config.
        seed: seed of the val hold-out (default ``train.seed``).
    """
    seed = cfg.train.seed if seed is None else seed
    if cfg.data.dataset == "jigsaws":
        from kept.data.jigsaws import load_jigsaws

        if cfg.data.data_root is None:
            raise ValueError("--dataset jigsaws needs --data-root ROOT (the JIGSAWS release folder)")
        return load_jigsaws(Path(cfg.data.data_root).expanduser(), fold=cfg.data.fold,
                            cache_dir=default_cache_dir(cfg.data.cache_dir),
                            val_fraction=cfg.data.val_fraction, seed=seed)
    return load_dataset(resolve_data_root(cfg), val_fraction=cfg.data.val_fraction, seed=seed,
                        by_subject=cfg.data.val_by_subject)


class FeatureBank:
    """Model inputs of every recording of a dataset, one row per recording.

    Args:
        dataset: the loaded dataset.
        cfg: run config (keyframes, depth, segment samples, commentary switches, cache).
        progress: show a progress bar.
        commentary: embed the expert commentary (training only; inference never needs it).

    Attributes:
        ids: recording ids in row order.
        features: batched :class:`RecordingFeatures` (all recordings).
        target: (R,) normalised scores.
        commentary: (R, E) embeddings (zeros where a recording has none).
        has_commentary: (R,) bool.
        categories: the dataset's category names, sorted; ``category`` (R,) each row's index.
        prior: (R,) out-of-fold statistics-branch predictions of the rows it was fitted on (NaN
            elsewhere), set by :meth:`set_prior`; None until then.
    """

    def __init__(self, dataset: KeypointDataset, cfg: RunConfig, progress: bool = True, commentary: bool = True):
        self.dataset = dataset
        self.cfg = cfg
        self.ids = list(dataset.recordings)
        self.row = {rid: i for i, rid in enumerate(self.ids)}
        self.keypoints = [prepare_keypoints(dataset.keypoints(rid), dataset.skeleton, dataset.up_axis,
                                            cfg.data.canonical_facing)
                          for rid in tqdm(self.ids, desc="load", disable=not progress, leave=False)]
        items = [self._features(i) for i in tqdm(range(len(self.ids)), desc="features", disable=not progress, leave=False)]
        self.features: RecordingFeatures = stack_features(items)
        scores = np.array([dataset.recordings[r].score for r in self.ids], dtype=np.float32)
        self.target = torch.as_tensor(dataset.normalize_score(scores), dtype=torch.float32)
        self.categories = sorted({dataset.recordings[r].category for r in self.ids})
        pos = {c: i for i, c in enumerate(self.categories)}
        self.category = torch.as_tensor([pos[dataset.recordings[r].category] for r in self.ids], dtype=torch.long)
        self.prior: torch.Tensor | None = None
        texts = {r: dataset.recordings[r].commentary for r in self.ids if dataset.recordings[r].commentary}
        self.commentary_dim = 384
        self.commentary = torch.zeros(len(self.ids), self.commentary_dim)
        self.has_commentary = torch.zeros(len(self.ids), dtype=torch.bool)
        wants = commentary and cfg.model.use_commentary and cfg.loss.semantic > 0
        if texts and wants:
            embedder = SentenceEmbedder(cfg.model.sentence_encoder)
            emb = embed_commentary(texts, embedder, default_cache_dir(cfg.data.cache_dir))
            self.commentary_dim = embedder.dim
            self.commentary = torch.zeros(len(self.ids), self.commentary_dim)
            for rid, e in emb.items():
                self.commentary[self.row[rid]] = torch.as_tensor(e)
                self.has_commentary[self.row[rid]] = True

    def _features(self, row: int, yaw: float = 0.0) -> RecordingFeatures:
        d = self.dataset
        xyz = self.keypoints[row] if yaw == 0 else rotate_about_up(self.keypoints[row], yaw, d.up_axis)
        try:
            return recording_features(xyz, d.skeleton, d.fps, num_keyframes=self.cfg.data.num_keyframes,
                                      depth=self.cfg.model.depth, segment_samples=self.cfg.data.segment_samples,
                                      up_axis=d.up_axis)
        except ValueError as err:
            raise ValueError(f"{d.root}: recording '{self.ids[row]}': {err}") from None

    def batch(self, rows: torch.Tensor, seeds: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The batch dict of the given rows (see the module docstring).

        With ``seeds`` (one int per row) and ``data.augment_yaw > 0``, each recording is rotated
        about the up axis by a random angle drawn from its seed, and its features recomputed.
        """
        limit = self.cfg.data.augment_yaw
        if seeds is not None and limit > 0:
            yaws = [np.random.default_rng(int(s)).uniform(-limit, limit) for s in seeds]
            f = stack_features([self._features(int(r), y) for r, y in zip(rows, yaws)])
        else:
            f = self.features.index(rows)
        out = {"node_stats": f.node_stats, "frames": f.frames, "segments": f.segments,
               "block_stats": f.block_stats, "whole_stats": f.whole_stats, "curves": f.curves,
               "duration": f.duration, "target": self.target[rows], "category": self.category[rows],
               "commentary": self.commentary[rows], "has_commentary": self.has_commentary[rows], "row": rows}
        if seeds is not None and self.prior is not None:
            out["prior"] = self.prior[rows]
        return out

    def set_prior(self, rows: torch.Tensor, values: torch.Tensor) -> None:
        """Record out-of-fold statistics-branch predictions for ``rows`` (training batches
        carry them as ``prior``). Shapes: rows (M,), values (M,)"""
        self.prior = torch.full((len(self.ids),), float("nan"))
        self.prior[rows] = values

    def rows(self, ids: list[str]) -> torch.Tensor:
        return torch.as_tensor([self.row[i] for i in ids], dtype=torch.long)


class PairDataModule(L.LightningDataModule):
    """Train on pairs of the train split, validate on the recordings of the val split.

    Args:
        cfg: the run config.
        dataset: an already loaded dataset (default: loaded from the config's root).
    """

    def __init__(self, cfg: RunConfig, dataset: KeypointDataset | None = None):
        super().__init__()
        self.cfg = cfg
        self.dataset = dataset
        self.bank: FeatureBank | None = None

    def prepare_data(self) -> None:
        if self.dataset is None and self.cfg.data.dataset != "jigsaws":
            resolve_data_root(self.cfg)  # generates the demo data once, on one process

    def setup(self, stage: str | None = None) -> None:
        if self.bank is not None:
            return
        if self.dataset is None:
            self.dataset = load_configured_dataset(self.cfg)
        if not self.dataset.pairs_in("train"):
            raise ValueError(f"{self.dataset.root}: the train split has no pairs to train on")
        self.bank = FeatureBank(self.dataset, self.cfg, progress=self.cfg.train.progress_bar)
        pairs = self.dataset.pairs_in("train")
        self.train_pairs = torch.as_tensor([[self.bank.row[p.id_a], self.bank.row[p.id_b], i] for i, p in enumerate(pairs)])
        self.val_rows = self.bank.rows(self.dataset.ids("val"))
        self.text: dict[str, torch.Tensor] | None = None

    def has_descriptions(self) -> bool:
        """Whether any training pair has a difference description (the text branch can train)."""
        return any((p.description or "").strip() for p in self.dataset.pairs_in("train"))

    @torch.no_grad()
    def attach_text(self, decoder, sentence_encoder) -> None:
        """Tokenise the train pairs' descriptions and embed them with the frozen sentence encoder
        (the targets of L_comment), so that pair batches carry them."""
        from kept.model.decoder import reference_sentence_embedding

        texts = [(p.description or "").strip() for p in self.dataset.pairs_in("train")]
        has = torch.tensor([bool(t) for t in texts])
        ids, mask = decoder.tokenize([t or "." for t in texts])
        target = torch.cat([reference_sentence_embedding(sentence_encoder, decoder.tokenizer, [t or "." for t in texts[i:i + 128]])
                            for i in range(0, len(texts), 128)])
        self.text = {"desc_ids": ids, "desc_mask": mask, "desc_target": target, "has_desc": has}
        if self.cfg.text.restrict_vocab:
            decoder.restrict_vocabulary([t for t in texts if t])

    def _collate_pairs(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        pairs = torch.stack(items)  # (pairs, 5): row a, row b, pair index, augmentation seeds of a and b
        batch = self.bank.batch(torch.cat([pairs[:, 0], pairs[:, 1]]), seeds=torch.cat([pairs[:, 3], pairs[:, 4]]))
        if self.text is not None:
            batch.update({k: v[pairs[:, 2]] for k, v in self.text.items()})
        return batch

    def _collate_rows(self, rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.bank.batch(torch.stack(rows))

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        gen = torch.Generator().manual_seed(self.cfg.train.seed * 100003 + epoch)
        order = torch.randperm(len(self.train_pairs), generator=gen)
        if self.cfg.data.max_pairs_per_epoch:
            order = order[: self.cfg.data.max_pairs_per_epoch]
        seeds = torch.randint(0, 2**31 - 1, (len(order), 2), generator=gen)
        items = torch.cat([self.train_pairs[order], seeds], dim=1)  # (pairs, 5)
        return DataLoader(list(items), batch_size=self.cfg.data.batch_size, shuffle=False,
                          collate_fn=self._collate_pairs, num_workers=self.cfg.data.num_workers)

    def val_dataloader(self) -> DataLoader:
        rows = list(self.val_rows)
        return DataLoader(rows, batch_size=self.cfg.train.eval_batch_size, shuffle=False,
                          collate_fn=self._collate_rows,
                          num_workers=self.cfg.data.num_workers)
