"""Render generated examples for ``docs/generation.md`` (issue 5 "Measure", issue 7 "Done when").

Usage::

    python scripts/docs_examples.py --model src/remomask/assets/models/default --out docs/img/generated

For every prompt of :data:`PROMPTS` (seen label combinations from the test split, combinations held out in
``test_unseen``, and free-form sentences) it generates one motion with a fixed seed and duration, then writes
``<name>.png`` (a 6-frame strip), ``<name>.gif`` (a small animation), and one JSON line per prompt in
``examples.jsonl`` with the prompt, seed, frames, the retrieved database entry and simple kinematic facts
(root travel in metres, heading turn in degrees, peak hand heights above the pelvis) that help to describe the motion honestly.
With ``--compare-retrieval`` each prompt is also generated with the retrieval switched off (``use_retrieval``
False at sampling) for a side-by-side look.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# (file name, prompt, seconds, kind); kind: "test" = a (content, style) pair of the train/test splits,
# "unseen" = a pair held out in test_unseen, "free" = wording not produced by the caption templates.
PROMPTS = [
    ("walk_curve_right", "a person walks in a curve to the right.", 6.0, "test"),
    ("wave_left", "someone waves the left hand.", 4.0, "test"),
    ("raise_both_arms", "the person raises both arms up high.", 4.0, "test"),
    ("bow_proud", "a person bows, proud.", 4.0, "test"),
    ("bow_thug", "a human bows with a swaggering street thug attitude.", 4.0, "unseen"),
    ("lift_hands_exhausted", "a man lifts both hands above the head, exhausted.", 4.0, "unseen"),
    ("raise_left_feminine", "someone raises the left arm up high in a feminine way.", 4.0, "unseen"),
    ("jog_masculine", "a person jogs straight ahead with a broad, masculine posture.", 5.0, "unseen"),
    ("wave_left_tired", "a person waves with the left hand, tired", 4.0, "free"),
    ("kick", "a person kicks with the right leg", 3.0, "free"),
    ("squat", "a person squats down deeply and stands back up", 4.0, "free"),
    ("jump", "someone jumps up in place", 3.0, "free"),
    ("dance_salsa", "a person dances salsa", 6.0, "free"),
    ("idle", "a person stands still, waiting and shifting weight", 6.0, "free"),
]


def _facts(joints) -> dict:
    """Kinematic facts of one motion (T, 22, 3) metres, Y up: root travel, hand heights above the pelvis, the
    pelvis's vertical range (a squat lowers it), the highest both feet are off the floor at once (a jump) and
    the highest a foot rises above the other (a kick)."""
    import numpy as np

    root = joints[:, 0]
    travel = float(np.linalg.norm(root[-1, [0, 2]] - root[0, [0, 2]]))
    path = float(np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=1).sum())
    left = float((joints[:, 20, 1] - joints[:, 0, 1]).max())   # left wrist
    right = float((joints[:, 21, 1] - joints[:, 0, 1]).max())  # right wrist
    head = float((joints[:, 15, 1] - joints[:, 0, 1]).min())
    # heading of the root path (every 5th frame, atan2 of x over z): > 0 turns left, < 0 turns right,
    # the sign of the train clips captioned "walks in a curve to the left / right"; only meaningful when the
    # root travels (in place, the small steps point anywhere)
    step = np.diff(root[::5][:, [0, 2]], axis=0)
    heading = np.unwrap(np.arctan2(step[:, 0], step[:, 1])) if len(step) else np.zeros(1)
    turn = float(np.degrees(heading[-1] - heading[0]))
    floor = float(joints[..., 1].min())
    feet = joints[:, [7, 8, 10, 11], 1] - floor                     # ankles and toes of both feet
    both_off = float(np.minimum(feet[:, [0, 2]].min(axis=1), feet[:, [1, 3]].min(axis=1)).max())
    foot_lift = float(np.abs(joints[:, 7, 1] - joints[:, 8, 1]).max())  # ankle height difference
    return {"root_displacement_m": round(travel, 2), "root_path_m": round(path, 2), "heading_turn_deg": round(turn),
            "left_wrist_max_above_pelvis_m": round(left, 2), "right_wrist_max_above_pelvis_m": round(right, 2),
            "head_min_above_pelvis_m": round(head, 2), "pelvis_height_range_m": round(float(np.ptp(root[:, 1])), 2),
            "both_feet_off_floor_max_m": round(both_off, 2), "ankle_height_difference_max_m": round(foot_lift, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Pipeline folder [default: the bundled model].")
    parser.add_argument("--out", type=Path, default=Path("docs/img/generated"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare-retrieval", action="store_true")
    parser.add_argument("--no-gif", action="store_true")
    args = parser.parse_args()

    import torch

    from remomask import ReMoMaskPipeline
    from remomask.render import render_motions, render_strip

    torch.set_num_threads(args.threads)
    pipe = ReMoMaskPipeline.from_pretrained(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, prompt, seconds, kind in PROMPTS:
        variants = [("", True)] + ([("_norag", False)] if args.compare_retrieval else [])
        for suffix, use_r in variants:
            res = pipe([prompt], seconds=seconds, seed=args.seed, use_retrieval=use_r)
            joints, _ = res.sample(0)
            stem = f"{name}{suffix}"
            render_strip(joints, args.out / f"{stem}.png", title=prompt)
            if not args.no_gif:
                render_motions([joints], args.out / f"{stem}.gif", titles=[prompt], frame_stride=2, dpi=50)
            hit = res.retrieved[0][0] if res.retrieved[0] else None
            row = {"name": stem, "prompt": prompt, "kind": kind, "seconds": seconds, "seed": args.seed,
                   "frames": int(res.lengths[0]), "use_retrieval": use_r,
                   "retrieved": None if hit is None else {"caption": hit["caption"], "motion_id": hit["motion_id"],
                                                          "score": round(float(hit["score"]), 3)},
                   **_facts(joints)}
            lines.append(row)
            print(json.dumps(row))
    (args.out / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


if __name__ == "__main__":
    main()
