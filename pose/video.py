"""Reading (and writing) videos with PyAV: probing, time-based frame sampling, rotation, downscaling.

Times are always taken from each decoded frame's ``pts * time_base`` (never from counting frames), so
variable-frame-rate videos (phones, screen recordings) give their true times. Returned times are
seconds from the first decoded frame.

Rotation convention: :attr:`VideoInfo.rotation` is the **clockwise** angle (0, 90, 180 or 270 degrees)
by which a decoded frame must be turned to be shown upright -- the same convention as the legacy
``rotate`` stream tag and ffmpeg's auto-rotation (a phone video shot in portrait usually says 90).
It is read from the display matrix of the first frame (``VideoFrame.rotation``, PyAV >= 13, which is
counter-clockwise, so ``rotation = -frame.rotation mod 360``) and falls back to ``stream.metadata["rotate"]``.
Frames are turned with ``np.rot90(frame, k=-rotation // 90)`` (``np.rot90`` with positive ``k`` turns
counter-clockwise). Mirroring flags in the display matrix are ignored.

Shapes glossary: F frames, H height, W width (after rotation and downscaling).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VideoError", "VideoInfo", "iter_frames", "probe", "read_frames", "rotate_frame", "write_video"]

_HINT = "check that it is a complete, playable video file (re-export or re-download it if not)"


class VideoError(ValueError):
    """A corrupt, empty or unreadable video."""


@dataclass
class VideoInfo:
    """What :func:`probe` learns about a video's first video stream.

    Attributes:
        path: the file.
        width, height: size of the decoded frames **before** rotation.
        rotation: clockwise degrees (0/90/180/270) to turn decoded frames upright (see module doc).
        fps: average frame rate (frames / duration where the container does not say).
        duration: seconds (container/stream duration; includes the last frame's display time).
        num_frames: frame count the container declares, or None where it does not say.
        codec: codec name, e.g. ``h264``.
    """

    path: Path
    width: int
    height: int
    rotation: int
    fps: float
    duration: float
    num_frames: int | None
    codec: str

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after rotation."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


# ----------------------------------------------------------------------------------------------- helpers


def _check_exists(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if not path.is_file():
        raise VideoError(f"{path} is not a file; pass the path of a video file")
    return path


def _open(path: Path):
    import av

    try:
        container = av.open(str(path), mode="r")
    except av.error.FileNotFoundError:
        raise FileNotFoundError(f"video not found: {path}") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"cannot open video {path} ({e}); {_HINT}") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream; {_HINT}")
    return container


def _normalise_rotation(degrees: float) -> int:
    """Any angle -> the nearest of 0/90/180/270 (mod 360)."""
    return int(round(float(degrees) / 90.0)) % 4 * 90


def _metadata_rotation(stream) -> int:
    """Clockwise rotation from the legacy ``rotate`` tag (0 if absent or unparsable)."""
    value = (stream.metadata or {}).get("rotate")
    try:
        return _normalise_rotation(float(value)) if value not in (None, "") else 0
    except ValueError:
        return 0


def _frame_rotation(frame, stream) -> int:
    """Clockwise rotation for display, from the frame's display matrix or the stream's ``rotate`` tag."""
    ccw = getattr(frame, "rotation", None)  # PyAV >= 13: counter-clockwise degrees from DISPLAYMATRIX
    if ccw:
        return _normalise_rotation(-float(ccw))
    return _metadata_rotation(stream)


def rotate_frame(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn an (H, W, C) image clockwise by ``rotation`` degrees (a multiple of 90)."""
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    k = (rotation // 90) % 4
    if k == 0:
        return frame
    return np.ascontiguousarray(np.rot90(frame, k=-k))


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 1:
        raise ValueError(f"max_side must be a positive integer, got {max_side}")
    s = max_side / max(width, height)
    return max(1, int(round(width * s))), max(1, int(round(height * s)))


def _decode(container, stream, path: Path) -> Iterator[Any]:
    """Decoded frames of ``stream`` in presentation order; decoding errors become VideoError."""
    import av

    try:
        for frame in container.decode(stream):
            if frame.pts is None:  # rare: no timestamps at all; fall back to the best-effort timestamp
                frame.pts = frame.dts
            yield frame
    except av.error.FFmpegError as e:
        raise VideoError(f"error decoding video {path} ({e}); {_HINT}") from e


def _frame_time(frame) -> float:
    if frame.pts is None or frame.time_base is None:
        raise VideoError("a decoded frame has no timestamp")
    return float(frame.pts * frame.time_base)


# ----------------------------------------------------------------------------------------------- probing


def probe(path: str | Path) -> VideoInfo:
    """Read a video's size, rotation, frame rate, duration, frame count and codec.

    Decodes only the first frame (to read its display matrix and prove the stream decodes).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoError: not a video, corrupt, no video stream, or no frames.
    """
    path = _check_exists(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        first = next(iter(_decode(container, stream, path)), None)
        if first is None:
            raise VideoError(f"{path} contains no video frames; {_HINT}")
        cc = stream.codec_context
        width, height = int(cc.width or first.width), int(cc.height or first.height)
        num_frames = int(stream.frames) if stream.frames else None
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else (num_frames / duration if num_frames and duration > 0 else 0.0)
        if duration <= 0 and num_frames and fps > 0:
            duration = num_frames / fps
        return VideoInfo(path=path, width=width, height=height, rotation=_frame_rotation(first, stream),
                         fps=fps, duration=duration, num_frames=num_frames, codec=str(cc.name))
    finally:
        container.close()


# ----------------------------------------------------------------------------------------------- reading


def iter_frames(path: str | Path, *, fps: float | None = None, times: Sequence[float] | None = None,
                max_side: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time, frame)`` pairs, decoding one frame at a time (memory stays bounded).

    Sampling is by time, using each frame's ``pts * time_base`` (seconds from the first frame):

    * ``fps=None, times=None``: every decoded frame.
    * ``fps=r``: for k = 0, 1, ... while ``k / r <= t_last`` (the last frame's time), the frame nearest ``k / r``.
    * ``times=[...]``: the frame nearest each requested time, yielded in **ascending** order of the requested
      times (:func:`read_frames` puts them back in the caller's order). Times past the end give the last frame.

    Ties go to the earlier frame; a frame may be yielded more than once when targets are denser than frames.
    ``time`` is the chosen frame's own time, not the target. Frames are RGB uint8 (H, W, 3), turned upright
    and downscaled so that the longer side is at most ``max_side``.

    Raises:
        FileNotFoundError, VideoError: as :func:`read_frames`.
    """
    if fps is not None and times is not None:
        raise ValueError("pass fps or times, not both")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive integer, got {max_side}")
    targets: np.ndarray | None = None
    if times is not None:
        targets = np.sort(np.asarray(times, dtype=np.float64).reshape(-1))
        if not np.all(np.isfinite(targets)):
            raise ValueError("times must be finite numbers")
        if targets.size == 0:
            return

    path = _check_exists(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threading: several times faster for h264 on many cores
        rotation = None
        size = None
        t0 = None
        n_out = 0

        def convert(frame) -> np.ndarray:
            w, h = size
            if (w, h) != (frame.width, frame.height):
                img = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
            else:
                img = frame.to_ndarray(format="rgb24")
            return rotate_frame(img, rotation)

        def target(i: int) -> float | None:
            if targets is not None:
                return float(targets[i]) if i < targets.size else None
            return i / fps

        prev = None  # (time, frame) of the last decoded frame
        i = 0  # next target index
        for frame in _decode(container, stream, path):
            t_abs = _frame_time(frame)
            if t0 is None:
                t0 = t_abs
                rotation = _frame_rotation(frame, stream)
                size = _scaled_size(frame.width, frame.height, max_side)
            t = t_abs - t0
            if prev is not None and t <= prev[0]:
                continue  # duplicate / out-of-order timestamp: keep the first frame shown at that time
            if fps is None and targets is None:
                n_out += 1
                yield t, convert(frame)
                prev = (t, None)
                continue
            cur_img = None
            while (tt := target(i)) is not None and tt <= t:
                # the target lies in (prev time, t]: pick the nearer of prev and this frame (ties -> earlier)
                if prev is not None and tt - prev[0] <= t - tt:
                    chosen_t, chosen = prev[0], prev[2]
                    if chosen is None:
                        chosen = prev[2] = convert(prev[1])
                else:
                    if cur_img is None:
                        cur_img = convert(frame)
                    chosen_t, chosen = t, cur_img
                n_out += 1
                yield chosen_t, chosen
                i += 1
            prev = [t, frame, cur_img]
        if t0 is None:
            raise VideoError(f"{path} contains no video frames; {_HINT}")
        if fps is not None or targets is not None:
            # targets after the last frame: the last frame is nearest
            t_last = prev[0]
            while (tt := target(i)) is not None and (targets is not None or tt <= t_last + 1e-9):
                if prev[2] is None:
                    prev[2] = convert(prev[1])
                n_out += 1
                yield t_last, prev[2]
                i += 1
    finally:
        container.close()


def read_frames(path: str | Path, *, fps: float | None = None, times: Sequence[float] | None = None,
                max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a video into an array of upright RGB frames and their times.

    Args:
        path: a video file PyAV/ffmpeg can read.
        fps: sample the frame nearest each ``k / fps`` seconds (k = 0.. while within the video); None: all frames.
        times: instead, the frame nearest each of these times (seconds from the first frame), in this order.
        max_side: downscale (keeping aspect) so the longer side is at most this many pixels.

    Returns:
        frames: (F, H, W, 3) uint8 RGB, rotation applied so people stand upright.
        times: (F,) float64 seconds from the first frame (each chosen frame's own pts time).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoError: not a video, corrupt or truncated, no video stream, or no frames.
    """
    frames: list[np.ndarray] = []
    out_times: list[float] = []
    for t, img in iter_frames(path, fps=fps, times=times, max_side=max_side):
        frames.append(img)
        out_times.append(t)
    if times is not None and len(frames):
        order = np.argsort(np.asarray(times, dtype=np.float64).reshape(-1), kind="stable")
        back = np.empty_like(order)
        back[order] = np.arange(order.size)  # sorted position of each requested time
        frames = [frames[j] for j in back]
        out_times = [out_times[j] for j in back]
    if not frames:
        if times is not None:  # an empty request, not an empty video
            probe(path)
            return np.zeros((0, 0, 0, 3), np.uint8), np.zeros((0,), np.float64)
        raise VideoError(f"{path} contains no video frames; {_HINT}")
    return np.stack(frames), np.asarray(out_times, dtype=np.float64)


# ----------------------------------------------------------------------------------------------- writing

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".avi": "avi", ".mkv": "matroska", ".webm": "webm"}


def _default_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, codec: str | None = None,
                times: Sequence[float] | None = None, rotation: int = 0, bit_rate: int | None = None) -> Path:
    """Encode RGB frames into a video file, atomically (temp file in the same folder, then rename).

    Args:
        path: target; the container format follows the suffix (``.mp4``, ``.mov``, ``.avi``, ``.mkv``, ...).
        frames: (F, H, W, 3) uint8 RGB. Odd sizes are padded by one edge pixel (yuv420p needs even sizes).
        fps: frame rate (also the nominal rate when ``times`` is given).
        codec: ffmpeg encoder; default ``libx264`` when available, else ``mpeg4``.
        times: optional per-frame times in seconds (strictly increasing) for a variable-frame-rate video;
            they are stored as pts in milliseconds (so they must differ by at least 1 ms).
        rotation: clockwise display rotation (0/90/180/270) written as the display matrix; readers turn
            frames by this much (see the module doc).
        bit_rate: encoder bit rate (bits/s); None for the encoder's default (mpeg4: a quality-based default).

    Returns:
        ``path`` as a Path.
    """
    import av

    from kept.io import atomic_path  # kept.io is torch-free

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must have shape (F>0, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if times is not None:
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if times.shape[0] != frames.shape[0]:
            raise ValueError(f"times must have one entry per frame ({frames.shape[0]}), got {times.shape[0]}")
        if np.any(np.diff(times) <= 0):
            raise ValueError("times must be strictly increasing")
        if np.any(np.diff(np.round((times - times[0]) * 1000)) <= 0):
            raise ValueError("times must be at least 1 ms apart")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    h, w = frames.shape[1:3]
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        h, w = h + pad_h, w + pad_w
    fmt = _FORMATS.get(path.suffix.lower(), path.suffix.lower().lstrip(".") or "mp4")
    rate = Fraction(fps).limit_denominator(1001)
    tb = Fraction(1, 1000) if times is not None else None
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as container:
            stream = container.add_stream(codec or _default_codec(), rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            if bit_rate is not None:
                stream.bit_rate = int(bit_rate)
            if tb is not None:
                stream.time_base = tb
                stream.codec_context.time_base = tb
            if rotation % 360:
                stream.set_display_rotation(-(rotation % 360))  # PyAV takes counter-clockwise degrees
            for k, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                if tb is not None:
                    frame.pts = int(round(float(times[k] - times[0]) * 1000))
                    frame.time_base = tb
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
