"""The similarity gate (docs/design.md §4.10): prompts whose best neighbour is far are generated without retrieval.

Real data: the bundled pipeline and database, a caption of the embedded train split (its own caption is in the
database, so its text-to-text neighbour scores about 1) against prompts the database does not hold.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from remomask.cli import main as cli

TRAIN_CAPTION = "a lively person makes a polite bow."        # embedded dataset, train clip 000000
FAR_PROMPT = "a person juggles three balls while balancing on a unicycle"


def _best(hits) -> float:
    return max(h["score"] for h in hits)


def test_gate_keeps_known_prompts_and_drops_far_ones(bundled_pipe):
    enc = bundled_pipe.conditions
    ungated = enc([TRAIN_CAPTION, FAR_PROMPT], keep_hits=True)             # the encoder's own default: no gate
    near, far = (_best(h) for h in ungated.hits)
    assert near > 0.99 > far                    # the train caption finds itself; the far prompt does not
    threshold = (near + far) / 2
    gated = enc([TRAIN_CAPTION, FAR_PROMPT], keep_hits=True, min_score=threshold)
    assert gated.retrieval.valid[0].equal(ungated.retrieval.valid[0]) and bool(gated.retrieval.valid[0].any())
    assert not bool(gated.retrieval.valid[1].any())          # every slot off: read as dropped retrieval
    assert gated.hits[0] == ungated.hits[0] and gated.hits[1] == []
    # the gate does not change what is cached: without it the far prompt retrieves again
    assert enc([FAR_PROMPT], keep_hits=True).hits[0] == ungated.hits[1]
    for bad in (-0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="min_score"):
            enc([FAR_PROMPT], min_score=bad)


def test_a_gated_prompt_is_generated_exactly_as_without_retrieval(bundled_pipe):
    kw = dict(frames=60, seed=5, steps=4)
    gated = bundled_pipe(FAR_PROMPT, retrieval_min_score=0.999, **kw)
    plain = bundled_pipe(FAR_PROMPT, use_retrieval=False, **kw)
    retrieved = bundled_pipe(FAR_PROMPT, retrieval_min_score=0.0, **kw)
    assert gated.retrieved == [[]] and len(retrieved.retrieved[0]) == bundled_pipe.mask_transformer.config.retrieval_k
    assert np.array_equal(gated.token_ids, plain.token_ids)
    assert np.allclose(gated.joints, plain.joints, atol=1e-5)
    assert not np.array_equal(retrieved.token_ids, plain.token_ids)    # retrieval does change the motion
    assert gated.settings["retrieval_min_score"] == 0.999 and retrieved.settings["retrieval_min_score"] == 0.0


def test_the_gate_is_a_folder_default(bundled_pipe, tmp_path):
    from remomask.pipeline import ReMoMaskPipeline

    pipe = ReMoMaskPipeline.from_pretrained()
    pipe.set_sampling_defaults(retrieval_min_score=0.999)
    pipe.save_pretrained(tmp_path / "gated")
    assert json.loads((tmp_path / "gated" / "pipeline.json").read_text())["sampling"]["retrieval_min_score"] == 0.999
    assert "similarity gate" in (tmp_path / "gated" / "README.md").read_text()
    loaded = ReMoMaskPipeline.from_pretrained(tmp_path / "gated")
    out = loaded(FAR_PROMPT, frames=40, seed=1, steps=2)
    assert out.retrieved == [[]] and out.settings["retrieval_min_score"] == 0.999
    assert loaded(FAR_PROMPT, frames=40, seed=1, steps=2, retrieval_min_score=0.0).retrieved[0]   # per call: off
    with pytest.raises(ValueError, match="retrieval_min_score"):
        pipe.set_sampling_defaults(retrieval_min_score=1.5)


def test_cli_options_check_the_range_in_one_line(tmp_path):
    runner = CliRunner()
    for args in (["generate", "a person waves", "--retrieval-min-score", "1.5", "--out", str(tmp_path / "a")],
                 ["generate", "a person waves", "--retrieval-min-score", "nan", "--out", str(tmp_path / "b")],
                 ["generate", "a person waves", "--retrieval-min-score", "0.5", "--no-retrieval",
                  "--out", str(tmp_path / "c")],
                 ["evaluate", "t2m", "--retrieval-min-score", "0.5"],
                 ["assemble", "--out", str(tmp_path / "d"), "--retrieval-min-score", "-1"]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output and "retrieval-min-score" in res.output
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_cli_generate_writes_the_gate_to_result_json(tmp_path):
    out = tmp_path / "far"
    res = CliRunner().invoke(cli, ["generate", FAR_PROMPT, "--seconds", "2", "--seed", "3", "--no-video",
                                   "--retrieval-min-score", "0.999", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "result.json").read_text())
    assert doc["settings"]["retrieval_min_score"] == 0.999


def _captions(split: str, limit: int) -> list[str]:
    from pathlib import Path

    from remomask.data.captions import read_captions
    from remomask.data.embedded import resolve_dataset

    root = Path(resolve_dataset("embedded", progress=False))
    out = []
    for motion_id in (root / f"{split}.txt").read_text().split():
        path = root / "texts" / f"{motion_id}.txt"
        if path.is_file():
            out.append(read_captions(path)[0][0].text)          # the first caption of each motion
    return out[:limit]


def test_the_bundled_gate_keeps_val_prompts_and_stops_most_unseen_pairs(bundled_pipe):
    """The shipped threshold (pipeline.json) was read off val (docs/results.md): it must keep retrieval for
    nearly every val prompt and gate most prompts of held-out (action, style) pairs."""
    gate = bundled_pipe.sampling_defaults["retrieval_min_score"]
    assert 0.8 < gate < 1.0
    kept = {}
    for split in ("val", "test_unseen"):
        cond = bundled_pipe.conditions(_captions(split, 400), keep_hits=True, min_score=gate)
        kept[split] = sum(bool(h) for h in cond.hits) / len(cond.hits)
    assert kept["val"] >= 0.97, kept
    assert kept["test_unseen"] <= 0.5, kept
