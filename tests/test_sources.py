"""Data sources -> numpy arrays: every kind, Keras's dataset files read offline, and
located diagnostics for every problem with the data."""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from kgraph_cli.data.sources import SourceData, read_source
from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec.loader import parse_yaml
from kgraph_cli.spec.train import SOURCE_KINDS, SourceSpec
from tests.conftest import SHARED_DATA, offline_keras_home

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "mnist" / "mnist.npz").is_file(),
    reason=f"the offline MNIST/Fashion-MNIST files are not in {SHARED_DATA}",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network, no real Keras cache, no data dir from the environment."""
    offline_keras_home(monkeypatch, tmp_path)


def source(text: str) -> SourceSpec:
    """A SourceSpec from `source: ...` YAML (file spec.yaml), with real locations."""
    body = parse_yaml(text, "spec.yaml")["source"]
    kind = next(k for k in SOURCE_KINDS if k in body)
    return SourceSpec(kind, body, body.loc, "train.data.source")


def read(text: str, spec_dir: Path, data_dir: Path | None = None) -> SourceData:
    return read_source(source(text), spec_dir, data_dir)


def problem(text: str, spec_dir: Path, data_dir: Path | None = None) -> Diagnostic:
    with pytest.raises(SpecError) as info:
        read(text, spec_dir, data_dir)
    (diagnostic,) = info.value.diagnostics
    return diagnostic


def at(diagnostic: Diagnostic) -> tuple[int, int]:
    assert diagnostic.location is not None
    assert diagnostic.location.file == "spec.yaml"
    return diagnostic.location.line, diagnostic.location.col


# -- dataset: the real MNIST files ------------------------------------------------


def _mnist_idx_dir(root: Path, folder: str, name: str = "mnist") -> Path:
    """A data dir whose `folder`/ holds (links to) the four idx files of `name`."""
    target = root / folder
    target.mkdir(parents=True)
    for file in IDX_FILES:
        os.symlink(SHARED_DATA / name / file, target / file)
    return root


@needs_shared_data
def test_mnist_npz_and_idx_files_give_identical_arrays(tmp_path):
    from_npz = read("source: {dataset: mnist}", tmp_path, SHARED_DATA)
    idx_dir = _mnist_idx_dir(tmp_path / "idx", "mnist")
    from_idx = read("source: {dataset: mnist}", tmp_path, idx_dir)
    assert "mnist.npz" in from_npz.description
    assert "60,000 train, 10,000 test" in from_npz.description
    assert str(idx_dir / "mnist") in from_idx.description
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = from_npz.splits[split]["x"], from_npz.splits[split]["y"]
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.uint8
        np.testing.assert_array_equal(x, from_idx.splits[split]["x"])
        np.testing.assert_array_equal(y, from_idx.splits[split]["y"])
    assert from_npz.splits["train"]["y"][:5].tolist() == [5, 0, 4, 1, 9]
    assert from_idx.splits["train"]["x"].flags.writeable


@needs_shared_data
def test_fashion_mnist_from_its_idx_folder_via_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KGRAPH_DATA_DIR", str(SHARED_DATA))
    data = read("source: {dataset: fashion_mnist}", tmp_path)
    assert list(data.splits) == ["train", "test"]
    assert data.splits["train"]["x"].shape == (60000, 28, 28)
    assert data.splits["test"]["y"].shape == (10000,)
    assert data.splits["train"]["y"][0] == 9  # an ankle boot, not MNIST's 5
    assert sorted(np.unique(data.splits["test"]["y"]).tolist()) == list(range(10))


@needs_shared_data
def test_fashion_mnist_folder_may_be_spelled_with_an_underscore(tmp_path):
    data_dir = _mnist_idx_dir(tmp_path / "d", "fashion_mnist", "fashion-mnist")
    data = read("source: {dataset: fashion_mnist}", tmp_path, data_dir)
    assert data.splits["train"]["y"][0] == 9


@needs_shared_data
def test_idx_files_at_the_top_of_the_data_dir_are_not_mnist(tmp_path):
    # MNIST and Fashion-MNIST share file names: only a named folder says which it is
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    for file in IDX_FILES:
        os.symlink(SHARED_DATA / "mnist" / file, data_dir / file)
    diagnostic = problem("source: {dataset: mnist}", tmp_path, data_dir)
    assert diagnostic.code == "data-missing"


@needs_shared_data
def test_dataset_found_in_the_keras_cache(tmp_path):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir()
    os.symlink(SHARED_DATA / "mnist" / "mnist.npz", cache / "mnist.npz")
    data = read("source: {dataset: mnist}", tmp_path, tmp_path / "no-such-dir")
    assert str(cache / "mnist.npz") in data.description


# -- dataset: not available offline ----------------------------------------------


def test_missing_dataset_offline_names_the_files_and_folders(tmp_path):
    data_dir = tmp_path / "data"
    diagnostic = problem("source:\n  dataset: mnist\n", tmp_path, data_dir)
    assert diagnostic.code == "data-missing"
    assert diagnostic.message == "dataset 'mnist' is not available offline"
    assert at(diagnostic) == (2, 12)
    assert diagnostic.path == "train.data.source.dataset"
    hint = diagnostic.hint
    assert "mnist.npz" in hint and "idx .gz files in a mnist/ folder" in hint
    assert "--data-dir" in hint and "$KGRAPH_DATA_DIR" in hint
    assert str(data_dir) in hint and str(data_dir / "mnist") in hint
    assert str(tmp_path / "keras_home" / "datasets") in hint


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("fashion_mnist", "fashion-mnist/"),
        ("cifar10", "cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python.tar.gz"),
        ("imdb", "imdb.npz"),
        ("reuters", "reuters.npz"),
        ("boston_housing", "boston_housing.npz"),
    ],
)
def test_every_dataset_says_which_file_it_needs(tmp_path, name, file):
    diagnostic = problem(f"source: {{dataset: {name}}}", tmp_path)
    assert diagnostic.code == "data-missing"
    assert name in diagnostic.message
    assert file in diagnostic.hint


def test_partial_idx_folder_names_the_missing_files(tmp_path):
    (tmp_path / "d" / "mnist").mkdir(parents=True)
    (tmp_path / "d" / "mnist" / IDX_FILES[0]).write_bytes(b"")
    diagnostic = problem("source: {dataset: mnist}", tmp_path, tmp_path / "d")
    assert diagnostic.code == "data"
    assert "only 1 of the four" in diagnostic.message
    assert IDX_FILES[3] in diagnostic.hint


def test_corrupted_dataset_file(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    diagnostic = problem("source:\n  dataset: mnist\n", tmp_path, tmp_path)
    assert diagnostic.code == "data"
    assert f"cannot read mnist from {tmp_path / 'mnist.npz'}" in diagnostic.message
    assert at(diagnostic) == (2, 12)


def test_a_keras_dataset_npz_without_its_arrays(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    diagnostic = problem("source:\n  dataset: mnist\n", tmp_path, tmp_path)
    assert diagnostic.code == "data"
    assert "mnist.npz lacks the arrays y_train, x_test, y_test" in diagnostic.message
    assert "replace it with" in diagnostic.hint


def test_a_keras_dataset_npz_past_the_data_limit_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("KGRAPH_MAX_DATA_GB", "0.000001")
    arrays = {k: np.zeros((20, 28, 28), np.uint8) for k in ("x_train", "x_test")}
    np.savez(tmp_path / "mnist.npz", **arrays, y_train=np.zeros(20), y_test=np.zeros(20))
    diagnostic = problem("source:\n  dataset: mnist\n", tmp_path, tmp_path)
    assert diagnostic.code == "data"
    assert "more than the data limit of 1,000 bytes" in diagnostic.message
    assert "KGRAPH_MAX_DATA_GB" in diagnostic.hint


def test_truncated_idx_file(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
    for file in IDX_FILES:
        with gzip.open(folder / file, "wb") as f:
            f.write(header + bytes(100))
    diagnostic = problem("source: {dataset: mnist}", tmp_path, tmp_path)
    assert diagnostic.code == "data"
    assert "train-images-idx3-ubyte.gz" in diagnostic.message


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("{dataset: mnist, num_words: 10}", "unknown-key", "'num_words' does not apply"),
        ("{dataset: cifar100, label_mode: medium}", "type", "label_mode must be fine or coarse"),
        ("{dataset: imdb, maxlen: 0}", "type", "maxlen must be an integer >= 1"),
        ("{dataset: imdb, num_words: ten}", "type", "num_words must be an integer"),
    ],
)
def test_bad_dataset_options(tmp_path, text, code, message):
    diagnostic = problem(f"source: {text}", tmp_path)
    assert diagnostic.code == code
    assert message in diagnostic.message


# -- dataset: synthetic files in Keras's formats ----------------------------------


def _cifar_pickle(path: Path, images: np.ndarray, labels: dict[str, list[int]]) -> None:
    """A batch as CIFAR distributes it: a pickled dict, keys bytes, images (n, 3072).

    (CIFAR's files are Python 2 pickles; protocol 3 keeps the array data as bytes too,
    without the _codecs global protocol 2 adds under Python 3.)
    """
    batch = {b"data": images.reshape(len(images), 3072)}
    batch.update({key.encode(): value for key, value in labels.items()})
    path.write_bytes(pickle.dumps(batch, protocol=3))


def _tar(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


@pytest.fixture
def cifar10_files(tmp_path) -> tuple[Path, list[np.ndarray], list[list[int]]]:
    rng = np.random.default_rng(0)
    folder = tmp_path / "build" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels = [], []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x = rng.integers(0, 256, size=(2 + i % 2, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, size=len(x)).tolist()
        _cifar_pickle(folder / name, x, {"labels": y})
        images.append(x)
        labels.append(y)
    (tmp_path / "data").mkdir()
    _tar(folder, tmp_path / "data" / "cifar-10-python.tar.gz")
    return folder, images, labels


def test_cifar10_archive_like_keras(tmp_path, cifar10_files):
    _, images, labels = cifar10_files
    data = read("source: {dataset: cifar10}", tmp_path, tmp_path / "data")
    # Keras: (n, 3, 32, 32) batches transposed to channels-last, labels (n, 1) uint8
    expected_x = np.concatenate(images[:5]).transpose(0, 2, 3, 1)
    expected_y = np.array(sum(labels[:5], []), dtype=np.uint8).reshape(-1, 1)
    train, test = data.splits["train"], data.splits["test"]
    assert train["x"].dtype == np.uint8 and train["x"].shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(train["x"], expected_x)
    assert train["y"].dtype == np.uint8 and train["y"].shape == (12, 1)
    np.testing.assert_array_equal(train["y"], expected_y)
    np.testing.assert_array_equal(test["x"], images[5].transpose(0, 2, 3, 1))
    assert test["y"].dtype == np.uint8
    np.testing.assert_array_equal(test["y"][:, 0], labels[5])
    assert "12 train, 3 test" in data.description


def test_cifar10_extracted_folder_in_the_keras_cache(tmp_path, cifar10_files):
    folder, images, _ = cifar10_files
    cache = tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py-target"
    cache.mkdir(parents=True)
    folder.rename(cache / folder.name)
    data = read("source: {dataset: cifar10}", tmp_path)
    np.testing.assert_array_equal(data.splits["test"]["x"], images[5].transpose(0, 2, 3, 1))


def test_cifar10_archive_without_a_batch(tmp_path, cifar10_files):
    folder, _, _ = cifar10_files
    (folder / "data_batch_3").unlink()
    _tar(folder, tmp_path / "data" / "cifar-10-python.tar.gz")
    diagnostic = problem("source: {dataset: cifar10}", tmp_path, tmp_path / "data")
    assert diagnostic.code == "data"
    assert "lacks data_batch_3" in diagnostic.message


def test_cifar_pickles_cannot_run_code(tmp_path, cifar10_files):
    folder, _, _ = cifar10_files
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": os.getcwd}, protocol=2))
    _tar(folder, tmp_path / "data" / "cifar-10-python.tar.gz")
    diagnostic = problem("source: {dataset: cifar10}", tmp_path, tmp_path / "data")
    assert "refusing to load" in diagnostic.message


def _ragged(rng: np.random.Generator, n: int, vocabulary: int) -> np.ndarray:
    """An object array of lists of word indices, as imdb.npz and reuters.npz hold."""
    result = np.empty(n, dtype=object)
    for i in range(n):
        result[i] = rng.integers(1, vocabulary, size=int(rng.integers(1, 15))).tolist()
    return result


@pytest.fixture
def imdb_file(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "data" / "imdb.npz"
    path.parent.mkdir(exist_ok=True)
    np.savez(
        path,
        x_train=_ragged(rng, 12, 40),
        y_train=rng.integers(0, 2, 12),
        x_test=_ragged(rng, 8, 40),
        y_test=rng.integers(0, 2, 8),
    )
    return path


def _keras_imdb(path: Path, **kwargs) -> tuple:
    """What Keras's own logic gives for imdb (shuffle seed 113, start 1, oov 2, index_from 3)."""
    with np.load(path, allow_pickle=True) as f:
        x_train, y_train, x_test, y_test = (
            f[k] for k in ("x_train", "y_train", "x_test", "y_test")
        )
    rng = np.random.RandomState(113)
    parts = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        indices = np.arange(len(x))
        rng.shuffle(indices)
        parts.append((x[indices], y[indices]))
    xs = [[1] + [w + 3 for w in seq] for part in parts for seq in part[0]]
    num_words = kwargs.get("num_words") or max(max(s) for s in xs)
    skip_top = kwargs.get("skip_top", 0)
    xs = [[w if skip_top <= w < num_words else 2 for w in s] for s in xs]
    n = len(parts[0][0])
    return (xs[:n], parts[0][1]), (xs[n:], parts[1][1])


@pytest.mark.parametrize(
    ("options", "kwargs"),
    [("", {}), (", num_words: 20", {"num_words": 20}), (", skip_top: 5", {"skip_top": 5})],
)
def test_imdb_like_keras(tmp_path, imdb_file, options, kwargs):
    data = read(f"source: {{dataset: imdb{options}}}", tmp_path, imdb_file.parent)
    (x_train, y_train), (x_test, y_test) = _keras_imdb(imdb_file, **kwargs)
    train, test = data.splits["train"], data.splits["test"]
    assert train["x"].dtype == object and train["x"].shape == (12,)
    assert [list(s) for s in train["x"]] == x_train
    assert [list(s) for s in test["x"]] == x_test
    assert all(type(w) is int for w in train["x"][0])
    np.testing.assert_array_equal(train["y"], y_train)
    np.testing.assert_array_equal(test["y"], y_test)


def test_imdb_maxlen_pads_and_cuts_at_the_start(tmp_path, imdb_file):
    data = read("source: {dataset: imdb, maxlen: 6}", tmp_path, imdb_file.parent)
    (x_train, _), _ = _keras_imdb(imdb_file)
    x = data.splits["train"]["x"]
    assert x.shape == (12, 6) and x.dtype == np.int32
    for row, seq in zip(x, x_train, strict=True):
        kept = seq[-6:]
        assert row.tolist() == [0] * (6 - len(kept)) + kept
    assert "padded or cut to 6" in data.description


def test_reuters_and_boston_housing_split_like_keras(tmp_path):
    rng = np.random.default_rng(2)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    xs, ys = _ragged(rng, 20, 30), rng.integers(0, 46, 20)
    np.savez(data_dir / "reuters.npz", x=xs, y=ys)
    x, y = rng.normal(size=(21, 13)), rng.normal(size=21)
    np.savez(data_dir / "boston_housing.npz", x=x, y=y)

    order = np.arange(20)
    np.random.RandomState(113).shuffle(order)
    reuters = read("source: {dataset: reuters}", tmp_path, data_dir).splits
    assert len(reuters["train"]["x"]) == 16 and len(reuters["test"]["x"]) == 4
    np.testing.assert_array_equal(reuters["train"]["y"], ys[order][:16])
    assert reuters["test"]["x"][0][0] == 1  # start_char

    order = np.arange(21)
    np.random.RandomState(113).shuffle(order)
    boston = read("source: {dataset: boston_housing}", tmp_path, data_dir).splits
    cut = int(21 * 0.8)
    np.testing.assert_array_equal(boston["train"]["x"], x[order][:cut])
    np.testing.assert_array_equal(boston["test"]["y"], y[order][cut:])
    assert boston["train"]["x"].dtype == np.float64


@pytest.fixture
def cifar100_dirs(tmp_path) -> tuple[Path, Path]:
    """(a data dir with cifar-100-python.tar.gz, the folder it was made from)."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "build" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        labels = {
            "fine_labels": rng.integers(0, 100, n).tolist(),
            "coarse_labels": rng.integers(0, 20, n).tolist(),
        }
        _cifar_pickle(folder / name, x, labels)
    (tmp_path / "data").mkdir()
    _tar(folder, tmp_path / "data" / "cifar-100-python.tar.gz")
    return tmp_path / "data", folder.parent


# -- dataset: compared with Keras's own loaders (their downloads patched out) -------


@pytest.fixture
def keras_datasets(monkeypatch):
    """Keras's dataset modules, whose get_file returns our local files (no download)."""
    from kgraph_cli.tf import import_keras

    import_keras()
    import keras.src.datasets as modules

    def patch(module_name: str, resolve) -> None:
        module = getattr(modules, module_name)
        monkeypatch.setattr(module, "get_file", lambda fname=None, **kw: str(resolve(fname)))

    return patch


@pytest.mark.tf
@pytest.mark.parametrize("options", ["", ", num_words: 20, skip_top: 4"])
def test_imdb_and_reuters_equal_keras_loaders(tmp_path, imdb_file, keras_datasets, options):
    import keras

    rng = np.random.default_rng(4)
    np.savez(imdb_file.parent / "reuters.npz", x=_ragged(rng, 25, 30), y=rng.integers(0, 46, 25))
    keras_datasets("imdb", lambda name: imdb_file.parent / name)
    keras_datasets("reuters", lambda name: imdb_file.parent / name)
    kwargs = {"num_words": 20, "skip_top": 4} if options else {}
    for name in ("imdb", "reuters"):
        ours = read(f"source: {{dataset: {name}{options}}}", tmp_path, imdb_file.parent)
        theirs = getattr(keras.datasets, name).load_data(**kwargs)
        for split, (x, y) in zip(("train", "test"), theirs, strict=True):
            assert [list(s) for s in ours.splits[split]["x"]] == [list(s) for s in x]
            np.testing.assert_array_equal(ours.splits[split]["y"], y)
            assert ours.splits[split]["y"].dtype == y.dtype


@pytest.mark.tf
@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_cifar100_equals_keras_loader(tmp_path, cifar100_dirs, keras_datasets, label_mode):
    import keras

    data_dir, extracted = cifar100_dirs
    keras_datasets("cifar100", lambda name: extracted)
    ours = read(f"source: {{dataset: cifar100, label_mode: {label_mode}}}", tmp_path, data_dir)
    theirs = keras.datasets.cifar100.load_data(label_mode=label_mode)
    for split, (x, y) in zip(("train", "test"), theirs, strict=True):
        for field, expected in (("x", x), ("y", y)):
            got = ours.splits[split][field]
            assert got.shape == expected.shape and got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


@pytest.mark.tf
def test_boston_housing_equals_keras_loader(tmp_path, keras_datasets):
    import keras

    rng = np.random.default_rng(5)
    np.savez(tmp_path / "boston_housing.npz", x=rng.normal(size=(33, 13)), y=rng.normal(size=33))
    keras_datasets("boston_housing", lambda name: tmp_path / name)
    ours = read("source: {dataset: boston_housing}", tmp_path, tmp_path)
    theirs = keras.datasets.boston_housing.load_data()
    for split, (x, y) in zip(("train", "test"), theirs, strict=True):
        np.testing.assert_array_equal(ours.splits[split]["x"], x)
        np.testing.assert_array_equal(ours.splits[split]["y"], y)


@pytest.mark.tf
def test_download_fallback_when_online(tmp_path, monkeypatch):
    import keras

    monkeypatch.delenv("KGRAPH_OFFLINE")
    calls = []

    def load_data(**kwargs):
        calls.append(kwargs)
        x = np.empty(3, dtype=object)
        x[:] = [[1, 5], [1, 6, 7, 8], [1]]
        return (x, np.array([0, 1, 2])), (x[:1], np.array([3]))

    monkeypatch.setattr(keras.datasets.reuters, "load_data", load_data)
    data = read("source: {dataset: reuters, num_words: 50, maxlen: 3}", tmp_path)
    assert calls == [{"num_words": 50, "skip_top": 0}]
    assert data.splits["train"]["x"].tolist() == [[0, 1, 5], [6, 7, 8], [0, 0, 1]]
    assert "downloaded by Keras" in data.description


@pytest.mark.tf
def test_failed_download_is_data_missing(tmp_path, monkeypatch):
    import keras

    monkeypatch.delenv("KGRAPH_OFFLINE")

    def load_data(**kwargs):
        raise Exception("URL fetch failure on https://...: None -- no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", load_data)
    diagnostic = problem("source:\n  dataset: mnist\n", tmp_path)
    assert diagnostic.code == "data-missing"
    assert "not available offline and could not be downloaded (URL fetch failure" in (
        diagnostic.message
    )
    assert at(diagnostic) == (2, 12)
    assert "mnist.npz" in diagnostic.hint


def test_generated_is_not_read_here(tmp_path):
    with pytest.raises(ValueError, match="generated"):
        read("source: {generated: 10}", tmp_path)


# -- npz ------------------------------------------------------------------------


def test_imdb_file_without_a_split(tmp_path):
    np.savez(tmp_path / "imdb.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2))
    diagnostic = problem("source: {dataset: imdb}", tmp_path, tmp_path)
    assert (
        diagnostic.message == f"cannot read imdb from {tmp_path / 'imdb.npz'}: it has no 'x_test'"
    )
    assert "imdb.npz" in diagnostic.hint


def test_npz_pairs_become_splits(tmp_path):
    np.savez(
        tmp_path / "d.npz",
        x_train=np.zeros((4, 2)),
        y_train=np.arange(4),
        x_test=np.ones((2, 2)),
        y_test=np.arange(2),
        x_val=np.ones((1, 2)),
        y_validation=np.arange(1),
        weights=np.ones(4),
    )
    data = read("source: {npz: d.npz}", tmp_path)
    assert list(data.splits) == ["train", "validation", "test"]
    assert sorted(data.splits["train"]) == ["weights", "x", "y"]
    assert sorted(data.splits["validation"]) == ["x", "y"]
    np.testing.assert_array_equal(data.splits["test"]["x"], np.ones((2, 2)))
    assert "4 train, 1 validation, 2 test" in data.description


def test_npz_with_plain_keys_and_ragged_sequences(tmp_path):
    rng = np.random.default_rng(6)
    np.savez(tmp_path / "d.npz", tokens=_ragged(rng, 5, 9), label=np.arange(5))
    data = read("source: {npz: d.npz}", tmp_path)
    assert list(data.splits) == ["train"]
    assert data.splits["train"]["tokens"].dtype == object


def test_npz_missing_file_says_the_resolved_path(tmp_path):
    (tmp_path / "specs").mkdir()
    diagnostic = problem("source:\n  npz: ../data/d.npz\n", tmp_path / "specs")
    assert diagnostic.code == "data"
    assert diagnostic.message == f"npz file not found: {tmp_path / 'data' / 'd.npz'}"
    assert at(diagnostic) == (2, 8)
    assert diagnostic.path == "train.data.source.npz"
    assert "relative paths start at the spec's folder" in diagnostic.hint


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_npz_corrupted_or_truncated(tmp_path, damage):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=np.arange(1000), y=np.arange(1000))
    raw = path.read_bytes()
    path.write_bytes(b"\x00garbage" * 10 if damage == "garbage" else raw[: len(raw) // 2])
    diagnostic = problem("source:\n  npz: d.npz\n", tmp_path)
    assert diagnostic.code == "data"
    assert diagnostic.message.startswith(f"{path} is not a valid .npz file (")
    assert at(diagnostic) == (2, 8)


def test_npz_object_arrays_cannot_run_code(tmp_path):
    evil = np.empty(2, dtype=object)
    evil[:] = [complex(1, 2), os.getcwd]
    np.savez(tmp_path / "d.npz", x=evil)
    diagnostic = problem("source: {npz: d.npz}", tmp_path)
    assert "refusing to load" in diagnostic.message


def test_npz_fields_with_different_lengths(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((5, 2)), y_train=np.zeros(4))
    diagnostic = problem("source:\n  npz: d.npz\n", tmp_path)
    assert diagnostic.code == "data"
    assert "split 'train' have different numbers of samples: x 5, y 4" in diagnostic.message
    assert at(diagnostic) == (2, 8)


def test_npz_keys_that_collide(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros(3), x_train=np.zeros(3))
    diagnostic = problem("source: {npz: d.npz}", tmp_path)
    assert "'x' and 'x_train' are both field 'x' of split 'train'" in diagnostic.message


# -- npy ------------------------------------------------------------------------


def test_npy_fields(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.save(tmp_path / "y.npy", np.array(["a", "b", "c"]))
    data = read("source: {npy: {x: x.npy, y: y.npy}}", tmp_path)
    assert data.splits["train"]["x"].shape == (3, 4)
    assert data.splits["train"]["y"].tolist() == ["a", "b", "c"]
    assert data.description == f"npy x=x.npy, y=y.npy in {tmp_path} (3 train)"


def test_npy_problems_point_at_the_field(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 4)))
    text = "source:\n  npy:\n    x: x.npy\n    y: y.npy\n"
    diagnostic = problem(text, tmp_path)
    assert diagnostic.message == f".npy file not found: {tmp_path / 'y.npy'}"
    assert at(diagnostic) == (4, 8)
    assert diagnostic.path == "train.data.source.npy.y"

    obj = np.empty(3, dtype=object)
    obj[:] = [[1], [2, 3], []]
    np.save(tmp_path / "y.npy", obj, allow_pickle=True)
    diagnostic = problem(text, tmp_path)
    assert "holds Python objects" in diagnostic.message and at(diagnostic) == (4, 8)

    (tmp_path / "y.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    diagnostic = problem(text, tmp_path)
    assert "is not a valid .npy file" in diagnostic.message

    np.save(tmp_path / "y.npy", np.zeros(2))
    diagnostic = problem(text, tmp_path)
    assert "different numbers of samples: x 3, y 2" in diagnostic.message


def test_npy_must_be_a_mapping(tmp_path):
    diagnostic = problem("source: {npy: x.npy}", tmp_path)
    assert diagnostic.code == "type"
    assert "mapping of field name to .npy file" in diagnostic.message


# -- csv ------------------------------------------------------------------------


def test_csv_columns_become_typed_fields(tmp_path):
    (tmp_path / "d.csv").write_text(
        "id,height, weight ,kind,score\n1,1.5,70,cat,\n2,2,,dog,3\n3,-0.5,1e2,cat,4\n"
    )
    data = read("source: {csv: d.csv}", tmp_path)
    fields = data.splits["train"]
    assert list(fields) == ["id", "height", "weight", "kind", "score"]
    assert fields["id"].dtype == np.int64 and fields["id"].tolist() == [1, 2, 3]
    assert fields["height"].dtype == np.float32
    np.testing.assert_allclose(fields["height"], [1.5, 2, -0.5])
    assert fields["weight"].dtype == np.float32 and np.isnan(fields["weight"][1])
    assert fields["score"].dtype == np.float32  # integers, but one cell is empty
    assert fields["kind"].tolist() == ["cat", "dog", "cat"]
    assert "5 columns (4 numeric, 1 text), 3 rows" in data.description


def test_tsv_and_other_delimiters(tmp_path):
    (tmp_path / "d.tsv").write_text('a\tb\n1\t"x,y"\n2\tz\n')
    fields = read("source: {csv: d.tsv}", tmp_path).splits["train"]
    assert fields["b"].tolist() == ["x,y", "z"]
    (tmp_path / "d.csv").write_text("a;b\n1;2\n")
    fields = read("source: {csv: d.csv, delimiter: ';'}", tmp_path).splits["train"]
    assert fields["b"].tolist() == [2]


def test_csv_row_with_the_wrong_number_of_columns(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c\n1,2,3\n\n4,5\n")
    diagnostic = problem("source:\n  csv: d.csv\n", tmp_path)
    assert diagnostic.code == "data"
    assert diagnostic.message == f"line 4 of {tmp_path / 'd.csv'} has 2 columns, the header has 3"
    assert at(diagnostic) == (2, 8)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"a,b\n", "has a header row but no data rows"),
        (b"a,b,a\n1,2,3\n", "two columns named 'a' (columns 1 and 3)"),
        (b"a\n\xff\xfe\n", "is not UTF-8 text"),
        (b"1,2\n3,4\n", "the first line of"),
    ],
)
def test_bad_csv_files(tmp_path, content, message):
    (tmp_path / "d.csv").write_bytes(content)
    diagnostic = problem("source: {csv: d.csv}", tmp_path)
    assert diagnostic.code == "data"
    assert message in diagnostic.message


def test_csv_delimiter_must_be_one_character(tmp_path):
    (tmp_path / "d.csv").write_text("a\n1\n")
    diagnostic = problem("source:\n  csv: d.csv\n  delimiter: ';;'\n", tmp_path)
    assert diagnostic.code == "type" and at(diagnostic) == (3, 14)


# -- images ---------------------------------------------------------------------


def _image(path: Path, size: tuple[int, int], color: tuple[int, ...], mode: str = "RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_images_one_folder_per_class(tmp_path):
    root = tmp_path / "pics"
    _image(root / "dogs" / "a.png", (10, 6), (0, 0, 255))
    _image(root / "cats" / "b.jpg", (8, 8), (255, 0, 0))
    _image(root / "cats" / "nested" / "c.bmp", (4, 4), (0, 255, 0))
    _image(root / "cats" / "d.gif", (5, 5), 3, mode="P")
    (root / "cats" / "notes.txt").write_text("not an image")
    data = read("source: {images: pics, image_size: [4, 6]}", tmp_path)
    x, y = data.splits["train"]["x"], data.splits["train"]["y"]
    assert x.shape == (4, 4, 6, 3) and x.dtype == np.uint8
    assert y.dtype == np.int32 and y.tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(x[0, 2, 3], [255, 0, 0], atol=8)  # cats/b.jpg: JPEG, near red
    assert x[3, 0, 0].tolist() == [0, 0, 255]  # dogs/a.png
    assert "4 images of 4x6 rgb, 2 classes: cats, dogs" in data.description


def test_images_grayscale_and_rgba(tmp_path):
    _image(tmp_path / "pics" / "a" / "1.png", (3, 3), (10, 20, 30))
    gray = read("source: {images: pics, image_size: [3, 3], color_mode: grayscale}", tmp_path)
    assert gray.splits["train"]["x"].shape == (1, 3, 3, 1)
    rgba = read("source: {images: pics, image_size: [2, 2], color_mode: rgba}", tmp_path)
    assert rgba.splits["train"]["x"].shape == (1, 2, 2, 4)
    assert rgba.splits["train"]["x"][0, 0, 0].tolist() == [10, 20, 30, 255]


def test_images_default_size(tmp_path):
    _image(tmp_path / "pics" / "a" / "1.png", (3, 3), (10, 20, 30))
    assert read("source: {images: pics}", tmp_path).splits["train"]["x"].shape == (1, 256, 256, 3)


def test_images_problems(tmp_path):
    root = tmp_path / "pics"
    _image(root / "loose.png", (3, 3), (0, 0, 0))
    diagnostic = problem("source:\n  images: pics\n", tmp_path)
    assert diagnostic.message == f"{root} has no class sub-folders"
    assert "images directly in the folder are ignored" in diagnostic.hint
    assert at(diagnostic) == (2, 11)

    (root / "cats").mkdir()
    (root / "cats" / "readme.txt").write_text("")
    diagnostic = problem("source: {images: pics}", tmp_path)
    assert "hold no images" in diagnostic.message

    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    diagnostic = problem("source: {images: pics}", tmp_path)
    assert diagnostic.message.startswith(f"cannot read image {root / 'cats' / 'broken.png'}")

    diagnostic = problem("source: {images: missing}", tmp_path)
    assert diagnostic.message == f"images folder not found: {tmp_path / 'missing'}"

    diagnostic = problem("source:\n  images: pics\n  image_size: [0, 3]\n", tmp_path)
    assert diagnostic.code == "type" and at(diagnostic) == (3, 15)


def test_images_past_the_data_limit_are_refused_before_reading(tmp_path):
    _image(tmp_path / "pics" / "a" / "1.png", (3, 3), (10, 20, 30))
    diagnostic = problem("source:\n  images: pics\n  image_size: [100000, 100000]\n", tmp_path)
    assert diagnostic.code == "data" and at(diagnostic) == (2, 11)
    assert diagnostic.message == (
        f"{tmp_path / 'pics'} holds 1 image of 100000x100000x3 bytes when read (30.0 GB), "
        "more than the data limit of 4.0 GB"
    )
    assert "KGRAPH_MAX_DATA_GB" in diagnostic.hint


# -- tfrecord -------------------------------------------------------------------


def _write_tfrecord(
    path: Path, n: int, compression: str | None = None, overrides: dict | None = None
) -> None:
    """n records with x (3 floats), y (an int) and name (bytes); overrides[i] replaces
    features of record i (None removes one)."""
    import tensorflow as tf

    options = tf.io.TFRecordOptions(compression_type=compression) if compression else None
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for i in range(n):
            feature = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[i, i + 0.5, 2.0])),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"r%d" % i])),
            }
            feature.update((overrides or {}).get(i, {}))
            feature = {k: v for k, v in feature.items() if v is not None}
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


TFRECORD = """\
source:
  tfrecord: {files}
  features:
    x: {{shape: [3], dtype: float32}}
    y: {{shape: [], dtype: int64}}
    name: {{shape: [], dtype: string}}
{extra}"""


def tfrecord_spec(files: str = "d.tfrecord", extra: str = "") -> str:
    return TFRECORD.format(files=files, extra=extra)


@pytest.mark.tf
def test_tfrecord_features(tmp_path):
    from kgraph_cli.tf import import_keras

    import_keras()
    _write_tfrecord(tmp_path / "d.tfrecord", 3)
    _write_tfrecord(tmp_path / "e.tfrecord.gz", 2, "GZIP")
    data = read(tfrecord_spec(), tmp_path)
    fields = data.splits["train"]
    assert fields["x"].shape == (3, 3) and fields["x"].dtype == np.float32
    assert fields["y"].tolist() == [0, 1, 2] and fields["y"].dtype == np.int64
    assert fields["name"].tolist() == [b"r0", b"r1", b"r2"]
    assert "3 records" in data.description

    data = read(tfrecord_spec("e.tfrecord.gz", "  compression: GZIP\n"), tmp_path)
    assert data.splits["train"]["y"].tolist() == [0, 1]

    _write_tfrecord(tmp_path / "f.tfrecord", 2)
    data = read(tfrecord_spec("[d.tfrecord, f.tfrecord]"), tmp_path)
    assert data.splits["train"]["y"].tolist() == [0, 1, 2, 0, 1]


@pytest.mark.tf
def test_tfrecord_problems(tmp_path):
    import tensorflow as tf

    from kgraph_cli.tf import import_keras

    import_keras()
    path = tmp_path / "d.tfrecord"
    _write_tfrecord(path, 3, overrides={2: {"y": None}})
    diagnostic = problem(tfrecord_spec(), tmp_path)
    assert diagnostic.code == "data"
    assert diagnostic.message == f"record 2 has no feature 'y' in {path}"
    assert at(diagnostic) == (5, 8)
    assert diagnostic.path == "train.data.source.features.y"

    wrong = tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))
    _write_tfrecord(path, 2, overrides={1: {"x": wrong}})
    diagnostic = problem(tfrecord_spec(), tmp_path)
    assert "feature 'x' of record 1 has 1 value(s), but shape [3] needs 3" in diagnostic.message
    assert at(diagnostic) == (4, 8)

    _write_tfrecord(path, 2, overrides={0: {"y": wrong}})
    diagnostic = problem(tfrecord_spec(), tmp_path)
    assert "feature 'y' of record 0 holds float values, not int64" in diagnostic.message

    _write_tfrecord(path, 3)
    path.write_bytes(path.read_bytes()[:-7])
    diagnostic = problem(tfrecord_spec(), tmp_path)
    assert diagnostic.message.startswith(f"{path} is not a valid TFRecord file (")
    assert at(diagnostic) == (2, 13)

    _write_tfrecord(path, 2, "GZIP")
    diagnostic = problem(tfrecord_spec(), tmp_path)
    assert "add `compression: GZIP`" in diagnostic.hint

    path.write_bytes(b"")
    diagnostic = problem(tfrecord_spec(), tmp_path)
    assert "holds no records" in diagnostic.message

    diagnostic = problem(tfrecord_spec("[d.tfrecord, nope.tfrecord]"), tmp_path)
    assert diagnostic.message == f"TFRecord file not found: {tmp_path / 'nope.tfrecord'}"
    assert at(diagnostic) == (2, 26)
    assert diagnostic.path == "train.data.source.tfrecord[1]"
