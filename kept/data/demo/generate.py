"""Writing the demo dataset to disk: :func:`generate_demo` and :func:`load_faults`.

Random streams are seeded per recording from ``(seed, category, split, index)`` (and the person
from ``(seed, sport, split, index)``: the same subject performs all of a sport's sub-activities),
so changing the counts does not reshuffle the recordings that remain.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import zlib
from itertools import combinations
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from kept.data.demo.activities import _SPORT_OF, ADR_SUBACTIVITIES, GENERATOR_VERSION
from kept.data.demo.body import _sample_person
from kept.data.demo.faults import sample_faults, score_from_faults
from kept.data.demo.recording import simulate_recording
from kept.data.demo.text import make_commentary, make_pair_description
from kept.io import atomic_path

_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _recording_plan(seed: int, category: str, split: str, index: int) -> dict:
    sport = _SPORT_OF[category]
    code = _SPLIT_CODE[split]
    base = [int(seed), _crc(category), code, int(index)]
    return {
        "id": f"{category}_{split}_{index:03d}",
        "sim_seed": base + [0],
        "fault_seed": base + [1],
        "text_seed": base + [2],
        "person_seed": [int(seed), _crc(sport), code, int(index), 9],
        "subject": f"{sport}_{split}_{index:03d}",
    }


def _atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def generate_demo(
    out: str | Path,
    seed: int = 0,
    *,
    train_per_category: int = 24,
    test_per_category: int = 12,
    fps: float = 30.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate the ADR-format demo dataset into ``out`` and return its path.

    Deterministic: the same arguments give byte-identical files. The data are written into a
    sibling temp folder (``<out>.tmp-XXXX``) that is renamed onto ``out`` at the end, so an
    interrupted run leaves no partial dataset.

    Args:
        out: target folder; must be absent or empty unless ``overwrite`` (then it is replaced).
        seed: base seed.
        train_per_category, test_per_category: recordings per sub-activity and split.
        fps: frame rate of the keypoints.
        overwrite: replace a non-empty ``out``.
        progress: show a tqdm progress bar.

    Raises:
        FileExistsError: ``out`` is a non-empty folder (or a file) and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out} is not empty; pass overwrite=True to replace it or choose another folder")
    if train_per_category < 0 or test_per_category < 0:
        raise ValueError("recording counts must be >= 0")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    out.parent.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    plans = [(cat, split, i) for cat in _SPORT_OF
             for split, n in (("train", train_per_category), ("test", test_per_category))
             for i in range(n)]
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.tmp-"))
    try:
        os.chmod(tmp, 0o755)
        (tmp / "keypoints").mkdir()
        samples, faults_out = [], {}
        info: dict[tuple[str, str], list[dict]] = {}
        for cat, split, i in tqdm(plans, desc="adr-demo", unit="rec", disable=not progress):
            plan = _recording_plan(seed, cat, split, i)
            frng = np.random.default_rng(plan["fault_seed"])
            person = _sample_person(np.random.default_rng(plan["person_seed"]), _SPORT_OF[cat])
            skill = person["skill"]
            chosen = sample_faults(frng, cat, skill)
            rec = simulate_recording(plan["sim_seed"], cat, chosen, fps=fps,
                                     person_seed=plan["person_seed"])
            score = score_from_faults(chosen, cat, rec.person["skill"], frng)
            trng = np.random.default_rng(plan["text_seed"])
            comment = make_commentary(rec.faults, cat, score, trng)
            _atomic_bytes(tmp / "keypoints" / f"{plan['id']}.npy", _npy_bytes(rec.xyz))
            samples.append([plan["id"], split, cat, f"{score:.1f}", plan["subject"], comment,
                            _SPORT_OF[cat]])
            faults_out[plan["id"]] = rec.faults
            info.setdefault((cat, split), []).append(
                {"id": plan["id"], "index": i, "faults": rec.faults, "score": score,
                 "duration": rec.duration})
        pairs = []
        for split in ("train", "test"):
            for cat in _SPORT_OF:
                recs = sorted(info.get((cat, split), []), key=lambda r: r["id"])
                for a, b in combinations(recs, 2):
                    prng = np.random.default_rng(
                        [int(seed), _crc(cat), _SPLIT_CODE[split], a["index"], b["index"], 3])
                    pairs.append([a["id"], b["id"], split, make_pair_description(a, b, cat, prng)])
        meta = {
            "name": "adr-demo", "fps": float(fps), "score_range": [1, 10], "skeleton": "coco17",
            "up_axis": "y",
            "generator": {"name": "kept.data.demo", "version": GENERATOR_VERSION, "seed": int(seed),
                          "train_per_category": int(train_per_category),
                          "test_per_category": int(test_per_category),
                          "subactivities": {k: list(v) for k, v in ADR_SUBACTIVITIES.items()}},
        }
        _atomic_bytes(tmp / "dataset.json", (json.dumps(meta, indent=2) + "\n").encode())
        _atomic_bytes(tmp / "samples.csv", _csv_bytes(
            ("id", "split", "category", "score", "subject", "commentary", "sport"), samples))
        _atomic_bytes(tmp / "pairs.csv",
                      _csv_bytes(("id_a", "id_b", "split", "description"), pairs))
        _atomic_bytes(tmp / "faults.json", (json.dumps(faults_out, indent=1) + "\n").encode())
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.old-"))
            os.rmdir(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_faults(root: str | Path) -> dict[str, list[dict]]:
    """The ground-truth faults of a generated dataset: recording id -> list of fault dicts.

    Args:
        root: the dataset folder (or its ``faults.json``).
    """
    path = Path(root)
    if path.is_dir():
        path = path / "faults.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; generate the data with kept.data.demo.generate_demo")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of recording id -> list of faults")
    return {str(k): [dict(f) for f in v] for k, v in data.items()}
