"""Numbers and pictures of docs/generation.md ("Editing", "Timelines") and docs/results.md ("Editing and
timelines"): seam errors of edits, FlowMDM jerk of timeline transitions against naive concatenation, the wall time
of a 60 s timeline, and three PNG strips.

    python scripts/editing_examples.py [--out outputs/editing_examples] [--timelines 8] [--no-strips]

Everything is seeded; one torch thread (the CPU figures of the docs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

PROMPTS = ["a person walks forward", "a person turns left and waves", "a person jumps up and down",
           "a person stands still", "a person walks backwards", "a person squats down and stands up",
           "a person jogs forward", "a person waves with the right hand", "a person kicks with the left leg",
           "a person turns around"]


def main() -> None:
    """Run the measurements; print and write ``numbers.json`` into ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("outputs/editing_examples"))
    ap.add_argument("--timelines", type=int, default=8)
    ap.add_argument("--no-strips", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    from remomask.data.embedded import resolve_dataset
    from remomask.data.features import joints_from_features
    from remomask.evaluation.jerk import real_jerk, transition_jerk
    from remomask.pipeline import ReMoMaskPipeline
    from remomask.pipeline.editing import load_source

    pipe = ReMoMaskPipeline.from_pretrained()
    numbers: dict = {}

    # 1. edits: error outside the edited range (must be exactly 0)
    errs = []
    for i, (src_id, fr, parts) in enumerate([("000110", (60, 110), None), ("000110", (0, 48), None),
                                              ("000110", (100, None), None), ("000110", (20, 150), "right_arm"),
                                              ("000122", (40, 120), "upper"), ("000122", (40, 120), "legs")]):
        src = load_source(src_id)
        res = pipe.edit(src_id, PROMPTS[i], fr, parts=parts, seed=i)
        a, b = res.frames
        keep = np.r_[0:a, b:len(src)]
        err = float(np.abs(res.joints[keep] - src.joints[keep]).max()) if keep.size else 0.0
        if parts:
            from remomask.pipeline.editing import resolve_parts

            untouched = [j for j in range(22) if j not in resolve_parts(parts)]
            err = max(err, float(np.abs(res.joints[:, untouched] - src.joints[:, untouched]).max()))
        errs.append({"source": src_id, "frames": [a, b], "parts": parts, "max_error_outside_m": err})
    numbers["edits"] = errs

    # 2. timelines vs naive concatenation (FlowMDM PJ / AUJ over 30-frame windows at the seams)
    root = resolve_dataset("embedded", progress=False)
    ids = (root / "test.txt").read_text().split()[:300]
    real = real_jerk(joints_from_features(np.load(root / "new_joint_vecs" / f"{i}.npy")) for i in ids)
    rng = np.random.default_rng(0)
    ours, naive = [], []
    for k in range(args.timelines):
        texts = list(rng.choice(PROMPTS, 4, replace=False))
        secs = [float(s) for s in rng.integers(3, 6, 4)]
        res = pipe.compose(list(zip(texts, secs)), seed=100 + k)
        feats = []
        for i, (t, s) in enumerate(zip(texts, secs)):
            out = pipe(t, seconds=s, seed=100 + k + i)
            feats.append(out.sample(0)[1])
        cat = np.concatenate(feats)
        seams = list(np.cumsum([len(f) for f in feats])[:-1])
        assert seams == res.boundaries, (seams, res.boundaries)
        ours.append(transition_jerk(res.joints, seams, real))
        naive.append(transition_jerk(joints_from_features(cat), seams, real))
    mean = lambda rows, key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    numbers["jerk"] = {"real_mean_jerk": real, "timelines": args.timelines, "seams": 3 * args.timelines,
                       "ours": {k: mean(ours, k) for k in ("peak_jerk", "area_under_jerk")},
                       "naive_concatenation": {k: mean(naive, k) for k in ("peak_jerk", "area_under_jerk")},
                       "ours_lower_auj": int(sum(o["area_under_jerk"] < n["area_under_jerk"]
                                                 for o, n in zip(ours, naive)))}

    # 3. wall time of a 60 s timeline (one thread, CPU)
    t0 = time.perf_counter()
    long = pipe.compose([("a person walks forward", 15), ("a person jogs in a circle", 15),
                         ("a person waves with both hands", 15), ("a person walks backwards", 15)], seed=0)
    numbers["timeline_60s"] = {"frames": len(long), "wall_s": time.perf_counter() - t0,
                               "finite": bool(np.isfinite(long.joints).all())}
    (args.out / "numbers.json").write_text(json.dumps(numbers, indent=1) + "\n")
    print(json.dumps(numbers, indent=1))

    # 4. strips
    if not args.no_strips:
        src = load_source("000110")
        np.save(args.out / "source_walk.npy", src.joints)
        inb = pipe.edit("000110", "a person jumps up and down", (60, 110), seed=0)
        np.save(args.out / "inbetween.npy", inb.joints)
        part = pipe.edit("000110", "a person waves with the right hand", (20, 150), parts="right_arm", seed=1)
        np.save(args.out / "part_edit.npy", part.joints)
        tl = pipe.compose([("a person walks forward", 8), ("a person turns left and waves", 7),
                           ("a person jumps up and down", 7), ("a person walks backwards", 8)], seed=0)
        np.save(args.out / "timeline_30s.npy", tl.joints)
        for name in ("source_walk", "inbetween", "part_edit", "timeline_30s"):
            subprocess.run([sys.executable, "-m", "remomask.cli", "render", str(args.out / f"{name}.npy"), "-o",
                            str(args.out / f"{name}.png")], check=True)


if __name__ == "__main__":
    main()
