"""The files Keras downloads, found by kgraph first: Keras's home and cache
folders, and keras.applications' ImageNet weights and class index looked for in
--data-dir, $KGRAPH_DATA_DIR and Keras's cache before any download.

Keras's own `get_file` deletes a cached file whose hash differs and downloads
over it; kgraph never deletes, moves or overwrites a file it finds: a file with
another hash is left alone and the search goes on. A download (unless
KGRAPH_OFFLINE is set) goes to Keras's cache through a temporary file beside
its target, is checked, and is put in place only where nothing is. Whatever is
missing raises KerasFileMissing, saying which file to put where.

`application_downloads` sends keras.applications' calls of
`keras.src.utils.file_utils.get_file` here (`weights_deferred` stops them
instead): with keras_graph.py and keras_legacy.py, one of the modules that read
Keras internals. Keras is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgraph_cli.errors import KgraphError, short_message

# keras.src.applications.imagenet_utils's class index (decode_predictions).
CLASS_INDEX_FNAME = "imagenet_class_index.json"
CLASS_INDEX_ORIGIN = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
IMAGENET_CLASSES = 1000
_DOWNLOAD_TIMEOUT = 60  # seconds without data before a download gives up
_TMP_FOLDER = Path("/tmp/.keras")  # Keras's fallback when its home is not writable


def keras_home() -> Path:
    """Keras's home folder: $KERAS_HOME, else ~/.keras (/tmp/.keras when the home
    folder is not writable), as keras.src.backend.config decides it."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return Path("/tmp" if not os.access(home, os.W_OK) else home) / ".keras"


def keras_cache_dirs(subdir: str) -> list[Path]:
    """Where Keras keeps what it downloads into `subdir` ("datasets", "models"),
    and its fallback when that is unwritable; Keras downloads into the last."""
    home = keras_home()
    dirs = [home / subdir]
    existing = home
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent  # Keras creates the folder when it can
    if not os.access(existing, os.W_OK) and home != _TMP_FOLDER:
        dirs.append(_TMP_FOLDER / subdir)
    return dirs


class KerasFileMissing(KgraphError):
    """A file Keras would download is not available (offline, the download
    failed, or the file found is another one): which file, and where to put it."""

    code = "data-missing"

    def __init__(
        self,
        message: str,
        hint: str,
        fname: str = "",
        origin: str = "",
        looked_in: tuple[Path, ...] = (),
    ):
        super().__init__(message, hint)
        self.message = message
        self.fname = fname
        self.origin = origin
        self.looked_in = looked_in


@dataclass(frozen=True)
class _Rejected:
    """A file found under the right name that is not the right file."""

    path: Path
    why: str  # "its md5 is X, expected Y"
    short: str  # for the list of folders looked in: "wrong md5"


def find_keras_file(
    fname: str,
    origin: str,
    file_hash: str | None,
    cache_subdir: str,
    data_dir: Path | None,
    *,
    hash_algorithm: str = "auto",
) -> Path:
    """The file Keras's `get_file(fname, origin, file_hash=..., cache_subdir=...)`
    would return, found in `data_dir` (else $KGRAPH_DATA_DIR), its `cache_subdir`
    folder, then Keras's cache; downloaded into Keras's cache when none has the
    hash (`None`: any file), unless KGRAPH_OFFLINE is set."""
    folders = _search_folders(cache_subdir, data_dir)
    algorithm = _algorithm(file_hash, hash_algorithm)
    rejected: list[_Rejected] = []
    for folder in folders:
        path = folder / fname
        if not path.is_file():
            continue
        problem = _check(path, file_hash, algorithm)
        if problem is None:
            return path
        rejected.append(problem)
    missing = _Missing(fname, origin, cache_subdir, folders, rejected)
    if os.environ.get("KGRAPH_OFFLINE"):
        raise missing.failure("offline")
    return _download_into_cache(missing, file_hash, algorithm)


def _search_folders(cache_subdir: str, data_dir: Path | None) -> list[Path]:
    if data_dir is None and os.environ.get("KGRAPH_DATA_DIR"):
        data_dir = Path(os.environ["KGRAPH_DATA_DIR"])
    roots: list[Path] = []
    if data_dir is not None:
        root = Path(os.path.abspath(data_dir.expanduser()))
        roots += [root, root / cache_subdir]
    return list(dict.fromkeys(roots + keras_cache_dirs(cache_subdir)))


def _algorithm(file_hash: str | None, hash_algorithm: str = "auto") -> str:
    """Keras's rule (file_utils.resolve_hasher): a 64-character hash is sha256,
    any other md5, unless the algorithm is named."""
    if hash_algorithm in ("md5", "sha256"):
        return hash_algorithm
    return "sha256" if file_hash is not None and len(file_hash) == 64 else "md5"


def _file_hash(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _check(path: Path, file_hash: str | None, algorithm: str) -> _Rejected | None:
    """None when `path` is the file (any file when there is no hash to check)."""
    if file_hash is None:
        return None
    try:
        actual = _file_hash(path, algorithm)
    except OSError as exc:
        return _Rejected(path, f"it cannot be read ({exc.strerror or exc})", "unreadable")
    if actual == file_hash.lower():
        return None
    return _Rejected(
        path, f"its {algorithm} is {actual}, expected {file_hash}", f"wrong {algorithm}"
    )


# How a message goes on after a rejected file ("...; kgraph leaves it alone")
# or none ("... not available offline"), by why there is no file.
_AFTER_REJECTED = {
    "offline": " and does not download it (KGRAPH_OFFLINE is set)",
    "failed": ", and could not download it ({reason})",
    "bad-download": ", and the download is not that file either ({reason})",
    "in-the-way": " and does not download over it",
}
_NOT_FOUND = {
    "offline": "",
    "failed": " and could not be downloaded ({reason})",
    "bad-download": " and the download from {origin} is not that file ({reason})",
}


@dataclass(frozen=True)
class _Missing:
    """What was looked for and found, to say why a file is missing and what to do."""

    fname: str
    origin: str
    cache_subdir: str
    folders: list[Path]
    rejected: list[_Rejected]

    def failure(self, why: str, reason: str = "") -> KerasFileMissing:
        """`why`: "offline", "failed" (the download: `reason`), "bad-download"
        (its hash: `reason`), "in-the-way" (a rejected file at the download's target)."""
        what, verb = _what(self.fname, self.cache_subdir)
        subject = f"{what} '{self.fname}'"
        if self.rejected:
            first, more = self.rejected[0], len(self.rejected) - 1
            others = f" (and {more} more of that name)" if more else ""
            message = f"{subject} found at {first.path} but {first.why}{others}"
            message += "; kgraph leaves it alone" + _AFTER_REJECTED[why].format(reason=reason)
        else:
            message = f"{subject} {verb} not available offline"
            message += _NOT_FOUND[why].format(reason=reason, origin=self.origin)
        found = {r.path.parent: r.short for r in self.rejected}
        looked = ", ".join(
            f"{folder} ({found[folder]})" if folder in found else str(folder)
            for folder in self.folders
        )
        cache = _shown(keras_cache_dirs(self.cache_subdir)[-1])
        hint = (
            f"put {self.fname} (from {self.origin}) in --data-dir DIR, $KGRAPH_DATA_DIR "
            f"or {cache}; looked in: {looked}"
        )
        return KerasFileMissing(message, hint, self.fname, self.origin, tuple(self.folders))


def _what(fname: str, cache_subdir: str) -> tuple[str, str]:
    """What the file is, for a message, and its verb."""
    if fname == CLASS_INDEX_FNAME:
        return "ImageNet class index", "is"
    if cache_subdir == "models":
        return "ImageNet weights", "are"
    return "Keras file", "is"


def _shown(path: Path) -> str:
    """A folder as the user would type it: ~/.keras/models under the home folder."""
    try:
        return f"~/{path.relative_to(Path('~').expanduser())}"
    except ValueError:
        return str(path)


def _download_into_cache(missing: _Missing, file_hash: str | None, algorithm: str) -> Path:
    """Download into Keras's cache folder: a temporary file beside the target,
    checked, then linked into place, never over anything already there."""
    folder = keras_cache_dirs(missing.cache_subdir)[-1]
    target = folder / missing.fname
    if os.path.lexists(target):
        _in_the_way(missing, target, file_hash, algorithm)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{missing.fname}.", suffix=".part")
    except OSError as exc:
        reason = f"cannot write in {folder}: {exc.strerror or exc}"
        raise missing.failure("failed", reason) from None
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            _download(missing.origin, tmp)
        except Exception as exc:  # no network, a proxy, a full disk: all mean "not available"
            raise missing.failure("failed", _download_error(exc)) from None
        problem = _check(tmp, file_hash, algorithm)
        if problem is not None:
            raise missing.failure("bad-download", problem.why)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's files are 0600
        if not _place(tmp, target):
            # another process put a file there meanwhile: the right one, or in the way
            if target.is_file() and _check(target, file_hash, algorithm) is None:
                return target
            _in_the_way(missing, target, file_hash, algorithm)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _in_the_way(missing: _Missing, target: Path, file_hash: str | None, algorithm: str) -> None:
    """Raise: `target`, where the download would go, holds something else."""
    if all(r.path != target for r in missing.rejected):
        problem = _check(target, file_hash, algorithm) if target.is_file() else None
        missing.rejected.append(problem or _Rejected(target, "it is not a file", "not a file"))
    raise missing.failure("in-the-way")


def _download(origin: str, path: Path) -> None:
    """Fetch `origin` into the file `path`: kgraph's one network access (the tests
    replace it)."""
    import shutil
    import urllib.request

    with urllib.request.urlopen(origin, timeout=_DOWNLOAD_TIMEOUT) as response:
        expected = response.headers.get("Content-Length")
        with open(path, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
            written = out.tell()
    if expected is not None and expected.isdigit() and written != int(expected):
        raise OSError(f"the connection closed after {written:,} of {int(expected):,} bytes")


def _download_error(exc: Exception) -> str:
    """A failed download as a reason: the server's answer or the network's error."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return short_message(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return short_message(exc) or type(exc).__name__


def _place(tmp: Path, target: Path) -> bool:
    """Put `tmp` at `target` atomically unless something is there (False)."""
    try:
        os.link(tmp, target)  # fails when target exists: no overwriting, ever
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links
        if os.path.lexists(target):
            return False
        os.rename(tmp, target)
    return True


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def application_downloads(data_dir: Path | None) -> Iterator[None]:
    """While active, keras.applications' downloads (ImageNet weights, the class
    index of decode_predictions) are find_keras_file's: found in `data_dir`,
    $KGRAPH_DATA_DIR or Keras's cache, never deleted, KGRAPH_OFFLINE honoured."""
    with _get_file_replaced(lambda original: _get_file(original, data_dir)):
        yield


class WeightsDeferred(Exception):
    """Raised by keras.applications' get_file under weights_deferred()."""


@contextlib.contextmanager
def weights_deferred() -> Iterator[type[WeightsDeferred]]:
    """While active, keras.applications' get_file raises the exception class
    yielded instead of finding or downloading anything: a constructor called with
    weights="imagenet" runs Keras's checks of what those weights need (input
    size, classes), then stops where it would fetch them."""

    def replace(original: Callable[..., Any]) -> Callable[..., str]:
        def get_file(*args: Any, **kwargs: Any) -> str:
            raise WeightsDeferred("kgraph deferred the download of ImageNet weights")

        return get_file

    with _get_file_replaced(replace):
        yield WeightsDeferred


@contextlib.contextmanager
def _get_file_replaced(
    replacement: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> Iterator[None]:
    """`keras.src.utils.file_utils.get_file`, which the application modules call
    (`file_utils.get_file(...)`), replaced by `replacement(original)` for a while."""
    from kgraph_cli.tf import import_keras

    import_keras()
    from keras.src.utils import file_utils

    original = file_utils.get_file
    file_utils.get_file = replacement(original)
    try:
        yield
    finally:
        file_utils.get_file = original


def _get_file(original: Callable[..., Any], data_dir: Path | None) -> Callable[..., str]:
    """Keras's get_file (same arguments) answered by find_keras_file."""

    def get_file(
        fname: Any = None,
        origin: str | None = None,
        untar: bool = False,
        md5_hash: str | None = None,
        file_hash: str | None = None,
        cache_subdir: str = "datasets",
        hash_algorithm: str = "auto",
        extract: bool = False,
        archive_format: str = "auto",
        cache_dir: Any = None,
        force_download: bool = False,
    ) -> str:
        if untar or extract or cache_dir is not None or force_download or origin is None:
            # archives, other caches, forced downloads: not what keras.applications asks
            return original(
                fname,
                origin,
                untar=untar,
                md5_hash=md5_hash,
                file_hash=file_hash,
                cache_subdir=cache_subdir,
                hash_algorithm=hash_algorithm,
                extract=extract,
                archive_format=archive_format,
                cache_dir=cache_dir,
                force_download=force_download,
            )
        if md5_hash is not None and file_hash is None:
            file_hash, hash_algorithm = md5_hash, "md5"
        name = os.fspath(fname) if fname else ""
        if not name:
            import urllib.parse

            name = os.path.basename(urllib.parse.urlsplit(origin).path)
        path = find_keras_file(
            name, origin, file_hash, cache_subdir, data_dir, hash_algorithm=hash_algorithm
        )
        return str(path)

    return get_file


def imagenet_class_names(data_dir: Path | None) -> list[str]:
    """The 1000 ImageNet class names in index order ("tench", ..., "toilet_tissue"),
    read from Keras's imagenet_class_index.json (found as find_keras_file finds it)."""
    path = find_keras_file(
        CLASS_INDEX_FNAME, CLASS_INDEX_ORIGIN, CLASS_INDEX_MD5, "models", data_dir
    )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _bad_index(path, f"it cannot be read as JSON ({short_message(exc, 120)})") from None
    problem = _index_problem(index)
    if problem:
        raise _bad_index(path, problem)
    return [index[str(i)][1] for i in range(IMAGENET_CLASSES)]


def _index_problem(index: Any) -> str:
    """What keeps `index` from being {"0": [wnid, name], ..., "999": [...]}."""
    if not isinstance(index, dict):
        return f"it holds a JSON {type(index).__name__}, not an object of classes"
    keys = {str(i) for i in range(IMAGENET_CLASSES)}
    missing = sorted(keys - set(index), key=int)
    extra = sorted(set(index) - keys)
    if missing or extra:
        parts = [f"it has {len(index)} entries, not {IMAGENET_CLASSES} ('0' to '999')"]
        if missing:
            parts.append(f"no {_some(missing)}")
        if extra:
            parts.append(f"unexpected {_some(extra)}")
        return "; ".join(parts)
    for key in sorted(index, key=int):
        entry = index[key]
        if not (
            isinstance(entry, list) and len(entry) == 2 and all(isinstance(s, str) for s in entry)
        ):
            return f"entry '{key}' is {short_message(json.dumps(entry), 60)}, not [wnid, name]"
    return ""


def _some(keys: list[str], shown: int = 3) -> str:
    listed = ", ".join(f"'{k}'" for k in keys[:shown])
    return listed + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _bad_index(path: Path, problem: str) -> KerasFileMissing:
    return KerasFileMissing(
        f"ImageNet class index {path} is not Keras's {CLASS_INDEX_FNAME}: {problem}",
        f'replace it with {CLASS_INDEX_ORIGIN} (1000 classes: "0" to "999", each [wnid, name])',
        CLASS_INDEX_FNAME,
        CLASS_INDEX_ORIGIN,
        (path.parent,),
    )
