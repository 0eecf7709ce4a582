"""The CMU subsets of the raw data (dataset v2, docs/data.md "Dataset v2").

``cmu-subsets.tar.xz`` holds 190 files from four partial copies of the CMU Graphics Lab database,
with ``cmu/manifest.json``: one row per file with its CMU trial id, native frame rate, the CMU index
description and the real human captions known for the trial (KIT-ML whole-trial captions, HumanML3D
captions of 20-fps segments). This module turns the rows into :class:`CmuTrial` records:

* one copy per trial, by :data:`COPY_PREFERENCE` (the ASF/AMC original first);
* an action label from the description (:func:`remomask.data.labels.cmu_action`);
* the trial's human captions, and the items the builder cuts from it (:func:`trial_items`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import InputFileError
from .labels import cmu_action

__all__ = ["COPY_PREFERENCE", "CmuTrial", "TrialItem", "read_manifest", "choose_trials", "trial_items",
           "MAX_ITEM_FRAMES"]

COPY_PREFERENCE = ("cyun9601", "przestr", "acrnn", "iclone")
"""Which copy of a trial is imported when several hold it: the original ASF/AMC, then the cgspeed
BVH conversions (Daz rig), then the Reallusion CC retargeting (a second retargeting step)."""

MAX_ITEM_FRAMES = 197
"""Joints per window item (9.8 s of features), as :data:`remomask.data.build.MAX_FRAMES`."""


@dataclass(frozen=True)
class CmuTrial:
    """One CMU trial as imported: the chosen copy's manifest row and its labels.

    Attributes:
        key: ``"01_01"`` (CMU trial id) or ``"salsa_01"`` for the acRNN salsa files, whose trial ids
            the manifest does not know.
        row: the manifest row (``path`` under ``cmu/``, ``fps``, ``kitml``, ``hml3d_segments``, ...).
        action: action label (:func:`remomask.data.labels.cmu_action`).
        subject: CMU subject (``"01"``), or ``"salsa"``.
    """

    key: str
    row: dict = field(repr=False)
    action: str
    subject: str

    @property
    def fps(self) -> float:
        """Native frame rate of the trial (the manifest's; BVH headers may be wrong)."""
        return float(self.row["fps"])

    @property
    def path(self) -> str:
        """The copy's path under the archive's ``cmu/`` folder."""
        return self.row["path"]

    @property
    def kit_captions(self) -> list[str]:
        """KIT-ML captions of the whole trial (human-written)."""
        return [t for k in self.row.get("kitml") or [] for t in k.get("texts") or []]

    @property
    def hml_segments(self) -> list[tuple[int, int, list[str]]]:
        """HumanML3D segments with known captions: ``(start, end, texts)``, frames at 20 fps."""
        out = []
        for s in self.row.get("hml3d_segments") or []:
            if s.get("texts"):
                out.append((int(s["start20"]), int(s["end20"]), list(s["texts"])))
        return sorted(out)

    @property
    def has_human_captions(self) -> bool:
        """True when the trial has KIT-ML or HumanML3D captions."""
        return bool(self.kit_captions or self.hml_segments)


@dataclass(frozen=True)
class TrialItem:
    """One dataset item cut from a trial: frames ``[start, end)`` at 20 fps, its captions and where
    they come from (``"human"`` or ``"template"``; template captions are written by the builder)."""

    start: int
    end: int
    human_captions: tuple[str, ...]
    kind: str  # "window", "hml3d_segment" or "whole_trial"


def read_manifest(data: bytes, where: str = "cmu/manifest.json") -> list[dict]:
    """The rows of ``cmu/manifest.json``.

    Raises:
        InputFileError: not the manifest's JSON (``{"rows": [...]}`` with a ``path`` and ``fps`` per row).
    """
    try:
        rows = json.loads(data)["rows"]
        for r in rows:
            _ = r["path"], float(r["fps"]), r["source"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{where}: not the CMU manifest ({type(exc).__name__}: {exc}); restore "
                             "the original archive (the dataset card lists the sources)") from exc
    return rows


def _trial_key(row: dict) -> str:
    if row.get("cmu_trial"):
        return str(row["cmu_trial"])
    stem = row["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{row['path'].split('/')[-2]}_{stem}"


def choose_trials(rows: list[dict]) -> list[CmuTrial]:
    """One :class:`CmuTrial` per trial, the copy chosen by :data:`COPY_PREFERENCE`; sorted by key.

    Raises:
        KeyError: a description without an action rule (see :func:`remomask.data.labels.cmu_action`).
    """
    best: dict[str, dict] = {}
    rank = {name: k for k, name in enumerate(COPY_PREFERENCE)}
    for row in rows:
        key = _trial_key(row)
        if key not in best or rank.get(row["source"], 99) < rank.get(best[key]["source"], 99):
            best[key] = row
    out = []
    for key in sorted(best):
        row = best[key]
        subject = key.split("_")[0]
        out.append(CmuTrial(key, row, cmu_action(row.get("cmu_description"), row["path"]), subject))
    return out


def trial_items(trial: CmuTrial, num_frames: int, windows: list[tuple[int, int]]) -> list[TrialItem]:
    """The items of a trial of ``num_frames`` joints at 20 fps (docs/data.md "Dataset v2").

    * every window of ``windows`` (the builder's equal cut into <= 9.8 s), with template captions;
      a window that is the whole trial also carries the trial's KIT-ML captions;
    * every HumanML3D segment with captions, as its own item (cut to 197 joints, 9.8 s of features,
      and to the trial's length), or, when it is one of the windows (within 2 frames at each end, a
      short trial), as captions of that window;
    * a trial longer than one window with KIT-ML captions: one whole-trial item carrying them (longer
      than 9.8 s; the generation loaders drop it, as HumanML3D's do, the retriever and tokenizer crop it).
    """
    kit = tuple(trial.kit_captions)
    captions = {w: list(kit) if w == (0, num_frames) else [] for w in windows}
    extra: list[TrialItem] = []
    for start, end, texts in trial.hml_segments:
        end = min(end, start + MAX_ITEM_FRAMES, num_frames)  # HumanML3D's end frame is exclusive
        same = [w for w in windows if abs(w[0] - start) <= 2 and abs(w[1] - end) <= 2]
        if same:  # the segment is a window (a short trial): its captions go on that window
            captions[same[0]] += texts
        elif end - start >= 21:
            extra.append(TrialItem(start, end, tuple(texts), "hml3d_segment"))
    items = [TrialItem(a, b, tuple(captions[a, b]), "window") for a, b in windows] + extra
    if kit and windows and windows[0] != (0, num_frames):
        items.append(TrialItem(0, num_frames, kit, "whole_trial"))
    return items
