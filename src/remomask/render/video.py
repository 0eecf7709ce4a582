"""Write a stream of RGB frames to ``.mp4`` or ``.gif``, atomically.

``.mp4`` goes through imageio's FFMPEG plugin (the ffmpeg binary shipped with ``imageio-ffmpeg``),
H.264 in yuv420p so that browsers and ordinary players open it. ``.gif`` is written with Pillow,
every frame mapped (no dithering) onto one 255-colour palette taken from the first frame: about
five times faster than a palette per frame, and right for stick figures, whose colours do not
change. The file is first written next to its destination under a temporary name and then moved
into place (:func:`remomask.files.atomic_path`), so a reader never sees half a video.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..files import atomic_path

__all__ = ["VIDEO_SUFFIXES", "check_video_path", "write_video"]

VIDEO_SUFFIXES = (".mp4", ".gif")
"""File suffixes :func:`write_video` knows (case-insensitive)."""


def check_video_path(out_path: str | os.PathLike) -> Path:
    """Return ``out_path`` as a ``Path`` after checking that its suffix is ``.mp4`` or ``.gif``.

    Raises:
        ValueError: for any other suffix (the message lists the supported ones).
    """
    path = Path(out_path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(
            f"cannot write {str(path)!r}: unknown video suffix {path.suffix!r}; "
            f"name the file with one of {', '.join(VIDEO_SUFFIXES)}")
    return path


def write_video(frames: Iterable[np.ndarray], out_path: str | os.PathLike, fps: float) -> int:
    """Write ``frames`` to ``out_path`` (``.mp4`` or ``.gif``) at ``fps`` frames per second.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB images, all the same size. For ``.mp4``, H and W
            should be multiples of 16, or ffmpeg's encoder gets a resized copy.
        out_path: destination; its folder is created if missing.
        fps: playback rate in frames per second (> 0). GIF stores delays in 1/100 s, so the GIF
            delay is ``1/fps`` rounded to 10 ms. A GIF keeps all its frames in memory until it is
            saved (about 160 kB per 384 x 416 frame); use ``.mp4`` for long clips.

    Returns:
        The number of frames written. Note that Pillow merges consecutive *identical* GIF frames
        into one longer frame, so a GIF read back can hold fewer frames than this (same duration).

    Raises:
        ValueError: unknown suffix, ``fps <= 0``, no frames, or a frame that is not (H, W, 3) uint8
            or changes size.
    """
    import imageio.v2 as iio2

    path = check_video_path(out_path)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    suffix = path.suffix.lower()
    count = 0
    shape = None
    with atomic_path(path, suffix=".part" + suffix) as tmp:
        tmp_name = str(tmp)
        if suffix == ".mp4":
            writer = iio2.get_writer(tmp_name, format="FFMPEG", mode="I", fps=float(fps),
                                     codec="libx264", pixelformat="yuv420p", quality=7,
                                     macro_block_size=16, ffmpeg_log_level="error")
            append = writer.append_data
        else:
            writer = _GifWriter(tmp_name, fps)
            append = writer.append
        try:
            for frame in frames:
                frame = np.asarray(frame)
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                    raise ValueError(f"frame {count} has shape {frame.shape} and dtype "
                                     f"{frame.dtype}; expected (H, W, 3) uint8 RGB")
                if shape is None:
                    shape = frame.shape
                elif frame.shape != shape:
                    raise ValueError(f"frame {count} has shape {frame.shape}, but the first "
                                     f"frame had {shape}; all frames must be the same size")
                append(frame)
                count += 1
            if count == 0:
                raise ValueError(f"no frames to write to {str(path)!r}")
        except BaseException:
            if isinstance(writer, _GifWriter):
                writer.frames = []               # do not encode a GIF that is thrown away
            raise
        finally:
            writer.close()
    return count


class _GifWriter:
    """Collect frames as palette images and save them as one looping GIF on ``close``."""

    def __init__(self, path: str, fps: float):
        self.path = path
        self.duration_ms = 1000.0 / float(fps)
        self.palette = None
        self.frames = []

    def append(self, frame: np.ndarray) -> None:
        from PIL import Image

        image = Image.fromarray(frame)
        if self.palette is None:
            self.palette = image.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
        self.frames.append(image.quantize(palette=self.palette, dither=Image.Dither.NONE))

    def close(self) -> None:
        if self.frames:
            first, *rest = self.frames
            first.save(self.path, format="GIF", save_all=True, append_images=rest,
                       duration=self.duration_ms, loop=0)
        self.frames = []
