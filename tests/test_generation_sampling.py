"""Tests of sampling (design §5.5, §6.4, §7): guidance formula, temperature, top-k, iterative masked decoding with
re-masking by confidence, residual filling, seeding.

The expected distributions are computed here with numpy from the definitions, not taken from the code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import TINY_CODES, TINY_COLUMNS, TINY_RETRIEVAL, TINY_TEXT, sharpen, tiny_mask_config, tiny_residual_config

from remomask.generation import (
    MaskTransformer,
    ResidualTransformer,
    Retrieved,
    SamplingConfig,
    combine_guidance,
    generate_base,
    generate_residual,
    generate_tokens,
    guided_logits,
    sample_tokens,
    top_k_filter,
)

K, J, TEXT, RETR = TINY_CODES, TINY_COLUMNS, TINY_TEXT, TINY_RETRIEVAL


def tiny_mask(**kw) -> MaskTransformer:
    return sharpen(MaskTransformer(tiny_mask_config(**kw))).eval()


def tiny_residual() -> ResidualTransformer:
    return sharpen(ResidualTransformer(tiny_residual_config())).eval()


def inputs(b: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    text = torch.randn(b, TEXT, generator=gen)
    retr = Retrieved(torch.randn(b, 1, RETR, generator=gen), torch.randn(b, 1, RETR, generator=gen),
                     torch.ones(b, 1, dtype=torch.bool))
    return text, retr


# ---- guidance ------------------------------------------------------------------------------------------
def test_combine_guidance_formula():
    gen = torch.Generator().manual_seed(0)
    u, c, t, r = (torch.randn(3, 5, generator=gen) for _ in range(4))
    torch.testing.assert_close(combine_guidance(u, c, 4.0), u + 4.0 * (c - u))
    torch.testing.assert_close(combine_guidance(u, c, 1.0), c)
    torch.testing.assert_close(combine_guidance(u, c, 0.0), u)
    torch.testing.assert_close(combine_guidance(u, c, 2.0, text_only=t, text_scale=0.5, retrieval_only=r, retrieval_scale=1.5),
                               u + 2.0 * (c - u) + 0.5 * (t - u) + 1.5 * (r - u))
    with pytest.raises(ValueError, match="text_only"):
        combine_guidance(u, c, 1.0, text_scale=1.0)


def test_guided_logits_match_separate_passes():
    """The batched passes equal separate forwards with the gates set: cond both on, uncond both off."""
    model = tiny_mask()
    text, retr = inputs(2)
    ids = torch.randint(0, K + 1, (2, 3, J), generator=torch.Generator().manual_seed(1))
    on, off = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    cond = model(ids, text, retr, text_on=on, retrieval_on=on)
    uncond = model(ids, text, retr, text_on=off, retrieval_on=off)
    text_only = model(ids, text, retr, text_on=on, retrieval_on=off)
    retr_only = model(ids, text, retr, text_on=off, retrieval_on=on)
    assert (cond - uncond).abs().max() > 1e-3
    torch.testing.assert_close(guided_logits(model, ids, text, retr, cond_scale=4.0), uncond + 4.0 * (cond - uncond),
                               atol=1e-4, rtol=1e-4)
    four = guided_logits(model, ids, text, retr, cond_scale=1.0, text_scale=2.0, retrieval_scale=3.0)
    torch.testing.assert_close(four, uncond + (cond - uncond) + 2.0 * (text_only - uncond) + 3.0 * (retr_only - uncond),
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(guided_logits(model, ids, text, retr, cond_scale=1.0), cond, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="use_retrieval"):
        guided_logits(tiny_mask(use_retrieval=False), ids, text, None, retrieval_scale=1.0)


# ---- temperature / top-k --------------------------------------------------------------------------------
@pytest.mark.parametrize("gumbel", [False, True], ids=["categorical", "gumbel"])
def test_temperature_changes_the_sampling_distribution(gumbel):
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    n = 40000
    freqs = {}
    for temp in (0.5, 1.0, 2.0):
        gen = torch.Generator().manual_seed(42)
        draws = sample_tokens(logits.expand(n, -1), temperature=temp, gumbel=gumbel, generator=gen)
        freqs[temp] = np.bincount(draws.numpy(), minlength=6) / n
        z = np.exp(logits.numpy() / temp)
        expected = z / z.sum()
        sd = np.sqrt(expected * (1 - expected) / n)
        assert np.all(np.abs(freqs[temp] - expected) < 5 * sd + 1e-4), (temp, freqs[temp], expected)
    # lower temperature concentrates on the top logit
    assert freqs[0.5][0] > freqs[1.0][0] + 0.1 > freqs[2.0][0] + 0.2


def test_zero_temperature_is_argmax():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(sample_tokens(logits, temperature=0.0), logits.argmax(-1))
    with pytest.raises(ValueError, match="temperature"):
        sample_tokens(logits, temperature=-1.0)


def test_top_k_filter_keeps_exactly_the_k_largest():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(20, 40, generator=gen)
    out = top_k_filter(logits, 5)
    finite = torch.isfinite(out)
    assert (finite.sum(-1) == 5).all()
    kth = logits.sort(-1, descending=True).values[:, 4:5]
    assert torch.equal(finite, logits >= kth)
    assert torch.equal(out[finite], logits[finite])
    draws = sample_tokens(out.repeat(200, 1), temperature=3.0, generator=gen)       # flat: all 5 get drawn
    allowed = finite.repeat(200, 1).gather(1, draws[:, None])
    assert allowed.all()
    assert top_k_filter(logits, 40) is logits
    with pytest.raises(ValueError):
        top_k_filter(logits, 0)


# ---- base-layer decoding ------------------------------------------------------------------------------
class Recorder(torch.nn.Module):
    """Wraps a masked transformer and records the [MASK] positions of each call (the re-masked set)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.masked = model, model.config, []

    def forward(self, ids, *args, **kwargs):
        self.masked.append((ids == self.config.mask_id).reshape(ids.shape[0], -1).clone())
        return self.model(ids, *args, **kwargs)


def test_decoding_fills_real_positions_and_keeps_padding():
    model = tiny_mask()
    text, retr = inputs(3)
    lengths = torch.tensor([5, 2, 7])
    ids = generate_base(model, text, lengths, retr, steps=6, generator=7)
    assert ids.shape == (3, 7, J)
    for i, length in enumerate(lengths.tolist()):
        assert ((ids[i, :length] >= 0) & (ids[i, :length] < K)).all()
        assert (ids[i, length:] == -1).all()
    assert torch.equal(ids, generate_base(model, text, lengths, retr, steps=6, generator=7))        # seeded
    assert not torch.equal(ids, generate_base(model, text, lengths, retr, steps=6, generator=8))
    greedy = [generate_base(model, text, lengths, retr, steps=6, temperature=0.0, generator=s) for s in (1, 2)]
    assert torch.equal(greedy[0], greedy[1])                                       # T = 0 removes the randomness
    one_step = generate_base(model, text, lengths, retr, steps=1, generator=0)
    assert ((one_step >= 0) == (ids >= 0)).all()


def test_remasking_follows_the_cosine_schedule_and_keeps_confident_tokens():
    rec = Recorder(tiny_mask())
    text, retr = inputs(2)
    lengths = [6, 3]
    steps = 5
    generate_base(rec, text, lengths, retr, steps=steps, cond_scale=2.0, generator=3)
    assert len(rec.masked) == steps
    for i, masked in enumerate(rec.masked):                                       # (2 passes * B, N)
        cond = masked[:2]
        assert torch.equal(cond, masked[2:])                                       # cond and uncond see the same ids
        ratio = math.cos(math.pi / 2 * i / (steps - 1))
        for b, length in enumerate(lengths):
            assert int(cond[b].sum()) == max(1, round(ratio * length * J))
            assert not cond[b, length * J:].any()                                  # padding is never masked
        if i:
            assert not (cond & ~rec.masked[i - 1][:2]).any()                       # only last step's samples re-masked


def test_decoding_remasks_the_least_confident():
    """With greedy sampling, the tokens kept after step 0 are the most probable ones of that step."""
    model = tiny_mask()
    rec = Recorder(model)
    text, retr = inputs(1, seed=5)
    generate_base(rec, text, [8], retr, steps=3, cond_scale=1.0, temperature=0.0, generator=0)
    first = model(torch.full((1, 8, J), K), text, retr)                           # step 0: everything masked
    confidence = torch.softmax(first, -1).max(-1).values[0]                       # greedy draw = argmax
    remasked = rec.masked[1][0]
    assert int(remasked.sum()) == round(math.cos(math.pi / 4) * 8 * J)
    assert confidence[remasked].max() <= confidence[~remasked].min()


def test_no_retrieval_model_generates():
    model = tiny_mask(use_retrieval=False)
    text, _ = inputs(2)
    ids = generate_base(model, text, [4, 4], None, steps=3, generator=0)
    assert (ids >= 0).all()


def test_bad_sampling_inputs():
    model = tiny_mask()
    text, retr = inputs(1)
    with pytest.raises(ValueError, match="1..16"):
        generate_base(model, text, [0], retr)
    with pytest.raises(ValueError, match="64 frames"):
        generate_base(model, text, [20], retr)
    with pytest.raises(ValueError, match="steps"):
        SamplingConfig(steps=0)
    with pytest.raises(ValueError, match="top_k"):
        SamplingConfig(top_k=0)


# ---- residual layers and the cascade ---------------------------------------------------------------------
def test_residual_generation_and_cascade():
    mask, res = tiny_mask(), tiny_residual()
    text, retr = inputs(2)
    base = generate_base(mask, text, [4, 2], retr, steps=3, generator=1)
    ids = generate_residual(res, base, text, generator=2)
    assert ids.shape == (2, 4, J, 4)
    assert torch.equal(ids[..., 0], base)
    assert ((ids >= 0) == (base >= 0)[..., None]).all() and (ids < K).all()
    assert torch.equal(ids, generate_residual(res, base, text, generator=2))
    full = generate_tokens(mask, res, text, [4, 2], retr, config=SamplingConfig(steps=3), generator=11)
    assert torch.equal(full, generate_tokens(mask, res, text, [4, 2], retr, config=SamplingConfig(steps=3), generator=11))
    assert full.shape == (2, 4, J, 4) and (full[1, 2:] == -1).all()
    assert generate_tokens(mask, None, text, [3, 3], retr, generator=0).shape == (2, 3, J, 1)


# ---- length-aware batching (generation/batching.py) --------------------------------------------------------------
def _padded_rows(groups, lengths):
    return sum(len(g) * max(lengths[i] for i in g) for g in groups)


def test_length_batches_partition_the_requests_and_cut_padding_on_real_lengths():
    from remomask.evaluation.protocol import _layout
    from remomask.generation.batching import plan_length_batches

    # token lengths of the embedded test split as the protocol generates them (GT frames / 4, at most 49)
    lengths = np.array([min(r.length, 196) // 4 for r in _layout(None, "test", None).records])
    rng = np.random.default_rng(0)
    random_rows = planned_rows = real_rows = 0
    for _ in range(10):
        batch = rng.choice(lengths, 32, replace=False).tolist()
        groups = plan_length_batches(batch, 32)
        flat = sorted(i for g in groups for i in g)
        assert flat == list(range(32)) and all(1 <= len(g) <= 32 for g in groups)
        spans = sorted(((min(batch[i] for i in g), max(batch[i] for i in g)) for g in groups), reverse=True)
        for (low, _), (_, next_high) in zip(spans, spans[1:]):  # consecutive in length: no interleaving
            assert next_high <= low
        random_rows += 32 * max(batch)
        planned_rows += _padded_rows(groups, batch)
        real_rows += sum(batch)
    assert random_rows / real_rows > 1.5                   # one padded batch wastes a third or more
    assert planned_rows / real_rows < 1.25                 # the plan keeps the waste small


def test_length_batches_limits_and_extremes():
    from remomask.generation.batching import plan_length_batches

    lengths = [49] * 5 + [10] * 5
    # free forward passes: one batch per distinct length; costly ones: as few batches as max_batch allows
    assert sorted(map(sorted, plan_length_batches(lengths, 32, overhead=0))) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert len(plan_length_batches(lengths, 4, overhead=1e9)) == 3
    assert all(len(g) <= 4 for g in plan_length_batches(lengths, 4))
    assert plan_length_batches([], 8) == []
    with pytest.raises(ValueError, match="max_batch"):
        plan_length_batches([3], 0)
    with pytest.raises(ValueError, match="lengths must be >= 1"):
        plan_length_batches([3, 0], 8)


def test_retrieved_take_and_cat_keep_rows_together():
    gen = torch.Generator().manual_seed(0)
    parts = [Retrieved(torch.randn(n, 2, RETR, generator=gen), torch.randn(n, 2, RETR, generator=gen),
                       torch.rand(n, 2, generator=gen) > 0.5) for n in (3, 2)]
    joined = Retrieved.cat(parts)
    assert joined.motion.shape == (5, 2, RETR) and joined.valid.shape == (5, 2)
    picked = joined.take(torch.tensor([4, 0]))             # row 4 = the second part's last row
    for got, first, second in ((picked.motion, parts[0].motion, parts[1].motion),
                               (picked.text, parts[0].text, parts[1].text),
                               (picked.valid, parts[0].valid, parts[1].valid)):
        assert torch.equal(got[0], second[1]) and torch.equal(got[1], first[0])
