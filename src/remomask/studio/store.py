"""The studio's file store: generated files served by opaque id only (docs/studio.md, "Files").

Every file a request produces (joints, features, BVH, video, ``result.json``) lives in one private temporary
folder created by :class:`FileStore` and is reachable only through a random id (22 URL-safe characters,
128 bits from :mod:`secrets`). Ids are looked up in a dictionary; no part of a request is ever joined to a
path, so ``../`` or absolute paths cannot reach another file. Files that are costly to make (BVH, video) are
registered with a *producer* and written on their first download. The store keeps the files of the last
``max_results`` results and deletes older ones; :meth:`FileStore.close` removes the whole folder (the server
calls it on exit, and an ``atexit`` hook does too).
"""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import RemomaskError

__all__ = ["FileStore", "StoredFile", "UnknownFileError", "FILE_ID_PATTERN"]

FILE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""What a file id looks like; anything else is refused before any look-up."""


class UnknownFileError(RemomaskError, LookupError):
    """A file id that the store does not hold (never issued, malformed, or expired)."""


@dataclass
class StoredFile:
    """One downloadable file of the store.

    Attributes:
        id: the opaque id. name: the download name (``sample_0.bvh``). media_type: its MIME type.
        path: where it lies inside the store's folder. producer: writes ``path`` on first use (None: written).
    """

    id: str
    name: str
    media_type: str
    path: Path
    producer: Callable[[Path], Path] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class FileStore:
    """A private temporary folder of result folders, files addressed by opaque ids.

    Args:
        max_results: results kept; registering a newer one deletes the oldest (its ids answer "expired").
        root: parent of the temporary folder (the system's temporary folder by default).

    Raises:
        OSError: the temporary folder cannot be created.
    """

    def __init__(self, max_results: int = 50, root: str | Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="remomask-studio-", dir=root))
        self.max_results = int(max_results)
        self._files: dict[str, StoredFile] = {}
        self._results: OrderedDict[str, list[str]] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    @staticmethod
    def new_id() -> str:
        """A fresh opaque id (128 random bits, URL-safe base64, 22 characters)."""
        return secrets.token_urlsafe(16)

    def new_result(self) -> tuple[str, Path]:
        """Create the folder of a new result. Returns ``(result id, folder)``; evicts the oldest results."""
        rid = self.new_id()
        folder = self.root / rid
        folder.mkdir()
        with self._lock:
            self._results[rid] = []
            while len(self._results) > self.max_results:
                old, ids = self._results.popitem(last=False)
                for fid in ids:
                    self._files.pop(fid, None)
                shutil.rmtree(self.root / old, ignore_errors=True)
        return rid, folder

    def add(self, result_id: str, name: str, media_type: str,
            producer: Callable[[Path], Path] | None = None) -> str:
        """Register file ``name`` of result ``result_id``; returns its id.

        Args:
            name: a plain file name inside the result's folder (no separators).
            producer: called as ``producer(path)`` on the first :meth:`get` to write the file (it may
                change the suffix and returns the path written); None when the file exists already.

        Raises:
            ValueError: ``name`` is not a plain file name. UnknownFileError: the result has been evicted.
        """
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a plain file name")
        fid = self.new_id()
        with self._lock:
            if result_id not in self._results:
                raise UnknownFileError("this result has expired; generate again")
            self._files[fid] = StoredFile(fid, name, media_type, self.root / result_id / name, producer)
            self._results[result_id].append(fid)
        return fid

    def get(self, file_id: str) -> StoredFile:
        """The file with id ``file_id``, written first if it has a producer.

        Raises:
            UnknownFileError: a malformed, unknown or expired id.
            RemomaskError / OSError / ValueError: the producer failed (the message is the user's line).
        """
        if not isinstance(file_id, str) or not FILE_ID_PATTERN.match(file_id):
            raise UnknownFileError("unknown file id")
        with self._lock:
            item = self._files.get(file_id)
        if item is None:
            raise UnknownFileError("unknown file id (it may have expired: the studio keeps the files of the last "
                                   f"{self.max_results} results)")
        with item.lock:
            if item.producer is not None:
                written = Path(item.producer(item.path))
                if written != item.path:
                    item.path, item.name = written, written.name
                    item.media_type = _MEDIA.get(written.suffix, "application/octet-stream")
                item.producer = None
        if not item.path.is_file():
            raise UnknownFileError("unknown file id (the file has expired)")
        return item

    def close(self) -> None:
        """Delete the store's folder and forget every id (safe to call twice)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._files.clear()
            self._results.clear()
        shutil.rmtree(self.root, ignore_errors=True)


_MEDIA = {".npy": "application/octet-stream", ".bvh": "text/plain", ".mp4": "video/mp4", ".gif": "image/gif",
          ".json": "application/json"}
