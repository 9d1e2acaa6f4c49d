"""Faults: kgraph killed (SIGKILL) while it trains or saves, a full disk,
output folders that are read-only or missing, and damaged or hostile model
files (a corrupt or oversized embedded spec, a zip bomb, a truncated archive).

A kill is made deterministic by a test-only hook (FAULT_HOOK, loaded as
`sitecustomize` through PYTHONPATH into a `kgraph` subprocess): it kills the
process at the N-th backup write, model save or rename onto a named file,
after cutting the file being written in half where that is the point. Between
two renames the files on disk are what they are at any instant between them,
so killing at each rename (and inside each write) covers every instant. The
rest runs in-process, with writes patched to fail with ENOSPC.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, invoke

pytestmark = pytest.mark.tf

FAULT_HOOK = '''\
"""Test-only (tests/test_faults.py): KGRAPH_FAULT=ACTION:TARGET:N SIGKILLs this
process at the N-th matching event. tear:METHOD:N lets keras.Model.METHOD
(save_weights, save) write its file, cuts the file in half, then kills;
before:NAME:N and after:NAME:N kill around the N-th os.replace onto a file
named NAME."""
import os
import signal

action, target, count = os.environ["KGRAPH_FAULT"].split(":")
seen = []


def hit():
    seen.append(1)
    return len(seen) == int(count)


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


if action in ("before", "after"):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        chosen = os.path.basename(os.fspath(dst)) == target and hit()
        if chosen and action == "before":
            kill()
        real_replace(src, dst, *args, **kwargs)
        if chosen:
            kill()

    os.replace = replace
else:
    import kgraph_cli.tf

    real_import = kgraph_cli.tf.import_keras

    def import_keras():
        keras = real_import()
        method = getattr(keras.Model, target)
        if not getattr(method, "torn", False):

            def torn(self, filepath, *args, **kwargs):
                method(self, filepath, *args, **kwargs)
                if hit():
                    with open(filepath, "r+b") as handle:
                        handle.truncate(os.path.getsize(filepath) // 2)
                    kill()

            torn.torn = True
            setattr(keras.Model, target, torn)
        return keras

    kgraph_cli.tf.import_keras = import_keras
'''

EPOCHS = 6
# A few epochs of a few steps each: seconds per run.
TINY = f"""\
kgraph: 1
name: tiny
inputs:
  x: {{shape: [8]}}
layers:
  hidden: {{type: Dense, units: 16, activation: relu, from: x}}
  logits: {{type: Dense, units: 3, from: hidden}}
outputs: [logits]
train:
  data:
    source: {{generated: 160}}
  compile:
    optimizer: adam
    loss: {{type: SparseCategoricalCrossentropy, from_logits: true}}
    metrics: [accuracy]
  fit: {{batch_size: 16, epochs: {EPOCHS}, validation: 0.25, seed: 3}}
"""
# kgraph's temporaries (fileio): .NAME.kgraph-PID-XXXXXXXX[.ending]
TEMPORARY = re.compile(r"\..+\.kgraph-(old-)?\d+-[a-z0-9_]{8}(\.[\w.]+)?")
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture
def hook(tmp_path: Path) -> Path:
    folder = tmp_path / "hook"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(FAULT_HOOK, encoding="utf-8")
    return folder


def run_killed(hook: Path, args: list[Any], fault: str, tmp: Path) -> None:
    """`kgraph ARGS` in a subprocess that the hook kills at `fault`."""
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{REPO}", "KGRAPH_FAULT": fault}
    env["TMPDIR"] = str(tmp)  # Keras's own temporary folders, out of the way
    done = subprocess.run(
        [sys.executable, "-c", "from kgraph_cli.cli import main; main()", *map(str, args)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, f"not killed at {fault}:\n{done.stderr}"


def epochs_recorded(run: Path) -> int:
    history = json.loads((run / "history.json").read_text())
    lengths = {len(values) for values in history.values()}
    assert len(lengths) == 1, history  # every quantity has every epoch
    return lengths.pop()


def assert_complete(run: Path, epochs: int = EPOCHS) -> None:
    """A finished run: every epoch once, in both history files; nothing left over."""
    assert epochs_recorded(run) == epochs
    rows = list(csv.reader((run / "history.csv").open()))
    assert [row[0] for row in rows[1:]] == [str(n) for n in range(1, epochs + 1)]
    assert (run / "model.keras").is_file()
    assert not (run / "backup").exists()
    assert leftovers(run) == [] and leftovers(run.parent) == []


def as_a_new_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands run in this long-lived process, which started before
    the killed ones: kgraph removes a dead process's temporaries only when they
    are older than itself, so the next command is made to start now."""
    import kgraph_cli.fileio

    monkeypatch.setattr(kgraph_cli.fileio, "_STARTED", time.time())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMPORARY.fullmatch(p.name))


# -- SIGKILL during train, then --resume --------------------------------------


def test_a_run_killed_at_each_commit_resumes_with_every_epoch_once(
    spec: Path, hook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    args = ["train", spec, "--out", out, "-q"]
    # Killed while the backup of the 2nd epoch was being written: Keras's own
    # BackupAndRestore left a torn backup/latest.weights.h5 here, and --resume
    # died in h5py ("OSError: truncated file").
    run_killed(hook, args, "tear:save_weights:2", tmp_path)
    assert epochs_recorded(out) == 2  # the history comes before the backup
    assert len(leftovers(out / "backup")) == 1  # the torn temporary, never read
    # Resumed (from the 1st epoch's backup), killed with the weights of its
    # 2nd backup written and the record naming them not yet.
    run_killed(hook, [*args, "--resume"], "before:state.json:2", tmp_path)
    # The torn temporary is gone (the same backup file was written again);
    # the record's temporary is what this kill left.
    assert [name[:12] for name in leftovers(out / "backup")] == [".state.json."]
    assert epochs_recorded(out) == 3
    # Resumed (at epoch 3), killed right after its first history write: the
    # history holds an epoch that the backup does not.
    run_killed(hook, [*args, "--resume"], "after:history.json:1", tmp_path)
    assert epochs_recorded(out) == 3
    # Another command after the kill: a usage error, not a crash.
    assert "--resume to continue" in invoke(args, exit_code=2).stderr

    as_a_new_command(monkeypatch)
    invoke([*args, "--resume"])
    assert_complete(out)


def test_a_run_killed_at_a_random_instant_resumes(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real kill (no hook) at a seeded random instant of the first second
    after the first epoch ends, well before the 40 epochs do."""
    out = tmp_path / "run"
    epochs = 40
    args = ["train", spec, "--out", out, "-q", "--epochs", str(epochs)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-c", "from kgraph_cli.cli import main; main()", *map(str, args)]
    process = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out / "history.json").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.005)
        time.sleep(random.Random(12).uniform(0, 1))
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert (out / "backup").is_dir(), "no run to resume: it ended before the kill?"
    killed_at = epochs_recorded(out)
    as_a_new_command(monkeypatch)
    invoke([*args, "--resume"])
    assert_complete(out, epochs)
    print(f"killed after {killed_at} epoch(s)")


# -- SIGKILL during save -------------------------------------------------------


def test_a_killed_save_leaves_the_old_file_and_the_next_save_tidies(
    spec: Path, hook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "models" / "m.keras"
    out.parent.mkdir()
    save = ["save", spec, "-o", out]
    # Killed halfway through writing a new file: nothing at the path.
    run_killed(hook, save, "tear:save:1", tmp_path)
    assert not out.exists()
    [temporary] = leftovers(out.parent)
    assert temporary.startswith(".m.keras.kgraph-") and temporary.endswith(".keras")

    as_a_new_command(monkeypatch)
    invoke(save)  # the next save to that path removes what the killed one left
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.keras"]
    old = out.read_bytes()
    # Killed halfway through replacing it: the old file intact.
    run_killed(hook, [*save, "--force", "--set", "layers.hidden.units=32"], "tear:save:1", tmp_path)
    assert out.read_bytes() == old
    assert len(leftovers(out.parent)) == 1
    as_a_new_command(monkeypatch)
    invoke([*save, "--force"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.keras"]


def test_only_a_dead_kgraphs_own_temporaries_are_removed(tmp_path: Path) -> None:
    """What remove_stale_temporaries may touch: kgraph's name for this very
    target, a process that is gone, older than this one; nothing else."""
    from kgraph_cli.fileio import _STARTED, remove_stale_temporaries

    dead = 2**22 + 1  # above Linux's largest pid: no such process
    live = os.getppid()
    target = tmp_path / "m.keras"
    stale = [f".m.keras.kgraph-{dead}-abcd_123.keras", f".m.keras.kgraph-{dead}-k2j4h5g6"]
    kept = [
        f".m.keras.kgraph-{live}-abcd_123.keras",  # a live process's write
        f".m.keras.kgraph-{10**30}-abcd_123.keras",  # no process has such a pid
        f".m.keras.kgraph-{dead}-abcd_123.h5",  # another ending
        f".m.keras.kgraph-{dead}-abc.keras",  # not mkstemp's name
        f".n.keras.kgraph-{dead}-abcd_123.keras",  # another target
        ".m.keras.abcd_123.keras",  # no kgraph- (older kgraph, or anyone else)
        f"m.keras.kgraph-{dead}-abcd_123.keras",  # not hidden
        f".m.keras.kgraph-old-{dead}-abcd1234",  # the only copy while m.keras is missing
        "m.keras.bak",
    ]
    (tmp_path / stale[1]).mkdir()  # a staged folder (a SavedModel's)
    (tmp_path / stale[1] / "saved_model.pb").write_text("x")
    for name in [stale[0], *kept]:
        (tmp_path / name).write_text("x")
    for name in stale + kept:
        os.utime(tmp_path / name, (_STARTED - 60, _STARTED - 60))
    young = tmp_path / f".m.keras.kgraph-{dead}-young123.keras"  # newer than this process
    young.write_text("x")
    remove_stale_temporaries(target, ".keras")
    remove_stale_temporaries(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, young.name])
    target.write_text("the new folder is in place")  # now the old copy may go
    remove_stale_temporaries(target)
    assert not (tmp_path / kept[7]).exists()


def test_force_replaces_a_run_that_a_kill_left_a_temporary_in(
    trained: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    (run / ".history.json.kgraph-4194305-abcd_123").write_text("{}")
    (run / "notes.txt").write_text("mine")
    refused = invoke(["train", trained / "tiny.yaml", "--out", run, "--force"], exit_code=2)
    assert "holds files kgraph did not write: notes.txt" in refused.stderr
    (run / "notes.txt").unlink()
    invoke(["train", trained / "tiny.yaml", "--out", run, "--force", "-q", "--epochs", "1"])
    assert leftovers(run) == []


# -- a full disk ---------------------------------------------------------------


def no_space(
    monkeypatch: pytest.MonkeyPatch, method: str, at_call: int = 1, as_h5py: bool = False
) -> None:
    """keras.Model.METHOD writes half its file, then fails as on a full disk
    (from its `at_call`-th call on); `as_h5py`: as Keras's legacy .h5 save
    does there, with h5py's RuntimeError from closing the file."""
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    real = getattr(keras.Model, method)
    calls = []

    def full(self: Any, filepath: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(filepath)
        real(self, filepath, *args, **kwargs)
        if len(calls) >= at_call:
            with open(filepath, "r+b") as handle:
                handle.truncate(os.path.getsize(filepath) // 2)
            if not as_h5py:
                raise OSError(errno.ENOSPC, NO_SPACE, str(filepath))
            try:  # h5py's words, from a real full disk
                raise RuntimeError(f"Unable to flush file (..., errno = {errno.ENOSPC}, ...)")
            except RuntimeError:
                raise RuntimeError("Can't destroy cache (slist already enabled?)") from None

    monkeypatch.setattr(keras.Model, method, full)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_full_disk_during_save_keeps_the_old_file(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("m.keras", "m.h5", "m.weights.h5"):
        out = tmp_path / name
        invoke(["save", spec, "-o", out])
        old = out.read_bytes()
        with monkeypatch.context() as patch:
            method = "save_weights" if name.endswith(".weights.h5") else "save"
            no_space(patch, method, as_h5py=name == "m.h5")
            failed = invoke(["save", spec, "-o", out, "--force"], exit_code=1)
        assert f"cannot write '{out}': {NO_SPACE}" in failed.stderr
        assert out.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_a_full_disk_during_training_keeps_the_old_run(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_run = tmp_path / "old"
    invoke(["train", spec, "--out", old_run, "-q", "--epochs", "1"])
    old = snapshot(old_run)
    for out, force in ((old_run, ["--force"]), (tmp_path / "new", [])):
        with monkeypatch.context() as patch:
            no_space(patch, "save_weights", at_call=2)  # the 2nd epoch's backup
            failed = invoke(["train", spec, "--out", out, "-q", *force], exit_code=1)
        assert re.search(rf"cannot write '[^']*epoch-2\.weights\.h5': {NO_SPACE}", failed.stderr)
        assert "Traceback" not in failed.output
    assert snapshot(old_run) == old  # the run it was to replace, as it was
    assert not (tmp_path / "new").exists()  # a new run: nothing half-written
    assert leftovers(tmp_path) == []


def test_a_full_disk_at_the_end_of_training(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The curves are the last file a run writes (this was a traceback)."""
    import kgraph_cli.curves

    def full(history: Any, path: Path, title: str = "") -> None:
        path.write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, NO_SPACE, str(path))

    monkeypatch.setattr(kgraph_cli.curves, "plot_history", full)
    out = tmp_path / "run"
    failed = invoke(["train", spec, "--out", out, "-q", "--epochs", "1"], exit_code=1)
    assert f"cannot write '{out / 'curves.png'}': {NO_SPACE}" in failed.stderr
    assert not out.exists() and leftovers(tmp_path) == []


# -- read-only and missing output folders ---------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    (folder / "tiny.yaml").write_text(TINY, encoding="utf-8")
    invoke(["train", folder / "tiny.yaml", "--out", folder / "run", "-q", "--epochs", "1"])
    return folder


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: chmod for a user; for root, whom chmod does
    not stop, a read-only bind mount (skipped where mounting is not allowed)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", folder, folder], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only folder as root: {mounted.stderr.decode()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def file_outputs(trained: Path, where: Path) -> list[list[Any]]:
    spec, run = trained / "tiny.yaml", trained / "run"
    return [
        ["save", spec, "-o", where / "m.keras"],
        ["predict", run, "-o", where / "p.npy"],
        ["plot", spec, "-o", where / "g.dot"],
        ["plot", run, "-o", where / "curves.png"],
    ]


def folder_outputs(trained: Path, where: Path) -> list[list[Any]]:
    spec = trained / "tiny.yaml"
    return [
        ["save", spec, "-o", where / "saved_model"],
        ["train", spec, "--out", where / "run", "-q", "--epochs", "1"],
    ]


def test_a_read_only_output_folder_is_exit_1(trained: Path, read_only: Path) -> None:
    for args in file_outputs(trained, read_only) + folder_outputs(trained, read_only):
        failed = invoke(args, exit_code=1)
        assert f"cannot write '{read_only}" in failed.stderr, args
        assert "nothing was replaced" in failed.stderr
    assert list(read_only.iterdir()) == []


def test_a_missing_or_file_parent_is_a_usage_error(trained: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "deeper"
    for args in file_outputs(trained, missing):
        assert f"folder '{missing}' does not exist" in invoke(args, exit_code=2).stderr, args
    assert not missing.parent.exists()
    a_file = trained / "tiny.yaml"
    for args in file_outputs(trained, a_file) + folder_outputs(trained, a_file):
        failed = invoke(args, exit_code=2)
        assert f"'{a_file}' is a file, not a folder" in failed.stderr, args
    # The missing folders above a folder output are made (as runs/ for runs/NAME-TIME).
    for args in folder_outputs(trained, missing):
        invoke(args)
    assert (missing / "run" / "model.keras").is_file()
    assert (missing / "saved_model" / "saved_model.pb").is_file()


# -- damaged and hostile model files --------------------------------------------

SPEC_ENTRY = "kgraph/spec.yaml"


def rewritten(source: Path, target: Path, spec: bytes, size: int | None = None) -> Path:
    """`source` with the embedded spec `spec` (its size in the zip's headers
    set to `size`, if given: a header that lies)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename != SPEC_ENTRY:
                new.writestr(info, old.read(info.filename))
        new.writestr(SPEC_ENTRY, spec, compress_type=zipfile.ZIP_DEFLATED)
    if size is not None:
        data = bytearray(target.read_bytes())
        local = zipfile.ZipFile(target).getinfo(SPEC_ENTRY).header_offset
        struct.pack_into("<I", data, local + 22, size)  # the local header's size
        central = data.rindex(b"PK\x01\x02")  # the last entry of the central directory
        struct.pack_into("<I", data, central + 24, size)  # its size there
        target.write_bytes(bytes(data))
    return target


def damaged_entry(source: Path, target: Path, entry: str) -> Path:
    """`source` with the stored bytes of `entry` scrambled (the zip itself intact)."""
    data = bytearray(source.read_bytes())
    info = zipfile.ZipFile(source).getinfo(entry)
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    for index in range(start + info.compress_size // 4, start + info.compress_size * 3 // 4):
        data[index] ^= 0x5A
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Damaged model files, each with what the error must say."""
    folder = tmp_path_factory.mktemp("models")
    (folder / "tiny.yaml").write_text(TINY, encoding="utf-8")
    good, h5 = folder / "good.keras", folder / "model.h5"
    invoke(["save", folder / "tiny.yaml", "-o", good])
    invoke(["save", folder / "tiny.yaml", "-o", h5])
    whole = good.read_bytes()
    (folder / "half.keras").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.keras").write_bytes(b"")
    shutil.copy(h5, folder / "h5.keras")
    over = b"\n" * (21 << 20)  # over the 20 MiB limit: compresses to 20 KB
    return {
        "corrupt spec": (
            damaged_entry(good, folder / "corrupt_spec.keras", SPEC_ENTRY),
            "its embedded spec (kgraph/spec.yaml) is damaged",
        ),
        "corrupt weights": (
            damaged_entry(good, folder / "corrupt_weights.keras", "model.weights.h5"),
            "Bad CRC-32 for file 'model.weights.h5'",
        ),
        "truncated": (folder / "half.keras", "not a valid .keras file (truncated or corrupted?)"),
        "empty": (folder / "empty.keras", "the file is empty"),
        "an .h5 named .keras": (folder / "h5.keras", "it is an HDF5 file"),
        "spec not UTF-8": (
            rewritten(good, folder / "latin1.keras", "name: caf\xe9\n".encode("latin-1")),
            "is not UTF-8",
        ),
        "zip bomb": (
            rewritten(good, folder / "bomb.keras", over),
            "error[too-large]: the embedded spec is 22,020,096 bytes, over the limit for a "
            "spec (20,971,520)",
        ),
        "size that lies": (
            rewritten(good, folder / "liar.keras", over, size=1_000),
            "Bad CRC-32 for file 'kgraph/spec.yaml'",
        ),
    }


MODEL_COMMANDS = {
    "load": ["load", "{model}"],
    "load --spec": ["load", "--spec", "{model}"],
    "summary": ["summary", "{model}"],
    "evaluate": ["evaluate", "{model}"],
    "predict": ["predict", "{model}", "-o", "{out}/p.npy"],
    "plot": ["plot", "{model}", "-o", "{out}/g.dot"],
    "import": ["import", "{model}", "-o", "{out}/imported.yaml"],
    "train": ["train", "{model}", "--out", "{out}/run", "-q"],
    "save --weights": ["save", "{spec}", "--weights", "{model}", "-o", "{out}/m.keras"],
}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_damaged_model_file_is_a_clear_error(
    command: str, model_files: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """One reader of model files and their embedded spec: the same message from
    every command, exit 1, nothing written, and the oversized spec refused
    from the zip's headers at once (a 2 MB one took `load --spec` 38 s)."""
    for case, (model, expected) in model_files.items():
        values = {"model": model, "out": tmp_path, "spec": model.parent / "tiny.yaml"}
        args = [part.format(**values) for part in MODEL_COMMANDS[command]]
        started = time.perf_counter()
        failed = invoke(args, exit_code=1)
        assert expected in failed.stderr, (case, failed.stderr)
        if case == "zip bomb":
            assert time.perf_counter() - started < 1, "not refused from the headers"
        assert list(tmp_path.iterdir()) == [], case
