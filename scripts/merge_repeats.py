"""Merge the per-repeat values of two ``remomask evaluate t2m --json`` runs of one row (docs/results.md).

Repeat r of the protocol uses seed ``S + r``, so ``--seed S --repeats A`` followed by ``--seed S+A --repeats B``
(or the two side by side on two cores) are repeats 0..A+B-1 of one run. Prints every metric as
``mean ± 1.96·std/√N`` with the population std, as :func:`remomask.evaluation.metrics.summarize`::

    python scripts/merge_repeats.py first.json second.json
    python scripts/merge_repeats.py first.json second.json.progress/row0.json   # a run stopped part-way
    python scripts/merge_repeats.py run.json                                     # one run, with its rare / frequent rows

Each argument is a finished ``--json`` file (its first row) or an interrupted run's ``<json>.progress/row0.json``.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np


def per_repeat(path: str) -> dict:
    """``{metric: [value per repeat]}`` of a results file or a progress file (with the ``pa/rare/*`` and
    ``pa/frequent/*`` rows of a ``--per-action`` run)."""
    doc = json.load(open(path))
    if "per" in doc:
        return doc["per"]
    row = doc["rows"][0]
    values = dict(row["per_repeat"])
    # ``--per-action`` runs keep the rare / frequent rows beside the per-action table: merge those too.
    for key, vals in (row.get("per_action") or {}).get("per_repeat", {}).items():
        if key.startswith(("pa/rare/", "pa/frequent/")):
            values[key] = vals
    return values


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code (2 with one line for a missing or foreign file)."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: merge_repeats.py FIRST.json [SECOND.json ...]", file=sys.stderr)
        return 2
    try:
        parts = [per_repeat(p) for p in paths]
    except (OSError, KeyError, IndexError, ValueError) as exc:
        print(f"error: cannot read per-repeat values: {exc}", file=sys.stderr)
        return 2
    for key in parts[0]:
        vals = [v for part in parts for v in (part.get(key) or []) if v is not None]
        if vals:
            v = np.asarray(vals, dtype=float)
            print(f"{key}: {v.mean():.4f} ± {1.96 * v.std() / math.sqrt(v.size):.4f} (n={v.size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
