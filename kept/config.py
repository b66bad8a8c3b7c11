"""Typed run configuration: dataclasses, loaded from YAML, overridden as ``key=value``.

One dataclass per component, composed into :class:`RunConfig`. ``configs/default.yaml`` lists
every key with its default; a user file only needs the keys it changes. Overrides use dotted
keys, e.g. ``model.depth=5 loss.kl=0 train.max_epochs=30``. OmegaConf checks the types, so a
typo or a wrong type fails with the key's name.

Ablation switches of docs/method.md section 8 that concern scores:

=========================  ==================================
without KL loss            ``loss.kl=0``
without semantic loss      ``loss.semantic=0``
without GNN                ``model.use_gnn=false``
without expert commentary  ``model.use_commentary=false``
tree depth 3 to 6          ``model.depth=3`` ... ``model.depth=6``
=========================  ==================================

The project's decisions beyond the paper (README, "Decisions beyond the paper"), each a switch;
``configs/paper.yaml`` turns them all off:

==============================  ==============================================
statistics branch               ``model.stats_branch`` (+ ``net_weight``, ``stats_refit``, ``stats_mode``,
                                ``stats_aligned``)
path teacher                    ``loss.path``, ``loss.path_temperature``
pair loss                       ``loss.rank``
val held out by subject         ``data.val_by_subject``
best validation epoch           ``train.keep=best``
==============================  ==============================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = [
    "DataConfig",
    "ModelConfig",
    "LossConfig",
    "TrainConfig",
    "DecoderConfig",
    "RunConfig",
    "load_config",
    "save_config",
]


@dataclass
class DataConfig:
    """Which dataset, how recordings become model inputs, and how pairs are batched."""

    dataset: str = "adr"  #: ``adr``, ``folder`` or ``jigsaws``
    data_root: Optional[str] = None  #: keypoint-folder root (``adr``: the built ADR folder)
    synthetic: bool = False  #: ``adr`` only: use the bundled demo generator instead of real ADR
    fold: Optional[str] = None  #: ``jigsaws``: cross-validation fold, e.g. ``louo:B`` or ``loso:3``
    demo_seed: int = 0  #: seed of the generated demo data
    cache_dir: Optional[str] = None  #: default: $KEPT_CACHE or ~/.cache/kept
    val_fraction: float = 0.15  #: share of train held out as val when there are no val rows
    num_keyframes: int = 32  #: N keyframes per recording
    segment_samples: int = 8  #: samples per joint trajectory and segment (input of F_K)
    batch_size: int = 32  #: pairs per batch
    num_workers: int = 0
    #: train pairs drawn (without replacement, seeded, different each epoch) per epoch; pairs grow
    #: quadratically with recordings, so an epoch is a fixed budget; null: all pairs every epoch
    max_pairs_per_epoch: Optional[int] = 640
    canonical_facing: bool = True  #: rotate each recording to face one way (skeletons with ``facing``)
    augment_yaw: float = 20.0  #: training: rotate about the up axis by up to +- this (degrees; 0: off)
    #: hold val out by subject (samples.csv ``subject``) so that no val person is in train;
    #: false, or no subjects: per category at random
    val_by_subject: bool = True


@dataclass
class ModelConfig:
    """Sizes and switches of the KEPT score branch (docs/method.md sections 2-6)."""

    dim: int = 64  #: D, the width of every token
    heads: int = 4  #: attention heads of each MHCA
    depth: int = 4  #: K, tree depth = number of temporal segments
    top_k: int = 8  #: paths in the training mixture (1 = hard argmax)
    mixture_temperature: float = 1.0  #: softmax temperature over the top-k path logits
    dropout: float = 0.1
    use_gnn: bool = True  #: False: read the score out of f'_K directly
    use_commentary: bool = True  #: False: no f_C branch, no semantic loss
    ikg_threshold: float = 1.0  #: c in tau = c / (number of candidate edges)
    #: how l* and the training mixture are found: ``exhaustive`` scores all B^K paths (block
    #: assembly); ``beam`` and ``mcts`` search the tree (kept/model/search.py) for deep trees
    search: str = "exhaustive"
    beam_width: int = 8  #: prefixes kept per level by ``search=beam``
    mcts_simulations: int = 200  #: UCT simulations per recording for ``search=mcts``
    mcts_c: float = 1.4  #: UCT exploration constant
    #: ``beam``/``mcts``: paths a search returns per recording; the mixture takes the best
    #: ``top_k`` of them and the KL compares the pair's distributions over both recordings' paths
    search_top: int = 32
    sentence_encoder: Optional[str] = None  #: path or hub id; default: bundled all-MiniLM-L6-v2
    #: a frozen per-category ridge on the block statistics of every (segment, node) adds its
    #: score to the network's (which learns the residual) and teaches the path values
    #: (kept/model/stats_branch.py); false: the paper's score head alone
    stats_branch: bool = True
    #: weight w of the network's score next to the statistics branch's at inference; null:
    #: chosen on the validation split from 0, 0.25, 0.5, 0.75, 1: the smallest w within one bootstrap standard error of the best val rho
    net_weight: Optional[float] = None
    #: once val has chosen the epoch and w, refit the statistics branch on train + val (closed
    #: form, so more recordings cost nothing; the classical baselines fit on the same ones)
    stats_refit: bool = True
    #: ``residual``: the network learns the residual of the branch's out-of-fold predictions and
    #: s_hat = s_stats + w s_net; ``blend``: the network learns the score on its own and
    #: s_hat = (1 - w) s_stats + w s_net (w chosen on val either way)
    stats_mode: str = "residual"
    #: offer the branch's cross-validation the phase-aligned statistics: each recording warped
    #: by DTW onto its category's template, pooled over categories (kept/model/alignment_stats.py)
    stats_aligned: bool = True


@dataclass
class LossConfig:
    """Weights of docs/method.md sections 6-7: L = L_score + a1 L_semantic + a2 (L_comment + L_ce) + a3 L_KL."""

    semantic: float = 0.1  #: a1
    text: float = 0.5  #: a2, weight of L_comment + L_ce (text branch, docs/method.md section 7)
    kl: float = 0.1  #: a3
    kl_symmetric: bool = True  #: mean of both KL directions (False: KL(p1 || p2) only)
    #: pair term: squared error of the predicted score difference of the two recordings
    #: against the true one (CoRe's relative regression), in normalised units
    rank: float = 1.0
    #: path values taught by the statistics branch: Q(l) regressed onto exp((pen(l) - max pen) / T),
    #: pen(l) the standardised score penalty path l watches (needs model.stats_branch)
    path: float = 1.0
    path_temperature: float = 0.5  #: temperature of the path teacher's softmax (standardised penalties)


@dataclass
class TrainConfig:
    """The Lightning trainer and the optimiser."""

    max_epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    accelerator: str = "cpu"  #: ``cpu``, ``gpu``, ``auto``, ...
    devices: Any = 1  #: an int, a list of ids, or ``auto``
    strategy: str = "auto"  #: e.g. ``ddp`` for several GPUs
    precision: str = "32-true"
    gradient_clip: float = 1.0
    progress_bar: bool = True
    eval_batch_size: int = 64  #: recordings per batch at evaluation
    #: which epoch's weights become model.pt: ``best`` (highest val rho; the last epoch when
    #: there is no val split) or ``last``
    keep: str = "best"


DEFAULT_PROMPT = "Please generate the action difference between Player 1 and Player 2 given their respective videos."


@dataclass
class DecoderConfig:
    """The difference-description decoder (docs/method.md section 7).

    Ablation "without residual graph tokens": ``use_residual=false``.
    """

    model: str | None = None  #: local path or hub id of a causal LM; None: small GPT-2 trained from scratch
    tokenizer: str | None = None  #: default: bundled MiniLM tokenizer (model None) or the model's own
    layers: int = 2  #: from-scratch decoder: transformer blocks
    heads: int = 4  #: from-scratch decoder: attention heads (``hidden`` must be divisible by it)
    hidden: int = 256  #: from-scratch decoder: width d'
    dropout: float = 0.1  #: from-scratch decoder: residual, embedding and attention dropout
    max_length: int = 64  #: description tokens (with the final eos), longer ones are truncated
    max_positions: int = 512  #: from-scratch decoder: n_positions (>= L_prefix + 1 + max_length)
    use_residual: bool = True  #: False: ablation "without residual graph tokens" (no T_dKG)
    lora_rank: int = 0  #: > 0: peft LoRA adapters on a pretrained decoder (``model`` must be set)
    prompt: str = DEFAULT_PROMPT  #: instruction appended to the graph tokens
    comment_top_k: int = 32  #: L_comment surrogate over the k likeliest tokens per position (0: all)
    pairs_per_batch: int = 8  #: text losses on the first n described pairs of each (shuffled) batch (0: all)
    enabled: bool = True  #: train the text branch when the training pairs have descriptions
    #: ``retrieval``: the nearest described training pair in the model's reading, verdict edited
    #: to agree with the scores (:mod:`kept.model.memory`); ``decoder``: train and use the decoder
    generator: str = "retrieval"
    #: retrieval: among the ``rerank_candidates`` nearest pairs, take the description that best names
    #: the body parts of each recording's ``rerank_parts`` most score-losing blocks (0: the nearest;
    #: statistics branch only); ``rerank_penalty``: cost of each other body part it names
    rerank_parts: int = 4
    rerank_candidates: int = 40
    rerank_penalty: float = 0.5
    num_beams: int = 1  #: generation at evaluation: 1 = greedy
    no_repeat_ngram: int = 6  #: generation never repeats a token n-gram of this size (0: off)
    restrict_vocab: bool = True  #: greedy decoding emits only tokens of the training descriptions


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    text: DecoderConfig = field(default_factory=DecoderConfig)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                base: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then ``base``, then a YAML file, then ``key=value`` overrides; type-checked.

    Args:
        path: a YAML file with any subset of the keys (None: defaults only).
        overrides: dotted ``key=value`` strings, e.g. ``["model.depth=5"]``.
        base: a nested dict of keys (e.g. the config saved with a trained model).

    Returns:
        The :class:`RunConfig`.
    """
    run = load_structured(RunConfig, path, overrides, base, example="model.depth=5")
    _check(run)
    return run


def load_structured(schema: type, path: str | Path | None = None, overrides: Sequence[str] = (),
                    base: dict[str, Any] | None = None, example: str = "section.key=value"):
    """Any config dataclass from defaults, ``base``, a YAML file and ``key=value`` overrides, in
    that order, with OmegaConf's type checks turned into ``ValueError`` naming the key (shared
    by :func:`load_config` and :func:`kept.grpo.config.load_grpo_config`).

    Args:
        schema: the dataclass (its field defaults are the defaults).
        example: an override shown in the error for a malformed one.
    """
    cfg = OmegaConf.structured(schema)
    try:
        if base is not None:
            cfg = OmegaConf.merge(cfg, OmegaConf.create(base))
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise FileNotFoundError(f"config file not found: {path}")
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: a config file must be a YAML mapping of sections")
            cfg = OmegaConf.merge(cfg, OmegaConf.create(loaded))
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ValueError(f"overrides must look like key=value (e.g. {example}), got {bad}")
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as err:
        where = f" in {path}" if path is not None else ""
        key = getattr(err, "full_key", None)
        msg = str(getattr(err, "msg", None) or err).split("\n")[0]
        raise ValueError(f"invalid configuration{where}: {key + ': ' if key else ''}{msg}") from None
    return OmegaConf.to_object(cfg)


def _check(cfg: RunConfig) -> None:
    if cfg.data.dataset not in ("adr", "folder", "jigsaws"):
        raise ValueError(f"data.dataset must be 'adr', 'folder' or 'jigsaws', got '{cfg.data.dataset}'")
    deepest = 8 if cfg.model.search == "exhaustive" else 16
    if not 2 <= cfg.model.depth <= deepest:
        raise ValueError(f"model.depth must be in 2..{deepest} with model.search={cfg.model.search} "
                         f"(exhaustive scores all B^K paths; beam or mcts go deeper), got {cfg.model.depth}")
    if cfg.data.num_keyframes < cfg.model.depth:
        raise ValueError(
            f"data.num_keyframes ({cfg.data.num_keyframes}) must be at least model.depth "
            f"({cfg.model.depth}): every segment needs a keyframe"
        )
    if cfg.model.dim % cfg.model.heads:
        raise ValueError(f"model.dim ({cfg.model.dim}) must be divisible by model.heads ({cfg.model.heads})")
    if cfg.model.search not in ("exhaustive", "beam", "mcts"):
        raise ValueError(f"model.search must be 'exhaustive', 'beam' or 'mcts', got '{cfg.model.search}'")
    if cfg.model.beam_width < 1 or cfg.model.mcts_simulations < 1 or cfg.model.search_top < 1:
        raise ValueError("model.beam_width, model.mcts_simulations and model.search_top must be >= 1, got "
                         f"{cfg.model.beam_width}, {cfg.model.mcts_simulations}, {cfg.model.search_top}")
    if cfg.model.top_k < 1:
        raise ValueError(f"model.top_k must be >= 1, got {cfg.model.top_k}")
    if cfg.model.stats_mode not in ("residual", "blend"):
        raise ValueError(f"model.stats_mode must be 'residual' or 'blend', got '{cfg.model.stats_mode}'")
    if cfg.text.rerank_parts < 0 or cfg.text.rerank_candidates < 1 or cfg.text.rerank_penalty < 0:
        raise ValueError(f"text.rerank_parts must be >= 0, text.rerank_candidates >= 1 and text.rerank_penalty "
                         f">= 0; got {cfg.text.rerank_parts}, {cfg.text.rerank_candidates}, {cfg.text.rerank_penalty}")
    if cfg.text.generator not in ("retrieval", "decoder"):
        raise ValueError(f"text.generator must be 'retrieval' or 'decoder', got '{cfg.text.generator}'")
    if cfg.train.keep not in ("best", "last"):
        raise ValueError(f"train.keep must be 'best' or 'last', got '{cfg.train.keep}'")
    if cfg.model.net_weight is not None and cfg.model.net_weight < 0:
        raise ValueError(f"model.net_weight must be >= 0 or null (chosen on val), got {cfg.model.net_weight}")
    if cfg.loss.path > 0 and not cfg.model.stats_branch:
        raise ValueError("loss.path > 0 needs model.stats_branch=true (the statistics branch teaches the "
                         "path values); set loss.path=0 for a model without it")
    if cfg.loss.path_temperature <= 0:
        raise ValueError(f"loss.path_temperature must be > 0, got {cfg.loss.path_temperature}")
    if not 0 <= cfg.data.val_fraction < 1:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {cfg.data.val_fraction}")


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain nested dict of a config (for YAML and checkpoints)."""
    return asdict(cfg)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the full config as YAML, atomically."""
    from kept.io import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
