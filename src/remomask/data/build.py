"""Build remomask's embedded dataset from the real mocap in ``shared/data/raw`` (issue: data).

``remomask data build --raw ../shared/data/raw --out DIR`` runs, in order:

1. read the three archives (Bandai-Namco 1 and 2 BVH, the HDM05 ASF/AMC subset) straight from the
   ``.tar.xz`` files (or from unpacked folders),
2. import every clip to 22 HumanML3D joints in metres at 20 fps (:mod:`remomask.data.mocap`),
3. drop clips under 1 s and cut clips over 9.8 s into equal segments of 2 to 9.8 s,
4. mirror every segment (``M`` ids; joints, captions and labels left/right swapped, docs/design.md §2.2),
5. split by source clip, stratified by label, with a ``test_unseen`` split of held-out Bandai
   (content, style) pairs closed under mirroring,
6. write captions (>= 3 deterministic paraphrases per clip), labels, split files, the compact joint
   archive, ``Mean.npy``/``Std.npy`` over the train features and the dataset card.

Everything is deterministic: the same raw files give byte-identical outputs (content hash in the card).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tarfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..constants import FPS as _FPS
from ..errors import InputFileError, MissingFileError, UsageError
from .features import features_from_joints, mirror_joints
from .mocap.bvh import MocapFormatError
from .cmu import CmuTrial, TrialItem, choose_trials, read_manifest, trial_items
from .labels import ClipLabels, bandai_style_name, make_captions, mirror_label, mirror_text, pos_tag
from .storage import atomic_path, load_joint_archive, save_joint_archive

__all__ = ["BuildConfig", "build_embedded_dataset", "SourceClip", "iter_raw_clips",
           "feature_statistics", "DATASET_VERSION", "ALL_SOURCES"]

DATASET_VERSION = "2.0"
FPS = _FPS
# HumanML3D keeps clips of >= 2 s (docs/design.md §2.4), but our sources are full of single actions of 1-2 s
# (Bandai-Namco 2's waves and raises: a quarter of its clips are under 2.5 s; most HDM05 clips are one
# repetition of 0.5-2 s), so the embedded dataset keeps clips of >= 1 s (20 feature frames, 5 tokens).
MIN_FRAMES = 21   # joints; 20 feature frames = 1.0 s
MAX_FRAMES = 197  # joints; 196 feature frames = 9.8 s
ARCHIVES = {
    "bandai1": "bandai-namco-1.tar.xz",
    "bandai2": "bandai-namco-2.tar.xz",
    "hdm05": "hdm05-subset.tar.xz",
    "cmu": "cmu-subsets.tar.xz",
    "reactidle": "reactidle.tar.xz",
}
# top-level folders of the unpacked archives
UNPACKED = {
    "bandai1": "Bandai-Namco-Research-Motiondataset-1",
    "bandai2": "Bandai-Namco-Research-Motiondataset-2",
    "hdm05": "hdm05",
    "cmu": "cmu",
    "reactidle": "reactidle",
}
ALL_SOURCES = tuple(ARCHIVES)


@dataclass(frozen=True)
class BuildConfig:
    """Options of :func:`build_embedded_dataset`.

    Attributes:
        raw: folder with the three ``.tar.xz`` archives (or their unpacked folders).
        out: output dataset folder (HumanML3D layout, see :mod:`remomask.data.layout`).
        workers: processes for import and feature extraction.
        captions_per_clip: paraphrases written per clip (>= 3).
        val_fraction / test_fraction: share of source clips per label in val and test.
        unseen_fraction: share of eligible Bandai (content, style) pairs held out as ``test_unseen``.
        limit: import at most this many clips per source (for quick tests); None for all.
        sources: which corpora to read (default all five: Bandai-Namco 1 and 2, HDM05, the CMU
            subsets, ReActIdle).
        human_test_fraction: share of the CMU trials with human captions held out as ``test_human``
            (per action, only while the action keeps at least two train trials).
        idle_windows_per_clip: 9.8-s windows kept per ReActIdle clip (evenly spaced; the clips are
            2-5 minutes of standing, docs/data.md "Dataset v2").
    """

    raw: Path
    out: Path
    workers: int = 2
    captions_per_clip: int = 3
    val_fraction: float = 0.05
    test_fraction: float = 0.15
    unseen_fraction: float = 0.10
    limit: int | None = None
    sources: tuple[str, ...] = ALL_SOURCES
    human_test_fraction: float = 0.33
    idle_windows_per_clip: int = 4


@dataclass
class SourceClip:
    """One raw clip: its corpus, file name, labels, actor (HDM05) and payload bytes.

    ``origin`` says where the clip was read from, for error messages: ``<archive>:<member>``
    (``bandai-namco-1.tar.xz:Bandai-Namco-Research-Motiondataset-1/data/dataset-1_walk_normal_001.bvh``)
    or the file's path under the raw folder; ``asf_origin`` is the same for an HDM05 skeleton.
    Both default to ``name``.
    """

    source: str
    name: str
    labels: ClipLabels
    payload: bytes = field(repr=False)
    asf: bytes | None = field(default=None, repr=False)
    actor: str | None = None
    source_split: str | None = None
    origin: str | None = None
    asf_origin: str | None = None
    fps: float | None = None
    trial: CmuTrial | None = None

    @property
    def where(self) -> str:
        """``origin`` or, without one, ``name``: how messages name this clip."""
        return self.origin or self.name


_BANDAI_RE = re.compile(r"dataset-(\d)_(.+)_([a-z-]+)_(\d+)\.bvh$")
_HDM_RE = re.compile(r"HDM_([a-z]+)_(.+)_(\d+)_(\d+)\.amc$")


def _origin(raw: Path, key: str, member: str) -> str:
    """How messages name a member: ``<archive>:<member>``, or the unpacked file's path."""
    if (raw / ARCHIVES[key]).is_file():
        return f"{ARCHIVES[key]}:{member}"
    return str(raw / member)


def _open_members(raw: Path, key: str) -> Iterator[tuple[str, bytes]]:
    """Yield (member path, bytes) of an archive, or of the files of its unpacked folder."""
    archive = raw / ARCHIVES[key]
    if archive.is_file():
        try:
            with tarfile.open(archive, mode="r:xz") as tar:
                for member in tar:
                    if member.isfile():
                        handle = tar.extractfile(member)
                        if handle is not None:
                            yield member.name, handle.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputFileError(f"cannot read {archive}: {exc}; the archive is corrupt or truncated, "
                                 "restore the original archive (the dataset card lists the sources)") from exc
        return
    folder = raw / UNPACKED[key]
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                yield str(path.relative_to(raw)), path.read_bytes()
        return
    raise MissingFileError(f"missing raw archive {archive} (nor an unpacked {folder}); pass "
                           "--raw DIR, the folder with the raw archives (the dataset card lists the sources)")


def iter_raw_clips(raw: str | os.PathLike, limit: int | None = None,
                   sources: Iterable[str] = ("bandai1", "bandai2", "hdm05", "cmu", "reactidle")
                   ) -> list[SourceClip]:
    """Read every clip of the raw corpora with its labels, in source order, sorted by name.

    Bandai labels come from the file name ``dataset-<n>_<content>_<style>_<k>.bvh`` and are checked
    against the clip's JSON ``{"content": i, "style": j}`` and ``cfg/*_label.txt``; HDM05 labels are
    the class in ``HDM_<actor>_<class>_<k>_120.amc``; CMU trials come from ``cmu/manifest.json``
    (one copy per trial, :func:`remomask.data.cmu.choose_trials`); ReActIdle clips are ``idle``.

    Raises:
        MissingFileError: a missing archive (a ``FileNotFoundError``).
        InputFileError: a corrupt archive, an unreadable label file or labels that disagree (a
            ``ValueError``; the message names the archive member).
        UsageError: an unknown source key.
    """
    raw = Path(raw)
    sources = set(sources)
    if not sources <= set(ARCHIVES):
        raise UsageError(f"unknown sources {sorted(sources - set(ARCHIVES))}; use {sorted(ARCHIVES)}")
    clips: list[SourceClip] = []
    for key in [k for k in ("bandai1", "bandai2") if k in sources]:
        files = dict(_open_members(raw, key))
        cfg = {}
        for kind in ("content", "style"):
            name = next((n for n in files if n.endswith(f"cfg/{kind}_label.txt")), None)
            if name is not None:
                cfg[kind] = [ln.strip().split("_", 1)[-1] for ln in files[name].decode().splitlines()
                             if ln.strip()]
        found = []
        for name in sorted(files):
            m = _BANDAI_RE.search(name)
            if not m:
                continue
            _, content, style, _ = m.groups()
            meta_name = name[:-4] + ".json"
            if meta_name in files and cfg:
                try:
                    meta = json.loads(files[meta_name])
                    meta_content = cfg["content"][meta["content"]]
                    meta_style = bandai_style_name(cfg["style"][meta["style"]])
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise InputFileError(f"{_origin(raw, key, meta_name)}: not a label file "
                                         f"{{\"content\": i, \"style\": j}} ({exc}); restore the "
                                         "original archive (the dataset card lists the sources)") from exc
                if meta_content != content or meta_style != bandai_style_name(style):
                    raise InputFileError(f"{_origin(raw, key, name)}: file name labels disagree with "
                                         f"{meta_name}; restore the original archive")
            labels = ClipLabels(key, content, bandai_style_name(style))
            found.append(SourceClip(key, Path(name).name, labels, files[name],
                                    origin=_origin(raw, key, name)))
        clips.extend(found[:limit] if limit else found)
    if "hdm05" in sources:
        clips.extend(_hdm05_clips(raw, limit))
    if "cmu" in sources:
        clips.extend(_cmu_clips(raw, limit))
    if "reactidle" in sources:
        clips.extend(_reactidle_clips(raw, limit))
    return clips


def _hdm05_clips(raw: Path, limit: int | None) -> list[SourceClip]:
    files = dict(_open_members(raw, "hdm05"))
    asfs = {Path(n).name: b for n, b in files.items() if n.endswith(".asf")}
    found = []
    for name in sorted(files):
        m = _HDM_RE.search(name)
        if not m:
            continue
        actor, cls, _, _ = m.groups()
        asf = asfs.get(f"HDM_{actor}.asf")
        if asf is None:
            raise InputFileError(f"{_origin(raw, 'hdm05', name)}: no HDM_{actor}.asf skeleton in the "
                                 "HDM05 archive; restore the original archive")
        asf_member = next(n for n in files if Path(n).name == f"HDM_{actor}.asf")
        split = "test" if "/test/" in f"/{name}" else "train"
        found.append(SourceClip("hdm05", Path(name).name, ClipLabels("hdm05", cls, None),
                                files[name], asf=asf, actor=actor, source_split=split,
                                origin=_origin(raw, "hdm05", name),
                                asf_origin=_origin(raw, "hdm05", asf_member)))
    return found[:limit] if limit else found


def _cmu_clips(raw: Path, limit: int | None) -> list[SourceClip]:
    """The CMU trials (one copy each) with the manifest's fps; AMC files get their subject's ASF."""
    files = dict(_open_members(raw, "cmu"))
    manifest = next((n for n in files if n.endswith("cmu/manifest.json")), None)
    if manifest is None:
        raise InputFileError(f"{_origin(raw, 'cmu', 'cmu/manifest.json')}: missing from the CMU archive; "
                             "restore the original archive (the dataset card lists the sources)")
    prefix = manifest[: -len("manifest.json")]
    found = []
    for trial in choose_trials(read_manifest(files[manifest], _origin(raw, "cmu", manifest))):
        member = prefix + trial.path
        if member not in files:
            raise InputFileError(f"{_origin(raw, 'cmu', member)}: listed in the manifest but missing; "
                                 "restore the original archive")
        asf = asf_member = None
        if member.endswith(".amc"):
            asf_member = f"{member.rsplit('/', 1)[0]}/{trial.subject}.asf"
            asf = files.get(asf_member)
            if asf is None:
                raise InputFileError(f"{_origin(raw, 'cmu', member)}: no {trial.subject}.asf beside it; "
                                     "restore the original archive")
        found.append(SourceClip("cmu", f"cmu_{trial.key}", ClipLabels("cmu", trial.action, None),
                                files[member], asf=asf, actor=trial.subject,
                                origin=_origin(raw, "cmu", member),
                                asf_origin=_origin(raw, "cmu", asf_member) if asf_member else None,
                                fps=trial.fps, trial=trial))
    return found[:limit] if limit else found


def _reactidle_clips(raw: Path, limit: int | None) -> list[SourceClip]:
    """ReActIdle's acted and genuine clips (``<person>_<take>.bvh``), action ``idle``."""
    found = []
    for name, payload in sorted(_open_members(raw, "reactidle")):
        m = re.search(r"(\d+)_(acted|genuine)\.bvh$", name)
        if m:
            found.append(SourceClip("reactidle", f"reactidle_{m.group(1)}_{m.group(2)}",
                                    ClipLabels("reactidle", "idle", None), payload, actor=m.group(1),
                                    origin=_origin(raw, "reactidle", name)))
    return found[:limit] if limit else found


def _clip_error(where: str, exc: Exception, stage: str = "") -> MocapFormatError:
    """One-line :class:`MocapFormatError` naming the clip (archive member), keeping ``exc``'s message.

    A :class:`MocapFormatError` that already names the clip keeps its message (the mocap readers
    name the file and the line); any other exception (a numerical failure, a RecursionError of a
    pathological file) is prefixed with the clip and its type.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, MocapFormatError):
        return MocapFormatError(text if text.startswith(where) else f"{where}: {stage}{text}")
    return MocapFormatError(f"{where}: {stage}{type(exc).__name__}: {text}; this clip cannot be "
                            "imported: repair or remove it")


def _import_clip(clip: SourceClip) -> np.ndarray:
    """Worker: import one raw clip to (T, 22, 3) joints at 20 fps.

    Raises:
        MocapFormatError: any failure of this clip, as one line naming its archive member (and,
            from the mocap readers, the line of the file).
    """
    from .mocap import import_mocap
    from .mocap.asf_amc import parse_asf

    try:
        asf = (parse_asf(clip.asf, name=clip.asf_origin or f"HDM_{clip.actor}.asf")
               if clip.asf is not None else None)
        return import_mocap(clip.payload, name=clip.where, asf=asf, fps=clip.fps).joints
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - every per-clip failure must name the clip
        if isinstance(exc, MocapFormatError) and clip.asf_origin and str(exc).startswith(clip.asf_origin):
            raise _clip_error(clip.where, exc, stage="skeleton ") from exc  # its ASF is broken
        raise _clip_error(clip.where, exc) from exc


def segment_bounds(num_frames: int) -> list[tuple[int, int]]:
    """Cut a clip of ``num_frames`` joints (20 fps) into equal segments of at most 197 joints
    (9.8 s of features); clips under 21 joints (1 s) give no segment. Returns [start, end) pairs.
    Segments of a cut clip are at least 98 joints (4.9 s) long."""
    if num_frames < MIN_FRAMES:
        return []
    count = math.ceil((num_frames - 1) / (MAX_FRAMES - 1))
    edges = np.linspace(0, num_frames - 1, count + 1).round().astype(int)
    return [(int(a), int(b) + 1) for a, b in zip(edges[:-1], edges[1:])]


def _hash_unit(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") / 2.0 ** 64


def choose_unseen_pairs(pairs: Iterable[tuple[str, str]], fraction: float) -> set[tuple[str, str]]:
    """Pick ~``fraction`` of Bandai (content, style) pairs to hold out, closed under mirroring.

    A pair is eligible when its content occurs with >= 3 styles and its style with >= 3 contents,
    so every label stays in training. Pairs are ranked by a hash of their mirror-canonical form.
    """
    pairs = sorted(set(pairs))
    by_content, by_style = Counter(c for c, _ in pairs), Counter(s for _, s in pairs)
    canon: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for c, s in pairs:
        if by_content[c] >= 3 and by_style[s] >= 3:
            canon[min(c, mirror_label(c)), s].append((c, s))
    ranked = sorted(canon, key=lambda k: _hash_unit(f"unseen|{k[0]}|{k[1]}"))
    target = round(fraction * len(pairs))
    held: set[tuple[str, str]] = set()
    for key in ranked:
        if len(held) >= target:
            break
        group = {(c, s) for c, s in pairs if s == key[1] and c in (key[0], mirror_label(key[0]))}
        held |= group
    return held


def assign_splits(clips: list[SourceClip], cfg: BuildConfig) -> dict[str, str]:
    """Split source clips (by name) into train/val/test/test_unseen/test_human (docs/data.md).

    Bandai: clips of held-out pairs go to ``test_unseen``; the rest are stratified per action label
    by hash order (test first, then val). HDM05 keeps its source split by actor (test actors mm, tr)
    and takes val from the train actors per class. CMU: first ``test_human`` (a share of the trials
    with human captions, per action, :func:`_human_test_trials`), then the rest stratified per action
    like Bandai. ReActIdle: by person (``000_acted`` and ``000_genuine`` are one person), 15% of the
    persons test, one val. The items of a ``test_human`` trial without human captions go to ``test``
    (:func:`item_split`).
    """
    bandai_pairs = [(c.labels.action, c.labels.style) for c in clips if c.source in ("bandai1", "bandai2")]
    unseen = choose_unseen_pairs(bandai_pairs, cfg.unseen_fraction)
    human_test = _human_test_trials([c for c in clips if c.source == "cmu"], cfg.human_test_fraction)
    split: dict[str, str] = {}
    groups: dict[tuple[str, str], list[SourceClip]] = defaultdict(list)
    persons = sorted({c.actor for c in clips if c.source == "reactidle"},
                     key=lambda a: _hash_unit(f"split|idle|{a}"))
    n_test_persons = round(cfg.test_fraction * len(persons)) if len(persons) >= 3 else 0
    idle_split = {a: "test" if k < n_test_persons else "val" if k == n_test_persons and len(persons) >= 4
                  else "train" for k, a in enumerate(persons)}
    for c in clips:
        if c.source in ("bandai1", "bandai2") and (c.labels.action, c.labels.style) in unseen:
            split[c.name] = "test_unseen"
        elif c.source == "hdm05" and c.source_split == "test":
            split[c.name] = "test"
        elif c.name in human_test:
            split[c.name] = "test_human"
        elif c.source == "reactidle":
            split[c.name] = idle_split[c.actor]
        else:
            groups[c.source, c.labels.action].append(c)
    for (source, _), members in sorted(groups.items()):
        members = sorted(members, key=lambda c: _hash_unit(f"split|{c.name}"))
        n = len(members)
        n_test = 0 if source == "hdm05" else (round(cfg.test_fraction * n) if n >= 3 else 0)
        n_val = max(1, round(cfg.val_fraction * n)) if n >= 4 else 0
        for k, c in enumerate(members):
            split[c.name] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return split


def _human_test_trials(clips: list[SourceClip], fraction: float) -> set[str]:
    """CMU trials held out as ``test_human``: per action, ``ceil(fraction * n)`` of its n trials with
    human captions in hash order, while the action keeps at least two trials for the other splits."""
    by_action: dict[str, list[SourceClip]] = defaultdict(list)
    for c in clips:
        by_action[c.labels.action].append(c)
    held: set[str] = set()
    for action, members in sorted(by_action.items()):
        human = sorted((c for c in members if c.trial is not None and c.trial.has_human_captions),
                       key=lambda c: _hash_unit(f"human|{c.name}"))
        want = math.ceil(fraction * len(human))
        take = max(0, min(want, len(members) - 2))
        held.update(c.name for c in human[:take])
    return held


def item_split(clip_split: str, human_captions: bool) -> str:
    """The split of one item of a clip: a ``test_human`` trial's items without human captions go to
    ``test`` (``test_human`` holds only motions described by people)."""
    return "test" if clip_split == "test_human" and not human_captions else clip_split


def idle_windows(num_frames: int, keep: int) -> list[tuple[int, int]]:
    """``keep`` evenly spaced windows of :func:`segment_bounds` (all of them when there are fewer).

    Args:
        num_frames: joints of the clip, frames at 20 fps. keep: windows wanted (>= 1).

    Returns:
        ``[(start, end), ...]`` joint frames, each window at most 197 joints (9.8 s of features); empty for a
        clip under 1 s. Source: docs/data.md "Dataset v2" (ReActIdle).
    """
    bounds = segment_bounds(num_frames)
    if len(bounds) <= keep:
        return bounds
    picks = np.linspace(0, len(bounds) - 1, keep).round().astype(int)
    return [bounds[k] for k in sorted(set(picks.tolist()))]


def feature_statistics(features: list[np.ndarray], skeleton_joints: int = 22) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Std (D,) of features, with HumanML3D's group-wise std.

    Each feature group (root angular velocity, root XZ velocity, root height, ric, cont6d, local
    velocity, foot contacts) gets one std: the mean of its per-dim stds, so that the normalised
    scale of a group does not depend on individual joints (HumanML3D's Mean/Std convention).
    """
    stacked = np.concatenate(features, axis=0).astype(np.float64)
    mean, std = stacked.mean(0), stacked.std(0)
    j = skeleton_joints
    bounds = [0, 1, 3, 4, 4 + (j - 1) * 3, 4 + (j - 1) * 9, 4 + (j - 1) * 9 + j * 3, stacked.shape[1]]
    for a, b in zip(bounds[:-1], bounds[1:]):
        std[a:b] = std[a:b].mean()
    std[std < 1e-6] = 1.0  # a constant group (e.g. feet always in contact) must not divide by 0
    return mean.astype(np.float32), std.astype(np.float32)


def _features_task(task: tuple[str, np.ndarray]) -> np.ndarray:
    """Worker: features of one stored segment; a failure names the segment's clip and frames."""
    where, joints = task
    try:
        return features_from_joints(joints)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the clip among thousands
        raise _clip_error(where, exc, stage="features: ") from exc


def build_embedded_dataset(cfg: BuildConfig, progress: bool = True) -> dict:
    """Build the embedded dataset into ``cfg.out`` (see the module docstring). Returns the stats dict
    written to ``<out>/stats.json``.

    Raises:
        MissingFileError: missing raw archives. InputFileError: corrupt archives or labels.
        MocapFormatError: a clip that cannot be imported or featurised: one line naming the clip as
            ``<archive>:<member>`` (and the line of the file where the reader knows it), whatever
            the underlying failure (malformed file, non-finite values, a pathological hierarchy).
    """
    from tqdm.auto import tqdm

    out = Path(cfg.out)
    clips = iter_raw_clips(cfg.raw, cfg.limit, cfg.sources)
    with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        imported = list(tqdm(pool.map(_import_clip, clips, chunksize=8), total=len(clips),
                             desc="import mocap", disable=not progress))
    splits_by_clip = assign_splits(clips, cfg)
    origins = {clip.name: clip.where for clip in clips}

    joints_by_id: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    texts: dict[str, list[str]] = {}
    sources_of: dict[str, list[str]] = {}
    dropped_short = 0
    next_id = 0
    for clip, joints in zip(clips, imported):
        if clip.source == "reactidle":
            bounds = idle_windows(len(joints), cfg.idle_windows_per_clip)
        else:
            bounds = segment_bounds(len(joints))
        if not bounds:
            dropped_short += 1
            continue
        template = make_captions(clip.labels, clip.name, cfg.captions_per_clip)
        if clip.trial is not None:
            items = trial_items(clip.trial, len(joints), bounds)
        else:
            items = [TrialItem(a, b, (), "window") for a, b in bounds]
        windows = [it for it in items if it.kind == "window"]
        for it in items:
            sid = f"{next_id:06d}"
            next_id += 1
            joints_by_id[sid] = joints[it.start:it.end]
            human = list(it.human_captions)
            captions = human + (template if it.kind == "window" else [])
            caption_sources = ["human"] * len(human) + ["template"] * (len(captions) - len(human))
            info = {"clip": clip.name, "source": clip.source,
                    "segment": windows.index(it) if it in windows else -1, "segments": len(windows),
                    "start_frame": it.start, "end_frame": it.end,
                    "split": item_split(splits_by_clip[clip.name], bool(human)),
                    "action": clip.labels.action, "style": clip.labels.style, "actor": clip.actor,
                    "mirrored": False, "item": it.kind, "caption_sources": caption_sources,
                    "trial": clip.trial.key if clip.trial is not None else None}
            meta[sid] = info
            texts[sid] = captions
            meta["M" + sid] = {**info, "action": mirror_label(clip.labels.action), "mirrored": True}
            texts["M" + sid] = [mirror_text(t) for t in captions]

    # Store, then recompute everything from the stored (quantised) joints so that the shipped
    # statistics match what loaders will compute.
    out.mkdir(parents=True, exist_ok=True)
    save_joint_archive(out / "joints.npz", joints_by_id)
    stored = load_joint_archive(out / "joints.npz")
    ids = sorted(meta)
    train_joints = []
    for sid in ids:
        if meta[sid]["split"] == "train":
            j = stored[sid.lstrip("M")]
            m = meta[sid]
            where = (f"{origins[m['clip']]} (segment {m['segment']}, frames {m['start_frame']}-"
                     f"{m['end_frame']}{', mirrored' if m['mirrored'] else ''})")
            train_joints.append((where, mirror_joints(j) if sid.startswith("M") else j))
    with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        train_feats = list(tqdm(pool.map(_features_task, train_joints, chunksize=16),
                                total=len(train_joints), desc="train features", disable=not progress))
    mean, std = feature_statistics(train_feats)

    _write_layout(out, ids, meta, texts, mean, std)
    stats = dataset_statistics(meta, dropped_short, len(clips))
    stats["captions"] = sum(len(v) for v in texts.values())
    stats["captions_by_source"] = dict(sorted(Counter(
        src for m in meta.values() for src in m["caption_sources"]).items()))
    human = {(m["trial"], t) for sid, m in meta.items() if not m["mirrored"]
             for t, src in zip(texts[sid], m["caption_sources"]) if src == "human"}
    stats["human_captions_distinct"] = len(human)
    stats["items"] = dict(sorted(Counter(m["item"] for m in meta.values() if not m["mirrored"]).items()))
    stats["content_hash"] = content_hash(out)
    with atomic_path(out / "stats.json") as tmp:
        tmp.write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    from .card import write_dataset_card

    write_dataset_card(out, stats, cfg)
    return stats


def _write_layout(out: Path, ids: list[str], meta: dict[str, dict], texts: dict[str, list[str]],
                  mean: np.ndarray, std: np.ndarray) -> None:
    from .captions import format_caption_line

    text_dir = out / "texts"
    text_dir.mkdir(parents=True, exist_ok=True)
    for sid in ids:
        lines = [format_caption_line(t, [f"{w}/{p}" for w, p in pos_tag(t, strict=src == "template")],
                                     0.0, 0.0)
                 for t, src in zip(texts[sid], meta[sid]["caption_sources"])]
        with atomic_path(text_dir / f"{sid}.txt") as tmp:
            tmp.write_text("\n".join(lines) + "\n")
    by_split: dict[str, list[str]] = defaultdict(list)
    for sid in ids:
        by_split[meta[sid]["split"]].append(sid)
    by_split["train_val"] = sorted(by_split["train"] + by_split["val"])
    by_split["all"] = list(ids)
    for name, members in by_split.items():
        with atomic_path(out / f"{name}.txt") as tmp:
            tmp.write_text("\n".join(sorted(members)) + "\n")
    labels = {sid: {k: meta[sid][k] for k in ("source", "action", "style", "clip", "segment",
                                              "start_frame", "end_frame", "actor", "mirrored", "item",
                                              "trial", "caption_sources")}
              for sid in ids}
    with atomic_path(out / "labels.json") as tmp:
        tmp.write_text(json.dumps(labels, indent=0, sort_keys=True) + "\n")
    for name, arr in (("Mean.npy", mean), ("Std.npy", std)):
        with atomic_path(out / name) as tmp:
            np.save(tmp, arr)


def dataset_statistics(meta: dict[str, dict], dropped_short: int = 0, raw_clips: int | None = None) -> dict:
    """Counts for ``remomask data stats``: clips, segments, frames, seconds, captions, labels, splits."""
    clips = {m["clip"] for m in meta.values()}
    frames = sum(m["end_frame"] - m["start_frame"] - 1 for m in meta.values())  # feature frames
    labels = Counter(m["action"] for m in meta.values())
    styles = Counter(m["style"] for m in meta.values() if m["style"])
    splits = Counter(m["split"] for m in meta.values())
    sources = Counter(m["source"] for m in meta.values() if not m["mirrored"])
    per_split_labels: dict[str, dict[str, int]] = defaultdict(dict)
    for m in meta.values():
        d = per_split_labels[m["split"]]
        d[m["action"]] = d.get(m["action"], 0) + 1
    return {
        "version": DATASET_VERSION,
        "clips": len(clips),
        "raw_clips": raw_clips if raw_clips is not None else len(clips),
        "dropped_short_clips": dropped_short,
        "segments": len(meta),
        "original_segments": sum(not m["mirrored"] for m in meta.values()),
        "frames": int(frames),
        "seconds": round(frames / FPS, 1),
        "captions": 0,
        "labels": dict(sorted(labels.items())),
        "styles": dict(sorted(styles.items())),
        "splits": dict(sorted(splits.items())),
        "sources": dict(sorted(sources.items())),
        "labels_per_split": {k: dict(sorted(v.items())) for k, v in sorted(per_split_labels.items())},
    }


def content_hash(root: str | os.PathLike) -> str:
    """SHA-256 over the dataset's content: the joint archive's arrays (not the zip container, whose
    timestamps vary), labels, statistics, split files and captions, in sorted order."""
    root = Path(root)
    digest = hashlib.sha256()
    with np.load(root / "joints.npz", allow_pickle=False) as z:
        for key in sorted(z.files):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(z[key]).tobytes())
    files = [root / "labels.json", root / "Mean.npy", root / "Std.npy"]
    files += sorted(root.glob("*.txt")) + sorted((root / "texts").glob("*.txt"))
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
