"""The keypoint-folder dataset format: reader, validator and writer.

Every dataset is converted to this layout::

    <root>/dataset.json        {"name": "golf", "fps": 30, "skeleton": "coco17",
                                "score_range": [0, 10], "up_axis": "y", ...}
    <root>/samples.csv         id,split,category,score[,subject][,commentary][,...]
    <root>/keypoints/<id>.npy  float32 (frames, joints, 3), NaN where a joint is missing
    <root>/pairs.csv           optional: id_a,id_b,split[,description][,...]

``dataset.json`` needs ``name``, ``fps`` (> 0) and ``skeleton`` (a built-in name from
:data:`pose.skeleton.BUILTIN_SKELETONS` or an inline spec, see :mod:`pose.skeleton`).
``score_range`` ([lo, hi]; default: min and max of the scores) and ``up_axis`` (x, y, z, -x, -y,
-z; default y) are optional. Other keys, and CSV columns beyond the named ones, are metadata: they
are kept, never rejected (empty metadata cells are omitted).

Rules:

* ``split`` is train, val or test. Without any val row, part of train is held out as val. When
  every train row names a ``subject`` and there are at least 3 subjects (and ``by_subject``),
  whole subjects are held out: ``max(1, round(val_fraction * n))`` of the n train subjects (at
  most n - 2), drawn with a generator seeded by ``seed``, so that no val person is seen in
  training (as in the test splits of most AQA datasets); if that would leave a category with
  fewer than 2 train recordings or none in val, the per-category draw below is used. Otherwise per
  category with at least 4 train recordings, up to ``max(2, round(val_fraction * n))`` of its n
  (at most n - 2), drawn with a generator seeded by ``seed`` and the category name. Recordings
  linked by given train pairs are drawn as whole groups so pairs stay intact; if that cannot
  give two, single recordings are drawn. A given train pair whose two recordings both went to
  val becomes a val pair; one with a recording on each side is dropped.
* Without ``pairs.csv`` the pairs are all unordered pairs of recordings sharing split and
  category (sorted by split, category and id).
* Bad input raises ``ValueError`` or ``FileNotFoundError`` naming the file and the 1-based CSV
  line (or the joint), and saying how to fix it. Loading opens files read-only and never writes.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import numpy as np

from kept.io import atomic_path
from pose.kinematics import UP_AXES
from pose.skeleton import BUILTIN_SKELETONS, Skeleton, get_skeleton

__all__ = ["Recording", "Pair", "KeypointDataset", "load_dataset", "write_dataset"]

SPLITS = ("train", "val", "test")
_SAMPLE_COLUMNS = ("id", "split", "category", "score", "subject", "commentary")
_PAIR_COLUMNS = ("id_a", "id_b", "split", "description")


@dataclass(frozen=True)
class Recording:
    """One row of samples.csv; ``meta`` holds the non-empty cells of any other columns."""

    id: str
    split: str
    category: str
    score: float
    subject: str | None = None
    commentary: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pair:
    """One row of pairs.csv (or a derived pair); ``meta`` holds any other columns."""

    id_a: str
    id_b: str
    split: str
    description: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class KeypointDataset:
    """A loaded keypoint folder; keypoint arrays are read lazily by :meth:`keypoints`.

    ``recordings`` is in samples.csv order, with the splits after the val hold-out;
    ``held_out_val`` lists the ids moved from train to val; ``meta`` is the whole dataset.json.
    """

    root: Path
    name: str
    fps: float
    skeleton: Skeleton
    up_axis: str
    score_range: tuple[float, float]
    score_range_given: bool
    recordings: dict[str, Recording]
    pairs: list[Pair]
    meta: dict
    held_out_val: tuple[str, ...] = ()

    def keypoints(self, rid: str) -> np.ndarray:
        """Load and validate the keypoints of one recording.

        Args:
            rid: a recording id.

        Returns:
            The keypoints, NaN where a joint is missing.

        Shapes:
            returns: (F, P, 3) float32
        """
        if rid not in self.recordings:
            raise KeyError(f"dataset '{self.name}' has no recording '{rid}'")
        path = self.root / "keypoints" / f"{rid}.npy"
        arr = _load_array(path, mmap=False)
        _check_array(arr, path, self.skeleton)
        return np.ascontiguousarray(arr, dtype=np.float32)

    def ids(self, split: str | None = None) -> list[str]:
        """Recording ids of ``split`` (all when None), in samples.csv order."""
        _check_split_arg(split)
        return [r.id for r in self.recordings.values() if split is None or r.split == split]

    def pairs_in(self, split: str) -> list[Pair]:
        """The pairs of one split, in dataset order."""
        _check_split_arg(split)
        return [p for p in self.pairs if p.split == split]

    def categories(self, split: str | None = None) -> list[str]:
        """Sorted categories of the recordings in ``split`` (all when None)."""
        return sorted({self.recordings[i].category for i in self.ids(split)})

    def normalize_score(self, s: float | np.ndarray) -> float | np.ndarray:
        """Map ``score_range`` to [0, 1] (a zero-width derived range maps to 0)."""
        lo, hi = self.score_range
        return (s - lo) / ((hi - lo) or 1.0)

    def denormalize_score(self, s: float | np.ndarray) -> float | np.ndarray:
        """Inverse of :meth:`normalize_score`."""
        lo, hi = self.score_range
        return s * ((hi - lo) or 1.0) + lo


def load_dataset(
    root: str | Path, *, val_fraction: float = 0.15, seed: int = 0, check_keypoints: bool = True,
    by_subject: bool = True,
) -> KeypointDataset:
    """Read and validate a keypoint folder.

    Args:
        root: the dataset folder.
        val_fraction: share of each category's train recordings held out as val when
            samples.csv has no val row (0 disables the hold-out).
        seed: seed of the hold-out draw.
        check_keypoints: validate every keypoint file now (shape from the .npy header, all-NaN
            check); with False only their existence is checked.
        by_subject: hold val out by subject when samples.csv names them (see the module docstring).

    Returns:
        The dataset.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {root} does not exist; pass the folder holding dataset.json"
        )
    meta_path = root / "dataset.json"
    meta = _read_json(meta_path)
    name, fps, up_axis = meta["name"], meta["fps"], meta.get("up_axis", "y")
    try:
        skeleton = get_skeleton(meta["skeleton"], name=name)
    except ValueError as e:
        raise ValueError(f"{meta_path}: {e}") from None

    recordings, lines = _read_samples(root / "samples.csv")
    counts = Counter(r.category for r in recordings.values())
    for rid, r in recordings.items():
        if counts[r.category] < 2:
            raise ValueError(
                f"{root / 'samples.csv'} line {lines[rid]}: category '{r.category}' has only one "
                f"recording ('{rid}'); every category needs at least two to be compared. Add a "
                "recording or merge the category into another."
            )

    if "score_range" in meta:
        score_range = _parse_score_range(meta["score_range"], meta_path)
        lo, hi = score_range
        for r in recordings.values():
            if not lo <= r.score <= hi:
                raise ValueError(
                    f"{root / 'samples.csv'} line {lines[r.id]}: score {r.score} of '{r.id}' is "
                    f"outside score_range [{lo}, {hi}] of {meta_path}; fix the score or widen "
                    "the range."
                )
    else:
        score_range = (min(r.score for r in recordings.values()),
                       max(r.score for r in recordings.values()))

    for rid in recordings:
        path = root / "keypoints" / f"{rid}.npy"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found (recording '{rid}', samples.csv line {lines[rid]}); "
                "save its keypoints there or remove the row."
            )
        if check_keypoints:
            _check_array(_load_array(path, mmap=True), path, skeleton)

    pairs_path = root / "pairs.csv"
    pairs = _read_pairs(pairs_path, recordings) if pairs_path.is_file() else None
    held_out: list[str] = []
    if not any(r.split == "val" for r in recordings.values()) and val_fraction > 0:
        held_out = (_hold_out_subjects(recordings, val_fraction, seed) if by_subject else None) \
            or _hold_out(recordings, pairs, val_fraction, seed)
        for rid in held_out:
            recordings[rid] = replace(recordings[rid], split="val")
        if pairs is not None:
            pairs = _move_pairs(pairs, set(held_out))
    if pairs is None:
        pairs = _derive_pairs(recordings)

    return KeypointDataset(
        root=root, name=name, fps=float(fps), skeleton=skeleton, up_axis=up_axis,
        score_range=score_range, score_range_given="score_range" in meta,
        recordings=recordings, pairs=pairs, meta=meta, held_out_val=tuple(held_out),
    )


def write_dataset(
    root: str | Path,
    *,
    name: str,
    fps: float,
    skeleton: str | Skeleton,
    recordings: list[Recording],
    keypoints: dict[str, np.ndarray],
    pairs: list[Pair] | None = None,
    score_range: tuple[float, float] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a keypoint folder (each file atomically); the inverse of :func:`load_dataset`.

    Args:
        root: the folder to create (or update).
        name, fps: dataset name and frame rate.
        skeleton: a built-in skeleton name or a :class:`Skeleton` (written by name when it is a
            built-in, else inline).
        recordings: the samples.csv rows, in order; ``meta`` keys become extra columns.
        keypoints: recording id -> its keypoints.
        pairs: the pairs.csv rows; None writes none (and removes a stale one), so pairs are
            derived on load.
        score_range: optional [lo, hi].
        extra: other dataset.json keys (e.g. ``up_axis``, ``meta``).

    Returns:
        ``root`` as a Path.

    Shapes:
        keypoints[id]: (F, P, 3), saved as float32
    """
    root = Path(root)
    skel = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
    ids = [r.id for r in recordings]
    if len(set(ids)) != len(ids):
        raise ValueError("write_dataset: recording ids must be unique")
    if set(ids) != set(keypoints):
        raise ValueError(
            f"write_dataset: recordings without keypoints {sorted(set(ids) - set(keypoints))}, "
            f"keypoints without a recording {sorted(set(keypoints) - set(ids))}"
        )
    spec: dict[str, Any] = {"name": name, "fps": float(fps)}
    if score_range is not None:
        spec["score_range"] = [float(score_range[0]), float(score_range[1])]
    builtin = BUILTIN_SKELETONS.get(skel.name) == skel
    spec["skeleton"] = skel.name if builtin else skel.to_spec()
    clash = sorted(set(spec) & set(extra or {}))
    if clash:
        raise ValueError(f"write_dataset: extra repeats {clash}; pass them as arguments")
    spec.update(extra or {})

    (root / "keypoints").mkdir(parents=True, exist_ok=True)
    for rid in ids:
        path = root / "keypoints" / f"{rid}.npy"
        arr = np.asarray(keypoints[rid], dtype=np.float32)
        _check_array(arr, path, skel)
        _atomic_write(path, lambda f, a=arr: np.save(f, a), binary=True)
    _atomic_write(root / "dataset.json", lambda f: json.dump(spec, f, indent=1))
    _atomic_write(root / "samples.csv", lambda f: _write_csv(
        f, _SAMPLE_COLUMNS, [([r.id, r.split, r.category, repr(float(r.score)), r.subject,
                               r.commentary], r.meta) for r in recordings]))
    if pairs is None:
        (root / "pairs.csv").unlink(missing_ok=True)
    else:
        _atomic_write(root / "pairs.csv", lambda f: _write_csv(
            f, _PAIR_COLUMNS,
            [([p.id_a, p.id_b, p.split, p.description], p.meta) for p in pairs]))
    return root


# -- reading ---------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; every dataset folder needs a dataset.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: must hold a JSON object, got {type(meta).__name__}")
    missing = [k for k in ("name", "fps", "skeleton") if k not in meta]
    if missing:
        raise ValueError(f"{path}: missing required keys {missing}; add them (see the README)")
    if not isinstance(meta["name"], str) or not meta["name"]:
        raise ValueError(f"{path}: 'name' must be a non-empty string, got {meta['name']!r}")
    fps = meta["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or math.isinf(fps):
        raise ValueError(f"{path}: 'fps' must be a positive number of frames per second, got {fps!r}")
    if meta.get("up_axis", "y") not in UP_AXES:
        raise ValueError(f"{path}: 'up_axis' must be one of {sorted(UP_AXES)}, got {meta['up_axis']!r}")
    return meta


def _parse_score_range(value: Any, path: Path) -> tuple[float, float]:
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok or not value[0] < value[1]:
        raise ValueError(f"{path}: 'score_range' must be [lo, hi] with numbers lo < hi, got {value!r}")
    return float(value[0]), float(value[1])


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with stripped cells, after checking the header."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path} line 1: missing columns {missing}; the header must start with "
                             f"{','.join(required)}")
        reader.fieldnames = header
        for row in reader:
            if None in row:
                raise ValueError(f"{path} line {reader.line_num}: more cells than header columns; "
                                 "quote cells that contain commas")
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


def _read_samples(path: Path) -> tuple[dict[str, Recording], dict[str, int]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; list the recordings there (id,split,category,score)"
        )
    recordings: dict[str, Recording] = {}
    lines: dict[str, int] = {}
    for line, row in _csv_rows(path, _SAMPLE_COLUMNS[:4]):
        where = f"{path} line {line}"
        rid = row["id"]
        if not rid or rid in (".", "..") or "/" in rid or "\\" in rid:
            raise ValueError(f"{where}: id {rid!r} must be a non-empty file name without slashes")
        if rid in recordings:
            raise ValueError(
                f"{where}: duplicate id '{rid}' (first on line {lines[rid]}); ids must be unique"
            )
        _check_split(row["split"], where)
        if not row["category"]:
            raise ValueError(f"{where}: empty category; name the action of recording '{rid}'")
        try:
            score = float(row["score"])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise ValueError(f"{where}: score {row['score']!r} is not a finite number; write e.g. 0.75")
        recordings[rid] = Recording(
            id=rid, split=row["split"], category=row["category"], score=score,
            subject=row.get("subject") or None, commentary=row.get("commentary") or None,
            meta={k: v for k, v in row.items() if k not in _SAMPLE_COLUMNS and v},
        )
        lines[rid] = line
    if not recordings:
        raise ValueError(f"{path}: no recordings; add one row per recording")
    return recordings, lines


def _read_pairs(path: Path, recordings: dict[str, Recording]) -> list[Pair]:
    pairs = []
    for line, row in _csv_rows(path, _PAIR_COLUMNS[:3]):
        where = f"{path} line {line}"
        a, b, split = row["id_a"], row["id_b"], row["split"]
        _check_split(split, where)
        unknown = [i for i in (a, b) if i not in recordings]
        if unknown:
            raise ValueError(
                f"{where}: unknown recording ids {unknown}; every id must be in samples.csv"
            )
        if a == b:
            raise ValueError(
                f"{where}: pairs recording '{a}' with itself; pair two different recordings"
            )
        ra, rb = recordings[a], recordings[b]
        if ra.category != rb.category:
            raise ValueError(f"{where}: '{a}' is category '{ra.category}' but '{b}' is "
                             f"'{rb.category}'; a pair must share its category")
        if not ra.split == rb.split == split:
            raise ValueError(f"{where}: pair split '{split}' but '{a}' is in '{ra.split}' and '{b}' "
                             f"in '{rb.split}'; a pair's split must be its recordings' split")
        pairs.append(Pair(a, b, split, row.get("description") or None,
                          {k: v for k, v in row.items() if k not in _PAIR_COLUMNS and v}))
    return pairs


def _check_split(split: str, where: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{where}: unknown split {split!r}; use one of {list(SPLITS)}")


def _check_split_arg(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {list(SPLITS)} or None")


def _load_array(path: Path, *, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e}); save it with numpy.save") from None


def _check_array(arr: np.ndarray, path: Path, skeleton: Skeleton) -> None:
    """Check a keypoint array: (F, P, 3) with F >= 1, numeric, finite where present, not all NaN."""
    if arr.ndim != 3:
        raise ValueError(f"{path}: keypoints must have shape (frames, joints, 3), got shape "
                         f"{arr.shape} (rank {arr.ndim}); save one (F, P, 3) array per recording")
    if arr.shape[2] != 3:
        raise ValueError(f"{path}: last dimension must be 3 (x, y, z), got shape {arr.shape}; "
                         "add a z coordinate (e.g. zeros for 2-D poses)")
    if arr.shape[1] != skeleton.num_joints:
        raise ValueError(f"{path}: {arr.shape[1]} joints but skeleton '{skeleton.name}' has "
                         f"{skeleton.num_joints} {list(skeleton.joints)}; store the joints in "
                         "that order, NaN for missing ones")
    if arr.shape[0] == 0:
        raise ValueError(f"{path}: no frames; remove the recording or re-extract its poses")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{path}: dtype {arr.dtype} is not numeric; save float32 coordinates")
    if np.isnan(arr).all():
        raise ValueError(f"{path}: every value is NaN (no joint found in any frame); remove the "
                         "recording from samples.csv or re-extract its poses")
    if np.isinf(arr).any():
        raise ValueError(f"{path}: contains infinite values; use NaN for missing joints")


# -- val hold-out and pairs ------------------------------------------------------------------
def _hold_out(
    recordings: dict[str, Recording], pairs: list[Pair] | None, val_fraction: float, seed: int
) -> list[str]:
    """Ids moved from train to val, in samples.csv order (see the module docstring).

    Recordings linked by train pairs are drawn as whole groups (shuffled, each taken while it
    fits in the category's quota) so that no given pair is split; if that yields fewer than two,
    single recordings are drawn instead.
    """
    parent = {rid: rid for rid in recordings}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs or []:
        if p.split == "train":
            parent[find(p.id_a)] = find(p.id_b)
    by_cat: dict[str, dict[str, list[str]]] = {}
    for r in recordings.values():
        if r.split == "train":
            by_cat.setdefault(r.category, {}).setdefault(find(r.id), []).append(r.id)
    chosen: list[str] = []
    for cat, groups in sorted(by_cat.items()):
        ids = sorted(i for g in groups.values() for i in g)
        if len(ids) < 4:
            continue
        n = min(max(2, round(val_fraction * len(ids))), len(ids) - 2)
        rng = random.Random(f"{seed}:{cat}")
        units = sorted(sorted(g) for g in groups.values())
        rng.shuffle(units)
        picked: list[str] = []
        for unit in units:
            if len(picked) + len(unit) <= n:
                picked += unit
        chosen += picked if len(picked) >= 2 else rng.sample(ids, n)
    return [rid for rid in recordings if rid in set(chosen)]


def _hold_out_subjects(recordings: dict[str, Recording], val_fraction: float, seed: int) -> list[str] | None:
    """Ids of the train recordings of held-out subjects, in samples.csv order, or None when the
    subjects do not allow it (see the module docstring)."""
    train = [r for r in recordings.values() if r.split == "train"]
    if not train or any(not r.subject for r in train):
        return None
    subjects = sorted({r.subject for r in train})
    if len(subjects) < 3:
        return None
    n = min(max(1, round(val_fraction * len(subjects))), len(subjects) - 2)
    picked = set(random.Random(f"{seed}:subjects").sample(subjects, n))
    chosen = [r.id for r in train if r.subject in picked]
    for cat in {r.category for r in train}:
        members = [r for r in train if r.category == cat]
        held = sum(r.subject in picked for r in members)
        if len(members) - held < 2 or (len(members) >= 4 and held == 0):
            return None
    return chosen


def _move_pairs(pairs: list[Pair], val: set[str]) -> list[Pair]:
    """Train pairs inside val become val pairs; pairs straddling train and val are dropped."""
    out = []
    for p in pairs:
        inside = (p.id_a in val) + (p.id_b in val)
        if inside == 2:
            out.append(replace(p, split="val"))
        elif inside == 0:
            out.append(p)
    return out


def _derive_pairs(recordings: dict[str, Recording]) -> list[Pair]:
    groups: dict[tuple[int, str], list[str]] = {}
    for r in recordings.values():
        groups.setdefault((SPLITS.index(r.split), r.category), []).append(r.id)
    return [Pair(a, b, SPLITS[s]) for (s, _), ids in sorted(groups.items())
            for a, b in itertools.combinations(sorted(ids), 2)]


# -- writing ---------------------------------------------------------------------------------
def _write_csv(f: IO[str], columns: tuple[str, ...], rows: list[tuple[list, dict]]) -> None:
    """Named columns first, then the union of the meta keys in first-seen order."""
    extra = list(dict.fromkeys(k for _, meta in rows for k in meta if k not in columns))
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow([*columns, *extra])
    for cells, meta in rows:
        writer.writerow([("" if c is None else c) for c in cells] + [meta.get(k, "") for k in extra])


def _atomic_write(path: Path, write: Callable[[IO], None], *, binary: bool = False) -> None:
    """Write through a temp file in the same folder, then rename it onto ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
