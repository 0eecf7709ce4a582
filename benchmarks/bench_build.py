"""Wall time of building the whole embedded dataset (issue: data; target <= 5 minutes on 2 cores).

Usage: python benchmarks/bench_build.py [--raw ../shared/data/raw] [--workers 2]

Builds into a temporary folder (the committed dataset is not touched) and prints a table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/raw")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from remomask.data.build import BuildConfig, build_embedded_dataset

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        stats = build_embedded_dataset(BuildConfig(raw=args.raw, out=Path(tmp), workers=args.workers),
                                       progress=False)
        seconds = time.perf_counter() - start
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'workers':>7} {'clips':>6} {'segments':>8} {'frames':>8} {'seconds':>8}")
    print(f"{args.workers:>7} {stats['clips']:>6} {stats['segments']:>8} {stats['frames']:>8} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
