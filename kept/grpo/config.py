"""Run configuration of the VLM fine-tuning: typed dataclasses, YAML files, ``key=value`` overrides.

One dataclass per component, composed into :class:`GRPORunConfig`, loaded like
:func:`kept.config.load_config`: defaults, then a YAML file (``configs/grpo/*.yaml``), then dotted
overrides (``grpo.beta=0.04 model.lora_rank=64``). OmegaConf checks the types, so a typo or a
wrong type fails with the key's name. ``kept grpo prepare`` reads ``data``; ``kept sft`` reads
``model`` and ``sft``; ``kept grpo`` reads ``model``, ``grpo`` and ``rewards``; ``kept grpo eval``
reads ``model`` and ``eval``.

The defaults are HieroAction's recipe (Qwen2.5-VL-7B-Instruct on 4 A100 40 GB, per-device batch 1
with 4 accumulation steps = global batch 16; SFT: AdamW, learning rate 2e-5, 25 epochs, seed 42;
GRPO: learning rate 1e-6, KL coefficient beta 0.04, G = 8 samples per prompt at temperature 1.5,
10 epochs), adapted to pairs: shorter answers (``max_completion_length`` 1024 instead of 3072),
and keyframe images of both recordings instead of one video.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from kept.config import load_structured
from kept.grpo.rewards import DEFAULT_LAMBDA, REWARDS

__all__ = ["PairDataConfig", "VLMConfig", "TrainStageConfig", "SFTStageConfig", "GRPOStageConfig", "RewardConfig",
           "VLMEvalConfig", "GRPORunConfig", "load_grpo_config", "save_grpo_config", "grpo_config_to_dict",
           "DEFAULT_SYSTEM_PROMPT", "DEFAULT_QUESTION", "QUESTION_FIELDS", "PRECISIONS"]

DEFAULT_SYSTEM_PROMPT = (
    "You compare two recordings of the same skilled action, Player 1 and Player 2, each shown as keyframes "
    "in time order. Reason in four stages and write each inside its tag, in this order: "
    "<look> what you see of each player </look> "
    "<recognition> the action, its sub-actions, their time segments as fractions of the recording "
    "(start-end), and the body part to watch in each segment </recognition> "
    "<assessment> a score for each player </assessment> "
    "<answer> who is better, and a description of how the two performances differ </answer>. "
    "Use this format: <look>Player 1: ... Player 2: ...</look>"
    "<recognition>Action: .... Sub-actions: ..., .... Segments: 0.00-0.50, 0.50-1.00. "
    "Body parts: ..., ....</recognition>"
    "<assessment>Player 1 score: X. Player 2 score: Y.</assessment>"
    "<answer>Better: Player 1, Player 2 or equal. Description: ...</answer>"
)

DEFAULT_QUESTION = (
    "Player 1 and Player 2 perform the same action. Score each performance on a scale from {score_min} "
    "to {score_max}, say who is better and describe how the two performances differ."
)

#: Fields the question may use (``str.format``): the dataset's score range and the keyframe count.
QUESTION_FIELDS = ("score_min", "score_max", "keyframes")


@dataclass
class PairDataConfig:
    """How ``kept grpo prepare`` turns pairs of recordings into VLM prompts."""

    keyframes: int = 4  #: N evenly spaced keyframes per recording (images per player)
    image_size: int = 336  #: longest image side in pixels (Qwen: multiples of 28 avoid a resize)
    swap_probability: float = 0.5  #: chance that a pair is presented as (b, a) instead of (a, b)
    #: splits whose pairs are written in both orders (one row each, same pair_id), so that the
    #: bias audit of ``kept grpo eval`` can check whether the verdict follows the recording
    both_orders: list[str] = field(default_factory=lambda: ["test"])
    seed: int = 0  #: seed of the presentation order
    video_column: str = "video"  #: samples.csv column of a recording's video (relative to the dataset root)
    render: str = "auto"  #: ``auto``: video frames where a recording has a video, else skeleton renders; ``skeleton``
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    player_label: str = "Player {n}:"  #: text before each player's images (``{n}`` = 1 or 2)
    question: str = DEFAULT_QUESTION  #: may use {score_min}, {score_max}, {keyframes}
    kept_batch_size: int = 64  #: recordings per KEPT forward pass


@dataclass
class VLMConfig:
    """The vision-language model and how it is adapted."""

    #: hub id or local folder (``--model`` sets it); the default hub id downloads about 16 GB from
    #: the Hugging Face hub on first use (then it is in the local HF cache)
    name: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    dtype: str = "bfloat16"  #: weights' dtype when loading: bfloat16, float16, float32 or auto
    attn_implementation: Optional[str] = None  #: e.g. flash_attention_2 (None: transformers' default, sdpa)
    lora_rank: int = 0  #: 0: full fine-tuning; > 0: peft LoRA of this rank (merged into the saved model)
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    freeze_vision: bool = False  #: keep the vision tower fixed (full fine-tuning of the language model only)


@dataclass
class TrainStageConfig:
    """Trainer settings shared by both stages (HieroAction: 4 GPUs x 1 x 4 accumulation = 16)."""

    learning_rate: float = 2e-5
    epochs: float = 25.0
    max_steps: int = -1  #: > 0 overrides epochs
    per_device_batch_size: int = 1  #: GRPO: completions per device and step, not prompts
    gradient_accumulation_steps: int = 4
    gradient_checkpointing: bool = True
    #: mixed precision: ``auto`` (bf16 on a GPU with native bf16, i.e. Ampere or newer; fp16 on an
    #: older GPU; fp32 on the CPU), ``bf16``, ``fp16`` or ``fp32`` (see :func:`kept.grpo.train.resolve_precision`)
    precision: str = "auto"
    bf16: Optional[bool] = None  #: deprecated: true means precision=bf16, false precision=fp32 (None: precision)
    use_cpu: bool = False  #: train on the CPU even where a GPU is visible (tests, smoke runs)
    seed: int = 42
    weight_decay: float = 0.0
    warmup_steps: float = 0.0  #: >= 1: warmup steps; in [0, 1): share of the training steps
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    save_steps: int = 500  #: checkpoint every n steps under OUT/checkpoints (resumable with ``--resume``)
    save_total_limit: int = 2
    report_to: str = "none"  #: e.g. tensorboard or wandb
    dataloader_num_workers: int = 0


@dataclass
class SFTStageConfig(TrainStageConfig):
    """Stage one: supervised fine-tuning on the reference answers."""

    max_length: Optional[int] = None  #: None: never truncate (truncating image tokens breaks the batch)


@dataclass
class GRPOStageConfig(TrainStageConfig):
    """Stage two: GRPO with the hierarchical and KEPT rewards (:mod:`kept.grpo.rewards`)."""

    learning_rate: float = 1e-6
    epochs: float = 10.0
    beta: float = 0.04  #: KL coefficient (> 0 keeps a frozen reference model)
    num_generations: int = 8  #: G, completions per prompt
    temperature: float = 1.5  #: sampling temperature of the completions (HieroAction: 1.5)
    top_p: float = 1.0
    max_completion_length: int = 1024
    num_iterations: int = 1  #: optimisation passes per generation batch (mu)
    loss_type: str = "grpo"  #: TRL loss aggregation: grpo, dapo, dr_grpo, bnpo, ...
    scale_rewards: str = "group"  #: group, batch or none (TRL)
    log_completions: bool = False
    ds3_gather_for_generation: bool = True  #: ZeRO-3: gather the weights for generation (fast, needs the memory)


@dataclass
class RewardConfig:
    """Which rewards, with which weights (defaults: :data:`kept.grpo.rewards.DEFAULT_WEIGHTS`)."""

    names: Optional[list[str]] = None  #: None: all of :data:`kept.grpo.rewards.REWARDS`
    weights: dict[str, float] = field(default_factory=dict)  #: per-name overrides of the default weights
    score_lambda: float = DEFAULT_LAMBDA  #: lambda of the score rewards (assessment and KEPT score)
    encoder: Optional[str] = None  #: sentence encoder of the description reward (None: bundled MiniLM)


@dataclass
class VLMEvalConfig:
    """``kept grpo eval``: greedy answers of the fine-tuned model."""

    max_new_tokens: int = 1024
    batch_size: int = 4  #: prompts per generate call
    text_metrics: bool = True  #: BLEU/METEOR/ROUGE/CIDEr of the descriptions (needs Java)
    device: Optional[str] = None  #: torch device of the model (None: cuda when available, else cpu)


@dataclass
class GRPORunConfig:
    data: PairDataConfig = field(default_factory=PairDataConfig)
    model: VLMConfig = field(default_factory=VLMConfig)
    sft: SFTStageConfig = field(default_factory=SFTStageConfig)
    grpo: GRPOStageConfig = field(default_factory=GRPOStageConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    eval: VLMEvalConfig = field(default_factory=VLMEvalConfig)


def load_grpo_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                     base: dict[str, Any] | None = None) -> GRPORunConfig:
    """Defaults, then ``base``, then a YAML file, then ``key=value`` overrides; type-checked.

    Args:
        path: a YAML file with any subset of the keys (None: defaults only).
        overrides: dotted ``key=value`` strings, e.g. ``["grpo.beta=0.0"]``.
        base: a nested dict of keys (e.g. the config saved by ``kept grpo prepare``).

    Returns:
        The :class:`GRPORunConfig`.
    """
    run = load_structured(GRPORunConfig, path, overrides, base, example="grpo.beta=0.04")
    _check(run)
    return run


def _check(cfg: GRPORunConfig) -> None:
    d = cfg.data
    if d.keyframes < 1:
        raise ValueError(f"data.keyframes must be >= 1, got {d.keyframes}")
    if d.image_size < 28:
        raise ValueError(f"data.image_size must be at least 28 pixels (one merged Qwen patch), got {d.image_size}")
    if not 0 <= d.swap_probability <= 1:
        raise ValueError(f"data.swap_probability must be in [0, 1], got {d.swap_probability}")
    if d.render not in ("auto", "skeleton"):
        raise ValueError(f"data.render must be 'auto' or 'skeleton', got '{d.render}'")
    bad_splits = [s for s in d.both_orders if s not in ("train", "val", "test")]
    if bad_splits:
        raise ValueError(f"data.both_orders lists unknown splits {bad_splits}; use train, val or test")
    if "{n}" not in d.player_label:
        raise ValueError(f"data.player_label must contain {{n}} (the player number), got '{d.player_label}'")
    fields = {name for _, name, _, _ in string.Formatter().parse(d.question) if name}
    unknown = sorted(fields - set(QUESTION_FIELDS))
    if unknown:
        raise ValueError(f"data.question uses unknown fields {unknown}; it may use {list(QUESTION_FIELDS)} "
                         "(write literal braces as {{ and }})")
    if cfg.model.lora_rank < 0:
        raise ValueError(f"model.lora_rank must be >= 0 (0: full fine-tuning), got {cfg.model.lora_rank}")
    for name in ("sft", "grpo"):
        stage = getattr(cfg, name)
        if stage.learning_rate <= 0:
            raise ValueError(f"{name}.learning_rate must be positive, got {stage.learning_rate}")
        if stage.per_device_batch_size < 1 or stage.gradient_accumulation_steps < 1:
            raise ValueError(f"{name}.per_device_batch_size and {name}.gradient_accumulation_steps must be >= 1")
        _fold_bf16(stage, name)
    g = cfg.grpo
    if g.num_generations < 2:
        raise ValueError(f"grpo.num_generations must be >= 2 (GRPO compares completions within a group), "
                         f"got {g.num_generations}")
    if g.beta < 0:
        raise ValueError(f"grpo.beta must be >= 0, got {g.beta}")
    if g.temperature <= 0:
        raise ValueError(f"grpo.temperature must be positive, got {g.temperature}")
    r = cfg.rewards
    unknown = [n for n in (r.names or []) + list(r.weights) if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown rewards {unknown} in rewards.names/rewards.weights; known: {list(REWARDS)}")
    if r.score_lambda <= 0:
        raise ValueError(f"rewards.score_lambda must be positive, got {r.score_lambda}")
    if cfg.eval.batch_size < 1 or cfg.eval.max_new_tokens < 1:
        raise ValueError("eval.batch_size and eval.max_new_tokens must be >= 1")


#: values of ``sft.precision`` / ``grpo.precision``
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def _fold_bf16(stage: TrainStageConfig, name: str) -> None:
    """Check ``<name>.precision`` and fold the deprecated ``<name>.bf16`` into it (older configs and
    saved ``kept_grpo.yaml`` files have ``bf16: true|false``), leaving ``bf16`` None."""
    if stage.precision not in PRECISIONS:
        raise ValueError(f"{name}.precision must be one of {', '.join(PRECISIONS)}, got '{stage.precision}'")
    if stage.bf16 is None:
        return
    legacy = "bf16" if stage.bf16 else "fp32"
    if stage.precision not in ("auto", legacy):
        raise ValueError(f"{name}.bf16={str(stage.bf16).lower()} (deprecated) contradicts "
                         f"{name}.precision={stage.precision}; set {name}.precision only")
    stage.precision, stage.bf16 = legacy, None


def grpo_config_to_dict(cfg: GRPORunConfig) -> dict[str, Any]:
    """Plain nested dict of a config (for YAML and JSON)."""
    return asdict(cfg)


def save_grpo_config(cfg: GRPORunConfig, path: str | Path) -> None:
    """Write the full config as YAML, atomically."""
    from kept.io import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(grpo_config_to_dict(cfg), sort_keys=False))
