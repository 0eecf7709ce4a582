"""The components retrained on dataset v2 (docs/results.md "Dataset v2"; in the default bundle since session 8,
``models/v2/README.md``): they load, belong together (the database was built by this retriever over the v2
train split) and do their job on real clips."""

from __future__ import annotations

import json
from collections import Counter

from remomask.data.embedded import EMBEDDED_DIR, resolve_dataset

from remomask.bundled import PIPELINE_DIR as V2


def _train_ids() -> set[str]:
    return set((EMBEDDED_DIR / "train.txt").read_text().split())


def test_database_is_the_retrievers_and_covers_the_v2_train_split():
    from remomask.retrieval.database import RetrievalDatabase
    from remomask.retrieval.model import PartRetriever

    model = PartRetriever.from_pretrained(V2 / "retriever")
    db = RetrievalDatabase.load(V2 / "database", model=model)  # raises unless built by this model
    assert set(db.motion_ids) == _train_ids()
    labels = json.loads((EMBEDDED_DIR / "labels.json").read_text())
    assert {labels[m]["action"] for m in db.motion_ids} == set(json.loads(
        (EMBEDDED_DIR / "stats.json").read_text())["labels"])  # every action can be retrieved


def test_tokenizer_reconstructions_keep_the_action_of_rare_test_clips():
    """Issue "Every action learned": on test clips of rare actions (< 100 train segments), the action
    classifier is right on reconstructions about as often as on the real clips (measured on the whole split:
    ratio 1.00; here on a subset, at least 0.9)."""
    from remomask.data.layout import MotionLayout
    from remomask.evaluation.evaluator import load_evaluator
    from remomask.tokenizer.evaluate import reconstruction_action_accuracy
    from remomask.tokenizer.model import MotionTokenizer

    root = resolve_dataset(progress=False)
    train = MotionLayout(root, "train", min_length=0, max_length=None, require_captions=False, subclips=False,
                         progress=False)
    counts = Counter(r.labels["action"] for r in train)
    test = MotionLayout(root, "test", min_length=0, max_length=None, require_captions=False, subclips=False,
                        progress=False)
    rare = [r for r in test if counts[r.labels["action"]] < 100][::3]
    assert len({r.labels["action"] for r in rare}) >= 15
    res = reconstruction_action_accuracy(MotionTokenizer.from_pretrained(V2 / "tokenizer"), rare, load_evaluator(),
                                         train_counts=dict(counts), threshold=100)
    assert res["rare"]["clips"] == len(rare) and res["frequent"]["clips"] == 0
    assert res["rare"]["real_acc"] > 0.8
    assert res["rare"]["reconstruction_acc"] >= 0.9 * res["rare"]["real_acc"]


def test_length_estimator_knows_short_and_long_actions():
    """A single squat is a 1-2 s clip in the data (5-9 tokens of 4 frames), a salsa window 9.8 s (49 tokens);
    the most likely length (unclamped, argmax) says so."""
    from remomask.generation.length_estimator import LengthEstimator
    from remomask.text import encode

    est = LengthEstimator.from_pretrained(V2 / "length_estimator")
    sentence = encode(["a person squats down and stands back up.",
                       "a person dances salsa with quick steps and turns."]).sentence
    squat, salsa = est.predict(sentence, mode="argmax", min_tokens=1, max_tokens=49).tolist()
    assert squat <= 15 and salsa >= 30, (squat, salsa)


def test_kept_generators_fit_the_bundle(bundled_pipe):
    """``models/v2/README.md``: the no-RAG twin and the paper-form masked transformer kept for the result tables
    load with the bundle's other components (as ``remomask assemble`` puts them together; since session 15 with the
    kept session-7 tokenizer, their val choice, whose ids the bundle's refined decoder shares) and generate. The
    paper form retrieves one text-to-motion neighbour, given as one embedding (docs/design.md §4.7, §5.6), and its
    motion changes with it; the twin has no retrieval input."""
    from pathlib import Path

    import numpy as np

    from remomask.pipeline import ReMoMaskPipeline

    kept = Path(__file__).resolve().parents[1] / "models" / "v2"
    b = bundled_pipe
    common = dict(tokenizer=kept / "tokenizer_session7", residual_transformer=b.residual_transformer,
                  length_estimator=b.length_estimator)
    paper = ReMoMaskPipeline.from_components(mask_transformer=kept / "paper" / "mask_transformer",
                                             retriever=b.retriever, database=b.database, **common)
    twin = ReMoMaskPipeline.from_components(mask_transformer=kept / "twin" / "mask_transformer", **common)
    cfg = paper.mask_transformer.config
    assert (cfg.retrieval_form, cfg.retrieval_k, cfg.retrieval_k_t2t, cfg.text_value) == ("embedding", 1, 0, False)
    assert not twin.mask_transformer.config.use_retrieval
    prompt, kw = "a person kicks with the right leg.", dict(frames=60, seed=3, steps=4)
    out = paper(prompt, cond_scale=1.5, **kw)
    assert len(out.retrieved[0]) == 1 and "kick" in out.retrieved[0][0]["caption"]
    plain = paper(prompt, cond_scale=1.5, use_retrieval=False, **kw)
    assert not np.array_equal(out.token_ids, plain.token_ids)
    alone = twin(prompt, cond_scale=2.0, **kw)
    assert alone.retrieved == [[]] and alone.joints.shape == (1, 60, 22, 3) and np.isfinite(alone.joints).all()
