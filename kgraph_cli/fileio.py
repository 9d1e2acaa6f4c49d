"""Atomic writes: a temporary file in the same folder, then a rename, so an
interrupted write never leaves half a file nor destroys the old one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kgraph_cli.errors import UsageError


def check_writable(path: Path, force: bool) -> None:
    """Refuse to replace an existing file unless forced."""
    if path.exists() and not force:
        raise UsageError(f"'{path}' already exists", "pass --force to overwrite it")
    if not path.parent.exists():
        raise UsageError(f"folder '{path.parent}' does not exist", "create it first")


@contextlib.contextmanager
def atomic_path(path: Path, ending: str = "") -> Iterator[Path]:
    """A temporary path beside `path` (ending in `ending`, for writers that pick
    a format by it) that is renamed onto `path` when the block succeeds and
    removed when it fails: nobody ever sees half a file."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=ending)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, force: bool = False) -> None:
    check_writable(path, force)
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def _file_mode(path: Path) -> int:
    """The existing file's mode, or what a plain open() would give (mkstemp is 0600)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
