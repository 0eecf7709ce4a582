"""Numbers and pictures of docs/generation.md ("Editing", "Timelines") and docs/results.md ("Editing and
timelines"): seam errors of edits, FlowMDM jerk of timeline transitions against naive concatenation, the wall time
of a 60 s timeline, and three PNG strips.

    python scripts/editing_examples.py [--out outputs/editing_examples] [--timelines 8] [--no-strips]
    python scripts/editing_examples.py --accuracy [--pairs 32]      # action accuracy inside edits only
    python scripts/editing_examples.py --keyframes [--pairs 32]     # keyframe tolerance only

``--accuracy``: the evaluator's action classifier (``load_evaluator()``, the heads the protocol's ``action_acc``
uses) on (a) real test clips of an action, (b) whole clips generated from one of their captions at their length,
(c) the same captions as edits of the middle of a test ``walk`` clip (the edited range classified on its own,
features recomputed from the output joints), and (d) that range of the source before the edit.
``--keyframes``: keyframe edits (one pose inside a range) and pose-to-pose in-betweens: the error at the
keyframe, the offset the blend absorbs with / without the kept keyframe token, the largest frame-to-frame step.

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
    ap.add_argument("--accuracy", action="store_true", help="only the action accuracy inside edits")
    ap.add_argument("--keyframes", action="store_true", help="only the keyframe measurements")
    ap.add_argument("--pairs", type=int, default=32, help="(source, text) pairs for --accuracy / --keyframes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.accuracy or args.keyframes:
        from remomask.pipeline import ReMoMaskPipeline

        pipe = ReMoMaskPipeline.from_pretrained()
        numbers = {}
        if args.accuracy:
            numbers["edit_action_accuracy"] = action_accuracy(pipe, args.pairs)
        if args.keyframes:
            numbers["keyframes"] = keyframe_numbers(pipe, args.pairs)
        name = "numbers_" + "_".join(k for k in ("accuracy", "keyframes") if getattr(args, k)) + ".json"
        (args.out / name).write_text(json.dumps(numbers, indent=1) + "\n")
        print(json.dumps(numbers, indent=1))
        return
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


SOURCE_ACTION = "walk"
"""Action of the edited test clips (72 test clips of 101-189 frames)."""


def _pairs(n: int):
    """``n`` (source id, target id, caption, L) pairs: sources = ``walk`` test clips of >= 130 frames; targets =
    test clips of other actions the classifier knows (not ``walk*``) with 40 <= length <= 96 frames, taken round
    robin over those actions; L = the target's length rounded down to whole tokens; caption = its first one."""
    from remomask.data.embedded import resolve_dataset
    from remomask.evaluation.evaluator import load_evaluator

    root = resolve_dataset("embedded", progress=False)
    labels = json.loads((root / "labels.json").read_text())
    known = set(load_evaluator().config.classes["action"])
    ids = (root / "test.txt").read_text().split()
    length = {i: int(np.load(root / "new_joint_vecs" / f"{i}.npy", mmap_mode="r").shape[0]) for i in ids}
    sources = [i for i in ids if labels[i]["action"] == SOURCE_ACTION and length[i] >= 130]
    by_action: dict = {}
    for i in ids:
        act = labels[i]["action"]
        if act in known and not act.startswith("walk") and 40 <= length[i] <= 96:
            by_action.setdefault(act, []).append(i)
    rng = np.random.default_rng(0)
    order = {a: list(rng.permutation(v)) for a, v in sorted(by_action.items())}
    targets = []
    while len(targets) < n and any(order.values()):
        for a in sorted(order):
            if order[a] and len(targets) < n:
                targets.append(order[a].pop())
    src_pick = rng.choice(sources, len(targets), replace=len(targets) > len(sources))
    out = []
    for s_id, t_id in zip(src_pick, targets):
        cap = (root / "texts" / f"{t_id}.txt").read_text().splitlines()[0].split("#")[0].strip()
        out.append((str(s_id), str(t_id), cap, length[t_id] // 4 * 4, labels[t_id]["action"]))
    return root, out


def action_accuracy(pipe, n: int) -> dict:
    """Top-1 action accuracy of the evaluator's classifier: real clips, whole-clip generation, edits (module
    docstring). Returns the numbers and the per-pair predictions."""
    from remomask.data.features import features_from_joints, joints_from_features
    from remomask.evaluation.evaluator import load_evaluator
    from remomask.pipeline.editing import load_source

    ev = load_evaluator()
    root, pairs = _pairs(n)

    def predict(feats: np.ndarray) -> str:
        x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))[None]
        return ev.predict_labels(x, torch.tensor([x.shape[1]]))["action"][0]

    def from_joints(j: np.ndarray) -> np.ndarray:           # (L + 1, 22, 3) -> (L, 263)
        return features_from_joints(np.asarray(j, np.float32))

    rows = []
    for k, (s_id, t_id, cap, L, act) in enumerate(pairs):
        src = load_source(s_id)
        a = (len(src) - L) // 2 // 4 * 4
        b = a + L
        real_f = np.load(root / "new_joint_vecs" / f"{t_id}.npy")[:L]
        gen = pipe(cap, frames=L, seed=k)
        gen_j = gen.sample(0)[0]
        res = pipe.edit(s_id, cap, (a, b), seed=k)
        rows.append({"source": s_id, "target": t_id, "caption": cap, "action": act, "frames": [a, b],
                     "real": predict(real_f),
                     "real_from_joints": predict(from_joints(joints_from_features(
                         np.load(root / "new_joint_vecs" / f"{t_id}.npy"))[:L + 1])),
                     "generated": predict(from_joints(np.concatenate([gen_j, gen_j[-1:]]))),
                     "edit": predict(from_joints(res.joints[a:b + 1])),
                     "source_range": predict(from_joints(src.joints[a:b + 1]))})
    acc = lambda key: float(np.mean([r[key] == r["action"] for r in rows]))  # noqa: E731
    return {"pairs": len(rows), "source_action": SOURCE_ACTION,
            "actions": sorted({r["action"] for r in rows}),
            "accuracy": {k: acc(k) for k in ("real", "real_from_joints", "generated", "edit", "source_range")},
            "edit_predicted_source_action": float(np.mean([r["edit"] == SOURCE_ACTION for r in rows])),
            "source_range_predicted_source_action": float(np.mean([r["source_range"] == SOURCE_ACTION
                                                                   for r in rows])),
            "rows": rows}


def keyframe_numbers(pipe, n: int) -> dict:
    """Keyframe edits and pose-to-pose in-betweens (module docstring): errors in metres, steps in m/frame."""
    from remomask.pipeline.editing import edit_motion, load_source
    from remomask.pipeline.keyframes import inbetween

    _, pairs = _pairs(n)
    rows = []
    for k, (s_id, t_id, cap, L, act) in enumerate(pairs):
        src = load_source(s_id)
        tgt = load_source(t_id)
        a = (len(src) - L) // 2 // 4 * 4
        b = a + L
        key = a + L // 2
        pose = tgt.joints[len(tgt) // 2].copy()                    # a pose of the target clip at the source's root
        pose[:, [0, 2]] += src.joints[key, 0, [0, 2]] - pose[0, [0, 2]]
        own = float(np.linalg.norm(np.diff(src.joints, axis=0), axis=-1).max())
        row = {"source": s_id, "target": t_id, "frames": [a, b], "keyframe": key, "source_max_step": own}
        for kt in (True, False):
            res = edit_motion(pipe, s_id, cap, (a, b), seed=k, keyframes={key: pose}, key_tokens=kt)
            tag = "kept_token" if kt else "no_token"
            row[f"{tag}_error"] = float(np.abs(res.joints[key] - pose).max())
            row[f"{tag}_offset"] = res.settings["keyframe_offsets_m"][key]
            row[f"{tag}_finite"] = bool(np.isfinite(res.joints).all())
            row[f"{tag}_max_step"] = float(np.linalg.norm(np.diff(res.joints[a - 1:b + 1], axis=0), axis=-1).max())
        ib = inbetween(pipe, src.joints[a], src.joints[b], cap, L, seed=k)
        row["inbetween_error"] = max(float(np.abs(ib.joints[0] - src.joints[a]).max()),
                                     float(np.abs(ib.joints[-1] - src.joints[b]).max()))
        row["inbetween_max_step"] = float(np.linalg.norm(np.diff(ib.joints, axis=0), axis=-1).max())
        rows.append(row)
    m = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    mx = lambda key: float(np.max([r[key] for r in rows]))  # noqa: E731
    return {"edits": len(rows),
            "keyframe_error_max_m": max(mx("kept_token_error"), mx("no_token_error"), mx("inbetween_error")),
            "offset_absorbed_mean_m": {"kept_token": m("kept_token_offset"), "no_token": m("no_token_offset")},
            "max_step_mean_m": {"kept_token": m("kept_token_max_step"), "no_token": m("no_token_max_step"),
                                "inbetween": m("inbetween_max_step"), "source": m("source_max_step")},
            "all_finite": all(r["kept_token_finite"] and r["no_token_finite"] for r in rows),
            "rows": rows}


if __name__ == "__main__":
    main()
