"""Plot validation curves of training runs from their TensorBoard logs (docs/results.md "Convergence").

Every ``remomask train ...`` run writes ``<run>/tb/`` with ``val/*`` scalars at each evaluation
(docs/design.md §11). This script reads them with TensorBoard's own event reader and draws one panel per tag,
one line per run, so that a reader sees where a schedule stops improving::

    python scripts/val_curves.py --tag val/ce --tag val/accuracy \\
        --run "tokens form, 4000 it.=runs/mask_conv_tokens" --run "twin, 4000 it.=runs/mask_conv_twin" \\
        --out docs/img/val_curves.png --table

``--table`` also prints a Markdown table (step x run) of the first tag. Exit code 2 with one line when a run
folder has no TensorBoard log or lacks a tag.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def read_scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one scalar tag of a run, sorted by step; the last write wins for a repeated step
    (a resumed run logs the steps after its checkpoint again).

    Raises:
        FileNotFoundError: no ``tb/`` event file under ``run_dir``. KeyError: the log has no such tag.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = run_dir / "tb"
    if not tb.is_dir() or not any(tb.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"{run_dir}: no TensorBoard log in {tb}")
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        raise KeyError(f"{run_dir}: no scalar {tag!r} (has {', '.join(acc.Tags()['scalars'])})")
    by_step: dict[int, float] = {}
    for event in sorted(acc.Scalars(tag), key=lambda e: e.wall_time):
        by_step[int(event.step)] = float(event.value)
    return sorted(by_step.items())


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR (repeatable)")
    ap.add_argument("--tag", action="append", default=None, help="scalar tag (repeatable) [val/ce]")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--table", action="store_true", help="print a Markdown table of the first tag")
    args = ap.parse_args(argv)
    tags = args.tag or ["val/ce"]
    runs = []
    for spec in args.run:
        label, sep, path = spec.partition("=")
        if not sep:
            print(f"error: --run {spec!r}: expected LABEL=RUN_DIR", file=sys.stderr)
            return 2
        runs.append((label, Path(path)))
    try:
        curves = {tag: [(label, read_scalars(path, tag)) for label, path in runs] for tag in tags}
    except (FileNotFoundError, KeyError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tags), figsize=(5.2 * len(tags), 3.6), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        for label, points in curves[tag]:
            ax.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=3, label=label)
        ax.set_xlabel("iteration")
        ax.set_title(tag)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    if args.table:
        tag = tags[0]
        steps = sorted({s for _, pts in curves[tag] for s, _ in pts})
        print(f"| step | " + " | ".join(label for label, _ in curves[tag]) + " |")
        print("|---|" + "---|" * len(curves[tag]))
        for step in steps:
            cells = [f"{dict(pts)[step]:.4f}" if step in dict(pts) else "-" for _, pts in curves[tag]]
            print(f"| {step} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
