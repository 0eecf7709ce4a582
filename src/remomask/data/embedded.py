"""Locate datasets by name or path, and materialise the embedded dataset in the HumanML3D layout.

The embedded dataset ships as joints only (``assets/datasets/embedded``, see its README). On first
use :func:`materialize` recomputes the 263-d features with :func:`features_from_joints` and writes a
complete HumanML3D-layout copy (``new_joint_vecs/``, ``new_joints/``, ``texts/``, splits, Mean/Std,
labels) to the cache folder ``$REMOMASK_CACHE`` (default ``~/.cache/remomask``), keyed by the
dataset's content hash, so every loader reads one standard layout.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import MissingFileError
from ..files import partial_name, remove_stale

__all__ = ["EMBEDDED_DIR", "cache_dir", "resolve_dataset", "materialize", "DatasetNotFound"]

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "assets" / "datasets" / "embedded"
_COMPLETE = ".complete"
log = logging.getLogger(__name__)


class DatasetNotFound(MissingFileError):
    """A dataset name or path that does not resolve to a dataset folder."""


def cache_dir() -> Path:
    """Root of remomask's cache: ``$REMOMASK_CACHE`` or ``~/.cache/remomask``."""
    return Path(os.environ.get("REMOMASK_CACHE", Path.home() / ".cache" / "remomask"))


def resolve_dataset(name_or_path: str | os.PathLike | None = None, *, materialise: bool = True,
                    progress: bool = True) -> Path:
    """Return the folder of a dataset in the HumanML3D layout.

    Args:
        name_or_path: ``None`` or ``"embedded"`` for the bundled dataset (materialised on first
            use), or the path of a HumanML3D / KIT-ML release folder.
        materialise: for the embedded dataset, return the cached HumanML3D-layout copy (creating it
            if needed); if False, return the shipped joints-only folder.
    Raises:
        DatasetNotFound: an unknown name or a missing folder, with the fix.
    """
    if name_or_path is None or str(name_or_path) == "embedded":
        if not (EMBEDDED_DIR / "joints.npz").is_file():
            raise DatasetNotFound(f"the embedded dataset is missing from {EMBEDDED_DIR}; reinstall "
                                  "remomask or rebuild it with `remomask data build`")
        return materialize(EMBEDDED_DIR, progress=progress) if materialise else EMBEDDED_DIR
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise DatasetNotFound(f"dataset folder {path} does not exist; pass 'embedded' or the folder "
                              "of a HumanML3D / KIT-ML release (with new_joint_vecs/, texts/, splits)")
    if (path / "joints.npz").is_file() and not (path / "new_joint_vecs").is_dir():
        return materialize(path, progress=progress) if materialise else path
    return path


def _motion_task(args: tuple[str, np.ndarray]) -> tuple[str, np.ndarray, np.ndarray]:
    from .features import features_from_joints, joints_from_features, mirror_joints

    sid, joints = args
    if sid.startswith("M"):
        joints = mirror_joints(joints)
    feats = features_from_joints(joints)
    return sid, feats, joints_from_features(feats)


def _estimated_mb(source: Path) -> int:
    """Size of the feature cache of ``source`` in MB: about 23x the joints archive (float32 features of 263
    values and joints of 66 per frame, for every clip and its mirror; measured: 773 MB from 34 MB)."""
    try:
        return int(round((source / "joints.npz").stat().st_size * 23 / 2**20))
    except OSError:
        return 0


def materialize(source: str | os.PathLike = EMBEDDED_DIR, cache: str | os.PathLike | None = None,
                *, workers: int = 2, progress: bool = True) -> Path:
    """Write the HumanML3D-layout copy of a joints-only dataset folder and return its path.

    ``new_joint_vecs/<id>.npy`` (T-1, 263) float32 features and ``new_joints/<id>.npy``
    (T-1, 22, 3) joints recovered from them (as HumanML3D's release does); mirrored ``M`` ids are
    mirrored on the fly. The copy is made in a temporary folder and renamed into place, so an
    interrupted run leaves nothing half-written. Later calls return the existing copy.

    Raises:
        FileNotFoundError / ValueError: missing or corrupt ``joints.npz`` / ``stats.json``.
    """
    from tqdm.auto import tqdm

    from .storage import load_joint_archive

    source = Path(source)
    stats_path = source / "stats.json"
    if not stats_path.is_file():
        raise FileNotFoundError(f"{stats_path} is missing; rebuild the dataset with `remomask data build`")
    digest = json.loads(stats_path.read_text())["content_hash"]
    target = Path(cache or cache_dir()) / "datasets" / f"{source.name}-{digest[:12]}"
    if (target / _COMPLETE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent)  # an interrupted build's ~250 MB (SIGKILL cannot clean up after itself)
    work = target.parent / partial_name(target.name)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    log.warning("building the feature cache of %s at %s (about %d MB, once; set REMOMASK_CACHE to move it)",
                source.name, target, _estimated_mb(source))
    try:
        archive = load_joint_archive(source / "joints.npz")
        ids = [ln.strip() for ln in (source / "all.txt").read_text().splitlines() if ln.strip()]
        for sub in ("new_joint_vecs", "new_joints"):
            (work / sub).mkdir()
        tasks = [(sid, archive[sid.lstrip("M")]) for sid in ids]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for sid, feats, joints in tqdm(pool.map(_motion_task, tasks, chunksize=32),
                                           total=len(tasks), desc="embedded features",
                                           disable=not progress):
                np.save(work / "new_joint_vecs" / f"{sid}.npy", feats)
                np.save(work / "new_joints" / f"{sid}.npy", joints.astype(np.float32))
        shutil.copytree(source / "texts", work / "texts")
        for path in source.iterdir():
            if path.is_file() and path.name != "joints.npz":
                shutil.copy2(path, work / path.name)
        (work / _COMPLETE).write_text(digest + "\n")
        if (target / _COMPLETE).is_file():  # another process finished the same build first: keep its copy
            return target
        if target.exists():  # a stale incomplete copy
            shutil.rmtree(target)
        try:
            os.replace(work, target)
        except OSError:
            if not (target / _COMPLETE).is_file():  # not a lost race with a concurrent build
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target
