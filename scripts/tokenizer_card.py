"""Write the metrics of ``remomask evaluate tokenizer --json`` into a tokenizer folder's model card.

Usage::

    python scripts/tokenizer_card.py --model runs/tokenizer_cpu_dual6k/model \\
        --metrics "val (model selection)=val.json" --metrics test=test_fid.json \\
        [--command "remomask train tokenizer ..."] [--train-seconds "..."] [--notes "..."]

Each ``--metrics NAME=JSON`` adds one metrics section (MPJPE per quantiser depth, root error at 5 s,
foot-contact accuracy, codebook usage and perplexity per layer and branch, and the reconstruction FID
when the JSON has one). The weights are not touched; ``config.json``'s card and ``README.md`` are
rewritten atomically. Other card fields (data, iterations, seed, selected step) keep the values that
training wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def card_metrics(result: dict) -> dict[str, str]:
    """Readable card lines from one ``remomask evaluate tokenizer --json`` result."""
    depths = sorted(result["mpjpe_mm"], key=int)
    out = {
        "clips / frames": f"{result['clips']} / {result['frames']}",
        f"MPJPE (mm) by quantiser depth 1..{depths[-1]}": ", ".join(f"{result['mpjpe_mm'][d]:.1f}" for d in depths),
        "root error at 5 s (m)": f"{result['root_error_5s_m']:.3f} ({result['root_clips']} clips of >= 100 frames); "
                                 f"mean over 0-5 s {result['root_ade_5s_m']:.3f}",
        "foot-contact accuracy": f"{result['foot_contact_accuracy']:.3f}",
    }
    for branch in ("2d", "1d"):
        layers = (result.get("codebooks") or {}).get(branch)
        if layers:
            out[f"codebook usage per layer ({branch})"] = ", ".join(f"{x['usage']:.2f}" for x in layers)
            out[f"codebook perplexity per layer ({branch})"] = ", ".join(f"{x['perplexity']:.0f}" for x in layers)
    if result.get("fid"):
        out["reconstruction FID"] = f"{result['fid']['mean']:.3f} ± {result['fid']['ci95']:.3f}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="Tokenizer folder to update.")
    ap.add_argument("--metrics", action="append", default=[], metavar="NAME=JSON",
                    help="A metrics section: its title and the evaluate JSON (repeat).")
    ap.add_argument("--command", action="append", default=None, help="Training command line(s) (repeat).")
    ap.add_argument("--train-seconds", default=None)
    ap.add_argument("--notes", default=None)
    args = ap.parse_args()

    from remomask.tokenizer.model import MotionTokenizer
    from remomask.tokenizer.pretrained import read_config

    model = MotionTokenizer.from_pretrained(args.model)
    _, card = read_config(args.model)
    metrics = {}
    for spec in args.metrics:
        name, sep, path = spec.partition("=")
        if not sep:
            ap.error(f"--metrics takes NAME=JSON, got {spec!r}")
        metrics[name] = card_metrics(json.loads(Path(path).read_text()))
    if metrics:
        card["metrics"] = metrics
    if args.command:
        card["command"] = "\n    ".join(args.command)
    if args.train_seconds:
        card["train_seconds"] = args.train_seconds
    if args.notes:
        card["notes"] = args.notes
    model.save_pretrained(args.model, card=card)
    print(f"updated {args.model / 'README.md'}")


if __name__ == "__main__":
    main()
