"""Print docs/results.md table rows from `remomask evaluate t2m --json` files (no numbers typed by hand).

Usage: ``python scripts/results_rows.py [--repeats] FILE.json [...]``: one Markdown row per scored row, the
columns of docs/design.md §10.2 plus label accuracy, each as mean ± CI95 (``--repeats``: and the row's repeats).
"""

from __future__ import annotations

import json
import sys

COLUMNS = ["top1", "top2", "top3", "fid", "mm_dist", "diversity", "multimodality", "action_acc", "style_acc"]


def cell(metric: dict | None) -> str:
    """``mean±ci`` with three decimals, ``-`` for a missing or NaN metric."""
    if not metric or metric.get("mean") is None or metric["mean"] != metric["mean"]:
        return "-"
    return f"{metric['mean']:.3f}±{metric['ci95']:.3f}".replace("±0.", "±.")


def main() -> None:
    args = sys.argv[1:]
    repeats = "--repeats" in args  # add a last column with the row's repeats
    for path in (a for a in args if a != "--repeats"):
        doc = json.load(open(path))
        for row in doc["rows"]:
            cells = [cell(row["metrics"].get(c)) for c in COLUMNS] + ([str(row["repeats"])] if repeats else [])
            print("| " + row["name"] + " | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
