"""What the retriever's false-negative filter removes: label make-up of the caption pairs above a cosine.

Usage: ``python scripts/filter_pairs.py [--split train] [--threshold 0.95]``

Encodes every distinct caption of the split with the frozen sentence encoder the filter uses (MiniLM, docs/design.md
§4.4 / TMR) and, over all pairs of captions belonging to *different* samples, counts how many have cosine
above the threshold (and are therefore dropped from the InfoNCE denominators), split by whether the two
samples share the action and the style label. Then it lists the ``--top`` most frequent pairs of different
actions among the dropped distinct-caption pairs, each with one example caption pair and its cosine.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from remomask.retrieval.encode import load_records
from remomask.text import load_text_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train")
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=6, help="Cross-action pairs to list.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    records, _ = load_records("embedded", args.split)
    rows = [(i, c.text) for i, r in enumerate(records) for c in r.captions]
    texts = sorted({t for _, t in rows})
    enc = load_text_encoder("minilm")
    with torch.no_grad():
        sent = torch.cat([enc.encode(texts[i:i + 256]).sentence for i in range(0, len(texts), 256)])
    sent = torch.nn.functional.normalize(sent.float(), dim=-1)
    tid = {t: k for k, t in enumerate(texts)}
    sample = np.array([i for i, _ in rows])
    cap = np.array([tid[t] for _, t in rows])
    action = np.array([records[i].labels.get("action", "") for i in sample], dtype=object)
    style = np.array([records[i].labels.get("style", "") for i in sample], dtype=object)
    counts = {"same action, same style": 0, "same action, other style": 0, "other action": 0}
    total = 0
    for s in range(0, len(rows), 1024):
        sim = (sent[cap[s:s + 1024]] @ sent[cap].T).numpy()
        other = sample[s:s + 1024, None] != sample[None, :]
        above = (sim > args.threshold) & other
        total += int(other.sum())
        same_a = action[s:s + 1024, None] == action[None, :]
        same_s = style[s:s + 1024, None] == style[None, :]
        counts["same action, same style"] += int((above & same_a & same_s).sum())
        counts["same action, other style"] += int((above & same_a & ~same_s).sum())
        counts["other action"] += int((above & ~same_a).sum())
    dropped = sum(counts.values())
    print(f"{args.split}: {len(records)} samples, {len(rows)} captions ({len(texts)} distinct); "
          f"{dropped:,} of {total:,} cross-sample caption pairs have cosine > {args.threshold} "
          f"({100 * dropped / total:.2f}%)")
    for name, n in counts.items():
        print(f"  {name}: {n:,} ({100 * n / max(dropped, 1):.1f}% of the dropped pairs)")
    actions_of: dict[int, set] = {}
    for (i, _), c in zip(rows, cap):
        actions_of.setdefault(int(c), set()).add(records[i].labels.get("action", ""))
    sim = (sent @ sent.T).numpy()
    pairs, example = Counter(), {}
    for a, b in np.argwhere(np.triu(sim > args.threshold, 1)):
        if not actions_of[a] & actions_of[b]:
            names = tuple(sorted((min(actions_of[a]), min(actions_of[b]))))
            pairs[names] += 1
            example.setdefault(names, (texts[a], texts[b], float(sim[a, b])))
    print("most frequent different-action pairs among the dropped distinct captions:")
    for names, n in pairs.most_common(args.top):
        first, second, cos = example[names]
        print(f"  {names[0]} / {names[1]}: {n:,} caption pairs, e.g. {first!r} vs {second!r} (cosine {cos:.3f})")


if __name__ == "__main__":
    main()
