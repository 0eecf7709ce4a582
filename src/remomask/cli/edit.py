"""``remomask edit``: regenerate a frame range (or body parts over it) of a motion with a new text
(docs/generation.md, "Editing"; :mod:`remomask.pipeline.editing`).

The run folder (``outputs/edit/NNN`` or ``--out DIR``, staged so folders never mix runs) holds
``edit_0.joints.npy`` (T', 22, 3) metres, ``edit_0.features.npy`` (T', 263), ``edit_0.bvh`` with ``--bvh``,
``edit_0.mp4`` (title names the edited range) unless ``--no-video``, ``source_0.joints.npy`` (the source as read)
and ``result.json`` (source, text, range, parts, keyframes, seed, settings, retrieved entries, file names),
written last.

Keyframes (:mod:`remomask.pipeline.keyframes`): ``--keyframe FRAME:POSE`` (repeatable) requires a pose at an
output frame inside ``--frames``; ``--to TARGET`` generates ``--extend`` seconds (default 2) after the source that
end in TARGET's first frame, and appends TARGET (moved rigidly to where a free continuation ends, unless
``--to-in-place``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._motion_files import check_model_dir, retrieved_entries, write_motion
from ._core import POSITIVE, SEED, check_device, command, device_option, fail, finite, int_range

__all__ = ["edit", "parse_frames", "parse_keyframe", "DEFAULT_OUT"]

DEFAULT_OUT = Path("outputs/edit")
"""Parent of the numbered run folders when ``--out`` is not given."""


def parse_frames(text: str | None) -> tuple[int | None, int | None] | None:
    """``"A:B"`` / ``"A:"`` / ``":B"`` -> (A, B) frames (None = open end); None -> None (the whole motion).

    Raises:
        UsageError: not of that form, or negative numbers.
    """
    from ..errors import UsageError

    if text is None:
        return None
    a, sep, b = text.partition(":")
    if not sep:
        raise UsageError(f"--frames takes A:B (frames at 20 fps, end exclusive; A: or :B for open ends), got {text!r}")
    try:
        start = int(a) if a.strip() else None
        end = int(b) if b.strip() else None
    except ValueError:
        raise UsageError(f"--frames takes integer frames A:B, got {text!r}") from None
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise UsageError(f"--frames must not be negative, got {text!r}")
    return start, end


def parse_keyframe(text: str) -> tuple[int, str, int | None]:
    """``"FRAME:POSE"`` or ``"FRAME:POSE@N"`` -> (frame, pose source, frame of the pose source or None).

    POSE is a ``.npy`` (22, 3) pose, a motion file or a dataset id; ``@N`` takes its frame N (default 0).

    Raises:
        UsageError: not of that form, or a negative frame.
    """
    from ..errors import UsageError

    a, sep, rest = text.partition(":")
    pose, at, n = rest.rpartition("@") if "@" in rest else (rest, "", "")
    try:
        frame = int(a)
        sub = int(n) if at else None
    except ValueError:
        raise UsageError(f"--keyframe takes FRAME:POSE or FRAME:POSE@N (POSE a .npy pose, a motion file or a "
                         f"dataset id), got {text!r}") from None
    if not sep or not pose.strip():
        raise UsageError(f"--keyframe takes FRAME:POSE (e.g. 90:pose.npy or 90:000122@40), got {text!r}")
    if frame < 0:
        raise UsageError(f"--keyframe frame must not be negative, got {text!r}")
    return frame, pose.strip(), sub


@command("edit")
@click.argument("source")
@click.argument("text")
@click.option("--frames", "frames_text", default=None,
              help="Edited range A:B in frames at 20 fps, end exclusive (A: = to the end, :B = from the start) "
                   "[default: the whole motion].")
@click.option("--parts", default=None, help="Regenerate only these body parts (comma-separated): right_arm, "
                                            "left_arm, arms, right_leg, left_leg, legs, lower, torso, head, upper.")
@click.option("--extend", type=finite(0.0), default=0.0, show_default=True,
              help="Seconds to generate after the source's end (continuation); the range then runs to the end.")
@click.option("--keyframe", "keyframe_texts", multiple=True, metavar="FRAME:POSE[@N]",
              help="Require a pose at output FRAME inside --frames (repeatable): POSE is a .npy (22, 3) pose, a "
                   "motion file or a dataset id (its frame N, default 0). Met exactly at FRAME.")
@click.option("--to", "to_target", default=None, metavar="TARGET",
              help="In-between: generate --extend seconds (default 2) after SOURCE ending in TARGET's first frame "
                   "(a .npy pose or motion file, or a dataset id), then append TARGET.")
@click.option("--to-in-place", is_flag=True, help="With --to: keep TARGET where it is in world coordinates "
                                                 "[default: move it to where a free continuation ends].")
@click.option("--seed", type=SEED, default=None, help="Random seed [default: a fresh one, written to result.json].")
@click.option("--steps", type=POSITIVE, default=None, help="Masked-decoding steps [default: the model's].")
@click.option("--cond-scale", type=finite(0.0), default=None, help="RAG-CFG guidance scale [default: the model's].")
@click.option("--blend", type=int_range(0, 40), default=8, show_default=True, help="Seam fade in frames.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Pipeline folder [default: the bundled model].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder; a previous remomask result there is replaced [default: outputs/edit/NNN].")
@click.option("--no-video", is_flag=True, help="Skip the stick-figure video.")
@click.option("--bvh", is_flag=True, help="Also write edit_0.bvh (22-joint skeleton, centimetres, 20 fps).")
@click.option("--video-format", type=click.Choice(["mp4", "gif"]), default="mp4", show_default=True)
@device_option()
def edit(source, text, frames_text, parts, extend, keyframe_texts, to_target, to_in_place, seed, steps, cond_scale,
         blend, model_dir, out, no_video, bvh, video_format, device) -> None:
    """Regenerate frames A:B of SOURCE (a .npy/.npz/.bvh motion file or a dataset id such as 000021) with TEXT.

    Frames outside A:B are returned unchanged; with --parts only those body parts change; --keyframe poses are
    met exactly; --to TARGET in-betweens from SOURCE's end into TARGET.
    """
    from ..constants import FPS
    from ..pipeline.editing import check_range, load_source, resolve_parts
    from ..pipeline.request import check_prompts
    from ._outputs import staged_output

    # -- check everything before a model loads -----------------------------------------------------------------
    if not text.replace("\ufeff", "").strip():
        raise fail("the edit text is empty; give a sentence, e.g. remomask edit walk.npy \"wave\" --frames 40:80")
    text = check_prompts(text)[0]
    frames = parse_frames(frames_text)
    resolve_parts(parts)
    ext = int(round(extend * FPS))
    if parts and ext:
        raise fail("--parts cannot be combined with --extend")
    keys_in = [parse_keyframe(k) for k in keyframe_texts]
    if to_target is not None and (frames is not None or parts or keys_in):
        raise fail("--to in-betweens after the source's end; drop --frames, --parts and --keyframe")
    if to_in_place and to_target is None:
        raise fail("--to-in-place needs --to TARGET")
    if keys_in and parts:
        raise fail("--keyframe constrains the whole body; it cannot be combined with --parts")
    src = load_source(source)
    keys = {}
    if to_target is not None:
        from ..pipeline.keyframes import as_pose

        ext = ext or 2 * FPS
        as_pose(_pose_or_motion(to_target))                    # a readable target, before the model loads
        check_range((len(src), None), len(src), ext)
    else:
        if ext and frames is None:
            frames = (len(src), None)
        a0, b0 = check_range(frames, len(src), ext)
        from ..pipeline.keyframes import check_keyframes

        keys = check_keyframes({f: (_pose_or_motion(p), 0 if n is None else n) for f, p, n in keys_in}, a0, b0)
    check_model_dir(model_dir)
    check_device(device)

    with staged_output(out, DEFAULT_OUT) as stage:
        import numpy as np

        from ..pipeline import ReMoMaskPipeline

        pipe = ReMoMaskPipeline.from_pretrained(model_dir, device=device)
        if to_target is not None:
            from ..pipeline.keyframes import inbetween

            res = inbetween(pipe, src, _pose_or_motion(to_target), text, ext, seed=seed, steps=steps,
                            cond_scale=cond_scale, blend=blend, trim=False,
                            place_end="given" if to_in_place else "continue")
        elif keys:
            from ..pipeline.editing import edit_motion

            res = edit_motion(pipe, src, text, frames, extend=ext, seed=seed, steps=steps, cond_scale=cond_scale,
                              blend=blend, keyframes=keys)
        else:
            res = pipe.edit(src, text, frames, parts=parts, extend=ext, seed=seed, steps=steps,
                            cond_scale=cond_scale, blend=blend)
        a, b = res.frames
        title = f"{text}  [edited {a / FPS:.1f}-{b / FPS:.1f} s{', ' + ','.join(res.parts) if res.parts else ''}]"
        files = write_motion(stage.path, "edit_0", res.joints, res.features, bvh=bvh,
                             video_format=None if no_video else video_format, title=title)
        files["source"] = "source_0.joints.npy"
        np.save(stage.path / files["source"], src.joints.astype("float32"))
        summary = {"source": res_source(source, src), "prompt": text, "frames": [a, b],
                   "seconds": [a / FPS, b / FPS], "source_frames": res.source_frames, "total_frames": len(res),
                   "parts": res.parts, "part_joints": list(res.part_joints),
                   "keyframes": sorted(int(k) for k in res.keyframes), "to": to_target,
                   "seed": res.settings["seed"],
                   "model": str(model_dir) if model_dir is not None else "bundled default",
                   "settings": res.settings, "token_window": list(res.window), "files": files,
                   "retrieved": retrieved_entries(res.retrieved)}
        (stage.path / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
    if to_target is not None:
        click.echo(f"in-between frames {a}:{b} ({(b - a) / FPS:g} s) from the end of {src.source} ({len(src)} frames) "
                   f"into {to_target} (appended; {len(res)} frames in all): \"{text}\"")
    else:
        click.echo(f"edited frames {a}:{b} ({a / FPS:.1f}-{b / FPS:.1f} s) of {src.source} "
                   f"({res.source_frames} frames){' parts ' + ','.join(res.parts) if res.parts else ''}"
                   f"{' keyframes ' + ','.join(map(str, res.keyframes)) if res.keyframes else ''}: \"{text}\"")
    click.echo(f"seed {res.settings['seed']}; wrote {stage.final / 'result.json'}")


def _pose_or_motion(arg: str):
    """A ``.npy`` of shape (22, 3) as a pose array; anything else as given (a motion file or a dataset id)."""
    import numpy as np

    from ..errors import InputFileError

    path = Path(arg).expanduser()
    if path.suffix.lower() == ".npy" and path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{arg}: not a readable .npy file ({exc})") from None
        if arr.shape == (22, 3):
            return arr.astype("float32")
    return arg


def res_source(arg: str, src) -> str:
    """How ``result.json`` names the source: the path as given, or ``dataset:<id>``."""
    return src.source if src.source.startswith("dataset:") else str(arg)
