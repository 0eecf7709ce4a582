"""Captioning metrics and protocol (docs/captioning.md "Metrics"; ``remomask evaluate captioning``).

**Text metrics** (TM2T's captioning protocol): BLEU@1, BLEU@4, ROUGE-L and CIDEr (CIDEr-D as implemented) of
each generated caption against **all captions of its motion in the split**, corpus-level, with the pure-Python
scorers of ``pycocoevalcap`` 1.2 (``pip install remomask[captioning]``). Its Java PTB tokenizer is **not** used;
every sentence is normalised by :func:`normalize_caption` instead: lower case, every character that is not a
letter, digit or space replaced by a space (punctuation stripped; "left-hand" -> "left hand"), whitespace split
and joined by single spaces.

**Motion-side metrics** (TM2T) with our evaluator (docs/design.md §10.1): the generated captions and their
motions are embedded by the evaluator's text and motion encoders; R-precision Top-1 / Top-3 in shuffled
batches of 32 (a split of fewer than 32 motions is one batch) and MM-Dist (mean text-motion distance), as for
text-to-motion (§10.2); plus the share of captions that **name the motion's action**: the caption contains,
as whole words after normalisation, one of the action's phrases from :mod:`remomask.data.labels` (the wording
of the dataset's template captions; left/right swapped for a mirrored clip).

**Real-caption row** (the ceiling): for the motion-side metrics the first real caption of each motion; for the
text metrics the first real caption against the *other* captions of its motion (motions with one caption are
left out of that row's text metrics), so it has one reference fewer than the other rows.

Source: TM2T (Guo et al. 2022) captioning metrics; ReMoGPT's tables; docs/design.md §10.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import RemomaskError

__all__ = ["normalize_caption", "caption_scores", "action_phrases", "names_action", "motion_text_metrics",
           "evaluate_captioning", "CaptioningMetricError", "ROWS"]

ROWS = ("real", "retrieval", "trained", "trained-no-retrieval")
"""Rows of :func:`evaluate_captioning`: real captions, the retrieval baseline, the trained captioner with and
without its retrieval context."""


class CaptioningMetricError(RemomaskError, ValueError):
    """Captions and references that cannot be scored (different counts, no references, missing scorer)."""


_NON_WORD = re.compile(r"[^a-z0-9\s]")


def normalize_caption(text: str) -> str:
    """Lower case, punctuation (anything not a letter, digit or space) replaced by spaces, single spaces.

    ``"A person walks, then waves the left-hand."`` -> ``"a person walks then waves the left hand"``.
    """
    return " ".join(_NON_WORD.sub(" ", str(text).lower()).split())


def caption_scores(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU@1, BLEU@4, ROUGE-L and CIDEr of N captions against their reference sets (module docstring).

    Args:
        candidates: N generated captions.
        references: N lists of reference captions (>= 1 each).

    Returns:
        ``{"bleu1", "bleu4", "rouge_l", "cider"}`` floats (BLEU and ROUGE-L in [0, 1]; CIDEr >= 0, 10 at most).

    Raises:
        CaptioningMetricError: different counts, no candidates, a motion without references, or pycocoevalcap
            missing.

    Source: pycocoevalcap 1.2 scorers (Papineni et al. BLEU, Lin ROUGE-L, Vedantam et al. CIDEr-D), TM2T protocol.
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as exc:
        raise CaptioningMetricError("the captioning metrics need pycocoevalcap: pip install 'remomask[captioning]'"
                                    ) from exc
    if len(candidates) != len(references) or not len(candidates):
        raise CaptioningMetricError(f"{len(candidates)} captions for {len(references)} reference sets; "
                                    "give one non-empty reference set per caption")
    res = {i: [normalize_caption(c) or "empty"] for i, c in enumerate(candidates)}
    gts = {}
    for i, refs in enumerate(references):
        refs = [normalize_caption(r) for r in refs if normalize_caption(r)]
        if not refs:
            raise CaptioningMetricError(f"caption {i} has no reference caption")
        gts[i] = refs
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu1": float(bleu[0]), "bleu4": float(bleu[3]), "rouge_l": float(rouge), "cider": float(cider)}


def action_phrases(labels: Mapping) -> list[str]:
    """Normalised phrases that name a clip's action (``labels``: its ``labels.json`` entry with ``source``,
    ``action``, ``mirrored``); empty for a clip without an action the phrase tables know."""
    from ..data.labels import CMU_PHRASES, CONTENT_PHRASES, HDM05_PHRASES, IDLE_PHRASES, mirror_text

    table = {"hdm05": HDM05_PHRASES, "cmu": CMU_PHRASES, "reactidle": IDLE_PHRASES}.get(labels.get("source"),
                                                                                       CONTENT_PHRASES)
    phrases = table.get(labels.get("action"), ())
    if labels.get("mirrored"):
        phrases = tuple(mirror_text(p) for p in phrases)
    return [normalize_caption(p) for p in phrases]


def names_action(caption: str, labels: Mapping) -> bool:
    """True when the normalised caption contains one of :func:`action_phrases` as whole words."""
    text = f" {normalize_caption(caption)} "
    return any(f" {p} " in text for p in action_phrases(labels))


def motion_text_metrics(evaluator, captions: Sequence[str], features: Sequence[np.ndarray], *, batch: int = 32,
                        seed: int = 0) -> dict[str, float]:
    """R-precision Top-1 / Top-3 and MM-Dist of captions against their motions with the evaluator.

    Args:
        evaluator: :class:`~remomask.evaluation.evaluator.T2MEvaluator`.
        captions: N captions. features: N de-normalised arrays (T_i, 263), T_i >= 4 (the first
            ``evaluator.config.max_frames`` are used).
        batch: R-precision pool size (32; the whole set when N < 32). seed: the shuffle of the pools.

    Returns:
        ``{"r_top1", "r_top3", "mm_dist"}``.

    Raises:
        CaptioningMetricError: counts differ or fewer than 3 motions.

    Source: TM2T / Guo et al. motion-side captioning metrics; docs/design.md §10.2.
    """
    import torch

    from .metrics import matching_distance, r_precision

    if len(captions) != len(features) or len(captions) < 3:
        raise CaptioningMetricError(f"need as many captions as motions (>= 3), got {len(captions)} and "
                                    f"{len(features)}")
    cap = evaluator.config.max_frames
    t_emb, m_emb = [], []
    with torch.no_grad():
        for s in range(0, len(captions), 64):
            f = [np.asarray(x[:cap], dtype=np.float32) for x in features[s: s + 64]]
            lens = [len(x) for x in f]
            x = torch.zeros(len(f), max(cap, max(lens)), f[0].shape[1])
            for i, a in enumerate(f):
                x[i, : len(a)] = torch.from_numpy(a)
            m_emb.append(evaluator.encode_motion(x, lens).cpu().numpy())
            t_emb.append(evaluator.encode_text(list(captions[s: s + 64])).cpu().numpy())
    t, m = np.concatenate(t_emb), np.concatenate(m_emb)
    order = np.random.default_rng(seed).permutation(len(t))
    size = batch if len(t) >= batch else len(t)
    pools = [order[s: s + size] for s in range(0, len(order) - size + 1, size)]
    r = np.mean([r_precision(t[p], m[p], 3) for p in pools], axis=0)
    return {"r_top1": float(r[0]), "r_top3": float(r[2]), "mm_dist": matching_distance(t, m)}


def evaluate_captioning(split: str, captioners: Mapping[str, Callable[[list[np.ndarray]], list[str]]], *,
                        dataset: str = "embedded", evaluator=None, max_clips: int | None = None,
                        seed: int = 0) -> dict:
    """Score captioners (and the real captions) on one split (module docstring).

    Args:
        split: ``test``, ``test_unseen``, ``test_human``, ``val``, ...
        captioners: ``{row name: fn(features list) -> captions list}``; the ``"real"`` row is added here.
        dataset: ``"embedded"`` or a HumanML3D-layout folder. evaluator: a loaded evaluator (None = bundled).
        max_clips: the first N clips only. seed: R-precision pools.

    Returns:
        ``{"split", "clips", "rows": {name: {bleu1, bleu4, rouge_l, cider, r_top1, r_top3, mm_dist,
        action_named, seconds}}, "examples": [...]}``.

    Raises:
        CaptioningMetricError: an empty split. The errors of the captioners and metrics.
    """
    import time

    from ..retrieval.encode import load_records
    from .evaluator import load_evaluator

    records, _ = load_records(dataset, split)
    records = [r for r in records if r.length >= 4][: max_clips or None]
    if len(records) < 3:
        raise CaptioningMetricError(f"split {split!r} has {len(records)} captioned clips; at least 3 are needed")
    evaluator = evaluator if evaluator is not None else load_evaluator()
    feats = [np.asarray(r.motion, dtype=np.float32) for r in records]
    refs = [[c.text for c in r.captions] for r in records]
    labels = [dict(r.labels) for r in records]
    rows: dict[str, dict] = {}
    outputs: dict[str, list[str]] = {"real": [x[0] for x in refs]}
    multi = [i for i, x in enumerate(refs) if len(x) > 1]
    text = caption_scores([refs[i][0] for i in multi], [refs[i][1:] for i in multi]) if multi else {}
    rows["real"] = {**text, "text_clips": len(multi), "seconds": 0.0}
    for name, fn in captioners.items():
        t0 = time.perf_counter()
        outputs[name] = list(fn(feats))
        rows[name] = {**caption_scores(outputs[name], refs), "text_clips": len(refs),
                      "seconds": round(time.perf_counter() - t0, 2)}
    for name, caps in outputs.items():
        rows[name].update(motion_text_metrics(evaluator, caps, feats, seed=seed))
        named = [names_action(c, lab) for c, lab in zip(caps, labels) if action_phrases(lab)]
        rows[name]["action_named"] = float(np.mean(named)) if named else float("nan")
    picked = list(range(0, len(records), max(1, len(records) // 8)))[:8]
    examples = [{"id": records[i].key, "action": records[i].labels.get("action"),
                 **{n: outputs[n][i] for n in outputs}} for i in picked]
    return {"split": split, "dataset": dataset, "clips": len(records), "rows": rows, "examples": examples}
