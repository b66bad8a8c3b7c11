"""`kept pose extract` and `kept pose show` from the command line."""

import json

import numpy as np

from kept.cli import main
from pose.sequence import KeypointSequence


def test_extract_files_then_show(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", rng.normal(size=(8, 17, 3)).astype(np.float32))
    out, cache = tmp_path / "out", tmp_path / "cache"
    src = f"{tmp_path / 'a.npy'},{tmp_path / 'b.npy'}"
    args = ["pose", "extract", src, "--backend", "file", "--skeleton", "coco17", "--fps", "30",
            "--out", str(out), "--cache", str(cache), "--shard", "0/1"]
    assert main(args) == 0
    assert "2 extracted" in capsys.readouterr().out
    seq = KeypointSequence.load(out / "a.npz")
    assert seq.xyz.shape == (8, 17, 3) and seq.skeleton == "coco17" and seq.fps == 30.0
    assert main(args) == 0
    assert "2 from the cache" in capsys.readouterr().out
    report = json.loads((out / "extract-report-0of1.json").read_text())
    assert len(report["cached"]) == 2

    assert main(["pose", "show", str(out / "a.npz"), "--out", str(tmp_path / "a.png"), "--frames", "0,7"]) == 0
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_extract_errors_are_clear(tmp_path, capsys):
    assert main(["pose", "extract", str(tmp_path), "--backend", "mmpose", "--out", str(tmp_path / "o")]) == 2
    assert "no videos" in capsys.readouterr().err
    assert main(["pose", "extract", "x.npy", "--backend", "file", "--device", "cuda:0",
                 "--out", str(tmp_path / "o")]) == 2
    assert "do not apply" in capsys.readouterr().err


def test_mmpose_checkpoint_flags_are_weights(tmp_path, monkeypatch, capsys):
    """--det/pose2d/pose3d-checkpoint reach MMPoseInferencer as *_weights (mmpose itself is faked)."""
    import pose.extractors.mmpose as mm

    built = []

    class FakeInferencer:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def __call__(self, inputs, **kwargs):
            for f in range(3):
                kp = (np.arange(51).reshape(17, 3) / 100 + f).tolist()
                yield {"predictions": [[{"keypoints": kp, "keypoint_scores": [0.9] * 17,
                                         "bbox": ([10.0, 10.0, 200.0, 300.0],), "bbox_score": 0.9}]]}

    def build(**kwargs):
        built.append(FakeInferencer(**kwargs))
        return built[-1]

    monkeypatch.setattr(mm, "_build_inferencer", build)
    monkeypatch.setattr(mm, "_probe_video", lambda path: (30.0, (400, 500)))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not decoded by the fake")
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["pose", "extract", str(video), "--backend", "mmpose", "--out", str(out), "--cache", str(cache),
            "--det-checkpoint", "det.pth", "--pose2d-checkpoint", "p2d.pth", "--pose3d-checkpoint", "p3d.pth"]
    assert main(args) == 0
    assert built[0].kwargs == {"pose3d": "human3d", "device": "cpu", "pose3d_weights": "p3d.pth",
                               "pose2d_weights": "p2d.pth", "det_model": "rtmdet-m", "det_weights": "det.pth",
                               "det_cat_ids": (0,)}
    assert KeypointSequence.load(out / "v.npz").xyz.shape == (3, 17, 3)
    built.clear()
    assert main(args + ["--det-model", "det_cfg.py", "--pose2d-model", "rtmpose-l", "--cache", str(tmp_path / "c2")]) == 0
    kw = built[0].kwargs
    assert kw["det_model"] == "det_cfg.py" and kw["det_weights"] == "det.pth" and kw["pose2d"] == "rtmpose-l"
    capsys.readouterr()
    assert main(["pose", "extract", str(video), "--backend", "mmpose", "--out", str(out),
                 "--det-checkpoint", "det_cfg.py"]) == 2
    assert "is a config: pass it as det_model (--det-model)" in capsys.readouterr().err
