"""Print the retriever ablation table of docs/results.md from `remomask evaluate retrieval --json` files.

Usage: ``python scripts/retrieval_rows.py NAME=FILE.json [...]``: one Markdown row per (name, split) with
t2m R@1 / R@5 / R@10, MedR, m2t R@1 and the database action P@1 (the share of top-1 retrieved train
motions with the query's action), for the splits test and test_unseen.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    print("| model | split | t2m R@1 | t2m R@5 | t2m R@10 | t2m MedR | m2t R@1 | DB action P@1 |")
    print("|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        doc = json.load(open(path))
        for split in ("test", "test_unseen"):
            r = doc[split]
            t = r["t2m"]
            print(f"| {name} | {split} | {t['R@1']:.1f} | {t['R@5']:.1f} | {t['R@10']:.1f} | {t['MedR']:g} | "
                  f"{r['m2t']['R@1']:.1f} | {r['database']['action']['P@1']:.1f} |")


if __name__ == "__main__":
    main()
