"""Dataset loaders on a tiny release-layout folder built from real HumanML3D fixtures (docs/design.md §2.2-§2.4)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from remomask.data.captions import (
    Caption,
    evaluator_tokens,
    format_caption_line,
    parse_caption_line,
    read_captions,
    write_captions,
)
from remomask.data.datasets import (
    EvalTextMotionDataset,
    MotionWindowDataset,
    TextMotionDataset,
    collate,
    frame_mask,
)
from remomask.data.layout import (
    DatasetError,
    DatasetWarning,
    MotionLayout,
    infer_skeleton,
    load_npy,
    subclip_key_prefix,
)
from remomask.data.normalization import check_stats, denormalize, normalize

from conftest import SHARED

FIX = Path("/work/shared/data/fixtures/humanml3d")
TEXT = FIX / "texts__000000.txt"
CLIP_A, CLIP_B = "012314", "000612"  # (170, 263) float32 and (199, 263) float64 real clips

# Sub-clip lines added to clip A's captions, written with the real caption text of the fixture.
# At 20 fps: 1.0-4.5 s -> frames 20:90 (70), 2.0-9.0 s -> 40:180 truncated to 40:170 (130),
# 3.0-4.0 s -> 60:80 (20, shorter than the HumanML3D minimum of 40).
SUBCLIPS = [(1.0, 4.5), (2.0, 9.0), (3.0, 4.0)]


def _raw(mid: str) -> np.ndarray:
    return np.load(FIX / f"new_joint_vecs__{mid.lstrip('M')}.npy").astype(np.float32)


def _fixture_lines() -> list[str]:
    return [ln for ln in TEXT.read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Release layout with 2 real clips, their M-copies, real captions, Mean/Std and split files."""
    r = tmp_path / "hml"
    (r / "new_joint_vecs").mkdir(parents=True)
    (r / "texts").mkdir()
    (r / "new_joints").mkdir()
    lines = _fixture_lines()
    first = lines[0].split("#")
    sub_lines = [f"{first[0]}#{first[1]}#{s}#{e}" for s, e in SUBCLIPS]
    for mid in (CLIP_A, CLIP_B):
        for out_id in (mid, "M" + mid):  # mirrored ids made by copying, as the brief asks
            shutil.copy(FIX / f"new_joint_vecs__{mid}.npy", r / "new_joint_vecs" / f"{out_id}.npy")
            extra = sub_lines if mid == CLIP_A else []
            (r / "texts" / f"{out_id}.txt").write_text("\n".join(lines + extra) + "\n", encoding="utf-8")
    shutil.copy(FIX / f"new_joints__{CLIP_A}.npy", r / "new_joints" / f"{CLIP_A}.npy")
    shutil.copy(FIX / "Mean.npy", r / "Mean.npy")
    shutil.copy(FIX / "Std.npy", r / "Std.npy")
    ids = [CLIP_A, CLIP_B, "M" + CLIP_A, "M" + CLIP_B]
    (r / "train.txt").write_text("\n".join(ids) + "\n")
    (r / "test.txt").write_text(f"{CLIP_A}\n{CLIP_B}\n")
    (r / "all.txt").write_text("\n".join(ids) + "\n")
    (r / "labels.json").write_text(json.dumps({CLIP_A: {"action": "kick"}}))
    return r


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any unexpected DatasetWarning fails the test
        return fn(*args, **kwargs)


# ---------------------------------------------------------------- captions


def test_parse_fixture_caption_file():
    caps, problems = read_captions(TEXT)
    assert problems == []
    assert len(caps) == 4
    assert caps[0].text == "a man kicks something or someone with his left leg."
    assert caps[0].tokens[:3] == (("a", "DET"), ("man", "NOUN"), ("kick", "VERB"))
    assert caps[3].tokens[-1] == ("leg", "NOUN")
    assert all(c.is_whole_clip and c.frame_range(20) is None for c in caps)
    # Writing the parsed captions reproduces the release lines byte for byte.
    for line, cap in zip(_fixture_lines(), caps):
        assert format_caption_line(cap.text, cap.tokens, cap.start, cap.end) == line


def test_caption_start_end_rules():
    c = parse_caption_line("a person waves#a/DET person/NOUN wave/VERB#nan#nan")
    assert c.is_whole_clip and c.start == 0.0
    c = parse_caption_line("x # y#x/X#1.25#3.0")  # '#' inside the text survives
    assert c.text == "x # y" and c.frame_range(20) == (25, 60) and c.frame_range(12.5) == (15, 37)
    assert parse_caption_line("walks#1/2/NUM#0.0#0.0").tokens == (("1/2", "NUM"),)
    assert parse_caption_line("no tagger output##0.0#0.0").tokens == ()
    for bad in ("no hashes at all", "text#tok/X#abc#1.0", "text#badtoken#0.0#0.0",
                "#a/DET#0.0#0.0", "text#a/DET#3.0#2.0", "text#a/DET#-1.0#2.0", "text#a/DET#inf#0"):
        with pytest.raises(ValueError):
            parse_caption_line(bad)
    with pytest.raises(ValueError):
        format_caption_line("has # hash", [("a", "DET")])


def test_write_captions_roundtrip(tmp_path):
    caps = [Caption("a man jumps.", [("a", "DET"), ("man", "NOUN"), ("jump", "VERB")], 0.0, 0.0),
            Caption("then sits", ["then/ADV", "sit/VERB"], 1.5, 4.0)]
    path = tmp_path / "x.txt"
    write_captions(path, caps)
    back, problems = read_captions(path)
    assert problems == [] and back == caps
    assert path.read_text().splitlines()[1] == "then sits#then/ADV sit/VERB#1.5#4.0"


def test_evaluator_tokens():
    padded, n = evaluator_tokens(["a/DET", "man/NOUN"], max_text_len=20)
    assert n == 4 and len(padded) == 22
    assert padded[:4] == ["sos/OTHER", "a/DET", "man/NOUN", "eos/OTHER"] and padded[4:] == ["unk/OTHER"] * 18
    padded, n = evaluator_tokens([f"w{i}/NOUN" for i in range(30)], max_text_len=20)
    assert n == 22 and padded[-1] == "eos/OTHER" and padded[20] == "w19/NOUN"


# ---------------------------------------------------------------- layout


def test_layout_subclips_keys_and_labels(root):
    lay = _quiet(MotionLayout, root, "train")
    assert lay.skeleton.name == "humanml3d" and lay.fps == 20.0 and lay.feature_dim == 263
    keys = lay.keys()
    # Whole clips (4) + 2 sub-clips of each A copy; the 20-frame sub-clip is below the minimum of 40.
    assert sorted(keys) == sorted([CLIP_A, CLIP_B, "M" + CLIP_A, "M" + CLIP_B,
                                   "A_" + CLIP_A, "B_" + CLIP_A, "A_M" + CLIP_A, "B_M" + CLIP_A])
    raw = _raw(CLIP_A)
    a, b = lay.by_key("A_" + CLIP_A), lay.by_key("B_" + CLIP_A)
    assert a.length == 70 and np.array_equal(a.motion, raw[20:90]) and a.start_frame == 20
    assert b.length == 130 and np.array_equal(b.motion, raw[40:170])
    assert [c.start for c in a.captions] == [1.0] and a.motion_id == CLIP_A and a.is_subclip
    whole = lay.by_key(CLIP_A)
    assert whole.length == 170 and len(whole.captions) == 4 and whole.motion.dtype == np.float32
    assert whole.labels == {"action": "kick"} and lay.by_key("M" + CLIP_A).labels == {}
    assert lay.by_key(CLIP_B).motion.dtype == np.float32  # the float64 file is converted
    assert lay.stats.too_short == 2 and lay.stats.records == 8
    # Joints of a sub-clip follow its frame span.
    assert np.array_equal(lay.joints(a), np.load(FIX / f"new_joints__{CLIP_A}.npy")[20:90])
    assert lay.joints("M" + CLIP_A) is None
    # Keys are deterministic across loads.
    assert _quiet(MotionLayout, root, "train").keys() == keys


def test_layout_length_filters(root):
    # The 199-frame clip is kept with max 200 and dropped with max 199; min 0 keeps the 20-frame span.
    assert CLIP_B not in _quiet(MotionLayout, root, "test", max_length=199).keys()
    lay = _quiet(MotionLayout, root, "test", min_length=0, max_length=None)
    assert lay.by_key("C_" + CLIP_A).length == 20
    lay = _quiet(MotionLayout, root, "test", min_length=100)
    assert sorted(lay.keys()) == sorted([CLIP_A, CLIP_B, "B_" + CLIP_A])
    assert lay.stats.too_short == 2
    assert subclip_key_prefix(0) == "A" and subclip_key_prefix(25) == "Z" and subclip_key_prefix(26) == "AA"


def test_skeleton_inference():
    assert infer_skeleton(263).name == "humanml3d" and infer_skeleton(251).name == "kit"
    assert infer_skeleton(251).fps == 12.5 and infer_skeleton(251).min_motion_length == 24
    with pytest.raises(DatasetError):
        infer_skeleton(300)


def test_layout_errors(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="--dataset PATH") as e:
        MotionLayout(tmp_path / "nowhere", "train")
    assert isinstance(e.value, DatasetError) and "nowhere" in str(e.value)
    with pytest.raises(DatasetError, match=r"train.*test|all.*test") as e:
        MotionLayout(root, "val")  # lists the splits that exist
    assert isinstance(e.value, FileNotFoundError) and "val.txt" in str(e.value)
    with pytest.raises(ValueError, match="skeleton 'kit'"):
        MotionLayout(root, "train", skeleton="kit")
    (root / "Mean.npy").unlink()
    with pytest.raises(DatasetError, match="Mean.npy"):
        MotionLayout(root, "train")


def test_missing_motion_files(root):
    (root / "new_joint_vecs" / f"M{CLIP_B}.npy").unlink()
    with pytest.warns(DatasetWarning, match="1 of 4 motion files"):
        lay = MotionLayout(root, "train")
    assert lay.stats.missing_motions == ["M" + CLIP_B] and "M" + CLIP_B not in lay.keys()
    with pytest.raises(FileNotFoundError, match="missing"):
        MotionLayout(root, "train", allow_missing=False)
    for p in (root / "new_joint_vecs").glob("*.npy"):
        p.unlink()
    with pytest.raises(DatasetError, match="none of the 4 motion files"):
        MotionLayout(root, "train")


def test_malformed_captions_and_nan(root):
    txt = root / "texts" / f"{CLIP_B}.txt"
    txt.write_text(txt.read_text() + "no hashes here\nbad#tok/X#abc#1\n\n")
    bad = _raw(CLIP_B)
    bad[10, 5] = np.nan
    np.save(root / "new_joint_vecs" / f"M{CLIP_A}.npy", bad)
    with pytest.warns(DatasetWarning) as rec:
        lay = MotionLayout(root, "train")
    msgs = [str(w.message) for w in rec]
    assert any("2 malformed caption lines" in m for m in msgs)
    assert any("1 motions" in m and "NaN" in m and "M" + CLIP_A in m for m in msgs)
    assert len(lay.stats.malformed_caption_lines) == 2 and lay.stats.nan_motions == ["M" + CLIP_A]
    assert not any(r.motion_id == "M" + CLIP_A for r in lay)
    assert len(lay.by_key(CLIP_B).captions) == 4  # the good lines of that file survive


# ---------------------------------------------------------------- normalisation


def test_normalize_roundtrip_and_zero_std():
    mean, std = np.load(FIX / "Mean.npy"), np.load(FIX / "Std.npy")
    x = _raw(CLIP_A)
    y = normalize(x, mean, std)
    assert np.allclose(y[3, 7], (x[3, 7] - mean[7]) / std[7])
    assert np.allclose(denormalize(y, mean, std), x, atol=1e-5)
    yt = normalize(torch.from_numpy(x), mean, std)
    assert isinstance(yt, torch.Tensor) and torch.allclose(yt, torch.from_numpy(y), atol=1e-5)
    std0 = std.copy()
    std0[[0, 262]] = 0.0
    with pytest.warns(DatasetWarning, match=r"2 std entries are 0 \(indices \[0, 262\]\)"):
        m, s = check_stats(mean, std0, 263)
    assert s[0] == 1.0 and s[262] == 1.0 and s[5] == std[5]
    assert np.allclose(normalize(x, m, s)[:, 0], x[:, 0] - mean[0])
    with pytest.raises(DatasetError):
        check_stats(mean, std, 251)


# ---------------------------------------------------------------- datasets


def test_generation_crop(root):
    ds = _quiet(TextMotionDataset, root, "train")
    mean, std = np.load(FIX / "Mean.npy"), np.load(FIX / "Std.npy")
    torch.manual_seed(0)
    seen = set()
    for i in range(120):
        item = ds[i % len(ds)]
        rec = ds.layout.by_key(item["key"])
        n, s = item["length"], item["start"]
        t = rec.length
        assert n % 4 == 0 and 0 < n <= 196
        assert n in (t // 4 * 4, (t // 4 - 1) * 4)
        seen.add(n == t // 4 * 4)
        assert 0 <= s <= t - n
        m = item["motion"].numpy()
        assert m.shape == (196, 263) and not m[n:].any()
        assert np.allclose(m[:n], (rec.motion[s:s + n] - mean) / std, atol=1e-5)
        assert item["caption"] in {c.text for c in rec.captions}
    assert seen == {True, False}  # both the single and the double coin occur


def test_retriever_window(root):
    # A real 369-frame clip (both fixtures joined) to get a sample longer than the 224-frame window.
    long = np.concatenate([_raw(CLIP_B), _raw(CLIP_A)])
    np.save(root / "new_joint_vecs" / "long01.npy", long)
    shutil.copy(TEXT, root / "texts" / "long01.txt")
    (root / "val.txt").write_text(f"long01\n{CLIP_B}\n")
    mean, std = np.load(FIX / "Mean.npy"), np.load(FIX / "Std.npy")
    ev = _quiet(TextMotionDataset, root, "val", mode="retriever", train=False)
    assert sorted(ev.layout.keys()) == sorted(["long01", CLIP_B])  # no max-length filter
    items = {it["key"]: it for it in (ev[0], ev[1])}
    first = _fixture_lines()[0].split("#")[0]
    assert items["long01"]["length"] == 224 and items["long01"]["start"] == 0
    assert items["long01"]["caption"] == first
    assert np.allclose(items["long01"]["motion"].numpy(), (long[:224] - mean) / std, atol=1e-5)
    short = items[CLIP_B]
    assert short["length"] == 199 and short["motion"].shape == (224, 263) and not short["motion"][199:].any()
    tr = _quiet(TextMotionDataset, root, "val", mode="retriever", train=True)
    torch.manual_seed(1)
    k = tr.layout.keys().index("long01")
    starts = {tr[k]["start"] for _ in range(20)}
    assert all(0 <= s <= 369 - 224 for s in starts) and len(starts) > 1
    it = tr[k]
    assert np.allclose(it["motion"].numpy(), (long[it["start"]:it["start"] + 224] - mean) / std, atol=1e-5)


def test_eval_loader_deterministic(root):
    ev_dir = "/work/shared/data/fixtures/evaluator"
    ev_mean, ev_std = f"{ev_dir}/t2m_mean.npy", f"{ev_dir}/t2m_std.npy"
    a = _quiet(EvalTextMotionDataset, root, "train", ev_mean, ev_std, seed=3)
    b = _quiet(EvalTextMotionDataset, root, "train", ev_mean, ev_std, seed=3)
    c = _quiet(EvalTextMotionDataset, root, "train", ev_mean, ev_std, seed=4)

    def sig(ds):
        return [(it["key"], it["caption"], it["length"], it["start"]) for it in (ds[i] for i in range(len(ds)))]

    assert sig(a) == sig(b) == sig(a)  # same seed: same items, also on a second pass
    assert sig(a) != sig(c)
    assert torch.equal(a[2]["motion"], b[2]["motion"])
    mean = np.load(ev_mean)
    rec = a.layout.by_key(a[0]["key"])
    assert np.allclose(a[0]["motion"][0].numpy(), (rec.motion[a[0]["start"]] - mean) / np.load(ev_std), atol=1e-5)
    it = a[0]
    assert len(it["tokens"]) == 22 and it["tokens"][0] == "sos/OTHER"
    assert it["tokens"][it["sent_len"] - 1] == "eos/OTHER"
    s = _quiet(EvalTextMotionDataset, root, "train", ev_mean, ev_std, sort_by_length=True)
    lengths = [r.length for r in s.records]
    assert lengths == sorted(lengths)


def test_window_dataset(root):
    ds = _quiet(MotionWindowDataset, root, "train", window_size=64)
    # Whole clips only (no sub-clips): 2 x (170 - 64 + 1) + 2 x (199 - 64 + 1) windows.
    assert len(ds) == 2 * 107 + 2 * 136
    mean, std = np.load(FIX / "Mean.npy"), np.load(FIX / "Std.npy")
    last = ds[len(ds) - 1]
    raw = _raw(last["key"])
    assert last["motion"].shape == (64, 263) and last["start"] == len(raw) - 64
    assert np.allclose(last["motion"].numpy(), (raw[-64:] - mean) / std, atol=1e-5)
    ev = _quiet(MotionWindowDataset, root, "train", window_size=64, stride=64, train=False)
    assert len(ev) == 2 * 2 + 2 * 3 and [ev[i]["start"] for i in range(3)] == [0, 64, 0]
    assert torch.equal(ev[1]["motion"], ev[1]["motion"])


def test_dataloader_batch(root):
    ds = _quiet(TextMotionDataset, root, "train")
    loader = DataLoader(ds, batch_size=3, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    batch = next(iter(loader))
    assert batch["motion"].shape == (3, 196, 263) and batch["motion"].dtype == torch.float32
    assert batch["length"].dtype == torch.long and batch["length"].shape == (3,)
    assert isinstance(batch["caption"], list) and all(isinstance(c, str) for c in batch["caption"])
    assert isinstance(batch["labels"], list) and isinstance(batch["key"][0], str)
    mask = frame_mask(batch["length"], 196)
    assert mask.shape == (3, 196) and mask.sum(1).tolist() == batch["length"].tolist()
    assert not batch["motion"][~mask].any()
    ev = _quiet(EvalTextMotionDataset, root, "test")
    eb = collate([ev[i] for i in range(len(ev))])
    assert isinstance(eb["tokens"], list) and len(eb["tokens"][0]) == 22 and eb["sent_len"].dtype == torch.long
    with pytest.raises(ValueError, match="shapes"):
        collate([{"x": torch.zeros(2)}, {"x": torch.zeros(3)}])


def test_load_npy_matches_numpy_from_many_threads_and_rejects_bad_files(tmp_path):
    """The thread-safe reader the layout uses (CPython gh-106905 workaround) returns exactly what np.load
    returns, from 8 threads at once over the real fixture clip and C/Fortran copies, and refuses broken files."""
    from concurrent.futures import ThreadPoolExecutor

    real = np.load(SHARED / "data" / "fixtures" / "humanml3d" / "new_joint_vecs__012314.npy")
    arrays = {"c": real, "f": np.asfortranarray(real), "f64": real.astype(np.float64)[:40]}
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
    names = list(arrays) * 60
    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(lambda n: load_npy(tmp_path / f"{n}.npy"), names))
    for n, arr in zip(names, loaded):
        assert arr.dtype == arrays[n].dtype and np.array_equal(arr, arrays[n])
    (tmp_path / "cut.npy").write_bytes((tmp_path / "c.npy").read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load_npy(tmp_path / "cut.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object"):
        load_npy(tmp_path / "obj.npy")
    with pytest.raises(FileNotFoundError):
        load_npy(tmp_path / "missing.npy")
