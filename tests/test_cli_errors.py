"""Issue 19: every case of "Why" gets one clear line and exit code 2 (or a documented rule), and a run's
output folder never mixes runs. Real inputs: the bundled model, the embedded dataset, the shared fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from remomask.cli import main


def _run(args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def _one_error_line(result, *needles: str) -> str:
    """The result failed with exit 2 and one line ``error: ...`` holding every needle; no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def joints_file(tmp_path_factory, fixtures_dir):
    path = tmp_path_factory.mktemp("motion") / "walk.npy"
    np.save(path, np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")[:40].astype(np.float32))
    return path


# -- errors found before any model loads (fast) ---------------------------------------------------------------
FAST_CASES = [
    ("empty prompt", ["generate", "   "], ["the prompt is empty"]),
    ("cond-scale nan", ["generate", "a person waves", "--cond-scale", "nan"], ["--cond-scale must be a finite"]),
    ("cond-scale inf", ["generate", "a person waves", "--cond-scale", "inf"], ["--cond-scale must be a finite"]),
    ("seed 2**70", ["generate", "a person waves", "--seed", str(2**70)], ["--seed must be in 0.."]),
    ("negative seed", ["generate", "a person waves", "--seed", "-1"], ["--seed must be in 0.."]),
    ("num-samples 1000", ["generate", "a person waves", "--num-samples", "1000"], ["--num-samples must be in 1..100"]),
    ("impossible length", ["generate", "a person waves", "--seconds", "60"], ["outside 2-9.8 s"]),
    ("bad #seconds", ["generate", "a person waves#soon"], ["'soon' after '#' is not a number"]),
    ("device tpu", ["generate", "a person waves", "--device", "tpu"], ["--device must be cpu or cuda"]),
    ("retrieve device tpu", ["retrieve", "a person waves", "--device", "tpu"], ["--device must be cpu or cuda"]),
    ("retrieve k 0", ["retrieve", "a person waves", "-k", "0"], ["-k must be >= 1, got 0"]),
    ("batch-size 0", ["evaluate", "tokenizer", "--batch-size", "0"], ["--batch-size must be >= 1, got 0"]),
    ("eval repeats 0", ["evaluate", "t2m", "--repeats", "0"], ["--repeats must be >= 1, got 0"]),
    ("threads 0", ["evaluate", "retrieval", "--threads", "0"], ["--threads must be >= 1, got 0"]),
    ("unknown option", ["generate", "x", "--sconds", "3"], ["No such option", "--help"]),
    ("build-db without out", ["retriever", "build-db"], ["give --out DIR"]),
    ("data build without raw", ["data", "build"], ["pass --raw DIR"]),
    ("wrong neighbour without model", ["evaluate", "t2m", "--wrong-neighbour"], ["add --model DIR"]),
    ("wrong neighbour without retrieval", ["evaluate", "t2m", "--model", "x", "--wrong-neighbour",
                                           "--without-retrieval"], ["--wrong-neighbour and --diverse-neighbours need"]),
    ("refine missing tokenizer", ["train", "tokenizer-decoder", "--tokenizer", "/nonexistent/tok"],
     ["/nonexistent/tok", "does not exist"]),
    ("refine lr 0", ["train", "tokenizer-decoder", "--lr", "0"], ["--lr"]),
    ("refine generated without pipeline", ["train", "tokenizer-decoder", "--generated-rate", "0.5"],
     ["--generated-rate needs --generated-from"]),
    ("refine generated rate 2", ["train", "tokenizer-decoder", "--generated-rate", "2", "--generated-from", "x"],
     ["--generated-rate", "not in [0, 1]"]),
    ("eval pool of 1", ["evaluate", "t2m", "--batch-size", "1"], ["--batch-size must be >= 2, got 1"]),
]


@pytest.mark.parametrize("name, args, needles", FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_bad_arguments_are_one_line_exit_2(name, args, needles, monkeypatch):
    monkeypatch.delenv("REMOMASK_RAW", raising=False)
    _one_error_line(_run(args), *needles)


# -- remomask caption: bad inputs found before the model loads ------------------------------------------------
def _caption_nan_npy(tmp_path, fixtures_dir):
    joints = np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")[:40].astype(np.float32)
    joints[3, 2, 1] = np.nan
    np.save(tmp_path / "nan.npy", joints)
    return [tmp_path / "nan.npy"]


def _caption_bad_bvh(tmp_path, fixtures_dir):
    (tmp_path / "cut.bvh").write_bytes((fixtures_dir / "cmu" / "131_01.bvh").read_bytes()[:3000])
    return [tmp_path / "cut.bvh"]


def _caption_read_only_out(tmp_path, fixtures_dir, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores permission bits: simulate what a user would see
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == ro else real(p, mode, *a, **k))
    return [fixtures_dir / "cmu" / "131_01.bvh", "--out", ro / "captions.jsonl"]


CAPTION_CASES = [
    ("missing file", lambda t, f, m: [t / "nope.npy"], ["nope.npy does not exist"]),
    ("malformed bvh", lambda t, f, m: _caption_bad_bvh(t, f), ["cut.bvh", "MOTION"]),
    ("empty folder", lambda t, f, m: [t], ["holds no motion files"]),
    ("non-finite npy", lambda t, f, m: _caption_nan_npy(t, f), ["nan.npy", "non-finite"]),
    ("read-only out folder", _caption_read_only_out, ["cannot write to", "ro"]),
    ("out is a folder", lambda t, f, m: [f / "cmu" / "131_01.bvh", "--out", t], ["is a directory"]),
    ("top-k 0", lambda t, f, m: [f / "cmu" / "131_01.bvh", "--top-k", "0"], ["--top-k must be >= 1, got 0"]),
]


@pytest.mark.parametrize("name, make_args, needles", CAPTION_CASES, ids=[c[0] for c in CAPTION_CASES])
def test_caption_bad_inputs_are_one_line_exit_2(name, make_args, needles, tmp_path, fixtures_dir, monkeypatch):
    import remomask.captioning.retrieval_captioner as rc

    def no_model(*args, **kwargs):  # each of these is found before any model loads
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(rc.RetrievalCaptioner, "from_pretrained", no_model)
    _one_error_line(_run(["caption", *make_args(tmp_path, fixtures_dir, monkeypatch)]), *needles)


def test_cuda_on_a_cpu_machine_says_so_before_loading(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for args in (["retrieve", "a person waves", "--device", "cuda"], ["evaluate", "tokenizer", "--device", "cuda"],
                 ["generate", "a person waves", "--device", "cuda:0"]):
        line = _one_error_line(_run(args), "no CUDA GPU", "--device cpu")
        assert "corrupt" not in line and "re-train" not in line


# -- motion files ----------------------------------------------------------------------------------------------
def test_motion_file_inputs(joints_file, tmp_path):
    # a directory given as a file
    _one_error_line(_run(["render", tmp_path, "-o", tmp_path / "x.gif"]), "is a directory")
    # not an .npy: never suggests allow_pickle
    bad = tmp_path / "bad.npy"
    bad.write_text("joints")
    line = _one_error_line(_run(["export-bvh", bad, "-o", tmp_path / "x.bvh"]), str(bad))
    assert "allow_pickle" not in line
    # an .npz with a named array works, with a string array it says which names it holds
    npz = tmp_path / "m.npz"
    np.savez(npz, joints=np.load(joints_file), label=np.array(["walk"]))
    res = _run(["export-bvh", npz, "-o", tmp_path / "m.bvh"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.bvh").read_text().startswith("HIERARCHY")
    odd = tmp_path / "odd.npz"
    np.savez(odd, a=np.zeros((3, 4)), b=np.array(["x"]))
    line = _one_error_line(_run(["export-bvh", odd, "-o", tmp_path / "o.bvh"]), str(odd))
    assert "<U" not in line


def test_unwritable_outputs_are_one_line(joints_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_error_line(_run(["render", joints_file, "-o", blocker / "x.gif"]), str(blocker))
    _one_error_line(_run(["export-bvh", joints_file, "-o", blocker / "x.bvh"]), str(blocker))
    _one_error_line(_run(["retrieve", "a person waves", "--render", blocker]), "is a file")
    _one_error_line(_run(["generate", "a person waves", "--out", blocker]), "is a file")
    _one_error_line(_run(["generate", "a person waves", "--out", blocker / "sub"]), "cannot write to", str(blocker))
    _one_error_line(_run(["evaluate", "tokenizer", "--json", tmp_path]), "is a directory")
    existing = tmp_path / "exists"
    existing.mkdir()
    _one_error_line(_run(["data", "export", "--out", existing]), "exists")


def test_permission_denied_is_one_line(joints_file, tmp_path, monkeypatch):
    """A read-only folder (simulated: the tests may run as root, which ignores permission bits)."""
    import remomask.render as render

    def deny(motions, path, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(render, "render_motions", deny)
    _one_error_line(_run(["render", joints_file, "-o", tmp_path / "ro" / "x.mp4"]), "permission denied",
                    str(tmp_path / "ro" / "x.mp4"))


def test_interrupt_exits_130(monkeypatch):
    import remomask.pipeline as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.ReMoMaskPipeline, "from_pretrained", interrupted)
    res = _run(["generate", "a person waves", "--no-video"])
    assert res.exit_code == 130 and "interrupted" in res.output and "Traceback" not in res.output


# -- prompts -------------------------------------------------------------------------------------------------
def test_prompts_files(tmp_path):
    from remomask.cli._prompts import parse_prompt, read_prompts_file

    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffa person waves#3\n# a comment\n\na person jumps\n".encode("utf-8"))
    assert read_prompts_file(bom) == [("a person waves", 3.0), ("a person jumps", None)]
    assert parse_prompt("\ufeff a person waves # 2.5 ") == ("a person waves", 2.5)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("une personne salue de la main gauche, fatigu\xe9e\n".encode("latin-1"))
    _one_error_line(_run(["generate", "--prompts", latin]), str(latin), "not UTF-8")
    _one_error_line(_run(["generate", "--prompts", tmp_path]), "is a directory")
    _one_error_line(_run(["generate", "--prompts", tmp_path / "none.txt"]), "does not exist")


# -- output folders (the bundled model, 2 s motions, no video) ----------------------------------------------------
def test_output_folders_never_mix_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _run(["generate", "a person waves#2", "--num-samples", "3", "--no-video", "--seed", "1"])
    assert res.exit_code == 0, res.output
    first = tmp_path / "outputs" / "generate" / "001"
    assert "outputs/generate/001/result.json" in res.output
    res = _run(["generate", "a person jumps#2", "--no-video", "--seed", "2"])
    second = tmp_path / "outputs" / "generate" / "002"
    assert res.exit_code == 0 and (second / "result.json").is_file()
    assert sorted(p.name for p in second.iterdir()) == ["result.json", "sample_0.features.npy",
                                                        "sample_0.joints.npy"]
    assert len(list(first.glob("sample_*.joints.npy"))) == 3
    # an explicit --out holding an older, larger result is replaced whole
    res = _run(["generate", "a person jumps#2", "--no-video", "--seed", "3", "--out", first])
    assert res.exit_code == 0, res.output
    listed = {f for s in json.loads((first / "result.json").read_text())["samples"] for f in s["files"].values()}
    assert listed | {"result.json"} == {p.name for p in first.iterdir()}
    # files follow the umask (they were 0600)
    assert (first / "sample_0.joints.npy").stat().st_mode & 0o777 == 0o666 & ~_umask()
    # a folder with the user's own files is refused before any work
    own = tmp_path / "mine"
    own.mkdir()
    (own / "notes.txt").write_text("keep me")
    _one_error_line(_run(["generate", "a person waves", "--out", own]), "not remomask outputs")
    assert (own / "notes.txt").read_text() == "keep me"
    assert not [p for p in (tmp_path / "outputs" / "generate").iterdir() if p.name.startswith(".")]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_or_killed_run_leaves_no_partial_folder(tmp_path, monkeypatch):
    import remomask.cli.generate as gen

    monkeypatch.chdir(tmp_path)
    parent = tmp_path / "outputs" / "generate"
    parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = parent / f".run.partial-{dead}"  # what SIGKILL leaves
    stale.mkdir()
    (stale / ".sample_0.part.mp4").write_bytes(b"half")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", "sample_0.mp4")

    monkeypatch.setattr(gen, "write_samples", broken)
    res = _run(["generate", "a person waves#2", "--no-video", "--seed", "1"])
    _one_error_line(res, "no space left")
    assert list(parent.iterdir()) == []  # neither the stale folder nor a half-written one


def test_hints_name_no_paths_outside_the_package():
    src = Path(__file__).resolve().parents[1] / "src" / "remomask"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "remomask.generation.commands" not in text, path
        assert "restore it from shared/data" not in text and "pointing at shared/data" not in text, path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_library_rejects_non_finite_guidance(value):
    """The Python API checks what the CLI's option type checks (it reached torch.multinomial)."""
    from remomask.generation import SamplingConfig

    with pytest.raises(ValueError, match="cond_scale must be a finite number"):
        SamplingConfig(cond_scale=value)


def test_stage_packages_hold_no_click():
    """One command layer: only the front ends (remomask.cli, remomask.studio) import click or remomask.cli."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "remomask"
    imports = re.compile(r"^\s*(import click|from click|from \.+cli\b|from remomask\.cli\b|import remomask\.cli\b)",
                         re.MULTILINE)
    for path in src.rglob("*.py"):
        if path.relative_to(src).parts[0] in ("cli", "studio"):
            continue
        assert not imports.search(path.read_text()), path


def test_a_split_smaller_than_the_pool_says_how_to_score_it():
    """test_human has 20 protocol samples: with the protocol's pool of 32 the error names the way out
    (--batch-size); with a pool of 20 the Real baseline is scored on all 20 of them."""
    _one_error_line(_run(["evaluate", "t2m", "--split", "test_human", "--repeats", "1", "--no-progress"]),
                    "test_human", "fewer than one batch of 32", "--batch-size")
    result = _run(["evaluate", "t2m", "--split", "test_human", "--repeats", "1", "--batch-size", "20",
                   "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "20 samples per repeat" in result.output and "Real (disjoint clips)" in result.output
