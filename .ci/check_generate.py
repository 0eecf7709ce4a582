"""Check the outputs of the README's generate command (issue 7, "Fresh-machine check in CI").

Usage: ``python check_generate.py OUT_DIR [--seconds S]``. Reads ``OUT_DIR/result.json`` and every sample it
lists, and fails (exit code 1, one line per problem) unless:

- the joints are (T, 22, 3) float32 metres and the features (T, 263) float32 of the same T, all finite;
- T (frames at 20 fps) lies within the requested duration: ``--seconds`` x 20 frames, less at most the 3
  frames of an incomplete 4-frame token row, when given; else inside the model's 2-9.8 s range (40-196);
- the joints look like a person: pelvis-to-head height 0.3-1.2 m in the first frame, feet near the floor;
- the folder holds exactly result.json and the files it lists: nothing of another run, no hidden partial file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--timeline", action="store_true", help="a `generate --timeline` folder: one motion")
    args = parser.parse_args()
    problems: list[str] = []
    result = json.loads((args.out / "result.json").read_text())
    samples = result.get("samples") or []
    if args.timeline:  # one long motion: its frames are the sum of the segments'
        samples = [{"files": result.get("files", {}), "frames": result.get("frames")}]
        args.seconds = sum(seg["seconds"] for seg in result.get("segments", []))
    if not samples:
        problems.append("result.json lists no samples")
    for i, sample in enumerate(samples):
        files = sample.get("files", {})
        joints = np.load(args.out / files["joints"])
        feats = np.load(args.out / files["features"])
        t = joints.shape[0]
        if joints.shape != (t, 22, 3) or joints.dtype != np.float32:
            problems.append(f"sample {i}: joints {joints.shape} {joints.dtype}, expected (T, 22, 3) float32")
        if feats.shape != (t, 263) or feats.dtype != np.float32:
            problems.append(f"sample {i}: features {feats.shape} {feats.dtype}, expected ({t}, 263) float32")
        if not (np.isfinite(joints).all() and np.isfinite(feats).all()):
            problems.append(f"sample {i}: non-finite values")
        if sample.get("frames") != t:
            problems.append(f"sample {i}: result.json says {sample.get('frames')} frames, the file has {t}")
        if args.timeline:
            lo = hi = int(round(args.seconds * 20))
        elif args.seconds is not None:
            hi = int(round(args.seconds * 20))
            lo = hi - 3  # the token grid has 4 frames a row
        else:
            lo, hi = 40, 196
        if not lo <= t <= hi:
            problems.append(f"sample {i}: {t} frames outside the requested {lo}-{hi}")
        height = joints[0, 15, 1] - joints[0, 0, 1]
        if not 0.3 <= height <= 1.2:
            problems.append(f"sample {i}: pelvis-to-head height {height:.2f} m in frame 0")
        floor = joints[:, [7, 8, 10, 11], 1].min()
        if abs(floor) > 0.15:
            problems.append(f"sample {i}: lowest foot joint at {floor:.2f} m, expected near the floor (0 m)")
        print(f"sample {i}: {t} frames ({t / 20:.2f} s), head height {height:.2f} m, "
              f"files {sorted(files.values())}")
    listed = {name for sample in samples for name in sample.get("files", {}).values()} | {"result.json"}
    present = {p.name for p in args.out.iterdir()}
    if present != listed:
        problems.append(f"the folder holds {sorted(present - listed)} not listed in result.json, and lacks "
                        f"{sorted(listed - present)}")
    for p in problems:
        print("check failed:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
