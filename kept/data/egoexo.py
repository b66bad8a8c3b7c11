"""Rebuild the ADR dataset from an Ego-Exo4D download, in the keypoint-folder format.

ADR (paper section 2, table 1) takes the exocentric videos of three sports from Ego-Exo4D:
basketball (Mid-Range Jump Shooting, Mikan Layup, Reverse Layup), soccer (Penalty Kick,
Juggling, Dribbling) and rock climbing. A take's score is the mean of its experts' scores, its
commentary all experts' comments joined; pairs are formed within a sub-activity; each pair gets a
difference description written by an LLM from both commentaries (see :mod:`kept.data.describe`).

Ego-Exo4D layout used here
--------------------------
CONFIRMED from public docs or official code (source in brackets):

* ``takes.json``: a JSON list of takes with ``take_uid``, ``take_name``, ``root_dir``
  (``takes/<take_name>``), ``task_name``, ``parent_task_name``, ``task_id``, ``best_exo``,
  ``participant_uid`` and ``frame_aligned_videos`` = ``{cam_id: {stream_id: {"cam_id",
  "relative_path", ...}}}`` with exo cameras such as ``cam01`` (stream ``"0"``) and the ego
  camera ``aria01``; a video is ``<root>/<root_dir>/<relative_path>``
  [EGO4D/Ego-Exo4D-docs data/metadata/index.html; facebookresearch/Ego4d feature-extraction
  code reading ``take["frame_aligned_videos"][cam][stream]["relative_path"]``].
* ``annotations/splits.json``: ``{"take_uid_to_split": {uid: split}, "split_to_take_uids":
  {...}}`` [facebookresearch/Ego4d EgoExo4D scripts; the split value is lower-cased here].
* ``annotations/expert_commentary_<split>.json`` (first form): ``{"ds", "annotations": {take_uid:
  [{"take_name", "take_uid", "task_id", "task_name", "commentary": "<take_name>/<expert_uid>",
  "commentary_data": [{"recording", "video_time", "text", "duration_approx", "error"}]}]}}``;
  it has NO proficiency ratings (the test split is redacted)
  [EGO4D/Ego-Exo4D-docs annotations/expert_commentary/index.html].
* ``annotations/expert_commentary/<take_name>/<expert_uid>/data.json`` (second form, download
  part ``expert_commentary``) with ``user_id``, ``video_name``, ``ds``, ``annotations`` and
  ``proficiency: {"rating": 1-10, "why": str}``; ``transcriptions.json`` beside it maps
  ``"<x>.webm"`` to ``{"text", "language", "error", "error_desc"}``; ``<x>`` is the recording
  order [same docs page; facebookresearch/Ego4d ego4d/egoexo/expert_commentary/analyze.py reads
  ``x["proficiency"]["rating"]``, data.py dedups by (user_id, video_name) keeping the newest
  ``ds``].
* Body pose: ``annotations/ego_pose/<split>/body/{annotation,automatic}/<take_uid>.json``:
  ``{"<frame_number>": [{"annotation3D": {"left-shoulder": {"x", "y", "z"}, ...},
  "annotation2D": {...}}]}``; joints that are not annotated are absent; the 17 joint names
  are the COCO joints with hyphens (``nose``, ``left-eye`` ... ``right-ankle``)
  [EGO4D/ego-exo4d-egopose bodypose/data/dataset_egoexo.py; Ego-Exo4D-docs
  annotations/ego_pose/index.html].

ASSUMED (not confirmed by a public source):

* Frame rates: manual ``annotation`` body pose at 30 fps, ``automatic`` at 60 fps;
  override with ``pose_fps`` when a release differs.
* Demonstrator proficiency: read from ``annotations/proficiency_demonstrator_<split>.json``
  (``{"annotations": [{"take_uid", "proficiency_score": "Novice"|...}]}``, seen only in
  third-party code), else from a ``proficiency`` / ``proficiency_score`` field of the take in
  ``takes.json``.
* Task names: matched case-insensitively against ``parent_task_name`` + ``task_name`` with the
  patterns of :data:`ADR_TASKS` (e.g. "Basketball Drills - Mid-Range Jump Shooting"; the
  basketball name was seen in third-party code, the soccer and climbing names are assumed).
* World frame: the 3D joints are in the take's metric world frame from Aria MPS, assumed
  gravity aligned with +z up, so ``up_axis`` is written as ``"z"`` (override with ``up_axis``).
* Ego-Exo4D's ``val`` split becomes ADR's test split (as the paper: its test set is not public);
  takes in Ego-Exo4D's (redacted) ``test`` split are skipped.

Decisions
---------
* One exocentric camera per take: the first exo camera (a ``frame_aligned_videos`` key not
  starting with ``aria``) in sorted order, e.g. ``cam01``; recorded in metadata column
  ``exo_camera``. The paper's manual choice of a clean view cannot be reproduced.
* Recording id = ``take_name`` (unique, file-name safe); ``take_uid`` is a metadata column.
* Score: ``score_source="expert"`` = mean over experts (deduplicated by user id) of
  ``data.json`` ``proficiency.rating`` (score_range [1, 10]); ``"proficiency"`` = demonstrator
  proficiency Novice=1, Early Expert=2, Intermediate Expert=3, Late Expert=4 (score_range [1, 4]).
* Commentary: each expert's transcribed comments joined in recording order, then all experts
  joined with a space in commentator order (first-form file order; folder-name order for
  experts found only in the second form). Transcriptions flagged ``error`` are left out.
* Keypoints: ``pose_source="annotation"`` uses the manual file when present else the automatic
  one, ``"automatic"`` only the automatic one, ``"extract"`` calls ``extractor(video_path) ->
  (xyz (F, 17, 3), fps)`` on the chosen exo video. The source column ``pose_source`` says which.
  Frame ``n`` is placed at time ``n / fps``; the array starts at the first annotated frame
  (column ``start_sec``); missing frames and joints are NaN. Every take is then resampled to
  30 fps (the format has one fps per dataset) by linear interpolation in time between the two
  neighbouring source frames; a target time next to a missing frame stays NaN (gaps are not
  bridged). The source rate is kept in column ``source_fps``.
* Bad or partial downloads never stop the build halfway: a take with no splits entry, no
  expert commentary or score, no pose file, an unreadable or empty pose file, or a missing
  video is skipped and listed under its reason in the report; so is a sub-activity left with
  one recording (a category needs two). The report is printed as one line. Nothing converted
  raises ``ValueError``. The folder is built in a temp folder beside ``out`` and renamed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import tempfile
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kept.data.folder import Pair, Recording, write_dataset
# the body-pose reader lives in the torch-free pose package; re-exported here
from pose.extractors.egoexo import EGOEXO_BODY_JOINTS, POSE_FPS, _read_body_pose, read_body_pose

__all__ = [
    "ADR_TASKS", "EGOEXO_BODY_JOINTS", "PROFICIENCY_LEVELS", "TARGET_FPS", "build_adr",
    "read_takes", "read_splits", "read_expert_commentary", "read_proficiency", "read_body_pose",
    "resample",
]

#: Ego-Exo4D task-name pattern (regex, case-insensitive, searched in "parent_task_name /
#: task_name") -> (sport, ADR sub-activity slug). Checked in order; the first match wins.
ADR_TASKS: dict[str, tuple[str, str]] = {
    r"mid[- ]?range": ("basketball", "mid_range_shooting"),
    r"mikan": ("basketball", "mikan_layup"),
    r"reverse layup": ("basketball", "reverse_layup"),
    r"penalty kick": ("soccer", "penalty_kick"),
    r"juggl": ("soccer", "juggling"),
    r"dribbl": ("soccer", "dribbling"),
    r"climb|boulder": ("rock_climbing", "climbing"),
}

PROFICIENCY_LEVELS = {"novice": 1.0, "early expert": 2.0, "intermediate expert": 3.0,
                      "late expert": 4.0}
TARGET_FPS = 30.0
_SPLIT_MAP = {"train": "train", "val": "test"}


# -- readers ---------------------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_takes(root: str | Path) -> list[dict]:
    """The takes of ``<root>/takes.json`` (a JSON list of take objects)."""
    path = Path(root) / "takes.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; download Ego-Exo4D metadata with "
                                "'egoexo -o ROOT --parts metadata'")
    try:
        takes = _load_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: unreadable JSON ({e}); download it again") from None
    if isinstance(takes, dict) and isinstance(takes.get("takes"), list):
        takes = takes["takes"]
    if not isinstance(takes, list):
        raise ValueError(f"{path}: expected a JSON list of takes, got {type(takes).__name__}")
    return [t for t in takes if isinstance(t, dict) and t.get("take_uid")]


def read_splits(root: str | Path) -> dict[str, str]:
    """take_uid -> Ego-Exo4D split (lower case) from ``annotations/splits.json``."""
    path = Path(root) / "annotations" / "splits.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; download it with '--parts annotations'")
    try:
        data = _load_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: unreadable JSON ({e}); download it again") from None
    if isinstance(data.get("take_uid_to_split"), dict):
        return {k: str(v).lower() for k, v in data["take_uid_to_split"].items()}
    if isinstance(data.get("split_to_take_uids"), dict):
        return {uid: str(s).lower() for s, uids in data["split_to_take_uids"].items() for uid in uids}
    raise ValueError(f"{path}: expected a 'take_uid_to_split' (or 'split_to_take_uids') object")


def _join(parts: list[str]) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _recording_order(name: str) -> tuple[float, str]:
    stem = name.split(".")[0]
    return (float(stem) if stem.isdigit() else math.inf, name)


def read_expert_commentary(root: str | Path, *, unreadable: list[str] | None = None
                           ) -> dict[str, dict]:
    """Expert commentary and 1-10 ratings per take.

    Reads the first form (``annotations/expert_commentary_*.json``: transcriptions, commentator
    order) and the second form (``annotations/expert_commentary/<take_name>/<expert>/data.json``
    with ``proficiency.rating``, plus ``transcriptions.json`` for experts missing from the first
    form). Second-form folders are mapped to take uids through ``takes.json`` when present.

    Args:
        root: the Ego-Exo4D download folder.
        unreadable: if given, paths of files that could not be parsed are appended (else they are
            skipped silently).

    Returns:
        take_uid -> ``{"score": mean rating or None, "commentary": str, "n_experts": int}``
        where ``n_experts`` counts the experts who commented or rated.
    """
    root = Path(root)
    ann = root / "annotations"
    bad = unreadable if unreadable is not None else []
    # take_uid -> expert uid -> text, in commentator order
    texts: dict[str, dict[str, str]] = {}
    name_to_uid: dict[str, str] = {}
    for path in sorted(ann.glob("expert_commentary_*.json")):
        try:
            data = _load_json(path)
            takes = data["annotations"]
            assert isinstance(takes, dict)
        except Exception:  # noqa: BLE001
            bad.append(str(path))
            continue
        for uid, entries in takes.items():
            for e in entries if isinstance(entries, list) else []:
                if not isinstance(e, dict):
                    continue
                expert = str(e.get("commentary", "")).split("/")[-1] or f"#{len(texts.get(uid, {}))}"
                if e.get("take_name"):
                    name_to_uid[str(e["take_name"])] = uid
                items = [c for c in e.get("commentary_data") or [] if isinstance(c, dict)
                         and not c.get("error") and c.get("text")]
                texts.setdefault(uid, {})[expert] = _join([str(c["text"]) for c in items])
    try:
        for t in read_takes(root):
            name_to_uid.setdefault(str(t.get("take_name")), t["take_uid"])
    except (FileNotFoundError, ValueError):
        pass

    ratings: dict[str, dict[str, float]] = {}
    folder = ann / "expert_commentary"
    if folder.is_dir():
        newest: dict[tuple[str, str], tuple[str, Path, dict]] = {}
        for data_path in sorted(folder.glob("*/*/data.json")):
            try:
                data = _load_json(data_path)
                assert isinstance(data, dict)
            except Exception:  # noqa: BLE001
                bad.append(str(data_path))
                continue
            take_name = str(data.get("video_name") or data_path.parent.parent.name)
            expert = str(data.get("user_id") or data_path.parent.name)
            key = (take_name, expert)
            ds = str(data.get("ds", ""))
            if key not in newest or newest[key][0] < ds:
                newest[key] = (ds, data_path, data)
        for (take_name, expert), (_, data_path, data) in sorted(newest.items()):
            uid = name_to_uid.get(take_name) or name_to_uid.get(data_path.parent.parent.name)
            if uid is None:
                continue
            prof = data.get("proficiency")
            rating = prof.get("rating") if isinstance(prof, dict) else None
            try:
                rating = float(rating)
            except (TypeError, ValueError):
                rating = None
            if rating is not None and math.isfinite(rating):
                ratings.setdefault(uid, {})[expert] = rating
            # the expert folder name is the id used by the first form's "commentary" path
            known = texts.get(uid, {})
            if expert in known or data_path.parent.name in known:
                continue
            tpath = data_path.parent / "transcriptions.json"
            text = ""
            if tpath.is_file():
                try:
                    tr = _load_json(tpath)
                    text = _join([str(v.get("text") or "") for k, v in
                                  sorted(tr.items(), key=lambda kv: _recording_order(kv[0]))
                                  if isinstance(v, dict) and not v.get("error")])
                except Exception:  # noqa: BLE001
                    bad.append(str(tpath))
            texts.setdefault(uid, {})[expert] = text

    out: dict[str, dict] = {}
    for uid in list(texts) + [u for u in ratings if u not in texts]:
        by_expert = texts.get(uid, {})
        r = ratings.get(uid, {})
        experts = list(dict.fromkeys([*by_expert, *r]))
        out[uid] = {
            "score": float(np.mean(list(r.values()))) if r else None,
            "commentary": _join(list(by_expert.values())),
            "n_experts": len(experts),
        }
    return out


def read_proficiency(root: str | Path, takes: list[dict] | None = None) -> dict[str, str]:
    """take_uid -> demonstrator proficiency label (e.g. "Late Expert").

    From ``annotations/proficiency_demonstrator_*.json`` (``annotations`` list of
    ``{"take_uid", "proficiency_score"}``), else a ``proficiency``/``proficiency_score`` field of
    the take in ``takes.json`` (both ASSUMED, see the module docstring).
    """
    root = Path(root)
    out: dict[str, str] = {}
    for t in takes if takes is not None else read_takes(root):
        for key in ("proficiency", "proficiency_score", "demonstrator_proficiency"):
            v = t.get(key)
            if isinstance(v, dict):
                v = v.get("proficiency_score") or v.get("label")
            if isinstance(v, str) and v:
                out[t["take_uid"]] = v
                break
    for path in sorted((root / "annotations").glob("proficiency_demonstrator_*.json")):
        try:
            items = _load_json(path)["annotations"]
        except Exception:  # noqa: BLE001
            continue
        for a in items if isinstance(items, list) else []:
            if isinstance(a, dict) and a.get("take_uid") and a.get("proficiency_score"):
                out[a["take_uid"]] = str(a["proficiency_score"])
    return out


def resample(xyz: np.ndarray, fps: float, target_fps: float = TARGET_FPS) -> np.ndarray:
    """Linear interpolation in time from ``fps`` to ``target_fps`` (NaN next to gaps stays NaN).

    Source frame ``i`` is at time ``i / fps``; target frame ``k`` at ``k / target_fps`` for
    every such time within the source span.

    Shapes:
        xyz: (F, P, 3) -> (F', P, 3) with F' = floor((F - 1) * target_fps / fps) + 1
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if abs(fps - target_fps) < 1e-9 or xyz.shape[0] < 2:
        return xyz.copy()
    span = (xyz.shape[0] - 1) / fps
    n = int(math.floor(span * target_fps + 1e-9)) + 1
    pos = np.arange(n) * (fps / target_fps)  # fractional source index of each target frame
    lo = np.clip(np.floor(pos + 1e-9).astype(int), 0, xyz.shape[0] - 1)
    w = pos - lo
    w[np.abs(w) < 1e-9] = 0.0
    hi = np.clip(lo + 1, 0, xyz.shape[0] - 1)
    a, b = xyz[lo], xyz[hi]
    wb = w[:, None, None]
    out = np.where(wb == 0.0, a, (1.0 - wb) * a + wb * b)
    return out


# -- build -----------------------------------------------------------------------------------
def _match_task(take: dict) -> tuple[str, str] | None:
    text = f"{take.get('parent_task_name') or ''} / {take.get('task_name') or ''} / " \
           f"{take.get('scenario_name') or ''}"
    for pattern, target in ADR_TASKS.items():
        if re.search(pattern, text, re.IGNORECASE):
            return target
    return None


def _exo_camera(take: dict) -> tuple[str | None, str | None]:
    """(first exo camera id in sorted order, relative path of its first stream)."""
    videos = take.get("frame_aligned_videos") or {}
    cams = sorted(c for c in videos if isinstance(c, str) and not c.lower().startswith("aria")
                  and isinstance(videos[c], dict))
    for cam in cams:
        streams = videos[cam]
        for s in sorted(streams):
            rel = streams[s].get("relative_path") if isinstance(streams[s], dict) else None
            if rel:
                return cam, rel
        return cam, None
    return None, None


def _pose_file(root: Path, split: str, kind: str, uid: str) -> Path | None:
    base = root / "annotations" / "ego_pose"
    first = base / split / "body" / kind / f"{uid}.json"
    if first.is_file():
        return first
    for other in sorted(base.glob(f"*/body/{kind}/{uid}.json")):
        return other
    return None


def _describe_all(describer: Any, items: list[tuple[str, str, str, str]], progress: bool
                  ) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    if hasattr(describer, "describe_pairs"):
        got = describer.describe_pairs(items, progress=progress)
        return got, dict(getattr(describer, "errors", {}) or {})
    got, errors = {}, {}
    for a, b, c1, c2 in items:
        try:
            if hasattr(describer, "describe_pair"):
                got[(a, b)] = describer.describe_pair(a, b, c1, c2)
            else:
                got[(a, b)] = describer.describe(c1, c2)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 -- reported
            errors[(a, b)] = f"{type(e).__name__}: {e}"
    return got, errors


def build_adr(
    egoexo_root: str | Path,
    out: str | Path,
    *,
    pose_source: str = "annotation",
    score_source: str = "expert",
    describer: Any = None,
    extractor: Callable[[Path], tuple[np.ndarray, float]] | None = None,
    progress: bool = True,
    up_axis: str = "z",
    pose_fps: dict[str, float] | None = None,
    name: str = "adr",
) -> tuple[Path, dict]:
    """Convert an Ego-Exo4D download into the ADR keypoint folder.

    Args:
        egoexo_root: the Ego-Exo4D download folder (holding ``takes.json`` and
            ``annotations/``).
        out: the dataset folder to write (replaced atomically if it exists).
        pose_source: ``"annotation"`` (manual where present, else automatic), ``"automatic"`` or
            ``"extract"`` (run ``extractor`` on the exo video).
        score_source: ``"expert"`` (mean 1-10 expert rating) or ``"proficiency"`` (demonstrator
            level mapped to 1-4).
        describer: None (no description column) or a describer from :mod:`kept.data.describe`
            (``describe_pairs``, ``describe_pair`` or ``describe`` is used, in that order of
            preference); pairs are identified by recording ids (take names).
        extractor: ``video_path -> (xyz (F, 17, 3) coco17, fps)``; needed for ``"extract"``.
        progress: print progress to stderr.
        up_axis: written to dataset.json (see the module docstring: ASSUMED ``z``).
        pose_fps: frame rate per pose folder (default ``{"annotation": 30, "automatic": 60}``).
        name: dataset name.

    Returns:
        ``(out, report)`` with report ``{"converted": n, "skipped": {reason: [take_uid, ...]},
        ...}``.
    """
    if pose_source not in ("annotation", "automatic", "extract"):
        raise ValueError(f"pose_source must be 'annotation', 'automatic' or 'extract', got "
                         f"{pose_source!r}")
    if score_source not in ("expert", "proficiency"):
        raise ValueError(f"score_source must be 'expert' or 'proficiency', got {score_source!r}")
    if pose_source == "extract" and extractor is None:
        raise ValueError("pose_source='extract' needs a pose extractor (video_path -> (xyz, fps)); "
                         "install the pose extraction extra and pass extractor=..., or use "
                         "pose_source='annotation'")
    root = Path(egoexo_root)
    out = Path(out)
    fps_of = {**POSE_FPS, **(pose_fps or {})}
    if not (root / "takes.json").is_file():
        raise ValueError(
            f"{root}: no takes.json; expected an Ego-Exo4D download with takes.json, "
            "annotations/splits.json, annotations/expert_commentary_*.json (and the "
            "expert_commentary/ folder) and annotations/ego_pose/<split>/body/")
    takes = read_takes(root)
    unreadable: list[str] = []
    try:
        splits = read_splits(root)
    except (FileNotFoundError, ValueError) as e:
        unreadable.append(str(e))
        splits = {}
    commentary = read_expert_commentary(root, unreadable=unreadable)
    proficiency = read_proficiency(root, takes) if score_source == "proficiency" else {}

    skipped: dict[str, list[str]] = {}
    skip = lambda reason, uid: skipped.setdefault(reason, []).append(uid)  # noqa: E731
    rows: list[tuple[Recording, np.ndarray]] = []
    sources: Counter = Counter()
    adr_takes = [(t, m) for t in takes if (m := _match_task(t)) is not None]
    n_other = len(takes) - len(adr_takes)
    seen: set[str] = set()
    for i, (take, (sport, slug)) in enumerate(adr_takes, 1):
        uid = str(take["take_uid"])
        if progress and (i % 50 == 0 or i == len(adr_takes)):
            print(f"egoexo: {i}/{len(adr_takes)} ADR takes read", file=sys.stderr)
        rid = str(take.get("take_name") or uid)
        if rid in seen or "/" in rid or "\\" in rid:
            rid = uid
        split = splits.get(uid)
        if split is None:
            skip("not_in_splits", uid)
            continue
        if split not in _SPLIT_MAP:
            skip(f"egoexo_{split}_split", uid)
            continue
        c = commentary.get(uid)
        if c is None or (not c["commentary"] and c["score"] is None):
            skip("no_expert_commentary", uid)
            continue
        if score_source == "expert":
            if c["score"] is None:
                skip("no_expert_score", uid)
                continue
            score = float(c["score"])
        else:
            level = proficiency.get(uid)
            score = PROFICIENCY_LEVELS.get(str(level).strip().lower()) if level else None
            if score is None:
                skip("no_proficiency", uid)
                continue
        cam, rel = _exo_camera(take)
        start_frame = 0
        try:
            if pose_source == "extract":
                if cam is None or rel is None:
                    skip("no_exo_camera", uid)
                    continue
                video = root / str(take.get("root_dir") or f"takes/{take.get('take_name')}") / rel
                if not video.is_file():
                    skip("video_missing", uid)
                    continue
                try:
                    xyz, fps = extractor(video)  # type: ignore[misc]
                except KeyboardInterrupt:
                    raise
                except Exception:  # noqa: BLE001 -- reported as a skip
                    skip("extract_failed", uid)
                    continue
                xyz = np.asarray(xyz, dtype=np.float64)
                used = "extract"
            else:
                kinds = ("annotation", "automatic") if pose_source == "annotation" else ("automatic",)
                found = [(k, p) for k in kinds if (p := _pose_file(root, split, k, uid))]
                if not found:
                    skip("no_pose_file", uid)
                    continue
                used, path = found[0]
                xyz, fps, start_frame = _read_body_pose(path, fps_of[used])
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            skip("unreadable_pose", uid)
            continue
        except ValueError:
            skip("empty_pose", uid)
            continue
        if xyz.ndim != 3 or xyz.shape[1:] != (17, 3) or not np.isfinite(xyz).any():
            skip("empty_pose", uid)
            continue
        kp = resample(xyz, float(fps), TARGET_FPS)
        if not np.isfinite(kp).any():
            skip("empty_pose", uid)
            continue
        meta = {
            "take_uid": uid, "take_name": str(take.get("take_name") or ""), "sport": sport,
            "task_name": str(take.get("task_name") or ""), "egoexo_split": split,
            "exo_camera": cam or "", "pose_source": used, "source_fps": f"{float(fps):g}",
            "start_sec": repr(start_frame / float(fps)), "n_experts": str(c["n_experts"]),
        }
        if c["score"] is not None:
            meta["expert_score"] = repr(float(c["score"]))
        if uid in proficiency:
            meta["proficiency"] = proficiency[uid]
        subject = take.get("participant_uid")
        rows.append((Recording(id=rid, split=_SPLIT_MAP[split], category=slug, score=score,
                               subject=None if subject is None else str(subject),
                               commentary=c["commentary"] or None, meta=meta),
                     kp.astype(np.float32)))
        seen.add(rid)
        sources[used] += 1

    per_cat = Counter(r.category for r, _ in rows)
    for cat, n in per_cat.items():
        if n < 2:
            for r, _ in rows:
                if r.category == cat:
                    skip("category_too_small", r.meta["take_uid"])
    rows = [(r, k) for r, k in rows if per_cat[r.category] >= 2]

    report: dict[str, Any] = {
        "converted": len(rows),
        "skipped": skipped,
        "not_adr_tasks": n_other,
        "pose_source": dict(sources),
        "unreadable_files": unreadable,
    }
    summary = (f"egoexo: converted {len(rows)} of {len(adr_takes)} ADR takes from {root}; skipped "
               + (", ".join(f"{k}={len(v)}" for k, v in sorted(skipped.items())) or "none")
               + (f"; unreadable files={len(unreadable)}" if unreadable else ""))
    if not rows:
        print(summary)
        raise ValueError(
            f"{root}: no ADR take could be converted ({summary}). Expected takes.json with "
            "basketball/soccer/rock-climbing takes, annotations/splits.json, expert commentary "
            "(annotations/expert_commentary_<split>.json and annotations/expert_commentary/"
            "<take_name>/<expert>/data.json) and body pose in annotations/ego_pose/<split>/body/"
            "{annotation,automatic}/<take_uid>.json")

    recordings = [r for r, _ in rows]
    keypoints = {r.id: k for r, k in rows}
    groups: dict[tuple[str, str], list[Recording]] = {}
    for r in recordings:
        groups.setdefault((r.split, r.category), []).append(r)
    order = {"train": 0, "val": 1, "test": 2}
    pair_rows: list[tuple[Recording, Recording]] = []
    for (split, _), rs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        pair_rows += list(combinations(sorted(rs, key=lambda r: r.id), 2))
    pairs: list[Pair] | None = None
    if describer is not None:
        items = [(a.id, b.id, a.commentary or "", b.commentary or "") for a, b in pair_rows]
        got, errors = _describe_all(describer, items, progress)
        pairs = [Pair(a.id, b.id, a.split, got.get((a.id, b.id)) or None) for a, b in pair_rows]
        report["described"] = sum(p.description is not None for p in pairs)
        report["description_errors"] = {f"{a}|{b}": m for (a, b), m in errors.items()}
        summary += (f"; described {report['described']}/{len(pairs)} pairs"
                    + (f" ({len(errors)} errors)" if errors else ""))
    report["pairs"] = len(pair_rows)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write_dataset(
            tmp, name=name, fps=TARGET_FPS, skeleton="coco17", recordings=recordings,
            keypoints=keypoints, pairs=pairs,
            score_range=(1.0, 10.0) if score_source == "expert" else (1.0, 4.0),
            extra={"up_axis": up_axis, "meta": {
                "source": "Ego-Exo4D", "builder": "kept.data.egoexo.build_adr",
                "pose_source": pose_source, "score_source": score_source,
                "resampled_to_fps": TARGET_FPS, "resampling": "linear in time, gaps kept NaN",
                "describer": None if describer is None else str(
                    getattr(describer, "name", type(describer).__name__)),
                "report": {"converted": len(rows),
                           "skipped": {k: len(v) for k, v in skipped.items()}},
            }},
        )
        backup = None
        if out.exists():
            backup = out.parent / f".{out.name}.old-{tmp.name}"
            out.rename(backup)
        tmp.rename(out)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print(summary)
    return out, report
