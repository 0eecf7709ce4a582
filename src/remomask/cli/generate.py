"""``remomask generate``: text in, motion files out (docs/design.md §8 and §11).

For every sample i (prompt-major order) the run folder holds:

- ``sample_<i>.joints.npy``: (T, 22, 3) float32 joint positions in metres, 20 fps;
- ``sample_<i>.features.npy``: (T, 263) float32 de-normalised HumanML3D features;
- ``sample_<i>.bvh`` with ``--bvh``: the joints as BVH on the 22-joint skeleton, centimetres, 20 fps;
- ``sample_<i>.mp4`` (``.gif`` with ``--video-format gif``, or when ffmpeg is missing) unless ``--no-video``;
- ``result.json``, written last: prompt(s), seed, settings, model folder and per sample its prompt, frames,
  seconds, file names and retrieved entries (id, motion id, caption, score).

Without ``--out`` each run writes a fresh numbered folder ``outputs/generate/NNN`` and prints it; with
``--out DIR`` a previous result in DIR is replaced whole (:mod:`remomask.cli._outputs`). Every request is
checked (text, durations, counts, seed, guidance, device, the output folder) before a model loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..constants import FPS
from ._motion_files import check_model_dir, retrieved_entries, write_motion
from ._core import POSITIVE, SEED, check_device, command, device_option, fail, finite, int_range
from ._prompts import parse_prompt, parse_prompts, read_prompts_file

__all__ = ["generate", "parse_prompts", "DEFAULT_OUT", "MAX_SAMPLES", "MAX_MOTIONS"]

DEFAULT_OUT = Path("outputs/generate")
"""Parent of the numbered run folders when ``--out`` is not given."""

MAX_SAMPLES = 100
"""Largest ``--num-samples``."""

MAX_MOTIONS = 1000
"""Largest number of motions of one run (prompts x samples)."""


@command("generate")
@click.argument("text", required=False)
@click.option("--seconds", type=finite(), default=None, help="Duration, 2 to 9.8 s [default: estimated from the text].")
@click.option("--frames", type=int, default=None,
              help="Duration in frames at 20 fps (40 to 196), instead of --seconds.")
@click.option("--seed", type=SEED, default=None, help="Random seed [default: a fresh one, written to result.json].")
@click.option("--num-samples", type=int_range(1, MAX_SAMPLES), default=1, show_default=True,
              help="Motions per prompt.")
@click.option("--steps", type=POSITIVE, default=None, help="Masked-decoding steps [default: the model's, 10].")
@click.option("--cond-scale", type=finite(0.0), default=None,
              help="RAG-CFG guidance scale [default: the model's, chosen on val; 4 when it names none].")
@click.option("--retrieval-min-score", type=finite(0.0, max=1.0), default=None,
              help="Similarity gate: prompts whose best retrieved neighbour scores below this cosine are generated "
                   "without retrieval (docs/design.md §4.10; 0 = always retrieve) [default: the model's].")
@click.option("--no-retrieval", is_flag=True,
              help="Sample without the retrieved motions (text only; RAG-CFG's retrieval dropout trains this mode). "
                   "Safer for prompts far from the training captions (docs/results.md).")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Pipeline folder [default: the bundled model].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder; a previous remomask result there is replaced [default: a new numbered folder "
                   "under outputs/generate/].")
@click.option("--no-video", is_flag=True, help="Skip the stick-figure videos.")
@click.option("--bvh", is_flag=True, help="Also write sample_<i>.bvh (22-joint skeleton, centimetres, 20 fps).")
@click.option("--video-format", type=click.Choice(["mp4", "gif"]), default="mp4", show_default=True)
@device_option(help="cpu or cuda (cuda runs with bf16 autocast).")
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), default=None,
              help="UTF-8 file with one 'text[#seconds]' per line, generated in one batch.")
@click.option("--timeline", default=None,
              help="One continuous motion of any length: \"walk forward:4 | turn left and wave:3 | stand still:2\" "
                   "(text:seconds[:seed] items), or a .json/.yaml/.txt file of segments.")
def generate(text, seconds, frames, seed, num_samples, steps, cond_scale, retrieval_min_score, no_retrieval, model_dir,
             out, no_video, bvh, video_format, device, prompts_file, timeline) -> None:
    """Generate motion for TEXT (or for every line of --prompts FILE, or one --timeline of segments).

    TEXT may end in '#SECONDS' ("a person waves#3.5"), as lines of a prompts file do.
    """
    from ..pipeline import frames_from_request
    from ._outputs import staged_output

    # -- check the request before loading any model ----------------------------------------------------------
    if timeline is not None:
        if text is not None or prompts_file is not None:
            raise fail("give --timeline alone, without TEXT or --prompts")
        if seconds is not None or frames is not None or num_samples != 1:
            raise fail("--timeline sets the durations itself; drop --seconds / --frames / --num-samples")
        if no_retrieval or retrieval_min_score is not None:
            raise fail("--no-retrieval and --retrieval-min-score are options of TEXT / --prompts generation, not of "
                       "--timeline (a timeline uses the model's default gate)")
        return _generate_timeline(timeline, seed, steps, cond_scale, model_dir, out, no_video, bvh, video_format,
                                  device)
    if text is not None and prompts_file is not None:
        raise fail("give TEXT or --prompts FILE, not both")
    if seconds is not None and frames is not None:
        raise fail("give --seconds or --frames, not both")
    if no_retrieval and retrieval_min_score is not None:
        raise fail("--retrieval-min-score gates retrieval; it has no effect with --no-retrieval, drop one")
    if prompts_file is not None:
        items = read_prompts_file(prompts_file)
    elif text is None or not text.replace("\ufeff", "").strip():
        raise fail("the prompt is empty; give a sentence, e.g. remomask generate \"a person waves\"")
    else:
        items = [parse_prompt(text)]
    if len(items) * num_samples > MAX_MOTIONS:
        raise fail(f"{len(items)} prompts x {num_samples} samples = {len(items) * num_samples} motions; one run "
                   f"makes at most {MAX_MOTIONS} (split the prompts file)")
    texts = [t for t, _ in items]
    if any(s is not None for _, s in items):
        default = None if seconds is None and frames is None else (seconds if seconds is not None else frames / 20)
        request = dict(seconds=[s if s is not None else default for _, s in items])
    else:
        request = dict(seconds=seconds, frames=frames)
    frames_from_request(len(texts), **request)
    check_model_dir(model_dir)
    check_device(device)

    with staged_output(out, DEFAULT_OUT) as stage:
        # -- generate -------------------------------------------------------------------------------------------
        from ..pipeline import ReMoMaskPipeline

        total = len(texts) * num_samples
        if total > 32:
            click.echo(f"generating {total} motions ...", err=True)
        pipe = ReMoMaskPipeline.from_pretrained(model_dir, device=device)
        result = pipe(texts, num_samples=num_samples, seed=seed, steps=steps, cond_scale=cond_scale,
                      use_retrieval=not no_retrieval, retrieval_min_score=retrieval_min_score, **request)

        # -- write: samples first, result.json last -----------------------------------------------------------
        samples = write_samples(result, stage.path, num_samples, no_video, video_format, bvh=bvh)
        summary = {"prompt": texts[0] if len(texts) == 1 else None, "prompts": texts, "seed": result.settings["seed"],
                   "model": str(model_dir) if model_dir is not None else "bundled default",
                   "settings": result.settings, "samples": samples}
        (stage.path / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
    for s in samples:
        click.echo(f"sample {s['index']}: {s['frames']} frames ({s['seconds']:.1f} s) "
                   f"{', '.join(s['files'].values())}  \"{s['prompt']}\"")
    click.echo(f"seed {result.settings['seed']}; wrote {stage.final / 'result.json'}")


def _generate_timeline(spec, seed, steps, cond_scale, model_dir, out, no_video, bvh, video_format, device) -> None:
    """``generate --timeline``: one motion from segments (:mod:`remomask.pipeline.timeline`); writes
    ``timeline_0.joints.npy``, ``timeline_0.features.npy``, ``timeline_0.bvh`` (``--bvh``), ``timeline_0.mp4``
    (segment texts in the title) and ``result.json`` with every segment (frames, seed, retrieved entries)."""
    from ..constants import FPS
    from ..pipeline.timeline import parse_timeline, read_timeline
    from ._outputs import staged_output

    looks_like_file = Path(spec).suffix.lower() in (".json", ".yaml", ".yml", ".txt") and "|" not in spec
    segments = read_timeline(Path(spec)) if looks_like_file else parse_timeline(spec)
    check_model_dir(model_dir)
    check_device(device)
    with staged_output(out, DEFAULT_OUT) as stage:
        from ..pipeline import ReMoMaskPipeline

        pipe = ReMoMaskPipeline.from_pretrained(model_dir, device=device)
        res = pipe.compose(segments, seed=seed, steps=steps, cond_scale=cond_scale)
        title = " | ".join(f"{seg['start'] / FPS:.0f}s {seg['text']}" for seg in res.segments)
        files = write_motion(stage.path, "timeline_0", res.joints, res.features, bvh=bvh,
                             video_format=None if no_video else video_format, title=title)
        summary = {"timeline": [{"text": s.text, "seconds": s.seconds, "seed": s.seed} for s in segments],
                   "seed": res.settings["seed"], "frames": len(res), "seconds": len(res) / FPS,
                   "boundaries": res.boundaries,
                   "model": str(model_dir) if model_dir is not None else "bundled default",
                   "settings": res.settings, "files": files, "segments": res.segments}
        (stage.path / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
    for s in res.segments:
        click.echo(f"segment {s['index']}: frames {s['start']}:{s['end']} ({s['frames'] / FPS:.1f} s) "
                   f"\"{s['text']}\"")
    click.echo(f"{len(res)} frames ({len(res) / FPS:.1f} s); seed {res.settings['seed']}; "
               f"wrote {stage.final / 'result.json'}")


def write_samples(result, out: Path, num_samples: int, no_video: bool, video_format: str, bvh: bool = False,
                  prefix: str = "sample") -> list[dict]:
    """Write each motion of a :class:`~remomask.pipeline.GenerationOutput` into ``out`` (a staging folder).

    Args:
        result: the pipeline's output (B motions). out: folder. num_samples: motions per prompt.
        no_video / video_format / bvh: which files to add beside the two ``.npy`` files.
        prefix: file name prefix (``sample`` -> ``sample_<i>.joints.npy``).

    Returns:
        The per-sample entries of ``result.json`` (index, prompt, frames, seconds, files, retrieved).

    Raises:
        BvhExportError / OSError: a file cannot be written.
    """
    from tqdm.auto import tqdm

    samples = []
    for i in tqdm(range(len(result)), desc="writing", unit="motion", disable=len(result) < 8, leave=False):
        joints, feats = result.sample(i)
        files = write_motion(out, f"{prefix}_{i}", joints, feats, bvh=bvh,
                             video_format=None if no_video else video_format, title=result.texts[i])
        samples.append({"index": i, "prompt": result.texts[i], "prompt_index": i // num_samples,
                        "frames": int(result.lengths[i]), "seconds": float(result.lengths[i]) / FPS,
                        "length_source": result.length_source[i], "files": files,
                        "retrieved": retrieved_entries(result.retrieved[i])})
    return samples
