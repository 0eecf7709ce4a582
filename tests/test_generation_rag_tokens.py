"""Retrieved motions as token sequences and multi-modal retrieval (docs/design.md §4.8, §4.9, §5.8; issue 14).

Real data: a small database of the first clips of the embedded val split, embedded by the bundled retriever,
with token grids from the bundled tokenizer. The generators are tiny (width 32, one layer of each kind) and
sharpened (conftest.sharpen) so that condition effects are O(1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import cut_embedded_val, sharpen

from remomask.generation import MaskTransformer, MaskTransformerConfig, Retrieved, generate_base
from remomask.generation.data import ConditionEncoder, tokenizer_fingerprint
from remomask.retrieval.database import DatabaseError, RetrievalDatabase
from remomask.retrieval.multimodal import search_multimodal
from remomask.retrieval.tokens import TOKENS_FILE, add_tokens

N_IDS = 14


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    return cut_embedded_val(tmp_path_factory.mktemp("rag_tokens") / "ds", N_IDS, ("train",))


@pytest.fixture(scope="module")
def retriever():
    from remomask.bundled import RETRIEVER_DIR
    from remomask.retrieval import PartRetriever

    return PartRetriever.from_pretrained(RETRIEVER_DIR).eval()


@pytest.fixture(scope="module")
def tokenizer():
    from remomask.bundled import TOKENIZER_DIR
    from remomask.tokenizer import MotionTokenizer

    return MotionTokenizer.from_pretrained(TOKENIZER_DIR).eval()


@pytest.fixture(scope="module")
def records(small_root):
    from remomask.retrieval.encode import load_records

    return load_records(str(small_root), "train")[0]


@pytest.fixture(scope="module")
def db(retriever, tokenizer, small_root, records):
    from remomask.retrieval.encode import build_database

    torch.set_num_threads(1)
    database = build_database(retriever, str(small_root), "train", progress=False)
    return add_tokens(database, tokenizer, records, tokenizer_name="bundled")


@pytest.fixture(scope="module")
def encoder(retriever, db):
    return ConditionEncoder(retriever.text_encoder, retriever, db, k=2, tokens=True)


def _config(**overrides) -> MaskTransformerConfig:
    fields = dict(num_codes=256, num_columns=7, max_tokens=50, token_dim=32, latent_dim=32, num_heads=2, ff_size=64,
                  dropout=0.0, attn_dropout=0.0, ssta_layers=1, joint_layers=1, time_layers=1, text_dim=384,
                  retrieval_dim=512, retrieval_k=2, retrieval_form="tokens")
    fields.update(overrides)
    return MaskTransformerConfig(**fields)


def _model(gate: float = 1.0, **overrides) -> MaskTransformer:
    """A sharpened tiny model; a ``memory_fusion="gated"`` one gets its memory gates set to ``gate`` (they start
    at 0, where the memory has no effect)."""
    torch.manual_seed(0)
    model = sharpen(MaskTransformer(_config(**overrides)), seed=1).eval()
    with torch.no_grad():
        for blk in model.ssta:
            if hasattr(blk, "mem_gate"):
                blk.mem_gate.fill_(gate)
    return model


def _batch(encoder, records, count: int = 3):
    """(ids (B, n, 7) of the records' first 40 frames, sentence (B, 384), Retrieved with grids), own motion excluded."""
    recs = records[:count]
    cond = encoder([r.captions[0].text for r in recs], [r.motion_id for r in recs])
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (count, 10, 7), generator=gen)
    ids[1, 7:] = -1                                                   # a shorter sample
    return ids, cond.sentence, cond.retrieval


# ---- database: token grids ---------------------------------------------------------------------------------------
def test_grids_are_the_tokenizers_base_layer(db, tokenizer, records):
    from remomask.data.normalization import normalize

    by_key = {r.key: r for r in records}
    t = db.tokens
    assert t.ids.dtype == np.int16 and t.num_columns == 7 and len(t.row) == len(db)
    for entry in (0, len(db) // 2, len(db) - 1):
        r = by_key[db.keys[entry]]
        frames = min(r.length, 196) // 4 * 4
        x = normalize(np.asarray(r.motion[:frames], np.float32), tokenizer.mean.numpy(), tokenizer.std.numpy())
        want = tokenizer.encode(torch.from_numpy(x)[None])[0, ..., 0].numpy()
        g = t.row[entry]
        assert t.lengths[g] == frames // 4
        assert np.array_equal(t.ids[g, : frames // 4], want) and (t.ids[g, frames // 4:] == -1).all()


def test_database_round_trip_with_tokens(db, tmp_path, tokenizer):
    folder = db.save(tmp_path / "db")
    meta = json.loads((folder / "meta.json").read_text())
    assert TOKENS_FILE in meta["sha256"] and meta["tokens"]["tokenizer_hash"] == tokenizer_fingerprint(tokenizer)
    back = RetrievalDatabase.load(folder, expected_tokenizer=tokenizer_fingerprint(tokenizer))
    for name in ("ids", "lengths", "row"):
        assert np.array_equal(getattr(back.tokens, name), getattr(db.tokens, name))
    # searches return the hits' grids; an empty slot (k > motions) is all -1
    q = torch.from_numpy(db.text_emb[:2])
    res = back.search(q, k=db.num_motions + 1)
    assert res.tokens.shape[:2] == (2, db.num_motions + 1) and res.tokens.shape[-1] == 7
    assert (res.tokens[:, -1] == -1).all()
    j = int(res.indices[0, 0])
    g = db.tokens.row[j]
    n = int(db.tokens.lengths[g])
    assert torch.equal(res.tokens[0, 0, :n], torch.from_numpy(db.tokens.ids[g, :n].astype(np.int64)))


def test_old_database_without_tokens_still_loads(db, tmp_path):
    plain = RetrievalDatabase(db.motion_emb, db.text_emb, db.captions, db.motion_ids, keys=db.keys)
    back = RetrievalDatabase.load(plain.save(tmp_path / "plain"))
    assert back.tokens is None and back.search(db.text_emb[:1], k=1).tokens is None
    with pytest.raises(DatabaseError, match="no token grids"):
        RetrievalDatabase.load(tmp_path / "plain", expected_tokenizer="0123456789abcdef")


def test_a_database_of_another_tokenizer_is_refused(db, tmp_path, retriever):
    folder = db.save(tmp_path / "db")
    with pytest.raises(DatabaseError, match="made by tokenizer .* not by this one"):
        RetrievalDatabase.load(folder, expected_tokenizer="0123456789abcdef")
    with pytest.raises(DatabaseError, match="not by this one"):
        db.check_tokens("0123456789abcdef")
    plain = RetrievalDatabase(db.motion_emb, db.text_emb, db.captions, db.motion_ids, keys=db.keys)
    with pytest.raises(DatabaseError, match="build-db .*--tokenizer"):
        ConditionEncoder(retriever.text_encoder, retriever, plain, k=1, tokens=True)


def test_grids_keep_the_training_self_exclusion(encoder, records, db):
    recs = records[:4]
    own = [r.motion_id for r in recs]
    cond = encoder([r.captions[0].text for r in recs], own, keep_hits=True)
    r = cond.retrieval
    assert r.tokens.shape[:2] == (4, 2) and r.tokens.dtype == torch.long
    for b, hits in enumerate(cond.hits):
        assert all(h["motion_id"] != own[b] for h in hits)
        for s, h in enumerate(hits):
            j = db.entry_ids.index(h["entry_id"])
            g = db.tokens.row[j]
            n = int(db.tokens.lengths[g])
            assert torch.equal(r.tokens[b, s, :n], torch.from_numpy(db.tokens.ids[g, :n].astype(np.int64)))
            assert (r.tokens[b, s, n:] == -1).all()


# ---- multi-modal retrieval ------------------------------------------------------------------------------------------
def test_t2m_and_t2t_neighbours_are_distinct_motions(db, retriever, records):
    q = retriever.encode_text([r.captions[0].text for r in records[:5]])
    own = [[r.motion_id] for r in records[:5]]
    res = search_multimodal(db, q, k_t2m=1, k_t2t=2, exclude=own, exclude_mirrors=True)
    t2m = db.search(q, 1, exclude=own, exclude_mirrors=True)
    t2t = db.search(q, 3, exclude=own, exclude_mirrors=True, target="text")
    for b in range(5):
        ids = [h.motion_id for h in res.hits[b]]
        assert len(ids) == 3 and len(set(ids)) == 3 and own[b][0] not in ids
        assert res.hits[b][0].index == t2m.hits[b][0].index                  # the text-to-motion slot first
        want = [h.index for h in t2t.hits[b] if h.motion_id != ids[0]][:2]    # then the best other captions
        assert [h.index for h in res.hits[b][1:]] == want
    assert res.tokens.shape[:2] == (5, 3)
    same = search_multimodal(db, q, k_t2m=2, k_t2t=0, exclude=own)
    assert torch.equal(same.indices, db.search(q, 2, exclude=own).indices)
    with pytest.raises(DatabaseError):
        search_multimodal(db, q, k_t2m=0, k_t2t=0)


def test_condition_encoder_mixes_the_modalities(retriever, db, records):
    enc = ConditionEncoder(retriever.text_encoder, retriever, db, k=3, k_t2t=2, tokens=True)
    recs = records[:3]
    cond = enc([r.captions[0].text for r in recs], [r.motion_id for r in recs], keep_hits=True)
    for b, hits in enumerate(cond.hits):
        ids = [h["motion_id"] for h in hits]
        assert len(set(ids)) == len(ids) == 3 and recs[b].motion_id not in ids
    with pytest.raises(ValueError, match="k_t2t"):
        ConditionEncoder(retriever.text_encoder, retriever, db, k=1, k_t2t=2)


# ---- the tokens-form masked transformer -----------------------------------------------------------------------------
def test_config_checks():
    with pytest.raises(ValueError, match="retrieval_form"):
        _config(retrieval_form="motion")
    with pytest.raises(ValueError, match="ECCV"):
        _config(ssta="linear")
    with pytest.raises(ValueError, match="retrieval_k_t2t"):
        _config(retrieval_k_t2t=3)
    with pytest.raises(ValueError, match="memory_fusion"):
        _config(memory_fusion="sum")
    with pytest.raises(ValueError, match="retrieval_form='tokens'"):
        _config(memory_fusion="gated", retrieval_form="embedding")
    assert MaskTransformerConfig().retrieval_form == "embedding"
    assert MaskTransformerConfig().memory_fusion == "joint"


@pytest.mark.parametrize("k,fusion", [(1, "joint"), (2, "joint"), (2, "gated")])
def test_forward_backward_and_sampling(encoder, records, k, fusion):
    model = _model(retrieval_k=k, memory_fusion=fusion).train()
    ids, sentence, retrieval = _batch(encoder, records)
    gen = torch.Generator().manual_seed(3)
    out = model.loss(ids, sentence, retrieval, generator=gen)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    for p in model.retr_tokens.parameters():                          # the memory gets gradients
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(blk.mem_norm.weight.grad is not None for blk in model.ssta)
    if fusion == "gated":                                             # the gate learns
        assert all(blk.mem_gate.grad is not None and blk.mem_gate.grad.abs() > 0 for blk in model.ssta)
    model.eval()
    a = generate_base(model, sentence, torch.tensor([10, 7, 5]), retrieval, steps=3, cond_scale=3.0, generator=5)
    b = generate_base(model, sentence, torch.tensor([10, 7, 5]), retrieval, steps=3, cond_scale=3.0, generator=5)
    assert torch.equal(a, b) and (a[1, 7:] == -1).all() and (a[1, :7] >= 0).all()


@pytest.mark.parametrize("fusion", ["joint", "gated"])
def test_the_memory_is_used_and_masked(encoder, records, fusion):
    model = _model(memory_fusion=fusion)
    ids, sentence, r = _batch(encoder, records)
    with torch.no_grad():
        base = model(ids, sentence, r)
        other = r.tokens.clone()
        other[r.tokens >= 0] = (other[r.tokens >= 0] + 17) % 256      # perturbed neighbour grids
        changed = model(ids, sentence, Retrieved(r.motion, r.text, r.valid, other))
        assert (changed - base).abs().amax() > 1e-2
        zero = model(ids, sentence, Retrieved(r.motion, r.text, r.valid, torch.zeros_like(r.tokens)))
        assert (zero - base).abs().amax() > 1e-2
        # the RAG-CFG null branch and an all-missing retrieval equal no retrieval input at all
        none = model(ids, sentence, None)
        null = model(ids, sentence, r, retrieval_on=False)
        missing = model(ids, sentence, Retrieved(r.motion, r.text, torch.zeros_like(r.valid), r.tokens))
        torch.testing.assert_close(null, none, rtol=0, atol=1e-5)
        torch.testing.assert_close(missing, none, rtol=0, atol=1e-5)
        assert (none - base).abs().amax() > 1e-2
        # a missing neighbour: its grid does not matter
        valid = r.valid.clone()
        valid[:, 1] = False
        one = model(ids, sentence, Retrieved(r.motion, r.text, valid, r.tokens))
        other2 = r.tokens.clone()
        other2[:, 1] = torch.randint(0, 256, other2[:, 1].shape, generator=torch.Generator().manual_seed(9))
        one_b = model(ids, sentence, Retrieved(r.motion, r.text, valid, other2))
        torch.testing.assert_close(one, one_b, rtol=0, atol=1e-5)
        assert (one - base).abs().amax() > 1e-2
        # padding rows of a grid do not matter: cutting the grid to its longest real row changes nothing
        longer = torch.cat([r.tokens, torch.full_like(r.tokens[:, :, :3], -1)], 2)
        torch.testing.assert_close(model(ids, sentence, Retrieved(r.motion, r.text, r.valid, longer)), base,
                                   rtol=0, atol=1e-5)


def test_gated_memory_starts_closed(encoder, records):
    """docs/design.md §5.9: with its gates at their initial 0 the gated model ignores the grids (it starts as the
    model without memory) and the memory reaches the output once a gate opens; the joint form reads the grids
    from the start."""
    ids, sentence, r = _batch(encoder, records)
    other = r.tokens.clone()
    other[r.tokens >= 0] = (other[r.tokens >= 0] + 17) % 256
    perturbed = Retrieved(r.motion, r.text, r.valid, other)
    closed = _model(gate=0.0, memory_fusion="gated")
    assert all(blk.mem_gate.item() == 0.0 for blk in MaskTransformer(_config(memory_fusion="gated")).ssta)
    with torch.no_grad():
        torch.testing.assert_close(closed(ids, sentence, perturbed), closed(ids, sentence, r), rtol=0, atol=0)
        opened = _model(gate=0.5, memory_fusion="gated")
        assert (opened(ids, sentence, perturbed) - opened(ids, sentence, r)).abs().amax() > 1e-2
        joint = _model(memory_fusion="joint")
        assert (joint(ids, sentence, perturbed) - joint(ids, sentence, r)).abs().amax() > 1e-2


def test_tokens_form_needs_grids(encoder, records):
    model = _model()
    ids, sentence, r = _batch(encoder, records)
    with pytest.raises(ValueError, match="token grids"):
        model(ids, sentence, Retrieved(r.motion, r.text, r.valid))


@pytest.mark.parametrize("fusion", ["joint", "gated"])
def test_save_and_load_a_tokens_checkpoint(encoder, records, tmp_path, fusion):
    model = _model(gate=0.7, memory_fusion=fusion)
    ids, sentence, r = _batch(encoder, records)
    model.save_pretrained(tmp_path / "m")
    back = MaskTransformer.from_pretrained(tmp_path / "m")
    assert back.config.retrieval_form == "tokens" and back.config == model.config
    with torch.no_grad():
        assert torch.equal(back(ids, sentence, r), model(ids, sentence, r))


def test_bundled_model_is_the_tokens_form_and_the_embedding_form_ignores_grids(encoder, records):
    """Since session 8 the bundled masked transformer is the tokens form (k = 2: one text-to-motion and one
    text-to-text neighbour; docs/results.md "Dataset v2 generators") and its database holds the grids; its
    generated ids are pinned by tests/test_generation_exact.py. An embedding-form model ignores token grids."""
    from remomask.bundled import DATABASE_DIR, PIPELINE_DIR

    mt = MaskTransformer.from_pretrained(PIPELINE_DIR / "mask_transformer")
    assert mt.config.retrieval_form == "tokens" and mt.config.retrieval_k == 2 and mt.config.retrieval_k_t2t == 1
    assert any("mem_norm" in k for k in mt.state_dict())
    assert (DATABASE_DIR / "tokens.safetensors").is_file()
    # an embedding-form model ignores token grids
    model = _model(retrieval_form="embedding")
    ids, sentence, r = _batch(encoder, records)
    with torch.no_grad():
        assert torch.equal(model(ids, sentence, r), model(ids, sentence, Retrieved(r.motion, r.text, r.valid)))


def test_build_db_command_stores_the_grids(small_root, tmp_path, tokenizer, db):
    from click.testing import CliRunner

    from remomask.bundled import RETRIEVER_DIR, TOKENIZER_DIR
    from remomask.cli.retrieve import build_db

    out = tmp_path / "cli_db"
    r = CliRunner().invoke(build_db, ["--model", str(RETRIEVER_DIR), "--dataset", str(small_root), "--out", str(out),
                                      "--tokenizer", str(TOKENIZER_DIR), "--threads", "1"])
    assert r.exit_code == 0, r.output
    back = RetrievalDatabase.load(out, expected_tokenizer=tokenizer_fingerprint(tokenizer))
    assert np.array_equal(back.tokens.ids, db.tokens.ids) and np.array_equal(back.tokens.row, db.tokens.row)


def test_training_feeds_the_grids(tmp_path_factory, tmp_path):
    """One training step of a tokens-form, t2m + t2t model on the 42-sample cut of test_generation_train.py
    (its tokenizer and retriever); a database with grids of another tokenizer is refused."""
    from test_generation_train import _cfg, build_components

    from remomask.generation.train import train_generation
    from remomask.tokenizer import MotionTokenizer

    parts = build_components(tmp_path_factory.getbasetemp() / "generation_components")
    tok = MotionTokenizer.from_pretrained(parts["tokenizer"]).eval()
    db = RetrievalDatabase.load(parts["retriever"] / "database")
    add_tokens(db, tok).save(tmp_path / "db")
    cfg = _cfg(parts, tmp_path / "run", "mask", iterations=1, eval_every=1, database=str(tmp_path / "db"),
               retrieval_form="tokens", retrieval_k=2, retrieval_k_t2t=1)
    model = MaskTransformer.from_pretrained(train_generation(cfg))
    assert model.config.retrieval_form == "tokens" and model.config.retrieval_k_t2t == 1
    assert model.card["exclude_self"] is True
    torch.manual_seed(0)
    other = MotionTokenizer(tok.config, tok.mean, tok.std).eval()             # same shapes, other weights
    add_tokens(db, other).save(tmp_path / "db_other")
    with pytest.raises(DatabaseError, match="not by this one"):
        train_generation(_cfg(parts, tmp_path / "run2", "mask", iterations=1, eval_every=1,
                              database=str(tmp_path / "db_other"), retrieval_form="tokens"))


def test_pipeline_with_a_tokens_form_model(db, retriever, tokenizer):
    """The cascade feeds the grids (prompts retrieved in separate chunks, grids of different lengths joined) and
    refuses a database without them."""
    from remomask.bundled import PIPELINE_DIR
    from remomask.generation import LengthEstimator, ResidualTransformer
    from remomask.pipeline import ReMoMaskPipeline

    mt = _model(retrieval_k=2, retrieval_k_t2t=1)
    res = ResidualTransformer.from_pretrained(PIPELINE_DIR / "residual_transformer")
    le = LengthEstimator.from_pretrained(PIPELINE_DIR / "length_estimator")
    plain = RetrievalDatabase(db.motion_emb, db.text_emb, db.captions, db.motion_ids, keys=db.keys)
    with pytest.raises(DatabaseError, match="no token grids"):
        ReMoMaskPipeline(tokenizer, mt, res, le, retriever=retriever, database=plain)
    pipe = ReMoMaskPipeline(tokenizer, mt, res, le, retriever=retriever, database=db)
    out = pipe(["a person walks forward", "someone jumps"], frames=[40, 60], seed=0, batch_size=1, steps=2)
    assert out.token_ids.shape[:3] == (2, 15, 7)
    assert all(len({h.motion_id if hasattr(h, "motion_id") else h["motion_id"] for h in hits}) == 2
               for hits in out.retrieved)
