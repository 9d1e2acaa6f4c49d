"""Every writer keeps what the user had: `--force` replaces only what kgraph
wrote (a file, a run directory, a SavedModel folder), never a folder of the
user's, `.`, a folder above it, `~` or `/`; a path under a file is a clear
error; a replaced run survives a failed run.

The TensorFlow-free writer (`schema`) is tested unmarked; the others build
tiny models.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GENERATED_TRAIN, interrupt_training, invoke

TINY = (
    """\
kgraph: 1
name: tiny
inputs:
  x: {shape: [4]}
layers:
  logits: {type: Dense, units: 2, from: x}
outputs: [logits]
"""
    + GENERATED_TRAIN
)


def user_folder(path: Path) -> dict[str, str]:
    """A folder of the user's: a file and a sub-folder; returns what it holds."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "notes.txt").write_text("precious")
    (path / "sub").mkdir(exist_ok=True)
    (path / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return snapshot(path)


def snapshot(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): (p.read_text() if p.is_file() else "/")
        for p in sorted(path.rglob("*"))
    }


def no_leftovers(folder: Path) -> None:
    """No staging folders or temporary files left beside the outputs."""
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert hidden == [], hidden


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# -- file writers (no TensorFlow) ------------------------------------------------


def test_schema_never_replaces_a_folder_even_with_force(tmp_path: Path) -> None:
    before = user_folder(tmp_path / "mine")
    result = invoke(["schema", "-o", tmp_path / "mine", "--force"], exit_code=2)
    assert "is a folder, not a file" in result.stderr
    assert snapshot(tmp_path / "mine") == before


def test_a_path_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# mine\n")
    result = invoke(["schema", "-o", tmp_path / "README.md" / "schema.json"], exit_code=2)
    assert "README.md' is a file, not a folder" in result.stderr
    deeper = tmp_path / "README.md" / "a" / "b.json"
    assert "is a file, not a folder" in invoke(["schema", "-o", deeper], exit_code=2).stderr
    assert (tmp_path / "README.md").read_text() == "# mine\n"


def test_schema_replaces_a_file_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    out.write_text("old")
    assert "already exists" in invoke(["schema", "-o", out], exit_code=2).stderr
    assert out.read_text() == "old"
    invoke(["schema", "-o", out, "--force"])
    assert json.loads(out.read_text())["title"]
    no_leftovers(tmp_path)


def test_force_never_replaces_a_device_or_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    result = invoke(["schema", "-o", fifo, "--force"], exit_code=2)
    assert "is a FIFO (named pipe), not a regular file" in result.stderr
    assert "--force replaces only regular files" in result.stderr
    assert fifo.is_fifo()
    result = invoke(["schema", "-o", "/dev/null", "--force"], exit_code=2)
    assert "'/dev/null' is a character device, not a regular file" in result.stderr
    assert Path("/dev/null").is_char_device()


def test_a_link_to_a_file_is_replaced_only_with_force(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert "already exists" in invoke(["schema", "-o", tmp_path / "link.json"], exit_code=2).stderr
    invoke(["schema", "-o", tmp_path / "link.json", "--force"])
    assert json.loads((tmp_path / "link.json").read_text())["title"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 300 + ".json", "is 305 bytes long; file systems allow 255"),
        ("a" * 210 + ".json", "is 215 bytes long; kgraph writes names of up to 200 bytes"),
        ("b" * 300 + "/s.json", "is 300 bytes long; file systems allow 255"),
    ],
    ids=["over-the-file-system-limit", "no-room-for-temporaries", "a-folder-name"],
)
def test_an_output_name_too_long_is_a_usage_error(tmp_path: Path, name: str, message: str) -> None:
    result = invoke(["schema", "-o", tmp_path / name], exit_code=2)
    assert message in result.stderr
    assert "choose a shorter" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_longest_output_name_is_written(tmp_path: Path) -> None:
    out = tmp_path / ("a" * 195 + ".json")
    invoke(["schema", "-o", out])
    assert json.loads(out.read_text())["title"]
    no_leftovers(tmp_path)


# -- train --out -----------------------------------------------------------------


@pytest.mark.tf
def test_train_force_refuses_the_current_folder_and_its_parents(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    before = user_folder(work)
    monkeypatch.chdir(work)
    for out in (".", str(work), "..", "sub/.."):
        result = invoke(["train", tiny, "--out", out, "--force", "-q"], exit_code=2)
        assert "current folder" in result.stderr or "above the current" in result.stderr, out
    assert snapshot(work) == before


@pytest.mark.tf
def test_train_force_refuses_home_and_root(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    before = user_folder(home)
    monkeypatch.setenv("HOME", str(home))
    result = invoke(["train", tiny, "--out", home, "--force", "-q"], exit_code=2)
    assert "home folder" in result.stderr
    result = invoke(["save", tiny, "-o", "/", "--force"], exit_code=2)
    assert "root folder" in result.stderr
    assert snapshot(home) == before


@pytest.mark.tf
def test_train_force_refuses_a_folder_of_user_files(tiny: Path, tmp_path: Path) -> None:
    before = user_folder(tmp_path / "mine")
    result = invoke(["train", tiny, "--out", tmp_path / "mine", "--force", "-q"], exit_code=2)
    assert "not a run directory" in result.stderr and "notes.txt" in result.stderr
    assert snapshot(tmp_path / "mine") == before


@pytest.mark.tf
def test_train_force_replaces_a_run_but_not_the_files_added_to_it(
    tiny: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    invoke(["train", tiny, "--out", run, "-q"])
    first = (run / "model.keras").read_bytes()
    (run / "notes.txt").write_text("mine")
    result = invoke(["train", tiny, "--out", run, "--force", "-q"], exit_code=2)
    assert "kgraph did not write: notes.txt" in result.stderr
    (run / "notes.txt").unlink()

    invoke(["train", tiny, "--out", run, "--force", "-q", "--set", "train.fit.seed=2"])
    assert (run / "model.keras").read_bytes() != first
    assert (run / "model.keras").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert run.stat().st_mode & 0o777 == 0o777 & ~_umask()
    no_leftovers(tmp_path)


@pytest.mark.tf
def test_train_out_that_is_a_file(tiny: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# mine\n")
    for out, message in (
        (readme, "is a file, not a run directory"),
        (readme / "run", "not a folder"),
    ):
        result = invoke(["train", tiny, "--out", out, "--force", "-q"], exit_code=2)
        assert message in result.stderr
    assert readme.read_text() == "# mine\n"


@pytest.mark.tf
def test_a_failed_run_leaves_the_replaced_run_as_it_was(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kgraph_cli.train as train_module
    from kgraph_cli.train import TrainingError

    run = tmp_path / "run"
    invoke(["train", tiny, "--out", run, "-q"])
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def failing(*args: Any, **kwargs: Any) -> None:
        raise TrainingError("training failed: a crash halfway")

    monkeypatch.setattr(train_module._Run, "_fit", failing)
    invoke(["train", tiny, "--out", run, "--force", "-q"], exit_code=1)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    no_leftovers(tmp_path)


@pytest.mark.tf
def test_an_interrupted_forced_run_replaces_the_old_one_and_can_resume(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    invoke(["train", tiny, "--out", run, "-q"])
    interrupt_training(monkeypatch, after_epoch=0)
    args = ["train", tiny, "--out", run, "--epochs", "2", "-q"]
    stopped = invoke([*args, "--force"], exit_code=130)
    assert f"--out {run} --resume" in stopped.stderr
    assert (run / "backup").is_dir() and not (run / "model.keras").exists()
    no_leftovers(tmp_path)
    invoke([*args, "--resume"])  # it fired once: this run goes to the end
    assert (run / "model.keras").is_file()


@pytest.mark.tf
def test_callback_files_belong_to_the_run(tiny: Path, tmp_path: Path) -> None:
    spec = tmp_path / "logged.yaml"
    spec.write_text(TINY + "  callbacks:\n    - {type: CSVLogger, filename: logs/epochs.csv}\n")
    run = tmp_path / "run"
    invoke(["train", spec, "--out", run, "-q"])
    assert (run / "logs" / "epochs.csv").is_file()
    assert json.loads((run / "run.json").read_text())["callback_files"] == ["logs"]
    invoke(["train", spec, "--out", run, "-q", "--force"])


# -- save, plot, predict, import ---------------------------------------------------------


@pytest.mark.tf
def test_save_force_replaces_a_savedmodel_but_no_other_folder(tiny: Path, tmp_path: Path) -> None:
    before = user_folder(tmp_path / "somedir")
    result = invoke(["save", tiny, "-o", tmp_path / "somedir", "--force"], exit_code=2)
    assert "not a SavedModel folder" in result.stderr and "notes.txt" in result.stderr
    assert snapshot(tmp_path / "somedir") == before

    exported = tmp_path / "exported"
    invoke(["save", tiny, "-o", exported])
    assert (exported / "saved_model.pb").is_file()
    assert "already exists" in invoke(["save", tiny, "-o", exported], exit_code=2).stderr
    invoke(["save", tiny, "-o", exported, "--force"])
    assert (exported / "saved_model.pb").is_file()
    (exported / "notes.txt").write_text("mine")
    result = invoke(["save", tiny, "-o", exported, "--force"], exit_code=2)
    assert "notes.txt" in result.stderr and (exported / "notes.txt").is_file()
    no_leftovers(tmp_path)


@pytest.mark.tf
@pytest.mark.parametrize(
    "command",
    [
        ["save", "{tiny}", "-o", "{out}"],
        ["plot", "{tiny}", "-o", "{out}"],
        ["predict", "{tiny}", "-o", "{out}"],
        ["import", "{model}", "-o", "{out}"],
    ],
    ids=["save", "plot", "predict", "import"],
)
def test_file_writers_keep_folders_and_refuse_paths_under_files(
    command: list[str], tiny: Path, tmp_path: Path
) -> None:
    model = tmp_path / "m.keras"
    if command[0] == "import":
        invoke(["save", tiny, "-o", model])
    ending = {"save": ".keras", "plot": ".dot", "predict": ".npy", "import": ".yaml"}[command[0]]

    def run(out: Path, exit_code: int) -> Any:
        args = [a.format(tiny=tiny, model=model, out=out) for a in command]
        return invoke([*args, "--force"], exit_code=exit_code)

    folder = tmp_path / f"mine{ending}"
    before = user_folder(folder)
    assert "is a folder, not a file" in run(folder, 2).stderr
    assert snapshot(folder) == before

    (tmp_path / "notes.txt").write_text("precious")
    assert "is a file, not a folder" in run(tmp_path / "notes.txt" / f"x{ending}", 2).stderr
    assert (tmp_path / "notes.txt").read_text() == "precious"

    run(tmp_path / f"fine{ending}", 0)
    run(tmp_path / f"fine{ending}", 0)  # --force replaces the file it wrote
    no_leftovers(tmp_path)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_a_write_that_fails_part_way_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from kgraph_cli import fileio

    out = tmp_path / "s.json"
    out.write_text("old")

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", disk_full)
    with pytest.raises(fileio.WriteError, match="No space left on device") as raised:
        fileio.write_text_atomic(out, "new", force=True)
    assert raised.value.code == "write" and "nothing was replaced" in raised.value.hint
    assert out.read_text() == "old"
    no_leftovers(tmp_path)
