"""Prompts of an embedded split as the evaluation protocol generates them (shared by the benchmarks).

:func:`protocol_prompts` gives the captions and the generated lengths (frames at 20 fps: whole tokens of
4 frames, at most 196) of every sample of a split of the embedded dataset, in one seeded shuffle, so that
consecutive slices of 32 stand for the protocol's random batches.
"""

from __future__ import annotations


def protocol_prompts(split: str, seed: int = 0) -> tuple[list[str], list[int]]:
    """(captions, frames) of all samples of ``split``, shuffled with ``seed``; frames = ``4 * (min(T, 196) // 4)``.

    Raises:
        DatasetError: the split does not exist in the embedded dataset.
    """
    import numpy as np

    from remomask.evaluation.protocol import _layout

    records = _layout(None, split, None).records
    order = np.random.default_rng(seed).permutation(len(records))
    return ([records[i].captions[0].text for i in order],
            [min(records[i].length, 196) // 4 * 4 for i in order])
