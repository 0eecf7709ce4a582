"""Your own mocap as a captioned dataset: motion files -> a HumanML3D-layout folder (docs/design.md §2.2).

:func:`import_motions` reads a list of motion files (``.bvh`` through the mocap importer, ``.npy`` /
``.npz`` joints or features), computes the 263-d features, captions every motion with a
:class:`~remomask.captioning.RetrievalCaptioner` and writes a dataset folder in the release layout that
every loader of the package reads, so that ``remomask retriever build-db --dataset FOLDER --split all``
indexes it and ``remomask retrieve "TEXT" --database DB`` finds the user's own clips by text::

    FOLDER/new_joints/<id>.npy       (T, 22, 3) float32 metres, 20 fps
    FOLDER/new_joint_vecs/<id>.npy   (T', 263) float32 de-normalised features (T' = T - 1 from joints)
    FOLDER/texts/<id>.txt            the retrieved captions, ``caption##start#end`` (no POS tokens)
    FOLDER/Mean.npy, FOLDER/Std.npy  the captioning retriever's feature statistics (263,)
    FOLDER/all.txt, FOLDER/train.txt every id (both list the whole library)
    FOLDER/labels.json               {id: {"file": absolute source path, "kind": bvh|joints|features, ...}}
    FOLDER/captions.jsonl            one ``remomask caption --out`` record per caption span
    FOLDER/README.md                 what made the folder

Long clips: the retriever encodes at most ``max_motion_length`` frames (224 = 11.2 s, docs/design.md §4.6),
so a motion longer than that is cut into ``ceil(T' / W)`` windows of ``W = segment_frames`` frames (200 =
10 s by default) spread evenly over the clip (they overlap a little unless T' is a multiple of W); each
window gets its own captions as a sub-clip span, which the loaders turn into a sample of its own
(``A_<id>``, ``B_<id>``, ...). Short motions get whole-clip captions.

The captions are the retrieval baseline's: sentences of the captioner's database, not descriptions
written for these clips. They make the clips findable by text; check them before training on them.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..constants import FPS
from ..errors import InputFileError, MissingFileError, OutputError, UsageError

__all__ = ["motion_paths", "import_motions", "ImportSummary", "segment_starts", "LIBRARY_SUFFIXES"]

LIBRARY_SUFFIXES = (".bvh", ".npy", ".npz")
"""File kinds taken from a folder argument (the ones :func:`remomask.data.motion_file.load_motion_file` reads)."""


def motion_paths(items: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand motion arguments: a file stays itself, a folder becomes its ``.bvh`` / ``.npy`` / ``.npz``
    files (not recursive), sorted by name. Duplicates are dropped, order kept.

    Raises:
        UsageError: no argument.
        MissingFileError: an argument that does not exist.
        InputFileError: a folder without motion files.
    """
    if not items:
        raise UsageError("no motion given: pass motion files (.bvh, .npy, .npz) or folders of them")
    out: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if not path.exists():
            raise MissingFileError(f"{path} does not exist; pass a motion file (.bvh, .npy, .npz) or a folder of them")
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LIBRARY_SUFFIXES),
                           key=lambda p: p.name)
            if not found:
                raise InputFileError(f"{path} holds no motion files ({', '.join(LIBRARY_SUFFIXES)}); "
                                     "pass a folder of BVH files or .npy joints / features")
            out.extend(found)
        else:
            out.append(path)
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def segment_starts(frames: int, window: int) -> list[int]:
    """First frames of the windows that cover ``frames`` frames with ``ceil(frames / window)`` windows of
    ``window`` frames spread evenly (``[0]`` when the motion fits in one window).

    Raises:
        UsageError: ``window < 1``.
    """
    if window < 1:
        raise UsageError(f"segment length must be >= 1 frame, got {window}")
    if frames <= window:
        return [0]
    n = math.ceil(frames / window)
    return [int(round(x)) for x in np.linspace(0, frames - window, n)]


@dataclass
class ImportSummary:
    """What :func:`import_motions` wrote.

    Attributes:
        folder: the dataset folder. ids: the motion ids, in input order. files: id -> source path.
        segments: caption spans written (one per short motion, several per long one).
        seconds: total duration of the imported motions (20 fps).
        records: the caption records (``captions.jsonl``), one per span.
    """

    folder: Path
    ids: list[str]
    files: dict[str, str]
    segments: int
    seconds: float
    records: list[dict]


def _safe_id(stem: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "motion"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _seconds(frame: int) -> float:
    """``frame / FPS`` nudged up so that the readers' ``int(seconds * FPS)`` gives ``frame`` back."""
    s = frame / FPS
    while int(s * FPS) < frame:
        s = float(np.nextafter(s, math.inf))
    return s


def import_motions(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, captioner,
                   captions_per_motion: int = 3, segment_frames: int = 200, overwrite: bool = False,
                   progress: bool = False) -> ImportSummary:
    """Import motion files as a captioned HumanML3D-layout dataset folder (module docstring).

    Args:
        paths: motion files (see :func:`motion_paths` to expand folders), or motions already read by
            :func:`~remomask.data.motion_file.load_motion_file` (their ``source`` names the file).
        out: the dataset folder to write (written in a temporary sibling and renamed into place).
        captioner: a :class:`~remomask.captioning.RetrievalCaptioner` (its retriever's statistics become
            ``Mean.npy`` / ``Std.npy``).
        captions_per_motion: distinct captions written per span (>= 1; the database gets one entry each).
        segment_frames: window length for motions longer than the retriever's ``max_motion_length``,
            feature frames at 20 fps (1 .. ``max_motion_length``).
        overwrite: replace an existing ``out``; False refuses it.
        progress: a tqdm bar over the files (on a terminal only).

    Returns:
        :class:`ImportSummary`.

    Raises:
        UsageError: no paths, a count or window out of range.
        OutputError: ``out`` exists (without ``overwrite``) or is a file.
        MissingFileError / InputFileError / MocapFormatError: a file that cannot be read as a motion.
        OSError: the folder cannot be written.

    Source: docs/design.md §2.2 (files, captions, splits), §4.6 (the 224-frame crop).
    """
    from tqdm.auto import tqdm

    from ..data.captions import Caption, write_captions
    from ..data.motion_file import MotionFile, load_motion_file
    from ..files import atomic_write_text, replaced_folder
    from .retrieval_captioner import motion_features

    if not paths:
        raise UsageError("no motion given: pass motion files (.bvh, .npy, .npz) or folders of them")
    if isinstance(captions_per_motion, bool) or int(captions_per_motion) < 1:
        raise UsageError(f"captions per motion must be >= 1, got {captions_per_motion}")
    if not 1 <= int(segment_frames) <= captioner.max_frames:
        raise UsageError(f"segment length must be 1..{captioner.max_frames} frames (the retriever encodes at "
                         f"most {captioner.max_frames / FPS:g} s), got {segment_frames}")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or not overwrite):
        what = "is a file" if not out.is_dir() else "exists"
        raise OutputError(f"{out} {what}; choose a new folder for the dataset")

    taken: set[str] = set()
    motions = []
    for item in tqdm(list(paths), desc="import", unit="file", disable=None if progress else True):
        loaded = item if isinstance(item, MotionFile) else load_motion_file(item)
        feats, _ = motion_features(loaded)
        path = Path(loaded.source)
        motions.append((_safe_id(path.stem, taken), path, loaded, feats))

    spans = []  # (motion index, start, end) in feature frames; whole clip = (i, 0, len) with whole=True
    for i, (_, _, _, feats) in enumerate(motions):
        n = len(feats)
        if n <= captioner.max_frames:
            spans.append((i, 0, n, True))
        else:
            spans.extend((i, a, a + int(segment_frames), False) for a in segment_starts(n, int(segment_frames)))
    results = captioner.caption_results([motions[i][3][a:b] for i, a, b, _ in spans], top_k=int(captions_per_motion))

    records = []
    with replaced_folder(out) as work:
        for sub in ("new_joints", "new_joint_vecs", "texts"):
            (work / sub).mkdir()
        labels = {}
        for i, (mid, path, loaded, feats) in enumerate(motions):
            np.save(work / "new_joints" / f"{mid}.npy", np.asarray(loaded.joints, dtype=np.float32))
            np.save(work / "new_joint_vecs" / f"{mid}.npy", np.asarray(feats, dtype=np.float32))
            labels[mid] = {"file": str(path.resolve()), "kind": loaded.kind, "frames": int(len(feats)),
                           "source": "import"}
            captions = []
            for (j, a, b, whole), res in zip(spans, results):
                if j != i:
                    continue
                start, end = (0.0, 0.0) if whole else (_seconds(a), _seconds(b))
                captions += [Caption(" ".join(c.replace("#", " ").split()), (), start, end) for c in res.captions]
                rec = res.to_dict()
                rec.update(file=str(path), id=mid, start_frame=a, end_frame=min(b, len(feats)))
                records.append(rec)
            write_captions(work / "texts" / f"{mid}.txt", captions)
        model = captioner.retriever
        np.save(work / "Mean.npy", model.feature_mean.detach().cpu().numpy().astype(np.float32))
        np.save(work / "Std.npy", model.feature_std.detach().cpu().numpy().astype(np.float32))
        ids = "".join(f"{m[0]}\n" for m in motions)
        for split in ("all", "train"):
            atomic_write_text(work / f"{split}.txt", ids)
        atomic_write_text(work / "labels.json", json.dumps(labels, indent=1, sort_keys=True) + "\n")
        atomic_write_text(work / "captions.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        seconds = sum(len(m[2].joints) for m in motions) / FPS
        atomic_write_text(work / "README.md", _readme(len(motions), len(spans), seconds, captioner))
    return ImportSummary(out, [m[0] for m in motions], {m[0]: str(m[1]) for m in motions}, len(spans), seconds,
                         records)


def _readme(count: int, spans: int, seconds: float, captioner) -> str:
    info = captioner.database.info
    return "\n".join([
        "# Imported motion library",
        "",
        f"Written by `remomask data import`: {count} motion file(s), {seconds:.1f} s at 20 fps, {spans} caption "
        "span(s), in the HumanML3D release layout (`new_joints/`, `new_joint_vecs/`, `texts/`, `Mean.npy`, "
        "`Std.npy`, `all.txt` = `train.txt`, `labels.json` naming each source file).",
        "",
        "The captions were **retrieved**, not written for these clips: each is a caption of the nearest entry "
        f"of a retrieval database (dataset `{info.get('dataset', '?')}`, split `{info.get('split', '?')}`, "
        f"model `{captioner.database.model_hash}`) to the clip's motion embedding (`captions.jsonl` holds the "
        "scores). Index the folder with `remomask retriever build-db --dataset THIS_FOLDER --split all --out DB`.",
        "",
    ])
