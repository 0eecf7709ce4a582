"""The dataset card (README.md) of the embedded dataset: sources, licences, counts, captions, hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .labels import CMU_PHRASES, CONTENT_PHRASES, HDM05_PHRASES, IDLE_PHRASES, STYLE_WORDS
from .storage import atomic_path

__all__ = ["write_dataset_card"]


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_dataset_card(root: str | Path, stats: dict, cfg: Any) -> Path:
    """Write ``<root>/README.md`` from the build statistics; returns its path."""
    root = Path(root)
    splits = stats["splits"]
    split_names = [s for s in ("train", "val", "test", "test_unseen", "test_human") if s in splits]
    per_split = stats["labels_per_split"]
    label_rows = [[lab, n] + [per_split.get(s, {}).get(lab, 0) for s in split_names]
                  for lab, n in stats["labels"].items()]
    wording = [[f"`{k}`", v[0]] for k, v in {**CONTENT_PHRASES, **HDM05_PHRASES, **CMU_PHRASES,
                                              **IDLE_PHRASES}.items()]
    style_rows = [[f"`{k}`", ", ".join(a[0] + a[1]) or "(no wording: content only)"]
                  for k, a in STYLE_WORDS.items()]
    text = f"""# remomask embedded dataset (version {stats['version']})

Real motion capture in the HumanML3D layout, built by remomask from the archives in
`shared/data/raw` so that training, retrieval, generation and evaluation work offline.

- **Content hash** (SHA-256 of joints, captions, splits, labels, statistics): `{stats['content_hash']}`
- **Build command:** `remomask data build --raw ../shared/data/raw --out src/remomask/assets/datasets/embedded`
  (workers={cfg.workers}, captions_per_clip={cfg.captions_per_clip}, val={cfg.val_fraction},
  test={cfg.test_fraction}, unseen pairs={cfg.unseen_fraction}, human test={cfg.human_test_fraction},
  idle windows per clip={cfg.idle_windows_per_clip}, sources={', '.join(cfg.sources)})
- **Frames:** 20 fps, 22 joints (HumanML3D/SMPL order), metres, Y up.

## Counts

| | value |
|---|---|
| source clips used | {stats['clips']} (of {stats['raw_clips']} raw; {stats['dropped_short_clips']} under 1 s dropped) |
| segments (with mirrors) | {stats['segments']} ({stats['original_segments']} original + mirrored `M` copies) |
| feature frames | {stats['frames']} ({stats['seconds']} s, {stats['seconds'] / 3600:.2f} h) |
| captions | {stats['captions']} ({', '.join(f'{k}: {v}' for k, v in stats.get('captions_by_source', {}).items())}; mirrored copies included) |
| human-written captions | {stats.get('human_captions_distinct', 0)} distinct (trial, caption) pairs: KIT-ML and HumanML3D captions of CMU trials |
| items by kind (originals) | {', '.join(f'{k}: {v}' for k, v in stats.get('items', {}).items())} |
| sources (original segments) | {', '.join(f'{k}: {v}' for k, v in stats['sources'].items())} |

Segments per split: {', '.join(f'{k} {v}' for k, v in splits.items())}.

### Segments per action label and split

{_table(label_rows, ['label', 'total'] + split_names)}

Style labels (Bandai-Namco segments): {', '.join(f'{k} {v}' for k, v in stats['styles'].items())}.

## Files

- `joints.npz`: joint positions of the original segments, int16 fixed point per clip
  (`remomask.data.storage`; error < 0.1 mm). Mirrored `M<id>` motions are the left-right mirror of
  `<id>` (X negated, left and right joints swapped), computed on load.
- `texts/<id>.txt`: `caption#word/POS ...#0.0#0.0` lines (HumanML3D format), one per paraphrase.
- `train.txt`, `val.txt`, `test.txt`, `test_unseen.txt`, `test_human.txt`, `train_val.txt`, `all.txt`:
  split files (ids include the `M` copies, which always sit in their original's split).
- `labels.json`: per id `source`, `action`, `style` (null outside Bandai-Namco), `clip`, `segment`,
  `start_frame`/`end_frame` (20 fps, in the source clip), `actor` (HDM05 actor, CMU subject, ReActIdle
  person), `mirrored`, `item` (`window`, `hml3d_segment`, `whole_trial`), `trial` (CMU trial id) and
  `caption_sources`: one of `human` / `template` per line of the item's caption file.
- `Mean.npy`, `Std.npy`: (263,) statistics of the train split's features with HumanML3D's
  group-wise std (one std per feature group).
- `stats.json`: the numbers above, machine readable.

Features (263-d) are not stored: `remomask` recomputes them from the joints on first use with
`features_from_joints` and caches them in the HumanML3D layout (`new_joint_vecs/`, `new_joints/`).

## How it was made

1. **Import.** Bandai-Namco BVH (30 fps, cm) and HDM05 ASF/AMC (120 fps) are read with forward
   kinematics, mapped to the 22 HumanML3D joints with an explicit table per skeleton (joints the
   source lacks, such as Bandai's spine2, are interpolated), converted to metres and resampled to
   20 fps (rotation slerp for 30 -> 20 fps, every 6th frame for 120 -> 20 fps).
2. **Segments.** Clips under 1 s are dropped (HumanML3D's minimum is 2 s, but a quarter of the
   Bandai-Namco 2 clips and most HDM05 clips are single actions of 1-2 s); clips over 9.8 s are
   cut into equal segments of 4.9 to 9.8 s. Segments of one clip share its captions and split.
3. **Mirroring.** Every segment has a mirrored `M` copy with left/right swapped in the joints, the
   captions (the words *left*/*right*) and the labels (`wave-left-hand` -> `wave-right-hand`,
   HDM05 `kickLFront1Reps` -> `kickRFront1Reps`, ...).
4. **Splits.** By source clip. `test_unseen` holds every clip of a deterministic ~10% of the
   Bandai (content, style) pairs, closed under mirroring (if `wave-left-hand` x `exhausted` is held
   out, so is `wave-right-hand` x `exhausted`); only pairs whose content and style each occur in at
   least 3 pairs are eligible, so every label is still seen in training. The other Bandai clips are
   stratified per action label (15% test, 5% val by hash order). HDM05 keeps its own split by actor
   (test actors `mm`, `tr`), with val taken per class from the train actors.
5. **Captions.** At least {cfg.captions_per_clip} deterministic paraphrases per clip, each naming the action and (for
   non-normal Bandai styles) the style, as an adverbial ("... wearily"), an adjective ("a weary
   person ...") or a trailing tag ("..., tired"). The wording of each label was written after
   looking at rendered clips; POS tags come from a closed-vocabulary lexicon
   (`remomask.data.labels`).

6. **CMU subsets (dataset v2).** `cmu/manifest.json` lists 190 files of four partial copies of the
   CMU database; one copy per trial is imported (the ASF/AMC original first, then the cgspeed "Daz"
   BVH, then the Reallusion CC BVH), at the manifest's frame rate (some BVH headers are wrong), with
   the copies' leading T-pose frame dropped. Actions come from the CMU index description
   (`remomask.data.labels.cmu_action`; walks, runs and punches join the Bandai labels). Trials are
   cut into windows of at most 9.8 s with template captions. **Human captions** (`caption_sources`
   says which lines are human): a KIT-ML whole-trial caption goes on the window that is the whole
   trial, or, for a longer trial, on one whole-trial item (longer than 9.8 s: the generation
   loaders drop it as HumanML3D's do; the retriever and the tokenizer crop it); a HumanML3D segment
   caption goes on its own segment item (frames `start20..end20`, cut to 9.8 s), or on the window
   that is that segment.
7. **`test_human`.** A third of the CMU trials with human captions (per action, hash order, while
   the action keeps two trials elsewhere) are held out: their human-captioned items form
   `test_human`; their other windows go to `test`. No clip of these trials is in train.
8. **ReActIdle (`idle`).** 22 clips of people standing idle (2-5 min each); {cfg.idle_windows_per_clip} evenly
   spaced 9.8-s windows per clip, split by person (the acted and genuine clip of one person share a
   split).

### Label wording (first phrase of each)

{_table(wording, ['label', 'wording'])}

### Style wording

{_table(style_rows, ['style', 'phrases'])}

## Licences and attribution

This dataset is derived data and keeps its sources' licences:

- **Bandai-Namco-Research-Motiondataset 1 and 2**: (c) 2022 Bandai Namco Research Inc., licensed
  under **CC BY-NC 4.0** (non-commercial use only, attribution required). Kobayashi, Fujiwara et
  al., "Motion Capture Dataset for Practical Use of AI-based Motion Editing and Stylization",
  arXiv 2306.08861, 2023.
- **HDM05**: M. Mueller, T. Roeder, M. Clausen, B. Eberhardt, B. Krueger, A. Weber,
  "Documentation Mocap Database HDM05", Technical report CG-2007-2, Universitaet Bonn, 2007.
  Licensed under **CC BY-SA 3.0** (share alike).

- **CMU Graphics Lab Motion Capture Database**: "The data used in this project was obtained from
  mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217." Free for research
  and for inclusion in products; not to be resold as data, even converted. KIT-ML captions:
  Plappert, Mandery, Asfour, "The KIT Motion-Language Dataset", Big Data 4(4), 2016. HumanML3D
  captions: Guo et al., "Generating Diverse and Natural 3D Human Motions from Text", CVPR 2022 (MIT).
- **ReActIdle**: Atxa Landa, Lazkano, Rodriguez, Rodriguez-Moreno, Irigoien, "Evaluating Idle
  Animation Believability: a User Perspective", arXiv 2509.05023, 2025; **MIT** licence.

Segments from Bandai-Namco may only be used non-commercially; anything redistributed that is
derived from the HDM05 segments must carry CC BY-SA 3.0. The captions, splits and labels files are
part of this derived dataset and carry the same terms.
"""
    path = root / "README.md"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
