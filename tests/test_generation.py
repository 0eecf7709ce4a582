"""Tests of the generation models: masked transformer (SSTA, RAG-CFG gates), masking, residual transformer,
length estimator, persistence, and a small overfitting run on token grids made from real HumanML3D motion.

docs/design.md §5.1-§5.6, §6.1, §7. Models here are tiny (width 32-64) so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_CODES, TINY_COLUMNS, TINY_RETRIEVAL, TINY_TEXT, sharpen, tiny_mask_config, tiny_residual_config

from remomask.generation import (
    IGNORE_INDEX,
    CheckpointError,
    LengthEstimator,
    LengthEstimatorConfig,
    MaskTransformer,
    MaskTransformerConfig,
    ResidualTransformer,
    ResidualTransformerConfig,
    Retrieved,
    codebooks_of,
    draw_gates,
    mask_grid,
    sample_layers,
)

K = TINY_CODES      # codes per layer in the tiny models
J = TINY_COLUMNS    # joint columns
TEXT, RETR = TINY_TEXT, TINY_RETRIEVAL


def tiny_mask(**kw) -> MaskTransformer:
    return MaskTransformer(tiny_mask_config(**{"ssta_layers": 2, "retrieval_k": 2, **kw})).eval()


def tiny_residual(**kw) -> ResidualTransformer:
    return ResidualTransformer(tiny_residual_config(**kw)).eval()


def random_grid(b: int, n: int, lengths, gen, layers: int | None = None) -> torch.Tensor:
    shape = (b, n, J) if layers is None else (b, n, J, layers)
    ids = torch.randint(0, K, shape, generator=gen)
    for i, length in enumerate(lengths):
        ids[i, length:] = -1
    return ids


def retrieval(b: int, gen, k: int = 2) -> Retrieved:
    return Retrieved(torch.randn(b, k, RETR, generator=gen), torch.randn(b, k, RETR, generator=gen),
                     torch.ones(b, k, dtype=torch.bool))


VARIANTS = [dict(ssta="eccv"), dict(ssta="eccv", text_value=True), dict(ssta="linear"),
            dict(ssta="eccv", use_retrieval=False), dict(ssta="linear", use_retrieval=False)]
VARIANT_IDS = ["eccv", "eccv-text-value", "linear", "eccv-norag", "linear-norag"]


# ---- masked transformer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", VARIANTS, ids=VARIANT_IDS)
def test_mask_transformer_shapes_and_gradients(kw):
    gen = torch.Generator().manual_seed(0)
    model = tiny_mask(**kw).train()
    ids = random_grid(3, 7, [7, 4, 1], gen)
    text = torch.randn(3, TEXT, generator=gen)
    logits = model(ids, text, retrieval(3, gen))
    assert logits.shape == (3, 7 * J, K) and torch.isfinite(logits).all()
    out = model.loss(ids, text, retrieval(3, gen), generator=gen)
    out.loss.backward()
    assert out.count > 0 and 0 <= float(out.accuracy) <= 1
    assert model.token_emb.weight.grad.abs().sum() > 0
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters outside the graph break DDP: {unused}"


@pytest.mark.parametrize("kw", VARIANTS, ids=VARIANT_IDS)
def test_padding_is_never_attended(kw):
    """Real positions get the same logits whatever follows them: more pad rows, other pad ids, or another
    sample in the batch."""
    gen = torch.Generator().manual_seed(1)
    model = tiny_mask(**kw)
    text, retr = torch.randn(2, TEXT, generator=gen), retrieval(2, gen)
    ids = random_grid(2, 5, [5, 3], gen)
    ids[1, 1, 2] = K                                          # a [MASK] token is a real position
    base = model(ids, text, retr)
    longer = torch.cat([ids, torch.full((2, 4, J), -1)], 1)                 # 4 extra pad rows
    longer[1, 3:] = K + 1                                                    # pad written as pad_id
    out = model(longer, text, retr).reshape(2, 9, J, K)
    torch.testing.assert_close(out[0, :5], base.reshape(2, 5, J, K)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1, :3], base.reshape(2, 5, J, K)[1, :3], atol=1e-5, rtol=1e-4)
    alone = model(ids[1:, :3], text[1:], Retrieved(retr.motion[1:], retr.text[1:], retr.valid[1:]))
    torch.testing.assert_close(alone.reshape(3, J, K), base.reshape(2, 5, J, K)[1, :3], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kw", VARIANTS[:3], ids=VARIANT_IDS[:3])
def test_gates_remove_text_and_retrieval(kw):
    """A dropped source changes nothing (keys and values gated); a kept one does."""
    gen = torch.Generator().manual_seed(2)
    model = sharpen(tiny_mask(**kw))
    ids = random_grid(2, 4, [4, 2], gen)
    t1, t2 = torch.randn(2, TEXT, generator=gen), torch.randn(2, TEXT, generator=gen)
    r1, r2 = retrieval(2, gen), retrieval(2, gen)
    on, off = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)

    # text dropped: output independent of the text (and equal to "no text at all")
    a = model(ids, t1, r1, text_on=off, retrieval_on=on)
    torch.testing.assert_close(a, model(ids, t2, r1, text_on=off, retrieval_on=on), atol=0, rtol=0)
    torch.testing.assert_close(a, model(ids, None, r1, retrieval_on=on), atol=0, rtol=0)
    assert (model(ids, t1, r1, text_on=on, retrieval_on=on) - model(ids, t2, r1, text_on=on, retrieval_on=on)).abs().max() > 1e-4

    # retrieval dropped: independent of both retrieved embeddings
    b = model(ids, t1, r1, text_on=on, retrieval_on=off)
    torch.testing.assert_close(b, model(ids, t1, r2, text_on=on, retrieval_on=off), atol=0, rtol=0)
    torch.testing.assert_close(b, model(ids, t1, None, text_on=on), atol=0, rtol=0)
    r_text_only = Retrieved(r1.motion, r2.text, r1.valid)     # only R_t changed: it acts through the keys
    r_motion_only = Retrieved(r2.motion, r1.text, r1.valid)
    for other in (r_text_only, r_motion_only):
        assert (model(ids, t1, r1, text_on=on, retrieval_on=on) - model(ids, t1, other, text_on=on, retrieval_on=on)).abs().max() > 1e-4

    # unconditional pass: both off == nothing given
    u = model(ids, t1, r1, text_on=off, retrieval_on=off)
    torch.testing.assert_close(u, model(ids, None, None), atol=0, rtol=0)
    torch.testing.assert_close(u, model(ids, t2, r2, text_on=off, retrieval_on=off), atol=0, rtol=0)


def test_empty_retrieval_slots_are_ignored():
    gen = torch.Generator().manual_seed(3)
    model = tiny_mask()
    ids = random_grid(2, 3, [3, 3], gen)
    text = torch.randn(2, TEXT, generator=gen)
    r = retrieval(2, gen)

    class Result:  # a RetrievalResult-like object: slot 1 empty (index -1)
        def __init__(self, motion):
            self.motion_emb, self.text_emb = motion, r.text
            self.indices = torch.tensor([[3, -1], [5, -1]])

    other = r.motion.clone()
    other[:, 1] = torch.randn(2, RETR, generator=gen)
    torch.testing.assert_close(model(ids, text, Result(r.motion)), model(ids, text, Result(other)), atol=0, rtol=0)


def test_no_retrieval_model_ignores_retrieval_and_uses_text():
    gen = torch.Generator().manual_seed(4)
    model = sharpen(tiny_mask(use_retrieval=False))
    assert not any("retr" in name or "sem_mlp" in name for name, _ in model.named_parameters())
    ids = random_grid(2, 3, [3, 2], gen)
    t1, t2 = torch.randn(2, TEXT, generator=gen), torch.randn(2, TEXT, generator=gen)
    torch.testing.assert_close(model(ids, t1, retrieval(2, gen)), model(ids, t1, None), atol=0, rtol=0)
    assert (model(ids, t1) - model(ids, t2)).abs().max() > 1e-4


def test_training_gates_drop_ten_percent_independently():
    gen = torch.Generator().manual_seed(5)
    n = 40000
    text_on, retr_on = draw_gates(n, 0.1, "cpu", gen), draw_gates(n, 0.1, "cpu", gen)
    sd = math.sqrt(0.1 * 0.9 / n)
    assert abs((~text_on).float().mean().item() - 0.1) < 5 * sd
    assert abs((~retr_on).float().mean().item() - 0.1) < 5 * sd
    assert abs((~text_on & ~retr_on).float().mean().item() - 0.01) < 5 * math.sqrt(0.01 * 0.99 / n)


def test_bad_inputs_raise_clear_errors():
    model = tiny_mask()
    ids = torch.zeros(1, 3, J, dtype=torch.long)
    with pytest.raises(ValueError, match="J'=6"):
        model(torch.zeros(1, 3, 5, dtype=torch.long), None)
    with pytest.raises(ValueError, match="token ids must be"):
        model(torch.full((1, 3, J), K + 2), None)
    with pytest.raises(ValueError, match="max_tokens"):
        model(torch.zeros(1, 17, J, dtype=torch.long), None)
    with pytest.raises(ValueError, match="at least one non-padding"):
        model(torch.full((1, 3, J), -1), None)
    with pytest.raises(ValueError, match="sentence embedding"):
        model(ids, torch.zeros(1, TEXT + 1))
    with pytest.raises(ValueError, match="unsqueeze"):
        model(ids, None, Retrieved(torch.zeros(1, RETR), torch.zeros(1, RETR), torch.ones(1, dtype=torch.bool)))
    with pytest.raises(ValueError, match="divisible"):
        MaskTransformerConfig(latent_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="ssta"):
        MaskTransformerConfig(ssta="flash")


# ---- masking ---------------------------------------------------------------------------------------------
def test_mask_grid_counts_follow_the_schedule():
    gen = torch.Generator().manual_seed(6)
    lengths = [10, 7, 3, 1, 10]
    ids = random_grid(5, 10, lengths, gen)
    ratio = torch.tensor([0.5, 0.3, 0.9, 0.2, 0.05])
    m = mask_grid(ids, K, ratio=ratio, generator=gen)
    for i, (n_b, p) in enumerate(zip(lengths, ratio.tolist())):
        rows = m.temporal[i].all(-1)
        assert int(rows.sum()) == max(1, round(n_b * p))                    # whole time rows
        assert not (m.temporal[i].any(-1) & ~rows).any()
        remaining = n_b * J - int(m.temporal[i].sum())
        assert int(m.spatial[i].sum()) == min(max(1, round(n_b * J * p)), remaining)
        assert not (m.spatial[i] & m.temporal[i]).any()
        assert not m.temporal[i, n_b:].any() and not m.spatial[i, n_b:].any()
    selected = m.temporal | m.spatial
    assert torch.equal(m.labels[selected], ids[selected])
    assert (m.labels[~selected] == IGNORE_INDEX).all()
    assert (m.inputs[ids < 0] == K + 1).all()                                # padding -> pad id
    assert torch.equal(m.inputs[~selected & (ids >= 0)], ids[~selected & (ids >= 0)])


def test_mask_ratio_is_cosine_distributed():
    gen = torch.Generator().manual_seed(7)
    ids = torch.zeros(20000, 1, 1, dtype=torch.long)
    p = mask_grid(ids, K, spatial=False, generator=gen).ratio
    # p = cos(pi u / 2): E[p] = 2 / pi, P(p < 1/2) = P(u > 2/3) = 1/3
    assert abs(p.mean().item() - 2 / math.pi) < 0.01
    assert abs((p < 0.5).float().mean().item() - 1 / 3) < 0.015


def test_bert_corruption_rates():
    gen = torch.Generator().manual_seed(8)
    ids = torch.randint(0, K, (400, 10, J), generator=gen)
    m = mask_grid(ids, K, ratio=torch.full((400,), 0.3), generator=gen)
    for sel in (m.spatial, m.temporal):
        x, y = m.inputs[sel], ids[sel]
        n = x.numel()
        masked = (x == K).float().mean().item()
        changed = ((x != K) & (x != y)).float().mean().item()
        # 10 % random codes (1/K of them equal the truth), 88 % of the remaining 90 % masked
        assert abs(masked - 0.9 * 0.88) < 5 * math.sqrt(0.19 / n) + 0.01
        assert abs(changed - 0.1 * (1 - 1 / K)) < 5 * math.sqrt(0.09 / n) + 0.01


def test_loss_only_counts_selected_positions():
    gen = torch.Generator().manual_seed(9)
    model = tiny_mask().train()
    ids = random_grid(4, 6, [6, 2, 5, 1], gen)
    ratio = torch.full((4,), 0.25)
    out = model.loss(ids, torch.randn(4, TEXT, generator=gen), ratio=ratio, generator=torch.Generator().manual_seed(0))
    m = mask_grid(ids, K, ratio=ratio, generator=torch.Generator().manual_seed(0))
    assert out.count == int((m.temporal | m.spatial).sum())


# ---- residual transformer ------------------------------------------------------------------------------
def test_residual_shapes_and_history():
    gen = torch.Generator().manual_seed(10)
    model = sharpen(tiny_residual())
    ids = random_grid(2, 5, [5, 3], gen, layers=4)
    text = torch.randn(2, TEXT, generator=gen)
    q = torch.tensor([2, 2])
    logits = model(ids, q, text)
    assert logits.shape == (2, 5 * J, K)
    higher = ids.clone()
    higher[..., 2:] = torch.randint(0, K, higher[..., 2:].shape, generator=gen)     # layers >= q are not inputs
    torch.testing.assert_close(model(higher, q, text), logits, atol=0, rtol=0)
    lower = ids.clone()
    lower[:, :, :, 1] = (lower[:, :, :, 1] + 1) % K
    lower[ids[..., 0] < 0] = -1
    assert (model(lower, q, text) - logits).abs().max() > 1e-4
    padded = torch.cat([ids, torch.full((2, 3, J, 4), -1)], 1)                     # pads are never attended
    torch.testing.assert_close(model(padded, q, text).reshape(2, 8, J, K)[:, :5][0],
                               logits.reshape(2, 5, J, K)[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="1..3"):
        model(ids, 4, text)


def test_residual_text_gate():
    gen = torch.Generator().manual_seed(11)
    model = sharpen(tiny_residual())
    ids = random_grid(2, 3, [3, 3], gen, layers=4)
    t1, t2 = torch.randn(2, TEXT, generator=gen), torch.randn(2, TEXT, generator=gen)
    off = torch.zeros(2, dtype=torch.bool)
    torch.testing.assert_close(model(ids, 1, t1, text_on=off), model(ids, 1, t2, text_on=off), atol=0, rtol=0)
    torch.testing.assert_close(model(ids, 1, t1, text_on=off), model(ids, 1, None), atol=0, rtol=0)
    assert (model(ids, 1, t1) - model(ids, 1, t2)).abs().max() > 1e-4


def test_residual_q_schedule_matches_closed_form():
    gen = torch.Generator().manual_seed(12)
    q_layers = 6
    q = sample_layers(50000, q_layers, generator=gen)
    assert q.min() >= 1 and q.max() <= q_layers - 1
    # q = round((1 - cos(pi u / 2)) * 4) + 1 = v + 1 when (1 - cos) * 4 in [v - 1/2, v + 1/2)
    edges = [0.0] + [min(1.0, (v + 0.5) / (q_layers - 2)) for v in range(q_layers - 2)] + [1.0]
    cdf = [2 / math.pi * math.acos(1 - e) for e in edges]
    expected = np.diff(cdf)
    observed = np.bincount(q.numpy() - 1, minlength=q_layers - 1) / len(q)
    np.testing.assert_allclose(observed, expected, atol=0.01)
    assert observed[0] > observed[-1]                                               # small-biased


def test_weight_sharing_ties_tables():
    model = tiny_residual(share_weights=True)
    for layer in (1, 2):
        assert model.embedding_table(layer).data_ptr() == model.classifier_table(layer).data_ptr()
    assert model.embedding_table(0).data_ptr() != model.classifier_table(3).data_ptr()
    for share in (True, False):                                                     # DDP: every table in the graph
        m = tiny_residual(share_weights=share).train()
        ids1 = random_grid(2, 3, [3, 3], torch.Generator().manual_seed(0), layers=4)
        m.loss(ids1, torch.randn(2, TEXT), q=torch.tensor([1, 1])).loss.backward()
        assert all(p.grad is not None for p in m.parameters())
    n_shared = sum(p.numel() for p in model.parameters())
    n_free = sum(p.numel() for p in tiny_residual(share_weights=False).parameters())
    assert n_free - n_shared == 2 * K * 24 + 3 * K                                  # two tables + biases saved
    # one tensor gets gradient from both uses
    gen = torch.Generator().manual_seed(13)
    ids = random_grid(2, 3, [3, 3], gen, layers=4)
    model.train()
    model.loss(ids, torch.randn(2, TEXT, generator=gen), q=torch.tensor([2, 2])).loss.backward()
    grad = model.shared.grad
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0                      # embed of layer 1, classifier of 2


def test_unshared_output_bias_is_added_once():
    gen = torch.Generator().manual_seed(14)
    model = tiny_residual(share_weights=False)
    ids = random_grid(1, 2, [2], gen, layers=4)
    text = torch.randn(1, TEXT, generator=gen)
    before = model(ids, 3, text)
    with torch.no_grad():
        model.classifier_bias[2] += 0.75
    torch.testing.assert_close(model(ids, 3, text), before + 0.75, atol=1e-5, rtol=0)


def test_residual_init_from_codebooks():
    model = tiny_residual()
    books = torch.randn(4, K, 24)
    model.init_from_codebooks(books)
    for layer in range(3):
        torch.testing.assert_close(model.embedding_table(layer), books[layer])
    with pytest.raises(ValueError, match="code_dim"):
        model.init_from_codebooks(torch.randn(4, K, 25))


# ---- length estimator --------------------------------------------------------------------------------
def test_length_estimator_predict():
    gen = torch.Generator().manual_seed(15)
    est = LengthEstimator(LengthEstimatorConfig(text_dim=TEXT, hidden=(32, 16), num_classes=50)).eval()
    text = torch.randn(3, TEXT, generator=gen)
    logits = est(text)
    assert logits.shape == (3, 50)
    arg = est.predict(text, mode="argmax", min_tokens=10, max_tokens=49)
    masked = logits.clone()
    masked[:, :10] = -float("inf")
    assert torch.equal(arg, masked.argmax(-1))
    draws = est.predict(text[:1].repeat(4000, 1), min_tokens=10, max_tokens=20, generator=gen)
    assert draws.min() >= 10 and draws.max() <= 20
    probs = torch.softmax(logits[0, 10:21], -1).detach().numpy()
    observed = np.bincount(draws.flatten().numpy() - 10, minlength=11) / draws.numel()
    np.testing.assert_allclose(observed, probs, atol=0.03)
    with pytest.raises(ValueError, match="mode"):
        est.predict(text, mode="mean")


def test_length_estimator_learns_lengths():
    """Two groups of prompts with different lengths: the estimator separates them."""
    gen = torch.Generator().manual_seed(16)
    est = LengthEstimator(LengthEstimatorConfig(text_dim=TEXT, hidden=(32, 16), num_classes=50, dropout=0.0))
    centres = torch.randn(2, TEXT, generator=gen)
    text = centres.repeat_interleave(16, 0) + 0.1 * torch.randn(32, TEXT, generator=gen)
    frames = torch.tensor([48] * 16 + [160] * 16)
    opt = torch.optim.Adam(est.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        est.loss(text, frames).loss.backward()
        opt.step()
    pred = est.predict(centres, mode="argmax")
    assert pred.tolist() == [12, 40]


# ---- persistence -------------------------------------------------------------------------------------
def test_save_and_load_roundtrip(tmp_path: Path):
    gen = torch.Generator().manual_seed(17)
    mask, res = tiny_mask(ssta="linear"), tiny_residual(share_weights=True)
    est = LengthEstimator(LengthEstimatorConfig(text_dim=TEXT, hidden=(16,)))
    ids = random_grid(2, 4, [4, 2], gen, layers=4)
    text, retr = torch.randn(2, TEXT, generator=gen), retrieval(2, gen)
    mask.save_pretrained(tmp_path / "mask", card={"note": "test"})
    res.save_pretrained(tmp_path / "res")
    est.save_pretrained(tmp_path / "len")
    assert sorted(p.name for p in (tmp_path / "mask").iterdir()) == ["config.json", "model.safetensors"]
    mask2 = MaskTransformer.from_pretrained(tmp_path / "mask")
    res2 = ResidualTransformer.from_pretrained(tmp_path / "res")
    est2 = LengthEstimator.from_pretrained(tmp_path / "len")
    assert mask2.config == mask.config and mask2.card == {"note": "test"}
    torch.testing.assert_close(mask2(ids[..., 0], text, retr), mask(ids[..., 0], text, retr), atol=0, rtol=0)
    torch.testing.assert_close(res2(ids, 2, text), res(ids, 2, text), atol=0, rtol=0)
    torch.testing.assert_close(est2(text), est.eval()(text), atol=0, rtol=0)
    assert res2.embedding_table(1).data_ptr() == res2.classifier_table(1).data_ptr()     # tie survives loading


def test_load_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MaskTransformer.from_pretrained(tmp_path / "missing")
    tiny_residual().save_pretrained(tmp_path / "res")
    with pytest.raises(CheckpointError, match="not 'remomask-mask-transformer'"):
        MaskTransformer.from_pretrained(tmp_path / "res")
    (tmp_path / "res" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        ResidualTransformer.from_pretrained(tmp_path / "res")
    tiny_mask().save_pretrained(tmp_path / "mask")
    meta = json.loads((tmp_path / "mask" / "config.json").read_text())
    meta["config"]["latent_dim"] = 64
    (tmp_path / "mask" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        MaskTransformer.from_pretrained(tmp_path / "mask")


def test_presets():
    paper = MaskTransformerConfig.preset("paper")
    assert (paper.latent_dim, paper.num_heads, paper.ssta_layers, paper.ff_size, paper.dropout) == (512, 8, 8, 1024, 0.2)
    res = ResidualTransformerConfig.preset("paper")
    assert (res.latent_dim, res.num_heads, res.layers, res.share_weights) == (384, 6, 8, True)
    cpu = MaskTransformerConfig.preset("cpu", num_codes=128)
    assert cpu.num_codes == 128 and cpu.latent_dim < paper.latent_dim
    assert MaskTransformerConfig.from_dict(cpu.to_dict()) == cpu
    assert LengthEstimatorConfig.from_dict(json.loads(json.dumps(LengthEstimatorConfig().to_dict()))) == LengthEstimatorConfig()
    with pytest.raises(ValueError, match="unknown preset"):
        MaskTransformerConfig.preset("gpu")
    with pytest.raises(ValueError, match="unknown MaskTransformerConfig keys"):
        MaskTransformerConfig.from_dict({"latent": 3})


# ---- overfitting on real motion tokens -----------------------------------------------------------------
def real_token_windows(fixtures_dir: Path, num_codes: int, window: int, stride: int) -> torch.Tensor:
    """Token grids from the two HumanML3D fixture motions: normalised features -> the tokenizer's (T, 24, 12)
    joint grid -> one 4-frame x 4-joint patch (192 values) per (time step, joint column) -> id of the nearest of
    ``num_codes`` patches drawn from the data (a frozen nearest-neighbour quantiser). Returns (W, window, 6)."""
    from remomask.tokenizer import to_grid

    folder = fixtures_dir / "humanml3d"
    mean, std = np.load(folder / "Mean.npy"), np.load(folder / "Std.npy")
    patches = []
    for name in ("new_joint_vecs__000612.npy", "new_joint_vecs__012314.npy"):
        feats = torch.from_numpy((np.load(folder / name) - mean) / std).float()
        grid = to_grid(feats)                                                     # (T, 24, 12)
        t4 = grid.shape[0] // 4 * 4
        p = grid[:t4].reshape(t4 // 4, 4, J, 4, 12).permute(0, 2, 1, 3, 4).reshape(t4 // 4, J, 192)
        patches.append(p)
    allp = torch.cat(patches).reshape(-1, 192)
    gen = torch.Generator().manual_seed(0)
    book = allp[torch.randperm(len(allp), generator=gen)[:num_codes]]
    windows = []
    for p in patches:
        ids = torch.cdist(p.reshape(-1, 192), book).argmin(-1).reshape(p.shape[:2])
        windows += [ids[s: s + window] for s in range(0, ids.shape[0] - window + 1, stride)]
    return torch.stack(windows)


def test_tiny_model_overfits_real_motion_tokens(fixtures_dir):
    torch.manual_seed(0)
    ids = real_token_windows(fixtures_dir, K, window=12, stride=6)[:8]             # (8, 12, 6)
    assert ids.shape == (8, 12, J) and len(ids.unique()) > K // 2                  # real, varied tokens
    gen = torch.Generator().manual_seed(18)
    b = ids.shape[0]
    text = torch.randn(b, TEXT, generator=gen)
    retr = retrieval(b, gen)
    model = tiny_mask(latent_dim=64, token_dim=64, ff_size=128, text_drop=0.0, retrieval_drop=0.0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    eval_ratio = torch.full((b,), 0.5)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            out = model.loss(ids, text, retr, ratio=eval_ratio, generator=torch.Generator().manual_seed(99))
        model.train()
        return float(out.loss)

    start = eval_loss()
    for _ in range(100):
        opt.zero_grad()
        model.loss(ids, text, retr, generator=gen).loss.backward()
        opt.step()
    end = eval_loss()
    assert start > 0.8 * math.log(K)
    print(f"overfit: masked CE {start:.3f} -> {end:.3f}")
    assert end < 0.25 * start, (start, end)


# ---- contracts with the other stages -----------------------------------------------------------------
def test_accepts_retrieval_results_text_features_and_tokenizer_codebooks():
    """The real objects of the retrieval, text and tokenizer stages fit the generation Protocols."""
    from remomask.retrieval.database import RetrievalResult
    from remomask.text import TextFeatures
    from remomask.tokenizer import MotionTokenizer, TokenizerConfig

    gen = torch.Generator().manual_seed(20)
    model = sharpen(tiny_mask())
    ids = random_grid(2, 3, [3, 2], gen)
    motion, text_emb = torch.randn(2, 2, RETR, generator=gen), torch.randn(2, 2, RETR, generator=gen)
    result = RetrievalResult(motion, text_emb, torch.zeros(2, 2), torch.tensor([[4, 9], [7, -1]]), [[], []])
    sentence = torch.randn(2, TEXT, generator=gen)
    feats = TextFeatures(torch.zeros(2, 3, TEXT), torch.ones(2, 3, dtype=torch.bool), sentence)
    expected = model(ids, sentence, Retrieved(motion, text_emb, torch.tensor([[True, True], [True, False]])))
    torch.testing.assert_close(model(ids, feats, result), expected, atol=0, rtol=0)

    tok = MotionTokenizer(TokenizerConfig.preset("cpu"))
    books = codebooks_of(tok)
    assert books.shape == (tok.num_quantizers, tok.config.num_codes, tok.config.code_dim)
    res = tiny_residual(num_codes=tok.config.num_codes, code_dim=tok.config.code_dim, num_quantizers=tok.num_quantizers)
    res.init_from_codebooks(books)
    with pytest.raises(TypeError, match="codebook"):
        codebooks_of(object())
