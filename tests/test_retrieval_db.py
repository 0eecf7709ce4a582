"""Retrieval database (design §4.6, §4.7), evaluation (design §10.3) and the retrieval commands, on a small
HumanML3D-layout folder cut from the embedded dataset's real val split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import cut_embedded_val

from remomask.cli.evaluate import evaluate_retrieval
from remomask.cli.retrieve import build_db, retrieve
from remomask.retrieval.config import RetrieverConfig
from remomask.retrieval.database import DatabaseError, RetrievalDatabase
from remomask.retrieval.encode import build_database, encode_split
from remomask.retrieval.evaluate import evaluate_retriever, text_to_text_baseline
from remomask.retrieval.model import PartRetriever

N_IDS = 30


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """The first 30 ids of the embedded val split (with their mirrors' originals or copies as listed)."""
    return cut_embedded_val(tmp_path_factory.mktemp("small") / "ds", N_IDS, ("train", "val", "test"))


@pytest.fixture(scope="module")
def model(small_root):
    torch.manual_seed(0)
    cfg = RetrieverConfig.preset_config("cpu", d_model=32, num_layers=1, num_heads=2, ff_size=64, embed_dim=48,
                                        text_ff_size=128)
    return PartRetriever(cfg, np.load(small_root / "Mean.npy"), np.load(small_root / "Std.npy")).eval()


@pytest.fixture(scope="module")
def db(model, small_root):
    return build_database(model, str(small_root), "train", progress=False)


def _brute_force(db: RetrievalDatabase, q: np.ndarray, k: int, exclude=()) -> list[int]:
    """Reference search: rank motions by score; per motion, the entry whose caption is closest to q."""
    scores = db.motion_emb @ q
    order = np.argsort(-scores, kind="stable")
    rows: dict[str, list[int]] = {}
    for r, m in enumerate(db.motion_ids):
        rows.setdefault(m, []).append(r)
    out, seen = [], set(exclude)
    for j in order:
        mid = db.motion_ids[j]
        if mid not in seen:
            seen.add(mid)
            out.append(max(rows[mid], key=lambda r: float(db.text_emb[r] @ q)))
        if len(out) == k:
            break
    return out


def test_database_holds_every_caption(db, small_root):
    n_lines = sum(len([ln for ln in p.read_text().splitlines() if ln.strip()])
                  for p in (small_root / "texts").iterdir())
    assert len(db) == n_lines and db.num_motions == N_IDS
    assert len(set(db.entry_ids)) == len(db)
    assert db.dim == 48
    np.testing.assert_allclose(np.linalg.norm(db.motion_emb, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(db.text_emb, axis=1), 1, atol=1e-5)
    # every caption of a motion shares that motion's embedding; segment bounds are its frames
    first = db.motion_ids[0]
    rows = [j for j, m in enumerate(db.motion_ids) if m == first]
    assert len(rows) >= 3
    np.testing.assert_array_equal(db.motion_emb[rows[0]], db.motion_emb[rows[-1]])
    assert db.ends[0] - db.starts[0] == np.load(small_root / "new_joint_vecs" / f"{first}.npy").shape[0]
    assert db.labels[0]["action"]


def test_search_deduplicates_and_matches_brute_force(db):
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((5, db.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    res = db.search(queries, k=6)
    assert res.motion_emb.shape == (5, 6, 48) and res.text_emb.shape == (5, 6, 48) and res.indices.shape == (5, 6)
    for b in range(5):
        assert res.indices[b].tolist() == _brute_force(db, queries[b], 6)
        ids = [h.motion_id for h in res.hits[b]]
        assert len(set(ids)) == 6
        assert all(res.scores[b, i] >= res.scores[b, i + 1] for i in range(5))
        torch.testing.assert_close(res.motion_emb[b, 0], torch.from_numpy(db.motion_emb[res.indices[b, 0]]))
        torch.testing.assert_close(res.text_emb[b, 0], torch.from_numpy(db.text_emb[res.indices[b, 0]]))


def test_own_motion_is_found_first_and_can_be_excluded(db):
    j = 7
    me = db.motion_ids[j]
    res = db.search(db.motion_emb[j], k=3)
    assert res.hits[0][0].motion_id == me and res.hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    res = db.search(db.motion_emb[j], k=3, exclude=[me])
    assert me not in [h.motion_id for h in res.hits[0]]
    assert res.indices[0].tolist() == _brute_force(db, db.motion_emb[j], 3, exclude=[me])
    # per-query exclusion lists
    res = db.search(np.stack([db.motion_emb[j], db.motion_emb[j]]), k=1, exclude=[None, [me]])
    assert res.hits[0][0].motion_id == me and res.hits[1][0].motion_id != me
    with pytest.raises(DatabaseError, match="one entry per query"):
        db.search(db.motion_emb[:2], k=1, exclude=[me])


def test_mirror_exclusion():
    e = np.eye(3, dtype=np.float32)
    db = RetrievalDatabase(e, e, ["a", "b", "c"], ["000441", "M000441", "000500"])
    res = db.search(e[0], k=3, exclude=[["000441"]], exclude_mirrors=True)
    assert [h.motion_id for h in res.hits[0]] == ["000500"]


def test_more_slots_than_motions_are_left_empty(db):
    res = db.search(db.motion_emb[0], k=N_IDS + 2)
    assert (res.indices[0, :N_IDS] >= 0).all() and res.indices[0, N_IDS:].tolist() == [-1, -1]
    assert torch.all(res.motion_emb[0, N_IDS:] == 0) and torch.isinf(res.scores[0, N_IDS:]).all()


def test_search_text_uses_the_model(db, model):
    caption = db.captions[3]
    res = db.search_text([caption], model, k=1)
    expected = _brute_force(db, model.encode_text([caption])[0].numpy(), 1)
    assert res.indices[0].tolist() == expected
    other = PartRetriever(model.config)
    with pytest.raises(DatabaseError, match="not by this model"):
        db.search_text([caption], other, k=1)


def test_text_target_finds_the_caption(db):
    res = db.search(db.text_emb[5], k=1, target="text")
    assert res.hits[0][0].caption == db.captions[5] or np.allclose(db.text_emb[res.indices[0, 0]], db.text_emb[5])


def test_save_load_and_corruption(db, model, tmp_path):
    import stat

    from remomask.files import file_mode

    folder = db.save(tmp_path / "database")
    # every file follows the umask (safetensors itself writes 0600, which others cannot read)
    assert {stat.S_IMODE(f.stat().st_mode) for f in folder.iterdir()} == {file_mode()}
    loaded = RetrievalDatabase.load(folder, model=model)
    q = db.motion_emb[:4] + 0.1
    assert torch.equal(loaded.search(q, k=4).indices, db.search(q, k=4).indices)
    assert loaded.captions == db.captions and loaded.labels == db.labels and loaded.model_hash == model.model_hash()
    with pytest.raises(DatabaseError, match="not by this model"):
        RetrievalDatabase.load(folder, model=PartRetriever(model.config))
    with pytest.raises(DatabaseError, match="64-d"):
        RetrievalDatabase.load(folder, expected_dim=64)
    # a flipped byte in the embeddings
    raw = bytearray((folder / "embeddings.safetensors").read_bytes())
    raw[-5] ^= 0xFF
    (folder / "embeddings.safetensors").write_bytes(bytes(raw))
    with pytest.raises(DatabaseError, match="corrupt"):
        RetrievalDatabase.load(folder)
    db.save(folder)  # saving again replaces the folder
    (folder / "meta.json").write_text("{broken")
    with pytest.raises(DatabaseError, match="corrupt"):
        RetrievalDatabase.load(folder)
    db.save(folder)
    (folder / "entries.json").unlink()
    with pytest.raises(DatabaseError, match="missing"):
        RetrievalDatabase.load(folder)
    with pytest.raises(DatabaseError, match="no retrieval database"):
        RetrievalDatabase.load(tmp_path / "nowhere")


def test_constructor_rejects_bad_input():
    e = np.eye(3, dtype=np.float32)
    with pytest.raises(DatabaseError, match="rows"):
        RetrievalDatabase(e, e[:2], ["a"] * 3, ["1", "2", "3"])
    with pytest.raises(DatabaseError, match="captions has 2"):
        RetrievalDatabase(e, e, ["a", "b"], ["1", "2", "3"])
    with pytest.raises(DatabaseError, match="NaN"):
        RetrievalDatabase(e * np.nan, e, ["a"] * 3, ["1", "2", "3"])
    with pytest.raises(DatabaseError, match="index kind"):
        RetrievalDatabase(e, e, ["a"] * 3, ["1", "2", "3"], index="lsh")
    with pytest.raises(DatabaseError, match="queries"):
        RetrievalDatabase(e, e, ["a"] * 3, ["1", "2", "3"]).search(np.ones((1, 4)), k=1)


@pytest.mark.parametrize("kind,params", [("hnsw", {"M": 16, "ef_search": 64}), ("ivf", {"nlist": 16, "nprobe": 8})])
def test_approximate_indexes_agree_with_exact(kind, params, tmp_path):
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 32))
    data = (centres[rng.integers(0, 40, 4000)] + 0.3 * rng.standard_normal((4000, 32))).astype(np.float32)
    ids = [str(i) for i in range(4000)]
    exact = RetrievalDatabase(data, data, ids, ids)
    approx = RetrievalDatabase(data, data, ids, ids, index=kind, index_params=params)
    q = (centres[rng.integers(0, 40, 50)] + 0.3 * rng.standard_normal((50, 32))).astype(np.float32)
    a, b = exact.search(q, k=10).indices.numpy(), approx.search(q, k=10).indices.numpy()
    recall = np.mean([len(set(a[i]) & set(b[i])) / 10 for i in range(50)])
    assert recall >= 0.9, recall
    loaded = RetrievalDatabase.load(approx.save(tmp_path / kind))
    assert loaded.index_kind == kind
    assert np.array_equal(loaded.search(q, k=10).indices.numpy(), b)


# -- evaluation ------------------------------------------------------------------------------------------
def test_evaluation_pool_and_database(model, db, small_root):
    res = evaluate_retriever(model, str(small_root), "val", database=db)
    assert res["n"] == N_IDS
    emb = encode_split(model, str(small_root), "val")
    assert emb.text.shape == (N_IDS, 48)
    # recompute t2m R@1 by hand from the embeddings: identical captions count as correct
    sim = emb.text @ emb.motion.T
    hits = [any(emb.captions[j] == emb.captions[i] for j in [int(sim[i].argmax())]) for i in range(N_IDS)]
    assert res["t2m"]["R@1"] == pytest.approx(100 * np.mean(hits))
    assert 0 <= res["database"]["action"]["P@1"] <= 100
    batch = evaluate_retriever(model, str(small_root), "val", protocol="batch", batch_size=10)
    assert batch["n"] == 30 and batch["batch_size"] == 10


def test_text_to_text_baseline_finds_identical_captions(small_root):
    # the query captions are in the database: each query retrieves its own motion, so precision@1 is 100
    res = text_to_text_baseline(str(small_root), "val", db_split="train")
    assert res["database"]["action_style"]["P@1"] == 100.0 and res["t2m"] is None


# -- commands --------------------------------------------------------------------------------------------
def test_commands_build_retrieve_evaluate(model, small_root, tmp_path):
    mdir = model.save_pretrained(tmp_path / "model")
    runner = CliRunner()
    r = runner.invoke(build_db, ["--model", str(mdir), "--dataset", str(small_root), "--index", "hnsw"])
    assert r.exit_code == 0, r.output
    assert (mdir / "database" / "index.faiss").is_file()
    r = runner.invoke(retrieve, ["a person raises both hands", "-k", "3", "--model", str(mdir), "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert len(payload["results"]) == 3 and len({h["motion_id"] for h in payload["results"]}) == 3
    r = runner.invoke(retrieve, ["a person raises both hands", "-k", "2", "--model", str(mdir)])
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) == 2
    out = tmp_path / "eval.json"
    r = runner.invoke(evaluate_retrieval, ["--model", str(mdir), "--dataset", str(small_root), "--split", "val",
                                           "--json", str(out)])
    assert r.exit_code == 0, r.output
    saved = json.loads(out.read_text())
    assert saved["split"] == "val" and "R@10" in saved["t2m"] and "database" in saved
    r = runner.invoke(evaluate_retrieval, ["--baseline", "text-to-text", "--dataset", str(small_root), "--split", "val"])
    assert r.exit_code == 0, r.output
    assert "text-to-text" in r.output and "database label precision (action)  P@1 100.00" in r.output
    r = runner.invoke(retrieve, ["a person walks", "--model", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "error:" in r.output and "missing" in r.output
    r = runner.invoke(retrieve, ["  ", "--model", str(mdir)])
    assert r.exit_code == 2 and "empty" in r.output


def test_float16_storage_is_smaller_and_searches_alike(db, model, tmp_path):
    """float16 storage (the bundled model's database) halves the file and keeps the rankings."""
    full = db.save(tmp_path / "fp32")
    half = db.save(tmp_path / "fp16", dtype="float16")
    size = lambda f: (f / "embeddings.safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.6 * size(full)
    loaded = RetrievalDatabase.load(half, model=model)
    assert loaded.motion_emb.dtype == np.float32 and loaded.motion_emb.shape == db.motion_emb.shape
    assert np.abs(loaded.motion_emb - db.motion_emb).max() < 2e-3
    assert np.abs(loaded.text_emb - db.text_emb).max() < 2e-3
    q = db.text_emb
    a, b = db.search(q, k=3), loaded.search(q, k=3)
    assert (a.indices[:, 0] == b.indices[:, 0]).float().mean() > 0.95
    assert torch.allclose(a.scores, b.scores, atol=5e-3)
    # the deduplicated float32 file loads back exactly
    exact = RetrievalDatabase.load(full)
    assert np.array_equal(exact.motion_emb, db.motion_emb)
    with pytest.raises(DatabaseError, match="dtype"):
        db.save(tmp_path / "bad", dtype="int8")


def test_unit_rows_keep_their_bits(db):
    """Normalising already normalised rows again is the identity (it was off by 1 ulp: issue 19's red CI)."""
    again = RetrievalDatabase(db.motion_emb, db.text_emb, db.captions, db.motion_ids)
    assert np.array_equal(again.motion_emb, db.motion_emb) and np.array_equal(again.text_emb, db.text_emb)
    scaled = RetrievalDatabase(3.0 * db.motion_emb, db.text_emb, db.captions, db.motion_ids)
    assert np.allclose(np.linalg.norm(scaled.motion_emb, axis=1), 1.0, atol=1e-6)
