"""FitnessAQA (Parmar et al., ECCV 2022) error detection in the keypoint-folder format.

The KEPT paper reports F1 for four binary errors; each becomes its own keypoint-folder dataset
(:data:`ERROR_TYPES`): ``ohp_knee`` (overhead press, knees), ``ohp_elbow`` (overhead press,
elbow flare), ``squat_forward`` (squat, knees forward), ``squat_inward`` (squat, knees inward).
Label 1 means the error is present; the score branch's output is thresholded at the value
that maximises F1 on the training split (:func:`kept.metrics.best_f1_threshold`, :func:`kept.metrics.f1_at`, re-exported here).

The release has videos and labels but **no body keypoints**: poses must be extracted first
(any 2-D/3-D estimator, saved as ``.npy`` arrays (frames, joints, 3) in a named skeleton).

Source 1, the official release (:func:`read_official`)::

    ROOT[/Fitness-AQA_dataset_release]/<Exercise>/Labeled_Dataset/Splits/{train,val,test}_keys.json
    ROOT[/Fitness-AQA_dataset_release]/<Exercise>/Labeled_Dataset/Labels/<label file>.json

with Exercise ``OHP`` or ``Squat``. A split file is a JSON list of video keys (e.g.
``"11681_3"``); a label file is a JSON object ``{key: [[start, end], ...]}`` listing the error's
time segments, an empty list meaning no error (label = 1 iff the list is non-empty). Label files
(:data:`OFFICIAL_LABEL_FILES`): OHP ``error_knees.json`` / ``error_elbows.json``, Squat
``error_knees_forward.json`` / ``error_knees_inward.json``. *Assumption*: this layout is taken
from public code that reads the release (the official repository ParitoshParmar/Fitness-AQA
publishes no format description; its SSL data loader reads ``val_keys.json`` / ``test_keys.json``
lists); a key missing from a label file counts as "not annotated" (never as negative).
Keypoints are looked up as ``KEYPOINTS_ROOT/<Exercise>/<key>.npy``, then
``KEYPOINTS_ROOT/<key>.npy``.

Source 2, the manifest (the documented fallback, :func:`read_manifest`), a CSV file::

    id,split,exercise,keypoints,ohp_knee,ohp_elbow,squat_forward,squat_inward[,subject][,skeleton][,...]
    11681_3,train,OHP,kp/11681_3.npy,1,0,,
    52_0,test,Squat,kp/52_0.npy,,,0,1

``split`` is train, val or test; ``exercise`` OHP or Squat (case-insensitive; other exercises
are read but carry no label here); ``keypoints`` a ``.npy`` path, absolute or relative to
``keypoints_root`` (default: the manifest's folder); the error columns (all four must be in
the header) hold 0, 1 or nothing (not annotated, e.g. an error of the other exercise); a 0/1
in a column of another exercise is an error. ``subject`` is optional; ``skeleton`` optionally
names a built-in skeleton per row (default: the ``skeleton`` argument of
:func:`convert_fitnessaqa`). Other columns are kept as metadata. Malformed rows raise
``ValueError`` naming the file and the 1-based line.

Conversion (:func:`convert_fitnessaqa`): one keypoint folder per error type, ``out/<error_type>/``,
holding the recordings of its exercise that have a label for that error: score = the label
(0/1), ``score_range`` [0, 1], category = the exercise, splits as given, no pairs.csv (pairs are
all pairs within split), extra dataset.json keys ``error_type``, ``labels: "binary"``,
``exercise``, ``error`` and ``source``. Missing keypoint files, unreadable or malformed arrays
(wrong rank, joint count, all-NaN, infinite values) and rows without any label are skipped and
counted in the report (and a warning gives the counts); (F, P, 2) arrays get a zero z. An error
type is not written (and reported) when train or test has fewer than 2 recordings or val has
exactly 1 (*decision*: an empty val is allowed; :func:`kept.data.folder.load_dataset` then holds
part of train out). Everything is read and checked before anything is written.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kept.metrics import best_f1_threshold as best_threshold  # noqa: F401 (re-exported)
from kept.metrics import f1_at  # noqa: F401 (re-exported)

from kept.data.folder import Recording, write_dataset
from pose.skeleton import BUILTIN_SKELETONS, get_skeleton

__all__ = [
    "ERROR_TYPES", "OFFICIAL_LABEL_FILES", "read_manifest", "read_official",
    "convert_fitnessaqa", "best_threshold", "f1_at",
]

log = logging.getLogger(__name__)

#: error type -> (exercise, error). Exercise names are the release's folder names.
ERROR_TYPES: dict[str, tuple[str, str]] = {
    "ohp_knee": ("OHP", "knees"),
    "ohp_elbow": ("OHP", "elbow flare"),
    "squat_forward": ("Squat", "knees forward"),
    "squat_inward": ("Squat", "knees inward"),
}
#: error type -> label file in ``<Exercise>/Labeled_Dataset/Labels/`` of the release.
OFFICIAL_LABEL_FILES: dict[str, str] = {
    "ohp_knee": "error_knees.json",
    "ohp_elbow": "error_elbows.json",
    "squat_forward": "error_knees_forward.json",
    "squat_inward": "error_knees_inward.json",
}
SPLITS = ("train", "val", "test")
_EXERCISES = {ex.lower(): ex for ex, _ in ERROR_TYPES.values()}
_MANIFEST_COLUMNS = ("id", "split", "exercise", "keypoints")
_KNOWN_COLUMNS = (*_MANIFEST_COLUMNS, *ERROR_TYPES, "subject", "skeleton")
_RELEASE_DIR = "Fitness-AQA_dataset_release"


# -- reading -----------------------------------------------------------------------------------
def read_manifest(path: str | Path) -> list[dict]:
    """Read a manifest CSV (layout in the module docstring).

    Args:
        path: the manifest file.

    Returns:
        One dict per row, in file order: ``id``, ``split``, ``exercise`` (canonical name for
        OHP/Squat), ``keypoints`` (the cell, unresolved), ``labels`` ({error type: 0, 1 or
        None}), ``subject``, ``skeleton`` (None when not given), ``meta`` (other non-empty
        cells), ``source`` (the file) and ``line`` (1-based).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file and line, for a missing column, an empty id, exercise or
            keypoints cell, a duplicate id, an unknown split or skeleton, a label other than
            0/1, or a label given for another exercise's error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found; write a CSV with header "
                                f"{','.join((*_MANIFEST_COLUMNS, *ERROR_TYPES))}")
    rows: list[dict] = []
    first: dict[str, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in (*_MANIFEST_COLUMNS, *ERROR_TYPES) if c not in header]
        if missing:
            raise ValueError(
                f"{path} line 1: missing columns {missing}; the header needs "
                f"{','.join((*_MANIFEST_COLUMNS, *ERROR_TYPES))} (error cells may be empty)")
        reader.fieldnames = header
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if None in row:
                raise ValueError(f"{where}: more cells than header columns; quote cells that "
                                 "contain commas")
            row = {k: (v or "").strip() for k, v in row.items()}
            rid = row["id"]
            if not rid or rid in (".", "..") or "/" in rid or "\\" in rid:
                raise ValueError(f"{where}: id {rid!r} must be a non-empty name without slashes")
            if rid in first:
                raise ValueError(f"{where}: duplicate id '{rid}' (first on line {first[rid]}); "
                                 "ids must be unique")
            if row["split"] not in SPLITS:
                raise ValueError(f"{where}: unknown split {row['split']!r}; use one of "
                                 f"{list(SPLITS)}")
            if not row["exercise"]:
                raise ValueError(f"{where}: empty exercise; write OHP or Squat")
            exercise = _EXERCISES.get(row["exercise"].lower(), row["exercise"])
            if not row["keypoints"]:
                raise ValueError(f"{where}: empty keypoints cell; give the .npy path of '{rid}'")
            skeleton = row.get("skeleton") or None
            if skeleton is not None and skeleton not in BUILTIN_SKELETONS:
                raise ValueError(f"{where}: unknown skeleton {skeleton!r}; use one of "
                                 f"{sorted(BUILTIN_SKELETONS)} or leave the cell empty")
            labels: dict[str, int | None] = {}
            for et, (ex, _) in ERROR_TYPES.items():
                cell = row[et]
                if cell == "":
                    labels[et] = None
                    continue
                value = _parse_label(cell)
                if value is None:
                    raise ValueError(f"{where}: {et} label {cell!r} must be 0, 1 or empty")
                if ex != exercise:
                    raise ValueError(f"{where}: {et} is an {ex} error but '{rid}' is exercise "
                                     f"'{exercise}'; leave the cell empty")
                labels[et] = value
            first[rid] = reader.line_num
            rows.append({
                "id": rid, "split": row["split"], "exercise": exercise,
                "keypoints": row["keypoints"], "labels": labels,
                "subject": row.get("subject") or None, "skeleton": skeleton,
                "meta": {k: v for k, v in row.items() if k not in _KNOWN_COLUMNS and v},
                "source": str(path), "line": reader.line_num,
            })
    if not rows:
        raise ValueError(f"{path}: no rows; add one row per recording")
    return rows


def _parse_label(cell: str) -> int | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return int(v) if v in (0.0, 1.0) else None


def read_official(root: str | Path) -> list[dict]:
    """Read the official release's splits and error labels (layout in the module docstring).

    Args:
        root: the folder holding ``OHP/`` and/or ``Squat/`` (or ``Fitness-AQA_dataset_release/``).

    Returns:
        One dict per (exercise, key) in the split files, as :func:`read_manifest` returns
        them, with ``keypoints`` None (looked up under ``keypoints_root`` on conversion),
        ``line`` None and ``source`` the split file. Labels: 1 for a non-empty segment list,
        0 for an empty one, None when the key is not in that label file.

    Raises:
        FileNotFoundError: neither exercise folder found, or a split or label file missing in
            an exercise folder.
        ValueError: naming the file (and key), for invalid JSON, a split file that is not a
            list of keys, a key in two splits, or a label file that is not an object of lists.
    """
    root = Path(root)
    if (root / _RELEASE_DIR).is_dir():
        root = root / _RELEASE_DIR
    exercises = sorted({ex for ex, _ in ERROR_TYPES.values()})
    found = [ex for ex in exercises if (root / ex / "Labeled_Dataset").is_dir()]
    if not found:
        raise FileNotFoundError(
            f"no FitnessAQA release under {root}: expected "
            f"{' or '.join(f'{ex}/Labeled_Dataset/' for ex in exercises)} (Splits/ and Labels/)")
    records: list[dict] = []
    for ex in found:
        base = root / ex / "Labeled_Dataset"
        labels = {et: _read_label_file(base / "Labels" / OFFICIAL_LABEL_FILES[et])
                  for et, (e, _) in ERROR_TYPES.items() if e == ex}
        seen: dict[str, Path] = {}
        for split in SPLITS:
            spath = base / "Splits" / f"{split}_keys.json"
            keys = _read_json_file(spath)
            if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
                raise ValueError(f"{spath}: must be a JSON list of video keys (strings)")
            for key in keys:
                if key in seen:
                    raise ValueError(f"{spath}: key '{key}' is also in {seen[key]}; a video "
                                     "belongs to one split")
                seen[key] = spath
                records.append({
                    "id": key, "split": split, "exercise": ex, "keypoints": None,
                    "labels": {et: lab.get(key) for et, lab in labels.items()}
                    | {et: None for et, (e, _) in ERROR_TYPES.items() if e != ex},
                    "subject": None, "skeleton": None, "meta": {},
                    "source": str(spath), "line": None,
                })
    return records


def _read_json_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is this the FitnessAQA release layout "
                                "<Exercise>/Labeled_Dataset/{Splits,Labels}/?")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: "
                         f"{e.msg}") from None


def _read_label_file(path: Path) -> dict[str, int]:
    data = _read_json_file(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be a JSON object {{key: [[start, end], ...]}}, got "
                         f"{type(data).__name__}")
    out = {}
    for key, value in data.items():
        if isinstance(value, list):
            out[key] = int(len(value) > 0)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
            out[key] = int(value)
        else:
            raise ValueError(f"{path}: key '{key}': label {value!r} must be a list of error "
                             "segments (empty: no error) or 0/1")
    return out


# -- conversion --------------------------------------------------------------------------------
def convert_fitnessaqa(
    source: str | Path,
    out: str | Path,
    *,
    keypoints_root: str | Path | None = None,
    skeleton: str = "coco17",
    fps: float = 30.0,
    error_types: Sequence[str] | None = None,
    progress: bool = True,
) -> tuple[dict[str, Path], dict]:
    """Write one keypoint folder per error type, ``out/<error_type>/``.

    Args:
        source: a manifest CSV file (:func:`read_manifest`) or the release folder
            (:func:`read_official`).
        out: the parent folder of the datasets.
        keypoints_root: where relative manifest paths resolve (default: the manifest's folder);
            required for the release (``<root>/<Exercise>/<key>.npy`` or ``<root>/<key>.npy``).
        skeleton: built-in skeleton of the arrays (a manifest ``skeleton`` cell overrides it).
        fps: frame rate written to dataset.json.
        error_types: the error types to convert (default: all of :data:`ERROR_TYPES`).
        progress: print one line per error type and the summary to stderr.

    Returns:
        ``({error_type: folder}, report)`` for the written datasets; report: ``source``,
        ``n_rows``, ``skipped`` ({reason: count} for ``missing_keypoints``,
        ``unreadable_keypoints``, ``no_label``), ``skipped_ids`` ({reason: sorted ids}),
        ``errors`` ({id: message} for unreadable arrays), ``datasets`` ({error type: {"path",
        "n": {split: n}, "positives": {split: n}, "unlabeled": n}}) and ``not_written``
        ({error type: reason}).

    Raises:
        ValueError: bad manifest/release (see the readers), an unknown error type or skeleton,
            a release without ``keypoints_root``, or rows of one error type in different
            skeletons.
    """
    source, out = Path(source), Path(out)
    wanted = list(ERROR_TYPES) if error_types is None else list(error_types)
    unknown = [et for et in wanted if et not in ERROR_TYPES]
    if unknown:
        raise ValueError(f"unknown error types {unknown}; use some of {list(ERROR_TYPES)}")
    if skeleton not in BUILTIN_SKELETONS:
        raise ValueError(f"unknown skeleton {skeleton!r}; use one of {sorted(BUILTIN_SKELETONS)}")
    if source.is_dir():
        if keypoints_root is None:
            raise ValueError(f"{source} is the FitnessAQA release, which holds no keypoints; pass "
                             "keypoints_root (a folder of <Exercise>/<key>.npy or <key>.npy)")
        rows = read_official(source)
        kroot = Path(keypoints_root)
    else:
        rows = read_manifest(source)
        kroot = Path(keypoints_root) if keypoints_root is not None else source.parent

    # per error type: skeletons must agree (a configuration error, raised before any work)
    for et in wanted:
        names = {r["skeleton"] or skeleton for r in rows if r["labels"][et] is not None}
        if len(names) > 1:
            lines = [r["line"] for r in rows if r["labels"][et] is not None
                     and (r["skeleton"] or skeleton) != sorted(names)[0]][:5]
            raise ValueError(f"{source}: error type {et} mixes skeletons {sorted(names)} (e.g. "
                             f"lines {lines}); one dataset needs one skeleton")

    skipped_ids: dict[str, list[str]] = {"missing_keypoints": [], "unreadable_keypoints": [],
                                         "no_label": []}
    errors: dict[str, str] = {}
    arrays: dict[int, np.ndarray] = {}  # row index -> keypoints
    for i, r in enumerate(rows):
        if all(r["labels"][et] is None for et in wanted):
            skipped_ids["no_label"].append(r["id"])
            continue
        path = _keypoint_path(r, kroot)
        if path is None:
            skipped_ids["missing_keypoints"].append(r["id"])
            continue
        try:
            arrays[i] = _load_keypoints(path, r["skeleton"] or skeleton)
        except ValueError as e:
            skipped_ids["unreadable_keypoints"].append(r["id"])
            errors[r["id"]] = str(e)

    datasets: dict[str, dict] = {}
    not_written: dict[str, str] = {}
    plans: dict[str, tuple[list[Recording], dict[str, np.ndarray], str]] = {}
    for et in wanted:
        ex, err = ERROR_TYPES[et]
        recs, kps = [], {}
        skel = skeleton
        for i, r in enumerate(rows):
            if r["labels"][et] is None or i not in arrays:
                continue
            skel = r["skeleton"] or skeleton
            recs.append(Recording(id=r["id"], split=r["split"], category=ex,
                                  score=float(r["labels"][et]), subject=r["subject"],
                                  meta=dict(r["meta"])))
            kps[r["id"]] = arrays[i]
        n = {s: sum(x.split == s for x in recs) for s in SPLITS}
        pos = {s: int(sum(x.score for x in recs if x.split == s)) for s in SPLITS}
        unlabeled = sum(r["exercise"] == ex and r["labels"][et] is None for r in rows)
        datasets[et] = {"path": None, "n": n, "positives": pos, "unlabeled": unlabeled}
        short = [s for s in SPLITS if n[s] < 2 and not (s == "val" and n[s] == 0)]
        if short:
            not_written[et] = ("fewer than 2 recordings in " + ", ".join(
                f"{s} ({n[s]})" for s in short))
            continue
        plans[et] = (recs, kps, skel)

    written: dict[str, Path] = {}
    for et, (recs, kps, skel) in plans.items():
        ex, err = ERROR_TYPES[et]
        root = out / et
        write_dataset(root, name=f"fitnessaqa_{et}", fps=fps, skeleton=skel, recordings=recs,
                      keypoints=kps, score_range=(0.0, 1.0),
                      extra={"error_type": et, "labels": "binary", "exercise": ex,
                             "error": err, "source": "FitnessAQA"})
        keep = {f"{r.id}.npy" for r in recs}
        for stale in (root / "keypoints").glob("*.npy"):
            if stale.name not in keep:
                stale.unlink()
        written[et] = root
        datasets[et]["path"] = str(root)
        if progress:
            d = datasets[et]
            print(f"fitnessaqa: {et}: " + ", ".join(
                f"{s} {d['n'][s]} ({d['positives'][s]} with error)" for s in SPLITS)
                + f" -> {root}", file=sys.stderr)

    skipped_ids = {k: sorted(v) for k, v in skipped_ids.items()}
    report = {
        "source": str(source), "n_rows": len(rows),
        "skipped": {k: len(v) for k, v in skipped_ids.items()}, "skipped_ids": skipped_ids,
        "errors": errors, "datasets": datasets, "not_written": not_written,
    }
    line = (f"fitnessaqa: wrote {len(written)} of {len(wanted)} error types from {source}; "
            f"skipped rows: " + ", ".join(f"{k} {v}" for k, v in report["skipped"].items()))
    log.info(line)
    if progress:
        print(line, file=sys.stderr)
    problems = [f"{k}: {v}" for k, v in report["skipped"].items() if v]
    problems += [f"{et} not written ({why})" for et, why in not_written.items()]
    if problems:
        warnings.warn(f"fitnessaqa conversion of {source}: " + "; ".join(problems)
                      + " (see the report)", stacklevel=2)
    return written, report


def _keypoint_path(row: dict, kroot: Path) -> Path | None:
    if row["keypoints"] is None:  # the release: look the key up
        cands = [kroot / row["exercise"] / f"{row['id']}.npy", kroot / f"{row['id']}.npy"]
    else:
        p = Path(row["keypoints"])
        cands = [p if p.is_absolute() else kroot / p]
    return next((c for c in cands if c.is_file()), None)


def _load_keypoints(path: Path, skeleton: str) -> np.ndarray:
    """Load and check one array; ValueError (naming the file) when it is unusable."""
    skel = get_skeleton(skeleton)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e})") from None
    if not isinstance(arr, np.ndarray) or not (
            np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{path}: not a numeric array")
    if arr.ndim != 3 or arr.shape[2] not in (2, 3):
        raise ValueError(f"{path}: shape {arr.shape}, expected (frames, joints, 3)")
    if arr.shape[1] != skel.num_joints:
        raise ValueError(f"{path}: {arr.shape[1]} joints, skeleton '{skel.name}' has "
                         f"{skel.num_joints}")
    if arr.shape[0] == 0:
        raise ValueError(f"{path}: no frames")
    arr = arr.astype(np.float32)
    if arr.shape[2] == 2:
        arr = np.concatenate([arr, np.zeros(arr.shape[:2] + (1,), np.float32)], axis=2)
    if np.isinf(arr).any():
        raise ValueError(f"{path}: infinite values")
    if np.isnan(arr).all():
        raise ValueError(f"{path}: every value is NaN")
    return arr


# -- thresholds and F1 -------------------------------------------------------------------------
