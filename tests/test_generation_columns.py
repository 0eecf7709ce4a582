"""Generators over the dual-branch tokenizer, whose columns have codebooks of different sizes (issue 20).

The ``paper`` tokenizer has 256 codes in each of its six 2D columns and 512 in its 1D column, so the
generators choose among K = 512 ids; a 2D column must never get an id >= 256 (``tokenizer.decode`` rejects
it), and the training loss must not spend probability on those ids either.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_TEXT, tiny_mask_config, tiny_residual_config

from remomask.generation import (
    MaskTransformer,
    ResidualTransformer,
    SamplingConfig,
    column_codes_of,
    generate_tokens,
    num_codes_of,
    restrict_to_columns,
)
from remomask.tokenizer import MotionTokenizer, TokenizerConfig

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def paper_tokenizer():
    torch.manual_seed(0)
    return MotionTokenizer(TokenizerConfig.preset("paper")).eval()


def _favour_high_ids(model, num_codes: int, low: int) -> None:
    """Push every position's logits towards the ids >= ``low`` (a model that would pick them without the mask)."""
    last = model.head[-1]
    with torch.no_grad():
        last.bias[low:num_codes] += 8.0


def test_column_codes_of_the_paper_tokenizer(paper_tokenizer):
    assert num_codes_of(paper_tokenizer) == 512
    assert column_codes_of(paper_tokenizer) == (256,) * 6 + (512,)
    logits = torch.zeros(2, 3 * 7, 512)
    masked = restrict_to_columns(logits, column_codes_of(paper_tokenizer))
    allowed = torch.isfinite(masked[0]).sum(-1).reshape(3, 7)
    assert (allowed[:, :6] == 256).all() and (allowed[:, 6] == 512).all()
    assert restrict_to_columns(logits, None) is logits


def test_generated_ids_stay_in_each_columns_codebook(paper_tokenizer):
    codes, cols = num_codes_of(paper_tokenizer), column_codes_of(paper_tokenizer)
    torch.manual_seed(0)
    mask = MaskTransformer(tiny_mask_config(num_codes=codes, num_columns=7, column_codes=cols)).eval()
    res = ResidualTransformer(tiny_residual_config(num_codes=codes, num_columns=7, num_quantizers=6,
                                                   column_codes=cols)).eval()
    _favour_high_ids(mask, codes, 256)
    text = torch.randn(3, TINY_TEXT, generator=torch.Generator().manual_seed(1))
    ids = generate_tokens(mask, res, text, [12, 7, 3], config=SamplingConfig(steps=3, cond_scale=2.0), generator=0)
    assert ids.shape == (3, 12, 7, 6)
    real = ids >= 0
    assert (ids[:, :, :6][real[:, :, :6]] < 256).all()
    assert (ids[:, :, 6, 0][real[:, :, 6, 0]] >= 256).float().mean() > 0.5   # the 1D column keeps its 512 codes
    motion = paper_tokenizer.decode(ids[:1, :12])                              # raised ValueError before
    assert motion.shape[:2] == (1, 48) and torch.isfinite(motion).all()


def test_loss_excludes_ids_outside_the_columns_codebook(paper_tokenizer):
    codes, cols = num_codes_of(paper_tokenizer), column_codes_of(paper_tokenizer)
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 256, (4, 10, 7), generator=gen)
    ids[..., 6] = torch.randint(0, 512, (4, 10), generator=gen)
    ids[1, 6:] = -1
    text = torch.randn(4, TINY_TEXT, generator=gen)
    losses = {}
    for name, column_codes in (("restricted", cols), ("all ids", None)):
        torch.manual_seed(0)
        model = MaskTransformer(tiny_mask_config(num_codes=codes, num_columns=7, column_codes=column_codes)).train()
        _favour_high_ids(model, codes, 256)
        out = model.loss(ids, text, None, generator=torch.Generator().manual_seed(3))
        losses[name] = float(out.loss.detach())
        out.loss.backward()
        if column_codes is not None:       # the masked ids get no gradient from the 2D columns: only the 1D one
            assert model.head[-1].bias.grad[256:].abs().sum() > 0
    # the same masked positions and labels; the mass on ids >= 256 of the 2D columns no longer counts
    assert losses["restricted"] < losses["all ids"] - 1.0
    res = ResidualTransformer(tiny_residual_config(num_codes=codes, num_columns=7, num_quantizers=6,
                                                   column_codes=cols))
    all_layers = torch.randint(0, 256, (4, 10, 7, 6), generator=gen)
    assert torch.isfinite(res.loss(all_layers, text, generator=gen).loss)


def test_corruption_codes_stay_in_each_columns_codebook():
    from remomask.generation import mask_grid

    ids = torch.zeros(64, 10, 7, dtype=torch.long)
    m = mask_grid(ids, 512, ratio=torch.ones(64), random_prob=1.0, generator=torch.Generator().manual_seed(0),
                  column_codes=(256,) * 6 + (512,))
    assert m.inputs[..., :6].max() < 256 and m.inputs[..., 6].max() >= 256


def test_benchmark_builds_the_paper_pipeline_and_generates():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from bench_generation import build_random_pipeline
    finally:
        sys.path.remove(str(BENCHMARKS))
    pipe = build_random_pipeline("paper", "cpu", entries=64)                   # raised ValueError before
    assert pipe.mask_transformer.config.num_codes == 512
    assert pipe.residual_transformer.config.column_codes == (256,) * 6 + (512,)
    out = pipe(["a person walks forward."], frames=40, seed=0, steps=1, cond_scale=4.0)
    assert out.token_ids.shape == (1, 10, 7, 6) and out.token_ids[..., :6, :].max() < 256
