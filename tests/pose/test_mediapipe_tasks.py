"""The ``mediapipe-tasks`` backend (MediaPipe Tasks API PoseLandmarker) through the public API.

The landmarker is a fake made by replacing the Tasks factory ``PoseLandmarker.create_from_options``:
on the installed mediapipe when there is one (so its real ``mp.Image``, ``BaseOptions`` and
options class are used), else on a stand-in module. The video is a real one written with PyAV,
each frame a flat grey whose level encodes its index, so the fake can tell which frame it was
handed at which timestamp. ``test_real_landmarker`` runs MediaPipe for real when
``KEPT_POSE_MODEL`` points at a ``pose_landmarker_*.task`` file.
"""

from __future__ import annotations

import io
import os
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pose.extractors.mediapipe_tasks as mt
from pose.extractors import build_extractor, default_video_backend, make_extractor
from pose.video import write_video

#: frame times of the test video (variable frame rate, seconds): the timestamps must follow them
TIMES = [0.0, 0.04, 0.1, 0.13, 0.2, 0.3]
NOBODY = 2  # the frame where the fake finds no one
BASE = np.random.default_rng(0).normal(0.0, 0.3, size=(33, 3))  # a fixed, non-degenerate "body"


def grey_level(k: int) -> int:
    return 10 + 20 * k


def fake_world(k: int) -> np.ndarray:
    """The world landmarks the fake returns for frame ``k``: (33, 3)."""
    return BASE + np.array([0.05 * k, 0.02 * np.sin(k), 0.0])


def write_grey_video(path: Path, n: int | None = None, times: list[float] | None = TIMES) -> Path:
    n = len(times) if n is None else n
    frames = np.stack([np.full((48, 64, 3), grey_level(k), np.uint8) for k in range(n)])
    return write_video(path, frames, 25.0, times=times[:n] if times is not None else None)


class FakeLandmarker:
    """Stands in for ``PoseLandmarker``: reads the frame index from the image's grey level."""

    def __init__(self, options) -> None:
        self.options = options
        self.calls: list[tuple[int, int, tuple, np.dtype]] = []
        self.closed = False

    def detect_for_video(self, image, timestamp_ms):
        frame = np.asarray(image.numpy_view())
        k = int(round((float(frame.mean()) - 10) / 20))
        self.calls.append((int(timestamp_ms), k, frame.shape, frame.dtype))
        if k == NOBODY:
            return types.SimpleNamespace(pose_landmarks=[], pose_world_landmarks=[])
        world = [types.SimpleNamespace(x=float(x), y=float(y), z=float(z), visibility=0.8, presence=0.9)
                 for x, y, z in fake_world(k)]
        return types.SimpleNamespace(pose_landmarks=[world], pose_world_landmarks=[world])

    def close(self) -> None:
        self.closed = True


def _stand_in_tasks() -> types.SimpleNamespace:
    """The Tasks API pieces, for environments without mediapipe."""
    class Image:
        def __init__(self, image_format, data) -> None:
            self.image_format, self._data = image_format, data

        def numpy_view(self):
            return self._data

    class Options:
        def __init__(self, **kw) -> None:
            self.__dict__.update(kw)

    return types.SimpleNamespace(
        Image=Image, ImageFormat=types.SimpleNamespace(SRGB="SRGB"), BaseOptions=Options,
        PoseLandmarkerOptions=Options, RunningMode=types.SimpleNamespace(VIDEO="VIDEO"),
        PoseLandmarker=type("PoseLandmarker", (), {}), version="stand-in")


class _Built(list):
    tasks: types.SimpleNamespace


def fake_factory(monkeypatch, installed: bool) -> _Built:
    """Replace the Tasks factory; returns the list of landmarkers it builds."""
    if installed:
        if not mt.tasks_available():
            pytest.skip("mediapipe (Tasks API) not installed: pip install -e \".[video]\"")
        tasks = mt._import_tasks()
    else:
        tasks = _stand_in_tasks()
        monkeypatch.setattr(mt, "_import_tasks", lambda: tasks)
    built = _Built()

    def create_from_options(options):
        built.append(FakeLandmarker(options))
        return built[-1]

    monkeypatch.setattr(tasks.PoseLandmarker, "create_from_options", create_from_options, raising=False)
    built.tasks = tasks
    return built


@pytest.fixture(params=["installed", "stand-in"])
def landmarkers(request, monkeypatch) -> _Built:
    """Every landmarker the extractor builds, through a fake Tasks factory (on the installed
    mediapipe, and on a stand-in module)."""
    return fake_factory(monkeypatch, request.param == "installed")


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "pose_landmarker_fake.task"
    path.write_bytes(b"not a real model: the factory is faked")
    return path


@pytest.fixture(autouse=True)
def no_model_around(monkeypatch, tmp_path: Path):
    """No model from the environment, an empty cache, and no network."""
    monkeypatch.delenv(mt.MODEL_ENV, raising=False)
    monkeypatch.delenv(mt.ALLOW_DOWNLOAD_ENV, raising=False)
    monkeypatch.setenv("KEPT_CACHE", str(tmp_path / "kept-cache"))

    def no_network(url, timeout):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(mt, "_urlopen", no_network)


def test_world_landmarks_skeleton_and_timestamps(landmarkers, model_file, tmp_path) -> None:
    video = write_grey_video(tmp_path / "clip.mp4")
    seq = make_extractor("mediapipe-tasks", model=str(model_file), max_gap=0).extract(video)
    (lm,) = landmarkers
    # options: VIDEO mode, one person, the model file given
    assert lm.options.running_mode == landmarkers.tasks.RunningMode.VIDEO
    assert lm.options.num_poses == 1 and lm.options.base_options.model_asset_path == str(model_file)
    # every frame in order, RGB uint8 at the video's size, timestamps = the frames' own times in ms
    assert [k for _, k, _, _ in lm.calls] == list(range(len(TIMES)))
    assert [ms for ms, _, _, _ in lm.calls] == [round(t * 1000) for t in TIMES]
    assert all(shape == (48, 64, 3) and dtype == np.uint8 for _, _, shape, dtype in lm.calls)
    assert lm.closed
    # output: 33 world landmarks per frame in metres, the legacy backend's skeleton
    assert seq.xyz.shape == (len(TIMES), 33, 3) and seq.skeleton == "mediapipe33"
    np.testing.assert_allclose(seq.times, TIMES, atol=1e-6)
    for k in range(len(TIMES)):
        if k != NOBODY:
            np.testing.assert_allclose(seq.xyz[k], fake_world(k), atol=1e-6)
            np.testing.assert_allclose(seq.confidence[k], 0.8, atol=1e-6)
    assert np.isnan(seq.xyz[NOBODY]).all() and (seq.confidence[NOBODY] == 0).all()
    assert seq.meta["units"] == "m" and seq.meta["up_axis"] == "-y" and seq.meta["missing_frames"] == 1
    assert seq.source == "mediapipe-tasks:pose_landmarker_fake"
    assert seq.fps == seq.meta["video_fps"] > 0  # the video's (average) rate when fps is not given
    assert seq.meta["settings"]["model"] == model_file.name

    from pose.convert import convert

    coco = convert(seq, "coco17")
    assert coco.xyz.shape == (len(TIMES), 17, 3)
    np.testing.assert_allclose(coco.xyz[0, 5], fake_world(0)[11], atol=1e-6)  # left shoulder = landmark 11


def test_gaps_filled_and_fps_sampling_keeps_timestamps_increasing(landmarkers, model_file, tmp_path) -> None:
    video = write_grey_video(tmp_path / "clip.mp4", times=None, n=5)  # constant 25 fps
    seq = make_extractor("mediapipe-tasks", model=str(model_file), max_gap=2).extract(video)
    np.testing.assert_allclose(seq.xyz[NOBODY], (seq.xyz[1] + seq.xyz[3]) / 2, atol=1e-5)
    assert (seq.confidence[NOBODY] == 0).all()
    # 50 fps from a 25 fps video: each frame twice, yet MediaPipe needs increasing timestamps
    fast = make_extractor("mediapipe-tasks", model=str(model_file), fps=50).extract(video)
    stamps = [ms for ms, _, _, _ in landmarkers[-1].calls]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert fast.fps == 50.0 and fast.num_frames == len(stamps)


def test_missing_model_says_where_to_get_it(landmarkers, tmp_path) -> None:
    video = write_grey_video(tmp_path / "clip.mp4")
    with pytest.raises(FileNotFoundError) as err:
        make_extractor("mediapipe-tasks").extract(video)
    msg = str(err.value)
    assert "--pose-model" in msg and "--allow-download" in msg and mt.MODEL_ENV in msg
    assert mt.MODEL_URL.format(variant="full") in msg
    assert not landmarkers  # nothing built
    with pytest.raises(FileNotFoundError, match="pose model file not found"):
        make_extractor("mediapipe-tasks", model=str(tmp_path / "nope.task")).extract(video)


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pose_detector.tflite", b"x" * 1000)
    return buf.getvalue()


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_download_only_when_allowed_and_atomic(monkeypatch, tmp_path) -> None:
    fetched: list[str] = []

    def urlopen(url, timeout):
        fetched.append(url)
        return _Response(_zip_bytes())

    monkeypatch.setattr(mt, "_urlopen", urlopen)
    with pytest.raises(FileNotFoundError):
        mt.resolve_model(None, "lite")  # not allowed: no download
    assert not fetched
    path = mt.resolve_model(None, "lite", allow_download=True)
    assert path == mt.cached_model_path("lite") and zipfile.is_zipfile(path)
    assert fetched == [mt.MODEL_URL.format(variant="lite")]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert mt.resolve_model("lite") == path and len(fetched) == 1  # cached: fetched once
    monkeypatch.setenv(mt.ALLOW_DOWNLOAD_ENV, "1")  # the environment variable allows it too
    assert mt.resolve_model(None, "heavy") == mt.cached_model_path("heavy") and len(fetched) == 2

    monkeypatch.setattr(mt, "_urlopen", lambda url, timeout: _Response(b"<html>quota</html>"))
    with pytest.raises(ValueError, match="not a MediaPipe model bundle"):
        mt.download_model("full")
    assert not mt.cached_model_path("full").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["pose_landmarker_heavy.task", "pose_landmarker_lite.task"]

    def broken(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(mt, "_urlopen", broken)
    with pytest.raises(OSError, match="--pose-model"):
        mt.download_model("full")
    assert not mt.cached_model_path("full").exists()


def test_unloadable_model_is_a_clear_error(model_file, tmp_path) -> None:
    if not mt.tasks_available():
        pytest.skip("mediapipe (Tasks API) not installed: pip install -e \".[video]\"")
    video = write_grey_video(tmp_path / "clip.mp4")
    with pytest.raises(ValueError, match="could not load the pose model.*--pose-model"):
        make_extractor("mediapipe-tasks", model=str(model_file)).extract(video)  # the real factory


def test_model_from_environment(monkeypatch, model_file) -> None:
    monkeypatch.setenv(mt.MODEL_ENV, str(model_file))
    assert mt.resolve_model() == model_file
    monkeypatch.setenv(mt.MODEL_ENV, str(model_file) + ".missing")
    with pytest.raises(FileNotFoundError, match=mt.MODEL_ENV):
        mt.resolve_model()


def test_auto_backend(monkeypatch, model_file) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    installed = {"mmpose": False, "mediapipe": False}

    def find_spec(name, *a, **kw):
        if name in installed:
            return object() if installed[name] else None
        return real_find_spec(name, *a, **kw)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(mt, "tasks_available", lambda: False)
    assert default_video_backend(pose_model=model_file) == "mediapipe-tasks"
    assert default_video_backend(allow_download=True) == "mediapipe-tasks"
    with pytest.raises(ImportError, match=r"kept\[video\]|\.\[video\]"):
        default_video_backend()
    installed["mmpose"] = True
    assert default_video_backend() == "mmpose"
    monkeypatch.setattr(mt, "tasks_available", lambda: True)
    assert default_video_backend() == "mmpose"  # no model at hand: mmpose first
    monkeypatch.setenv(mt.MODEL_ENV, str(model_file))
    assert default_video_backend() == "mediapipe-tasks"  # a model at hand
    monkeypatch.delenv(mt.MODEL_ENV)
    installed["mmpose"] = False
    assert default_video_backend() == "mediapipe-tasks"  # the one installed; it says how to get a model


def test_build_extractor_checks_options(model_file) -> None:
    ex = build_extractor("auto", pose_model=model_file, fps=None, allow_download=None)
    assert ex.name == "mediapipe-tasks" and ex.model == str(model_file)
    with pytest.raises(ValueError, match="apply to the mediapipe-tasks backend"):
        build_extractor("mmpose", pose_model=model_file)
    with pytest.raises(ValueError, match="--pose-model"):
        build_extractor("mediapipe-tasks", model="human3d")
    with pytest.raises(ValueError, match=r"\['device'\] do not apply"):
        build_extractor("mediapipe-tasks", pose_model=model_file, device="cuda:0")


def test_legacy_backend_points_to_tasks_backend_on_mediapipe_1(monkeypatch) -> None:
    mp = types.ModuleType("mediapipe")
    mp.__version__ = "1.2.3"  # no `solutions`
    monkeypatch.setitem(__import__("sys").modules, "mediapipe", mp)
    with pytest.raises(ImportError, match="--backend mediapipe-tasks"):
        make_extractor("mediapipe").extract("clip.mp4")


REAL_MODEL = os.environ.get(mt.MODEL_ENV)


@pytest.mark.skipif(not REAL_MODEL, reason=f"{mt.MODEL_ENV} not set: point it at a pose_landmarker_*.task file "
                                           f"(e.g. {mt.MODEL_URL.format(variant='lite')}) to run MediaPipe's "
                                           "PoseLandmarker for real")
def test_real_landmarker(monkeypatch, tmp_path, drawn_person_video) -> None:
    if not mt.tasks_available():
        pytest.skip("mediapipe (Tasks API) not installed: pip install -e \".[video]\"")
    monkeypatch.setenv(mt.MODEL_ENV, REAL_MODEL)
    video, xyz = drawn_person_video(tmp_path / "person.mp4", frames=60)
    seq = make_extractor("mediapipe-tasks").extract(video)
    assert seq.skeleton == "mediapipe33" and seq.xyz.shape == (len(xyz), 33, 3)
    found = np.isfinite(seq.xyz).all(-1).any(-1)
    assert found.mean() > 0.5  # a person found in most frames
    assert np.nanmax(np.abs(seq.xyz)) < 3.0  # world coordinates: metres around the hips


# -- the commands: one environment, videos in, keypoints / compare.json out ----------------------
@pytest.fixture(scope="module")
def coco_run(tmp_path_factory) -> Path:
    """A tiny KEPT trained on the coco17 demo data (the skeleton video keypoints are converted to)."""
    from kept.cli import main
    from kept.data.demo import generate_demo

    tmp = tmp_path_factory.mktemp("coco-run")
    demo = generate_demo(tmp / "demo", seed=0, train_per_category=2, test_per_category=1, progress=False)
    run = tmp / "run"
    assert main(["train", "--dataset", "folder", "--data-root", str(demo), "--run-dir", str(run),
                 "model.dim=8", "model.heads=2", "model.depth=2", "data.num_keyframes=4", "data.segment_samples=2",
                 "text.enabled=false", "train.max_epochs=1", "train.progress_bar=false",
                 f"data.cache_dir={tmp / 'cache'}"]) == 0
    return run


def test_compare_and_plot_two_videos(coco_run, monkeypatch, model_file, tmp_path, capsys) -> None:
    import json

    from kept.cli import main

    built = fake_factory(monkeypatch, installed=False)
    a = write_grey_video(tmp_path / "a.mp4", n=12, times=None)
    b = write_grey_video(tmp_path / "b.mp4", n=10, times=None)
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--checkpoint", str(coco_run), "--backend", "mediapipe-tasks",
                 "--pose-model", str(model_file), "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["order"] == ["a", "b"] and len(result["residual"]) == 17  # coco17, converted
    assert len(built) == 2  # one landmarker per video
    capsys.readouterr()
    # cached now: `kept plot` on the same videos builds no landmarker ...
    assert main(["plot", "poses", str(a), str(b), "--checkpoint", str(coco_run), "--out", str(tmp_path / "pl"),
                 "--pose-model", str(model_file)]) == 0  # auto: --pose-model selects mediapipe-tasks
    assert (tmp_path / "pl" / "poses.png").stat().st_size > 1000 and len(built) == 2
    # ... and its --backend is honoured: the model file does not apply to mmpose
    assert main(["plot", "poses", str(a), str(b), "--checkpoint", str(coco_run), "--out", str(tmp_path / "pl"),
                 "--backend", "mmpose", "--pose-model", str(model_file)]) == 2
    assert "apply to the mediapipe-tasks backend" in capsys.readouterr().err
    # no model and no download allowed: a clear error naming the flags, not a traceback
    monkeypatch.setenv("KEPT_CACHE", str(tmp_path / "empty-cache"))
    c = write_grey_video(tmp_path / "c.mp4", n=8, times=None)
    assert main(["compare", str(a), str(c), "--checkpoint", str(coco_run), "--backend", "mediapipe-tasks"]) == 2
    err = capsys.readouterr().err
    assert "--pose-model" in err and "--allow-download" in err


def test_pose_extract_command(monkeypatch, model_file, tmp_path, capsys) -> None:
    from kept.cli import main
    from pose.sequence import KeypointSequence

    built = fake_factory(monkeypatch, installed=False)
    videos = tmp_path / "videos"
    write_grey_video(videos / "one.mp4")
    write_grey_video(videos / "two.mp4", n=4)  # different bytes: the cache is by content
    out = tmp_path / "kp"
    assert main(["pose", "extract", str(videos), "--backend", "mediapipe-tasks", "--pose-model", str(model_file),
                 "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    assert "2 extracted" in capsys.readouterr().out
    seq = KeypointSequence.load(out / "one.npz")
    assert seq.skeleton == "mediapipe33" and seq.xyz.shape == (len(TIMES), 33, 3)
    assert len(built) == 3  # the up-front check, then one per video
    # a missing model fails once, before any video
    assert main(["pose", "extract", str(videos), "--backend", "mediapipe-tasks", "--out", str(tmp_path / "kp2"),
                 "--cache", str(tmp_path / "cache2")]) == 2
    assert "--pose-model" in capsys.readouterr().err and not (tmp_path / "kp2").exists()


def _mini_egoexo(root: Path) -> Path:
    """Two Mid-Range Jump Shooting takes with a rating each and a real exo video (cam01)."""
    import json

    def write(path: Path, obj) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj), encoding="utf-8")

    takes = []
    for i, uid in enumerate(("t1", "t2")):
        name = f"take_{uid}"
        takes.append({"take_uid": uid, "take_name": name, "root_dir": f"takes/{name}",
                      "task_name": "Basketball Drills - Mid-Range Jump Shooting", "parent_task_name": "Basketball",
                      "participant_uid": i, "frame_aligned_videos": {
                          "aria01": {"rgb": {"cam_id": "aria01", "relative_path": "frame_aligned_videos/aria01.mp4"}},
                          "cam01": {"0": {"cam_id": "cam01", "relative_path": "frame_aligned_videos/cam01.mp4"}}}})
        folder = root / "annotations" / "expert_commentary" / name / "expert1"
        write(folder / "data.json", {"user_id": "expert1", "video_name": name, "ds": "20240101", "annotations": [],
                                     "proficiency": {"rating": 4 + 2 * i, "why": "because"}})
        write(folder / "transcriptions.json", {"0.webm": {"text": f"{uid} comment", "language": "en",
                                                          "error": False, "error_desc": None}})
        write_grey_video(root / "takes" / name / "frame_aligned_videos" / "cam01.mp4", n=10 + i, times=None)
    write(root / "takes.json", takes)
    write(root / "annotations" / "splits.json", {"take_uid_to_split": {"t1": "train", "t2": "train"}})
    return root


def test_data_adr_extract_builds_its_extractor(monkeypatch, model_file, tmp_path, capsys) -> None:
    from kept.cli import main
    from kept.data.folder import load_dataset

    built = fake_factory(monkeypatch, installed=False)
    root = _mini_egoexo(tmp_path / "egoexo")
    out = tmp_path / "adr"
    assert main(["data", "adr", "--egoexo-root", str(root), "--out", str(out), "--pose-source", "extract",
                 "--backend", "mediapipe-tasks", "--pose-model", str(model_file),
                 "--pose-cache", str(tmp_path / "pose-cache")]) == 0
    assert "2 takes" in capsys.readouterr().out
    ds = load_dataset(out, val_fraction=0.0)
    kp = ds.keypoints("take_t1")
    assert kp.shape[1:] == (17, 3) and kp.shape[0] >= 10  # coco17, resampled to 30 fps
    np.testing.assert_allclose(kp[0, 5], fake_world(0)[11], atol=1e-5)  # left shoulder = landmark 11
    assert len(built) == 3  # the check, then one per take
    # a missing model is one clear error, not every take skipped as "extract_failed"
    monkeypatch.setenv("KEPT_CACHE", str(tmp_path / "empty-cache"))
    assert main(["data", "adr", "--egoexo-root", str(root), "--out", str(tmp_path / "adr2"), "--pose-source",
                 "extract", "--backend", "mediapipe-tasks"]) == 2
    assert "--pose-model" in capsys.readouterr().err
    assert main(["data", "adr", "--egoexo-root", str(root), "--out", str(tmp_path / "adr3"),
                 "--pose-model", str(model_file)]) == 2
    assert "apply to --pose-source extract" in capsys.readouterr().err
