"""Count over seeds how often generated motions show the action a free prompt asks for (docs/generation.md).

Usage::

    python scripts/action_seeds.py src/remomask/assets/models/default [OTHER_PIPELINE ...] [--seeds 10]

For each pipeline folder, each prompt of :data:`CHECKS` and each of seeds 0..N-1, one motion is generated with
retrieval on and with it off (``use_retrieval=False``), and the kinematic fact of ``scripts/docs_examples.py``
that marks the action is compared with a threshold: a kick when the ankles are more than 0.3 m apart in height, a
squat when the pelvis moves more than 0.3 m up and down, a jump when both feet leave the floor by more than
0.08 m at once (metres, 20 fps). Prints one line per (pipeline, prompt, retrieval): the count and the median.
One strip in docs/generation.md is one seed; these counts are what to trust.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

# name: (prompt, seconds, fact of docs_examples._facts, threshold in metres)
CHECKS = {
    "kick": ("a person kicks with the right leg", 3.0, "ankle_height_difference_max_m", 0.3),
    "squat": ("a person squats down deeply and stands back up", 4.0, "pelvis_height_range_m", 0.3),
    "jump": ("someone jumps up in place", 3.0, "both_feet_off_floor_max_m", 0.08),
}


def _facts_function():
    """``_facts`` of scripts/docs_examples.py (one definition of the kinematic facts)."""
    spec = importlib.util.spec_from_file_location("docs_examples", Path(__file__).with_name("docs_examples.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="Pipeline folders.")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from remomask import ReMoMaskPipeline

    torch.set_num_threads(args.threads)
    facts = _facts_function()
    for path in args.models:
        pipe = ReMoMaskPipeline.from_pretrained(path)
        for name, (prompt, seconds, key, threshold) in CHECKS.items():
            for use_retrieval in (True, False):
                values = [facts(np.asarray(pipe([prompt], seconds=seconds, seed=seed,
                                                use_retrieval=use_retrieval).joints[0]))[key]
                          for seed in range(args.seeds)]
                hits = sum(v > threshold for v in values)
                print(f"{path}  {name}  retrieval {'on ' if use_retrieval else 'off'}  {key} > {threshold}: "
                      f"{hits}/{args.seeds}  median {float(np.median(values)):.2f}", flush=True)


if __name__ == "__main__":
    main()
