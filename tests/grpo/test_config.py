"""The VLM run config: HieroAction's defaults, the shipped YAML files, overrides and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kept.grpo.config import GRPORunConfig, grpo_config_to_dict, load_grpo_config, save_grpo_config
from kept.grpo.rewards import DEFAULT_LAMBDA, DEFAULT_WEIGHTS, reward_functions

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "grpo"


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_defaults_are_the_hieroaction_recipe():
    cfg = load_grpo_config()
    assert cfg.model.name == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert (cfg.sft.learning_rate, cfg.sft.epochs, cfg.sft.seed) == (2e-5, 25, 42)
    assert (cfg.grpo.learning_rate, cfg.grpo.beta, cfg.grpo.num_generations, cfg.grpo.temperature) == (1e-6, 0.04, 8, 1.5)
    assert cfg.grpo.epochs == 10
    for stage in (cfg.sft, cfg.grpo):  # 1 per GPU x 4 accumulation (x 4 GPUs = 16)
        assert (stage.per_device_batch_size, stage.gradient_accumulation_steps) == (1, 4)
        assert stage.gradient_checkpointing and stage.precision == "auto" and stage.bf16 is None
    assert (cfg.data.keyframes, cfg.data.swap_probability) == (4, 0.5)
    assert cfg.rewards.score_lambda == DEFAULT_LAMBDA


def test_default_rewards_are_all_with_their_default_weights():
    r = load_grpo_config().rewards
    funcs, weights = reward_functions(r.names, r.weights or None, lambda_=r.score_lambda)
    assert [f.__name__ for f in funcs] == list(DEFAULT_WEIGHTS)
    assert weights == list(DEFAULT_WEIGHTS.values())


@pytest.mark.parametrize("name", ["sft.yaml", "grpo.yaml"])
def test_shipped_run_configs_load(name):
    written = dict(_leaves(yaml.safe_load((CONFIGS / name).read_text())))
    stage = name.removesuffix(".yaml")
    recipe = {"learning_rate", "epochs", "per_device_batch_size", "gradient_accumulation_steps", "precision"}
    recipe |= {"beta", "num_generations", "temperature"} if stage == "grpo" else set()
    assert {f"{stage}.{k}" for k in recipe} | {"model.dtype"} <= set(written)  # the recipe is spelled out
    loaded = dict(_leaves(grpo_config_to_dict(load_grpo_config(CONFIGS / name))))
    for key, value in written.items():
        assert loaded[key] == value, key  # every key of the file reaches the config
    assert written[f"{stage}.per_device_batch_size"] * 4 * written[f"{stage}.gradient_accumulation_steps"] == 16


def test_shipped_launch_configs():
    accelerate = yaml.safe_load((CONFIGS / "accelerate_zero3.yaml").read_text())
    assert accelerate["distributed_type"] == "DEEPSPEED" and accelerate["num_processes"] == 4
    ds_file = Path(__file__).resolve().parents[2] / accelerate["deepspeed_config"]["deepspeed_config_file"]
    for path in (ds_file, CONFIGS / "zero3_lora.json"):
        ds = json.loads(path.read_text())
        assert ds["zero_optimization"]["stage"] == 3
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert json.loads(ds_file.read_text())["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    cluster = pytest.importorskip("accelerate.commands.config.config_args")
    assert cluster.ClusterConfig.from_yaml_file(str(CONFIGS / "accelerate_zero3.yaml")).num_processes == 4


def test_overrides_and_round_trip(tmp_path):
    cfg = load_grpo_config(overrides=["grpo.beta=0.0", "model.lora_rank=64", "rewards.weights.format_reward=0.5",
                                      "data.both_orders=[]"])
    assert (cfg.grpo.beta, cfg.model.lora_rank, cfg.rewards.weights, cfg.data.both_orders) == (0.0, 64, {"format_reward": 0.5}, [])
    save_grpo_config(cfg, tmp_path / "c.yaml")
    assert load_grpo_config(tmp_path / "c.yaml") == cfg
    assert isinstance(cfg, GRPORunConfig)


@pytest.mark.parametrize("override, message", [
    ("grpo.betta=1", "betta"),
    ("grpo.num_generations=1", "num_generations must be >= 2"),
    ("data.question='Rate {player}'", "unknown fields \\['player'\\]"),
    ("data.player_label=P", "must contain \\{n\\}"),
    ("data.render=video", "data.render"),
    ("data.both_orders=[dev]", "unknown splits"),
    ("rewards.names=[speed_reward]", "unknown rewards \\['speed_reward'\\]"),
    ("rewards.weights.speed_reward=1", "unknown rewards"),
    ("model.lora_rank=-1", "lora_rank"),
    ("grpo", "key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        load_grpo_config(overrides=[override])


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_grpo_config(tmp_path / "nope.yaml")
