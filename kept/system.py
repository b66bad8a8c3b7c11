"""The Lightning system that trains KEPT: losses, logging and the optimiser.

Total loss (docs/method.md section 6, score branch):

    L = L_score + a1 L_semantic + a2 (L_comment + L_ce) + a3 L_KL

The text terms (docs/method.md section 7) are present when the model has a decoder and the batch's
pairs have descriptions: L_ce is teacher-forced cross-entropy, L_comment the differentiable
surrogate of the decoder. L_score is the squared error on scores normalised to [0, 1], over both recordings of each pair;
L_semantic is averaged over the recordings that have commentary; L_KL compares the path
distributions of the two recordings of each pair. The model itself is a plain ``nn.Module``
handed in ready-built.

Two terms are *decisions* of this project on top of the paper (each 0 in ``configs/paper.yaml``):

    + a_rank L_rank + a_path L_path

- L_rank (``loss.rank``): the squared error of the pair's predicted score difference against
  the true one, ((s_a - s_b) - (y_a - y_b))^2, CoRe's relative regression: pair order is what
  the task is judged on, and the difference cancels what the two recordings share.
- L_path (``loss.path``): with the statistics branch, the path values learn the score penalty
  each path watches, -sum_k c[k, l_k] (:func:`kept.model.stats_branch.path_targets`): Q(l) is
  regressed (binary cross-entropy, each path weighted by 1 + L p(l), p the teacher's softmax
  over the L candidates) onto exp((pen(l) - max_l' pen(l')) / tau), 1 for the most penalised
  path and decaying with the penalty it misses. Without it
  nothing tells Q where a performance loses its score.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from kept.config import RunConfig
from kept.features import RecordingFeatures
from kept.losses import masked_mean, path_kl
from kept.metrics import spearman
from kept.model import KEPT, KEPTOutput
from kept.model.stats_branch import path_targets

__all__ = ["KEPTSystem", "features_of"]


def features_of(batch: dict[str, torch.Tensor]) -> RecordingFeatures:
    """The model inputs inside a batch dict."""
    return RecordingFeatures(batch["node_stats"], batch["frames"], batch["segments"], batch.get("block_stats"),
                             batch.get("whole_stats"), batch.get("curves"), batch.get("duration"))


class KEPTSystem(L.LightningModule):
    """Trains a :class:`KEPT` model on pairs.

    Args:
        model: the KEPT model (with ``model.decoder`` when the text branch trains).
        cfg: the run config (loss weights, optimiser, seed).
        sentence_encoder: the frozen encoder of L_comment's surrogate (text branch only).
    """

    def __init__(self, model: KEPT, cfg: RunConfig, sentence_encoder: torch.nn.Module | None = None):
        super().__init__()
        self.model = model
        # frozen, and kept out of the checkpoints: not registered as a submodule
        object.__setattr__(self, "sentence_encoder", sentence_encoder)
        self.cfg = cfg
        self._val_pred: list[torch.Tensor] = []
        self._val_true: list[torch.Tensor] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> KEPTOutput:
        commentary = batch["commentary"] if bool(batch["has_commentary"].any()) else None
        return self.model(features_of(batch), commentary, batch.get("category"), batch.get("prior"))

    def losses(self, batch: dict[str, torch.Tensor], out: KEPTOutput) -> dict[str, torch.Tensor]:
        """Every loss term and the weighted total for a pair batch."""
        w = self.cfg.loss
        score = F.mse_loss(out.score, batch["target"])
        zero = score.new_zeros(())
        semantic = masked_mean(out.semantic, batch["has_commentary"]) if out.semantic is not None else zero
        half = out.score.shape[0] // 2
        kl = path_kl(*self.model.pair_distributions(out), w.kl_symmetric)
        total = score + w.semantic * semantic + w.kl * kl
        parts = {"score": score, "semantic": semantic, "kl": kl}
        if w.rank > 0:
            y = batch["target"]
            rank = F.mse_loss(out.score[:half] - out.score[half:], y[:half] - y[half:])
            total = total + w.rank * rank
            parts["rank"] = rank
        if w.path > 0 and out.contrib is not None:
            teacher = path_targets(out.contrib.detach(), out.paths, w.path_temperature)  # (R, L)
            value = teacher / teacher.max(dim=-1, keepdim=True).values  # 1 for the most penalised path
            # the teacher's mass again as weight, so the few paths it values are fitted as well as
            # the many it does not (unweighted, Q under-fits the top: all logits near -3.5)
            weight = 1.0 + teacher.shape[-1] * teacher
            path = F.binary_cross_entropy_with_logits(out.logits, value, weight=weight)
            total = total + w.path * path
            parts["path"] = path
        decoder = self.model.decoder
        if decoder is not None and "has_desc" in batch and bool(batch["has_desc"].any()):
            m = batch["has_desc"].clone()
            n = self.cfg.text.pairs_per_batch
            if n and int(m.sum()) > n:  # the decoder costs far more than the score branch on a CPU
                m[m.nonzero()[n:, 0]] = False
            h1, h2 = out.graph[:half][m], out.graph[half:][m]  # (n, K, P, D): recordings a and b
            dec = decoder(h1, h2, batch["desc_ids"][m], batch["desc_mask"][m])
            comment = decoder.comment_loss(dec["logits"], batch["desc_mask"][m], self.sentence_encoder,
                                                batch["desc_target"][m]).mean()
            parts.update(ce=dec["loss_ce"], comment=comment)
            total = total + w.text * (comment + dec["loss_ce"])
        return {"loss": total, **parts}

    def on_fit_start(self) -> None:
        if self.sentence_encoder is not None:
            self.sentence_encoder.to(self.device)

    def on_train_batch_start(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # Reseed every step so that dropout repeats exactly after a resume, whatever else drew
        # from the global generator in between (e.g. a data loader starting its iterator).
        torch.manual_seed(self.cfg.train.seed * 1000003 + self.global_step)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        parts = self.losses(batch, self(batch))
        pairs = batch["target"].shape[0] // 2
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=pairs,
                      prog_bar=False, on_step=False, on_epoch=True)
        self.log("loss", parts["loss"], batch_size=pairs, prog_bar=True, on_step=True, on_epoch=False, logger=False)
        return parts["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model(features_of(batch), category=batch.get("category"))
        self.log("val/score_mse", F.mse_loss(out.score, batch["target"]), batch_size=len(out.score),
                 prog_bar=True, sync_dist=True)
        self._val_pred.append(out.score.detach().cpu())
        self._val_true.append(batch["target"].detach().cpu())

    def on_validation_epoch_end(self) -> None:
        if self._val_pred:
            rho = spearman(torch.cat(self._val_true).numpy(), torch.cat(self._val_pred).numpy())
            self.log("val/spearman", float(np.nan if rho is None else rho), prog_bar=True)
        self._val_pred.clear()
        self._val_true.clear()

    def configure_optimizers(self):
        t = self.cfg.train
        opt = torch.optim.AdamW(self.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(t.max_epochs, 1), eta_min=t.lr * 0.05)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
