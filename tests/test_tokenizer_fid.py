"""Reconstruction FID of the tokenizer (design §10.2, issue 6) and ``remomask evaluate tokenizer``'s FID options.

Real data only: the tokenizer shipped in the package, the bundled evaluator, clips of the embedded
dataset's val split (``small_val`` of ``test_evaluation``: 116 samples, 3 batches) and a small
HumanML3D-layout folder cut from the same split for the command.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import cut_embedded_val
from test_evaluation import evaluator, small_val, val_layout  # noqa: F401  (module-scoped fixtures, reused)

from remomask.bundled import TOKENIZER_DIR as DEFAULT_MODEL
from remomask.cli.evaluate import evaluate_tokenizer as evaluate_cmd
from remomask.tokenizer.evaluate import make_reconstructor, reconstruction_fid
from remomask.tokenizer.model import MotionTokenizer

N_IDS = 80


@pytest.fixture(scope="module")
def tokenizer():
    return MotionTokenizer.from_pretrained(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """The first 80 ids of the embedded val split as the ``test`` split of a release-layout folder."""
    return cut_embedded_val(tmp_path_factory.mktemp("tok_fid") / "ds", N_IDS, ("test",))


def test_reconstructor_ignores_padding_and_zeroes_it(tokenizer, val_layout):  # noqa: F811
    recs = [r for r in val_layout.records if 40 <= r.length < 196][:3]
    lengths = torch.tensor([r.length // 4 * 4 for r in recs])
    batch = torch.zeros(3, 196, 263)
    for i, r in enumerate(recs):
        batch[i, : lengths[i]] = torch.from_numpy(r.motion[: lengths[i]])
    reconstruct = make_reconstructor(tokenizer)
    out = reconstruct(batch, lengths)
    assert out.shape == batch.shape
    for i in range(3):
        n = int(lengths[i])
        assert float(out[i, n:].abs().sum()) == 0.0
        # the tokenizer's convolutions see the padded batch, as in evaluate_model and the reference
        # eval_vq: a clip decoded alone differs a little near its end, far less than the reconstruction error
        alone = reconstruct(batch[i: i + 1, :n], lengths[i: i + 1])[0]
        error = float((out[i, :n] - batch[i, :n]).abs().mean())
        assert float((out[i, :n] - alone).abs().mean()) < 0.15 * error
        # a reconstruction, close to the input (de-normalised features: root height in metres)
        assert error < 0.2 and float((out[i, :n, 3] - batch[i, :n, 3]).abs().mean()) < 0.05


def test_reconstruction_fid_trained_beats_untrained(tokenizer, evaluator, small_val):  # noqa: F811
    res = reconstruction_fid(tokenizer, split="val", repeats=1, evaluator=evaluator, layout=small_val)
    assert res["samples_per_repeat"] == 96 and res["repeats"] == 1 and res["seed"] == 10107
    assert 0 < res["fid"]["mean"] < 0.5 * res["reference"]["diversity"]["mean"] ** 2
    assert res["mpjpe_mm"]["mean"] > 0 and set(res["reference"]) >= {"top1", "mm_dist", "diversity"}
    torch.manual_seed(0)
    untrained = MotionTokenizer(tokenizer.config, mean=tokenizer.mean.numpy(), std=tokenizer.std.numpy()).eval()
    bad = reconstruction_fid(untrained, split="val", repeats=1, evaluator=evaluator, layout=small_val)
    assert bad["fid"]["mean"] > 3 * res["fid"]["mean"]
    # the same ground truth in both runs: the reference rows agree
    assert bad["reference"]["top1"] == res["reference"]["top1"]
    with pytest.raises(ValueError, match="repeats"):
        reconstruction_fid(tokenizer, repeats=0, evaluator=evaluator, layout=small_val)


def test_reconstruction_action_accuracy_trained_keeps_actions_untrained_does_not(tokenizer, evaluator,
                                                                                 val_layout):  # noqa: F811
    """docs/data.md "Every action learned": whole val clips (short ones hold-extended, long ones cut to the
    canvas), classified by the evaluator's action classifier before and after the round trip."""
    from collections import Counter

    from remomask.tokenizer.evaluate import reconstruction_action_accuracy

    records = val_layout.records[::3][:60]
    counts = Counter(r.labels["action"] for r in records)
    threshold = sorted(counts.values())[len(counts) // 2]
    res = reconstruction_action_accuracy(tokenizer, records, evaluator, train_counts=dict(counts),
                                         threshold=threshold)
    assert res["overall"]["clips"] + len([r for r in records if r.labels["action"] in res["unknown_actions"]]) \
        == len(records)
    assert res["rare"]["clips"] + res["frequent"]["clips"] == res["overall"]["clips"]
    assert sum(row["clips"] for row in res["per_action"].values()) == res["overall"]["clips"]
    assert res["overall"]["real_acc"] > 0.8  # the evaluator knows real val clips
    assert res["overall"]["reconstruction_acc"] > 0.6
    torch.manual_seed(0)
    untrained = MotionTokenizer(tokenizer.config, mean=tokenizer.mean.numpy(), std=tokenizer.std.numpy()).eval()
    bad = reconstruction_action_accuracy(untrained, records, evaluator, train_counts=dict(counts),
                                         threshold=threshold)
    assert bad["overall"]["real_acc"] == res["overall"]["real_acc"]  # the same real clips
    assert bad["overall"]["reconstruction_acc"] < res["overall"]["reconstruction_acc"] - 0.3


def test_cli_reports_fid_in_json_and_table(small_root, tmp_path):
    out = tmp_path / "tok.json"
    runner = CliRunner()
    res = runner.invoke(evaluate_cmd, ["--dataset", str(small_root), "--split", "test", "--fid-repeats", "1",
                                       "--threads", "1", "--no-progress", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "%|" not in res.output                                   # --no-progress: no tqdm bar
    doc = json.loads(out.read_text())
    assert doc["fid"]["mean"] > 0 and doc["reconstruction"]["repeats"] == 1
    assert doc["reconstruction"]["fid"] == doc["fid"] and doc["clips"] == N_IDS
    assert "reconstruction FID: split test, 1 repeats" in res.output and "| reconstruction | " in res.output
    assert f"| reconstruction | {doc['fid']['mean']:.3f}" in res.output

    res = runner.invoke(evaluate_cmd, ["--dataset", str(small_root), "--split", "test", "--no-fid", "--max-clips", "8",
                                       "--json", "-"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    assert "fid" not in doc and doc["clips"] == 8


def test_cli_fid_errors_are_one_line(small_root, tmp_path):
    runner = CliRunner()
    res = runner.invoke(evaluate_cmd, ["--dataset", str(small_root), "--fid-repeats", "0"])
    assert res.exit_code == 2 and res.output.strip() == "error: --fid-repeats must be >= 1, got 0"
    nocap = tmp_path / "nocap"  # motions without captions: whole-clip metrics work, the FID loader does not
    shutil.copytree(small_root, nocap, ignore=shutil.ignore_patterns("texts"))
    res = runner.invoke(evaluate_cmd, ["--dataset", str(nocap), "--max-clips", "4", "--fid", "--json", "-"])
    assert res.exit_code == 2 and res.output.strip().startswith("error: ") and "texts" in res.output
    assert len(res.output.strip().splitlines()) == 1
    # by default the FID is skipped with its reason, the other metrics are reported
    out = tmp_path / "m.json"
    ok = runner.invoke(evaluate_cmd, ["--dataset", str(nocap), "--max-clips", "4", "--json", str(out)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(out.read_text())
    assert "fid" not in doc and "texts" in doc["fid_skipped"] and np.isfinite(doc["mpjpe_mm"]["6"])
    assert "reconstruction FID: skipped (" in ok.output
