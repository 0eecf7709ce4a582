"""The evaluation adapter: a pipeline as a motion source of the text-to-motion protocol
(:mod:`remomask.evaluation.protocol`; arXiv 2508.02605, experiments; docs/design.md).
"""

from __future__ import annotations

from pathlib import Path

from ..constants import FRAMES_PER_TOKEN
from .cascade import ReMoMaskPipeline

__all__ = ["EVAL_REQUEST_SIZE", "PipelineMotionSource", "load_motion_source", "wrong_neighbours"]

EVAL_REQUEST_SIZE = 1024
"""Prompts per call of the evaluation protocol for a pipeline: a whole embedded test pass (768) in one."""


class PipelineMotionSource:
    """A :class:`~remomask.evaluation.protocol.MotionSource` over a pipeline (arXiv 2508.02605, experiments:
    the HumanML3D text-to-motion protocol).

    ``source(captions, lengths, labels) -> (features (B, T, 263) de-normalised torch tensor, lengths (B,))``
    with the ground-truth lengths; ``labels`` are ignored. ``set_seed(seed)`` restarts its generator (the
    protocol calls it at every repeat); without it each call draws a seed from torch's global RNG.

    Args:
        pipeline: a :class:`ReMoMaskPipeline`. name: row name.
        request_size: prompts the protocol may send in one call (:data:`EVAL_REQUEST_SIZE`; None = one batch
            of 32 at a time). A whole pass in one call lets the pipeline group all prompts by length (8 test
            batches: 4.90 s a batch against 5.95 s one batch at a time, ``benchmarks/bench_generation.py
            --protocol test --protocol-batches 8``); the forward batches stay at most 32.
        wrong_neighbour: retrieve for each prompt with the caption of another prompt of the same call, the next
            one (cyclically, in the protocol's order) whose ``action`` label differs (:func:`wrong_neighbours`):
            the robustness check of a deliberately wrong neighbour. The text condition stays the prompt's.
        **sampling: keyword arguments of the call.

    Raises:
        ValueError: ``request_size`` < 1.
    """

    stochastic = True

    def __init__(self, pipeline: ReMoMaskPipeline, name: str = "ReMoMask", *,
                 request_size: int | None = None, wrong_neighbour: bool = False, **sampling) -> None:
        if request_size is not None and int(request_size) < 1:
            raise ValueError(f"request_size must be >= 1, got {request_size}")
        self.pipeline, self.name, self.sampling = pipeline, name, sampling
        self.wrong_neighbour = bool(wrong_neighbour)
        self.request_size = None if request_size is None else int(request_size)
        self._generator = None

    def set_seed(self, seed: int) -> None:
        """Restart the sampling generator from ``seed``."""
        import torch

        self._generator = torch.Generator(device=self.pipeline.device).manual_seed(int(seed))

    def __call__(self, captions, lengths, labels=None):
        """Generate ``captions`` at ``lengths``: ``(features (B, T, 263) de-normalised, lengths (B,) frames)``.

        ``lengths`` below 40 frames are allowed down to one token; each motion has ``4 * floor(length / 4)``
        frames. Raises ValueError for prompts or lengths the pipeline refuses.
        """
        import torch

        if self._generator is None:
            self.set_seed(int(torch.randint(0, 2 ** 62, ())))
        extra = {}
        if self.wrong_neighbour:
            extra["retrieval_texts"] = wrong_neighbours(list(captions), labels)
        out = self.pipeline(list(captions), frames=[int(x) for x in torch.as_tensor(lengths).tolist()],
                            generator=self._generator, min_frames=FRAMES_PER_TOKEN, **self.sampling, **extra)
        return torch.from_numpy(out.features), torch.from_numpy(out.lengths)


def wrong_neighbours(captions: list[str], labels=None) -> list[str]:
    """For each prompt, the caption of the next prompt (cyclically) whose ``action`` label differs, or, without
    labels or when every prompt shares one, whose caption differs; the prompt itself when all captions are equal.

    Args:
        captions: B prompts. labels: None or B dicts (the protocol's labels; ``action`` may be missing).

    Returns:
        B captions to retrieve with (the deliberately wrong neighbours of :class:`PipelineMotionSource`).
    """
    b = len(captions)
    actions = [None if labels is None else (labels[i] or {}).get("action") for i in range(b)]
    out = []
    for i in range(b):
        order = [(i + d) % b for d in range(1, b)]
        pick = next((j for j in order if actions[i] is not None and actions[j] is not None
                     and actions[j] != actions[i]), None)
        if pick is None:
            pick = next((j for j in order if captions[j] != captions[i]), i)
        out.append(captions[pick])
    return out


def load_motion_source(model_dir, device="cpu", request_size: int | None = EVAL_REQUEST_SIZE,
                       **sampling) -> PipelineMotionSource:
    """The evaluation protocol's motion source for a pipeline folder (used by ``remomask evaluate t2m --model``).

    ``request_size``: see :class:`PipelineMotionSource` (default :data:`EVAL_REQUEST_SIZE`).

    Raises:
        FileNotFoundError / ValueError: see :meth:`ReMoMaskPipeline.from_pretrained`.
    """
    pipe = ReMoMaskPipeline.from_pretrained(model_dir, device=device)
    name = "ReMoMask" if pipe.retriever is not None else "ReMoMask (no retrieval)"
    return PipelineMotionSource(pipe, f"{name} [{Path(model_dir).name}]", request_size=request_size, **sampling)
