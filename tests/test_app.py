"""`kept app`: the page's handler on a tiny trained model, its errors as messages, and the server."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from kept.app import DATASET, UPLOAD, Comparer, InputError, findings_table, handle



@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def comparer(run, tmp_path_factory):
    return Comparer(run, work_dir=tmp_path_factory.mktemp("requests"), max_video_seconds=2.0, keep_requests=3)


def _ask(comparer, source=DATASET, a=None, b=None, fa=None, fb=None, category="auto") -> dict:
    return handle(comparer, source, a, b, fa, fb, category)


def _scores(out: dict) -> dict:
    with zipfile.ZipFile(out["archive"]) as z:
        return {k: v["score"] for k, v in json.loads(z.read("compare.json"))["recordings"].items()}


def test_dataset_recordings_compare_like_the_command_line(comparer, run):
    labels = dict(comparer.recordings())
    assert len(labels) == 24 and labels["squat_08 · squat · test · " + "{:.2f}".format(
        float(next(line.split(",")[3] for line in (run.parent / "tiny" / "samples.csv").read_text().splitlines()
                   if line.startswith("squat_08,"))))] == "squat_08"
    out = _ask(comparer, a="squat_08", b="squat_09")
    assert out["status"] == ""
    predicted = {row.split(",")[0]: float(row.split(",")[3]) for row in (run / "predictions.csv").read_text().splitlines()[1:]}
    for rid in ("squat_08", "squat_09"):
        assert f"| {rid.replace('_', chr(92) + '_')} | **{predicted[rid]:.2f}** |" in out["scores"]  # kept eval's scores
    better = "squat_08" if predicted["squat_08"] > predicted["squat_09"] else "squat_09"
    assert f"**{better.replace('_', chr(92) + '_')} is better**" in out["scores"] and "(0 to 10)" in out["scores"]
    assert "squat\\_08" in out["paths"] and "→" in out["paths"]
    assert " deg vs " in out["findings"] and "reasoning path" in out["report"]
    table = out["table"]
    assert len(table["data"]) == 6 and all(len(row) == len(table["headers"]) == 10 for row in table["data"])
    assert table["headers"][4:7] == ["angle 1 (deg)", "angle 2 (deg)", "2 - 1 (deg)"]
    assert "1 = squat_08, 2 = squat_09" in table["label"]
    assert list(out["plots"]) == ["angles", "residual", "poses", "paths_1", "paths_2"]
    assert out["plots"]["paths_2"][0].endswith("paths_squat_09.png") and "squat_09" in out["plots"]["paths_2"][1]
    assert all(len(caption) < 100 for _, caption in out["plots"].values())
    with zipfile.ZipFile(out["archive"]) as z:
        names = set(z.namelist())
        result = json.loads(z.read("compare.json"))
    assert {"compare.json", "report.txt", "plots/angles.png", "plots/angles.pdf", "plots/residual.png"} <= names
    assert result["recordings"]["squat_08"]["score"] == pytest.approx(predicted["squat_08"], abs=1e-3)
    assert findings_table(result) == out["table"]


def test_table_rows_are_the_physical_findings(comparer):
    out = _ask(comparer, a="lunge_09", b="lunge_10")
    with zipfile.ZipFile(out["archive"]) as z:
        result = json.loads(z.read("compare.json"))
    a, b = result["order"]
    for row, f in zip(out["table"]["data"], result["physical"]["findings"]):
        assert row[4:7] == [round(f["angle_deg"][a], 1), round(f["angle_deg"][b], 1),
                            round(f["angle_deg"][b] - f["angle_deg"][a], 1)]
        assert (row[0] == "path") == f["on_path"] and row[1] == f["segment"] + 1


def test_table_signs_follow_the_order_of_the_page():
    """Columns are 1 = the first recording, 2 = the second, whichever is the subject."""
    finding = {"segment": 2, "node": "knee", "joint": "left_knee", "on_path": True,
               "time": {"B": [1.0, 1.5], "A": [0.9, 1.4]}, "angle_deg": {"A": 150.0, "B": 120.0},
               "speed": {"A": 1.0, "B": 0.5}, "phase_offset_ms": 120.0}  # A (other) reaches it 120 ms after B
    result = {"order": ["A", "B"], "physical": {"subject": "B", "other": "A", "findings": [finding]}}
    table = findings_table(result)
    assert table["data"] == [["path", 3, "1.00-1.50", "left knee", 150.0, 120.0, -30.0, 1.0, 0.5, -120]]
    assert "1 = A, 2 = B" in table["label"] and "B's clock" in table["label"]
    result["physical"]["subject"], result["physical"]["other"] = "A", "B"  # now B (other) is 120 ms later
    assert findings_table(result)["data"][0][9] == 120


def test_the_same_recording_twice_is_level(comparer):
    out = _ask(comparer, a="squat_08", b="squat_08")
    scores = _scores(out)
    assert list(scores) == ["squat_08", "squat_08_2"] and scores["squat_08"] == scores["squat_08_2"]
    assert "level" in out["scores"]


def test_uploaded_keypoint_files_and_category(comparer, run, tmp_path):
    tiny = run.parent / "tiny"
    np.save(tmp_path / "mine.npy", np.load(tiny / "keypoints" / "squat_08.npy"))
    np.save(tmp_path / "theirs.npy", np.load(tiny / "keypoints" / "squat_09.npy"))
    by_id = _ask(comparer, a="squat_08", b="squat_09")
    out = _ask(comparer, UPLOAD, fa=str(tmp_path / "mine.npy"), fb=str(tmp_path / "theirs.npy"), category="squat")
    assert out["status"] == "" and "| mine |" in out["scores"]
    assert _scores(out)["mine"] == _scores(by_id)["squat_08"]
    bad = _ask(comparer, UPLOAD, fa=str(tmp_path / "mine.npy"), fb=str(tmp_path / "theirs.npy"), category="golf")
    assert "not one the model was trained on" in bad["status"]


@pytest.mark.parametrize("make, message", [
    (lambda p: p.with_suffix(".mp4").write_text("not a video"), "recording 1: cannot open video"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((30, 17, 3))), "do not match the model's skeleton"),
    (lambda p: np.save(p.with_suffix(".npy"), np.full((30, 5, 3), np.nan)), "every keypoint is NaN"),
    (lambda p: p.with_suffix(".txt").write_text("x"), "cannot read"),
])
def test_bad_uploads_are_messages_and_the_page_keeps_working(comparer, run, tmp_path, make, message):
    make(tmp_path / "bad")
    bad = next(tmp_path.glob("bad.*"))
    out = _ask(comparer, UPLOAD, fa=str(bad), fb=str(run.parent / "tiny" / "keypoints" / "squat_09.npy"))
    assert out["status"].startswith("**Cannot compare:**") and message in out["status"]
    assert "Traceback" not in out["status"] and out["archive"] is None and out["plots"] == {} and out["table"] is None
    assert _ask(comparer, a="squat_08", b="squat_09")["status"] == ""  # the next request works


def test_missing_inputs_and_a_video_over_the_limit(comparer, tmp_path):
    from pose.video import write_video

    assert "recording 2: choose a recording" in _ask(comparer, a="squat_08", b=None)["status"]
    assert "recording 1: choose a recording or upload a file" in _ask(comparer, UPLOAD, fb="x.npy")["status"]
    long = write_video(tmp_path / "long.mp4", np.zeros((90, 32, 32, 3), np.uint8), fps=30.0)  # 3 s > 2 s
    out = _ask(comparer, UPLOAD, fa=str(long), fb=str(long))
    assert "lasts 3 s, over this page's limit of 2 s" in out["status"] and "--max-video-seconds" in out["status"]


def test_videos_go_through_the_pose_backend_once(comparer, run, tmp_path, monkeypatch):
    """An uploaded video is extracted with the configured backend (a fake one here) and cached."""
    import pose.extractors
    from pose.sequence import KeypointSequence
    from pose.video import write_video

    calls = []

    class Fake:
        name = "fake"

        def settings(self):
            return {}

        def extract(self, video):
            calls.append(video)
            xyz = np.load(run.parent / "tiny" / "keypoints" / "squat_08.npy")
            return KeypointSequence(xyz=xyz, confidence=np.ones(xyz.shape[:2]), skeleton=comparer.skeleton.name, fps=30.0,
                                    source="fake")

    monkeypatch.setattr(pose.extractors, "build_extractor", lambda backend, **kw: Fake())
    monkeypatch.setenv("KEPT_CACHE", str(tmp_path / "cache"))
    clip = write_video(tmp_path / "clip.mp4", np.zeros((30, 32, 32, 3), np.uint8), fps=30.0)  # 1 s
    keypoints = str(run.parent / "tiny" / "keypoints" / "squat_08.npy")
    first = _ask(comparer, UPLOAD, fa=str(clip), fb=keypoints)
    second = _ask(comparer, UPLOAD, fa=str(clip), fb=keypoints)
    assert first["status"] == second["status"] == "" and len(calls) == 1
    assert _scores(first)["clip"] == _scores(first)["squat_08"]


def test_the_archive_can_follow_the_result(comparer):
    out = handle(comparer, DATASET, "squat_08", "squat_09", None, None, "auto", archive=False)
    assert out["archive"] is None and all(f.endswith(".png") for f, _ in out["plots"].values())
    archive = comparer.write_archive(out["comparison"])
    with zipfile.ZipFile(archive) as z:
        assert {"plots/angles.pdf", "plots/angles.png", "compare.json"} <= set(z.namelist())
    assert comparer.write_archive(out["comparison"]) == archive  # once


def test_requests_get_their_own_folders_and_old_ones_go(comparer):
    archives = [_ask(comparer, a="squat_08", b=f"squat_{i:02d}")["archive"] for i in (9, 10, 11, 9)]
    folders = {str(p).rsplit("/", 1)[0] for p in archives}
    assert len(folders) == 4
    assert len(list(comparer.work_dir.glob("request-*"))) == 3  # keep_requests


def test_comparer_errors(run, tmp_path):
    with pytest.raises(ValueError, match="max_video_seconds"):
        Comparer(run, max_video_seconds=0)
    with pytest.raises(FileNotFoundError):
        Comparer(tmp_path / "nothing")
    assert issubclass(InputError, ValueError)


def test_page_builds_and_serves_on_loopback(comparer):
    pytest.importorskip("gradio")
    import socket
    import urllib.request

    from kept.app import launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = launch(comparer, port=port, block=False)
    try:
        html = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
        assert "kept: compare two recordings" in html
        config = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30).read())
        ids = {c["props"].get("elem_id") for c in config["components"]}
        assert {"compare", "scores", "plots", "table", "archive", "status", "caption_angles"} <= ids
        queued = {f.name: f.concurrency_limit for f in app.fns.values() if f.concurrency_id == "model"}
        assert queued == {"run": 1, "zip_up": 1}  # one queue for the model: compare, then the zip
        assert app.server_name == "127.0.0.1"
    finally:
        app.close()


def test_app_command_warns_when_binding_beyond_this_machine(comparer, monkeypatch, capsys):
    pytest.importorskip("gradio")
    import gradio

    from kept.app import launch

    seen = {}
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kw: seen.update(kw))
    launch(comparer, host="0.0.0.0", port=7999)
    assert "reached by other machines" in capsys.readouterr().out and seen["server_name"] == "0.0.0.0" and seen["share"] is False
    launch(comparer)
    assert capsys.readouterr().out == "" and seen["server_name"] == "127.0.0.1"


def test_app_command_errors(run, capsys):
    pytest.importorskip("gradio")
    import socket

    from kept.cli import main

    assert main(["app", "--checkpoint", str(run), "--port", "0"]) == 2
    assert "--port must be in 1-65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--checkpoint", str(run), "--port", str(port)]) == 2
    assert "choose another --port" in capsys.readouterr().err
