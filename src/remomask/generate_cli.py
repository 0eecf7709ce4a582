"""``remomask generate``: text in, motion files out (spec 8; issue CLI contract).

Writes into ``--out`` for every sample i (prompt-major order):

- ``sample_<i>.joints.npy``: (T, 22, 3) float32 joint positions in metres, 20 fps;
- ``sample_<i>.features.npy``: (T, 263) float32 de-normalised HumanML3D features;
- ``sample_<i>.bvh`` with ``--bvh``: the joints as a BVH file on the 22-joint skeleton, centimetres, 20 fps
  (:func:`remomask.export.write_bvh`, issue 7 item 3);
- ``sample_<i>.mp4`` (``.gif`` with ``--video-format gif``, or when ffmpeg is missing) unless ``--no-video``;
- ``result.json``: prompt(s), seed, settings, model folder and per sample its prompt, frames, seconds,
  file names and retrieved entries (id, motion id, caption, score).

Only ``click`` is imported at module level. Bad input (empty text, a length outside 2-9.8 s, a missing
model, a malformed prompts file) prints one line ``error: ...`` and exits with code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["generate", "parse_prompts"]


def _failure(message: str) -> click.ClickException:
    from .cli import UsageFailure

    return UsageFailure(message)


def parse_prompts(text: str, source: str = "prompts file") -> list[tuple[str, float | None]]:
    """Parse a prompts file: one ``text[#seconds]`` per line; blank lines and lines starting with ``#`` are skipped.

    Returns:
        ``[(text, seconds or None), ...]``.

    Raises:
        ValueError: a line whose part after the last ``#`` is not a number, an empty text, or no prompt at all.
    """
    out: list[tuple[str, float | None]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        seconds = None
        if "#" in line:
            line, _, tail = line.rpartition("#")
            try:
                seconds = float(tail)
            except ValueError:
                raise ValueError(f"{source} line {number}: {tail.strip()!r} after '#' is not a number of seconds "
                                 "(write 'text#seconds', e.g. 'a person waves#3.5')") from None
            line = line.strip()
        if not line:
            raise ValueError(f"{source} line {number}: the prompt text is empty")
        out.append((line, seconds))
    if not out:
        raise ValueError(f"{source} holds no prompt (one 'text[#seconds]' per line)")
    return out


def _write_npy(path: Path, array) -> None:
    import numpy as np

    from .data.storage import atomic_path

    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


@click.command("generate")
@click.argument("text", required=False)
@click.option("--seconds", type=float, default=None, help="Duration, 2 to 9.8 s [default: estimated from the text].")
@click.option("--frames", type=int, default=None,
              help="Duration in frames at 20 fps (40 to 196), instead of --seconds.")
@click.option("--seed", type=int, default=None, help="Random seed [default: a fresh one, written to result.json].")
@click.option("--num-samples", type=int, default=1, show_default=True, help="Motions per prompt.")
@click.option("--steps", type=int, default=None, help="Masked-decoding steps [default: the model's, 10].")
@click.option("--cond-scale", type=float, default=None,
              help="RAG-CFG guidance scale [default: the model's, chosen on val; 4 when it names none].")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Pipeline folder [default: the bundled model].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/generate"), show_default=True,
              help="Output folder.")
@click.option("--no-video", is_flag=True, help="Skip the stick-figure videos.")
@click.option("--bvh", is_flag=True, help="Also write sample_<i>.bvh (22-joint skeleton, centimetres, 20 fps).")
@click.option("--video-format", type=click.Choice(["mp4", "gif"]), default="mp4", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cuda runs with bf16 autocast.")
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), default=None,
              help="File with one 'text[#seconds]' per line, generated in one batch.")
def generate(text, seconds, frames, seed, num_samples, steps, cond_scale, model_dir, out, no_video, bvh,
             video_format, device, prompts_file) -> None:
    """Generate motion for TEXT (or for every line of --prompts FILE)."""
    from .pipeline import frames_from_request

    # -- check the request before loading any model ----------------------------------------------------------
    if text is not None and prompts_file is not None:
        raise _failure("give TEXT or --prompts FILE, not both")
    if seconds is not None and frames is not None:
        raise _failure("give --seconds or --frames, not both")
    if num_samples < 1:
        raise _failure(f"--num-samples must be >= 1, got {num_samples}")
    if steps is not None and steps < 1:
        raise _failure(f"--steps must be >= 1, got {steps}")
    try:
        if prompts_file is not None:
            if not prompts_file.is_file():
                raise ValueError(f"prompts file {prompts_file} does not exist")
            items = parse_prompts(prompts_file.read_text(encoding="utf-8"), str(prompts_file))
        elif text is None or not text.strip():
            raise ValueError("the prompt is empty; give a sentence, e.g. remomask generate \"a person waves\"")
        else:
            items = [(text.strip(), None)]
        texts = [t for t, _ in items]
        if any(s is not None for _, s in items):
            default = None if seconds is None and frames is None else (seconds if seconds is not None else frames / 20)
            secs = [s if s is not None else default for _, s in items]
            frames_from_request(len(texts), seconds=secs)
            request = dict(seconds=secs)
        else:
            request = dict(seconds=seconds, frames=frames)
            frames_from_request(len(texts), **request)
    except ValueError as exc:
        raise _failure(str(exc)) from exc
    if model_dir is not None and not model_dir.is_dir():
        raise _failure(f"model folder {model_dir} does not exist; pass a folder written by "
                       "ReMoMaskPipeline.save_pretrained (or leave --model out for the bundled model)")

    # -- generate -----------------------------------------------------------------------------------------------
    from .pipeline import ReMoMaskPipeline
    from .retrieval.model import RetrieverLoadError
    from .text import TextEncoderError

    try:
        pipe = ReMoMaskPipeline.from_pretrained(model_dir, device=device)
        result = pipe(texts, num_samples=num_samples, seed=seed, steps=steps, cond_scale=cond_scale, **request)
    except (FileNotFoundError, ValueError, RetrieverLoadError, TextEncoderError) as exc:
        raise _failure(str(exc)) from exc

    # -- write ----------------------------------------------------------------------------------------------------
    try:
        samples = _write_outputs(result, out, num_samples, no_video, video_format, bvh=bvh)
    except OSError as exc:
        raise _failure(f"cannot write the outputs to {out}: {exc}") from exc
    summary = {"prompt": texts[0] if len(texts) == 1 else None, "prompts": texts, "seed": result.settings["seed"],
               "model": str(model_dir) if model_dir is not None else "bundled default",
               "settings": result.settings, "samples": samples}
    from .data.storage import atomic_path

    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    for s in samples:
        click.echo(f"sample {s['index']}: {s['frames']} frames ({s['seconds']:.1f} s) "
                   f"{', '.join(s['files'].values())}  \"{s['prompt']}\"")
    click.echo(f"seed {result.settings['seed']}; wrote {out / 'result.json'}")


def _write_outputs(result, out: Path, num_samples: int, no_video: bool, video_format: str,
                   bvh: bool = False) -> list[dict]:
    """Write the per-sample files (``sample_<i>.bvh`` too when ``bvh``); returns the entries of result.json."""
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(len(result)):
        joints, feats = result.sample(i)
        files = {"joints": f"sample_{i}.joints.npy", "features": f"sample_{i}.features.npy"}
        _write_npy(out / files["joints"], joints.astype("float32"))
        _write_npy(out / files["features"], feats.astype("float32"))
        if bvh:
            from .export import BvhExportError, write_bvh

            files["bvh"] = f"sample_{i}.bvh"
            try:
                write_bvh(out / files["bvh"], joints, fps=20.0)
            except BvhExportError as exc:
                raise _failure(f"sample {i}: cannot write {files['bvh']}: {exc}") from exc
        if not no_video:
            files["video"] = _render(joints, out / f"sample_{i}.{video_format}", result.texts[i])
        samples.append({"index": i, "prompt": result.texts[i], "prompt_index": i // num_samples,
                        "frames": int(result.lengths[i]), "seconds": float(result.lengths[i]) / 20.0,
                        "length_source": result.length_source[i], "files": files,
                        "retrieved": [{"id": h["entry_id"], "motion_id": h["motion_id"], "caption": h["caption"],
                                       "score": round(h["score"], 6)} for h in result.retrieved[i]]})
    return samples


def _render(joints, path: Path, title: str) -> str:
    """Render one motion; an mp4 falls back to a gif when ffmpeg cannot be used. Returns the file name."""
    from .render import render_motions

    try:
        render_motions([joints], path, titles=[title])
        return path.name
    except (RuntimeError, OSError, ImportError):
        if path.suffix != ".mp4":
            raise
        gif = path.with_suffix(".gif")
        render_motions([joints], gif, titles=[title])
        return gif.name
