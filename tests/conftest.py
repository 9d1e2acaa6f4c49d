"""Shared test fixtures: repo paths, an in-process CLI runner with a pinned width."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
SHARED_DATA = REPO.parent / "shared" / "data"
# The example specs whose layers come from a plugin: spec name -> plugins to load.
SPEC_PLUGINS = {
    "custom_dense": [str(SPECS / "plugins" / "my_layers.py")],
    "vae": [str(SPECS / "plugins" / "vae_layers.py")],
}


# A `train:` section for specs with one input and a 2-class output: a few
# generated samples, one quick epoch.
GENERATED_TRAIN = """\
train:
  data:
    source: {generated: 32}
  compile:
    optimizer: sgd
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  fit: {batch_size: 16, epochs: 1, seed: 1}
"""


SWEEP_SKIPPED = "the keras.applications sweep runs with `make test-apps` (pytest -m apps)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `apps` (the keras.applications sweeps) run when the run
    asks for them: `-m apps` (not `-m "not apps"`), or the test named on the
    command line. `make test` (and `pytest -m tf`) leave them out."""
    markexpr = config.getoption("markexpr", "") or ""
    if re.search(r"(?<!not )\bapps\b", markexpr):
        return
    skip = pytest.mark.skip(reason=SWEEP_SKIPPED)
    for item in items:
        named = any(item.originalname in str(arg) for arg in config.args if "::" in str(arg))
        if "apps" in item.keywords and not named:
            item.add_marker(skip)


def offline_keras_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No downloads, a home and Keras home of the test's own, no data dir from
    the environment (for tests of what kgraph finds offline)."""
    monkeypatch.setenv("KGRAPH_OFFLINE", "1")
    monkeypatch.delenv("KGRAPH_DATA_DIR", raising=False)
    (tmp_path / "home").mkdir()
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture(autouse=True)
def _stable_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich reads these: a fixed width and no colour make output comparable.
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec file from text and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def invoke(args: list[Any], exit_code: int = 0) -> Any:
    """Run kgraph in-process; assert the exit code and that nothing crashed."""
    from kgraph_cli.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"kgraph crashed: {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output
    assert result.exit_code == exit_code, (
        f"exit {result.exit_code}, expected {exit_code}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def interrupt_training(monkeypatch: pytest.MonkeyPatch, after_epoch: int) -> list[int]:
    """Make the next `kgraph train` get a Ctrl-C (KeyboardInterrupt) right
    after epoch `after_epoch` (0-based) ends, once; returns the epochs it fired at."""
    import kgraph_cli.train as train_module

    original = train_module.keras_callback
    fired: list[int] = []

    def interrupting(reporter: Any, epochs: int, steps: int | None) -> Any:
        callback = original(reporter, epochs, steps)
        forward = callback.on_epoch_end

        def on_epoch_end(epoch: int, logs: Any = None) -> None:
            forward(epoch, logs)
            if epoch == after_epoch and not fired:
                fired.append(epoch)
                raise KeyboardInterrupt

        callback.on_epoch_end = on_epoch_end
        return callback

    monkeypatch.setattr(train_module, "keras_callback", interrupting)
    return fired


def benchmark_module(name: str) -> Iterator[ModuleType]:
    """benchmarks/NAME.py imported as a module (benchmarks/ is not a package);
    use it from a module-scoped fixture with `yield from`."""
    spec = importlib.util.spec_from_file_location(
        f"kgraph_bench_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
