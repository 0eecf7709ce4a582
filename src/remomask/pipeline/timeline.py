"""Timelines of any length: one continuous motion from a list of (text, seconds) segments
(docs/generation.md, "Timelines").

Method (arXiv 2508.02605 Sec. 3 generators; the windowed, overlapping generation of long sequences follows the
idea of FlowMDM / MoMask-style out-painting):

1. Each segment lasts ``round(seconds * 20 / 4)`` tokens (4 frames each; at least one). The timeline is one token
   stream, generated chunk by chunk in windows of at most 49 rows (9.8 s): a window is the last ``context`` rows
   already generated (kept, all quantiser layers) followed by new rows (regenerated,
   :func:`remomask.generation.inpainting.inpaint_tokens`) conditioned on the segment's text and on its own
   retrieval (RAG, done once per segment). So every transition is an out-painted continuation of what came
   before; a segment longer than one window is split into equal chunks, each continuing the previous one.
2. Each window is decoded on its own. Its new frames are appended to the timeline's features; over the last
   ``blend`` frames of the context the previous features are cross-faded (smoothstep) into the window's
   decoding of the same frames, so the seam has no step.
3. The joints come from the whole feature sequence at once (:func:`~remomask.data.features.joints_from_features`):
   HumanML3D features hold the root's *velocities* in its own heading frame, so position and heading are
   integrated across every seam (no teleport, no return to the origin); the motion starts at the origin facing +Z.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..constants import FPS, FRAMES_PER_TOKEN, MAX_FRAMES
from ..errors import InputFileError, MissingFileError, UsageError

__all__ = ["Segment", "TimelineResult", "parse_timeline", "read_timeline", "check_segments", "compose_timeline",
           "DEFAULT_CONTEXT_TOKENS", "MAX_TIMELINE_SECONDS"]

DEFAULT_CONTEXT_TOKENS = 10
"""Token rows (2 s) of the motion so far that each new window sees."""

MAX_TIMELINE_SECONDS = 600.0
"""Longest timeline accepted (10 minutes)."""

_WINDOW_ROWS = MAX_FRAMES // FRAMES_PER_TOKEN


@dataclass
class Segment:
    """One segment of a timeline: ``text`` for ``seconds`` (0.2 s, one token, or more), optional ``seed``."""

    text: str
    seconds: float
    seed: int | None = None


def check_segments(segments: Sequence[Any]) -> list[Segment]:
    """Normalise segments: :class:`Segment`, ``(text, seconds[, seed])`` tuples or dicts with ``text``,
    ``seconds`` and optional ``seed``.

    Returns:
        list of :class:`Segment`.

    Raises:
        UsageError: an empty timeline, an empty text, a duration that is not a finite number, shorter than one
            token (0.2 s), or a total over :data:`MAX_TIMELINE_SECONDS`; a bad seed.
    """
    if segments is None or len(segments) == 0:
        raise UsageError("the timeline is empty; give segments such as \"walk forward:4 | wave:3\"")
    out = []
    for i, s in enumerate(segments):
        if isinstance(s, Segment):
            text, sec, seed = s.text, s.seconds, s.seed
        elif isinstance(s, dict):
            unknown = set(s) - {"text", "seconds", "seed"}
            if unknown or "text" not in s or "seconds" not in s:
                raise UsageError(f"timeline segment {i + 1}: give 'text' and 'seconds' (and optionally 'seed'), "
                                 f"got keys {sorted(s)}")
            text, sec, seed = s["text"], s["seconds"], s.get("seed")
        elif isinstance(s, (tuple, list)) and len(s) in (2, 3):
            text, sec, seed = s[0], s[1], (s[2] if len(s) == 3 else None)
        else:
            raise UsageError(f"timeline segment {i + 1}: expected (text, seconds[, seed]), got {s!r}")
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"timeline segment {i + 1} has an empty text")
        try:
            sec = float(sec)
        except (TypeError, ValueError):
            raise UsageError(f"timeline segment {i + 1} ({text.strip()!r}): seconds must be a number, "
                             f"got {sec!r}") from None
        if not math.isfinite(sec) or round(sec * FPS / FRAMES_PER_TOKEN) < 1:
            raise UsageError(f"timeline segment {i + 1} ({text.strip()!r}) lasts {sec:g} s, shorter than one token "
                             f"({FRAMES_PER_TOKEN / FPS:g} s)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise UsageError(f"timeline segment {i + 1}: seed must be an integer >= 0, got {seed!r}")
        out.append(Segment(" ".join(text.split()), sec, seed))
    total = sum(s.seconds for s in out)
    if total > MAX_TIMELINE_SECONDS:
        raise UsageError(f"the timeline lasts {total:g} s; at most {MAX_TIMELINE_SECONDS:g} s")
    return out


def parse_timeline(spec: str) -> list[Segment]:
    """Parse ``"walk forward:4 | turn left and wave:3 | stand still:2"`` (``text:seconds[:seed]`` items joined by
    ``|``; the last ``:`` separated numbers are the duration and optional seed).

    Raises:
        UsageError: an empty timeline, an item without a duration, the errors of :func:`check_segments`.
    """
    items = [p.strip() for p in (spec or "").split("|")]
    if not any(items):
        raise UsageError("the timeline is empty; give segments such as \"walk forward:4 | wave:3\"")
    segs = []
    for i, item in enumerate(items):
        if not item:
            raise UsageError(f"timeline segment {i + 1} is empty (two '|' in a row?)")
        parts = item.split(":")
        nums = []
        while len(parts) > 1 and len(nums) < 2 and _is_number(parts[-1]):
            nums.insert(0, parts.pop().strip())
        if not nums:
            raise UsageError(f"timeline segment {i + 1} ({item!r}) has no duration; write it as 'text:seconds'")
        text = ":".join(parts)
        seed = None
        if len(nums) == 2:
            if not nums[1].isdigit():
                raise UsageError(f"timeline segment {i + 1}: the seed must be an integer >= 0, got {nums[1]!r}")
            seed = int(nums[1])
        segs.append((text, float(nums[0]), seed))
    return check_segments(segs)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_timeline(path) -> list[Segment]:
    """Read a timeline file: JSON (a list of ``{"text", "seconds", "seed"?}``, or ``{"segments": [...]}``), YAML
    of the same shape (``.yaml`` / ``.yml``, needs PyYAML), or a text file in the ``text:seconds | ...`` form
    (items may also be on separate lines).

    Raises:
        MissingFileError: no such file. InputFileError: unreadable or malformed. UsageError: bad segments.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"timeline file {path} does not exist")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the timeline ({exc})") from None
    suffix = path.suffix.lower()
    if suffix in (".json", ".yaml", ".yml"):
        try:
            if suffix == ".json":
                data = json.loads(raw)
            else:
                import yaml

                data = yaml.safe_load(raw)
        except ImportError:
            raise InputFileError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write JSON") from None
        except Exception as exc:  # json / yaml syntax errors
            raise InputFileError(f"{path}: not valid {suffix[1:].upper()} ({' '.join(str(exc).split())})") from None
        if isinstance(data, dict):
            data = data.get("segments")
        if not isinstance(data, list):
            raise InputFileError(f"{path}: expected a list of segments (or {{\"segments\": [...]}})")
        return check_segments(data)
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return parse_timeline(" | ".join(lines))


@dataclass
class TimelineResult:
    """Result of :func:`compose_timeline` / :meth:`ReMoMaskPipeline.compose`.

    Attributes:
        joints: (T, 22, 3) float32 metres, 20 fps, one continuous motion starting at the origin.
        features: (T, 263) float32 de-normalised HumanML3D features.
        segments: per segment a dict: ``text``, ``seconds`` (asked), ``start``/``end`` frames, ``seed`` and
            ``retrieved`` entries.
        token_ids: (T / 4, J', Q) int64 token stream.
        settings: sampling settings, context and blend.
    """

    joints: np.ndarray
    features: np.ndarray
    segments: list
    token_ids: np.ndarray
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    @property
    def boundaries(self) -> list[int]:
        """Frames where a segment starts (except the first)."""
        return [s["start"] for s in self.segments[1:]]


def _smooth(s):
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3 - 2 * s)


def compose_timeline(pipe, segments, *, seed: int | None = None, steps: int | None = None,
                     cond_scale: float | None = None, residual_cond_scale: float | None = None,
                     use_retrieval: bool = True, context: int = DEFAULT_CONTEXT_TOKENS, blend: int = 8,
                     precision: str | None = None) -> TimelineResult:
    """Generate one continuous motion from segments (module docstring).

    Args:
        pipe: :class:`~remomask.pipeline.ReMoMaskPipeline`.
        segments: :class:`Segment` s, ``(text, seconds[, seed])`` tuples or dicts (:func:`check_segments`).
        seed: base seed; segment i without its own seed uses ``seed + i`` (None = a fresh base seed).
        steps, cond_scale, residual_cond_scale: sampling (None = the pipeline's defaults).
        use_retrieval: retrieve per segment text (arXiv 2508.02605 Sec. 3).
        context: kept token rows each window sees (1..40; 10 = 2 s).
        blend: seam cross-fade in frames (0..4 * context).
        precision: ``"fp32"`` / ``"bf16"`` (None = bf16 on CUDA, fp32 on the CPU).

    Returns:
        :class:`TimelineResult` with ``4 * sum(round(seconds * 5))`` frames.

    Raises:
        UsageError: bad segments (:func:`check_segments`), context or blend.

    Source: arXiv 2508.02605 Sec. 3; FlowMDM (long compositions); module docstring.
    """
    import torch

    from ..data.features import joints_from_features
    from ..generation import SamplingConfig
    from ..generation.inpainting import inpaint_tokens

    segs = check_segments(segments)
    if not isinstance(context, int) or not 1 <= context <= _WINDOW_ROWS - 9:
        raise UsageError(f"context must be 1..{_WINDOW_ROWS - 9} tokens, got {context!r}")
    if int(blend) != blend or not 0 <= blend <= FRAMES_PER_TOKEN * context:
        raise UsageError(f"blend must be 0..{FRAMES_PER_TOKEN * context} frames, got {blend!r}")
    d = pipe.sampling_defaults
    sampling = SamplingConfig(steps=d["steps"] if steps is None else steps,
                              cond_scale=d["cond_scale"] if cond_scale is None else cond_scale,
                              residual_cond_scale=(d["residual_cond_scale"] if residual_cond_scale is None
                                                   else residual_cond_scale))
    base_seed = secrets.randbelow(2 ** 31) if seed is None else int(seed)
    dev = pipe.device
    tok = pipe.tokenizer
    precision = precision or ("bf16" if dev.type == "cuda" else "fp32")
    use_r = bool(use_retrieval and pipe.retriever is not None)
    rows = [max(1, round(s.seconds * FPS / FRAMES_PER_TOKEN)) for s in segs]
    total_rows = sum(rows)
    ncol, q = tok.num_columns, tok.num_quantizers
    ids = torch.full((total_rows, ncol, q), -1, dtype=torch.long, device=dev)
    feats = np.zeros((total_rows * FRAMES_PER_TOKEN, tok.config.feature_dim), dtype=np.float32)
    info = []
    done = 0
    for i, (seg, n_rows) in enumerate(zip(segs, rows)):
        seg_seed = seg.seed if seg.seed is not None else base_seed + i
        gen = torch.Generator(device=dev).manual_seed(seg_seed)
        with torch.no_grad():
            cond = pipe.conditions([seg.text], keep_hits=use_r, retrieve=use_r,
                                   min_score=d.get("retrieval_min_score", 0.0))
        sentence = cond.sentence.to(dev)
        retr = cond.retrieval if use_r else None
        ctx0 = min(context, done)
        n_chunks = max(1, math.ceil(n_rows / (_WINDOW_ROWS - context)))
        sizes = [n_rows // n_chunks + (1 if k < n_rows % n_chunks else 0) for k in range(n_chunks)]
        for size in sizes:
            ctx = min(context, done)
            w0, w1 = done - ctx, done + size
            win = ids[w0:w1].clone()
            edit = torch.zeros(w1 - w0, ncol, dtype=torch.bool, device=dev)
            edit[ctx:] = True
            with torch.no_grad(), pipe._autocast(precision):
                new = inpaint_tokens(pipe.mask_transformer, pipe.residual_transformer, win[None], edit[None],
                                     sentence, retr, config=sampling, generator=gen)
            with torch.no_grad():
                fw = tok.denormalize(tok.decode(new).float())[0].cpu().numpy().astype(np.float32)
            ids[w0:w1] = new[0]
            f_new, f_end = done * FRAMES_PER_TOKEN, w1 * FRAMES_PER_TOKEN
            feats[f_new:f_end] = fw[ctx * FRAMES_PER_TOKEN:]
            if ctx and blend:
                lo = f_new - blend
                w = _smooth((np.arange(blend) + 1) / (blend + 1))[:, None]
                feats[lo:f_new] = (1 - w) * feats[lo:f_new] + w * fw[lo - w0 * FRAMES_PER_TOKEN: ctx * FRAMES_PER_TOKEN]
            done = w1
        start = (done - n_rows) * FRAMES_PER_TOKEN
        info.append({"index": i, "text": seg.text, "seconds": seg.seconds, "start": start,
                     "end": done * FRAMES_PER_TOKEN, "frames": done * FRAMES_PER_TOKEN - start, "seed": seg_seed,
                     "context_tokens": ctx0,
                     "retrieved": [{"id": h["entry_id"], "motion_id": h["motion_id"], "caption": h["caption"],
                                    "score": round(float(h["score"]), 6)} for h in (cond.hits[0] if use_r else [])]})
    joints = joints_from_features(feats).astype(np.float32)
    settings = dict(sampling.to_dict(), seed=base_seed, use_retrieval=use_r, context_tokens=context, blend=int(blend),
                    device=str(dev), precision=precision)
    return TimelineResult(joints, feats, info, ids.cpu().numpy().astype(np.int64), settings)
