"""The text-to-motion evaluation protocol with pluggable motion sources (docs/design.md §10.2).

One repeat ``r`` of :func:`evaluate_t2m`:

1. The evaluation loader of the split (docs/design.md §2.4: 40 <= T < 200, caption / coin / crop drawn from
   ``default_rng([seed + r, i])``) is shuffled with seed ``seed + r`` and cut into batches of 32, the last
   partial batch dropped. Motions stay de-normalised: each evaluator normalises with its own statistics.
2. For every batch the motion source is asked for motions of the batch's captions at the ground-truth
   lengths (several consecutive batches in one call when the source has a ``request_size``, below);
   torch's RNG is seeded with ``seed + r`` first, so sampling generators are reproducible.
3. The evaluator embeds the texts, the ground-truth motions and the produced motions. Per batch:
   R-precision top-1/2/3 and MM-Dist; over the whole pass: FID (ground truth vs produced), Diversity
   (300 pairs), label accuracy of the produced motions against the prompts' labels (when the evaluator
   has classifiers), and MModality for stochastic sources (the first 3 batches generated 30 times).

Every metric is reported over ``repeats`` passes (20) as ``{mean, ci95 = 1.96 std / sqrt(N)}``. The
ground-truth pairs give the reference numbers (R-precision, MM-Dist, Diversity of the real test data) in
the same pass. :func:`evaluate_reconstruction` runs the same loop for a tokenizer (reconstruction FID).

A **motion source** is ``source(captions, lengths, labels) -> features`` or ``-> (features, lengths)``:

- ``captions``: B strings; ``lengths``: LongTensor (B,) frames at 20 fps (multiples of 4, 40..196);
- ``labels``: B dicts with the prompt clip's labels from ``labels.json`` (possibly empty) plus its
  ``"key"`` and ``"motion_id"``; generators must ignore them (they exist for the baselines);
- features: (B, T, 263) **de-normalised** (docs/design.md §15.3), T >= the lengths; returned lengths (B,) may be
  shorter than the requested ones (a retrieved motion that is too short), never longer.

Optional attributes: ``name`` (row name), ``stochastic`` (True enables MModality), ``set_seed(seed)``
(called at the start of every repeat) and ``request_size`` (int, prompts per call; default one batch of 32).
A larger ``request_size`` lets the protocol ask for several consecutive batches of the pass (and the
MModality repetitions of a batch) in one call, in order, so a generator can group the prompts of the whole
pass by length instead of padding 32 at a time; what is scored is the same, only the random numbers each
motion draws differ.

**Resuming.** A long run (a generator on a CPU: hours for 20 repeats of a full split) can keep its
per-repeat values in a ``progress_file``; running the same evaluation again continues after the last
finished repeat and gives the same numbers as an uninterrupted run, because repeat ``r`` depends only on
``seed + r``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from . import metrics as M
from .mpjpe import mpjpe_mm
from ..errors import RemomaskError
from ..files import atomic_write_text

_STATE_FORMAT = "remomask-evaluation-progress-v1"

__all__ = [
    "MotionSource",
    "Embedder",
    "ProtocolError",
    "T2MResult",
    "evaluate_t2m",
    "evaluate_reconstruction",
    "format_table",
    "results_to_json",
    "write_json",
    "json_safe",
    "resolve_evaluator",
    "load_split_layout",
    "PerActionSpec",
    "per_action_spec",
    "format_per_action",
    "RARE_SEGMENTS",
    "DEFAULT_SEED",
    "DEFAULT_REPEATS",
]

DEFAULT_SEED = 10107
"""Seed of the reference protocol (``fixseed(10107)``, docs/design.md §10.2)."""
DEFAULT_REPEATS = 20
"""Full passes over the split (docs/design.md §10.2)."""


class ProtocolError(RemomaskError, ValueError):
    """The protocol cannot run with the given source, evaluator or data (the message gives the fix)."""


@runtime_checkable
class MotionSource(Protocol):
    """What the protocol evaluates: prompts -> de-normalised motions (see the module docstring)."""

    def __call__(self, captions: list[str], lengths: torch.Tensor, labels: list[dict]):
        ...


class Embedder(Protocol):
    """An evaluator: :class:`~remomask.evaluation.evaluator.T2MEvaluator` or the official one.

    ``text_embeddings(batch)`` reads what it needs from the loader batch (``caption`` or ``tokens`` /
    ``sent_len``) and returns (B, E); ``motion_embeddings(features, lengths)`` takes de-normalised
    (B, T, D) features and (B,) lengths and returns (B, E). Optional: ``label_names`` and
    ``predict_labels(features, lengths) -> {label: [B class names]}``.
    """

    name: str

    def text_embeddings(self, batch: Mapping) -> torch.Tensor:
        ...

    def motion_embeddings(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        ...


@dataclass
class T2MResult:
    """Scores of one motion source on one split.

    Attributes:
        name: row name. split, repeats, seed: the protocol's settings.
        metrics: ``{metric: {"mean", "ci95", "std", "n"}}`` for the produced motions: ``top1``, ``top2``,
            ``top3``, ``fid``, ``mm_dist``, ``diversity``, ``multimodality`` (NaN for deterministic
            sources), ``<label>_acc`` per classifier.
        reference: the same statistics for the ground-truth pairs of the pass (``top1..3``, ``mm_dist``,
            ``diversity``, ``<label>_acc``).
        per_repeat: raw per-repeat values of every metric (both dicts, ``gt_`` prefix for the reference).
        per_action: with ``per_action=True`` (:func:`evaluate_t2m`): ``{"actions": {action: row}, "rare":
            row, "frequent": row, "threshold": int, ...}``, each row with ``train_segments``, ``rare``,
            ``known`` (the evaluator's action classifier has the class), ``split_samples``, ``evaluated``
            (mean samples per repeat) and ``{mean, ci95}`` of ``acc``, ``top1``, ``top3``, ``gt_acc``,
            ``gt_top1``, ``gt_top3`` (:func:`format_per_action`).
        info: evaluator, dataset, samples per repeat, seconds, the source's ``fallbacks`` counters
            (:class:`RealBaseline`, :class:`RetrievalBaseline`; summed over all repeats) and its
            ``provenance`` dict when it has one (the retrieval-only baseline: retriever, database, counters).
    """

    name: str
    split: str
    repeats: int
    seed: int
    metrics: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    per_repeat: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    per_action: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict; NaN becomes None. ``per_action`` is included when it was computed."""
        out = {"name": self.name, "split": self.split, "repeats": self.repeats, "seed": self.seed,
               "metrics": {k: {"mean": v["mean"], "ci95": v["ci95"]} for k, v in self.metrics.items()},
               "reference": {k: {"mean": v["mean"], "ci95": v["ci95"]} for k, v in self.reference.items()},
               "per_repeat": self.per_repeat, "info": self.info}
        if self.per_action:
            out["per_action"] = self.per_action
        return json_safe(out)


def json_safe(x):
    """``x`` with every non-finite float as None and numpy scalars as Python numbers, recursively (dicts,
    lists, tuples), ready for strict JSON (the results files of docs/design.md).

    Args:
        x: a JSON-like value (metric dicts, per-repeat lists).

    Returns:
        The cleaned copy (tuples become lists).
    """
    if isinstance(x, float):
        return None if not math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return json_safe(x.item())
    return x


def _call_source(source, captions, lengths, labels, dim):
    out = source(list(captions), lengths.clone(), labels)
    gen_len = lengths
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ProtocolError("a motion source returns features or (features, lengths)")
        out, gen_len = out
        gen_len = torch.as_tensor(gen_len, dtype=torch.long).reshape(-1)
        if gen_len.shape != lengths.shape or (gen_len > lengths).any() or (gen_len < 4).any():
            raise ProtocolError(f"the motion source returned lengths {gen_len.tolist()[:8]}...; they must be "
                                "between 4 and the requested lengths")
    if not isinstance(out, torch.Tensor) or out.ndim != 3 or out.shape[0] != len(captions) or out.shape[2] != dim:
        raise ProtocolError(f"the motion source returned {getattr(out, 'shape', type(out).__name__)}; expected "
                            f"a tensor ({len(captions)}, T, {dim}) of de-normalised features")
    if out.shape[1] < int(gen_len.max()):
        raise ProtocolError(f"the motion source returned {out.shape[1]} frames for lengths up to {int(gen_len.max())}")
    if not torch.isfinite(out).all():
        raise ProtocolError("the motion source returned NaN or inf features")
    return out.float(), gen_len


def _labels(batch: Mapping) -> list[dict]:
    return [{**dict(lab), "key": key, "motion_id": mid}
            for lab, key, mid in zip(batch["labels"], batch["key"], batch["motion_id"])]


def resolve_evaluator(evaluator):
    """The evaluator object the protocol scores with (arXiv 2508.02605, experiments: the T2M evaluator).

    Args:
        evaluator: None (the evaluator shipped with remomask), an evaluator folder, or an object with
            ``text_embeddings`` and ``motion_embeddings`` methods (returned as it is).

    Returns:
        The evaluator.

    Raises:
        ProtocolError: an object without those methods. EvaluatorError: a folder that cannot be loaded.
    """
    if evaluator is None or isinstance(evaluator, (str, os.PathLike)):
        from .evaluator import load_evaluator

        return load_evaluator(evaluator)
    for attr in ("text_embeddings", "motion_embeddings"):
        if not callable(getattr(evaluator, attr, None)):
            raise ProtocolError(f"the evaluator has no {attr}() method; pass a T2MEvaluator, an "
                                "OfficialT2MEvaluator or a folder written by `remomask train evaluator`")
    return evaluator


def load_split_layout(dataset, split: str, layout=None):
    """The :class:`~remomask.data.layout.MotionLayout` of ``split`` with the protocol's filters (captioned
    clips of 40-199 frames, arXiv 2508.02605 experiments / HumanML3D protocol), or ``layout`` when given.

    Args:
        dataset: ``"embedded"`` (None = the same) or a HumanML3D-layout folder. split: split name.
        layout: a ready layout to use instead (returned as it is).

    Returns:
        The layout.

    Raises:
        DatasetError: the dataset or the split cannot be read.
    """
    if layout is not None:
        return layout
    from ..data.embedded import resolve_dataset
    from ..data.layout import MotionLayout

    return MotionLayout(resolve_dataset(dataset, progress=False), split, progress=False)


_layout = load_split_layout
"""Former name of :func:`load_split_layout` (tests and benchmarks import it)."""


def _loader_dataset(layout, short_clips: str = "drop"):
    from ..data.datasets import EvalTextMotionDataset

    dim = layout.skeleton.feature_dim
    return EvalTextMotionDataset(layout, mean=np.zeros(dim, np.float32), std=np.ones(dim, np.float32),
                                 short_clips=short_clips)


RARE_SEGMENTS = 100
"""An action is *rare* when the train split has fewer segments of it than this (docs/data.md)."""


@dataclass
class PerActionSpec:
    """What the per-action and rare-motion metrics need besides the scored pairs (docs/data.md "Every
    action learned"; ReMoGPT's rare-motion protocol).

    Attributes:
        train_counts: ``{action: train segments}`` (no length filter).
        split_counts: ``{action: samples of the evaluated split}`` with no length filter, so that actions the
            protocol's 40-199-frame filter leaves out are still listed.
        evaluable_counts: ``{action: samples of the evaluated layout}`` (after its length filter): what the
            protocol can draw; fewer with ``max_batches``.
        known: the classes of the evaluator's action classifier (None: it has none).
        rareness: ``{caption: 1 - max cosine similarity to the train captions}`` for every caption of the
            evaluated split (frozen MiniLM sentence embeddings).
        low, high: rareness range over the split's captions (the Balanced MM-Dist bins).
        threshold: rare = fewer than this many train segments (:data:`RARE_SEGMENTS`).
        label: the label name (``action``).
    """

    train_counts: dict
    split_counts: dict
    evaluable_counts: dict
    known: list | None
    rareness: dict
    low: float
    high: float
    threshold: int = RARE_SEGMENTS
    label: str = "action"

    @property
    def actions(self) -> list[str]:
        """Every action of the train and evaluated splits, sorted."""
        return sorted({str(a) for a in (*self.train_counts, *self.split_counts) if a is not None})


def per_action_spec(layout, evaluator=None, *, train_split: str = "train", threshold: int = RARE_SEGMENTS,
                    text_encoder=None, label: str = "action") -> PerActionSpec:
    """Build the :class:`PerActionSpec` of an evaluated split.

    Args:
        layout: the evaluated split's :class:`~remomask.data.layout.MotionLayout` (its root is read again
            without length filters for the train split and the full evaluated split).
        evaluator: the protocol's evaluator (its ``config.classes[label]`` are the known actions).
        train_split: the split whose captions and segment counts define rareness.
        threshold: rare-action threshold in train segments.
        text_encoder: a frozen :class:`~remomask.text.TextEncoder` (None = the bundled MiniLM, as ReMoGPT's
            sentence encoder).

    Raises:
        DatasetError: the splits cannot be read. ProtocolError: ``threshold < 1``.
    """
    from collections import Counter

    from ..data.layout import MotionLayout

    if threshold < 1:
        raise ProtocolError(f"the rare-action threshold must be >= 1 train segment, got {threshold}")
    train = MotionLayout(layout.root, train_split, min_length=0, max_length=None, progress=False)
    full = MotionLayout(layout.root, layout.split, min_length=0, max_length=None, progress=False)
    train_counts = dict(Counter(r.labels.get(label) for r in train))
    split_counts = dict(Counter(r.labels.get(label) for r in full))
    evaluable = dict(Counter(r.labels.get(label) for r in layout if r.captions))
    classes = getattr(getattr(evaluator, "config", None), "classes", None) or {}
    known = list(classes[label]) if label in classes else None
    if text_encoder is None:
        from ..text import load_text_encoder

        text_encoder = load_text_encoder("minilm")
    prompts = sorted({c.text for r in full for c in r.captions})
    corpus = sorted({c.text for r in train for c in r.captions})
    with torch.no_grad():
        p_emb = text_encoder.encode(prompts).sentence.float().cpu().numpy()
        t_emb = text_encoder.encode(corpus).sentence.float().cpu().numpy()
    rare = np.clip(M.rareness(p_emb, t_emb), 0.0, 2.0)   # float32 rounding can give -1e-7 for a train caption

    def names(counts):
        return {str(k) if k is not None else None: v for k, v in counts.items()}

    return PerActionSpec(names(train_counts), names(split_counts), names(evaluable), known,
                         dict(zip(prompts, rare.tolist())), float(rare.min()), float(rare.max()), threshold, label)


_PA_FIELDS = ("n", "acc", "top1", "top3", "gt_acc", "gt_top1", "gt_top3")


def _per_action_values(spec: PerActionSpec, rows: dict, add: Callable, rng: np.random.Generator) -> None:
    """Add one repeat's per-action (``pa/<action>/<field>``, ``pa/rare/...``, ``pa/frequent/...``) and
    rare-motion (``rare5_mm_dist``, ``rare5_diversity``, ``balanced_mm_dist`` and ``gt_`` twins) values."""
    actions = np.asarray(rows["action"], dtype=object)
    known = set(spec.known) if spec.known is not None else set()
    rare_set = {a for a in spec.actions if spec.train_counts.get(a, 0) < spec.threshold}
    groups = {a: actions == a for a in spec.actions}
    groups["rare"] = np.array([a in rare_set for a in actions], dtype=bool)
    groups["frequent"] = np.array([a is not None and a not in rare_set for a in actions], dtype=bool)
    pred = np.asarray(rows["pred"], dtype=object)
    gt_pred = np.asarray(rows["gt_pred"], dtype=object)
    hits, gt_hits = np.asarray(rows["hits"], dtype=bool), np.asarray(rows["gt_hits"], dtype=bool)
    for name, sel in groups.items():
        n = int(sel.sum())
        scored = sel & np.array([a in known for a in actions], dtype=bool) if spec.known is not None else sel & False
        values = {"n": float(n),
                  "acc": float((pred[scored] == actions[scored]).mean()) if scored.any() else float("nan"),
                  "gt_acc": float((gt_pred[scored] == actions[scored]).mean()) if scored.any() else float("nan"),
                  "top1": float(hits[sel, 0].mean()) if n else float("nan"),
                  "top3": float(hits[sel, 2].mean()) if n else float("nan"),
                  "gt_top1": float(gt_hits[sel, 0].mean()) if n else float("nan"),
                  "gt_top3": float(gt_hits[sel, 2].mean()) if n else float("nan")}
        for f in _PA_FIELDS:
            add(f"pa/{name}/{f}", values[f])
    rare = np.array([spec.rareness.get(c, float("nan")) for c in rows["caption"]], dtype=np.float64)
    ok = np.isfinite(rare)
    for prefix, dist, emb in (("", rows["dist"], rows["emb"]), ("gt_", rows["gt_dist"], rows["gt_emb"])):
        dist, emb = np.asarray(dist)[ok], np.asarray(emb)[ok]
        top = M.rarest(rare[ok]) if ok.sum() >= 2 else np.zeros(0, dtype=np.int64)
        add(f"{prefix}rare5_mm_dist", float(dist[top].mean()) if len(top) else float("nan"))
        add(f"{prefix}rare5_diversity", M.diversity(emb[top], len(top), rng) if len(top) >= 2 else float("nan"))
        add(f"{prefix}balanced_mm_dist", M.balanced_matching_distance(dist, rare[ok], spec.low, spec.high))


def _load_state(path: Path, key: dict) -> tuple[dict[str, list[float]], list]:
    """Per-repeat values and wall seconds saved by an interrupted run with the same settings ``key``, or
    ``({}, [])`` when none (files written before the seconds were kept give ``[]``)."""
    if not path.is_file():
        return {}, []
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"cannot read the partial evaluation {path} ({exc}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT or not isinstance(state.get("per"), dict):
        raise ProtocolError(f"{path} is not a remomask partial evaluation; delete it to start over")
    if state.get("key") != json_safe(key):
        raise ProtocolError(f"{path} holds a run with other settings ({state.get('key')}); delete it or write "
                            "the results to another --json file")
    seconds = state.get("seconds") if isinstance(state.get("seconds"), list) else []
    return {k: [float(v) for v in vals] for k, vals in state["per"].items()}, seconds


def _save_state(path: Path, key: dict, per: dict, seconds: list) -> None:
    state = {"format": _STATE_FORMAT, "key": json_safe(key), "per": per, "seconds": seconds}
    atomic_write_text(path, json.dumps(state))


def _in_requests(produce: Callable, batches, request_size: int | None):
    """Yield ``(batch, (features, lengths))`` for the loader ``batches`` in order, calling ``produce`` on
    consecutive runs of at most ``request_size`` prompts (at least one batch a call; None = one batch).
    Only one request's batches are held in memory at a time."""
    group, n = [], 0
    for batch in batches:
        size = len(batch["length"])
        if group and (request_size is None or n + size > request_size):
            yield from zip(group, produce(group))
            group, n = [], 0
        group.append(batch)
        n += size
    if group:
        yield from zip(group, produce(group))


def _run(produce: Callable, layout, *, evaluator, repeats: int, seed: int, batch_size: int, progress: bool,
         multimodality: bool = False, mm_batches: int = 3, mm_repeats: int = 30, set_seed=None,
         desc: str = "evaluate",
         extra: Callable | None = None, max_batches: int | None = None, request_size: int | None = None,
         state_path: str | os.PathLike | None = None, state_key: dict | None = None,
         per_action: PerActionSpec | None = None, short_clips: str = "drop"):
    """The loop shared by :func:`evaluate_t2m` and :func:`evaluate_reconstruction`.

    With ``state_path`` the per-repeat values are saved there (atomically) after every repeat, and a run
    with the same ``state_key`` resumes after the last saved repeat. Repeat ``r`` depends only on
    ``seed + r`` (data order, crops, sampling), so a resumed run gives the same numbers as an uninterrupted
    one. ``produce`` takes a list of loader batches and returns one ``(features, lengths)`` per batch;
    ``request_size`` (prompts, None = one batch) bounds how many consecutive batches one call gets
    (:func:`_in_requests`); ``multimodality`` generates the first ``mm_batches`` batches ``mm_repeats`` more
    times with ``produce``. Returns
    ``(per, samples, resumed, seconds)``: ``seconds`` holds the wall time of every repeat, resumed ones
    included (None where an older progress file did not keep it).
    """
    from tqdm.auto import tqdm
    from torch.utils.data import DataLoader

    from ..data.datasets import collate

    ds = _loader_dataset(layout, short_clips)
    if len(ds) < batch_size:
        raise ProtocolError(f"split {layout.split!r} has {len(ds)} samples, fewer than one batch of {batch_size}; "
                            f"score it with a smaller R-precision pool (batch_size, `--batch-size {len(ds)}`)")
    classify = callable(getattr(evaluator, "predict_labels", None)) and bool(getattr(evaluator, "label_names", []))
    label_names = list(evaluator.label_names) if classify else []
    state_path = Path(state_path) if state_path is not None else None
    per, seconds = _load_state(state_path, state_key or {}) if state_path else ({}, [])
    done = min((len(v) for v in per.values()), default=0)
    seconds = (list(seconds) + [None] * done)[:done]  # None: a repeat whose time was not kept
    if done > repeats:
        raise ProtocolError(f"{state_path} already holds {done} repeats, more than the {repeats} asked for; "
                            "delete it or ask for at least that many repeats")
    per = {k: v[:done] for k, v in per.items()}

    def add(key, value):
        per.setdefault(key, []).append(float(value))

    for r in tqdm(range(done, repeats), desc=desc, disable=not progress, unit="repeat", initial=done,
                  total=repeats):
        started = time.time()
        rseed = seed + r
        ds.seed = rseed
        torch.manual_seed(rseed)
        if set_seed is not None:
            set_seed(rseed)
        rng = np.random.default_rng([seed, r])
        loader = DataLoader(ds, batch_size, shuffle=True, drop_last=True, collate_fn=collate,
                            generator=torch.Generator().manual_seed(rseed))
        gt_all, gen_all, tops, gt_tops, dists, gt_dists, mm = [], [], [], [], [], [], []
        hits = {n: [] for n in label_names}
        gt_hits = {n: [] for n in label_names}
        extras: list[dict] = []
        rows = {k: [] for k in ("action", "caption", "pred", "gt_pred", "hits", "gt_hits", "dist", "gt_dist",
                                "emb", "gt_emb")}
        limit = len(loader) if max_batches is None else min(max_batches, len(loader))
        with torch.no_grad():
            for b, (batch, (gen, gen_len)) in enumerate(_in_requests(produce, islice(loader, limit), request_size)):
                lengths = batch["length"]
                text = evaluator.text_embeddings(batch).float().cpu()
                gt = evaluator.motion_embeddings(batch["motion"], lengths).float().cpu()
                em = evaluator.motion_embeddings(gen, gen_len).float().cpu()
                gt_all.append(gt)
                gen_all.append(em)
                tops.append(M.r_precision(text, em))
                gt_tops.append(M.r_precision(text, gt))
                dists.append(M.matching_distance(text, em))
                gt_dists.append(M.matching_distance(text, gt))
                if classify:
                    pred = evaluator.predict_labels(gen, gen_len)
                    gt_pred = evaluator.predict_labels(batch["motion"], lengths)
                    for n in label_names:
                        target = [lab.get(n) for lab in batch["labels"]]
                        hits[n].append(M.label_accuracy(pred[n], target))
                        gt_hits[n].append(M.label_accuracy(gt_pred[n], target))
                if per_action is not None:
                    lab = per_action.label
                    rows["action"] += [None if x.get(lab) is None else str(x.get(lab)) for x in batch["labels"]]
                    rows["caption"] += list(batch["caption"])
                    none = [None] * len(lengths)
                    rows["pred"] += list(pred[lab]) if classify and lab in label_names else none
                    rows["gt_pred"] += list(gt_pred[lab]) if classify and lab in label_names else none
                    rows["hits"] += list(M.r_precision_hits(text, em))
                    rows["gt_hits"] += list(M.r_precision_hits(text, gt))
                    rows["dist"] += list(M.matching_distances(text, em))
                    rows["gt_dist"] += list(M.matching_distances(text, gt))
                    rows["emb"] += list(em.numpy())
                    rows["gt_emb"] += list(gt.numpy())
                if extra is not None:
                    extras.append(extra(batch, gen, gen_len))
                if multimodality and b < mm_batches:
                    runs = [evaluator.motion_embeddings(*out).float().cpu()
                            for _, out in _in_requests(produce, [batch] * mm_repeats, request_size)]
                    mm.append(torch.stack(runs, dim=1))  # (B, R, E)
        gt_all, gen_all = torch.cat(gt_all).numpy(), torch.cat(gen_all).numpy()
        top, gt_top = np.mean(tops, axis=0), np.mean(gt_tops, axis=0)
        for k in range(3):
            add(f"top{k + 1}", top[k])
            add(f"gt_top{k + 1}", gt_top[k])
        add("fid", M.fid(gt_all, gen_all))
        add("mm_dist", np.mean(dists))
        add("gt_mm_dist", np.mean(gt_dists))
        pairs = min(M.DIVERSITY_PAIRS, len(gen_all))
        add("diversity", M.diversity(gen_all, pairs, rng))
        add("gt_diversity", M.diversity(gt_all, pairs, rng))
        add("multimodality", M.multimodality(torch.cat(mm).numpy(), min(M.MULTIMODALITY_PAIRS, mm_repeats), rng)
            if mm else float("nan"))
        for n in label_names:
            for key, store in ((f"{n}_acc", hits[n]), (f"gt_{n}_acc", gt_hits[n])):
                counted = sum(c for _, c in store)
                add(key, sum(a * c for a, c in store if c) / counted if counted else float("nan"))
        for key in (extras[0] if extras else {}):
            add(key, np.mean([e[key] for e in extras]))
        if per_action is not None:
            _per_action_values(per_action, rows, add, np.random.default_rng([seed, r, 1]))
        seconds.append(round(time.time() - started, 1))
        if state_path is not None:
            _save_state(state_path, state_key or {}, per, seconds)
    samples = (len(ds) // batch_size) * batch_size
    if max_batches is not None:
        samples = min(samples, max_batches * batch_size)
    return per, samples, done, seconds


def _split_results(per: dict) -> tuple[dict, dict]:
    metrics = {k: M.summarize(v) for k, v in per.items() if not k.startswith(("gt_", "pa/"))}
    reference = {k[3:]: M.summarize(v) for k, v in per.items() if k.startswith("gt_")}
    return metrics, reference


def _per_action_result(spec: PerActionSpec, per: dict) -> dict:
    def stat(v):
        st = M.summarize(v)
        return {"mean": st["mean"], "ci95": st["ci95"]}

    def row(name: str, train: int | None, known) -> dict:
        out = {"train_segments": train, "known": known,
               "evaluated": float(np.mean(per[f"pa/{name}/n"])) if per.get(f"pa/{name}/n") else 0.0}
        for f in _PA_FIELDS[1:]:
            out[f] = stat(per.get(f"pa/{name}/{f}", []))
        return out

    known = set(spec.known) if spec.known is not None else None
    actions = {}
    for a in spec.actions:
        r = row(a, int(spec.train_counts.get(a, 0)), None if known is None else a in known)
        r["rare"] = spec.train_counts.get(a, 0) < spec.threshold
        r["split_samples"] = int(spec.split_counts.get(a, 0))
        r["evaluable_samples"] = int(spec.evaluable_counts.get(a, 0))
        actions[a] = r
    rare = [a for a in spec.actions if actions[a]["rare"]]
    return {"label": spec.label, "threshold": spec.threshold, "rare_actions": rare,
            "unknown_actions": [] if known is None else [a for a in spec.actions if a not in known],
            "actions": actions, "rare": row("rare", None, None), "frequent": row("frequent", None, None),
            "rareness_range": [spec.low, spec.high], "rareness_bins": M.RARENESS_BINS,
            "rarest_share": M.RAREST_SHARE}


def evaluate_t2m(motion_source, split: str = "test", repeats: int = DEFAULT_REPEATS, seed: int = DEFAULT_SEED, *,
                 dataset: str | os.PathLike = "embedded", evaluator=None, layout=None, name: str | None = None,
                 batch_size: int = M.R_PRECISION_BATCH, multimodality: bool | None = None, mm_batches: int = 3,
                 mm_repeats: int = 30, progress: bool = True, max_batches: int | None = None,
                 progress_file: str | os.PathLike | None = None, identity: Mapping | None = None,
                 per_action: bool | PerActionSpec = False, short_clips: str = "drop") -> T2MResult:
    """Score a motion source on a split with the text-to-motion protocol (docs/design.md §10.2; module docstring).

    Args:
        motion_source: see :class:`MotionSource`.
        split: ``"test"`` or ``"test_unseen"`` (any split file of the dataset works).
        repeats: full passes (20); seed: the protocol seed (10107); repeat r uses ``seed + r``.
        dataset: ``"embedded"`` or a HumanML3D-layout folder (ignored when ``layout`` is given).
        evaluator: a :class:`T2MEvaluator`, an :class:`OfficialT2MEvaluator`, an evaluator folder, or None
            for the evaluator shipped with remomask.
        layout: a ready :class:`~remomask.data.layout.MotionLayout` of the split (shares one load).
        name: row name (default: ``motion_source.name`` or its class name).
        batch_size: R-precision batch (32).
        multimodality: compute MModality; None = when ``motion_source.stochastic`` is true.
        mm_batches, mm_repeats: MModality on the first ``mm_batches`` batches, each generated ``mm_repeats``
            times (3 and 30 in the reference protocol).
        progress: tqdm bar over repeats.
        max_batches: score only the first N shuffled batches of every repeat (None = the whole split). Each
            repeat draws another random subset, so the mean over repeats still covers the split; FID on fewer
            samples is biased upwards, so compare only rows scored with the same value (for generators on
            a CPU, where one full pass is ~1,000 generated motions).
        progress_file: JSON file that keeps the finished repeats (written atomically after each one). If it
            exists, the run resumes from it; it is left in place (the caller removes it once the results are
            saved).
        identity: JSON-able description of the source (model folder, weights hash, sampling settings) that
            must match for a resume, on top of the row name and the protocol settings.
        per_action: True (or a ready :class:`PerActionSpec`) adds, per repeat, the accuracy of the action
            classifier on the produced motions and the R-precision top-1/3 of the prompts of every action,
            of the rare actions (< :data:`RARE_SEGMENTS` train segments) and of the others
            (``result.per_action``), and ReMoGPT's rare-motion metrics ``rare5_mm_dist``,
            ``rare5_diversity`` (the rarest 5 % of the scored prompts) and ``balanced_mm_dist`` (mean of the
            MM-Dist of 10 equal-width rareness bins) to ``metrics`` / ``reference``. Costs one encoding of
            the train and split captions (seconds).
        short_clips: ``"drop"`` (default: the protocol's 40-199-frame samples) or ``"hold"``: samples of the
            split shorter than 40 frames are scored too, hold-extended to 40 frames (as the generators train on
            them, docs/data.md); needs ``layout`` None or loaded with ``min_length=0``.

    Returns:
        :class:`T2MResult`; ``info["resumed_repeats"]`` counts the repeats taken from ``progress_file``,
        ``info["seconds"]`` is the wall time of this call and ``info["repeat_seconds"]`` that of every
        repeat, the resumed ones included (the cost of a run that was stopped and continued).

    Raises:
        ProtocolError: a source output of the wrong shape, a split smaller than one batch, a bad evaluator,
            a ``progress_file`` that is unreadable or was written with other settings.
        EvaluatorError / DatasetError: the evaluator or the data cannot be loaded.
    """
    if repeats < 1:
        raise ProtocolError(f"repeats must be >= 1, got {repeats}")
    evaluator = resolve_evaluator(evaluator)
    if short_clips not in ("drop", "hold"):
        raise ProtocolError(f"short_clips must be 'drop' or 'hold', got {short_clips!r}")
    if layout is None and short_clips == "hold":
        from ..data.embedded import resolve_dataset
        from ..data.layout import MotionLayout

        layout = MotionLayout(resolve_dataset(dataset, progress=False), split, min_length=0, progress=False)
    layout = load_split_layout(dataset, split, layout)
    dim = layout.skeleton.feature_dim
    start = time.time()
    spec = None
    if per_action is not False and per_action is not None:
        spec = per_action if isinstance(per_action, PerActionSpec) else per_action_spec(layout, evaluator)

    def produce(group):
        captions = [c for batch in group for c in batch["caption"]]
        labels = [lab for batch in group for lab in _labels(batch)]
        gen, gen_len = _call_source(motion_source, captions, torch.cat([b["length"] for b in group]), labels, dim)
        out, start = [], 0
        for batch in group:  # back to the loader's batches, each cut to its own longest motion
            n = len(batch["length"])
            frames = max(int(batch["length"].max()), int(gen_len[start: start + n].max()))
            out.append((gen[start: start + n, :frames], gen_len[start: start + n]))
            start += n
        return out

    use_mm = bool(getattr(motion_source, "stochastic", False)) if multimodality is None else multimodality
    row = name or getattr(motion_source, "name", None) or type(motion_source).__name__
    evaluator_name = getattr(evaluator, "name", type(evaluator).__name__)
    request_size = getattr(motion_source, "request_size", None)
    if request_size is not None and (not isinstance(request_size, int) or request_size < 1):
        raise ProtocolError(f"the motion source's request_size must be a positive int, got {request_size!r}")
    key = {"row": row, "split": split, "seed": seed, "batch_size": batch_size, "max_batches": max_batches,
           "request_size": request_size,
           "multimodality": [mm_batches, mm_repeats] if use_mm else None, "evaluator": evaluator_name,
           "dataset": str(layout.root), "identity": dict(identity) if identity else None}
    if spec is not None:
        key["per_action"] = [spec.label, spec.threshold]
    if short_clips != "drop":
        key["short_clips"] = short_clips
    per, samples, resumed, repeat_seconds = _run(produce, layout, evaluator=evaluator, repeats=repeats, seed=seed,
                                 batch_size=batch_size, progress=progress, multimodality=use_mm,
                                 mm_batches=mm_batches, mm_repeats=mm_repeats,
                                 set_seed=getattr(motion_source, "set_seed", None), max_batches=max_batches,
                                 request_size=request_size, desc=f"evaluate {split}", state_path=progress_file,
                                 state_key=key, per_action=spec, short_clips=short_clips)
    metrics, reference = _split_results(per)
    info = {"evaluator": evaluator_name, "dataset": str(layout.root),
            "samples_per_repeat": samples, "batch_size": batch_size, "seconds": time.time() - start,
            "multimodality": {"batches": mm_batches, "repeats": mm_repeats} if use_mm else None,
            "max_batches": max_batches, "resumed_repeats": resumed, "repeat_seconds": repeat_seconds}
    if hasattr(motion_source, "fallbacks"):
        info["fallbacks"] = dict(motion_source.fallbacks)
    provenance = getattr(motion_source, "provenance", None)
    if provenance:
        info["provenance"] = dict(provenance)
    if short_clips != "drop":
        info["short_clips"] = short_clips
    result = T2MResult(row, split, repeats, seed, metrics, reference,
                       {k: v for k, v in per.items() if not k.startswith("pa/")}, info)
    if spec is not None:
        result.per_action = _per_action_result(spec, per)
        result.per_action["per_repeat"] = {k: v for k, v in per.items() if k.startswith("pa/")}
    return result


def evaluate_reconstruction(reconstruct: Callable, split: str = "test", repeats: int = DEFAULT_REPEATS,
                            seed: int = DEFAULT_SEED, *, dataset: str | os.PathLike = "embedded", evaluator=None,
                            layout=None, name: str = "reconstruction", batch_size: int = M.R_PRECISION_BATCH,
                            progress: bool = True) -> T2MResult:
    """Reconstruction FID (and MPJPE) of a tokenizer under the protocol's loader (docs/design.md §10.2, eval_vq).

    Args:
        reconstruct: ``reconstruct(features (B, T, D) de-normalised, lengths (B,)) -> (B, T, D)``
            de-normalised reconstructions (the tokenizer encodes and decodes; it normalises internally).
        Other arguments: as :func:`evaluate_t2m`.

    Returns:
        :class:`T2MResult` with ``fid``, ``mpjpe_mm`` (mean per-joint position error in millimetres after
        aligning the pelvis, over the real frames), ``top1..3``, ``mm_dist``, ``diversity`` and label
        accuracies of the reconstructions.
    """
    evaluator = resolve_evaluator(evaluator)
    layout = load_split_layout(dataset, split, layout)
    dim = layout.skeleton.feature_dim
    start = time.time()

    def produce(group):
        out = []
        for batch in group:
            rec = reconstruct(batch["motion"].clone(), batch["length"].clone())
            if not isinstance(rec, torch.Tensor) or rec.shape != batch["motion"].shape:
                raise ProtocolError(f"reconstruct() returned {getattr(rec, 'shape', type(rec).__name__)}; "
                                    f"expected {tuple(batch['motion'].shape)}")
            out.append((rec.float(), batch["length"]))
        return out

    def extra(batch, gen, gen_len):
        return {"mpjpe_mm": mpjpe_mm(batch["motion"], gen, gen_len)}

    per, samples, _, _ = _run(produce, layout, evaluator=evaluator, repeats=repeats, seed=seed,
                           batch_size=batch_size, progress=progress, desc=f"reconstruct {split}", extra=extra)
    per.pop("multimodality", None)
    metrics, reference = _split_results(per)
    info = {"evaluator": getattr(evaluator, "name", type(evaluator).__name__), "dataset": str(layout.root),
            "samples_per_repeat": samples, "seconds": time.time() - start, "feature_dim": dim}
    return T2MResult(name, split, repeats, seed, metrics, reference, per, info)


# -- reporting -------------------------------------------------------------------------------------

_COLUMNS = [("top1", "Top1"), ("top2", "Top2"), ("top3", "Top3"), ("fid", "FID"), ("mm_dist", "MM-Dist"),
            ("diversity", "Diversity"), ("multimodality", "MModality")]


def _cell(stat: Mapping | None) -> str:
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "-"
    ci = stat.get("ci95")
    ci_text = f"{ci:.3f}".lstrip("0") if ci is not None and math.isfinite(ci) else "-"
    return f"{stat['mean']:.3f}±{ci_text}"


def format_table(results: Sequence[T2MResult], *, reference: bool = True) -> str:
    """Paper-style markdown table: one row per result, ``mean±ci95`` cells, label accuracy columns.

    With ``reference`` a first row "Ground truth (reference)" shows the real test pairs scored in the same
    pass (R-precision, MM-Dist, Diversity, label accuracy of the real motions) of the first result.
    """
    if not results:
        return ""
    labels = sorted({k for r in results for k in r.metrics if k.endswith("_acc")})
    cols = _COLUMNS + [(k, k[:-4].capitalize() + " acc") for k in labels]
    extra = sorted({k for r in results for k in r.metrics} - {c for c, _ in cols})
    cols += [(k, k) for k in extra]
    lines = ["| method | " + " | ".join(h for _, h in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    if reference and results[0].reference:
        ref = results[0].reference
        lines.append("| Ground truth (reference) | " + " | ".join(_cell(ref.get(c)) for c, _ in cols) + " |")
    for r in results:
        lines.append(f"| {r.name} | " + " | ".join(_cell(r.metrics.get(c)) for c, _ in cols) + " |")
    first = results[0]
    lines.append("")
    lines.append(f"split `{first.split}`, {first.repeats} repeats, seed {first.seed}, "
                 f"{first.info.get('samples_per_repeat', '?')} samples per repeat, evaluator "
                 f"`{first.info.get('evaluator', '?')}`; mean ± 1.96·std/√N.")
    return "\n".join(lines)


def format_per_action(result: T2MResult) -> str:
    """Markdown table of ``result.per_action`` (:func:`evaluate_t2m` with ``per_action``): one row per
    action, then the ``rare`` and ``frequent`` rows, then the rare-motion metrics.

    Columns: train segments, evaluated samples per repeat (of the split's samples), the action classifier's
    accuracy on the produced motions and on the real ones, R-precision top-1 / top-3 of the action's prompts
    (in the protocol's batches of 32), produced and real. An action the evaluator's classifier does not
    know says so instead of an accuracy; an action none of whose samples the protocol scores says so too.
    Returns "" when the result has no per-action data.
    """
    pa = result.per_action
    if not pa:
        return ""
    head = ("| action | train | evaluated / split | action acc | real acc | Top1 | real Top1 | Top3 | real Top3 |")
    lines = [head, "|---" * 9 + "|"]

    def acc_cell(r, key):
        if r.get("known") is False:
            return "unknown to the classifier"
        return _cell(r.get(key))

    def line(name, r, split_n=None):
        evaluated = r.get("evaluated") or 0.0
        if not evaluated:
            where = f"0 / {split_n}" if split_n is not None else "0"
            if not split_n:
                note = "no sample in the split"
            elif not r.get("evaluable_samples"):
                note = "not scored: no sample in the protocol's length range (try --short-clips hold)"
            else:
                note = f"not drawn in the scored batches ({r['evaluable_samples']} scorable samples)"
            return f"| {name} | {r.get('train_segments', '-')} | {where} | {note} | | | | | |"
        train = r.get("train_segments")
        cells = [acc_cell(r, "acc"), acc_cell(r, "gt_acc"), _cell(r.get("top1")), _cell(r.get("gt_top1")),
                 _cell(r.get("top3")), _cell(r.get("gt_top3"))]
        ev = f"{evaluated:.1f}" + (f" / {split_n}" if split_n is not None else "")
        return f"| {name} | {'-' if train is None else train} | {ev} | " + " | ".join(cells) + " |"

    for a, r in pa["actions"].items():
        lines.append(line(("*" if r["rare"] else "") + a, r, r.get("split_samples")))
    lines.append(line(f"**rare** (< {pa['threshold']} train segments, {len(pa['rare_actions'])} actions)", pa["rare"]))
    lines.append(line("**frequent**", pa["frequent"]))
    lines.append("")
    unknown = pa.get("unknown_actions") or []
    lines.append(f"`{result.name}`, split `{result.split}`, {result.repeats} repeats; * = rare action. "
                 + (f"Unknown to the evaluator's action classifier: {', '.join(unknown)}. " if unknown else ""))
    ref = result.reference
    rare_cols = [("rare5_mm_dist", "MM-Dist (rarest 5 %)"), ("rare5_diversity", "Diversity (rarest 5 %)"),
                 ("balanced_mm_dist", "Balanced MM-Dist")]
    lines.append("")
    lines.append("| rare-motion metric | produced | real |")
    lines.append("|---|---|---|")
    for k, h in rare_cols:
        lines.append(f"| {h} | {_cell(result.metrics.get(k))} | {_cell(ref.get(k))} |")
    lo, hi = pa.get("rareness_range", [float("nan")] * 2)
    lines.append("")
    lines.append(f"Rareness = 1 - max cosine similarity of the prompt to the train captions (MiniLM sentence "
                 f"embeddings), range {lo:.3f}-{hi:.3f} on this split, {pa.get('rareness_bins')} equal-width bins.")
    return "\n".join(lines)


def results_to_json(results: Sequence[T2MResult], **meta) -> dict:
    """``{"meta": {...}, "rows": [result dicts]}`` with every metric as ``{mean, ci95}`` (NaN -> null)."""
    return json_safe({"meta": dict(meta), "rows": [r.to_dict() for r in results]})


def write_json(path: str | os.PathLike, results: Sequence[T2MResult], **meta) -> Path:
    """Write :func:`results_to_json` to ``path`` atomically (:func:`remomask.files.atomic_write_text`)."""
    text = json.dumps(results_to_json(results, **meta), indent=1, sort_keys=True) + "\n"
    return atomic_write_text(path, text)
