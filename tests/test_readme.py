"""The README is the test plan: every `kgraph` line of its `sh` blocks runs, in
order, as a user would type it (a shell, the installed command, a copy of
`specs/`), and must exit 0 without a traceback. Figures the README promises in
a command's comment (the quick start's test accuracy) are checked against what
the command wrote, and the `make` targets and install extras it names against
the Makefile.

Commands that need the real MNIST files read them from ../shared/data (as
`~/datasets`) and are skipped, with the reason, where that folder is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA, SPECS

README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"
GRAPHVIZ_OUTPUT = re.compile(r"-o \S+\.(png|svg|pdf)\b")


def sh_lines(text: str) -> list[str]:
    """The lines of the README's ```sh blocks, in order."""
    return [line.strip() for block in blocks(text, "sh") for line in block.splitlines() if line]


def blocks(text: str, language: str) -> list[str]:
    """The README's fenced blocks of one language, in order."""
    found: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is not None:
                found.append("\n".join(current))
                current = None
            elif line.strip() == f"```{language}":
                current = []
        elif current is not None:
            current.append(line)
    return found


COMMANDS = [line for line in sh_lines(README.read_text()) if line.startswith("kgraph ")]


def _command_id(command: str) -> str:
    return command.split("#")[0].strip()[:70]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like a fresh clone's: the example specs, nothing else."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(SPECS, work / "specs")
    home = work / "home"
    home.mkdir()
    if SHARED_DATA.is_dir():
        (home / "datasets").symlink_to(SHARED_DATA)
    return work


def run(command: str, work: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(work / "home"),
        "KGRAPH_OFFLINE": "1",  # tests never download
        "NO_COLOR": "1",
        "COLUMNS": "100",
    }
    env.pop("KGRAPH_DATA_DIR", None)
    return subprocess.run(
        ["bash", "-c", command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_the_readme_has_a_tour() -> None:
    assert len(COMMANDS) >= 15, COMMANDS
    assert COMMANDS[0].startswith("kgraph train specs/digits.yaml")


@pytest.mark.tf
@pytest.mark.parametrize("command", COMMANDS, ids=_command_id)
def test_readme_command(command: str, workdir: Path) -> None:
    if "~/datasets" in command and not SHARED_DATA.is_dir():
        pytest.skip(f"needs the MNIST files of {SHARED_DATA}, absent here")
    if GRAPHVIZ_OUTPUT.search(command) and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (make install installs it)")
    done = run(command, workdir)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{output}"
    assert "Traceback" not in output, output
    claimed = re.search(r"test accuracy (0\.\d+)", command)
    if claimed:
        out = re.search(r"--out (\S+)", command)
        assert out, f"a command that promises a figure names its run directory: {command}"
        metrics = json.loads((workdir / out.group(1) / "metrics.json").read_text())
        assert metrics["test"]["accuracy"] == pytest.approx(float(claimed.group(1)), abs=0.005)


@pytest.mark.tf
def test_readme_python_examples_run(workdir: Path) -> None:
    """The Python API example runs as written, and prints what it says."""
    examples = blocks(README.read_text(), "python")
    assert examples, "the README shows the Python API"
    for example in examples:
        (workdir / "example.py").write_text(example)
        done = run(f"{sys.executable} example.py", workdir)
        assert done.returncode == 0, f"{example}\n{done.stdout}{done.stderr}"
        for promised in re.findall(r"print\(.*\)\s+# (\S+)", example):
            assert promised in done.stdout, (promised, done.stdout)


def test_make_targets_the_readme_names_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", MAKEFILE.read_text(), re.MULTILINE))
    named = [line.split()[1] for line in sh_lines(README.read_text()) if line.startswith("make ")]
    assert {"install", "test"} <= set(named)
    assert set(named) <= targets, set(named) - targets


def test_the_readme_names_the_extras_make_install_uses() -> None:
    extras = re.search(r"^EXTRAS \?= (\S+)$", MAKEFILE.read_text(), re.MULTILINE)
    assert extras
    assert f"`make install` uses `{extras.group(1)}`" in README.read_text()
