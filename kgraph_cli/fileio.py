"""Writing outputs without ever destroying what the user had.

Files are written under a temporary name beside their target and renamed over
it, so an interrupted write never leaves half a file nor loses the old one.
Folders (run directories, SavedModels) are written beside their target too and
swapped in at the end. `--force` replaces only what kgraph itself wrote: a
file, or a folder that carries kgraph's marker file and nothing kgraph did not
put there. The current folder, its parents, the home folder and `/` are never
replaced, whatever they hold.

A temporary is named `.NAME.kgraph-PID-XXXXXXXX` (plus the target's ending)
after its target NAME and the process writing it. A process killed while
writing (SIGKILL, power loss) cannot remove its temporary; the next write to
the same target does, once that process is gone (see remove_stale_temporaries).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kgraph_cli.errors import KgraphError, UsageError
from kgraph_cli.suggest import listed

# When this process started (near enough: when it imported this module); a
# temporary is only taken for stale if it is older.
_STARTED = time.time()
# mkstemp/mkdtemp's random part; uuid4().hex[:8] fits it too.
_RANDOM = "[a-z0-9_]{8}"
# The longest output name kgraph writes, in bytes: its temporaries add about
# 40 bytes to it and must still fit the usual 255-byte limit of file systems.
MAX_OUTPUT_NAME = 200
_NAME_MAX = 255  # bytes in one name: ext4, XFS, btrfs, APFS, NTFS (in UTF-16 units)


class WriteError(KgraphError):
    """Writing failed part-way (disk full, permissions): nothing was replaced."""

    code = "write"


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder kgraph writes, and how to recognise one it wrote."""

    what: str  # "run directory"
    marker: str  # the file every such folder has: "run.json"
    # The entries kgraph may have written in such a folder (it may read the
    # folder's marker to know more).
    entries: Callable[[Path], frozenset[str]]
    example: str  # a sub-folder name to suggest instead of a protected folder


def check_writable(path: Path, force: bool) -> None:
    """Refuse to write a file where a folder is, or over a file unless forced.

    Only a regular file (or a link to one, or a broken link) is ever replaced:
    never a folder, a device such as /dev/null, a FIFO or a socket."""
    _check_name(path)
    _check_parent(path)
    if path.is_dir():
        raise UsageError(
            f"'{path}' is a folder, not a file",
            "give a file name inside it; --force replaces files, never folders",
        )
    special = _special_kind(path)
    if special:
        raise UsageError(
            f"'{path}' is {special}, not a regular file",
            "choose a file name; --force replaces only regular files",
        )
    if os.path.lexists(path) and not force:
        raise UsageError(f"'{path}' already exists", "pass --force to overwrite it")
    if not path.parent.is_dir():
        raise UsageError(f"folder '{path.parent}' does not exist", "create it first")


def check_folder_output(path: Path, force: bool, kind: FolderKind, exists_hint: str = "") -> None:
    """Refuse a folder output that would replace anything kgraph did not write.

    A missing or empty folder is fine; an existing one needs `force`, and then
    must be a `kind` folder holding only what kgraph writes in one.
    """
    _check_name(path)
    _check_parent(path)
    protected = _protected(path)
    if protected:
        raise UsageError(
            f"'{path}' is {protected}: kgraph writes a {kind.what} into a folder of its own",
            f"name a new folder, e.g. '{path / kind.example}'",
        )
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise UsageError(
            f"'{path}' is a file, not a {kind.what}",
            "choose another path; --force never replaces a file with a folder",
        )
    entries = sorted(os.listdir(path))
    if not entries:
        return
    if not force:
        raise UsageError(f"{kind.what} '{path}' already exists", exists_hint or "pass --force")
    keep_hint = "--force replaces only what kgraph wrote: move those away or choose another path"
    if not (path / kind.marker).is_file():
        raise UsageError(
            f"'{path}' is not a {kind.what} (it has no {kind.marker}) and holds {listed(entries)}",
            keep_hint,
        )
    ours = kind.entries(path)
    foreign = [name for name in entries if name not in ours and not _temporary_of(name, ours)]
    if foreign:
        raise UsageError(f"'{path}' holds files kgraph did not write: {listed(foreign)}", keep_hint)


def _special_kind(path: Path) -> str:
    """What `path` is when it exists but is neither a file nor a folder."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""  # missing, or a broken link
    kinds = {
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
    }
    return next((what for test, what in kinds.items() if test(mode)), "")


def _check_name(path: Path) -> None:
    """Every part of `path` must fit the file system's name limit, and the
    output's own name must leave room for its temporaries."""
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > _NAME_MAX:
            raise UsageError(
                f"a part of '{_shortened(path)}' is {size} bytes long;"
                f" file systems allow {_NAME_MAX}",
                "choose a shorter path",
            )
    size = len(os.fsencode(path.name))
    if size > MAX_OUTPUT_NAME:
        raise UsageError(
            f"the output name '{_shortened(Path(path.name))}' is {size}"
            f" bytes long; kgraph writes names of up to {MAX_OUTPUT_NAME} bytes",
            "choose a shorter file name",
        )


def _shortened(path: Path, keep: int = 60) -> str:
    text = str(path)
    return text if len(text) <= keep else f"{text[: keep // 2]}...{text[-keep // 2 :]}"


def _check_parent(path: Path) -> None:
    """The nearest existing folder above `path` must be a folder, not a file."""
    for above in path.parents:
        if os.path.lexists(above):
            if not above.is_dir():
                raise UsageError(
                    f"'{above}' is a file, not a folder, so '{path}' cannot be written",
                    "choose a path inside a folder",
                )
            return


def _temporary_of(name: str, targets: frozenset[str]) -> bool:
    """Whether `name` is one of kgraph's temporaries for one of `targets` (a
    folder's entries): what a killed kgraph left inside a folder it wrote."""
    found = re.fullmatch(rf"\.(.+)\.kgraph-(?:old-)?\d+-{_RANDOM}(?:\.[\w.]+)?", name)
    return found is not None and found[1] in targets


def _prefix(path: Path) -> str:
    """The start of the name of every temporary kgraph makes for `path`."""
    return f".{path.name}.kgraph-{os.getpid()}-"


def remove_stale_temporaries(path: Path, ending: str = "") -> None:
    """Remove what a kgraph killed while writing `path` left beside it.

    Only names of kgraph's own pattern for this very target are touched
    (`.NAME.kgraph-PID-XXXXXXXX` + `ending`, a file or a staged folder), and
    only when the process PID is gone and the entry is older than this
    process. A moved-aside old folder (`.NAME.kgraph-old-PID-XXXXXXXX`) is the
    only copy of the old folder until `path` is back, so it is left alone
    while `path` is missing. Nothing else is ever removed; problems are ignored
    (this is tidying, not the write)."""
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.kgraph-(old-)?(\d+)-{_RANDOM}{re.escape(ending)}"
    )
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        found = pattern.fullmatch(name)
        if found is None or _alive(int(found[2])):
            continue
        if found[1] and not os.path.lexists(path):
            continue
        stale = path.parent / name
        try:
            if stale.lstat().st_mtime >= _STARTED:
                continue
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        except OSError:
            continue


def _alive(pid: int) -> bool:
    """Whether process `pid` may still be running (when in doubt, yes)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's live process; no pid at all
        return True
    return True


def _protected(path: Path) -> str:
    """Why `path` must never be replaced ('' if it may be)."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        return "the root folder"
    if resolved == Path.home().resolve():
        return "the home folder"
    if resolved == cwd:
        return "the current folder"
    if resolved in cwd.parents:
        return "a folder above the current one"
    return ""


@contextlib.contextmanager
def atomic_path(path: Path, ending: str = "") -> Iterator[Path]:
    """A temporary path beside `path` (ending in `ending`, for writers that pick
    a format by it) that is renamed onto `path` when the block succeeds and
    removed when it fails: nobody ever sees half a file. Stale temporaries of
    `path` that a killed kgraph left are removed first."""
    remove_stale_temporaries(path, ending)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=ending)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if _write_failure(exc) is None:
            raise
        raise _cannot_write(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_file_with(path: Path, write: Callable[[Path], None], ending: str = "") -> None:
    """Let `write` fill a temporary file beside `path` (ending in `ending`, for
    writers that pick a format by it), then rename it over `path`."""
    with atomic_path(path, ending) as tmp:
        write(tmp)


def write_text_atomic(path: Path, text: str, force: bool = False) -> None:
    check_writable(path, force)
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def staged_folder(path: Path, keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[Path]:
    """A new empty folder beside `path` to write into, swapped in for `path`
    when the block ends, or when it raises one of `keep_on` (an interrupted
    training run is worth keeping); on any other error it is removed and
    `path` stays as it was. Check `path` with check_folder_output first. A
    process killed meanwhile leaves `path` as it was and the hidden folder,
    which the next staged write of `path` removes."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path)))
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a folder is normally 0755
    try:
        yield tmp
    except keep_on:
        _swap_in(tmp, path)
        raise
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):  # a write into it failed: disk full, permissions
            raise _cannot_write(path, exc) from exc
        raise
    _swap_in(tmp, path)


@contextlib.contextmanager
def run_folder(path: Path, keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[Path]:
    """Where work that a later command may continue is written (a training run):
    a new (or empty) folder is written in place, so that even a process killed
    at any instant leaves it for --resume; a folder that holds something is
    replaced through staged_folder, so that a failed run leaves it as it was.
    On an error other than `keep_on`, what was written in place is removed.
    Check `path` with check_folder_output first."""
    if path.is_dir() and any(path.iterdir()):
        with staged_folder(path, keep_on) as tmp:
            yield tmp
        return
    made = not path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)  # what a killed replacement of it left
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        yield path
    except keep_on:
        raise
    except BaseException as exc:
        if made:
            shutil.rmtree(path, ignore_errors=True)
        else:  # the user's empty folder: empty again
            for entry in path.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from exc
        raise


def _swap_in(new: Path, path: Path) -> None:
    """Put folder `new` at `path`; the old folder there is moved aside first and
    only removed once the new one is in place."""
    try:
        if not os.path.lexists(path):
            os.replace(new, path)
            return
        old = path.with_name(f".{path.name}.kgraph-old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        try:
            os.replace(new, path)
        except OSError:
            os.replace(old, path)
            raise
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise _cannot_write(path, exc) from exc
    if old.is_symlink():
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)


def _cannot_write(path: Path, exc: BaseException) -> WriteError:
    return WriteError(
        f"cannot write '{path}': {_reason(_write_failure(exc) or exc)}",
        "check the folder's permissions and free space; nothing was replaced",
    )


def _write_failure(exc: BaseException) -> OSError | None:
    """The OSError behind a failed write: `exc`, or the errno h5py writes into
    its messages ("... errno = 28 ..."), in its OSErrors and in the
    RuntimeErrors it raises when the file cannot be flushed (a full disk)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the exception and what it was raised while handling
        if seen is None:
            break
        found = re.search(r"errno = (\d+)", str(seen))
        if found:
            return OSError(int(found[1]), os.strerror(int(found[1])))
        seen = seen.__context__
    return exc if isinstance(exc, OSError) else None


def _reason(exc: BaseException) -> str:
    """What went wrong, in the system's words ("No space left on device")."""
    return getattr(exc, "strerror", None) or " ".join(str(exc).split())[:300]


def _file_mode(path: Path) -> int:
    """The existing file's mode, or what a plain open() would give (mkstemp is 0600)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    return 0o666 & ~_umask()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
