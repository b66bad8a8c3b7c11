"""JIGSAWS (JHU-ISI Gesture and Skill Assessment Working Set) in the keypoint-folder format.

Source layout (the official release; videos are not used)::

    ROOT/<Task>/kinematics/AllGestures/<Task>_<User><Trial>.txt   e.g. Suturing_B001.txt
    ROOT/<Task>/meta_file_<Task>.txt

with Task in Knot_Tying, Needle_Passing, Suturing, User a letter (B..I) and Trial 001..005 (the
"super-trial"). A kinematics file has one line per frame (30 Hz) of 76 whitespace-separated
numbers: for master-left (columns 1-19), master-right (20-38), slave-left (39-57) and
slave-right (58-76) in turn: tool-tip position xyz (3, metres), rotation matrix (9, written
row-major: R11 R12 R13 R21 ... R33), linear velocity (3), angular velocity (3), gripper angle (1,
radians). A meta line is ``<trial> <skill N|I|E> <GRS total> <six GRS items>``, tab/space
separated (the release uses double tabs; blank lines and trailing whitespace occur).

Converted dataset (:func:`convert_jigsaws`): one recording per trial with both kinematics and a
meta line; id = trial name, category = task, score = GRS total, score_range = [6, 30] (six items
of 1..5), subject = user letter, extra columns ``skill``, ``supertrial`` (1..5) and ``grs_1`` ..
``grs_6``; fps 30; every recording is written as ``train`` (splits come from :func:`apply_fold`).

Instrument skeleton (:data:`INSTRUMENT_SKELETON`, :func:`instrument_keypoints`). The two
patient-side instruments (slave-left ``L``, slave-right ``R``) each give five points, from the
tip position p, the rotation matrix R (the 9 values reshaped row-major, so that the *columns* of
R are the tool frame's x, y, z axes in the base frame) and the gripper angle g:

- ``tip = p`` (the kinematic position is the tool tip / end effector);
- ``body = p - s R[:, 2]`` and ``tail = p - 2 s R[:, 2]``: points up the shaft along the tool's
  z axis, ``s`` = :data:`SHAFT_STEP` = 0.02 m (positions are in metres);
- ``jaw_a, jaw_b = p + j (cos(g/2) R[:, 2] -/+ sin(g/2) R[:, 0])``, ``j`` = :data:`JAW_LENGTH`
  = 0.01 m: two jaws opening symmetrically about the tool's z axis in its x-z plane, so the angle
  at the tip between the jaws is |g| (for |g| <= pi). *Decision*: the slave gripper angle of
  the release is sometimes negative (a calibration offset); the geometry keeps its magnitude.

Bones: tail-body, body-tip, tip-jaw_a, tip-jaw_b per side (two unconnected trees). Node types
(all with one joint per instrument, J = 2): ``tip`` (angle jaw_a-tip-jaw_b = gripper opening),
``body`` (angle tip-body-other instrument's body: the shaft's direction relative to the line
joining the two instruments, i.e. relative instrument orientation; *decision*: the alternative
tail-body-tip is a constant straight angle and carries nothing), ``tail`` (one bone, so its angle
is the shaft's angle to the vertical axis). ``up_axis`` is ``z`` (*assumption*: the release does
not document the base frame's vertical axis). The skeleton declares no ``facing``: the robot
base frame is fixed, so no view normalisation is wanted.

Cross-validation folds of the skill-assessment literature (:func:`folds`, :func:`apply_fold`):
``loso`` (leave one super-trial out: fold i holds out trial number i of every user, i = 1..5)
and ``louo`` (leave one user out). Folds span all converted tasks; for per-task folds, convert
one task (``tasks=("Suturing",)``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from kept.data.folder import (
    KeypointDataset, Recording, _derive_pairs, _hold_out, load_dataset, write_dataset,
)
from pose.skeleton import Skeleton

__all__ = [
    "JIGSAWS_TASKS", "INSTRUMENT_SKELETON", "SHAFT_STEP", "JAW_LENGTH", "read_kinematics",
    "read_meta", "instrument_keypoints", "convert_jigsaws", "folds", "apply_fold", "load_jigsaws",
]

log = logging.getLogger(__name__)

JIGSAWS_TASKS = ("Knot_Tying", "Needle_Passing", "Suturing")
FPS = 30.0
GRS_RANGE = (6.0, 30.0)
NUM_COLUMNS = 76
#: Distance (metres) between tip, body and tail along the shaft.
SHAFT_STEP = 0.02
#: Length (metres) of each drawn jaw.
JAW_LENGTH = 0.01
#: First column (0-based) of the slave-left and slave-right blocks of 19 values.
_SLAVE_OFFSETS = {"L": 38, "R": 57}
_SKILLS = ("N", "I", "E")
_TRIAL_RE = re.compile(r"^(?P<task>.+)_(?P<user>[A-Za-z])(?P<trial>\d{3})$")
#: Bumped when the converted content changes (part of the cache fingerprint).
CONVERTER_VERSION = 1


def _side(side: str) -> dict[str, str]:
    return {k: f"{k}_{side}" for k in ("tip", "body", "tail", "jaw_a", "jaw_b")}


_L, _R = _side("L"), _side("R")

INSTRUMENT_SKELETON: dict = {
    "joints": [s[k] for s in (_L, _R) for k in ("tip", "body", "tail", "jaw_a", "jaw_b")],
    "edges": [e for s in (_L, _R) for e in ([s["tail"], s["body"]], [s["body"], s["tip"]],
                                             [s["tip"], s["jaw_a"]], [s["tip"], s["jaw_b"]])],
    "node_types": {
        "tip": [_L["tip"], _R["tip"]],
        "body": [_L["body"], _R["body"]],
        "tail": [_L["tail"], _R["tail"]],
    },
    "angles": {
        _L["tip"]: [_L["jaw_a"], _L["jaw_b"]],
        _R["tip"]: [_R["jaw_a"], _R["jaw_b"]],
        _L["body"]: [_L["tip"], _R["body"]],
        _R["body"]: [_R["tip"], _L["body"]],
        _L["tail"]: [_L["body"]],
        _R["tail"]: [_R["body"]],
    },
}


# -- reading the release -------------------------------------------------------------------
def read_kinematics(path: str | Path) -> np.ndarray:
    """Read one kinematics file.

    Args:
        path: a ``<Task>_<User><Trial>.txt`` file of the release.

    Returns:
        The frames; blank lines are skipped.

    Raises:
        ValueError: naming the file and the 1-based line, for a line without 76 values, a
            non-numeric or non-finite value, or a file without frames.

    Shapes:
        returns: (F, 76) float64
    """
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    tokens: list[str] = []
    numbers: list[int] = []  # 1-based line number of each frame
    for n, line in enumerate(lines, 1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != NUM_COLUMNS:
            raise ValueError(f"{path} line {n}: {len(cells)} values, expected {NUM_COLUMNS} "
                             "(19 per manipulator: master-left, master-right, slave-left, "
                             "slave-right); is this a JIGSAWS kinematics file?")
        tokens += cells
        numbers.append(n)
    if not numbers:
        raise ValueError(f"{path}: no frames (the file is empty); re-extract the release")
    try:
        arr = np.array(tokens, dtype=np.float64).reshape(-1, NUM_COLUMNS)
    except ValueError:
        arr = None
    if arr is None or not np.isfinite(arr).all():
        for i, n in enumerate(numbers):
            for c, tok in enumerate(tokens[i * NUM_COLUMNS:(i + 1) * NUM_COLUMNS], 1):
                try:
                    ok = math.isfinite(float(tok))
                except ValueError:
                    ok = False
                if not ok:
                    raise ValueError(f"{path} line {n}: column {c} holds {tok!r}, not a finite "
                                     "number; every value must be a decimal number")
    return arr


def read_meta(path: str | Path) -> dict[str, dict]:
    """Read a ``meta_file_<Task>.txt``.

    Returns:
        trial name -> ``{"skill": "N"|"I"|"E", "grs": float, "grs_items": [6 floats]}``, in file
        order. Blank lines are skipped.

    Raises:
        ValueError: naming the file and the 1-based line, for a line without 9 fields, an
            unknown skill letter, a non-numeric score, a GRS total outside [6, 30] or a trial
            listed twice.
    """
    path = Path(path)
    out: dict[str, dict] = {}
    first: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines, 1):
        cells = line.split()
        if not cells:
            continue
        where = f"{path} line {n}"
        if len(cells) != 9:
            raise ValueError(f"{where}: {len(cells)} fields, expected 9: trial name, skill "
                             "(N/I/E), GRS total and six GRS items")
        name, skill, *scores = cells
        if skill not in _SKILLS:
            raise ValueError(f"{where}: skill {skill!r} of '{name}' is not one of N, I, E")
        try:
            values = [float(s) for s in scores]
        except ValueError:
            raise ValueError(f"{where}: GRS scores {scores} of '{name}' must be numbers") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{where}: GRS scores {scores} of '{name}' must be finite")
        lo, hi = GRS_RANGE
        if not lo <= values[0] <= hi:
            raise ValueError(f"{where}: GRS total {scores[0]} of '{name}' is outside [{lo:g}, "
                             f"{hi:g}] (six items of 1..5); fix the line")
        if name in out:
            raise ValueError(f"{where}: trial '{name}' listed twice (first on line {first[name]})")
        out[name] = {"skill": skill, "grs": values[0], "grs_items": values[1:]}
        first[name] = n
    return out


# -- geometry --------------------------------------------------------------------------------
def instrument_keypoints(kin: np.ndarray) -> np.ndarray:
    """Joint positions of :data:`INSTRUMENT_SKELETON` from kinematics rows.

    See the module docstring for the geometry (tip, body, tail along the tool z axis; two jaws
    spanning the gripper angle).

    Shapes:
        kin: (F, 76)
        returns: (F, 10, 3) float64, joints in ``INSTRUMENT_SKELETON["joints"]`` order
    """
    kin = np.asarray(kin, dtype=np.float64)
    if kin.ndim != 2 or kin.shape[1] != NUM_COLUMNS:
        raise ValueError(f"kinematics must have shape (frames, {NUM_COLUMNS}), got {kin.shape}")
    out = []
    for side in ("L", "R"):
        o = _SLAVE_OFFSETS[side]
        p = kin[:, o:o + 3]
        rot = kin[:, o + 3:o + 12].reshape(-1, 3, 3)  # row-major: rot[:, i, j] = R_(i+1)(j+1)
        g = kin[:, o + 18]
        x_axis, z_axis = rot[:, :, 0], rot[:, :, 2]
        open_ = np.sin(g / 2)[:, None] * x_axis
        along = np.cos(g / 2)[:, None] * z_axis
        out += [
            p,
            p - SHAFT_STEP * z_axis,
            p - 2 * SHAFT_STEP * z_axis,
            p + JAW_LENGTH * (along - open_),
            p + JAW_LENGTH * (along + open_),
        ]
    return np.stack(out, axis=1)


# -- conversion ------------------------------------------------------------------------------
def _kinematics_dir(root: Path, task: str) -> Path:
    return root / task / "kinematics" / "AllGestures"


def _meta_path(root: Path, task: str) -> Path:
    return root / task / f"meta_file_{task}.txt"


def _discover(root: Path, tasks: tuple[str, ...]) -> tuple[dict, dict, list[str], list[str]]:
    """(task -> {trial: kinematics path}, task -> meta dict, missing task folders, bad names)."""
    files: dict[str, dict[str, Path]] = {}
    metas: dict[str, dict[str, dict]] = {}
    missing, bad_names = [], []
    for task in tasks:
        if not (root / task).is_dir():
            missing.append(task)
            continue
        kin_dir = _kinematics_dir(root, task)
        found: dict[str, Path] = {}
        for path in sorted(kin_dir.glob(f"{task}_*.txt")) if kin_dir.is_dir() else []:
            m = _TRIAL_RE.match(path.stem)
            if m and m["task"] == task:
                found[path.stem] = path
            else:
                bad_names.append(path.stem)
        files[task] = found
        meta_path = _meta_path(root, task)
        metas[task] = read_meta(meta_path) if meta_path.is_file() else {}
    return files, metas, missing, bad_names


def _layout_hint(root: Path) -> str:
    return (f"expected {root}/<Task>/kinematics/AllGestures/<Task>_<User><Trial>.txt and "
            f"{root}/<Task>/meta_file_<Task>.txt for Task in {list(JIGSAWS_TASKS)} (the "
            "official JIGSAWS release, unzipped)")


def convert_jigsaws(
    root: str | Path, out: str | Path, *, tasks: tuple[str, ...] = JIGSAWS_TASKS, progress: bool = True
) -> tuple[Path, dict]:
    """Convert the JIGSAWS release into a keypoint folder (see the module docstring).

    Trials listed in a meta file without a kinematics file, kinematics files without a meta
    line, and unreadable kinematics files are skipped and counted; the meta files are read (and
    any malformed line raised) before anything is written.

    Args:
        root: the release folder holding the task folders.
        out: the keypoint folder to write.
        tasks: the tasks to convert.
        progress: print one line per task and the summary (the summary is also logged).

    Returns:
        ``(out, report)`` with report ``{"converted": n, "skipped": {"no_kinematics": [...],
        "no_meta": [...], "unreadable": [...]}, "errors": {trial: message},
        "missing_tasks": [...]}`` (trial names, sorted).

    Raises:
        ValueError: when nothing could be converted (naming ``root`` and the layout).
    """
    root, out = Path(root), Path(out)
    tasks = tuple(tasks)
    files, metas, missing, bad_names = _discover(root, tasks)
    skipped: dict[str, list[str]] = {"no_kinematics": [], "no_meta": [], "unreadable": list(bad_names)}
    errors = {name: "file name is not <Task>_<User><Trial>.txt" for name in bad_names}
    recordings: list[Recording] = []
    keypoints: dict[str, np.ndarray] = {}
    for task in tasks:
        if task in missing:
            continue
        found, meta = files[task], metas[task]
        skipped["no_kinematics"] += [t for t in meta if t not in found]
        skipped["no_meta"] += [t for t in found if t not in meta]
        for trial in sorted(t for t in found if t in meta):
            try:
                kin = read_kinematics(found[trial])
            except (ValueError, OSError) as e:
                skipped["unreadable"].append(trial)
                errors[trial] = str(e)
                continue
            m = _TRIAL_RE.match(trial)
            info = meta[trial]
            keypoints[trial] = instrument_keypoints(kin).astype(np.float32)
            recordings.append(Recording(
                id=trial, split="train", category=task, score=info["grs"], subject=m["user"],
                meta={"skill": info["skill"], "supertrial": str(int(m["trial"])),
                      **{f"grs_{i}": f"{v:g}" for i, v in enumerate(info["grs_items"], 1)}},
            ))
        if progress:
            n_task = sum(r.category == task for r in recordings)
            print(f"jigsaws: {task}: {n_task} trials converted", file=sys.stderr)
    skipped = {k: sorted(v) for k, v in skipped.items()}
    report = {"converted": len(recordings), "skipped": skipped, "errors": errors,
              "missing_tasks": missing}
    if not recordings:
        raise ValueError(
            f"no JIGSAWS trial converted from {root}: {_layout_hint(root)}; found "
            f"{sum(len(f) for f in files.values())} kinematics files and "
            f"{sum(len(m) for m in metas.values())} meta lines"
            + (f", no folder for tasks {missing}" if missing else "")
            + (f"; unreadable: {errors}" if errors else "")
        )
    write_dataset(
        out, name="jigsaws", fps=FPS, skeleton=Skeleton.from_spec(INSTRUMENT_SKELETON, "jigsaws"),
        recordings=recordings, keypoints=keypoints, score_range=GRS_RANGE,
        extra={"up_axis": "z", "source": "JIGSAWS", "tasks": list(tasks),
               "units": "metres", "jigsaws_report": report},
    )
    line = _summary(report, out)
    log.info(line)
    if progress:
        print(line, file=sys.stderr)
    return out, report


def _summary(report: dict, out: Path) -> str:
    sk = report["skipped"]
    text = (f"jigsaws: converted {report['converted']} trials into {out}; skipped "
            f"{len(sk['no_kinematics'])} without kinematics, {len(sk['no_meta'])} without a meta "
            f"line, {len(sk['unreadable'])} unreadable")
    if report.get("missing_tasks"):
        text += f"; no folder for tasks {report['missing_tasks']}"
    return text


# -- folds -----------------------------------------------------------------------------------
_SCHEMES = ("loso", "louo")


def _trial_table(dataset_or_root: KeypointDataset | str | Path) -> dict[str, tuple[str, str]]:
    """Recording id -> (user, super-trial number as a string)."""
    if isinstance(dataset_or_root, KeypointDataset):
        return {r.id: (r.subject or "", r.meta.get("supertrial", ""))
                for r in dataset_or_root.recordings.values()}
    root = Path(dataset_or_root)
    if (root / "dataset.json").is_file():
        return _trial_table(load_dataset(root, val_fraction=0.0, check_keypoints=False))
    files, metas, _, _ = _discover(root, JIGSAWS_TASKS)
    table = {}
    for task, found in files.items():
        for trial in found:
            if trial in metas[task]:
                m = _TRIAL_RE.match(trial)
                table[trial] = (m["user"], str(int(m["trial"])))
    return table


def folds(dataset_or_root: KeypointDataset | str | Path, scheme: str) -> list[dict]:
    """The cross-validation folds of a converted dataset.

    Args:
        dataset_or_root: a converted :class:`KeypointDataset`, its folder, or the raw release
            folder (then the trials with kinematics and a meta line of all tasks, without
            reading the kinematics).
        scheme: ``"loso"`` (one fold per super-trial number, ``"loso:1"`` .. ``"loso:5"``) or
            ``"louo"`` (one fold per user, ``"louo:B"`` ..), sorted by their key.

    Returns:
        ``[{"name": "louo:B", "test": [ids]}, ...]``; the test sets are disjoint and cover every
        recording. Folds without recordings are not listed.
    """
    if scheme not in _SCHEMES:
        raise ValueError(f"unknown fold scheme {scheme!r}; use 'loso' (leave one super-trial "
                         "out) or 'louo' (leave one user out)")
    table = _trial_table(dataset_or_root)
    key = 1 if scheme == "loso" else 0
    groups: dict[str, list[str]] = {}
    for rid, values in table.items():
        if not values[key]:
            raise ValueError(f"recording '{rid}' has no {'supertrial' if key else 'subject'}; "
                             "is this a dataset converted by convert_jigsaws?")
        groups.setdefault(values[key], []).append(rid)
    order = sorted(groups, key=lambda k: (int(k), k) if k.isdigit() else (math.inf, k))
    return [{"name": f"{scheme}:{k}", "test": sorted(groups[k])} for k in order]


def _parse_fold(fold_spec: str) -> tuple[str, str]:
    scheme, sep, key = str(fold_spec).partition(":")
    if not sep or scheme not in _SCHEMES or not key:
        raise ValueError(f"fold {fold_spec!r} must be 'loso:<trial number 1-5>' or "
                         "'louo:<user letter>', e.g. 'loso:3' or 'louo:B'")
    if scheme == "loso":
        if not key.isdigit():
            raise ValueError(f"fold {fold_spec!r}: the super-trial must be a number, e.g. 'loso:3'")
        key = str(int(key))
    return scheme, key


def apply_fold(
    dataset: KeypointDataset, fold_spec: str, *, val_fraction: float = 0.15, seed: int = 0
) -> KeypointDataset:
    """A copy of ``dataset`` split by one fold.

    The fold's recordings become ``test``, all others ``train`` (any earlier split is ignored);
    then val is held out of train and pairs are derived exactly as :func:`load_dataset` does
    without pairs.csv (its ``_hold_out`` and ``_derive_pairs``).

    Args:
        dataset: a converted dataset.
        fold_spec: ``"loso:<i>"`` or ``"louo:<user>"``.
        val_fraction, seed: the val hold-out, as in :func:`load_dataset`.

    Raises:
        ValueError: for a malformed spec or a fold without recordings (listing the valid ones).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    scheme, key = _parse_fold(fold_spec)
    by_name = {f["name"]: f["test"] for f in folds(dataset, scheme)}
    name = f"{scheme}:{key}"
    if name not in by_name:
        raise ValueError(f"fold {fold_spec!r} holds no recording of dataset '{dataset.name}'; "
                         f"its {scheme} folds are {list(by_name)}")
    test = set(by_name[name])
    recordings = {rid: replace(r, split="test" if rid in test else "train")
                  for rid, r in dataset.recordings.items()}
    held_out = _hold_out(recordings, None, val_fraction, seed) if val_fraction > 0 else []
    for rid in held_out:
        recordings[rid] = replace(recordings[rid], split="val")
    return replace(dataset, recordings=recordings, pairs=_derive_pairs(recordings),
                   meta={**dataset.meta, "fold": name}, held_out_val=tuple(held_out))


# -- cached loading --------------------------------------------------------------------------
def _fingerprint(root: Path, tasks: tuple[str, ...]) -> str:
    """Hash of the converter version, tasks and the name, size and mtime of every source file."""
    h = hashlib.sha1(f"v{CONVERTER_VERSION}|{','.join(tasks)}".encode())
    for task in tasks:
        paths = [_meta_path(root, task)]
        kin_dir = _kinematics_dir(root, task)
        if kin_dir.is_dir():
            paths += sorted(kin_dir.glob("*.txt"))
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"|{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def load_jigsaws(
    root: str | Path, *, fold: str | None = None, cache_dir: str | Path | None = None,
    val_fraction: float = 0.15, seed: int = 0,
) -> KeypointDataset:
    """Load JIGSAWS, converting it once into a cache.

    The keypoint folder lives in ``<cache_dir>/jigsaws/<sha1 of the resolved root>[:16]``
    (``cache_dir`` default: $KEPT_CACHE, else ~/.cache/kept, as
    :func:`kept.data.datamodule.default_cache_dir`). It is converted into a temp folder beside
    it and renamed into place; it is converted again when the source files' names, sizes or
    mtimes (or the converter version) change. Skipped trials raise a warning on every load.

    Args:
        root: the release folder.
        fold: ``"loso:<i>"``/``"louo:<user>"`` (see :func:`apply_fold`); None keeps every
            recording in train (val held out as :func:`load_dataset` does).
        cache_dir: cache root.
        val_fraction, seed: the val hold-out.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"JIGSAWS folder {root} does not exist; {_layout_hint(root)}")
    cache = Path(cache_dir or os.environ.get("KEPT_CACHE") or Path.home() / ".cache" / "kept")
    base = cache / "jigsaws"
    target = base / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    fingerprint = _fingerprint(root, JIGSAWS_TASKS)
    if _cached_fingerprint(target) != fingerprint:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=base))
        try:
            convert_jigsaws(root, tmp / "data", progress=False)
            _write_fingerprint(tmp / "data", fingerprint)
            _swap_into_place(tmp / "data", target, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    ds = load_dataset(target, val_fraction=val_fraction, seed=seed)
    report = ds.meta.get("jigsaws_report", {})
    sk = report.get("skipped", {})
    if any(sk.values()) or report.get("missing_tasks"):
        warnings.warn(
            f"{_summary(report, target)} (from {root}): "
            + "; ".join(f"{k}: {v}" for k, v in sk.items() if v)
            + (f"; errors: {report.get('errors')}" if report.get("errors") else ""),
            stacklevel=2,
        )
    return apply_fold(ds, fold, val_fraction=val_fraction, seed=seed) if fold else ds


def _cached_fingerprint(target: Path) -> str | None:
    try:
        return (target / "source_fingerprint.txt").read_text().strip()
    except OSError:
        return None


def _write_fingerprint(folder: Path, fingerprint: str) -> None:
    (folder / "source_fingerprint.txt").write_text(fingerprint + "\n")


def _swap_into_place(new: Path, target: Path, scratch: Path) -> None:
    """Rename ``new`` onto ``target``; an old ``target`` is first moved into ``scratch``."""
    if target.exists():
        try:
            os.rename(target, scratch / "old")
        except OSError:
            pass  # another process moved it first
    try:
        os.rename(new, target)
    except OSError:
        if _cached_fingerprint(target) is None:  # not a concurrent writer's finished copy
            raise
