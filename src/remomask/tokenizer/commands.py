"""Click commands of the tokenizer: ``remomask train tokenizer`` and ``remomask evaluate tokenizer``.

Only ``click`` is imported at module level; torch and the models are imported inside the commands.
For DDP (and before the commands are registered in ``remomask.cli``) the module runs on its own::

    torchrun --nproc_per_node 2 -m remomask.tokenizer.commands train --out runs/tok_ddp
    python -m remomask.tokenizer.commands evaluate --model runs/tok_ddp/model
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from ..cli import UsageFailure as _UsageError  # user errors: one line ``error: ...``, exit code 2

__all__ = ["train_tokenizer", "evaluate_tokenizer", "DEFAULT_MODEL"]

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "models" / "tokenizer_cpu"
"""The bundled ``cpu``-preset tokenizer folder."""


def _user_errors():
    from ..data.layout import DatasetError
    from .pretrained import CheckpointError

    return (FileNotFoundError, ValueError, DatasetError, CheckpointError)


@click.command("tokenizer")
@click.option("--dataset", default="embedded", show_default=True,
              help="'embedded' or a HumanML3D-layout folder.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/tokenizer_cpu"), show_default=True,
              help="Run folder: checkpoint.pt, tb/ (TensorBoard), model/ (selected on val).")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True)
@click.option("--branches", type=click.Choice(["1d,2d", "2d"]), default="1d,2d", show_default=True,
              help="Dual 1D + 2D branch (default; measured better) or a single 2D branch.")
@click.option("--iterations", type=int, default=None, help="Total iterations [preset].")
@click.option("--batch-size", type=int, default=None, help="Windows per process per step [preset].")
@click.option("--lr", type=float, default=None, help="Peak learning rate [preset].")
@click.option("--warmup", type=int, default=None, help="Warm-up iterations [preset].")
@click.option("--milestones", default=None, help="Comma-separated decay iterations [preset].")
@click.option("--eval-every", type=int, default=None, help="Validate every N iterations [preset].")
@click.option("--val-max-clips", type=int, default=None, help="Validate on at most N val clips.")
@click.option("--width", type=int, default=None, help="Override the preset's conv width.")
@click.option("--seed", type=int, default=3407, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads per process (1 is fastest on a shared CPU) [torch default].")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from <out>/checkpoint.pt when it exists.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train_tokenizer(dataset, out, preset, branches, iterations, batch_size, lr, warmup, milestones, eval_every,
                    val_max_clips, width, seed, device, threads, resume, progress) -> None:
    """Train the 2D residual VQ-VAE motion tokenizer (spec 3.4)."""
    try:
        from .train import TrainConfig, train_tokenizer as run

        ms = tuple(int(m) for m in milestones.split(",")) if milestones else None
        cfg = TrainConfig.preset_defaults(
            preset, dataset=dataset, out=str(out), branches=tuple(branches.split(",")), iterations=iterations,
            batch_size=batch_size, lr=lr, warmup=warmup, milestones=ms, eval_every=eval_every,
            val_max_clips=val_max_clips, seed=seed, device=device, threads=threads, resume=resume, progress=progress,
            model_overrides={"width": width} if width else None,
            command=" ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]]),
        )
        model_dir = run(cfg)
    except _user_errors() as exc:
        raise _UsageError(str(exc)) from exc
    click.echo(f"model selected on val: {model_dir}")


def _fid_lines(rec: dict) -> list[str]:
    """The reconstruction-FID block of the printed report: a markdown table (real vs reconstructed)."""
    cols = [("fid", "FID"), ("top1", "Top1"), ("top3", "Top3"), ("mm_dist", "MM-Dist"), ("diversity", "Diversity"),
            ("mpjpe_mm", "MPJPE mm")]
    cols += [(k, k[:-4].capitalize() + " acc") for k in sorted(rec) if k.endswith("_acc")]

    def cell(stat) -> str:
        if not stat or stat.get("mean") is None:
            return "-"
        ci = stat.get("ci95")
        return f"{stat['mean']:.3f}" + (f"±{ci:.3f}" if ci is not None else "")

    return [f"reconstruction FID: split {rec['split']}, {rec['repeats']} repeats x {rec['samples_per_repeat']} "
            f"samples (protocol crops 40-196 frames, seed {rec['seed']}), evaluator `{rec['evaluator']}`, "
            f"{rec['seconds']:.0f} s",
            "| | " + " | ".join(h for _, h in cols) + " |",
            "|---" * (len(cols) + 1) + "|",
            "| real | " + " | ".join(cell(rec["reference"].get(k)) for k, _ in cols) + " |",
            "| reconstruction | " + " | ".join(cell(rec.get(k)) for k, _ in cols) + " |"]


@click.command("tokenizer")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL,
              show_default="the bundled cpu tokenizer", help="Tokenizer folder.")
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--split", default="test", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the metrics to this JSON file ('-' = stdout only JSON).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-clips", type=int, default=None, help="Evaluate on the first N clips only (not the FID).")
@click.option("--fid/--no-fid", default=None,
              help="Reconstruction FID with the T2M evaluator (spec 10.2) [default: on, skipped with a note when "
                   "the split has no captions or the evaluator does not fit the data; --fid makes that an error].")
@click.option("--fid-repeats", type=int, default=None,
              help="Passes of the FID protocol, mean ± CI95 [default: 3; the paper protocol uses 20].")
@click.option("--evaluator", "evaluator_dir", type=click.Path(path_type=Path), default=None,
              help="Evaluator folder for the FID [default: the bundled one].")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None,
              help="torch CPU threads (1 is fastest on a shared CPU) [torch default].")
def evaluate_tokenizer(model_dir, dataset, split, json_out, batch_size, max_clips, fid, fid_repeats, evaluator_dir,
                       device, threads) -> None:
    """Reconstruction metrics: MPJPE per quantiser depth, root error, contacts, codebook usage, FID."""
    from .evaluate import FID_REPEATS

    fid_repeats = FID_REPEATS if fid_repeats is None else fid_repeats
    if fid is not False and fid_repeats < 1:
        raise _UsageError(f"--fid-repeats must be >= 1, got {fid_repeats}")
    if threads is not None and threads < 1:
        raise _UsageError(f"--threads must be >= 1, got {threads}")
    try:
        import torch

        from ..evaluation.evaluator import EvaluatorError
        from ..evaluation.protocol import ProtocolError
        from .evaluate import evaluate_tokenizer as run

        if threads:
            torch.set_num_threads(threads)
        metrics = run(model_dir, dataset=dataset, split=split, batch_size=batch_size, device=device,
                      max_clips=max_clips, progress=json_out is None or str(json_out) != "-", fid=fid,
                      fid_repeats=fid_repeats, evaluator=evaluator_dir)
    except _user_errors() + (EvaluatorError, ProtocolError) as exc:
        raise _UsageError(str(exc)) from exc
    text = json.dumps(metrics, indent=1)
    if json_out is not None and str(json_out) == "-":
        click.echo(text)
        return
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(f".{json_out.name}.tmp")
        tmp.write_text(text)
        tmp.replace(json_out)
    click.echo(f"{metrics['split']}: {metrics['clips']} clips, {metrics['frames']} frames")
    click.echo("MPJPE (mm) by quantiser depth: " + ", ".join(f"q{q} {v:.1f}" for q, v in metrics["mpjpe_mm"].items()))
    click.echo(f"root error at 5 s: {metrics['root_error_5s_m']:.3f} m ({metrics['root_clips']} clips); "
               f"foot-contact accuracy {metrics['foot_contact_accuracy']:.3f}")
    for branch, layers in metrics["codebooks"].items():
        click.echo(f"codebook {branch}: usage " + ", ".join(f"{x['usage']:.2f}" for x in layers)
                   + "; perplexity " + ", ".join(f"{x['perplexity']:.0f}" for x in layers))
    if "reconstruction" in metrics:
        for line in _fid_lines(metrics["reconstruction"]):
            click.echo(line)
    elif "fid_skipped" in metrics:
        click.echo(f"reconstruction FID: skipped ({metrics['fid_skipped']}); --fid makes this an error")
    else:
        click.echo("reconstruction FID: not computed (--no-fid)")


@click.group()
def _standalone() -> None:
    """Tokenizer commands (standalone entry point, e.g. under torchrun)."""


_standalone.add_command(train_tokenizer, "train")
_standalone.add_command(evaluate_tokenizer, "evaluate")

if __name__ == "__main__":
    _standalone()
