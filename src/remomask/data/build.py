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
from .labels import ClipLabels, bandai_style_name, make_captions, mirror_label, mirror_text, pos_tag
from .storage import atomic_path, load_joint_archive, save_joint_archive

__all__ = ["BuildConfig", "build_embedded_dataset", "SourceClip", "iter_raw_clips",
           "feature_statistics", "DATASET_VERSION"]

DATASET_VERSION = "1.0"
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
}
# top-level folders of the unpacked archives
UNPACKED = {
    "bandai1": "Bandai-Namco-Research-Motiondataset-1",
    "bandai2": "Bandai-Namco-Research-Motiondataset-2",
    "hdm05": "hdm05",
}


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
        sources: which corpora to read (default all three).
    """

    raw: Path
    out: Path
    workers: int = 2
    captions_per_clip: int = 3
    val_fraction: float = 0.05
    test_fraction: float = 0.15
    unseen_fraction: float = 0.10
    limit: int | None = None
    sources: tuple[str, ...] = ("bandai1", "bandai2", "hdm05")


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
                   sources: Iterable[str] = ("bandai1", "bandai2", "hdm05")) -> list[SourceClip]:
    """Read every clip of the three raw corpora with its labels, sorted by (source, name).

    Bandai labels come from the file name ``dataset-<n>_<content>_<style>_<k>.bvh`` and are checked
    against the clip's JSON ``{"content": i, "style": j}`` and ``cfg/*_label.txt``; HDM05 labels are
    the class in ``HDM_<actor>_<class>_<k>_120.amc``.

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
    if "hdm05" not in sources:
        return clips
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
    clips.extend(found[:limit] if limit else found)
    return clips


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
        return import_mocap(clip.payload, name=clip.where, asf=asf).joints
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
    """Split source clips (by file name) into train/val/test/test_unseen (see module docstring).

    Bandai: clips of held-out pairs go to ``test_unseen``; the rest are stratified per action label
    by hash order (test first, then val). HDM05 keeps its source split by actor (test actors mm, tr)
    and takes val from the train actors per class.
    """
    bandai_pairs = [(c.labels.action, c.labels.style) for c in clips if c.source != "hdm05"]
    unseen = choose_unseen_pairs(bandai_pairs, cfg.unseen_fraction)
    split: dict[str, str] = {}
    groups: dict[tuple[str, str], list[SourceClip]] = defaultdict(list)
    for c in clips:
        if c.source != "hdm05" and (c.labels.action, c.labels.style) in unseen:
            split[c.name] = "test_unseen"
        elif c.source == "hdm05" and c.source_split == "test":
            split[c.name] = "test"
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
    dropped_short = 0
    next_id = 0
    for clip, joints in zip(clips, imported):
        bounds = segment_bounds(len(joints))
        if not bounds:
            dropped_short += 1
            continue
        captions = make_captions(clip.labels, clip.name, cfg.captions_per_clip)
        for k, (a, b) in enumerate(bounds):
            sid = f"{next_id:06d}"
            next_id += 1
            joints_by_id[sid] = joints[a:b]
            info = {"clip": clip.name, "source": clip.source, "segment": k, "segments": len(bounds),
                    "start_frame": a, "end_frame": b, "split": splits_by_clip[clip.name],
                    "action": clip.labels.action, "style": clip.labels.style, "actor": clip.actor,
                    "mirrored": False}
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
        lines = [format_caption_line(t, [f"{w}/{p}" for w, p in pos_tag(t)], 0.0, 0.0)
                 for t in texts[sid]]
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
                                              "start_frame", "end_frame", "actor", "mirrored")}
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
