"""``remomask train evaluator`` on a small real subset of the embedded dataset: files, labels, card, resume."""

from __future__ import annotations

import json
import os

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from remomask.data.embedded import resolve_dataset
from remomask.data.layout import MotionLayout
from remomask.cli.train import train_evaluator as train_cmd
from remomask.evaluation.evaluator import T2MEvaluator


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """A HumanML3D-layout folder with 48 train and 40 val clips of the embedded dataset (files linked)."""
    root = resolve_dataset("embedded", progress=False)
    out = tmp_path_factory.mktemp("small")
    for sub in ("new_joint_vecs", "texts"):
        (out / sub).mkdir()
    ids = {}
    for split, n in (("train", 48), ("val", 40)):
        layout = MotionLayout(root, split, progress=False)
        chosen = [r.motion_id for r in layout.records[:: max(1, len(layout.records) // n)]][:n]
        ids[split] = chosen
        (out / f"{split}.txt").write_text("\n".join(chosen) + "\n")
    for mid in ids["train"] + ids["val"]:
        os.symlink(root / "new_joint_vecs" / f"{mid}.npy", out / "new_joint_vecs" / f"{mid}.npy")
        os.symlink(root / "texts" / f"{mid}.txt", out / "texts" / f"{mid}.txt")
    for name in ("Mean.npy", "Std.npy", "labels.json", "stats.json"):
        os.symlink(root / name, out / name)
    return out


def test_train_command_writes_a_loadable_evaluator_and_resumes(small_dataset, tmp_path):
    runner = CliRunner()
    out, work = tmp_path / "ev", tmp_path / "run"
    args = ["--dataset", str(small_dataset), "--out", str(out), "--work-dir", str(work), "--epochs", "1",
            "--classifier-epochs", "1", "--batch-size", "16", "--seed", "5", "--no-progress"]
    res = runner.invoke(train_cmd, args)
    assert res.exit_code == 0, res.output
    assert "embedder epoch 1/1" in res.output and "classifiers epoch 1/1" in res.output
    model = T2MEvaluator.from_pretrained(out)
    train_labels = MotionLayout(small_dataset, "train", progress=False)
    expected_actions = sorted({r.labels["action"] for r in train_labels})
    assert model.config.classes["action"] == expected_actions
    assert None not in model.config.classes.get("style", [])
    # the model's statistics are the training data's Mean/Std
    torch.testing.assert_close(model.mean, torch.from_numpy(train_labels.mean))
    card = (out / "README.md").read_text()
    assert json.loads((small_dataset / "stats.json").read_text())["content_hash"] in card
    assert "remomask" in card and "R-precision" in card
    assert (work / "checkpoint.pt").is_file() and any((work / "tb").iterdir())
    history = json.loads((work / "history.json").read_text())
    assert [h["phase"] for h in history] == ["embedder", "classifiers"]

    # resuming a finished run trains nothing more and writes the same weights
    before = load_file(str(out / "model.safetensors"))
    res = runner.invoke(train_cmd, args + ["--resume"])
    assert res.exit_code == 0, res.output
    assert "resumed" in res.output and "epoch 1/1" not in res.output
    after = load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

    # resuming with other options is refused with one clear line
    res = runner.invoke(train_cmd, args[:-3] + ["--seed", "6", "--no-progress", "--resume"])
    assert res.exit_code == 2 and "another config" in res.output
