"""``kept app``: a local web page on which a coach compares two recordings.

    kept app --checkpoint RUN_DIR [--host 127.0.0.1] [--port 7860] [--max-video-seconds 300]

The page is a thin Gradio layer over the functions of ``kept compare``
(:mod:`kept.explain.compare`): :class:`Comparer` loads the trained model once and runs one
comparison into a folder of its own; :func:`build_app` lays out the page and turns every error
about the inputs into a message on the page (the server log keeps the traceback of anything
unexpected). The two recordings come either from the run's dataset (two recording ids) or from
two uploaded files: videos (keypoints extracted with the configured pose backend, cached by
content, with a progress bar) or keypoint files (``.npy`` in the model's skeleton, ``.npz`` from
``kept pose extract``).

The page shows both scores in the dataset's units and who is better, the description, each
recording's reasoning path, the physical-difference table (phases matched by DTW, see
:mod:`kept.explain.physical`) and the plots of ``kept compare``, and offers ``compare.json``, the
text report and the plots as one zip archive.

Privacy: the server binds to 127.0.0.1 unless told otherwise (and then says so), Gradio's usage
statistics are off, no share link is made, and the page uses the browser's own fonts, so neither
the server nor the page calls out of the machine. Requests are queued (one comparison at a time:
the model is shared) and each writes into its own temporary folder.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kept.explain.physical import sentence
from pose.batch import VIDEO_SUFFIXES

__all__ = ["Comparer", "Comparison", "InputError", "build_app", "launch", "LOCAL_HOSTS"]

log = logging.getLogger(__name__)

#: hosts that keep the page on this machine
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: the page's plot slots and their tab labels, in the order the page shows them
PLOT_TABS = {"angles": "angles", "residual": "differences", "poses": "poses",
             "paths_1": "paths 1", "paths_2": "paths 2"}


class InputError(ValueError):
    """A request the page cannot compare (a bad or missing input); its message is shown on the page."""


@dataclass
class Comparison:
    """One finished comparison.

    Attributes:
        result: the ``compare.json`` dict.
        report: the text report of ``kept compare``.
        plots: slot of :data:`PLOT_TABS` -> (PNG file, caption).
        archive: a zip of ``compare.json``, ``report.txt`` and every plot (PNG and PDF); None until
            :meth:`Comparer.write_archive`.
        seconds: wall time of the comparison up to the PNG plots (pose extraction included).
        folder: the request's folder; recordings: the two :class:`kept.explain.compare.Recording`.
    """

    result: dict
    report: str
    plots: dict[str, tuple[Path, str]]
    archive: Path | None
    seconds: float
    folder: Path = field(repr=False, default=None)
    recordings: tuple = field(repr=False, default=())


class Comparer:
    """A trained model, loaded once, and the comparison of two recordings.

    Args:
        checkpoint: a run folder of ``kept train``.
        backend: the pose extractor for videos (as ``kept compare --backend``).
        pose_options: options of the extractor (``pose_model``, ``allow_download`` ...).
        max_video_seconds: longer videos are refused before any pose is extracted.
        work_dir: where the request folders go (default: a new temporary folder, removed at exit).
        keep_requests: how many finished request folders to keep (>= 1; the oldest are removed).

    Raises:
        ValueError: a bad ``max_video_seconds`` or ``keep_requests``, or a run folder that
            :func:`kept.train.load_model` cannot read; FileNotFoundError: no such run folder.
    """

    def __init__(self, checkpoint: str | Path, backend: str = "auto", pose_options: dict | None = None,
                 max_video_seconds: float = 300.0, work_dir: str | Path | None = None, keep_requests: int = 20):
        from kept.cli import model_skeleton
        from kept.train import load_model

        if max_video_seconds <= 0:
            raise ValueError(f"max_video_seconds must be > 0, got {max_video_seconds}")
        if keep_requests < 1:
            raise ValueError(f"keep_requests must be >= 1, got {keep_requests}")
        self.model, self.cfg, saved = load_model(checkpoint)
        self.skeleton = model_skeleton(saved)
        self.info = saved["dataset"]
        self.backend, self.pose_options = backend, dict(pose_options or {})
        self.max_video_seconds = float(max_video_seconds)
        if work_dir is None:  # ours: removed when the process ends
            work_dir = tempfile.mkdtemp(prefix="kept-app-")
            atexit.register(shutil.rmtree, work_dir, True)
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.keep_requests = keep_requests
        self.categories = list(self.model.stats.categories) if self.model.stats is not None else []

    @property
    def score_range(self) -> tuple[float, float]:
        return tuple(self.info["score_range"])

    def recordings(self) -> list[tuple[str, str]]:
        """(label, id) of every recording of the run's dataset, e.g. ``("s012 · squat · test · 7.20", "s012")``;
        empty when the dataset folder is not on this machine."""
        import csv

        path = Path(self.info.get("root") or "") / "samples.csv"
        if not self.info.get("root") or not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        out = []
        for row in rows:
            parts = [row["id"]] + [row[k] for k in ("category", "split") if row.get(k)]
            if row.get("score"):
                parts.append(f"{float(row['score']):.2f}")
            out.append((" · ".join(parts), row["id"]))
        return out

    def _check_video(self, path: Path) -> None:
        from pose.video import probe

        if path.suffix.lower() not in VIDEO_SUFFIXES:
            return
        duration = probe(path).duration  # a file that is not a video fails here, before any model is loaded
        if not duration > 0:  # the container does not say (e.g. some browser recordings): count
            from pose.video import iter_frames

            for duration, _ in iter_frames(path, fps=2.0, max_side=64):
                if duration > self.max_video_seconds:
                    break
        if duration > self.max_video_seconds:
            raise InputError(f"{path.name} lasts {_duration(duration)}, over this page's limit of "
                             f"{_duration(self.max_video_seconds)} (kept app --max-video-seconds); trim it to the action")

    def load(self, spec: str | Path, label: str):
        """One side of a comparison (:func:`kept.explain.compare.load_recording`), with every input
        error turned into an :class:`InputError` that names the side (``label``)."""
        from kept.explain.compare import load_recording

        if spec is None or str(spec).strip() == "":
            raise InputError(f"{label}: choose a recording or upload a file")
        try:
            self._check_video(Path(spec))
            return load_recording(str(spec), self.skeleton, self.info["fps"], self.info.get("root"), self.backend,
                                  pose_options=self.pose_options)
        except InputError as e:
            raise InputError(f"{label}: {e}") from None
        except (ValueError, FileNotFoundError) as e:  # a bad input: the message is enough
            raise InputError(f"{label}: {e}") from e
        except (OSError, ImportError, RuntimeError) as e:  # perhaps the backend's fault: keep the traceback
            log.warning("reading %s failed", spec, exc_info=True)
            raise InputError(f"{label}: {e} (details in the server log)") from e

    def compare(self, spec_a: str | Path, spec_b: str | Path, category: str | None = None,
                progress=None, archive: bool = True) -> Comparison:
        """Score two recordings and write ``compare.json``, the report and the PNG plots into a new
        folder, and (``archive``) the PDF plots and the zip (:meth:`write_archive`).

        Args:
            spec_a, spec_b: recording ids of the run's dataset, or files (videos, ``.npy``, ``.npz``).
            category: the sub-activity for the statistics branch (None: each recording's own, when
                it comes from the dataset).
            progress: ``progress(fraction, desc)``, called between the steps.
            archive: False leaves the PDFs and the zip for a later :meth:`write_archive` (the page
                shows the result first: each set of plots takes about a second on a 2-core CPU).

        Returns:
            The :class:`Comparison`.

        Raises:
            InputError: a missing, unreadable or unsuitable input, or an unknown ``category``;
                the message names the side (``recording 1`` or ``recording 2``).
        """
        from kept.explain.compare import compare, format_report, write_plots
        from kept.io import atomic_write_json, atomic_write_text

        step = progress or (lambda fraction, desc=None: None)
        start = time.perf_counter()
        if category and self.categories and category not in self.categories:
            raise InputError(f"category {category!r} is not one the model was trained on: {', '.join(self.categories)}")
        step(0.0, desc="reading recording 1")
        a = self.load(spec_a, "recording 1")
        step(0.35, desc="reading recording 2")
        b = self.load(spec_b, "recording 2")
        step(0.7, desc="scoring and explaining")
        result = compare(self.model, self.cfg, self.skeleton, self.score_range, a, b, up_axis=self._up_axis,
                         category=category or None)
        report = format_report(result)
        folder = Path(tempfile.mkdtemp(prefix="request-", dir=self.work_dir))
        atomic_write_json(folder / "compare.json", result)
        atomic_write_text(folder / "report.txt", report + "\n")
        step(0.8, desc="drawing the plots")
        files = write_plots(result, a, b, self.skeleton, folder / "plots", up_axis=self._up_axis, formats=("png",),
                            canonical=self.cfg.data.canonical_facing, depth=self.cfg.model.depth)
        png = {f.stem: f for f in files}
        slots = {"angles": "angles", "residual": "residual", "poses": "poses",
                 "paths_1": f"paths_{result['order'][0]}", "paths_2": f"paths_{result['order'][1]}"}
        plots = {slot: (png[stem], _caption(stem, result)) for slot, stem in slots.items() if stem in png}
        self._prune()
        done = Comparison(result, report, plots, None, time.perf_counter() - start, folder, (a, b))
        if archive:
            step(0.9, desc="writing the archive")
            self.write_archive(done)
        step(1.0, desc="done")
        return done

    @property
    def _up_axis(self) -> str:
        return self.info.get("up_axis", "y")

    def write_archive(self, done: Comparison) -> Path:
        """Draw the PDF plots of a comparison and zip them with ``compare.json``, ``report.txt`` and
        the PNGs into ``kept-compare.zip`` of its folder (sets and returns ``done.archive``)."""
        from kept.explain.compare import write_plots

        if done.archive is not None:
            return done.archive
        folder = done.folder
        write_plots(done.result, *done.recordings, self.skeleton, folder / "plots", up_axis=self._up_axis,
                    formats=("pdf",), canonical=self.cfg.data.canonical_facing, depth=self.cfg.model.depth)
        archive = folder / "kept-compare.zip"
        tmp = archive.with_suffix(".zip.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(folder / "compare.json", "compare.json")
            z.write(folder / "report.txt", "report.txt")
            for f in sorted((folder / "plots").iterdir()):
                z.write(f, f"plots/{f.name}")
        os.replace(tmp, archive)
        done.archive = archive
        return archive

    def _prune(self) -> None:
        folders = sorted(self.work_dir.glob("request-*"), key=lambda p: p.stat().st_mtime)
        for old in folders[:-self.keep_requests]:
            shutil.rmtree(old, ignore_errors=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _caption(stem: str, result: dict) -> str:
    """A short caption of a plot (the page shows it below the image)."""
    if stem.startswith("paths_"):
        return f"reasoning paths of {stem[len('paths_'):]}: top 10 by Q, the selected one highlighted"
    return {"angles": "joint angles, phases matched by DTW; shaded: the selected path's segments",
            "residual": "mean joint-angle difference after alignment (deg)",
            "poses": f"key poses in the segments of {result['order'][0]}'s selected path"}.get(stem, stem)


# ---------------------------------------------------------------------------------- what the page shows

def _md(text: str) -> str:
    """``text`` with Markdown's special characters escaped (recording names hold underscores)."""
    return "".join("\\" + ch if ch in "\\`*_{}[]<>()#+-.!|~" else ch for ch in str(text))


def scores_markdown(result: dict, score_range: tuple[float, float], seconds: float | None = None) -> str:
    """Both scores in the dataset's units and the verdict, as Markdown."""
    a, b = result["order"]
    lo, hi = score_range
    lines = [f"| recording | score ({lo:g} to {hi:g}) |", "|---|---|"]
    for name in (a, b):
        lines.append(f"| {_md(name)} | **{result['recordings'][name]['score']:.2f}** |")
    verdict = (f"**{_md(result['better'])} is better** (by {abs(result['score_difference']):.2f})" if result["better"]
               else "**the two scores are level**")
    lines += ["", verdict]
    if seconds is not None:
        lines.append(f"\n<small>compared in {seconds:.2f} s</small>")
    return "\n".join(lines)


def paths_markdown(result: dict) -> str:
    """Each recording's selected reasoning path (segment, time span, node type), as Markdown."""
    lines = []
    for name in result["order"]:
        steps = " → ".join(f"{s['node']} ({s['time'][0]:.1f}-{s['time'][1]:.1f} s)"
                           for s in result["recordings"][name]["path"])
        lines.append(f"- **{_md(name)}**: {_md(steps)}")
    return "\n".join(lines)


def findings_table(result: dict, limit: int = 12) -> dict:
    """The physical-difference rows for the page, ``"path"`` marking the steps of the subject's
    path, with headers that name the recordings (1 and 2 in the order of ``result["order"]``).

    Returns:
        ``{"headers": [...], "data": [[...], ...], "label": ...}``: marker, segment, time span on the
        subject's clock, joint, angle of 1 and 2, angle of 2 minus 1 (deg), speed of 1 and 2, and
        how much later 2 reaches the phase than 1 (ms); ``label`` says which recording is 1 and 2.
    """
    physical = result.get("physical")
    a, b = result["order"]
    subject = physical["subject"] if physical else a
    headers = ["", "seg", "time (s)", "joint", "angle 1 (deg)", "angle 2 (deg)", "2 - 1 (deg)",
               "speed 1 (/s)", "speed 2 (/s)", "2 later by (ms)"]
    rows = []
    for f in (physical["findings"][:limit] if physical else []):
        t = f["time"][subject]
        rows.append(["path" if f["on_path"] else "", f["segment"] + 1, f"{t[0]:.2f}-{t[1]:.2f}",
                     f["joint"].replace("_", " "), round(f["angle_deg"][a], 1), round(f["angle_deg"][b], 1),
                     round(f["angle_deg"][b] - f["angle_deg"][a], 1), round(f["speed"][a], 2),
                     round(f["speed"][b], 2), round(f["phase_offset_ms"] if subject == a else -f["phase_offset_ms"])])
    label = (f"physical differences: 1 = {a}, 2 = {b}; times on {subject}'s clock (the lower score); "
             "'path': a step of its reasoning path")
    return {"headers": headers, "data": rows, "label": label}


def findings_markdown(result: dict, n: int = 5) -> str:
    """The first ``n`` physical differences as sentences (those of ``kept compare``)."""
    physical = result.get("physical")
    if not physical:
        return "_no physical report: the model's skeleton has no joint angles_"
    subject, other = physical["subject"], physical["other"]
    head = f"Phases matched by DTW; {_md(subject)} (the lower score) is the subject, its segments are the rows."
    return head + "\n\n" + "\n".join(f"{i + 1}. " + ("**[path]** " if f["on_path"] else "") + _md(sentence(f, subject, other))
                                     for i, f in enumerate(physical["findings"][:n]))


# ---------------------------------------------------------------------------------- the page

DATASET, UPLOAD = "recordings of the run's dataset", "upload two files (videos or keypoints)"
ACCEPTED = [".npy", ".npz", *VIDEO_SUFFIXES]


def _theme():
    import gradio as gr

    system = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: nothing is fetched
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "monospace"])


def handle(comparer: Comparer, source: str, id_a: str | None, id_b: str | None, file_a, file_b,
           category: str | None, progress=None, archive: bool = True) -> dict:
    """The page's compare button, without the page.

    Args:
        source: :data:`DATASET` (use ``id_a``, ``id_b``) or :data:`UPLOAD` (use ``file_a``,
            ``file_b``: paths, or Gradio's uploaded-file objects).
        category: the sub-activity, or ``"auto"``.
        archive: write the zip now (False: ``archive`` is None, and ``comparison`` can be passed to
            :meth:`Comparer.write_archive` later).

    Returns:
        ``status`` (empty, or the message of an input error), ``scores``, ``description``,
        ``paths`` and ``findings`` (Markdown), ``table`` (:func:`findings_table`, None on error),
        ``plots`` (slot -> (file, caption)), ``report`` (text), ``archive`` (the zip, None on error)
        and ``comparison`` (the :class:`Comparison`, None on error).
    """
    def path_of(f):
        return None if f is None else getattr(f, "name", f)

    if source == DATASET:
        spec_a, spec_b = id_a, id_b
    else:
        spec_a, spec_b = path_of(file_a), path_of(file_b)
    category = None if category in (None, "", "auto") else category
    try:
        c = comparer.compare(spec_a, spec_b, category=category, progress=progress, archive=archive)
    except InputError as e:
        return _failed(str(e))
    except Exception as e:  # the page keeps working; the server log has the traceback
        log.exception("comparison failed")
        return _failed(f"the comparison failed ({type(e).__name__}: {e}); see the server log")
    result = c.result
    return {"status": "", "scores": scores_markdown(result, comparer.score_range, c.seconds),
            "description": _md(result["description"]) if result.get("description") else "_this model writes no description_",
            "paths": paths_markdown(result), "findings": findings_markdown(result),
            "table": findings_table(result), "plots": {k: (str(f), cap) for k, (f, cap) in c.plots.items()},
            "report": c.report, "archive": str(c.archive) if c.archive else None, "comparison": c}


def _failed(message: str) -> dict:
    return {"status": f"**Cannot compare:** {message}", "scores": "", "description": "", "paths": "",
            "findings": "", "table": None, "plots": {}, "report": "", "archive": None, "comparison": None}


def build_app(comparer: Comparer):
    """The page (a ``gradio.Blocks``), wired to ``comparer``; nothing is served until ``launch``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    choices = comparer.recordings()
    ids = [rid for _, rid in choices]
    # Gradio's copies of uploads and outputs: checked every 10 minutes, removed after an hour
    with gr.Blocks(title="kept: compare two recordings", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(f"## Compare two recordings\nModel trained on **{comparer.info.get('name', 'its dataset')}**; "
                    f"scores from {comparer.score_range[0]:g} to {comparer.score_range[1]:g}. "
                    "Everything runs on this machine.")
        with gr.Row():
            with gr.Column(scale=2, min_width=360):
                source = gr.Radio([DATASET, UPLOAD], value=DATASET if ids else UPLOAD, label="recordings from",
                                  elem_id="source")
                with gr.Group(visible=bool(ids)) as from_dataset:
                    id_a = gr.Dropdown(choices, value=ids[0] if ids else None, label="recording 1",
                                       elem_id="id_a", filterable=True)
                    id_b = gr.Dropdown(choices, value=ids[1] if len(ids) > 1 else None, label="recording 2",
                                       elem_id="id_b", filterable=True)
                with gr.Group(visible=not ids) as from_upload:
                    file_a = gr.File(label="recording 1: a video or a keypoint file", file_types=ACCEPTED,
                                     elem_id="file_a")
                    file_b = gr.File(label="recording 2: a video or a keypoint file", file_types=ACCEPTED,
                                     elem_id="file_b")
                category = gr.Dropdown(["auto"] + comparer.categories, value="auto", elem_id="category",
                                       label="sub-activity (auto: the dataset's, for its recordings)",
                                       visible=bool(comparer.categories))
                button = gr.Button("Compare", variant="primary", elem_id="compare")
                status = gr.Markdown(elem_id="status")
                scores = gr.Markdown(elem_id="scores")
                gr.Markdown("### How they differ")
                description = gr.Markdown(elem_id="description")
                paths = gr.Markdown(elem_id="paths")
                findings = gr.Markdown(elem_id="findings")
            with gr.Column(scale=3, min_width=480):
                images, captions = {}, {}
                with gr.Tabs(elem_id="plots"):
                    for slot, label in PLOT_TABS.items():
                        with gr.Tab(label, id=slot):
                            images[slot] = gr.Image(type="filepath", label=label, elem_id=f"plot_{slot}",
                                                    interactive=False, height=560, show_label=False)
                            captions[slot] = gr.Markdown(elem_id=f"caption_{slot}")
                archive = gr.File(label="compare.json, the text report and every plot as PNG and PDF (zip)",
                                  elem_id="archive")
        table = gr.Dataframe(label="physical differences", elem_id="table", wrap=True, interactive=False)
        with gr.Accordion("text report (as kept compare prints it)", open=False):
            report = gr.Textbox(lines=14, show_label=False, elem_id="report")

        def switch(choice):
            return gr.update(visible=choice == DATASET), gr.update(visible=choice == UPLOAD)

        source.change(switch, source, [from_dataset, from_upload])

        texts = {"status": status, "scores": scores, "description": description, "paths": paths,
                 "findings": findings, "table": table, "report": report, "archive": archive}

        done = gr.State()

        def run(src, a, b, fa, fb, cat, progress=gr.Progress(track_tqdm=True)):
            out = handle(comparer, src, a, b, fa, fb, cat, progress=lambda x, desc=None: progress(x, desc=desc),
                         archive=False)  # the zip follows (zip_up): the result shows first
            shown = [out[k] for k in texts]
            if out["table"] is not None:  # the label names the two recordings
                table_value = {k: out["table"][k] for k in ("headers", "data")}
                shown[list(texts).index("table")] = gr.update(value=table_value, label=out["table"]["label"])
            for slot in images:
                file, caption = out["plots"].get(slot, (None, ""))
                shown += [file, f"<small>{_md(caption)}</small>" if caption else ""]
            return shown + [out["comparison"]]

        def zip_up(comparison, message):
            if comparison is None:
                return None, message
            try:
                return str(comparer.write_archive(comparison)), message
            except Exception as e:  # the result is already on the page; only the download is missing
                log.exception("writing the archive failed")
                return None, f"**The zip could not be written** ({type(e).__name__}: {e}); the result above stands."

        plot_outputs = [c for slot in images for c in (images[slot], captions[slot])]
        button.click(run, [source, id_a, id_b, file_a, file_b, category],
                     list(texts.values()) + plot_outputs + [done], concurrency_limit=1, concurrency_id="model"
                     ).then(zip_up, [done, status], [archive, status], concurrency_limit=1, concurrency_id="model")
    return app


def launch(comparer: Comparer, host: str = "127.0.0.1", port: int = 7860, open_browser: bool = False,
           block: bool = True, max_file_size: str = "2gb"):
    """Serve the page. Binding to another host than this machine's loopback is allowed and said.

    Args:
        comparer: the loaded model.
        host, port: where to listen (127.0.0.1: this machine only).
        open_browser: open the page in the default browser.
        block: serve until interrupted (False: return at once, serving in a thread).
        max_file_size: the largest upload Gradio accepts, e.g. ``"2gb"``.

    Raises:
        OSError: the port is taken or the host cannot be bound (``kept app`` says which flag to change).

    Returns:
        The Gradio app (serving in the background when ``block`` is False; ``app.close()`` stops it).
    """
    app = build_app(comparer)
    if host not in LOCAL_HOSTS:
        print(f"warning: binding to {host}: the page (and the recordings uploaded to it) can be reached by "
              "other machines on the network; use --host 127.0.0.1 to keep it on this machine")
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, share=False, inbrowser=open_browser, prevent_thread_lock=not block,
               theme=_theme(), max_file_size=max_file_size, allowed_paths=[str(comparer.work_dir)],
               show_error=False, quiet=False)
    return app
