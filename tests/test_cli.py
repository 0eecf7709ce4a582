"""The `remomask` command line: lazy imports, data stats, render, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

from remomask.cli import main


def test_cli_import_does_not_load_torch():
    code = "import sys, remomask.cli; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_data_stats_json_on_embedded():
    result = CliRunner().invoke(main, ["data", "stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    for key in ("clips", "segments", "frames", "seconds", "captions", "labels", "splits"):
        assert key in stats
    assert stats["clips"] >= 3000 and len(stats["labels"]) >= 25
    assert stats["seconds"] == round(stats["frames"] / 20.0, 1)
    assert sum(stats["splits"].values()) == stats["segments"]


def test_data_stats_on_missing_folder_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["data", "stats", "--dataset", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_data_stats_on_release_layout(tmp_path, fixtures_dir):
    root = tmp_path / "hml"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    feats = np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy")
    np.save(root / "new_joint_vecs" / "012314.npy", feats)
    (root / "texts" / "012314.txt").write_text(
        (fixtures_dir / "humanml3d" / "texts__000000.txt").read_text())
    (root / "train.txt").write_text("012314\n")
    result = CliRunner().invoke(main, ["data", "stats", "--dataset", str(root), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["frames"] == 170 and stats["splits"] == {"train": 1} and stats["captions"] >= 1


def test_render_bad_input(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    result = CliRunner().invoke(main, ["render", str(bad), "-o", str(tmp_path / "x.gif")])
    assert result.exit_code == 2 and "not a readable .npy" in result.output
    assert not (tmp_path / "x.gif").exists()


def test_render_fixture_to_gif(tmp_path, fixtures_dir):
    joints = np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")[:20]
    src = tmp_path / "m.npy"
    np.save(src, joints)
    out = tmp_path / "m.gif"
    result = CliRunner().invoke(main, ["render", str(src), "-o", str(out), "--title", "a person"])
    assert result.exit_code == 0, result.output
    import imageio.v3 as iio

    frames = iio.imread(out)
    assert frames.shape[0] == 20


def _lazy_groups():
    from remomask import cli

    import click

    yield "remomask", cli.main
    for name in ("train", "evaluate", "retriever", "data"):
        yield name, cli.main.get_command(click.Context(cli.main), name)


def test_every_registered_command_resolves_to_a_click_command():
    import click

    for group_name, group in _lazy_groups():
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert isinstance(cmd, click.Command), f"{group_name} {name}"


def test_help_of_every_stage_command():
    runner = CliRunner()
    for args in (["train", "tokenizer"], ["train", "retriever"], ["train", "mask-transformer"],
                 ["evaluate", "t2m"], ["evaluate", "retrieval"], ["retriever", "build-db"],
                 ["generate"], ["retrieve"]):
        result = runner.invoke(main, args + ["--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage:" in result.output


def test_generate_no_retrieval_samples_text_only(tmp_path):
    """`remomask generate --no-retrieval` samples without the retrieved motions (docs/results.md: safer for unseen
    (action, style) pairs): result.json says so and retrieves nothing; with --timeline it is one clear error."""
    out = tmp_path / "nr"
    res = CliRunner().invoke(main, ["generate", "a person raises the left arm", "--seconds", "2", "--seed", "3",
                                    "--no-retrieval", "--no-video", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "result.json").read_text())
    assert doc["settings"]["use_retrieval"] is False
    assert not any(s.get("retrieved") for s in doc.get("samples", [])), doc.get("samples")
    bad = CliRunner().invoke(main, ["generate", "--timeline", "walk:2 | wave:2", "--no-retrieval"])
    assert bad.exit_code == 2 and "--no-retrieval" in bad.output
