"""``kept sft`` and ``kept grpo`` on a tiny random Qwen2.5-VL, on the CPU, offline.

A tiny Qwen2.5-VL built from a config runs GRPO steps on CPU with the real
reward functions and the real data pipeline (``kept grpo prepare`` rows, tiny images), and its
parameters change. GRPO starts from the tiny model after ``kept sft`` (fixture ``sft_vlm``):
a never-trained model writes noise, every reward of noise is 0, all advantages are 0 and GRPO
has no gradient, so the group must hold answers that the rewards can tell apart, as after the
real recipe's stage one.
"""

from __future__ import annotations

import json

import pytest
import torch

from kept.cli import main
from kept.grpo.config import load_grpo_config
from kept.grpo.model import load_model, load_processor

pytest.importorskip("trl")


def _params(folder) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in load_model(str(folder), "float32").named_parameters()}


def _changed(before: dict, after: dict) -> int:
    assert before.keys() == after.keys()
    return sum(not torch.equal(before[n], after[n]) for n in before)


def test_processor_without_torchvision(tiny_vlm):
    from PIL import Image
    from transformers import Qwen2_5_VLProcessor

    processor = load_processor(str(tiny_vlm))
    assert isinstance(processor, Qwen2_5_VLProcessor) and processor.tokenizer.padding_side == "left"
    saved = json.loads((tiny_vlm / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"
    messages = [[{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (56, 56))},
                                              {"type": "text", "text": "Player 1"}]}]]
    enc = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt")
    # a 56 x 56 image is 4 x 4 patches of 14 pixels, merged 2 x 2 into 4 image tokens
    assert enc["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert int((enc["input_ids"] == processor.image_token_id).sum()) == 4


def test_sft_with_lora_merges_into_a_plain_model(tiny_vlm, prepared, cpu_overrides, tmp_path):
    out = tmp_path / "lora"
    argv = ["sft", "--data", str(prepared), "--model", str(tiny_vlm), "--out", str(out), "model.dtype=float32",
            "model.lora_rank=4", "model.lora_alpha=8", "sft.max_steps=2", "sft.learning_rate=1e-2",
            *(f"sft.{c}" for c in cpu_overrides)]
    assert main(argv) == 0
    assert (out / "adapter" / "adapter_config.json").is_file()
    before, after = _params(tiny_vlm), _params(out)  # same parameter names: the adapter is merged
    assert _changed(before, after) > 0
    assert load_grpo_config(out / "kept_grpo.yaml").model.lora_rank == 4
    assert json.loads((out / "train_log.json").read_text())["global_step"] == 2


def test_sft_learns_the_answers(tiny_vlm, sft_vlm):
    log = json.loads((sft_vlm / "train_log.json").read_text())
    losses = [h["loss"] for h in log["log_history"] if "loss" in h]
    assert log["global_step"] == 100 and losses[-1] < 0.2 * losses[0]
    assert _changed(_params(tiny_vlm), _params(sft_vlm)) > 0


def test_two_grpo_steps_with_the_real_rewards_change_the_parameters(sft_vlm, prepared, cpu_overrides, tmp_path):
    out = tmp_path / "grpo"
    argv = ["grpo", "--data", str(prepared), "--model", str(sft_vlm), "--out", str(out), "model.dtype=float32",
            "grpo.max_steps=2", "grpo.learning_rate=1e-3", "grpo.beta=0.04", "grpo.num_generations=3",
            "grpo.max_completion_length=160", "grpo.temperature=1.5", *(f"grpo.{c}" for c in cpu_overrides),
            "grpo.per_device_batch_size=6"]  # 2 prompts x 3 completions per step
    assert main(argv) == 0  # `kept grpo --data ...` is `kept grpo train --data ...`
    log = json.loads((out / "train_log.json").read_text())
    steps = [h for h in log["log_history"] if "reward" in h]
    assert log["global_step"] == 2 and len(steps) == 2
    names = ["format_reward", "temporal_iou_reward", "action_reward", "assessment_reward", "kept_score_reward",
             "kept_preference_reward", "kept_path_reward", "kept_description_reward"]
    assert all(f"rewards/{n}/mean" in steps[0] for n in names)
    assert max(h["reward_std"] for h in steps) > 0  # the group's answers were told apart
    assert any(h["kl"] > 0 for h in steps)  # beta > 0: the reference model, rebuilt from the SFT folder
    assert _changed(_params(sft_vlm), _params(out)) > 0
    assert load_processor(str(out)).tokenizer.chat_template == load_processor(str(sft_vlm)).tokenizer.chat_template


def test_grpo_batch_must_hold_whole_groups(prepared, tiny_vlm, cpu_overrides, tmp_path, capsys):
    argv = ["grpo", "train", "--data", str(prepared), "--model", str(tiny_vlm), "--out", str(tmp_path / "x"),
            *(f"grpo.{c}" for c in cpu_overrides), "grpo.per_device_batch_size=1", "grpo.num_generations=4"]
    assert main(argv) == 2
    assert "must be a multiple of grpo.num_generations (4)" in capsys.readouterr().err


def test_tiny_model_command(tmp_path, capsys):
    assert main(["grpo", "tiny-model", "--out", str(tmp_path / "t")]) == 0
    assert "written to" in capsys.readouterr().out
    model = load_model(str(tmp_path / "t"), "float32")
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
