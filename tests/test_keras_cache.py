"""The files Keras downloads, found by kgraph first (kgraph_cli/keras_cache.py):
the search order, Keras's hash rule, files with another hash kept byte for byte,
the offline error and its hint, the download (atomic, never over a file, no
temporary left behind), keras.applications redirected, the ImageNet class index.
The network is never used: the download function is replaced."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kgraph_cli import keras_cache
from kgraph_cli.errors import KgraphError
from kgraph_cli.keras_cache import (
    KerasFileMissing,
    application_downloads,
    find_keras_file,
    imagenet_class_names,
    keras_cache_dirs,
    keras_home,
)
from tests.conftest import offline_keras_home

FNAME = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
ORIGIN = f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{FNAME}"
GOOD = b"the right weights"
BAD = b"some other file"
MD5 = hashlib.md5(GOOD).hexdigest()
SHA256 = hashlib.sha256(GOOD).hexdigest()
MOBILENET_V2 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
MOBILENET_V3 = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
REAL_DOWNLOAD = keras_cache._download  # before the fixture replaces it


@pytest.fixture(autouse=True)
def _fake_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Offline, a Keras home of the test's own, no data dir from the environment,
    and a download that fails the test if anything reaches it."""
    offline_keras_home(monkeypatch, tmp_path)

    def no_network(origin: str, path: Path) -> None:
        raise AssertionError(f"the test tried to download {origin}")

    monkeypatch.setattr(keras_cache, "_download", no_network)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """Keras's models folder of the fake home (not created)."""
    return tmp_path / "keras_home" / "models"


def put(folder: Path, content: bytes = GOOD, name: str = FNAME) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def find(data_dir: Path | None = None, file_hash: str | None = MD5) -> Path:
    return find_keras_file(FNAME, ORIGIN, file_hash, "models", data_dir)


def missing(data_dir: Path | None = None, file_hash: str | None = MD5) -> KerasFileMissing:
    with pytest.raises(KerasFileMissing) as info:
        find(data_dir, file_hash)
    return info.value


def online(monkeypatch: pytest.MonkeyPatch, download) -> list[tuple[str, Path]]:
    """Downloads allowed, through `download(origin, path)`; the calls, recorded."""
    monkeypatch.delenv("KGRAPH_OFFLINE")
    calls: list[tuple[str, Path]] = []

    def recorded(origin: str, path: Path) -> None:
        calls.append((origin, path))
        download(origin, path)

    monkeypatch.setattr(keras_cache, "_download", recorded)
    return calls


# -- Keras's folders -------------------------------------------------------------


def test_keras_home_is_keras_home_or_dot_keras(tmp_path, monkeypatch):
    assert keras_home() == tmp_path / "keras_home"
    monkeypatch.delenv("KERAS_HOME")
    assert keras_home() == tmp_path / "home" / ".keras"
    assert keras_cache_dirs("models") == [tmp_path / "home" / ".keras" / "models"]
    assert keras_cache_dirs("datasets") == [tmp_path / "home" / ".keras" / "datasets"]


def test_unwritable_keras_home_adds_keras_tmp_fallback(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(locked / ".keras"))
    monkeypatch.setattr(keras_cache.os, "access", lambda path, mode: Path(path) != locked)
    assert keras_cache_dirs("models") == [locked / ".keras" / "models", Path("/tmp/.keras/models")]


# -- the search --------------------------------------------------------------------


def test_found_in_the_data_dir(tmp_path):
    path = put(tmp_path / "data")
    assert find(tmp_path / "data") == path


def test_found_in_the_data_dirs_subfolder(tmp_path):
    path = put(tmp_path / "data" / "models")
    assert find(tmp_path / "data") == path


def test_found_in_the_keras_cache(cache):
    path = put(cache)
    assert find() == path


def test_kgraph_data_dir_when_no_data_dir_is_given(tmp_path, monkeypatch):
    path = put(tmp_path / "env")
    monkeypatch.setenv("KGRAPH_DATA_DIR", str(tmp_path / "env"))
    assert find() == path
    given = put(tmp_path / "given")
    assert find(tmp_path / "given") == given  # --data-dir wins over the variable


def test_search_order_data_dir_then_subfolder_then_cache(tmp_path, cache):
    data = tmp_path / "data"
    in_cache, in_sub, in_data = put(cache), put(data / "models"), put(data)
    assert find(data) == in_data
    in_data.unlink()
    assert find(data) == in_sub
    in_sub.unlink()
    assert find(data) == in_cache


def test_relative_data_dir_is_made_absolute(tmp_path, monkeypatch):
    put(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    found = find(Path("data"))
    assert found.is_absolute() and found == tmp_path / "data" / FNAME


def test_no_hash_accepts_any_file(cache):
    path = put(cache, BAD)
    assert find(file_hash=None) == path


def test_sha256_hash(cache):
    put(cache)
    assert find(file_hash=SHA256) == cache / FNAME  # 64 characters: sha256
    with pytest.raises(KerasFileMissing, match="its sha256 is"):
        find(file_hash=hashlib.sha256(BAD).hexdigest())


def test_md5_hash(cache):
    put(cache)
    assert find(file_hash=MD5) == cache / FNAME
    assert find(file_hash=MD5.upper()) == cache / FNAME
    with pytest.raises(KerasFileMissing, match="its md5 is"):
        find(file_hash=hashlib.md5(BAD).hexdigest())


def test_mismatched_file_is_kept_and_the_search_goes_on(tmp_path, cache):
    data = tmp_path / "data"
    wrong = put(data, BAD)
    right = put(cache)
    assert find(data) == right
    assert wrong.read_bytes() == BAD


def test_mismatched_file_message_names_it_and_leaves_it_alone(cache):
    wrong = put(cache, BAD)
    exc = missing()
    assert str(exc) == exc.message
    assert exc.message == (
        f"ImageNet weights '{FNAME}' found at {wrong} but its md5 is "
        f"{hashlib.md5(BAD).hexdigest()}, expected {MD5}; kgraph leaves it alone "
        "and does not download it (KGRAPH_OFFLINE is set)"
    )
    assert f"looked in: {cache} (wrong md5)" in exc.hint
    assert wrong.read_bytes() == BAD
    assert sorted(p.name for p in cache.iterdir()) == [FNAME]


def test_several_mismatched_files_are_counted(tmp_path, cache):
    data = tmp_path / "data"
    put(data, BAD), put(data / "models", BAD), put(cache, BAD)
    exc = missing(data)
    assert f"found at {data / FNAME} but" in exc.message
    assert "(and 2 more of that name)" in exc.message


def test_a_folder_of_that_name_is_not_the_file(cache):
    (cache / FNAME).mkdir(parents=True)
    assert "not available offline" in missing().message


# -- the offline error ---------------------------------------------------------------


def test_offline_error_says_which_file_to_put_where(tmp_path, cache):
    data = tmp_path / "data"
    exc = missing(data)
    assert isinstance(exc, KgraphError) and exc.code == "data-missing"
    assert exc.message == f"ImageNet weights '{FNAME}' are not available offline"
    assert exc.hint == (
        f"put {FNAME} (from {ORIGIN}) in --data-dir DIR, $KGRAPH_DATA_DIR or {cache}; "
        f"looked in: {data}, {data / 'models'}, {cache}"
    )
    assert exc.fname == FNAME and exc.origin == ORIGIN
    assert exc.looked_in == (data, data / "models", cache)
    assert not cache.exists()  # offline: nothing created


def test_hint_shows_the_default_cache_as_home_dot_keras(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    exc = missing()
    assert "$KGRAPH_DATA_DIR or ~/.keras/models; looked in: " in exc.hint
    assert exc.hint.endswith(str(tmp_path / "home" / ".keras" / "models"))


def test_class_index_and_other_files_are_named_for_what_they_are():
    with pytest.raises(KerasFileMissing) as info:
        find_keras_file(
            "imagenet_class_index.json", keras_cache.CLASS_INDEX_ORIGIN, None, "models", None
        )
    assert info.value.message == (
        "ImageNet class index 'imagenet_class_index.json' is not available offline"
    )
    with pytest.raises(KerasFileMissing, match="^Keras file 'x.npz' is not available offline$"):
        find_keras_file("x.npz", "https://example.invalid/x.npz", None, "datasets", None)


# -- the download --------------------------------------------------------------------


def test_download_goes_to_the_keras_cache_through_a_temporary(monkeypatch, cache):
    def download(origin: str, path: Path) -> None:
        assert path.parent == cache and path.name != FNAME  # a temporary beside the target
        assert not (cache / FNAME).exists()  # nothing in place before it is whole
        path.write_bytes(GOOD)

    calls = online(monkeypatch, download)
    assert find() == cache / FNAME
    assert calls == [(ORIGIN, calls[0][1])]
    assert (cache / FNAME).read_bytes() == GOOD
    assert sorted(p.name for p in cache.iterdir()) == [FNAME]  # no temporary left
    assert (cache / FNAME).stat().st_mode & 0o777 != 0o600  # a normal file, not mkstemp's


def test_download_after_a_mismatch_in_the_data_dir(tmp_path, monkeypatch, cache):
    wrong = put(tmp_path / "data", BAD)
    online(monkeypatch, lambda origin, path: path.write_bytes(GOOD))
    assert find(tmp_path / "data") == cache / FNAME
    assert wrong.read_bytes() == BAD


def test_download_never_overwrites_a_mismatched_file(monkeypatch, cache):
    wrong = put(cache, BAD)
    calls = online(monkeypatch, lambda origin, path: path.write_bytes(GOOD))
    exc = missing()
    assert calls == []
    assert exc.message.startswith(f"ImageNet weights '{FNAME}' found at {wrong} but its md5 is ")
    assert exc.message.endswith("; kgraph leaves it alone and does not download over it")
    assert wrong.read_bytes() == BAD
    assert sorted(p.name for p in cache.iterdir()) == [FNAME]


def test_a_file_that_appears_during_the_download_is_not_overwritten(monkeypatch, cache):
    def download(origin: str, path: Path) -> None:
        path.write_bytes(GOOD)
        (cache / FNAME).write_bytes(BAD)  # another program, meanwhile

    online(monkeypatch, download)
    exc = missing()
    assert "does not download over it" in exc.message
    assert (cache / FNAME).read_bytes() == BAD
    assert sorted(p.name for p in cache.iterdir()) == [FNAME]


def test_the_right_file_appearing_during_the_download_is_used(monkeypatch, cache):
    def download(origin: str, path: Path) -> None:
        path.write_bytes(GOOD)
        (cache / FNAME).write_bytes(GOOD)  # another kgraph, meanwhile

    online(monkeypatch, download)
    assert find() == cache / FNAME
    assert sorted(p.name for p in cache.iterdir()) == [FNAME]


def test_failing_download_leaves_no_temporary(monkeypatch, cache):
    def download(origin: str, path: Path) -> None:
        path.write_bytes(GOOD[:5])
        raise OSError(101, "Network is unreachable")

    online(monkeypatch, download)
    exc = missing()
    assert exc.message == (
        f"ImageNet weights '{FNAME}' are not available offline and could not be "
        "downloaded (Network is unreachable)"
    )
    assert FNAME in exc.hint and ORIGIN in exc.hint
    assert list(cache.iterdir()) == []


def test_http_error_is_the_reason(monkeypatch, cache):
    import urllib.error

    def download(origin: str, path: Path) -> None:
        raise urllib.error.HTTPError(origin, 404, "Not Found", None, None)  # type: ignore[arg-type]

    online(monkeypatch, download)
    assert "could not be downloaded (HTTP 404 Not Found)" in missing().message
    assert list(cache.iterdir()) == []


def test_interrupted_download_leaves_no_temporary(monkeypatch, cache):
    def download(origin: str, path: Path) -> None:
        path.write_bytes(GOOD[:5])
        raise KeyboardInterrupt

    online(monkeypatch, download)
    with pytest.raises(KeyboardInterrupt):
        find()
    assert list(cache.iterdir()) == []


def test_download_with_the_wrong_hash_is_discarded(monkeypatch, cache):
    online(monkeypatch, lambda origin, path: path.write_bytes(BAD))
    exc = missing()
    assert exc.message == (
        f"ImageNet weights '{FNAME}' are not available offline and the download from "
        f"{ORIGIN} is not that file (its md5 is {hashlib.md5(BAD).hexdigest()}, "
        f"expected {MD5})"
    )
    assert list(cache.iterdir()) == []


def test_unwritable_cache_is_a_failed_download(tmp_path, monkeypatch):
    (tmp_path / "keras_home" / "models").write_text("a file where the folder would be")
    online(monkeypatch, lambda origin, path: path.write_bytes(GOOD))
    exc = missing()
    assert "could not be downloaded (cannot write in " in exc.message


def test_truncated_download_is_an_error(tmp_path, monkeypatch):
    """The real _download, on a response shorter than its Content-Length."""

    class Response:
        headers = {"Content-Length": "100"}

        def __init__(self) -> None:
            self.data = [GOOD]

        def read(self, size: int = -1) -> bytes:
            return self.data.pop() if self.data else b""

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response())
    with pytest.raises(OSError, match="the connection closed after 17 of 100 bytes"):
        REAL_DOWNLOAD(ORIGIN, tmp_path / "part")


# -- the ImageNet class index ----------------------------------------------------------


def class_index(names: list[str] | None = None) -> dict[str, list[str]]:
    names = names or [f"class_{i}" for i in range(1000)]
    return {str(i): [f"n{i:08d}", name] for i, name in enumerate(names)}


def put_index(monkeypatch, folder: Path, index: object) -> Path:
    text = json.dumps(index).encode()
    path = put(folder, text, "imagenet_class_index.json")
    monkeypatch.setattr(keras_cache, "CLASS_INDEX_MD5", hashlib.md5(text).hexdigest())
    return path


def test_imagenet_class_names_in_index_order(tmp_path, monkeypatch):
    names = [f"class_{i}" for i in range(1000)]
    names[386] = "African_elephant"
    put_index(monkeypatch, tmp_path / "data", class_index(names))
    assert imagenet_class_names(tmp_path / "data") == names


def test_imagenet_class_index_in_the_keras_cache(monkeypatch, cache):
    put_index(monkeypatch, cache, class_index())
    assert imagenet_class_names(None)[999] == "class_999"


def test_imagenet_class_index_with_another_hash_is_left_alone(tmp_path):
    path = put(tmp_path / "data", json.dumps(class_index()).encode(), "imagenet_class_index.json")
    with pytest.raises(KerasFileMissing) as info:
        imagenet_class_names(tmp_path / "data")
    assert info.value.message.startswith(
        f"ImageNet class index 'imagenet_class_index.json' found at {path} but its md5 is "
    )
    assert f"expected {keras_cache.CLASS_INDEX_MD5}; kgraph leaves it alone" in info.value.message
    assert keras_cache.CLASS_INDEX_ORIGIN in info.value.hint


def test_imagenet_class_index_constants_are_keras():
    from kgraph_cli.tf import import_keras

    import_keras()
    from keras.src.applications import imagenet_utils

    assert imagenet_utils.CLASS_INDEX_PATH == keras_cache.CLASS_INDEX_ORIGIN
    import inspect

    assert f'file_hash="{keras_cache.CLASS_INDEX_MD5}"' in inspect.getsource(
        imagenet_utils.decode_predictions
    )


@pytest.mark.parametrize(
    ("index", "problem"),
    [
        ([["n1", "a"]], "it holds a JSON list, not an object of classes"),
        (
            {k: v for k, v in class_index().items() if k not in ("5", "17")},
            "it has 998 entries, not 1000 ('0' to '999'); no '5', '17'",
        ),
        (
            {**class_index(), "1000": ["n", "x"]},
            "it has 1001 entries, not 1000 ('0' to '999'); unexpected '1000'",
        ),
        ({**class_index(), "7": "goldfish"}, "entry '7' is \"goldfish\", not [wnid, name]"),
        ({**class_index(), "8": ["n8", 8]}, "entry '8' is [\"n8\", 8], not [wnid, name]"),
    ],
)
def test_malformed_imagenet_class_index(tmp_path, monkeypatch, index, problem):
    path = put_index(monkeypatch, tmp_path / "data", index)
    with pytest.raises(KerasFileMissing) as info:
        imagenet_class_names(tmp_path / "data")
    assert info.value.message == (
        f"ImageNet class index {path} is not Keras's imagenet_class_index.json: {problem}"
    )
    assert info.value.hint.startswith(f"replace it with {keras_cache.CLASS_INDEX_ORIGIN}")


def test_imagenet_class_index_that_is_not_json(tmp_path, monkeypatch):
    text = b"\xff\xfe not json"
    path = put(tmp_path / "data", text, "imagenet_class_index.json")
    monkeypatch.setattr(keras_cache, "CLASS_INDEX_MD5", hashlib.md5(text).hexdigest())
    with pytest.raises(KerasFileMissing, match="cannot be read as JSON") as info:
        imagenet_class_names(tmp_path / "data")
    assert str(path) in info.value.message


# -- keras.applications, redirected ------------------------------------------------------


def _file_utils():
    from kgraph_cli.tf import import_keras

    import_keras()
    from keras.src.utils import file_utils

    return file_utils


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
def test_application_offline_names_the_weights_file(tmp_path, cache):
    import keras

    file_utils = _file_utils()
    original = file_utils.get_file
    with pytest.raises(KerasFileMissing) as info, application_downloads(tmp_path / "data"):
        assert file_utils.get_file is not original
        keras.applications.MobileNetV2(
            weights="imagenet", include_top=False, input_shape=(32, 32, 3), alpha=0.35
        )
    assert file_utils.get_file is original  # restored on the exception too
    exc = info.value
    assert exc.message == f"ImageNet weights '{MOBILENET_V2}' are not available offline"
    origin = (
        f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{MOBILENET_V2}"
    )
    assert f"put {MOBILENET_V2} (from {origin}) in --data-dir DIR" in exc.hint
    data = tmp_path / "data"
    assert exc.hint.endswith(f"looked in: {data}, {data / 'models'}, {cache}")


def _saved_mobilenet_v3(path: Path):
    """A MobileNetV3Small without ImageNet weights, its weights saved where Keras
    would find its ImageNet ones (the legacy .h5 layout Keras's files have)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(3)
    model = keras.applications.MobileNetV3Small(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return model


@pytest.mark.tf
def test_application_loads_weights_found_in_the_data_dir(tmp_path, monkeypatch):
    """Keras passes its own hash: the file found must have it, here made so."""
    import keras
    from keras.src.applications import mobilenet_v3

    path = tmp_path / "data" / "models" / MOBILENET_V3
    saved = _saved_mobilenet_v3(path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    top, _ = mobilenet_v3.WEIGHTS_HASHES["small_224_1.0_float"]
    monkeypatch.setitem(mobilenet_v3.WEIGHTS_HASHES, "small_224_1.0_float", (top, md5))
    file_utils = _file_utils()
    original = file_utils.get_file
    with application_downloads(tmp_path / "data"):
        loaded = keras.applications.MobileNetV3Small(
            weights="imagenet", include_top=False, input_shape=(32, 32, 3)
        )
    assert file_utils.get_file is original
    for ours, theirs in zip(loaded.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.tf
def test_application_weights_with_keras_hash_mismatch_are_kept(tmp_path, monkeypatch, cache):
    """The same file with Keras's real hash: refused, kept byte for byte, and not
    downloaded over even online (where Keras would delete it)."""
    import keras
    from keras.src.applications import mobilenet_v3

    path = cache / MOBILENET_V3
    _saved_mobilenet_v3(path)
    before = path.read_bytes()
    calls = online(monkeypatch, lambda origin, p: p.write_bytes(b"downloaded"))
    with pytest.raises(KerasFileMissing) as info, application_downloads(None):
        keras.applications.MobileNetV3Small(
            weights="imagenet", include_top=False, input_shape=(32, 32, 3)
        )
    assert calls == []
    assert info.value.message.startswith(f"ImageNet weights '{MOBILENET_V3}' found at {path}")
    keras_md5 = mobilenet_v3.WEIGHTS_HASHES["small_224_1.0_float"][1]
    assert f"expected {keras_md5}; kgraph leaves it alone" in info.value.message
    assert path.read_bytes() == before


@pytest.mark.tf
def test_decode_predictions_class_index_is_redirected(tmp_path, monkeypatch):
    from keras.src.applications import imagenet_utils

    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)  # Keras caches it
    path = put(tmp_path / "data", json.dumps(class_index()).encode(), "imagenet_class_index.json")
    with pytest.raises(KerasFileMissing, match="ImageNet class index") as info:
        with application_downloads(tmp_path / "data"):
            imagenet_utils.decode_predictions(np.zeros((1, 1000)), top=1)
    assert f"found at {path} but its md5 is" in info.value.message
    assert path.is_file()


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
def test_weights_deferred_runs_keras_checks_and_fetches_nothing(cache, monkeypatch):
    import keras

    from kgraph_cli.keras_cache import weights_deferred

    online(monkeypatch, lambda origin, path: path.write_bytes(GOOD))
    file_utils = _file_utils()
    original = file_utils.get_file
    with weights_deferred() as deferred:
        with pytest.raises(deferred):
            keras.applications.MobileNetV2(
                weights="imagenet", include_top=False, input_shape=(32, 32, 3), alpha=0.35
            )
        with pytest.raises(ValueError, match="alpha"):  # Keras's own check, before any fetch
            keras.applications.MobileNetV2(
                weights="imagenet", include_top=False, input_shape=(32, 32, 3), alpha=0.3
            )
    assert file_utils.get_file is original
    assert not cache.exists()


@pytest.mark.tf
def test_application_downloads_restores_get_file_and_nests():
    file_utils = _file_utils()
    original = file_utils.get_file
    with application_downloads(None):
        outer = file_utils.get_file
        with application_downloads(None):
            assert file_utils.get_file not in (original, outer)
        assert file_utils.get_file is outer
    assert file_utils.get_file is original


@pytest.mark.tf
def test_get_file_arguments_as_keras_passes_them(tmp_path, cache, monkeypatch):
    file_utils = _file_utils()
    put(cache)
    with application_downloads(None):
        assert file_utils.get_file(FNAME, ORIGIN, cache_subdir="models", file_hash=SHA256) == str(
            cache / FNAME
        )
        assert file_utils.get_file(FNAME, ORIGIN, cache_subdir="models", md5_hash=MD5) == str(
            cache / FNAME
        )
        # no file name: the origin's, as Keras does
        assert file_utils.get_file(origin=ORIGIN, cache_subdir="models") == str(cache / FNAME)
