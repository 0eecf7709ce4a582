"""The bundled default model (issue 7): it loads offline from the package, fits the size budget, has its
card, generates the requested lengths reproducibly, and follows the prompt on real test captions.

The behavioural checks use plain kinematics of the generated joints (metres, Y up, 20 fps), with margins
set from what the shipped model does (docs/generation.md), far from what a model that ignores the text
would do: a walking prompt travels, an arms-up prompt lifts both wrists over the head and stays put.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from remomask import ReMoMaskPipeline
from remomask.pipeline import DEFAULT_MODEL_DIR


@pytest.fixture(scope="module")
def pipe():
    return ReMoMaskPipeline.from_pretrained()


def _travel(joints: np.ndarray) -> float:
    """Horizontal distance (m) between the first and the last root position."""
    return float(np.linalg.norm(joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]]))


def _wrists_over_head(joints: np.ndarray) -> float:
    """Highest (lower of the two wrists) - head height over the motion, metres."""
    return float((np.minimum(joints[:, 20, 1], joints[:, 21, 1]) - joints[:, 15, 1]).max())


def test_bundle_size_card_and_components():
    files = [f for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    assert size < 100 * 2 ** 20, f"bundled model is {size / 2 ** 20:.1f} MiB, the budget is 100"
    meta = json.loads((DEFAULT_MODEL_DIR / "pipeline.json").read_text())
    assert all(meta["components"][k] for k in ("tokenizer", "mask_transformer", "residual_transformer",
                                               "length_estimator", "retriever", "database"))
    card = (DEFAULT_MODEL_DIR / "README.md").read_text()
    stats = json.loads((DEFAULT_MODEL_DIR.parent.parent / "datasets" / "embedded" / "stats.json").read_text())
    assert stats["content_hash"][:12] in card  # the data version the weights were trained on
    assert "CC BY-NC 4.0" in card and "remomask train mask-transformer" in card


def test_generates_requested_lengths_reproducibly(pipe):
    prompts = ["a person walks in a curve to the right.", "someone waves the left hand."]
    out = pipe(prompts, seconds=[4.0, 3.0], seed=0)
    assert out.lengths.tolist() == [80, 60]
    assert out.joints.shape == (2, 80, 22, 3) and out.features.shape == (2, 80, 263)
    assert np.isfinite(out.joints).all() and np.isfinite(out.features).all()
    assert not out.joints[1, 60:].any()  # zeros after the length
    again = pipe(prompts, seconds=[4.0, 3.0], seed=0)
    other = pipe(prompts, seconds=[4.0, 3.0], seed=1)
    assert np.array_equal(out.joints, again.joints)
    assert not np.array_equal(out.joints, other.joints)
    estimated = pipe(["a person jogs in a small circle to the left."], seed=0)
    assert 40 <= int(estimated.lengths[0]) <= 196 and estimated.length_source == ["estimated"]


def test_retrieval_finds_the_action(pipe):
    out = pipe(["someone waves the left hand."], seconds=3.0, seed=0)
    hit = out.retrieved[0][0]
    assert "wave" in hit["caption"] and "left" in hit["caption"], hit


def test_generated_motion_follows_the_prompt(pipe):
    """Test-split captions: walking travels, raising both arms lifts the wrists over the head in place."""
    walk = pipe(["a person walks in a curve to the right."] * 4, seconds=4.0, seed=3)
    arms = pipe(["the person raises both arms up high."] * 4, seconds=4.0, seed=3)
    walk_travel = [_travel(j[:n]) for j, n in zip(walk.joints, walk.lengths)]
    arms_travel = [_travel(j[:n]) for j, n in zip(arms.joints, arms.lengths)]
    arms_up = [_wrists_over_head(j[:n]) for j, n in zip(arms.joints, arms.lengths)]
    walk_up = [_wrists_over_head(j[:n]) for j, n in zip(walk.joints, walk.lengths)]
    assert min(walk_travel) > 1.0, walk_travel          # 4 s of walking: metres, not centimetres
    assert max(arms_travel) < 0.6, arms_travel          # raising the arms happens in place
    assert min(arms_up) > 0.0, arms_up                  # both wrists above the head at some point
    assert max(walk_up) < 0.0, walk_up                  # never while walking


def test_pipeline_captions_with_its_own_captioner(pipe, tmp_path):
    """``pipe.caption`` uses the bundle's trained captioner over the bundle's own tokenizer, retriever and
    database (docs/captioning.md): the same sentences as ``MotionCaptioner.from_pretrained()``, a re-saved
    folder keeps a working captioner, and a pipeline without one says so."""
    from remomask.captioning import MotionCaptioner
    from remomask.data.embedded import resolve_dataset
    from remomask.data.layout import MotionLayout

    layout = MotionLayout(resolve_dataset(progress=False), "test", min_length=0, max_length=None,
                          require_captions=False, subclips=False, progress=False)
    records = list(layout)[::97][:6]
    feats = [np.asarray(r.motion, dtype=np.float32) for r in records]
    captions = pipe.caption(feats)
    assert captions == MotionCaptioner.from_pretrained().caption(feats)
    assert all(isinstance(c, str) and len(c.split()) >= 3 for c in captions), captions
    folder = pipe.save_pretrained(tmp_path / "resaved", db_dtype="float16")
    meta = json.loads((folder / "captioner" / "config.json").read_text())
    assert meta["components"] == {"tokenizer": "../tokenizer", "retriever": "../retriever", "database": "../database"}
    assert ReMoMaskPipeline.from_pretrained(folder).caption(feats[:2]) == captions[:2]
    bare = ReMoMaskPipeline(pipe.tokenizer, pipe.mask_transformer, pipe.residual_transformer, pipe.length_estimator,
                            retriever=pipe.retriever, database=pipe.database)
    with pytest.raises(ValueError, match="no trained captioner"):
        bare.caption(feats[:1])


def test_wrong_neighbour_retrieves_for_another_action(pipe):
    """``retrieval_texts`` (``evaluate t2m --wrong-neighbour``): the prompt stays the text condition while the
    neighbours come from another sentence; the protocol's partner is the next prompt of another action."""
    from remomask.pipeline.evaluation import PipelineMotionSource, wrong_neighbours

    squat, kick = "a person does a squat.", "a person kicks with the right leg."
    own = pipe([squat], frames=[60], seed=0)
    swapped = pipe([squat], frames=[60], seed=0, retrieval_texts=[kick])
    kicked = pipe([kick], frames=[60], seed=0)
    assert [h["entry_id"] for h in swapped.retrieved[0]] == [h["entry_id"] for h in kicked.retrieved[0]]
    assert [h["entry_id"] for h in swapped.retrieved[0]] != [h["entry_id"] for h in own.retrieved[0]]
    assert swapped.texts == [squat] and not np.array_equal(swapped.token_ids, own.token_ids)
    with pytest.raises(ValueError, match="one sentence per prompt"):
        pipe([squat, kick], frames=[60, 60], seed=0, retrieval_texts=[kick])

    caps = ["walk a", "walk b", "squat", "walk c"]
    labels = [{"action": "walk"}, {"action": "walk"}, {"action": "squat"}, {"action": "walk"}]
    assert wrong_neighbours(caps, labels) == ["squat", "squat", "walk c", "squat"]
    assert wrong_neighbours(["same", "same"], None) == ["same", "same"]
    assert wrong_neighbours(["x", "y"], [{}, {}]) == ["y", "x"]
    source = PipelineMotionSource(pipe, wrong_neighbour=True)
    source.set_seed(0)
    feats, lengths = source([squat, kick], [60, 60], [{"action": "squat"}, {"action": "kick"}])
    assert feats.shape == (2, 60, 263) and lengths.tolist() == [60, 60]


def test_diverse_neighbours_draw_on_another_label(pipe):
    """``diverse_neighbours`` (docs/design.md §4.9): on `test_unseen` captions (unseen (action, style) pairs) the
    text-to-text slot holds a motion of another (action, style) than the text-to-motion slot, which stays the
    same; without the option the two often share their labels."""
    from remomask.data.embedded import EMBEDDED_DIR, resolve_dataset
    from remomask.data.layout import MotionLayout

    labels = {m: (v["action"], v["style"]) for m, v in
              json.loads((EMBEDDED_DIR / "labels.json").read_text()).items()}
    unseen = MotionLayout(resolve_dataset(progress=False), "test_unseen", progress=False)
    captions = sorted({r.captions[0].text for r in unseen if r.captions})[::7][:40]
    assert len(captions) == 40
    out = pipe([captions[0]], frames=[60], seed=0, diverse_neighbours=True)
    assert len(out.retrieved[0]) == 2
    plain = pipe.conditions(captions, keep_hits=True).hits
    diverse = pipe.conditions(captions, keep_hits=True, diverse=True).hits
    same_plain = sum(labels[p[0]["motion_id"]] == labels[p[1]["motion_id"]] for p in plain)
    same_diverse = sum(labels[d[0]["motion_id"]] == labels[d[1]["motion_id"]] for d in diverse)
    assert [p[0]["entry_id"] for p in plain] == [d[0]["entry_id"] for d in diverse]
    assert same_plain >= 5 and same_diverse == 0, (same_plain, same_diverse)


def test_diverse_neighbours_refuse_what_they_cannot_do(pipe):
    """Diverse neighbours need text-to-text slots and labelled motions; each case says so."""
    import torch

    from remomask.retrieval.database import DatabaseError, RetrievalDatabase
    from remomask.retrieval.multimodal import search_multimodal

    db = pipe.database
    q = pipe.conditions._encode_texts(["a person does a squat."])["a person does a squat."][1][None]
    with pytest.raises(DatabaseError, match="k_t2t = 0"):
        search_multimodal(db, q, 2, 0, diverse_by=("action", "style"))
    rows = list(range(0, len(db), 500))
    bare = RetrievalDatabase(db.motion_emb[rows], db.text_emb[rows], [db.captions[i] for i in rows],
                             [db.motion_ids[i] for i in rows])
    with pytest.raises(DatabaseError, match="stores none"):
        search_multimodal(bare, q, 1, 1, diverse_by=("action", "style"))
    plain = search_multimodal(bare, torch.as_tensor(q), 1, 1)
    assert plain.indices.shape == (1, 2)
