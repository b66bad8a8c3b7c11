"""What ``kept sft`` / ``kept grpo`` decide before training: the mixed precision from the device
(``sft.precision`` / ``grpo.precision``, torch.cuda mocked), the default hub model's download
(said in ``--help``) and the clear error when it cannot be downloaded (HF_HUB_OFFLINE)."""

from __future__ import annotations

import pytest
import torch

from kept.cli import main
from kept.grpo.config import load_grpo_config
from kept.grpo.model import check_model_source
from kept.grpo.train import resolve_precision, training_arguments, training_dtype

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


@pytest.fixture
def device(monkeypatch):
    """``device(cuda, bf16)`` mocks torch.cuda: a GPU or none, native bf16 or not (pre-Ampere)."""
    def set_device(cuda: bool, bf16: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: cuda and bf16)
    return set_device


@pytest.mark.parametrize("cuda, bf16, use_cpu, expected", [
    (True, True, False, "bf16"),    # Ampere or newer
    (True, False, False, "fp16"),   # an older GPU
    (False, False, False, "fp32"),  # no GPU
    (True, True, True, "fp32"),     # a GPU, but use_cpu
])
def test_auto_precision_follows_the_device(device, cuda, bf16, use_cpu, expected):
    device(cuda, bf16)
    assert resolve_precision("auto", use_cpu) == expected


def test_native_bf16_is_asked_without_emulation(monkeypatch):
    asked = {}

    def is_bf16_supported(including_emulation=True):
        asked["emulation"] = including_emulation
        return including_emulation  # e.g. a V100: bf16 only by emulation
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert resolve_precision("auto") == "fp16" and asked["emulation"] is False


def test_torch_without_including_emulation(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # torch < 2.3 signature
    assert resolve_precision("auto") == "bf16"


def test_explicit_precisions(device):
    device(True, True)
    assert [resolve_precision(p) for p in ("bf16", "fp16", "fp32")] == ["bf16", "fp16", "fp32"]
    device(False)
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16", use_cpu=True) == "bf16"  # asked for: the CPU's bf16 autocast


@pytest.mark.parametrize("cuda, precision, says", [
    (False, "bf16", "it has no GPU"),
    (True, "bf16", "pre-Ampere"),
    (False, "fp16", "needs a GPU"),
])
def test_unsupported_explicit_precision_names_the_key(device, cuda, precision, says):
    device(cuda, bf16=False)
    with pytest.raises(ValueError, match=f"sft.precision={precision}") as err:
        resolve_precision(precision, key="sft.precision")
    assert says in str(err.value) and "sft.precision=auto" in str(err.value)


def test_training_arguments_set_the_resolved_flags(device, tmp_path):
    cfg = load_grpo_config()
    device(False)
    args = training_arguments(cfg.sft, tmp_path, "sft")
    assert (args["bf16"], args["fp16"]) == (False, False)
    device(True, bf16=False)
    assert training_arguments(cfg.grpo, tmp_path, "grpo")["fp16"] is True
    device(True, bf16=True)
    args = training_arguments(cfg.grpo, tmp_path, "grpo")
    assert (args["bf16"], args["fp16"]) == (True, False)


def test_bfloat16_weights_train_as_float32_without_bf16():
    assert training_dtype("bfloat16", "bf16") == "bfloat16"
    assert training_dtype("bfloat16", "fp16") == "float32"
    assert training_dtype("bfloat16", "fp32") == "float32"
    assert training_dtype("float16", "fp16") == "float16"  # an explicit choice is kept
    assert training_dtype("auto", "fp32") == "auto"


def test_precision_key_and_the_deprecated_bf16_key():
    cfg = load_grpo_config()
    assert (cfg.sft.precision, cfg.grpo.precision, cfg.sft.bf16) == ("auto", "auto", None)
    cfg = load_grpo_config(overrides=["sft.bf16=false", "grpo.bf16=true"])  # older configs still load
    assert (cfg.sft.precision, cfg.grpo.precision, cfg.sft.bf16, cfg.grpo.bf16) == ("fp32", "bf16", None, None)
    assert load_grpo_config(overrides=["sft.bf16=true", "sft.precision=bf16"]).sft.precision == "bf16"
    with pytest.raises(ValueError, match="sft.bf16=true .*contradicts sft.precision=fp32"):
        load_grpo_config(overrides=["sft.bf16=true", "sft.precision=fp32"])
    with pytest.raises(ValueError, match="grpo.precision must be one of auto, bf16, fp16, fp32"):
        load_grpo_config(overrides=["grpo.precision=fp8"])


def test_explicit_bf16_on_a_cpu_only_machine_stops_with_the_key(device, tiny_vlm, prepared, tmp_path, capsys):
    device(False)
    argv = ["sft", "--data", str(prepared), "--model", str(tiny_vlm), "--out", str(tmp_path / "sft"),
            "sft.precision=bf16"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "sft.precision=bf16 needs a GPU" in err and "support bf16/gpu" not in err


@pytest.mark.parametrize("command", [["sft"], ["grpo", "train"], ["grpo"]])
def test_help_says_the_default_model_downloads(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert DEFAULT_MODEL in text and "downloads about 16 GB from the Hugging Face hub" in text
    if command != ["grpo"]:
        assert "--model DIR" in text


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE set, and an empty Hugging Face cache (returned) instead of the user's."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # set by the environment variable alone
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_config(cache, repo_id: str) -> None:
    """A hub cache entry of ``repo_id`` with its config.json, in huggingface_hub's layout."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")


@pytest.mark.parametrize("command", [["sft"], ["grpo"], ["grpo", "train"]])
def test_offline_without_a_cached_default_model_asks_for_model(offline, command, tmp_path, capsys):
    argv = [*command, "--data", str(tmp_path / "pairs"), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert DEFAULT_MODEL in err and "HF_HUB_OFFLINE" in err and "--model DIR" in err
    assert not (tmp_path / "out").exists()


def test_model_sources(offline, tiny_vlm, monkeypatch):
    check_model_source(str(tiny_vlm))  # a local folder: never the hub
    with pytest.raises(FileNotFoundError, match="--model DIR"):
        check_model_source(DEFAULT_MODEL)
    _cache_config(offline, DEFAULT_MODEL)
    check_model_source(DEFAULT_MODEL)  # cached: from_pretrained finds it offline
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        check_model_source("./runs/not-there")
    with pytest.raises(FileNotFoundError, match="neither a local model folder nor a hub id"):
        check_model_source("runs/not/there")
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    check_model_source("someone/uncached-model")  # online: left to from_pretrained (which downloads)
