"""The retrieval-only baseline (issue 6): RetrieverNearest + RetrievalBaseline and
``remomask evaluate t2m --baseline retrieval``.

Reuses the small real retriever set-up of ``test_retrieval_db``: the first 30 ids of the embedded
dataset's val split as a HumanML3D-layout folder (its train split), a small untrained PartRetriever and
its database built with ``build_database``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_retrieval_db import db, model, small_root  # noqa: F401  (module-scoped fixtures, reused)

from remomask.data.layout import MotionLayout
from remomask.evaluation.baselines import (
    DEFAULT_RETRIEVER_DIR,
    BaselineError,
    RetrievalBaseline,
    RetrieverNearest,
    source_clip,
)
from remomask.cli.evaluate import evaluate_t2m as evaluate_cmd

CAPTIONS = ["a person waves with the right hand", "someone walks forward", "a person bows politely",
            "a man runs in a circle"]


@pytest.fixture(scope="module")
def train_layout(small_root):  # noqa: F811
    """The samples the database was built from (retriever loader: no length filter)."""
    return MotionLayout(small_root, "train", min_length=0, max_length=None, progress=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, model, db):  # noqa: F811
    """The small retriever and its database written as folders (what the CLI loads)."""
    folder = tmp_path_factory.mktemp("retriever") / "model"
    model.save_pretrained(folder)
    db.save(folder / "database")
    return folder


def test_nearest_returns_the_train_features_of_the_retrieved_entry(model, db, small_root, train_layout):  # noqa: F811
    nearest = RetrieverNearest(model, db)
    assert nearest.root == small_root  # the database records its dataset folder
    found = nearest(CAPTIONS)
    assert len(found) == len(CAPTIONS) == len(nearest.last_hits)
    # the hits are the top-1 of a direct search with the same text embeddings
    direct = db.search(model.encode_text(CAPTIONS), k=1)
    assert [h.index for h in nearest.last_hits] == [hits[0].index for hits in direct.hits]
    for feats, hit in zip(found, nearest.last_hits):
        rec = train_layout.by_key(hit.key)
        assert rec.motion_id == hit.motion_id and rec.start_frame == hit.start
        assert feats.dtype == np.float32 and feats.shape == (rec.length, 263)
        np.testing.assert_array_equal(feats, rec.motion)  # de-normalised train features, bit for bit
    prov = nearest.provenance
    assert prov["queries"] == len(CAPTIONS) and prov["database_split"] == "train"
    assert prov["database_entries"] == len(db) and prov["model_hash"] == model.model_hash()
    assert -1.0 <= prov["mean_top1_score"] <= 1.0


def test_nearest_encodes_each_batch_of_captions_once(model, db, monkeypatch):  # noqa: F811
    calls = []
    original = type(model).encode_text

    def counting(self, texts):
        calls.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(type(model), "encode_text", counting)
    RetrieverNearest(model, db)(CAPTIONS)
    assert calls == [len(CAPTIONS)]


def test_baseline_crops_to_the_length_and_skips_the_prompt_clip(model, db, train_layout):  # noqa: F811
    nearest = RetrieverNearest(model, db)
    base = RetrievalBaseline(nearest, pass_labels=True)
    lengths = torch.tensor([40, 48, 500, 60])
    out, used = base(CAPTIONS, lengths, [{} for _ in CAPTIONS])
    hits = list(nearest.last_hits)
    for i, hit in enumerate(hits):
        rec = train_layout.by_key(hit.key)
        n = min(int(lengths[i]), rec.length)
        assert int(used[i]) == n
        torch.testing.assert_close(out[i, :n], torch.from_numpy(rec.motion[:n]))  # frames 0..n of the motion
        assert float(out[i, n:].abs().sum()) == 0.0
    assert base.fallbacks["short"] >= 1  # no train sample has 500 frames: returned whole
    assert base.provenance["queries"] == len(CAPTIONS)

    # a prompt whose own clip is in the database never gets that clip (nor its mirror) back
    labels = [{"motion_id": h.motion_id, **h.labels} for h in hits]
    base(CAPTIONS, lengths, labels)
    for own, new in zip(hits, nearest.last_hits):
        assert source_clip(new.labels, new.motion_id) != source_clip(own.labels, own.motion_id)
        assert new.motion_id.lstrip("M") != own.motion_id.lstrip("M")
    assert nearest.provenance["queries_with_exclusions"] == len(CAPTIONS)


def test_nearest_rejects_a_database_of_another_model_or_dataset(model, db, saved, tmp_path):  # noqa: F811
    other = type(model)(model.config, model.feature_mean.numpy(), model.feature_std.numpy())
    with pytest.raises(BaselineError, match="build-db"):
        RetrieverNearest(other, db)
    with pytest.raises(BaselineError, match="new_joint_vecs"):
        RetrieverNearest(model, db, root=tmp_path)
    with pytest.raises(BaselineError, match=r"no retrieval database at .*remomask retriever build-db --model"):
        RetrieverNearest.from_folders(saved, tmp_path / "nowhere")


def test_cli_retrieval_baseline_runs_and_writes_provenance(saved, tmp_path):
    out = tmp_path / "res.json"
    res = CliRunner().invoke(evaluate_cmd, ["--baseline", "retrieval", "--retriever", str(saved), "--split", "val",
                                            "--repeats", "1", "--json", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Retrieval-only" in res.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["name"] == "Retrieval-only" and row["metrics"]["fid"]["mean"] > 0
    prov = row["info"]["provenance"]
    assert prov["database"] == str(saved / "database") and prov["queries"] == row["info"]["samples_per_repeat"]
    assert "short" in row["info"]["fallbacks"]


def test_cli_missing_database_is_one_clear_line(saved, tmp_path):
    import shutil

    bare = tmp_path / "bare"  # a retriever folder without database/ (as the bundled one ships)
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(saved / name, bare)
    runner = CliRunner()
    res = runner.invoke(evaluate_cmd, ["--baseline", "retrieval", "--retriever", str(bare), "--split", "val",
                                       "--repeats", "1", "--no-progress"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: no retrieval database at {bare / 'database'}")
    assert f"build it with `remomask retriever build-db --model {bare}`" in lines[0]
    # default: the bundled pipeline's retriever with the bundled database (issue 19: it had none)
    nearest = RetrieverNearest.from_folders()
    assert Path(nearest.retriever_dir) == DEFAULT_RETRIEVER_DIR and len(nearest.db) > 1000
    res = runner.invoke(evaluate_cmd, ["--baseline", "retrieval", "--retriever", str(tmp_path / "none"),
                                       "--split", "val", "--repeats", "1"])
    assert res.exit_code == 2 and "config.json is missing" in res.output
    res = runner.invoke(evaluate_cmd, ["--database", str(tmp_path), "--split", "val", "--repeats", "1"])
    assert res.exit_code == 2 and "--baseline retrieval" in res.output
