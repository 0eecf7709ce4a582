"""Time a full text-to-motion evaluation of the embedded test split on CPU (issue "evaluation suite").

Target: a 20-repeat evaluation with the Real baseline stays under 30 minutes on CPU, so it can be run
routinely. Prints one table: setup (data + evaluator), seconds per repeat, total, and the share spent
in the evaluator versus the loader and the motion source.

    PYTHONPATH=src python benchmarks/bench_evaluation.py [--repeats 20] [--split test] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch


class _Timed:
    """Wraps an evaluator and counts the seconds spent in its calls."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0
        self.name = inner.name
        self.label_names = inner.label_names

    def _timed(self, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        self.seconds += time.perf_counter() - t
        return out

    def text_embeddings(self, batch):
        return self._timed(self.inner.text_embeddings, batch)

    def motion_embeddings(self, motion, lengths):
        return self._timed(self.inner.motion_embeddings, motion, lengths)

    def predict_labels(self, motion, lengths):
        return self._timed(self.inner.predict_labels, motion, lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--split", default="test")
    parser.add_argument("--baseline", choices=("disjoint", "resample"), default="disjoint")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from remomask.data.embedded import resolve_dataset
    from remomask.data.layout import MotionLayout
    from remomask.evaluation.baselines import RealBaseline
    from remomask.evaluation.evaluator import load_evaluator
    from remomask.evaluation.protocol import evaluate_t2m, format_table

    t0 = time.perf_counter()
    layout = MotionLayout(resolve_dataset("embedded"), args.split, progress=False)
    evaluator = _Timed(load_evaluator())
    evaluator.inner.text_model()  # load the sentence encoder now, not inside the first repeat
    setup = time.perf_counter() - t0

    t1 = time.perf_counter()
    result = evaluate_t2m(RealBaseline(layout, args.baseline), args.split, args.repeats, evaluator=evaluator,
                          layout=layout, progress=False)
    total = time.perf_counter() - t1

    print(format_table([result]))
    print()
    print("| step | seconds |")
    print("|---|---|")
    print(f"| setup (dataset split + evaluator) | {setup:.1f} |")
    print(f"| {args.repeats} repeats, total | {total:.1f} |")
    print(f"| per repeat ({result.info['samples_per_repeat']} samples) | {total / args.repeats:.2f} |")
    print(f"| in the evaluator (embeddings, classifiers) | {evaluator.seconds:.1f} |")
    print(f"| loader, baseline, metrics | {total - evaluator.seconds:.1f} |")
    print(f"\ntorch threads {torch.get_num_threads()}; target < 1800 s for 20 repeats: "
          f"{'met' if total * 20 / args.repeats < 1800 else 'NOT met'}")


if __name__ == "__main__":
    main()
