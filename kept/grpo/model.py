"""Loading Qwen2.5-VL and its processor (local folders and hub ids), without torchvision.

``AutoProcessor.from_pretrained`` builds Qwen2.5-VL's processor with its video processor, whose
module imports torchvision, so it fails where torchvision is not installed (this project never
installs it; checked with transformers 5.23: "Can't load video processor", and importing
``video_processing_qwen2_vl`` raises ``No module named 'torchvision'``). :func:`load_processor`
builds Qwen's processor from its parts instead (:class:`PairProcessor`, a ``Qwen2_5_VLProcessor``
without the video part): the tokenizer (``AutoTokenizer``), the pillow image processor
``Qwen2VLImageProcessorPil`` (Qwen's resizing arithmetic, ``smart_resize`` to multiples of 28
pixels) with the settings of the folder's ``preprocessor_config.json`` / ``processor_config.json``,
and the chat template of the folder (``chat_template.jinja`` or ``chat_template.json``) or else
the tokenizer's. For a hub id the tokenizer and image processor come from their own
``from_pretrained`` and the chat template from the repository's template file when it has one.
The pair prompts hold keyframe images only, so no video processor is needed.

:func:`load_model` loads ``Qwen2_5_VLForConditionalGeneration`` (any other image-text-to-text
model through ``AutoModelForImageTextToText``) in the configured dtype. :func:`check_model_source`
stops early, naming ``--model``, where a hub id cannot be had (HF_HUB_OFFLINE set and nothing in
the local cache; the default Qwen/Qwen2.5-VL-7B-Instruct is a download of about 16 GB).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor

__all__ = ["PairProcessor", "build_processor", "load_processor", "load_model", "lora_config", "torch_dtype",
           "check_model_source", "hub_offline", "DEFAULT_MODEL_DOWNLOAD"]

#: what the default ``model.name`` (Qwen/Qwen2.5-VL-7B-Instruct: 8.29 B parameters in bf16 safetensors)
#: downloads from the Hugging Face hub on first use
DEFAULT_MODEL_DOWNLOAD = "about 16 GB"


class PairProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without a video processor (images, text and chat template are Qwen's).

    transformers checks each part of a processor by looking its class up in the auto mappings,
    and the video mapping cannot be searched without torchvision, so Qwen's processor refuses to
    be built without one. This subclass declares only the image processor and the tokenizer as
    its parts (``get_attributes`` reads them from ``__init__``'s signature), so construction,
    ``save_pretrained`` and TRL's use of it work with pillow alone.
    """

    video_processor = None

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                         chat_template=chat_template, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        # Saved under Qwen's class name, not this subclass's (which no auto mapping knows), so the folder
        # reads as a Qwen2.5-VL folder; kept reads it back with load_processor.
        return {**super().to_dict(), "processor_class": "Qwen2_5_VLProcessor"}


def torch_dtype(name: str):
    """``"bfloat16"``, ``"float16"``, ``"float32"`` or ``"auto"`` as what ``from_pretrained`` takes."""
    import torch

    if name == "auto":
        return "auto"
    if name not in ("bfloat16", "float16", "float32"):
        raise ValueError(f"model.dtype must be bfloat16, float16, float32 or auto, got '{name}'")
    return getattr(torch, name)


def build_processor(tokenizer, *, min_pixels: int | None = None, max_pixels: int | None = None,
                    patch_size: int = 14, image_processor=None, chat_template: str | None = None):
    """A ``Qwen2_5_VLProcessor`` of a tokenizer and the pillow image processor.

    Args:
        tokenizer: the model's tokenizer (with ``<|image_pad|>`` and a chat template).
        min_pixels, max_pixels: the image processor's pixel bounds (None: its defaults).
        patch_size: vision patch side in pixels.
        image_processor: an already built image processor (then the three above are ignored).
        chat_template: the processor's chat template (default: the tokenizer's).
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if image_processor is None:
        kwargs: dict[str, Any] = {"patch_size": patch_size}
        if min_pixels is not None:
            kwargs["min_pixels"] = min_pixels
        if max_pixels is not None:
            kwargs["max_pixels"] = max_pixels
        image_processor = Qwen2VLImageProcessorPil(**kwargs)
    return PairProcessor(image_processor=image_processor, tokenizer=tokenizer,
                         chat_template=chat_template or tokenizer.chat_template)


def _local_chat_template(folder: Path) -> str | None:
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text()
    if (folder / "chat_template.json").is_file():
        return json.loads((folder / "chat_template.json").read_text()).get("chat_template")
    return None


def _image_processor_kwargs(folder: Path) -> dict | None:
    """The image processor's settings saved in a local folder (transformers 4 and 5 layouts)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text())
            data = data.get("image_processor", data)
            keep = ("min_pixels", "max_pixels", "patch_size", "temporal_patch_size", "merge_size", "image_mean",
                    "image_std", "size")
            return {k: v for k, v in data.items() if k in keep}
    return None


def load_processor(name_or_path: str, padding_side: str = "left"):
    """The processor of a Qwen2.5-VL model folder or hub id, built without torchvision.

    Args:
        name_or_path: a local folder (as written by ``save_pretrained``) or a hub id such as
            ``Qwen/Qwen2.5-VL-7B-Instruct``.
        padding_side: the tokenizer's padding side (left for generation, as TRL's GRPOTrainer
            pads prompts).
    """
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    folder = Path(name_or_path).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json): pass a folder written by "
                                "`kept sft`/`kept grpo`/`kept grpo tiny-model` or a hub id")
    tokenizer = AutoTokenizer.from_pretrained(str(folder) if folder.is_dir() else name_or_path)
    tokenizer.padding_side = padding_side
    if folder.is_dir():
        settings = _image_processor_kwargs(folder)
        if settings is None:
            raise FileNotFoundError(f"{folder}: no preprocessor_config.json or processor_config.json; save the "
                                    "processor next to the model (processor.save_pretrained)")
        size = settings.pop("size", None) or {}
        settings.setdefault("min_pixels", size.get("shortest_edge", size.get("min_pixels")))
        settings.setdefault("max_pixels", size.get("longest_edge", size.get("max_pixels")))
        image_processor = Qwen2VLImageProcessorPil(**{k: v for k, v in settings.items() if v is not None})
        template = _local_chat_template(folder)
    else:
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(name_or_path)
        template = _hub_chat_template(name_or_path)
    if not (template or tokenizer.chat_template):
        raise ValueError(f"{name_or_path} has no chat template (chat_template.jinja, chat_template.json or the "
                         "tokenizer's): use an instruction-tuned model such as Qwen/Qwen2.5-VL-7B-Instruct")
    return build_processor(tokenizer, image_processor=image_processor, chat_template=template)


def _hub_chat_template(repo_id: str) -> str | None:
    """The processor's chat template of a hub model, when it ships one beside the tokenizer's."""
    from huggingface_hub import hf_hub_download

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            path = Path(hf_hub_download(repo_id, name))
        except Exception:  # not in the repository (or offline): the tokenizer's template is used
            continue
        return path.read_text() if name.endswith(".jinja") else json.loads(path.read_text()).get("chat_template")
    return None


def load_model(name_or_path: str, dtype: str = "bfloat16", attn_implementation: str | None = None):
    """Qwen2.5-VL (or another image-text-to-text model) from a folder or hub id, in ``dtype``.

    Args:
        name_or_path: local folder or hub id.
        dtype: ``bfloat16``, ``float16``, ``float32`` or ``auto``.
        attn_implementation: e.g. ``flash_attention_2`` or ``sdpa`` (None: transformers' default).
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, Qwen2_5_VLForConditionalGeneration

    folder = Path(name_or_path).expanduser()
    source = str(folder) if folder.is_dir() else name_or_path
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    config = AutoConfig.from_pretrained(source)
    cls = Qwen2_5_VLForConditionalGeneration if config.model_type == "qwen2_5_vl" else AutoModelForImageTextToText
    return cls.from_pretrained(source, **kwargs)


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    """Whether the Hugging Face hub is off (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``), read
    from the environment now as well as from huggingface_hub's setting at its import."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or _true(os.environ.get("HF_HUB_OFFLINE") or
                                                   os.environ.get("TRANSFORMERS_OFFLINE"))


def check_model_source(name_or_path: str, flag: str = "--model", cache_dir: str | Path | None = None) -> None:
    """Fail early, naming ``flag``, where the model cannot be loaded without a download that is off.

    A local folder passes. A hub id passes unless the hub is off (:func:`hub_offline`) and the
    model's ``config.json`` is not in the local Hugging Face cache (``cache_dir``, default
    huggingface_hub's ``HF_HUB_CACHE``); then, and for a name that is neither a folder nor a
    valid hub id, a ``FileNotFoundError`` says to pass ``flag DIR``. Online, a hub id is left to
    ``from_pretrained`` (the default, Qwen/Qwen2.5-VL-7B-Instruct, downloads about 16 GB).
    """
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    if Path(name_or_path).expanduser().is_dir():
        return
    if name_or_path.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"{flag} {name_or_path!r}: no such model folder")
    try:
        cached = try_to_load_from_cache(name_or_path, "config.json", cache_dir=cache_dir)
    except HFValidationError:
        raise FileNotFoundError(f"{flag} {name_or_path!r} is neither a local model folder nor a hub id "
                                f"(owner/name): pass {flag} DIR with a model folder") from None
    if hub_offline() and not isinstance(cached, str):
        raise FileNotFoundError(
            f"the model {name_or_path!r} ({flag}, default model.name) is a hub id that is not in the local Hugging "
            f"Face cache, and HF_HUB_OFFLINE is set, so it cannot be downloaded: pass {flag} DIR with a local "
            f"model folder (e.g. one written by `kept grpo tiny-model --out DIR` for a smoke test), or unset "
            f"HF_HUB_OFFLINE to download it (the default, Qwen/Qwen2.5-VL-7B-Instruct, is {DEFAULT_MODEL_DOWNLOAD})")


def lora_config(rank: int, alpha: int, dropout: float, target_modules: list[str]):
    """peft's ``LoraConfig`` for causal LM training (``rank`` > 0)."""
    try:
        from peft import LoraConfig
    except ImportError as err:  # pragma: no cover - peft is in the grpo extra
        raise ImportError("model.lora_rank > 0 needs peft: pip install -e '.[grpo]'") from err
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                      task_type="CAUSAL_LM")
