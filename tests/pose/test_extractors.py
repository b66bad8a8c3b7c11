"""Pose extractors through fakes and small fixtures: no network, no mmpose, no mediapipe."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import pose.extractors as ex
from pose.extractors import BACKENDS, Extractor, make_extractor
from pose.extractors.egoexo import EGOEXO_BODY_JOINTS, EgoExoExtractor, read_body_pose
from pose.extractors.file import FileExtractor
from pose.sequence import KeypointSequence


# -- registry ----------------------------------------------------------------------------------
def test_backends_are_lazy_and_named() -> None:
    assert set(BACKENDS) == {"mmpose", "mediapipe", "mediapipe-tasks", "egoexo", "file"}
    for name in BACKENDS:
        assert ex.get_backend(name).name == name
    assert "mmpose" not in sys.modules and "mediapipe" not in sys.modules


def test_pose_extractors_import_without_torch_or_kept() -> None:
    import subprocess

    code = ("import sys; import pose.extractors as e; "
            "[e.get_backend(n) for n in e.BACKENDS]; "
            "bad = [m for m in ('torch', 'mmpose', 'mediapipe', 'kept') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_make_extractor_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown pose extractor 'openpose'.*egoexo.*file.*mediapipe.*mmpose"):
        make_extractor("openpose")
    with pytest.raises(TypeError, match="'file': bad options"):
        make_extractor("file", nonsense=1)
    fe = make_extractor("file", skeleton="coco17", fps=30)
    assert isinstance(fe, Extractor) and fe.settings() == {"skeleton": "coco17", "fps": 30.0}


# -- file ----------------------------------------------------------------------------------------
def _xyz(frames: int = 6, joints: int = 17) -> np.ndarray:
    x = np.arange(frames * joints * 3, dtype=np.float32).reshape(frames, joints, 3)
    x[2, 4] = np.nan
    return x


def test_file_npy(tmp_path: Path) -> None:
    p = tmp_path / "a.npy"
    np.save(p, _xyz())
    with pytest.raises(ValueError, match="pass skeleton=... and fps=..."):
        FileExtractor().extract(p)
    seq = FileExtractor(skeleton="coco17", fps=25).extract(p)
    assert seq.xyz.shape == (6, 17, 3) and seq.fps == 25.0 and seq.skeleton == "coco17"
    assert seq.confidence[2, 4] == 0 and seq.confidence[0, 0] == 1 and seq.source == str(p)
    np.save(p, np.zeros((6, 17)))
    with pytest.raises(ValueError, match=r"shape \(frames, joints, 3\).*rank 2"):
        FileExtractor(skeleton="coco17", fps=25).extract(p)
    np.save(p, np.zeros((6, 5, 3)))
    with pytest.raises(ValueError, match="5 joints, but skeleton 'coco17' has 17"):
        FileExtractor(skeleton="coco17", fps=25).extract(p)


def test_file_npz_forms_and_bad_suffix(tmp_path: Path) -> None:
    # a KeypointSequence file
    orig = KeypointSequence(xyz=_xyz(), confidence=np.full((6, 17), 0.5), skeleton="h36m17", fps=50,
                            source="mmpose:human3d", meta={"k": 1})
    orig.save(tmp_path / "s.npz")
    got = FileExtractor().extract(tmp_path / "s.npz")
    assert got.skeleton == "h36m17" and got.fps == 50 and got.meta == {"k": 1}
    np.testing.assert_array_equal(got.confidence, orig.confidence)
    # plain arrays with fps / skeleton inside
    np.savez(tmp_path / "k.npz", keypoints=_xyz(), fps=np.array(30.0), skeleton=np.array("coco17"))
    got = FileExtractor().extract(tmp_path / "k.npz")
    assert got.fps == 30.0 and got.skeleton == "coco17" and got.confidence[2, 4] == 0
    # plain arrays without fps: needs it from the extractor
    np.savez(tmp_path / "x.npz", xyz=_xyz())
    with pytest.raises(ValueError, match="no skeleton or fps"):
        FileExtractor().extract(tmp_path / "x.npz")
    assert FileExtractor(skeleton="coco17", fps=10).extract(tmp_path / "x.npz").fps == 10.0
    np.savez(tmp_path / "w.npz", other=_xyz())
    with pytest.raises(ValueError, match="'xyz' or 'keypoints'"):
        FileExtractor(skeleton="coco17", fps=10).extract(tmp_path / "w.npz")
    np.savez(tmp_path / "r.npz", xyz=np.zeros((2, 3, 4, 3)))
    with pytest.raises(ValueError, match="rank 4"):
        FileExtractor(skeleton="coco17", fps=10).extract(tmp_path / "r.npz")
    (tmp_path / "a.csv").write_text("1,2,3")
    with pytest.raises(ValueError, match="unsupported keypoint file '.csv'"):
        FileExtractor().extract(tmp_path / "a.csv")
    with pytest.raises(FileNotFoundError):
        FileExtractor().extract(tmp_path / "missing.npy")


def test_file_dataset_recording(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "keypoints").mkdir(parents=True)
    np.save(root / "keypoints" / "r1.npy", _xyz(joints=17))
    (root / "dataset.json").write_text(json.dumps({"name": "golf", "fps": 30, "skeleton": "coco17"}))
    seq = FileExtractor().extract(f"{root}::r1")
    assert seq.skeleton == "coco17" and seq.fps == 30.0 and seq.meta["recording"] == "r1"
    assert seq.source == f"{root}::r1"
    with pytest.raises(FileNotFoundError, match="'nope' not found"):
        FileExtractor().extract(f"{root}::nope")
    # inline skeleton: named after the dataset, spec kept in meta
    spec = {"joints": ["a", "b", "c"], "edges": [["a", "b"], ["b", "c"]], "node_types": {"b": ["b"]}}
    (root / "dataset.json").write_text(json.dumps({"name": "tiny", "fps": 12.5, "skeleton": spec}))
    np.save(root / "keypoints" / "r2.npy", np.zeros((4, 3, 3), np.float32))
    seq = FileExtractor().extract(f"{root}::r2")
    assert seq.skeleton == "tiny" and seq.meta["skeleton_spec"] == spec and seq.fps == 12.5
    with pytest.raises(ValueError, match="17 joints, but the inline skeleton"):
        FileExtractor().extract(f"{root}::r1")
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        FileExtractor().extract(f"{tmp_path}::r1")


# -- egoexo ------------------------------------------------------------------------------------
def _pose_json(first: int, last: int, skip: set[int] = frozenset(), drop_nose: int | None = None) -> dict:
    out = {}
    for n in range(first, last + 1):
        if n in skip:
            continue
        joints = {name: {"x": float(n), "y": 0.1 * j, "z": 1.0} for j, name in enumerate(EGOEXO_BODY_JOINTS)}
        if n == drop_nose:
            del joints["nose"]
        out[str(n)] = [{"annotation3D": joints, "annotation2D": {"cam01": {}}}]
    return out


@pytest.fixture
def egoexo_root(tmp_path: Path) -> Path:
    root = tmp_path / "egoexo"
    body = root / "annotations" / "ego_pose"
    files = {"train/body/annotation/t1.json": _pose_json(100, 109, {103, 104}, drop_nose=105),
             "train/body/automatic/t1.json": _pose_json(0, 19),
             "val/body/automatic/t2.json": _pose_json(7, 12)}
    for rel, obj in files.items():
        (body / rel).parent.mkdir(parents=True, exist_ok=True)
        (body / rel).write_text(json.dumps(obj))
    return root


def test_read_body_pose_moved_and_reexported(egoexo_root: Path) -> None:
    from kept.data.egoexo import read_body_pose as kept_read

    assert kept_read is read_body_pose
    xyz, fps = read_body_pose(egoexo_root / "annotations/ego_pose/train/body/annotation/t1.json")
    assert fps == 30.0 and xyz.shape == (10, 17, 3)
    assert np.isnan(xyz[3:5]).all() and np.isnan(xyz[5, 0]).all() and np.isfinite(xyz[5, 1:]).all()
    _, fps60 = read_body_pose(egoexo_root / "annotations/ego_pose/train/body/automatic/t1.json")
    assert fps60 == 60.0


def test_egoexo_extractor_sources(egoexo_root: Path) -> None:
    seq = make_extractor("egoexo", root=egoexo_root).extract("t1")
    assert seq.source == "egoexo:annotation" and seq.skeleton == "coco17" and seq.fps == 30.0
    assert seq.xyz.shape == (10, 17, 3)
    assert seq.confidence[0].tolist() == [1.0] * 17 and seq.confidence[3].sum() == 0
    assert seq.confidence[5, 0] == 0 and seq.confidence[5, 1] == 1
    np.testing.assert_allclose(seq.times[0], 100 / 30)
    auto = EgoExoExtractor(egoexo_root, source="automatic").extract("t1")
    assert auto.source == "egoexo:automatic" and auto.fps == 60.0 and auto.num_frames == 20
    # "auto": manual if present, else automatic, in any split
    t2 = EgoExoExtractor(egoexo_root, source="auto").extract("t2")
    assert t2.source == "egoexo:automatic" and t2.num_frames == 6 and t2.meta["start_frame"] == 7
    with pytest.raises(FileNotFoundError, match="no Ego-Exo4D body pose for take 't2'"):
        EgoExoExtractor(egoexo_root, source="annotation").extract("t2")
    direct = EgoExoExtractor(egoexo_root).extract(egoexo_root / "annotations/ego_pose/val/body/automatic/t2.json")
    assert direct.source == "egoexo:automatic"
    with pytest.raises(ValueError, match="source must be one of"):
        EgoExoExtractor(egoexo_root, source="manual")


# -- mmpose (fake inferencer) ------------------------------------------------------------------
def _person(offset: float, box: list[float], score: float = 0.9, nested: bool = True) -> dict:
    kp = (np.arange(17 * 3, dtype=float).reshape(17, 3) / 100 + offset).tolist()
    return {"keypoints": kp, "keypoint_scores": [score] * 16 + [0.2],
            "bbox": [box] if nested else box, "bbox_score": 0.99}


BIG = [100.0, 50.0, 300.0, 450.0]      # large, central in a 400x500 frame
SMALL = [0.0, 0.0, 40.0, 60.0]          # small, in a corner


class FakeInferencer:
    """Yields mmpose's documented output: one dict per frame of a video path input."""

    def __init__(self, **kwargs) -> None:
        self.init_kwargs = kwargs
        self.calls: list[tuple] = []
        self.frames = [
            [_person(1.0, BIG)],
            [_person(9.0, SMALL, score=0.5, nested=False), _person(2.0, BIG)],  # two people
            [],                                                                    # nobody
            [_person(4.0, BIG)],
            [_person(5.0, BIG)],
            [_person(6.0, BIG)],
        ]

    def __call__(self, inputs, **kwargs):
        self.calls.append((inputs, kwargs))
        for insts in self.frames:
            yield {"predictions": [insts], "visualization": []}


@pytest.fixture
def fake_mmpose(monkeypatch, tmp_path: Path):
    import pose.extractors.mmpose as mm

    built: list[FakeInferencer] = []

    def build(**kwargs):
        built.append(FakeInferencer(**kwargs))
        return built[-1]

    monkeypatch.setattr(mm, "_build_inferencer", build)
    monkeypatch.setattr(mm, "_probe_video", lambda path: (30.0, (400, 500)))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not decoded by the fake")
    return mm, built, video


def test_mmpose_conversion(fake_mmpose) -> None:
    _, built, video = fake_mmpose
    ext = make_extractor("mmpose", pose3d_checkpoint="/ckpt/lift.pth", det_checkpoint=("det.py", "det.pth"),
                         max_gap=0)
    seq = ext.extract(video)
    (inf,) = built
    assert inf.init_kwargs == {"pose3d": "human3d", "device": "cpu", "pose3d_weights": "/ckpt/lift.pth",
                               "det_model": "det.py", "det_weights": "det.pth", "det_cat_ids": (0,)}
    inputs, kwargs = inf.calls[0]
    assert inputs == str(video) and kwargs["return_vis"] is False
    assert seq.xyz.shape == (6, 17, 3) and seq.skeleton == "h36m17" and seq.source == "mmpose:human3d"
    assert seq.fps == 30.0 and seq.meta["up_axis"] == "z"
    # frame 1: the big central person (offset 2), not the small one listed first
    np.testing.assert_allclose(seq.xyz[1], np.arange(51).reshape(17, 3) / 100 + 2.0, atol=1e-6)
    assert np.isnan(seq.xyz[2]).all() and (seq.confidence[2] == 0).all()  # nobody, no filling
    np.testing.assert_allclose(seq.confidence[0], [0.9] * 16 + [0.2], atol=1e-6)
    assert seq.meta["missing_frames"] == 1
    ext.extract(video)
    assert len(built) == 1  # the inferencer is built once


def test_mmpose_fills_short_gaps_and_samples_fps(fake_mmpose) -> None:
    mm, _, video = fake_mmpose
    seq = mm.MMPoseExtractor(max_gap=5).extract(video)
    np.testing.assert_allclose(seq.xyz[2], (seq.xyz[1] + seq.xyz[3]) / 2, atol=1e-5)  # interpolated
    assert (seq.confidence[2] == 0).all()
    sub = mm.MMPoseExtractor(fps=15, max_gap=0).extract(video)  # every other frame of 30 fps
    assert sub.num_frames == 3 and sub.fps == 15.0
    np.testing.assert_allclose(sub.times, [0, 2 / 30, 4 / 30])
    assert np.isnan(sub.xyz[1]).all()


def test_mmpose_no_bboxes_takes_first_instance(fake_mmpose) -> None:
    mm = fake_mmpose[0]
    frames = [[{k: v for k, v in _person(o, BIG).items() if k != "bbox"} for o in (3.0, 7.0)]]
    xyz, _, chosen = mm.MMPoseExtractor()._convert(frames, None)
    assert chosen == [0] and np.isclose(xyz[0, 0, 0], 3.0)
    with pytest.raises(ValueError, match=r"shape \(17, 3\)"):
        mm.MMPoseExtractor()._convert([[{"keypoints": [[0, 0, 0]] * 33, "bbox": BIG}]], None)


def test_mmpose_temporal_window(fake_mmpose, monkeypatch) -> None:
    import functools

    mm = fake_mmpose[0]

    def extract_pose_sequence(results, frame_idx, causal, seq_len, step):  # mmpose's signature
        return seq_len

    inner = types.SimpleNamespace(_pose_seq_extractor=functools.partial(
        extract_pose_sequence, causal=False, seq_len=243, step=1))
    fake = FakeInferencer()
    fake.inferencer = inner
    monkeypatch.setattr(mm, "_build_inferencer", lambda **kw: fake)
    mm.MMPoseExtractor(temporal_window=27).inferencer()
    assert inner._pose_seq_extractor([], frame_idx=0) == 27
    monkeypatch.setattr(mm, "_build_inferencer", lambda **kw: FakeInferencer())
    with pytest.raises(ValueError, match="temporal_window"):
        mm.MMPoseExtractor(temporal_window=27).inferencer()


def test_mmpose_missing_gives_install_recipe(monkeypatch) -> None:
    import pose.extractors.mmpose as mm

    monkeypatch.setitem(sys.modules, "mmpose", None)  # import mmpose -> ImportError
    with pytest.raises(ImportError, match=r"mmcv >= 2.0, < 2.2.*mim install"):
        mm._import_inferencer()


def test_trusted_torch_load_restores(monkeypatch) -> None:
    import pose.extractors.mmpose as mm

    seen = []
    fake_torch = types.ModuleType("torch")
    fake_torch.load = lambda *a, **kw: seen.append(kw) or "ok"
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    original = fake_torch.load
    with mm._trusted_torch_load():
        fake_torch.load("x.pth")
        fake_torch.load("y.pth", weights_only=True)
    assert fake_torch.load is original
    assert seen == [{"weights_only": False}, {"weights_only": True}]


# -- mediapipe (fake module) -------------------------------------------------------------------
class _LM:
    def __init__(self, x, y, z, v) -> None:
        self.x, self.y, self.z, self.visibility = x, y, z, v


class _FakePose:
    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def process(self, image):
        assert image.dtype == np.uint8 and image.shape[-1] == 3
        f = self.n
        self.n += 1
        if f == 1:
            return types.SimpleNamespace(pose_world_landmarks=None)  # nobody
        lms = [_LM(0.01 * i + f, -0.02 * i, 0.5, 0.8) for i in range(33)]
        return types.SimpleNamespace(pose_world_landmarks=types.SimpleNamespace(landmark=lms))


@pytest.fixture
def fake_mediapipe(monkeypatch):
    mp = types.ModuleType("mediapipe")
    mp.solutions = types.SimpleNamespace(pose=types.SimpleNamespace(Pose=_FakePose))
    monkeypatch.setitem(sys.modules, "mediapipe", mp)
    video = types.ModuleType("pose.video")  # independent of the real decoder
    video.read_frames = lambda path, fps=None, times=None, max_side=None: (
        np.zeros((4, 8, 8, 3), np.uint8), np.arange(4) / 24.0)
    video.probe = lambda path: types.SimpleNamespace(fps=24.0)
    monkeypatch.setitem(sys.modules, "pose.video", video)
    return mp


def test_mediapipe_world_landmarks(fake_mediapipe) -> None:
    seq = make_extractor("mediapipe", max_gap=0).extract("clip.mp4")
    assert seq.xyz.shape == (4, 33, 3) and seq.skeleton == "mediapipe33" and seq.fps == 24.0
    np.testing.assert_allclose(seq.xyz[2, 3], [0.03 + 2, -0.06, 0.5], atol=1e-6)
    assert np.isnan(seq.xyz[1]).all() and (seq.confidence[1] == 0).all()
    np.testing.assert_allclose(seq.confidence[0], 0.8, atol=1e-6)
    filled = make_extractor("mediapipe", max_gap=2).extract("clip.mp4")
    np.testing.assert_allclose(filled.xyz[1], (filled.xyz[0] + filled.xyz[2]) / 2, atol=1e-5)


def test_mediapipe_missing_says_separate_env(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match=r"numpy<2.*separate virtual environment.*kept\[mediapipe\]"):
        make_extractor("mediapipe").extract("clip.mp4")
