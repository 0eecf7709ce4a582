"""The package's one atomic writer (remomask.files): umask-respecting modes, no temporary left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from remomask.files import (atomic_path, atomic_write_bytes, atomic_write_text, is_temporary, replaced_folder,
                            temporary_pid)

REPO = Path(__file__).resolve().parents[1]

_WRITE_UNDER_UMASK = """
import os, stat, sys
os.umask(int(sys.argv[2], 8))
from remomask.files import atomic_write_text, replaced_folder, atomic_path
from pathlib import Path
root = Path(sys.argv[1])
atomic_write_text(root / "a.txt", "hello")
with atomic_path(root / "b.bin") as tmp:
    tmp.write_bytes(b"x")
with replaced_folder(root / "folder") as work:
    (work / "inner.txt").write_text("y")
modes = [stat.S_IMODE(os.stat(root / n).st_mode) for n in ("a.txt", "b.bin", "folder")]
print(" ".join(oct(m) for m in modes))
"""


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    """Files come out ``0o666 & ~umask`` and folders ``0o777 & ~umask`` (not mkstemp's 0600)."""
    out = subprocess.run([sys.executable, "-c", _WRITE_UNDER_UMASK, str(tmp_path), oct(umask)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    file_a, file_b, folder = (int(x, 8) for x in out.stdout.split())
    assert file_a == file_b == 0o666 & ~umask
    assert folder == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "folder"]


def test_an_exception_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            seen.append(tmp)
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    # the temporary name was hidden, carried the pid and kept the destination's suffix
    name = seen[0].name
    assert name.startswith(".out.json.") and name.endswith(".json") and is_temporary(name)
    assert temporary_pid(name) == os.getpid() and temporary_pid("out.json") is None

    with pytest.raises(ValueError):
        with replaced_folder(tmp_path / "model") as work:
            (work / "w.bin").write_bytes(b"1")
            raise ValueError("no")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_replaced_folder_swaps_the_whole_folder(tmp_path):
    folder = tmp_path / "model"
    with replaced_folder(folder) as work:
        (work / "old.txt").write_text("1")
    with replaced_folder(folder) as work:
        (work / "new.txt").write_text("2")
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert atomic_write_bytes(tmp_path / "sub" / "x.bin", b"ab").read_bytes() == b"ab"
