"""``kept grpo prepare``: pairs of recordings, with KEPT's outputs, as VLM training rows.

A trained KEPT model is run over the pairs of the chosen splits of its dataset (or another one of
the same skeleton), and every pair becomes one row of ``OUT/<split>.jsonl``::

    prompt        conversational: a system turn explaining the four-tag answer format, and a user
                  turn "Player 1:" + N image placeholders + "Player 2:" + N placeholders + question
    images        2N image paths relative to OUT (Player 1's keyframes, then Player 2's)
    solution      the reference answer in the format of :mod:`kept.grpo.answer`
    pair_id       "<id_a>|<id_b>" in dataset order; id_1, id_2: recording ids in presented order
    swapped       True when Player 1 is the pair's second recording; split, category
    ref_*         reference scores (presented order), better player (1, 2, 0 = equal), action,
                  sub-actions, segments, difference description; score_min, score_max
    kept_*        KEPT's scores, better player, selected path, difference description

and ``OUT/prepare.json`` records the configuration and the counts. Keyframe images are written
once per recording under ``OUT/images/`` (:mod:`kept.grpo.keyframes`: video frames or skeleton
renderings).

Decisions:

- *Presentation order*: each pair is shown as (a, b) or, with probability
  ``data.swap_probability``, as (b, a), from a generator seeded by ``data.seed``; ``swapped``
  records it. Splits in ``data.both_orders`` (default: test) get both rows, sharing ``pair_id``, so
  the bias audit can check that a verdict follows the recording. When the order is swapped, the
  words "Player 1" and "Player 2" of the dataset's description are exchanged, since descriptions
  are written for (a, b).
- *Better player*: the higher score, "equal" when the two differ by at most 0.1 % of the score
  range (as ``kept compare``), for the reference and for KEPT.
- *KEPT's path*: KEPT selects one reasoning path per recording; the row's ``kept_path`` (and the
  reference answer's body parts, one per temporal segment) is the path of the recording KEPT
  scores lower, the one whose faults explain the difference (Player 1's on a tie); both players'
  paths are kept as ``kept_path_1`` and ``kept_path_2``.
- *What the dataset does not annotate*: the reference ``<look>`` says what each player's images
  show ("Player 1: a <action> performance in N keyframes."); the ``<recognition>`` action is the
  category with underscores as spaces. Sub-actions and their segments come from the optional
  ``samples.csv`` columns ``sub_actions`` ("set; dip; rise") and ``segments``
  ("0.00-0.30; 0.30-0.70; 0.70-1.00", fractions of the recording) of Player 1 (else Player 2);
  without them they are left out of the answer and ``ref_sub_actions``/``ref_segments`` are empty
  (the rewards then skip them). The reference answer's description is the dataset's ("" when the
  pair has none).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from kept.grpo.answer import PairAnswer, format_answer
from kept.grpo.config import GRPORunConfig, PairDataConfig, grpo_config_to_dict
from kept.io import atomic_path, atomic_write_json, atomic_write_text
from kept.evaluate import describe_pairs, predict
from kept.metrics import better_of

__all__ = ["build_prompt", "reference_answer", "swap_players", "prepare_pairs", "load_rows", "pair_dataset",
           "better_of", "IMAGES_DIR"]

IMAGES_DIR = "images"


def _num(x: float) -> str:
    return f"{x:g}"


def build_prompt(cfg: PairDataConfig, score_range: tuple[float, float]) -> list[dict]:
    """The conversational prompt of a pair, images as placeholders (TRL fills them from ``images``).

    Every message's content is a list of parts (also the system turn's), so that all rows share
    one Arrow type when loaded as a ``datasets.Dataset``.

    Returns:
        ``[{"role": "system", ...}, {"role": "user", "content": [text, image x N, text, image x N, text]}]``
    """
    user: list[dict[str, Any]] = []
    for n in (1, 2):
        user.append({"type": "text", "text": cfg.player_label.format(n=n)})
        user.extend({"type": "image"} for _ in range(cfg.keyframes))
    question = cfg.question.format(score_min=_num(score_range[0]), score_max=_num(score_range[1]),
                                   keyframes=cfg.keyframes)
    user.append({"type": "text", "text": question})
    return [{"role": "system", "content": [{"type": "text", "text": cfg.system_prompt}]},
            {"role": "user", "content": user}]


_PLAYER = re.compile(r"\b(player)(\s*)([12])\b", re.IGNORECASE)


def swap_players(text: str) -> str:
    """Exchange "Player 1" and "Player 2" (any case) in a free text."""
    return _PLAYER.sub(lambda m: f"{m.group(1)}{m.group(2)}{3 - int(m.group(3))}", text)


def _action_name(category: str) -> str:
    return " ".join(category.replace("_", " ").split())


_FRACTION = r"(\d+(?:\.\d*)?|\.\d+)"
_SEGMENT = re.compile(rf"\s*{_FRACTION}\s*-\s*{_FRACTION}\s*")


def _annotation(recording) -> tuple[list[str], list[list[float]]]:
    """Sub-actions and segments of a recording's ``sub_actions`` / ``segments`` columns."""
    meta = recording.meta
    subs = [s.strip() for s in meta.get("sub_actions", "").split(";") if s.strip()]
    segments = []
    for part in (p for p in meta.get("segments", "").split(";") if p.strip()):
        m = _SEGMENT.fullmatch(part)
        if m is None or not 0 <= float(m.group(1)) <= float(m.group(2)) <= 1:
            raise ValueError(f"recording '{recording.id}': segment '{part.strip()}' in column 'segments' must be "
                             "start-end fractions of the recording, e.g. '0.00-0.30; 0.30-1.00'")
        segments.append([float(m.group(1)), float(m.group(2))])
    return subs, segments


def reference_answer(row: dict, keyframes: int) -> str:
    """The reference answer text of a prepared row (see the module docstring)."""
    look = " ".join(f"Player {n}: a {row['ref_action']} performance in {keyframes} keyframes." for n in (1, 2))
    answer = PairAnswer(look=look, action=row["ref_action"], sub_actions=list(row["ref_sub_actions"]),
                        segments=[tuple(s) for s in row["ref_segments"]], body_parts=list(row["kept_path"]),
                        score_1=row["ref_score_1"], score_2=row["ref_score_2"], better=row["ref_better"],
                        description=row["ref_description"])
    return format_answer(answer)


def _image_name(rid: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", rid)
    if safe != rid:
        safe += "-" + hashlib.sha1(rid.encode()).hexdigest()[:8]
    return safe


class _KeyframeWriter:
    """Writes each recording's keyframes once (PNG, atomically) and remembers their paths."""

    def __init__(self, dataset, cfg: PairDataConfig, out: Path, canonical: bool):
        self.dataset, self.cfg, self.out, self.canonical = dataset, cfg, out, canonical
        self.paths: dict[str, list[str]] = {}
        self.sources = {"video": 0, "skeleton": 0}

    def __call__(self, rid: str) -> list[str]:
        if rid not in self.paths:
            images, source = self._images(rid)
            self.sources[source] += 1
            rel = [f"{IMAGES_DIR}/{_image_name(rid)}/{k}.png" for k in range(len(images))]
            for image, path in zip(images, rel):
                with atomic_path(self.out / path) as tmp:
                    image.save(tmp, format="PNG")
            self.paths[rid] = rel
        return self.paths[rid]

    def _images(self, rid: str):
        from kept.features import prepare_keypoints
        from kept.grpo.keyframes import keyframe_indices, render_skeleton, video_keyframes

        d, cfg = self.dataset, self.cfg
        video = d.recordings[rid].meta.get(cfg.video_column)
        if video and cfg.render == "auto":
            path = Path(video) if Path(video).is_absolute() else Path(d.root) / video
            return video_keyframes(path, cfg.keyframes, cfg.image_size), "video"
        xyz = prepare_keypoints(d.keypoints(rid), d.skeleton, d.up_axis, self.canonical)
        frames = keyframe_indices(len(xyz), cfg.keyframes)
        return render_skeleton(xyz, d.skeleton, frames, cfg.image_size, d.up_axis), "skeleton"


def _kept_outputs(model, bank, ids: list[str], batch_size: int, progress: bool):
    pred = predict(model, bank, ids, batch_size, progress=progress)
    return pred, {rid: i for i, rid in enumerate(pred.ids)}


def _split_rows(split: str, dataset, model, bank, cfg: PairDataConfig, rng: np.random.Generator,
                images: _KeyframeWriter, progress: bool) -> list[dict]:
    pairs = dataset.pairs_in(split)
    if not pairs:
        raise ValueError(f"{dataset.root}: split '{split}' has no pairs (pairs.csv, or two recordings of one "
                         "category in the split); choose other splits with --split")
    ids = list(dict.fromkeys(r for p in pairs for r in (p.id_a, p.id_b)))
    pred, row_of = _kept_outputs(model, bank, ids, cfg.kept_batch_size, progress)
    names = dataset.skeleton.node_names
    lo, hi = dataset.score_range
    kept_score = dict(zip(pred.ids, dataset.denormalize_score(pred.score).tolist()))
    kept_path = {rid: [names[j] for j in pred.best_path[row_of[rid]]] for rid in ids}
    orders = []  # (pair, swapped)
    for p in pairs:
        both = split in cfg.both_orders
        orders.extend([(p, False), (p, True)] if both else [(p, bool(rng.random() < cfg.swap_probability))])
    presented = [((p.id_b, p.id_a) if s else (p.id_a, p.id_b)) for p, s in orders]
    descriptions = describe_pairs(model, pred, presented)
    prompt = build_prompt(cfg, (lo, hi))
    rows = []
    for (pair, swapped), (id_1, id_2), kept_desc in tqdm(list(zip(orders, presented, descriptions)),
                                                         desc=f"pairs ({split})", disable=not progress):
        r1, r2 = dataset.recordings[id_1], dataset.recordings[id_2]
        subs, segments = _annotation(r1)
        if not subs and not segments:
            subs, segments = _annotation(r2)
        k1, k2 = kept_score[id_1], kept_score[id_2]
        desc = (pair.description or "").strip()
        row = {
            "pair_id": f"{pair.id_a}|{pair.id_b}", "split": split, "id_1": id_1, "id_2": id_2,
            "swapped": swapped, "category": r1.category,
            "prompt": prompt, "images": images(id_1) + images(id_2),
            "ref_score_1": float(r1.score), "ref_score_2": float(r2.score),
            "score_min": float(lo), "score_max": float(hi),
            "ref_better": better_of(r1.score, r2.score, (lo, hi)),
            "ref_action": _action_name(r1.category), "ref_sub_actions": subs, "ref_segments": segments,
            "ref_description": swap_players(desc) if swapped else desc,
            "kept_score_1": round(k1, 4), "kept_score_2": round(k2, 4),
            "kept_better": better_of(k1, k2, (lo, hi)),
            "kept_path": kept_path[id_2] if k2 < k1 else kept_path[id_1],
            "kept_path_1": kept_path[id_1], "kept_path_2": kept_path[id_2],
            "kept_description": kept_desc.strip(),
        }
        row["solution"] = reference_answer(row, cfg.keyframes)
        rows.append(row)
    return rows


def prepare_pairs(checkpoint: str | Path, out: str | Path, cfg: GRPORunConfig, splits: Sequence[str] = ("train", "test"),
                  dataset: dict[str, Any] | None = None, progress: bool = True) -> dict:
    """Run KEPT over the pairs of ``splits`` and write the training rows (see the module docstring).

    Args:
        checkpoint: run directory of ``kept train`` (or its model.pt).
        out: output folder (created; existing rows and images are replaced).
        cfg: the run config (its ``data`` section).
        splits: splits to write, one ``<split>.jsonl`` each.
        dataset: overrides of the KEPT run's data config (``dataset``, ``data_root``, ``synthetic``,
            ``fold``); None: the dataset the model was trained on.
        progress: progress bars.

    Returns:
        The contents of ``prepare.json``.
    """
    from kept.data.datamodule import FeatureBank, load_configured_dataset
    from kept.train import load_model

    start = time.time()
    bad = [s for s in splits if s not in ("train", "val", "test")]
    if bad or not splits:
        raise ValueError(f"--split takes train, val and/or test (comma-separated), got {list(splits)}")
    model, kcfg, _ = load_model(checkpoint)
    for key, value in (dataset or {}).items():
        if value is not None:
            setattr(kcfg.data, key, value)
    data = load_configured_dataset(kcfg)
    sk = data.skeleton
    if tuple(model.joints) != sk.joints or tuple(model.node_names) != sk.node_names:
        raise ValueError(f"the KEPT model at {checkpoint} was trained on a skeleton with joints {list(model.joints)}, "
                         f"but dataset {data.root} has skeleton '{sk.name}' with joints {list(sk.joints)}: "
                         "prepare pairs of data of the same skeleton")
    out = Path(out)
    bank = FeatureBank(data, kcfg, progress=progress, commentary=False)
    rng = np.random.default_rng(cfg.data.seed)
    writer = _KeyframeWriter(data, cfg.data, out, kcfg.data.canonical_facing)
    counts = {}
    for split in splits:
        rows = _split_rows(split, data, model, bank, cfg.data, rng, writer, progress)
        atomic_write_text(out / f"{split}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        counts[split] = {"rows": len(rows), "pairs": len({r["pair_id"] for r in rows}),
                         "swapped": sum(r["swapped"] for r in rows),
                         "recordings": len({i for r in rows for i in (r["id_1"], r["id_2"])})}
    info = {"checkpoint": str(checkpoint), "dataset": {"name": data.name, "root": str(data.root),
                                                      "score_range": list(data.score_range)},
            "splits": counts, "images": {"recordings": len(writer.paths), **writer.sources},
            "config": grpo_config_to_dict(cfg)["data"], "seconds": round(time.time() - start, 1)}
    atomic_write_json(out / "prepare.json", info)
    return info


def load_rows(data_dir: str | Path, split: str) -> list[dict]:
    """The rows of ``DATA_DIR/<split>.jsonl`` written by :func:`prepare_pairs`."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no prepared rows at {path}: run `kept grpo prepare --checkpoint RUN_DIR "
                                f"--out {data_dir} --split {split}` first")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def pair_dataset(rows: list[dict], data_dir: str | Path, kind: str = "grpo"):
    """The rows as a ``datasets.Dataset`` for TRL, images decoded to PIL on access.

    Args:
        rows: prepared rows (:func:`load_rows`).
        data_dir: the folder the rows' image paths are relative to.
        kind: ``grpo``: every column (the rewards read them); ``sft``: ``prompt``, ``completion``
            (the solution as the assistant turn) and ``images``.
    """
    from datasets import Dataset, Image, List

    root = Path(data_dir).resolve()
    missing = [p for r in rows[:1] for p in r["images"] if not (root / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: keyframe images {missing} are missing; rerun `kept grpo prepare`")
    if kind == "sft":
        records = [{"prompt": r["prompt"], "images": [str(root / p) for p in r["images"]],
                    "completion": [{"role": "assistant", "content": [{"type": "text", "text": r["solution"]}]}]}
                   for r in rows]
    elif kind == "grpo":
        records = [{**r, "images": [str(root / p) for p in r["images"]]} for r in rows]
    else:
        raise ValueError(f"kind must be 'grpo' or 'sft', got '{kind}'")
    return Dataset.from_list(records).cast_column("images", List(Image()))
