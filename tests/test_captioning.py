"""Motion captioning, part 1: the retrieval baseline captioner, ``remomask caption`` and the own-library workflow
(``remomask data import`` -> ``remomask retriever build-db`` -> ``remomask retrieve``). Real data only: the
embedded dataset's test split, the shared HumanML3D and CMU fixtures, the bundled retriever and database."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from remomask.cli import main

ACTIONS = ("walk", "wave-left-hand", "run")


def _run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def captioner():
    from remomask.captioning import RetrievalCaptioner

    return RetrievalCaptioner.from_pretrained()


@pytest.fixture(scope="module")
def test_clips():
    """The first 10 test-split clips of each of three frequent actions: (ids, labels, dataset folder)."""
    from remomask.data.embedded import resolve_dataset

    root = resolve_dataset("embedded", progress=False)
    labels = json.loads((root / "labels.json").read_text())
    ids = (root / "test.txt").read_text().split()
    picked = {a: [i for i in ids if labels[i].get("action") == a][:10] for a in ACTIONS}
    assert all(len(v) == 10 for v in picked.values()), {a: len(v) for a, v in picked.items()}
    return picked, labels, root


@pytest.mark.parametrize("kind", ["new_joint_vecs", "new_joints"])
def test_captions_of_real_test_clips_name_their_action(captioner, test_clips, kind):
    """Features (T, 263) and joints (T, 22, 3) of unseen test clips get a caption of a database entry with the
    same action label in at least 7 of 10 clips per action (measured: 10, 9, 9 of 10 for walk, wave-left-hand,
    run with either input)."""
    picked, labels, root = test_clips
    for action, ids in picked.items():
        results = captioner.caption_results([np.load(root / kind / f"{i}.npy") for i in ids])
        hits = sum(r.labels[0].get("action") == action for r in results)
        assert hits >= 7, (action, kind, [(r.caption, r.labels[0].get("action")) for r in results])
        assert all(r.caption and r.caption in captioner.database.captions for r in results)


def test_top_k_results_and_input_forms(captioner, fixtures_dir):
    import torch

    from remomask.data.motion_file import load_motion_file
    from remomask.errors import UsageError

    path = fixtures_dir / "humanml3d" / "new_joints__012314.npy"
    joints = np.load(path).astype(np.float32)
    (res,) = captioner.caption_results(joints, top_k=4)
    assert len(res.captions) == 4 and len({c.lower().rstrip(".") for c in res.captions}) == 4
    assert res.scores == sorted(res.scores, reverse=True) and all(-1 <= s <= 1 for s in res.scores)
    db = captioner.database
    for c, e in zip(res.captions, res.entry_ids):
        assert db.captions[db.entry_ids.index(e)] == c
    assert res.total_frames == len(joints) - 1 and res.frames == min(res.total_frames, captioner.max_frames)
    record = json.loads(json.dumps(res.to_dict()))
    assert record["caption"] == res.caption and len(record["top_k"]) == 4
    # a path, a MotionFile, an array, a tensor and a list all give the same caption
    same = captioner.caption([path, load_motion_file(path), torch.from_numpy(joints)])
    assert same == [res.caption] * 3 and captioner.caption(joints) == [res.caption]
    # features of the same clip (the fixture's own feature file) are accepted as they are
    feats = np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy")
    assert captioner.caption_results(feats)[0].total_frames == len(feats)
    for bad, match in ((np.zeros((10, 21, 3)), "shape"), (joints[:1], "at least 2 frames"), ([], "no motions")):
        with pytest.raises(UsageError, match=match):
            captioner.caption(bad)
    with pytest.raises(UsageError, match="top_k"):
        captioner.caption_results(joints, top_k=0)


def test_segment_starts():
    from remomask.captioning import segment_starts

    assert segment_starts(150, 200) == [0]
    assert segment_starts(458, 200) == [0, 129, 258]
    starts = segment_starts(1000, 200)
    assert starts[0] == 0 and starts[-1] == 800 and len(starts) == 5


def test_caption_command(fixtures_dir, tmp_path, monkeypatch):
    folder = tmp_path / "mocap"
    folder.mkdir()
    shutil.copy(fixtures_dir / "cmu" / "131_03.bvh", folder)
    shutil.copy(fixtures_dir / "humanml3d" / "new_joints__012314.npy", folder / "walk.npy")
    (folder / "notes.txt").write_text("not a motion")
    res = _run(["caption", folder, "--threads", "1"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith(str(folder))]
    assert [ln.split(": ", 1)[0] for ln in lines] == [str(folder / "131_03.bvh"), str(folder / "walk.npy")]
    assert all(len(ln.split(": ", 1)[1]) > 10 for ln in lines)
    # --out: valid JSON lines, one per motion, in order
    out = tmp_path / "out" / "captions.jsonl"
    res = _run(["caption", folder / "walk.npy", folder / "131_03.bvh", "--out", out, "--top-k", "2"])
    assert res.exit_code == 0 and "2 caption(s)" in res.output, res.output
    records = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["file"] for r in records] == [str(folder / "walk.npy"), str(folder / "131_03.bvh")]
    assert all(len(r["top_k"]) == 2 and r["caption"] == r["top_k"][0]["caption"] for r in records)
    assert records[0]["caption"] == lines[1].split(": ", 1)[1]
    # a write that fails at the end (a read-only folder, simulated: the tests may run as root) is one line
    import remomask.files as files

    def deny(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "atomic_write_text", deny)
    res = _run(["caption", folder / "walk.npy", "--out", tmp_path / "ro.jsonl"])
    assert res.exit_code == 2 and res.output.strip() == f"error: {tmp_path / 'ro.jsonl'}: permission denied", res.output


def test_own_library_workflow(fixtures_dir, tmp_path):
    """A folder of BVH files -> imported and captioned -> a database over it -> found by text."""
    mocap = tmp_path / "my_bvh"
    mocap.mkdir()
    for name in ("01_01", "131_01", "131_02", "131_03"):
        shutil.copy(fixtures_dir / "cmu" / f"{name}.bvh", mocap)
    lib, db = tmp_path / "my_library", tmp_path / "my_db"
    res = _run(["data", "import", mocap, "--out", lib, "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "imported 4 motion(s)" in res.output
    assert (lib / "all.txt").read_text().split() == ["01_01", "131_01", "131_02", "131_03"]
    labels = json.loads((lib / "labels.json").read_text())
    assert labels["131_03"]["file"] == str((mocap / "131_03.bvh").resolve())
    records = [json.loads(ln) for ln in (lib / "captions.jsonl").read_text().splitlines()]
    # 01_01 lasts 22.9 s: captioned in 3 windows of 10 s; the others (8-10 s) whole
    assert [(r["id"], r["start_frame"], r["end_frame"]) for r in records if r["id"] == "01_01"] == [
        ("01_01", 0, 200), ("01_01", 129, 329), ("01_01", 258, 458)]
    assert len(records) == 6 and all(len(r["top_k"]) == 3 for r in records)
    res = _run(["data", "import", mocap, "--out", lib])  # never over an existing folder
    assert res.exit_code == 2 and res.output.startswith("error: --out") and "exists" in res.output, res.output

    res = _run(["retriever", "build-db", "--dataset", lib, "--split", "all", "--out", db, "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "18 entries (4 motions" in res.output  # 6 spans x 3 captions

    # a caption given to one file only finds that file first
    owner: dict[str, set] = {}
    for r in records:
        owner.setdefault(r["caption"], set()).add(r["id"])
    text, want = next((c, ids.pop()) for c, ids in owner.items() if len(ids) == 1)
    res = _run(["retrieve", text, "--database", db, "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.output)["results"]
    assert hits[0]["motion_id"] == want and hits[0]["labels"]["file"] == str((mocap / f"{want}.bvh").resolve())
    assert {h["motion_id"] for h in hits} <= set(labels)
