"""Dataset v2 (issue "Every action learned"): the CMU subsets with their human captions, ReActIdle's
idle clips and ``test_human``, checked on the real manifest and on the committed embedded dataset."""

from __future__ import annotations

import json
import tarfile
from collections import defaultdict

import pytest

from remomask.data.build import idle_windows, item_split, segment_bounds
from remomask.data.cmu import choose_trials, read_manifest, trial_items
from remomask.data.embedded import EMBEDDED_DIR
from remomask.data.labels import ClipLabels, cmu_action, make_captions, pos_tag

from conftest import SHARED

CMU_ARCHIVE = SHARED / "data" / "raw" / "cmu-subsets.tar.xz"


@pytest.fixture(scope="module")
def manifest_rows():
    if not CMU_ARCHIVE.is_file():
        pytest.fail(f"{CMU_ARCHIVE} is missing: the raw data of ../shared/data/raw is needed")
    with tarfile.open(CMU_ARCHIVE, "r:xz") as tar:
        for member in tar:
            if member.name.endswith("cmu/manifest.json"):
                return read_manifest(tar.extractfile(member).read())
    pytest.fail("no cmu/manifest.json in the CMU archive")


def _human_pairs(rows) -> set[tuple[str, str]]:
    """(trial, caption) of every human caption of the manifest (KIT-ML whole-trial, HumanML3D segment)."""
    out = set()
    for r in rows:
        trial = r["cmu_trial"]
        for k in r.get("kitml") or []:
            out.update((trial, t) for t in k["texts"])
        for s in r.get("hml3d_segments") or []:
            out.update((trial, t) for t in s.get("texts") or [])
    return out


def test_manifest_has_63_human_captions_and_every_description_has_an_action(manifest_rows):
    assert len(_human_pairs(manifest_rows)) == 63
    for r in manifest_rows:
        assert cmu_action(r.get("cmu_description"), r["path"])  # raises for an uncovered description


def test_one_copy_per_trial_and_the_original_wins(manifest_rows):
    trials = choose_trials(manifest_rows)
    keys = [t.key for t in trials]
    assert len(keys) == len(set(keys)) == 155
    by_key = {t.key: t for t in trials}
    # 01_01 exists as ASF/AMC (cyun9601) and as the iClone CC BVH: the original is taken
    assert by_key["01_01"].row["source"] == "cyun9601" and by_key["01_01"].path.endswith(".amc")
    # 07_04 exists as the cgspeed BVH and the iClone BVH: the one-step conversion is taken
    assert by_key["07_04"].row["source"] == "przestr"
    assert by_key["07_04"].fps == 120.0  # the manifest's rate (the przestr header is not trusted)
    assert by_key["salsa_01"].action == "salsa"


def test_trial_items_place_human_captions_by_the_rules(manifest_rows):
    by_key = {t.key: t for t in choose_trials(manifest_rows)}
    # a long trial (22.9 s): windows with template captions only, the HumanML3D segment 19-219
    # (cut to 9.8 s), and one whole-trial item with the KIT-ML caption
    t = by_key["01_01"]
    frames = 459
    items = trial_items(t, frames, segment_bounds(frames))
    windows = [i for i in items if i.kind == "window"]
    assert len(windows) == 3 and not any(i.human_captions for i in windows)
    seg = [i for i in items if i.kind == "hml3d_segment"]
    assert [(i.start, i.end) for i in seg] == [(19, 19 + 197)] and len(seg[0].human_captions) == 3
    whole = [i for i in items if i.kind == "whole_trial"]
    assert [(i.start, i.end) for i in whole] == [(0, frames)]
    assert whole[0].human_captions == tuple(t.kit_captions)
    # a short trial (3.7 s) whose HumanML3D segment is the whole trial: one window with both captions
    t = by_key["07_04"]
    items = trial_items(t, 75, segment_bounds(75))
    assert len(items) == 1 and items[0].kind == "window"
    assert set(t.kit_captions) < set(items[0].human_captions) and len(items[0].human_captions) == 4


def test_item_split_and_idle_windows():
    assert item_split("test_human", human_captions=False) == "test"
    assert item_split("test_human", human_captions=True) == "test_human"
    assert item_split("train", human_captions=False) == "train"
    windows = idle_windows(2828, 4)  # a 141-s ReActIdle clip at 20 fps
    assert len(windows) == 4 and windows[0][0] == 0 and windows[-1][1] == 2828
    assert all(b - a <= 197 for a, b in windows)


def test_template_captions_for_every_new_action_are_tagged():
    for action in ("walk-uneven", "jump", "climb", "reach-up", "pick-up", "wash", "swordplay", "dribble",
                   "ballet", "salsa", "indian-dance", "karate", "karate-kick"):
        for text in make_captions(ClipLabels("cmu", action, None), action):
            pos_tag(text)  # strict: every word of a template caption is in the lexicon
    for text in make_captions(ClipLabels("reactidle", "idle", None), "idle"):
        pos_tag(text)
    with pytest.raises(KeyError):
        pos_tag("a person pirouettes gracefully")
    tags = dict(pos_tag("a person pirouettes gracefully", strict=False))
    assert tags["pirouettes"] == "VERB" and tags["gracefully"] == "ADV"


# ----------------------------------------------------------------------------------------------
# The committed embedded dataset (version 2)
# ----------------------------------------------------------------------------------------------
def _split(name: str) -> list[str]:
    return [ln for ln in (EMBEDDED_DIR / f"{name}.txt").read_text().split() if ln]


@pytest.fixture(scope="module")
def committed():
    return (json.loads((EMBEDDED_DIR / "stats.json").read_text()),
            json.loads((EMBEDDED_DIR / "labels.json").read_text()))


def test_committed_v2_has_45_actions_idle_and_test_human(committed):
    stats, labels = committed
    assert stats["version"].startswith("2.")
    assert len(stats["labels"]) >= 45
    assert {"idle", "salsa", "ballet", "climb", "jump"} <= set(stats["labels"])
    train_actions = {labels[i]["action"] for i in _split("train")}
    assert train_actions == set(stats["labels"])  # every action has train data
    assert len(_split("test_human")) > 0


def test_committed_v2_uses_every_human_caption(committed, manifest_rows):
    _, labels = committed
    used = set()
    for sid, lab in labels.items():
        if lab["mirrored"] or lab["source"] != "cmu":
            continue
        lines = (EMBEDDED_DIR / "texts" / f"{sid}.txt").read_text().splitlines()
        assert len(lines) == len(lab["caption_sources"])
        used.update((lab["trial"], ln.split("#")[0]) for ln, src in zip(lines, lab["caption_sources"])
                    if src == "human")
    assert used == _human_pairs(manifest_rows)


def test_committed_test_human_is_human_captioned_and_held_out(committed):
    _, labels = committed
    trials = defaultdict(set)
    for split in ("train", "val", "test", "test_unseen", "test_human"):
        for sid in _split(split):
            if labels[sid]["trial"]:
                trials[labels[sid]["trial"]].add(split)
    for sid in _split("test_human"):
        assert "human" in labels[sid]["caption_sources"]
        assert trials[labels[sid]["trial"]] <= {"test", "test_human"}, labels[sid]["trial"]
