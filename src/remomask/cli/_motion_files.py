"""Writing one motion's files into a run folder, and the model-folder check, shared by ``generate``,
``generate --timeline`` and ``edit`` (docs/design.md §8, §11)."""

from __future__ import annotations

from pathlib import Path

from ..constants import FPS
from ..errors import MissingFileError

__all__ = ["write_motion", "render_video", "check_model_dir", "retrieved_entries"]


def check_model_dir(model_dir: Path | None) -> None:
    """Refuse a ``--model`` folder that does not exist before anything loads.

    Raises:
        MissingFileError: the folder is missing (None, the bundled model, is always fine).
    """
    if model_dir is not None and not Path(model_dir).is_dir():
        raise MissingFileError(f"model folder {model_dir} does not exist; pass a folder written by "
                               "ReMoMaskPipeline.save_pretrained (or leave --model out for the bundled model)")


def write_motion(folder: Path, stem: str, joints, features, *, bvh: bool, video_format: str | None,
                 title: str) -> dict[str, str]:
    """Write ``<stem>.joints.npy`` (T, 22, 3) float32 metres, ``<stem>.features.npy`` (T, 263) float32, and
    optionally ``<stem>.bvh`` (centimetres, 20 fps) and a video titled ``title``; return the file names by kind.

    Args:
        folder: the run's staging folder. stem: e.g. ``sample_0``. joints, features: arrays at 20 fps.
        bvh: also write the BVH. video_format: ``"mp4"`` / ``"gif"``, or None for no video.

    Raises:
        BvhExportError / OSError: a file cannot be written.
    """
    import numpy as np

    files = {"joints": f"{stem}.joints.npy", "features": f"{stem}.features.npy"}
    np.save(folder / files["joints"], np.asarray(joints, dtype=np.float32))
    np.save(folder / files["features"], np.asarray(features, dtype=np.float32))
    if bvh:
        from ..export import write_bvh

        files["bvh"] = f"{stem}.bvh"
        write_bvh(folder / files["bvh"], joints, fps=FPS)
    if video_format is not None:
        files["video"] = render_video(joints, folder / f"{stem}.{video_format}", title)
    return files


def render_video(joints, path: Path, title: str) -> str:
    """Render one motion; an mp4 falls back to a gif when ffmpeg cannot be used. Returns the file name."""
    from ..render import render_motions

    try:
        render_motions([joints], path, titles=[title])
        return path.name
    except (RuntimeError, OSError, ImportError):
        if path.suffix != ".mp4":
            raise
        gif = path.with_suffix(".gif")
        render_motions([joints], gif, titles=[title])
        return gif.name


def retrieved_entries(hits) -> list[dict]:
    """The ``result.json`` form of retrieved database entries (id, motion id, caption, score)."""
    return [{"id": h["entry_id"], "motion_id": h["motion_id"], "caption": h["caption"],
             "score": round(float(h["score"]), 6)} for h in hits]
