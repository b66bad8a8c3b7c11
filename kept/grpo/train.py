"""``kept sft`` and ``kept grpo``: fine-tune a vision-language model on prepared pairs with TRL.

Stage one (:func:`run_sft`) is TRL's ``SFTTrainer`` on prompt-completion rows: the prompt with
both players' keyframes, the reference answer as the assistant turn, loss on the answer only.
Stage two (:func:`run_grpo`) is TRL's ``GRPOTrainer`` with the hierarchical and KEPT rewards of
:func:`kept.grpo.rewards.reward_functions` and their weights (``GRPOConfig.reward_weights``); the
reward functions read the prepared rows' columns. Neither trainer is subclassed or patched.

The model is loaded after the trainer's config is built, so that under DeepSpeed ZeRO-3
(``accelerate launch --config_file configs/grpo/accelerate_zero3.yaml``) transformers partitions
it while loading. With ``model.lora_rank > 0`` TRL wraps it with a peft LoRA adapter; the adapter
is saved under ``OUT/adapter`` and merged into a full model in ``OUT``, so that both stages always
leave a plain model folder (what the next stage, ``kept grpo eval`` and GRPO's reference model,
rebuilt by TRL from ``config._name_or_path``, load). ``OUT`` holds the model, the processor
(:func:`kept.grpo.model.load_processor`), ``kept_grpo.yaml`` (the run config) and
``train_log.json`` (the trainer's log history); ``OUT/checkpoints`` the resumable checkpoints.

Mixed precision follows the device (``sft.precision`` / ``grpo.precision``, default ``auto``,
:func:`resolve_precision`): bf16 on a GPU with native bf16, fp16 on an older GPU, fp32 on the
CPU, so that ``kept sft`` and ``kept grpo`` run on a machine without a GPU instead of stopping
with transformers' "Your setup doesn't support bf16/gpu". bfloat16 weights (``model.dtype``'s
default) load as float32 when the run is not in bf16 (:func:`training_dtype`).

*Not done*: HieroAction keeps only "the response with the highest reward" of each group for
training; here all G responses of a group enter the standard GRPO objective with their
group-relative advantages, as TRL implements it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from kept.grpo.config import GRPORunConfig, TrainStageConfig, save_grpo_config
from kept.grpo.data import load_rows, pair_dataset
from kept.io import atomic_write_json

__all__ = ["run_sft", "run_grpo", "training_arguments", "resolve_precision", "training_dtype"]

CONFIG_FILE = "kept_grpo.yaml"
LOG_FILE = "train_log.json"


def _require_trl():
    try:
        import trl  # noqa: F401
    except ImportError as err:
        raise ImportError("fine-tuning needs TRL, peft and accelerate: pip install -e '.[grpo]'") from err


def _native_bf16_gpu() -> bool:
    """Whether the visible GPU computes in bf16 natively (Ampere or newer), not by emulation."""
    import torch

    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch before 2.3 has no including_emulation (and counts native support only)
        return bool(torch.cuda.is_bf16_supported())


def resolve_precision(precision: str, use_cpu: bool = False, key: str = "precision") -> str:
    """The trainer's mixed precision, ``bf16``, ``fp16`` or ``fp32``, from what the device supports.

    ``auto``: bf16 where a GPU computes in bf16 natively (``torch.cuda.is_available()`` and
    ``torch.cuda.is_bf16_supported()``, Ampere or newer), fp16 on an older GPU, fp32 on the CPU
    (no GPU, or ``use_cpu``). An explicit ``bf16`` needs such a GPU (or ``use_cpu``: the CPU's bf16
    autocast), an explicit ``fp16`` a GPU; otherwise a ``ValueError`` names ``key``, where
    transformers would stop with "Your setup doesn't support bf16/gpu".

    Args:
        precision: ``auto``, ``bf16``, ``fp16`` or ``fp32``.
        use_cpu: training runs on the CPU even where a GPU is visible.
        key: the config key, for the error (e.g. ``sft.precision``).
    """
    import torch

    gpu = not use_cpu and torch.cuda.is_available()
    bf16_gpu = gpu and _native_bf16_gpu()
    if precision == "auto":
        return "bf16" if bf16_gpu else "fp16" if gpu else "fp32"
    if precision == "bf16" and not (bf16_gpu or use_cpu):
        found = "its GPU has no native bf16 (pre-Ampere)" if gpu else "it has no GPU"
        raise ValueError(f"{key}=bf16 needs a GPU with bf16 support (Ampere or newer), and {found}: set "
                         f"{key}=auto (bf16 where supported, else fp16 on a GPU, fp32 on the CPU), fp16 or fp32")
    if precision == "fp16" and not gpu:
        raise ValueError(f"{key}=fp16 needs a GPU and training runs on the CPU: set {key}=auto or fp32")
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"{key} must be auto, bf16, fp16 or fp32, got '{precision}'")
    return precision


def training_dtype(dtype: str, precision: str) -> str:
    """The weights' dtype for training: ``model.dtype``, except that bfloat16 weights (the default,
    made for bf16 mixed precision) load as float32 when training runs in fp16 or fp32 (fp16's
    gradient scaling needs float32 master weights; pre-Ampere GPUs and many CPUs emulate bf16)."""
    return "float32" if dtype == "bfloat16" and precision != "bf16" else dtype


def training_arguments(stage: TrainStageConfig, out: Path, key: str = "stage") -> dict[str, Any]:
    """The ``transformers.TrainingArguments`` keys shared by ``SFTConfig`` and ``GRPOConfig``;
    ``key`` is the stage's config section (for errors about ``<key>.precision``)."""
    precision = resolve_precision(stage.precision, stage.use_cpu, f"{key}.precision")
    return {
        "output_dir": str(out / "checkpoints"), "learning_rate": stage.learning_rate,
        "num_train_epochs": stage.epochs, "max_steps": stage.max_steps,
        "per_device_train_batch_size": stage.per_device_batch_size,
        "gradient_accumulation_steps": stage.gradient_accumulation_steps,
        "gradient_checkpointing": stage.gradient_checkpointing,
        "bf16": precision == "bf16", "fp16": precision == "fp16", "use_cpu": stage.use_cpu,
        "seed": stage.seed, "data_seed": stage.seed, "weight_decay": stage.weight_decay,
        "warmup_steps": stage.warmup_steps, "lr_scheduler_type": stage.lr_scheduler_type,
        "max_grad_norm": stage.max_grad_norm, "logging_steps": stage.logging_steps,
        "save_strategy": "steps", "save_steps": stage.save_steps, "save_total_limit": stage.save_total_limit,
        "report_to": stage.report_to, "dataloader_num_workers": stage.dataloader_num_workers,
    }


def _num_processes() -> int:
    """Processes of the launch (``accelerate launch`` and ``torchrun`` set WORLD_SIZE), read from
    the environment so that accelerate's process state is first built by the trainer's config."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _check_grpo_batch(cfg: GRPORunConfig) -> None:
    """TRL's rule, said in this config's keys: each generation batch holds whole groups of G."""
    g = cfg.grpo
    procs = _num_processes()
    batch = g.per_device_batch_size * procs * g.gradient_accumulation_steps
    if batch % g.num_generations:
        raise ValueError(
            f"grpo.per_device_batch_size ({g.per_device_batch_size}) x processes ({procs}) x "
            f"grpo.gradient_accumulation_steps ({g.gradient_accumulation_steps}) = {batch} completions per "
            f"generation batch, which must be a multiple of grpo.num_generations ({g.num_generations}); "
            "e.g. 1 x 4 GPUs x 4 with 8 generations (2 prompts per batch)"
        )


def _load(cfg: GRPORunConfig, args):
    """Model (vision tower frozen if asked) and processor of ``cfg.model``, the weights in the dtype
    that the trainer's mixed precision ``args`` needs (:func:`training_dtype`)."""
    from kept.grpo.model import load_model, load_processor

    processor = load_processor(cfg.model.name)
    model = load_model(cfg.model.name, _dtype(cfg, args), cfg.model.attn_implementation)
    if cfg.model.freeze_vision:
        visual = getattr(model, "visual", None)
        visual = model.model.visual if visual is None else visual
        for p in visual.parameters():
            p.requires_grad_(False)
    return model, processor


def _dtype(cfg: GRPORunConfig, args) -> str:
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    return training_dtype(cfg.model.dtype, precision)


def _peft_config(cfg: GRPORunConfig):
    from kept.grpo.model import lora_config

    m = cfg.model
    return lora_config(m.lora_rank, m.lora_alpha, m.lora_dropout, m.lora_target_modules) if m.lora_rank > 0 else None


def _save(trainer, processor, cfg: GRPORunConfig, out: Path, started: float) -> dict:
    """Write the trained model as a plain model folder (LoRA merged), the processor and the logs."""
    lora = cfg.model.lora_rank > 0
    trainer.save_model(str(out / "adapter") if lora else str(out))
    trainer.accelerator.wait_for_everyone()
    args = trainer.args
    summary = {"global_step": trainer.state.global_step, "seconds": round(time.time() - started, 1),
               "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32", "dtype": _dtype(cfg, args),
               "log_history": trainer.state.log_history}
    if trainer.accelerator.is_main_process:
        if lora:
            _merge_adapter(cfg, out, summary["dtype"])
        processor.save_pretrained(str(out))
        save_grpo_config(cfg, out / CONFIG_FILE)
        atomic_write_json(out / LOG_FILE, json.loads(json.dumps(summary, default=float)))
    trainer.accelerator.wait_for_everyone()
    return summary


def _merge_adapter(cfg: GRPORunConfig, out: Path, dtype: str) -> None:
    """Load the base model on the CPU, apply ``OUT/adapter``, merge, and save to ``OUT``."""
    from peft import PeftModel
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from kept.grpo.model import load_model

    unset_hf_deepspeed_config()  # training is over: load the base whole, not partitioned by ZeRO-3
    base = load_model(cfg.model.name, dtype)
    merged = PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload()
    merged.save_pretrained(str(out))


def run_sft(cfg: GRPORunConfig, data_dir: str | Path, out: str | Path, split: str = "train",
            resume: bool = False) -> dict:
    """Stage one: supervised fine-tuning on the reference answers of ``DATA_DIR/<split>.jsonl``.

    Args:
        cfg: run config (``model`` and ``sft``).
        data_dir: folder written by ``kept grpo prepare``.
        out: output folder (model, processor, logs; ``checkpoints/`` during training).
        split: which prepared rows to train on.
        resume: continue from the last checkpoint in ``OUT/checkpoints``.

    Returns:
        ``{"global_step", "seconds", "precision", "dtype", "log_history"}`` (also ``OUT/train_log.json``;
        ``precision`` and ``dtype`` are the trainer's mixed precision and the weights' dtype as resolved).
    """
    from kept.grpo.model import check_model_source

    check_model_source(cfg.model.name)  # before anything slow: a hub id that cannot be downloaded fails here
    _require_trl()
    from trl import SFTConfig, SFTTrainer

    started, out = time.time(), Path(out)
    s = cfg.sft
    args = SFTConfig(**training_arguments(s, out, "sft"), max_length=s.max_length, completion_only_loss=True)
    dataset = pair_dataset(load_rows(data_dir, split), data_dir, kind="sft")
    model, processor = _load(cfg, args)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                         peft_config=_peft_config(cfg))
    trainer.train(resume_from_checkpoint=True if resume else None)
    return _save(trainer, processor, cfg, out, started)


def run_grpo(cfg: GRPORunConfig, data_dir: str | Path, out: str | Path, split: str = "train",
             resume: bool = False) -> dict:
    """Stage two: GRPO on ``DATA_DIR/<split>.jsonl`` with the rewards of ``cfg.rewards``.

    Args:
        cfg: run config (``model``, ``grpo`` and ``rewards``); ``model.name`` is typically the
            output folder of ``kept sft``.
        data_dir: folder written by ``kept grpo prepare``.
        out: output folder.
        split: which prepared rows to train on.
        resume: continue from the last checkpoint in ``OUT/checkpoints``.

    Returns:
        ``{"global_step", "seconds", "precision", "dtype", "log_history"}`` (also ``OUT/train_log.json``;
        ``precision`` and ``dtype`` are the trainer's mixed precision and the weights' dtype as resolved).
    """
    from kept.grpo.model import check_model_source

    check_model_source(cfg.model.name)  # before anything slow: a hub id that cannot be downloaded fails here
    _require_trl()
    from trl import GRPOConfig, GRPOTrainer

    from kept.grpo.rewards import reward_functions

    started, out = time.time(), Path(out)
    _check_grpo_batch(cfg)
    r = cfg.rewards
    funcs, weights = reward_functions(r.names, r.weights or None, lambda_=r.score_lambda, encoder=r.encoder)
    g = cfg.grpo
    args = GRPOConfig(
        **training_arguments(g, out, "grpo"), beta=g.beta, num_generations=g.num_generations, temperature=g.temperature,
        top_p=g.top_p, max_completion_length=g.max_completion_length, num_iterations=g.num_iterations,
        loss_type=g.loss_type, scale_rewards=g.scale_rewards, reward_weights=weights,
        log_completions=g.log_completions, ds3_gather_for_generation=g.ds3_gather_for_generation,
    )
    dataset = pair_dataset(load_rows(data_dir, split), data_dir, kind="grpo")
    model, processor = _load(cfg, args)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                          processing_class=processor, peft_config=_peft_config(cfg))
    trainer.train(resume_from_checkpoint=True if resume else None)
    return _save(trainer, processor, cfg, out, started)
