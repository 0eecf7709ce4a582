"""Read a dataset folder in the HumanML3D release layout (HumanML3D, KIT-ML, remomask's embedded set).

Layout (docs/design.md §2.2)::

    <root>/new_joint_vecs/<id>.npy   (T, 263) HumanML3D / embedded, (T, 251) KIT-ML; 20 / 12.5 fps
    <root>/new_joints/<id>.npy       (T, J, 3) joint positions in metres (optional)
    <root>/texts/<id>.txt            caption#word/POS ...#start#end, one per line
    <root>/Mean.npy, <root>/Std.npy  (D,) feature statistics
    <root>/<split>.txt               one id per line (train, val, test, train_val, all, test_unseen, ...);
                                     mirrored motions are separate ids ``M<id>``
    <root>/labels.json               optional: {id: {label name: value}}

:class:`MotionLayout` turns one split into a list of :class:`MotionRecord` samples: the whole clip (when it
has whole-clip captions) and one sample per sub-clip span, keyed ``<letter>_<id>`` (docs/design.md §2.2), filtered by
length (docs/design.md §2.4: 40 <= T < 200 for HumanML3D generation, 24 for KIT, no filter for the retriever).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from .captions import Caption, read_captions
from .skeleton import HUMANML3D, KIT, Skeleton, get_skeleton
from ..errors import RemomaskError

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "DatasetWarning",
    "MotionRecord",
    "LoadStats",
    "MotionLayout",
    "available_splits",
    "infer_skeleton",
    "subclip_key_prefix",
]

_HINT = ("download HumanML3D (or KIT-ML) in its release layout, or build remomask's embedded dataset, "
         "and pass its folder with --dataset PATH")


class DatasetError(RemomaskError):
    """A dataset folder cannot be used. Catch this for every loader failure."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A required file or folder of the dataset is missing."""


class DatasetFormatError(DatasetError, ValueError):
    """A dataset file exists but its content is wrong (shape, dtype, JSON, empty split)."""


class DatasetWarning(UserWarning):
    """Some files or samples were skipped while loading a dataset (counts in the message)."""


@dataclass(frozen=True, eq=False)
class MotionRecord:
    """One sample: a whole clip or a captioned sub-clip.

    Attributes:
        key: ``<id>`` for a whole clip, ``<letter(s)>_<id>`` for a sub-clip (e.g. ``"A_012314"``).
        motion: (T, D) float32 features, un-normalised; a sub-clip is a view into its clip's array.
        captions: the captions of this span (at least one when the layout requires captions).
        length: T, frames (20 fps for HumanML3D).
        labels: the clip's entry in ``labels.json`` (empty dict when none).
        motion_id: the file id the sample comes from (``new_joint_vecs/<motion_id>.npy``).
        start_frame: first frame of the sample in that file (0 for a whole clip).
    """

    key: str
    motion: np.ndarray = field(repr=False)
    captions: tuple[Caption, ...]
    length: int
    labels: Mapping = field(default_factory=dict)
    motion_id: str = ""
    start_frame: int = 0

    @property
    def is_subclip(self) -> bool:
        """True for a sample cut from a sub-clip caption."""
        return self.key != self.motion_id


@dataclass
class LoadStats:
    """What happened while loading one split. All counts are numbers of files/lines/samples."""

    listed_ids: int = 0
    loaded_motions: int = 0
    missing_motions: list[str] = field(default_factory=list)
    missing_texts: list[str] = field(default_factory=list)
    nan_motions: list[str] = field(default_factory=list)
    malformed_caption_lines: list[str] = field(default_factory=list)
    no_captions: list[str] = field(default_factory=list)
    too_short: int = 0
    too_long: int = 0
    records: int = 0

    def summary(self) -> str:
        """One line for logs, e.g. ``"1460 ids, 1460 loaded, 1534 samples; 3 too short"``."""
        parts = [f"{self.listed_ids} ids, {self.loaded_motions} motions loaded, {self.records} samples"]
        extras = [
            (len(self.missing_motions), "motion files missing"),
            (len(self.missing_texts), "caption files missing"),
            (len(self.nan_motions), "motions with NaN dropped"),
            (len(self.malformed_caption_lines), "malformed caption lines skipped"),
            (len(self.no_captions), "motions without usable captions"),
            (self.too_short, "samples too short"),
            (self.too_long, "samples too long"),
        ]
        detail = [f"{n} {what}" for n, what in extras if n]
        return "; ".join(parts + detail)


def infer_skeleton(feature_dim: int) -> Skeleton:
    """Skeleton from the feature size: 263 -> HumanML3D (22 joints), 251 -> KIT-ML (21 joints) (docs/design.md §2.1).

    Raises:
        DatasetFormatError: any other size.
    """
    for skel in (HUMANML3D, KIT):
        if skel.feature_dim == feature_dim:
            return skel
    raise DatasetFormatError(
        f"feature size {feature_dim} matches no known skeleton (263 = HumanML3D, 251 = KIT-ML); "
        "pass skeleton= explicitly only if the data really is in one of these layouts"
    )


def available_splits(root: str | os.PathLike) -> list[str]:
    """Names of the split files (``<root>/<name>.txt``) in a dataset folder, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.txt") if p.is_file())


def subclip_key_prefix(index: int) -> str:
    """Letters for the ``index``-th sub-clip of a file: 0 -> "A", 25 -> "Z", 26 -> "AA", ..."""
    letters = ""
    index += 1
    while index > 0:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


_NPY_HEADER_LOCK = threading.Lock()


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """``np.load`` of a plain (non-object) ``.npy`` array, safe to call from several threads at once.

    NumPy parses the ``.npy`` header with ``ast.literal_eval``, and CPython 3.11's AST constructor keeps a
    recursion counter that concurrent threads can corrupt, failing at random with ``SystemError: AST
    constructor recursion depth mismatch`` (CPython gh-106905). The header is therefore parsed under a
    lock and the data read outside it, so the loader's threads still overlap on I/O.

    Raises:
        FileNotFoundError: no such file. ValueError: not a ``.npy`` file, an object array, or a
        truncated file.
    """
    with open(path, "rb") as f:
        with _NPY_HEADER_LOCK:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # rare format 3.0: let numpy read the whole file, still under the lock
                f.seek(0)
                return np.load(f, allow_pickle=False)
        if dtype.hasobject:
            raise ValueError("object arrays are not motion data")
        count = int(np.prod(shape, dtype=np.int64))
        data = np.fromfile(f, dtype=dtype, count=count)
    if data.size != count:
        raise ValueError(f"the file is truncated: {data.size} of {count} values")
    return data.reshape(shape, order="F" if fortran else "C")


def _load_stat(path: Path, name: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} not found: a dataset folder needs {name} (per-feature statistics, shape (D,)); "
            f"{_HINT}"
        )
    try:
        arr = np.load(path)
    except Exception as err:  # corrupt .npy: say which file
        raise DatasetFormatError(f"cannot read {path}: {err}") from err
    if arr.ndim != 1:
        raise DatasetFormatError(f"{path} has shape {arr.shape}; expected (D,)")
    return arr.astype(np.float32)


def _read_split(path: Path, root: Path, split: str) -> list[str]:
    if not path.is_file():
        have = available_splits(root)
        raise DatasetNotFoundError(
            f"split file {path} not found (split {split!r}); splits in {root}: "
            f"{', '.join(have) if have else 'none'}. Pass one of these, or add <split>.txt with one id per line"
        )
    ids, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            mid = line.strip()
            if mid and mid not in seen:
                seen.add(mid)
                ids.append(mid)
    if not ids:
        raise DatasetFormatError(f"split file {path} lists no ids")
    return ids


@dataclass
class _Loaded:
    motion_id: str
    motion: np.ndarray | None = None
    captions: list[Caption] | None = None
    problems: list[str] = field(default_factory=list)
    missing_motion: bool = False
    missing_text: bool = False
    has_nan: bool = False


class MotionLayout(Sequence[MotionRecord]):
    """The samples of one split of a release-layout dataset folder (docs/design.md §2.2, §2.4).

    Args:
        root: dataset folder (see the module docstring for its layout).
        split: split name; reads ``<root>/<split>.txt``.
        skeleton: ``"humanml3d"``, ``"kit"`` or a :class:`Skeleton`; None infers it from ``Mean.npy``'s size.
        min_length: shortest sample kept, frames, inclusive; None = the skeleton's
            ``min_motion_length`` (40 HumanML3D, 24 KIT); 0 keeps everything with at least one frame.
        max_length: samples with ``length >= max_length`` are dropped (200 in the generation loaders);
            None = no upper bound.
        fps: feature frame rate used to turn caption seconds into frames; None = the skeleton's
            (20 HumanML3D, 12.5 KIT).
        require_captions: drop motions with no caption file or no usable caption (True for text loaders;
            False for the tokenizer, which gets whole clips with possibly empty ``captions``).
        subclips: make a sample of every sub-clip caption span (False: ignore sub-clip captions).
        allow_missing: a few missing motion files only warn (default); False makes any missing file an
            error. If every listed file is missing it is always an error.
        load_stats: read ``Mean.npy``/``Std.npy`` (False for a dataset builder that has yet to write them;
            then ``mean``/``std`` are None and the skeleton comes from the first motion).
        workers: threads reading files; None = min(8, CPU count). Threads help on network or cold disks;
            parsing holds the GIL, so on a warm local disk expect about 1 ms per file.
        progress: tqdm bar; None = only when more than 1000 files are read.

    Attributes:
        root, split, skeleton, fps, min_length, max_length: as resolved.
        ids: the split's ids, in file order, duplicates removed.
        records: list of :class:`MotionRecord` (also reachable by indexing the layout).
        mean, std: (D,) float32 from ``Mean.npy``/``Std.npy`` as stored (zero std entries are not
            touched here; see ``normalization.check_stats``).
        labels: ``labels.json`` content ({id: dict}); empty dict when there is no such file.
        stats: :class:`LoadStats`.

    Raises:
        DatasetNotFoundError: root, split file, ``new_joint_vecs/``, ``texts/`` (when captions are
            required), ``Mean.npy``/``Std.npy`` missing, every listed motion file missing, or (with
            ``allow_missing=False``) any of them.
        DatasetFormatError: a motion file that cannot be read or has the wrong shape, statistics whose
            size differs from the features, a skeleton that does not fit the feature size, a bad
            ``labels.json``, or no sample left after filtering.

    Warns:
        DatasetWarning: once per kind of problem, with counts: missing motion or caption files,
            motions with NaN (dropped), malformed caption lines (skipped).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        *,
        skeleton: str | Skeleton | None = None,
        min_length: int | None = None,
        max_length: int | None = 200,
        fps: float | None = None,
        require_captions: bool = True,
        subclips: bool = True,
        allow_missing: bool = True,
        load_stats: bool = True,
        workers: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"dataset folder {self.root} does not exist; {_HINT}")
        vec_dir = self.root / "new_joint_vecs"
        text_dir = self.root / "texts"
        if not vec_dir.is_dir():
            raise DatasetNotFoundError(
                f"{vec_dir} not found: {self.root} is not in the HumanML3D release layout "
                f"(new_joint_vecs/, texts/, Mean.npy, Std.npy, <split>.txt); {_HINT}"
            )
        if require_captions and not text_dir.is_dir():
            raise DatasetNotFoundError(f"{text_dir} not found: caption files texts/<id>.txt are needed; {_HINT}")

        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        if load_stats:
            self.mean = _load_stat(self.root / "Mean.npy", "Mean.npy")
            self.std = _load_stat(self.root / "Std.npy", "Std.npy")
            if self.mean.shape != self.std.shape:
                raise DatasetFormatError(
                    f"Mean.npy {self.mean.shape} and Std.npy {self.std.shape} in {self.root} differ in size"
                )
        self.ids = _read_split(self.root / f"{split}.txt", self.root, split)
        self.labels = self._read_labels(self.root / "labels.json")

        self.stats = LoadStats(listed_ids=len(self.ids))
        loaded = self._read_files(vec_dir, text_dir if text_dir.is_dir() else None, workers, progress)

        # Skeleton, fps and filters, now that the feature size is known.
        feature_dim = self._feature_dim(loaded)
        self.skeleton = infer_skeleton(feature_dim) if skeleton is None else get_skeleton(skeleton)
        if self.skeleton.feature_dim != feature_dim:
            raise DatasetFormatError(
                f"skeleton {self.skeleton.name!r} has {self.skeleton.feature_dim}-d features but {self.root} "
                f"holds {feature_dim}-d ones; drop the skeleton argument to infer it"
            )
        self.fps = float(self.skeleton.fps if fps is None else fps)
        self.min_length = self.skeleton.min_motion_length if min_length is None else int(min_length)
        self.max_length = None if max_length is None else int(max_length)
        self.require_captions = require_captions

        self.records: list[MotionRecord] = self._build_records(loaded, require_captions, subclips)
        self.stats.records = len(self.records)
        self._warn(allow_missing)
        if not self.records:
            bound = f"{self.min_length} <= T" + (f" < {self.max_length}" if self.max_length else "")
            raise DatasetFormatError(
                f"no sample of split {split!r} in {self.root} is usable ({self.stats.summary()}); "
                f"length filter {bound} frames"
            )

    # -- reading -----------------------------------------------------------------------------------

    @staticmethod
    def _read_labels(path: Path) -> dict[str, dict]:
        if not path.is_file():
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                labels = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise DatasetFormatError(f"cannot read {path}: {err}; it must be a JSON object {{id: {{...}}}}") from err
        if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
            raise DatasetFormatError(f"{path} must be a JSON object mapping each id to an object of labels")
        return labels

    def _read_one(self, mid: str, vec_dir: Path, text_dir: Path | None) -> _Loaded:
        out = _Loaded(mid)
        path = vec_dir / f"{mid}.npy"
        try:
            arr = load_npy(path)
        except FileNotFoundError:
            out.missing_motion = True
            return out
        except Exception as err:
            raise DatasetFormatError(
                f"cannot read motion file {path} as a .npy float array ({err}); re-export or remove it"
            ) from err
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise DatasetFormatError(f"motion file {path} has shape {arr.shape}; expected (T, D) with T >= 1")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            out.has_nan = True
            return out
        out.motion = arr
        if text_dir is not None:
            try:
                out.captions, out.problems = read_captions(text_dir / f"{mid}.txt")
            except FileNotFoundError:
                out.missing_text = True
            except (OSError, UnicodeDecodeError) as err:
                out.captions, out.problems = [], [f"{text_dir / f'{mid}.txt'}: unreadable ({err})"]
        else:
            out.missing_text = True
        return out

    def _read_files(self, vec_dir: Path, text_dir: Path | None, workers: int | None,
                    progress: bool | None) -> list[_Loaded]:
        from tqdm.auto import tqdm

        if workers is None:
            workers = min(8, os.cpu_count() or 1)
        n = len(self.ids)
        show = n > 1000 if progress is None else progress
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            it = pool.map(lambda mid: self._read_one(mid, vec_dir, text_dir), self.ids)
            return list(tqdm(it, total=n, disable=not show, desc=f"loading {self.split}", unit="file"))

    def _feature_dim(self, loaded: list[_Loaded]) -> int:
        dims = {item.motion.shape[1] for item in loaded if item.motion is not None}
        if len(dims) > 1:
            bad = next(i.motion_id for i in loaded if i.motion is not None and i.motion.shape[1] != min(dims))
            raise DatasetFormatError(
                f"motion files in {self.root / 'new_joint_vecs'} have different feature sizes {sorted(dims)} "
                f"(e.g. {bad}.npy); all must be (T, D) with the same D"
            )
        if self.mean is not None:
            if dims and dims != {self.mean.shape[0]}:
                raise DatasetFormatError(
                    f"Mean.npy/Std.npy in {self.root} have size {self.mean.shape[0]} but the motions are "
                    f"{dims.pop()}-d; recompute the statistics for this data"
                )
            return int(self.mean.shape[0])
        if not dims:
            self._raise_all_missing()
        return int(dims.pop())

    def _raise_all_missing(self) -> None:
        raise DatasetNotFoundError(
            f"none of the {self.stats.listed_ids} motion files listed in {self.root / (self.split + '.txt')} "
            f"is readable in {self.root / 'new_joint_vecs'} (e.g. {self.ids[0]}.npy); {_HINT}"
        )

    # -- samples -----------------------------------------------------------------------------------

    def _keep(self, length: int) -> bool:
        if length < max(self.min_length, 1):
            self.stats.too_short += 1
            return False
        if self.max_length is not None and length >= self.max_length:
            self.stats.too_long += 1
            return False
        return True

    def _build_records(self, loaded: list[_Loaded], require_captions: bool, subclips: bool) -> list[MotionRecord]:
        st = self.stats
        records: list[MotionRecord] = []
        id_set = set(self.ids)
        used_keys: set[str] = set()
        for item in loaded:
            if item.missing_motion:
                st.missing_motions.append(item.motion_id)
                continue
            if item.has_nan:
                st.nan_motions.append(item.motion_id)
                continue
            st.loaded_motions += 1
            if item.missing_text and require_captions:
                st.missing_texts.append(item.motion_id)
                continue
            st.malformed_caption_lines.extend(item.problems)
            captions = item.captions or []
            if require_captions and not captions:
                st.no_captions.append(item.motion_id)
                continue
            motion, mid = item.motion, item.motion_id
            labels = self.labels.get(mid, {})

            whole = tuple(c for c in captions if c.is_whole_clip)
            if (whole or not require_captions) and self._keep(len(motion)):
                records.append(MotionRecord(mid, motion, whole, len(motion), labels, mid, 0))
                used_keys.add(mid)
            if not subclips:
                continue
            # Group sub-clip captions by span, in order of first appearance, so keys are deterministic.
            spans: dict[tuple[int, int], list[Caption]] = {}
            for c in captions:
                rng = c.frame_range(self.fps)
                if rng is not None:
                    spans.setdefault(rng, []).append(c)
            # The letter follows the span's place in the file, not the filters, so a span keeps its key
            # whatever min/max length is used.
            letter = 0
            for (a, b), caps in spans.items():
                while True:
                    key = f"{subclip_key_prefix(letter)}_{mid}"
                    letter += 1
                    if key not in id_set and key not in used_keys:
                        break
                used_keys.add(key)
                piece = motion[a:b]
                if not self._keep(len(piece)):
                    continue
                records.append(MotionRecord(key, piece, tuple(caps), len(piece), labels, mid, a))
        return records

    def _warn(self, allow_missing: bool) -> None:
        st = self.stats
        where = f"split {self.split!r} of {self.root}"
        if st.missing_motions:
            if len(st.missing_motions) == st.listed_ids:
                self._raise_all_missing()
            if not allow_missing:
                raise DatasetNotFoundError(
                    f"{len(st.missing_motions)} motion files listed in {where} are missing from "
                    f"new_joint_vecs/ (e.g. {', '.join(st.missing_motions[:3])}); {_HINT}"
                )
            warnings.warn(
                f"{len(st.missing_motions)} of {st.listed_ids} motion files of {where} are missing "
                f"(e.g. {', '.join(st.missing_motions[:3])}); skipped",
                DatasetWarning, stacklevel=3,
            )
        if st.nan_motions:
            warnings.warn(
                f"{len(st.nan_motions)} motions of {where} contain NaN or inf and were dropped "
                f"(e.g. {', '.join(st.nan_motions[:3])})",
                DatasetWarning, stacklevel=3,
            )
        if st.missing_texts:
            warnings.warn(
                f"{len(st.missing_texts)} caption files texts/<id>.txt of {where} are missing "
                f"(e.g. {', '.join(st.missing_texts[:3])}); those motions were dropped",
                DatasetWarning, stacklevel=3,
            )
        if st.malformed_caption_lines:
            warnings.warn(
                f"{len(st.malformed_caption_lines)} malformed caption lines in {where} were skipped; "
                f"first: {st.malformed_caption_lines[0]}",
                DatasetWarning, stacklevel=3,
            )
        if st.no_captions:
            warnings.warn(
                f"{len(st.no_captions)} motions of {where} have no usable caption and were dropped "
                f"(e.g. {', '.join(st.no_captions[:3])})",
                DatasetWarning, stacklevel=3,
            )

    # -- access ------------------------------------------------------------------------------------

    @property
    def feature_dim(self) -> int:
        """D, the per-frame feature size (263 HumanML3D, 251 KIT)."""
        return self.skeleton.feature_dim

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):  # type: ignore[override]
        return self.records[index]

    def __iter__(self) -> Iterator[MotionRecord]:
        return iter(self.records)

    def keys(self) -> list[str]:
        """Sample keys, in record order."""
        return [r.key for r in self.records]

    def by_key(self, key: str) -> MotionRecord:
        """The record with this key.

        Raises:
            KeyError: no such sample in this split (it may have been filtered out; see ``stats``).
        """
        if not hasattr(self, "_index"):
            self._index = {r.key: i for i, r in enumerate(self.records)}
        try:
            return self.records[self._index[key]]
        except KeyError:
            raise KeyError(
                f"no sample {key!r} in split {self.split!r} of {self.root} ({self.stats.summary()})"
            ) from None

    def joints(self, record: MotionRecord | str) -> np.ndarray | None:
        """(T, J, 3) float32 joint positions (metres) of a sample from ``new_joints/``, or None if absent.

        For a sub-clip the same frame span as its features is returned.

        Raises:
            DatasetFormatError: the joints file exists but is not (T_file, J, 3).
        """
        if isinstance(record, str):
            record = self.by_key(record)
        path = self.root / "new_joints" / f"{record.motion_id}.npy"
        if not path.is_file():
            return None
        arr = np.load(path)
        if arr.ndim != 3 or arr.shape[1:] != (self.skeleton.num_joints, 3):
            raise DatasetFormatError(
                f"{path} has shape {arr.shape}; expected (T, {self.skeleton.num_joints}, 3)"
            )
        return arr[record.start_frame: record.start_frame + record.length].astype(np.float32)

    def __repr__(self) -> str:
        return (f"MotionLayout(root={str(self.root)!r}, split={self.split!r}, skeleton={self.skeleton.name!r}, "
                f"{self.stats.summary()})")
