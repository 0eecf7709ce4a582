"""Per-action and rare-motion evaluation (docs/data.md "Every action learned") on real data: the `real`
baseline on the embedded test split, 2 batches, 1 repeat, seeded."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from remomask.evaluation import metrics as M


@pytest.fixture(scope="module")
def scored():
    from remomask.data.embedded import resolve_dataset
    from remomask.data.layout import MotionLayout
    from remomask.evaluation.baselines import RealBaseline
    from remomask.evaluation.protocol import evaluate_t2m, per_action_spec, resolve_evaluator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = MotionLayout(resolve_dataset("embedded", progress=False), "test", progress=False)
        evaluator = resolve_evaluator(None)
        spec = per_action_spec(layout, evaluator)
        result = evaluate_t2m(RealBaseline(layout), "test", repeats=1, evaluator=evaluator, layout=layout,
                              progress=False, max_batches=2, per_action=spec)
    return spec, result


def test_per_action_table_of_the_real_baseline(scored):
    from remomask.evaluation.protocol import format_per_action

    spec, result = scored
    pa = result.per_action
    actions = pa["actions"]
    assert set(actions) == set(spec.actions) and len(actions) >= 41        # every action is listed
    assert pa["threshold"] == 100
    assert set(pa["rare_actions"]) == {a for a, r in actions.items() if r["train_segments"] < 100}
    # The shipped evaluator (retrained on dataset v2 with the short clips hold-extended) knows every action,
    # the 1-2-s HDM05 ones included (the v1 evaluator lacked 5 and reported them as unknown).
    assert pa["unknown_actions"] == []
    assert actions["squat1Reps"]["known"] is True and actions["run"]["known"] is True
    scored_n = sum(r["evaluated"] for r in actions.values())
    assert scored_n == result.info["samples_per_repeat"] == 64
    assert pa["rare"]["evaluated"] + pa["frequent"]["evaluated"] == 64
    # Per-action R-precision is the batch R-precision split by action: the sample-weighted mean is the total.
    top1 = sum(r["evaluated"] * r["top1"]["mean"] for r in actions.values() if r["evaluated"]) / 64
    assert top1 == pytest.approx(result.metrics["top1"]["mean"])
    for r in actions.values():
        if r["evaluated"] and r["known"]:
            assert 0.0 <= r["acc"]["mean"] <= 1.0
    for key in ("rare5_mm_dist", "rare5_diversity", "balanced_mm_dist"):
        assert np.isfinite(result.metrics[key]["mean"]) and np.isfinite(result.reference[key]["mean"])
        assert result.metrics[key]["mean"] > 0
    table = format_per_action(result)
    assert "unknown to the classifier" not in table and "**rare**" in table and "Balanced MM-Dist" in table
    json.dumps(result.to_dict())                                           # JSON-ready
    assert "per_action" in result.to_dict()


def test_rareness_of_train_and_new_captions(scored):
    from remomask.text import load_text_encoder

    spec, _ = scored
    values = np.array(list(spec.rareness.values()))
    assert values.min() >= 0.0 and values.max() < 1.0 and spec.low <= spec.high
    enc = load_text_encoder("minilm")
    emb = enc.encode(["a person walks forward", "a person juggles three burning torches on a unicycle"]).sentence
    train = enc.encode(["a person walks forward"]).sentence
    r = M.rareness(emb.numpy(), train.numpy())
    assert r[0] == pytest.approx(0.0, abs=1e-5) and r[1] > 0.3
    assert list(M.rarest([0.1, 0.9, 0.5, 0.7], 0.5)) == [1, 3]
    # Balanced MM-Dist weighs every rareness bin the same: here (1 + 3) / 2 whatever the counts.
    assert M.balanced_matching_distance([1, 1, 1, 3], [0.0, 0.0, 0.0, 1.0], 0.0, 1.0, bins=2) == pytest.approx(2.0)
