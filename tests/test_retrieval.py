"""Part-level retriever (design §4.2), HBM loss with false-negative filtering (design §4.4), retrieval metrics
(docs/design.md §10.3) and training (docs/design.md §4.5), on real samples of the embedded dataset."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from remomask.data.datasets import TextMotionDataset, collate
from remomask.data.embedded import resolve_dataset
from remomask.data.layout import MotionLayout
from remomask.pipeline import DEFAULT_MODEL_DIR
from remomask.retrieval.config import RetrieverConfig, load_config
from remomask.retrieval.hbm import (
    BatchMeta,
    HBMLoss,
    NegativeQueue,
    direction_code,
    false_negative_mask,
    info_nce,
    momentum_update,
)
from remomask.retrieval.metrics import (
    batched_retrieval_metrics,
    best_correct_ranks,
    label_precision,
    recall_summary,
    retrieval_metrics,
)
from remomask.retrieval.model import PartRetriever, RetrieverLoadError, RetrieverOutput
from remomask.text import caption_key, default_text_encoder

TINY = dict(d_model=32, num_layers=1, num_heads=2, ff_size=64, embed_dim=64, text_ff_size=128, queue_size=64,
            batch_size=16, dropout=0.0, attn_dropout=0.0, head_dropout=0.0, frames_per_token=1, epochs=1,
            momentum=0.9, lr_motion=1e-3, lr_text=1e-3, lr_heads=1e-3, log_every=1)


def tiny(**kw) -> RetrieverConfig:
    return RetrieverConfig.preset_config("cpu", **{**TINY, **kw})


@pytest.fixture(scope="module")
def root():
    return resolve_dataset("embedded", progress=False)


@pytest.fixture(scope="module")
def val_ds(root):
    return TextMotionDataset(root, "val", mode="retriever", train=False)


def _meta(batch, sentence):
    return BatchMeta(torch.tensor([caption_key(c) for c in batch["caption"]]),
                     torch.tensor([caption_key("sample:" + k) for k in batch["key"]]), sentence)


def _batch_with_duplicate_captions(ds, size=16):
    """Indices of ``size`` real samples, the first two sharing their caption string."""
    caps = [ds.records[i].captions[0].text for i in range(len(ds))]
    seen = {}
    for i, c in enumerate(caps):
        if c in seen:
            first = [seen[c], i]
            break
        seen[c] = i
    rest = [i for i in range(len(ds)) if i not in first][: size - 2]
    return first + rest


# -- encoders --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fpt", [1, 3])
def test_padded_frames_do_not_change_the_motion_embedding(val_ds, fpt):
    torch.manual_seed(0)
    model = PartRetriever(tiny(frames_per_token=fpt), val_ds.mean, val_ds.std).eval()
    rec = next(r for r in val_ds.records if r.length >= 80)
    real = torch.from_numpy((rec.motion[:41] - val_ds.mean) / val_ds.std).float()  # 41 frames: partial token
    clean = torch.zeros(2, 80, 263)
    clean[:, :41] = real
    noisy = clean.clone()
    noisy[1, 41:] = 1e3 * torch.randn(39, 263)  # garbage in the padding only
    lengths = torch.tensor([41, 41])
    with torch.no_grad():
        g_clean, p_clean = model.encode_motion(clean, lengths)
        g_noisy, p_noisy = model.encode_motion(noisy, lengths)
        g_short, _ = model.encode_motion(real[None], torch.tensor([41]))
        changed = clean.clone()
        changed[1, 10] += 1.0  # a real frame: this must change the output
        g_changed, _ = model.encode_motion(changed, lengths)
    torch.testing.assert_close(g_noisy[1], g_clean[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p_noisy[1], p_clean[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_short[0], g_clean[0], atol=1e-5, rtol=1e-5)
    assert (g_changed[1] - g_clean[1]).abs().max() > 1e-3


def test_shapes_and_unit_norms(val_ds):
    model = PartRetriever(tiny(), val_ds.mean, val_ds.std)
    batch = collate([val_ds[i] for i in range(6)])
    tokens, mask, _ = default_text_encoder().encode(batch["caption"])
    out = model(batch["motion"], batch["length"], tokens, mask)
    assert out.text.shape == (6, 64) and out.motion.shape == (6, 64) and out.parts.shape == (6, 6, 64)
    for t in (out.text, out.motion, out.parts):
        torch.testing.assert_close(t.norm(dim=-1), torch.ones(t.shape[:-1]))


def test_padded_tokens_do_not_change_the_text_embedding(val_ds):
    model = PartRetriever(tiny(), val_ds.mean, val_ds.std).eval()
    tokens, mask, _ = default_text_encoder().encode(["a person bows.", "the person raises both hands above the head."])
    noisy = tokens.clone()
    noisy[0, int(mask[0].sum()):] = 50 * torch.randn_like(noisy[0, int(mask[0].sum()):])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text_features(noisy, mask), model.encode_text_features(tokens, mask))


def test_bad_lengths_are_rejected(val_ds):
    model = PartRetriever(tiny(), val_ds.mean, val_ds.std)
    with pytest.raises(ValueError, match="lengths"):
        model.encode_motion(torch.zeros(2, 10, 263), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="lengths"):
        model.encode_motion(torch.zeros(2, 10, 263), torch.tensor([11, 5]))


def test_paper_preset_sizes():
    c = RetrieverConfig.preset_config("paper")
    assert (c.d_model, c.num_layers, c.num_heads, c.ff_size, c.embed_dim) == (512, 4, 4, 1024, 512)
    assert (c.momentum, c.queue_size, c.batch_size, c.temperature) == (0.999, 65536, 128, 0.07)
    model = PartRetriever(c)
    n = sum(p.numel() for p in model.motion_encoder.parameters())
    # docs/design.md §4.2: the six 4-layer part encoders total 50.6M parameters (ours: fused qkv, same count)
    assert abs(n - 50.6e6) < 0.1e6


# -- loss ------------------------------------------------------------------------------------------------
def test_false_negative_mask_hand_built():
    e = torch.eye(4)
    close = torch.nn.functional.normalize(e[2] + 0.25 * e[3], dim=0)  # cosine 0.970 with e[2]
    far = torch.nn.functional.normalize(e[2] + 0.5 * e[1], dim=0)  # cosine 0.894 with e[2], 0.868 with close
    meta = BatchMeta(torch.tensor([1, 1, 2, 3, 4]), torch.tensor([10, 11, 12, 13, 10]),
                     torch.stack([e[0], e[0], e[2], close, far]))
    drop = false_negative_mask(meta, meta, 0.95)
    expected = torch.tensor([
        [1, 1, 0, 0, 1],  # 1: same caption id; 4: same sample id
        [1, 1, 0, 0, 0],
        [0, 0, 1, 1, 0],  # 3: caption embedding cosine 0.97 > 0.95; 4: 0.894 is kept
        [0, 0, 1, 1, 0],
        [1, 0, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(drop, expected)
    valid = torch.tensor([True, True, True, True, False])
    assert bool(false_negative_mask(meta, meta, 0.95, valid)[:, 4].all())  # an invalid key leaves every row


def test_filtering_removes_same_caption_negatives_from_the_denominator():
    torch.manual_seed(3)
    B, E = 4, 8
    t = torch.nn.functional.normalize(torch.randn(B, E), dim=1)
    m = torch.nn.functional.normalize(torch.randn(B, E), dim=1)
    caps = torch.nn.functional.normalize(torch.randn(B, 5), dim=1)
    caps[1] = caps[0]
    meta = BatchMeta(torch.tensor([7, 7, 8, 9]), torch.arange(B), caps)  # samples 0 and 1 share a caption
    online = RetrieverOutput(t, m, m[:, None].expand(B, 6, E))
    on = HBMLoss(tiny(use_queue=False, part_loss=False, filter_false_negatives=True), caption_dim=5)
    off = HBMLoss(tiny(use_queue=False, part_loss=False, filter_false_negatives=False), caption_dim=5)
    loss_on, st_on = on(online, None, meta)
    loss_off, st_off = off(online, None, meta)
    tau = 0.07
    s = t @ m.T / tau  # text i vs motion j

    def nce(sim, allowed):
        return torch.stack([-(sim[i, i] - torch.logsumexp(sim[i, allowed[i]], 0)) for i in range(B)]).mean()

    everything = [list(range(B))] * B
    filtered = [[0, 2, 3], [1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]]
    torch.testing.assert_close(st_off["t2m"], float(nce(s, everything)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(st_on["t2m"], float(nce(s, filtered)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(st_on["m2t"], float(nce(s.T, filtered)), atol=1e-5, rtol=1e-5)
    assert st_on["t2m"] < st_off["t2m"]


def test_filter_on_real_batch_drops_every_identical_caption(val_ds):
    idx = _batch_with_duplicate_captions(val_ds)
    batch = collate([val_ds[i] for i in idx])
    _, _, sentence = default_text_encoder().encode(batch["caption"])
    drop = false_negative_mask(_meta(batch, sentence), _meta(batch, sentence), 0.95)
    same = torch.tensor([[a == b for b in batch["caption"]] for a in batch["caption"]])
    assert same[0, 1]  # the constructed pair
    assert bool(drop[same].all())
    assert not bool(drop.all())


def test_queue_entries_with_the_query_caption_are_filtered():
    cfg = tiny(queue_size=4, part_loss=False, embed_dim=8)
    hbm = HBMLoss(cfg, caption_dim=3)
    e = torch.eye(3)
    B = 2
    t = torch.nn.functional.normalize(torch.randn(B, 8), dim=1)
    m = torch.nn.functional.normalize(torch.randn(B, 8), dim=1)
    out = RetrieverOutput(t, m, m[:, None].expand(B, 6, 8).contiguous())
    first = BatchMeta(torch.tensor([5, 6]), torch.tensor([50, 60]), e[:2])
    hbm(out, out, first)  # fills queue rows 0, 1 with captions 5 and 6
    second = BatchMeta(torch.tensor([5, 9]), torch.tensor([51, 90]), torch.stack([e[0], e[2]]))
    drop = false_negative_mask(second, hbm.queue.meta(), 0.95, hbm.queue.valid)
    # query 0 (caption 5) must not see queue row 0 (caption 5); rows 2, 3 are still empty
    assert drop.tolist() == [[True, False, True, True], [False, False, True, True]]


def test_direction_code_reads_the_direction_words():
    assert direction_code("A person raises the LEFT hand.") == 1
    assert direction_code("someone waves the right hand") == 2
    assert direction_code("a person lifts both hands") == 4
    assert direction_code("walks forwards, then turns leftward") == 8 | 1
    assert direction_code("steps backward and sideways") == 16 | 32
    assert direction_code("spins counter-clockwise") == direction_code("spins anticlockwise") == 128
    assert direction_code("turns clockwise") == 64
    assert direction_code("a person walks, tired") == 0
    assert direction_code("the leftover box is righteous") == 0  # whole words only


def test_direction_guard_keeps_left_right_captions_as_negatives():
    """The real sentence encoder puts mirror-image captions above the 0.95 threshold; the TMR rule drops them
    as false negatives, the guard keeps them, and both drop a paraphrase with the same direction."""
    caps = ["a human raises the left hand and waves actively, full of energy.",
            "a human raises the right hand and waves actively, full of energy.",
            "someone raises the left hand and waves actively, full of energy.",
            "a person walks and turns left.", "a person walks and turns right."]
    sentence = default_text_encoder().encode(caps).sentence
    sentence = torch.nn.functional.normalize(sentence.float(), dim=-1)
    assert float(sentence[0] @ sentence[1]) > 0.95 and float(sentence[3] @ sentence[4]) > 0.95
    ids = torch.tensor([caption_key(c) for c in caps])
    plain = BatchMeta(ids, torch.arange(5), sentence)
    guarded = BatchMeta(ids, torch.arange(5), sentence, torch.tensor([direction_code(c) for c in caps]))
    tmr, guard = false_negative_mask(plain, plain, 0.95), false_negative_mask(guarded, guarded, 0.95)
    assert tmr[0, 1] and tmr[3, 4]  # left vs right dropped by the threshold rule
    assert not guard[0, 1] and not guard[1, 2] and not guard[3, 4]  # kept as negatives with the guard
    assert guard[0, 2] == tmr[0, 2] and bool(guard[0, 2])  # a same-side paraphrase is still dropped
    assert bool((guard <= tmr).all())  # the guard only ever keeps more negatives


def test_queue_keeps_direction_codes_for_the_guard():
    cfg = tiny(queue_size=4, part_loss=False, embed_dim=8, filter_direction_guard=True)
    hbm = HBMLoss(cfg, caption_dim=3)
    assert "queue.directions" in hbm.state_dict()
    assert "queue.directions" not in HBMLoss(tiny(queue_size=4), caption_dim=3).state_dict()  # old checkpoints
    e = torch.eye(3)
    t = torch.nn.functional.normalize(torch.randn(2, 8), dim=1)
    out = RetrieverOutput(t, t, t[:, None].expand(2, 6, 8).contiguous())
    hbm(out, out, BatchMeta(torch.tensor([5, 6]), torch.tensor([50, 60]), e[:2], torch.tensor([1, 2])))
    assert hbm.queue.directions[:2].tolist() == [1, 2]
    query = BatchMeta(torch.tensor([7]), torch.tensor([70]), e[:1], torch.tensor([2]))  # same text as row 0, other side
    assert false_negative_mask(query, hbm.queue.meta(), 0.95, hbm.queue.valid).tolist() == [[False, False, True, True]]
    with pytest.raises(ValueError, match="direction"):
        hbm(out, out, BatchMeta(torch.tensor([5, 6]), torch.tensor([50, 60]), e[:2]))


def test_direction_guard_off_leaves_the_config_and_model_hash_unchanged():
    """Models trained before the option keep their config.json and hash (the database check needs it)."""
    assert "filter_direction_guard" not in tiny().to_dict()
    assert tiny(filter_direction_guard=True).to_dict()["filter_direction_guard"] is True
    bundled = PartRetriever.from_pretrained(DEFAULT_MODEL_DIR / "retriever")
    meta = json.loads((DEFAULT_MODEL_DIR / "database" / "meta.json").read_text())
    assert bundled.model_hash() == meta["model_hash"]


def test_queue_is_fifo_and_wraps():
    q = NegativeQueue(size=8, embed_dim=4, num_parts=6, caption_dim=3)
    for b in range(3):
        vals = torch.arange(5, dtype=torch.float32) + 10 * b  # row i of batch b holds 10 b + i
        emb = vals[:, None].expand(5, 4)
        parts = torch.stack([emb + 100 * k for k in range(6)], dim=1)  # (5, 6, 4)
        q.enqueue(RetrieverOutput(emb, -emb, parts),
                  BatchMeta(vals.long(), vals.long() + 1000, vals[:, None].expand(5, 3)))
        if b == 0:
            assert int(q.ptr) == 5 and q.valid.tolist() == [True] * 5 + [False] * 3
    # 15 entries through a queue of 8: rows 0,1 <- batch 1 items 3,4; rows 2..6 <- batch 2; row 7 <- batch 1 item 2
    assert int(q.ptr) == 7
    assert q.text[:, 0].tolist() == [13, 14, 20, 21, 22, 23, 24, 12]
    assert q.motion[:, 0].tolist() == [-13, -14, -20, -21, -22, -23, -24, -12]
    assert q.parts[5, :, 0].tolist() == [513, 514, 520, 521, 522, 523, 524, 512]
    assert q.caption_ids.tolist() == [13, 14, 20, 21, 22, 23, 24, 12]
    assert q.sample_ids.tolist() == [1013, 1014, 1020, 1021, 1022, 1023, 1024, 1012]
    assert bool(q.valid.all())


def test_momentum_update_is_an_ema():
    torch.manual_seed(0)
    online, target = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        online.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        target.weight.copy_(torch.tensor([0.0, 0.0, 10.0]))
        online.running_mean.copy_(torch.tensor([5.0, 6.0, 7.0]))
    momentum_update(online, target, 0.9)
    torch.testing.assert_close(target.weight.data, torch.tensor([0.1, 0.2, 9.3]))
    torch.testing.assert_close(target.running_mean, torch.tensor([5.0, 6.0, 7.0]))  # buffers copied


def test_info_nce_matches_cross_entropy_by_hand():
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    k = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0], [0.0, 1.0]]), dim=1)
    queue = torch.tensor([[-1.0, 0.0]])
    loss = info_nce(q, k, queue, None, 0.5)
    s = (q @ torch.cat([k, queue]).T) / 0.5
    manual = -0.5 * (s[0, 0] - torch.logsumexp(s[0], 0) + s[1, 1] - torch.logsumexp(s[1], 0))
    torch.testing.assert_close(loss, manual)


def test_hbm_loss_decreases_on_real_batches(val_ds):
    torch.manual_seed(0)
    cfg = tiny(queue_size=16, frames_per_token=2)  # the queue only ever holds this batch's own samples (filtered)
    model = PartRetriever(cfg, val_ds.mean, val_ds.std)
    momentum = PartRetriever(cfg, val_ds.mean, val_ds.std).requires_grad_(False)
    momentum.load_state_dict(model.state_dict())
    hbm = HBMLoss(cfg, caption_dim=384)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = collate([val_ds[i] for i in _batch_with_duplicate_captions(val_ds)])
    batch["motion"], batch["length"] = batch["motion"][:, :60], batch["length"].clamp(max=60)  # keep it fast
    tokens, mask, sentence = default_text_encoder().encode(batch["caption"])
    meta = _meta(batch, sentence)
    losses = []
    for _ in range(12):
        out = model(batch["motion"], batch["length"], tokens, mask)
        momentum_update(model, momentum, cfg.momentum)
        with torch.no_grad():
            keys = momentum(batch["motion"], batch["length"], tokens, mask)
        loss, stats = hbm(out, keys, meta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(stats["loss"])
        assert set(stats) >= {"t2m", "m2t", "t2p", "p2t", "acc_t2m", "dropped"}
    assert all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-3:]) < 0.7 * losses[1], losses
    # the momentum model moved towards the online one, but lags behind it
    w_on, w_mom = model.text_head.proj.weight, momentum.text_head.proj.weight
    assert not torch.equal(w_on, w_mom)


# -- metrics ---------------------------------------------------------------------------------------------
SIM = torch.tensor([[0.9, 0.1, 0.5],
                    [0.8, 0.7, 0.75],
                    [0.2, 0.3, 0.1]])


def test_ranks_and_recall_hand_built():
    eye = torch.eye(3, dtype=torch.bool)
    ranks = best_correct_ranks(SIM, eye)
    assert ranks.tolist() == [0, 2, 2]
    r = recall_summary(ranks, ks=(1, 2, 3))
    assert r["R@1"] == pytest.approx(100 / 3) and r["R@2"] == pytest.approx(100 / 3) and r["R@3"] == 100
    assert r["MedR"] == 3.0


def test_identical_captions_count_as_correct():
    # captions: walk, walk, run; text 1's best walk motion is item 0 (0.8), ranked first
    res = retrieval_metrics(*_embeddings_for(SIM), ["walk", "walk", "run"], ks=(1, 2, 3))
    assert res["t2m"]["R@1"] == pytest.approx(200 / 3)
    # motion-to-text: motion 0's best walk text is text 0 (0.9 > 0.8 > 0.2) -> rank 0;
    # motion 1: texts 0 (0.1) and 1 (0.7) are walks, text 2 scores 0.3 -> rank 0;
    # motion 2 (run): only text 2 (0.1); texts 0 (0.5) and 1 (0.75) score higher -> rank 2
    assert res["m2t"]["R@1"] == pytest.approx(200 / 3) and res["m2t"]["MedR"] == 1.0


def _embeddings_for(sim: torch.Tensor):
    """Text and motion vectors whose inner products are exactly ``sim``: texts = basis, motions = sim^T."""
    return torch.eye(sim.shape[0]), sim.T.clone()


def test_ties_are_broken_in_the_query_favour():
    sim = torch.tensor([[0.5, 0.5, 0.5]])
    assert best_correct_ranks(sim, torch.tensor([[False, False, True]])).tolist() == [0]


def test_label_precision_hand_built():
    sim = torch.tensor([[0.9, 0.8, 0.1, 0.7],
                        [0.1, 0.2, 0.9, 0.3]])
    items = ["walk", "run", "walk", "walk"]
    res = label_precision(sim, ["walk", "run"], items, ks=(1, 2, 3))
    # query 0 top-3: walk, run, walk -> 1, 1/2, 2/3; query 1 top-3: walk, walk, run -> 0, 0, 1/3
    assert res["P@1"] == pytest.approx(50.0)
    assert res["P@2"] == pytest.approx(100 * (1 + 0) / 4)
    assert res["P@3"] == pytest.approx(100 * (2 + 1) / 6)


def test_batch_protocol_equals_full_protocol_on_one_batch():
    torch.manual_seed(1)
    t = torch.nn.functional.normalize(torch.randn(32, 16), dim=1)
    m = torch.nn.functional.normalize(t + 0.8 * torch.randn(32, 16), dim=1)
    caps = [f"caption {i % 20}" for i in range(32)]
    full = retrieval_metrics(t, m, caps)
    batch = batched_retrieval_metrics(t, m, caps, batch_size=32, seed=5)
    assert batch["n"] == 32
    for d in ("t2m", "m2t"):
        for k, v in full[d].items():
            assert batch[d][k] == pytest.approx(v)
    with pytest.raises(ValueError, match="fewer than one batch"):
        batched_retrieval_metrics(t[:10], m[:10], caps[:10], batch_size=32)


def test_batches_make_retrieval_easier():
    torch.manual_seed(2)
    t = torch.nn.functional.normalize(torch.randn(256, 8), dim=1)
    m = torch.nn.functional.normalize(t + 0.9 * torch.randn(256, 8), dim=1)
    caps = [str(i) for i in range(256)]
    assert batched_retrieval_metrics(t, m, caps)["t2m"]["R@1"] > retrieval_metrics(t, m, caps)["t2m"]["R@1"]


# -- config and model files ------------------------------------------------------------------------------
def test_config_files_and_errors(tmp_path):
    cfg = tiny(seed=7)
    cfg.save(tmp_path / "c.json")
    again = load_config(tmp_path / "c.json")
    assert again == cfg
    assert load_config(preset="paper", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown keys"):
        load_config(preset="cpu", not_a_field=1)
    with pytest.raises(ValueError, match="temperature"):
        tiny(temperature=0)
    with pytest.raises(ValueError, match="clip_weights"):
        tiny(text_encoder="clip")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")


def test_save_and_load_pretrained(tmp_path, val_ds):
    torch.manual_seed(0)
    model = PartRetriever(tiny(), val_ds.mean, val_ds.std).eval()
    folder = model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert "Licence" in (folder / "README.md").read_text()
    loaded = PartRetriever.from_pretrained(folder)
    assert loaded.model_hash() == model.model_hash()
    assert json.loads((folder / "config.json").read_text())["d_model"] == 32
    batch = collate([val_ds[i] for i in range(3)])
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_motion(batch["motion"], batch["length"])[0],
                                   model.encode_motion(batch["motion"], batch["length"])[0])
    torch.testing.assert_close(loaded.feature_std, torch.as_tensor(val_ds.std))
    other = PartRetriever(tiny(), val_ds.mean, val_ds.std)
    assert other.model_hash() != model.model_hash()
    # corruption and mismatch are clear errors
    (folder / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(RetrieverLoadError, match="corrupt"):
        PartRetriever.from_pretrained(folder)
    model.save_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["d_model"] = 64
    cfg["num_heads"] = 4
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RetrieverLoadError, match="does not match"):
        PartRetriever.from_pretrained(folder)
    with pytest.raises(RetrieverLoadError, match="missing"):
        PartRetriever.from_pretrained(tmp_path / "nowhere")


# -- training --------------------------------------------------------------------------------------------
def test_training_runs_checkpoints_and_resumes(tmp_path, capsys):
    from remomask.retrieval.train import TrainingError, train_retriever

    cfg = tiny(train_split="val", val_split="val", checkpoint_every=1, frames_per_token=4, max_motion_length=64)
    out = tmp_path / "run"
    folder = train_retriever(cfg, out, max_steps=2, max_train_samples=48, max_val_samples=24, progress=False)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["step_in_epoch"] == 2 and ckpt["epoch"] == 0
    assert int(ckpt["hbm"]["queue.ptr"]) == 2 * 16 and int(ckpt["hbm"]["queue.valid"].sum()) == 32
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    assert any((out / "tb").iterdir())
    train_retriever(cfg, out, max_steps=3, max_train_samples=48, max_val_samples=24, progress=False)
    assert "resumed from" in capsys.readouterr().out
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    # 48 samples / 16 = 3 steps per epoch: step 3 ends epoch 1
    assert ckpt["global_step"] == 3 and ckpt["epoch"] == 1 and ckpt["step_in_epoch"] == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history] == [2, 3]
    assert set(history[-1]["val"]["t2m"]) == {"R@1", "R@2", "R@3", "R@5", "R@10", "MedR"}
    with pytest.raises(TrainingError, match="different config"):
        train_retriever(tiny(train_split="val", val_split="val", d_model=64, frames_per_token=4, max_motion_length=64),
                        out, max_steps=4,
                        max_train_samples=48, max_val_samples=24, progress=False)
