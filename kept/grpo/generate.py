"""``kept grpo eval``: greedy answers of a fine-tuned VLM on prepared rows, and their metrics.

The model answers every row of ``DATA_DIR/<split>.jsonl`` (greedy decoding, batches of
``eval.batch_size`` prompts, left padding). The answers go to a JSONL file (one line per row:
``pair_id``, ``id_1``, ``id_2``, ``swapped``, ``completion``), so that the metrics can be
recomputed without the model (``--completions FILE``). Metrics come from the same code as the
reward side: :func:`kept.grpo.evaluate.answer_metrics` (rho, R-l2, pair accuracy through
:mod:`kept.metrics`, text metrics through :mod:`kept.text_metrics`) and
:func:`kept.grpo.evaluate.bias_audit`.

Output JSON: ``{"split", "model", "n_rows", "metrics": {...}, "bias_audit": {...}, "completions": path}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from kept.grpo.config import VLMEvalConfig
from kept.grpo.data import load_rows
from kept.io import atomic_write_json, atomic_write_text

__all__ = ["generate_answers", "evaluate_answers", "write_completions", "read_completions"]


def _device(name: str | None):
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def generate_answers(model, processor, rows: Sequence[dict], data_dir: str | Path, max_new_tokens: int = 1024,
                     batch_size: int = 4, progress: bool = True) -> list[str]:
    """Greedy answers of ``model`` to the prompts of ``rows``.

    Args:
        model: a Qwen2.5-VL (any image-text-to-text model) in eval mode, on its device.
        processor: its processor (tokenizer padding on the left).
        rows: prepared rows (``prompt`` with image placeholders, ``images`` relative to ``data_dir``).
        data_dir: the prepared folder.
        max_new_tokens: answer length limit.
        batch_size: prompts per ``generate`` call.
        progress: progress bar.

    Returns:
        One answer text per row, special tokens removed.
    """
    import torch
    from PIL import Image
    from trl.data_utils import prepare_multimodal_messages

    root = Path(data_dir)
    device = next(model.parameters()).device
    processor.tokenizer.padding_side = "left"
    answers: list[str] = []
    for start in tqdm(range(0, len(rows), batch_size), desc="answers", disable=not progress):
        chunk = rows[start:start + batch_size]
        messages = []
        for row in chunk:
            images = [Image.open(root / p).convert("RGB") for p in row["images"]]
            messages.append(prepare_multimodal_messages(row["prompt"], images=images))
        inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                               return_tensors="pt", processor_kwargs={"padding": True}).to(device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        answers.extend(processor.batch_decode(new, skip_special_tokens=True))
    return answers


def write_completions(path: str | Path, rows: Sequence[dict], completions: Sequence[str]) -> None:
    """One JSON line per row: its identity and the model's answer (atomic)."""
    lines = [json.dumps({"pair_id": r["pair_id"], "id_1": r["id_1"], "id_2": r["id_2"], "swapped": r["swapped"],
                         "completion": c}) for r, c in zip(rows, completions)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_completions(path: str | Path, rows: Sequence[dict]) -> list[str]:
    """The answers of a completions file, checked to line up with ``rows``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"completions file not found: {path}")
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    key = [(r["pair_id"], r["id_1"], r["id_2"]) for r in rows]
    if [(c.get("pair_id"), c.get("id_1"), c.get("id_2")) for c in items] != key:
        raise ValueError(f"{path} does not hold one answer per row of the split, in order; regenerate it "
                         "with `kept grpo eval` (without --completions)")
    return [c["completion"] for c in items]


def evaluate_answers(model_dir: str | Path | None, data_dir: str | Path, split: str, cfg: VLMEvalConfig,
                     out: str | Path, completions: str | Path | None = None, dtype: str = "bfloat16",
                     device: str | None = None, progress: bool = True) -> dict:
    """Answer the rows of a split (or read earlier answers) and write their metrics.

    Args:
        model_dir: the fine-tuned model (folder or hub id); None with ``completions``.
        data_dir: the prepared folder.
        split: which rows.
        cfg: generation and metric settings (``eval`` section).
        out: metrics JSON to write; the answers go to ``<out stem>.completions.jsonl`` beside it.
        completions: read the answers from this file instead of generating them.
        dtype: the model's dtype (``float32`` on a CPU).
        device: torch device (default: cuda when available, else cpu).
        progress: progress bar.

    Returns:
        The written metrics dict.
    """
    from kept.grpo.evaluate import answer_metrics, bias_audit

    rows = load_rows(data_dir, split)
    out = Path(out)
    if completions is not None:
        answers = read_completions(completions, rows)
        answers_path = Path(completions)
    else:
        if model_dir is None:
            raise ValueError("give --model (to generate answers) or --completions (to score earlier ones)")
        from kept.grpo.model import load_model, load_processor

        processor = load_processor(str(model_dir))
        model = load_model(str(model_dir), dtype).to(_device(device)).eval()
        answers = generate_answers(model, processor, rows, data_dir, cfg.max_new_tokens, cfg.batch_size, progress)
        answers_path = out.with_name(out.stem + ".completions.jsonl")
        write_completions(answers_path, rows, answers)
    result = {"split": split, "model": None if model_dir is None else str(model_dir), "n_rows": len(rows),
              "metrics": answer_metrics(rows, answers, text=cfg.text_metrics),
              "bias_audit": bias_audit(rows, answers), "completions": str(answers_path)}
    atomic_write_json(out, result)
    return result
