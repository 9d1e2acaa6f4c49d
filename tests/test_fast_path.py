"""`kgraph --help`, `--version` and structural validation never import TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

PROBE = textwrap.dedent(
    """
    import sys
    from kgraph_cli.cli import app
    try:
        app({args!r})
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in ("tensorflow", "keras", "numpy") if m in sys.modules)
    print("EXIT", code, "HEAVY", ",".join(heavy) or "-", file=sys.stderr)
    """
)


def run_probe(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    last = proc.stderr.strip().splitlines()[-1]
    _, code, _, heavy = last.split()
    return 0 if code == "None" else int(code), heavy


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["--help"], 0),
        (["--version"], 0),
        (["validate", "--help"], 0),
        (["validate", "--no-build", "specs/mnist.yaml"], 0),
        (["validate", "--no-build", "--json", "{broken}"], 1),
        (["schema"], 0),
    ],
)
def test_fast_commands_do_not_import_tensorflow(args, exit_code, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("kgraph: 1\ninputs: {x: [4]}\nlayers: {d: {type: Dens, from: x}}\n")
    code, heavy = run_probe([a.format(broken=broken) for a in args])
    assert heavy == "-", f"kgraph {' '.join(args)} imported {heavy}"
    assert code == exit_code, f"kgraph {' '.join(args)} exited {code}"


def test_building_does_import_tensorflow():
    # The probe itself must be able to see TensorFlow being imported.
    code, heavy = run_probe(["validate", "specs/mnist.yaml"])
    assert code == 0
    assert "tensorflow" in heavy
