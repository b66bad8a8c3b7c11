"""A tiny, randomly initialised Qwen2.5-VL with its own tokenizer and processor, offline.

For smoke tests of the fine-tuning pipeline (``kept grpo tiny-model --out DIR``, and the test
suite): the same classes as Qwen2.5-VL-7B-Instruct (``Qwen2_5_VLForConditionalGeneration``,
``Qwen2_5_VLProcessor`` with the pillow image processor), a few hundred thousand parameters, built
from a config without any download. The tokenizer is a byte-level BPE trained on a few sentences
of the pair-answer format, with Qwen's special tokens and a chat template of the same structure
as Qwen2-VL's, so every code path (chat template with image parts, image placeholder expansion,
M-RoPE positions, generation) is the real one. Its answers are noise: it has never been trained.

Layout of the folder (what ``save_pretrained`` of the model and the processor write), which
:func:`kept.grpo.model.load_model` and :func:`kept.grpo.model.load_processor` read back, as TRL's
GRPOTrainer does when it rebuilds the reference model from ``config._name_or_path``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SPECIAL_TOKENS", "CHAT_TEMPLATE", "build_tiny_tokenizer", "build_tiny_model"]

#: Qwen2-VL's special tokens, in Qwen's order (the ids differ: this vocabulary is tiny).
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")

#: The structure of Qwen2-VL's chat template: a default system turn, image and video parts as
#: ``<|vision_start|><|image_pad|><|vision_end|>`` (the processor expands the pad token to one per
#: merged patch), text parts verbatim, and the assistant header as generation prompt.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = (
    "<look>Player 1: a squat in 4 keyframes. Player 2: a squat in 4 keyframes.</look>",
    ("<recognition>Action: mid range shooting. Sub-actions: set, dip, rise, release, landing. "
     "Segments: 0.00-0.25, 0.25-0.50, 0.50-0.75, 0.75-1.00. Body parts: hip, knee, elbow, shoulder.</recognition>"),
    "<assessment>Player 1 score: 6.50. Player 2 score: 4.00.</assessment>",
    ("<answer>Better: Player 1. Description: Player 1 bends the knees deeper, whereas Player 2 releases "
     "the ball too low. Overall, the two performances are of similar quality.</answer>"),
    "Better: equal. Better: Player 2. 0123456789 -+.,:;!?()[]{}'\"/",
    ("You compare two recordings of the same skilled action. Score each on a scale from 1 to 10 and "
     "explain how they differ. Answer in four tagged stages: look, recognition, assessment, answer."),
)


def build_tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer with Qwen's special tokens and chat template, trained in memory.

    Args:
        vocab_size: BPE vocabulary size, special tokens included.

    Returns:
        A ``PreTrainedTokenizerFast`` (eos ``<|im_end|>``, pad ``<|endoftext|>``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, chat_template=CHAT_TEMPLATE, padding_side="left",
                                   model_max_length=32768)


def build_tiny_model(out: str | Path, *, seed: int = 0, hidden_size: int = 64, layers: int = 2,
                     vision_depth: int = 1, vision_hidden_size: int = 32, patch_size: int = 14,
                     image_pixels: tuple[int, int] = (56 * 56, 112 * 112)) -> Path:
    """Write a random tiny Qwen2.5-VL, its tokenizer and its processor into ``out``.

    Args:
        out: output folder (created; existing files of the same names are replaced).
        seed: torch seed of the random weights.
        hidden_size: width of the language model (4 heads of ``hidden_size // 4``, 2 KV heads).
        layers: decoder layers of the language model.
        vision_depth: blocks of the vision tower.
        vision_hidden_size: width of the vision tower (2 heads).
        patch_size: vision patch side in pixels (Qwen: 14; a merged token covers 2x2 patches).
        image_pixels: (min, max) pixels per image of the image processor.

    Returns:
        ``out`` as a Path.
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from kept.grpo.model import build_processor

    out = Path(out)
    tokenizer = build_tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = hidden_size // 4
    half = head_dim // 2  # M-RoPE splits the rotary half-dimension into (time, height, width) sections
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 4096, "max_window_layers": layers,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": vision_depth, "hidden_size": vision_hidden_size, "intermediate_size": 2 * vision_hidden_size,
            "num_heads": 2, "patch_size": patch_size, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "window_size": 4 * patch_size, "out_hidden_size": hidden_size,
            "fullatt_block_indexes": list(range(vision_depth)),
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    processor = build_processor(tokenizer, min_pixels=image_pixels[0], max_pixels=image_pixels[1],
                                patch_size=patch_size)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
