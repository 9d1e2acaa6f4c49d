"""Every invalid spec in tests/invalid/ reports exactly its golden diagnostics.

The specs that pass the structural checks are built (TensorFlow, marked `tf`);
all runs are in-process, so TensorFlow is imported once.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.golden import INVALID, cases, expected_path, first_location, needs_build, render

REGENERATE = (
    "run `make golden` (.venv/bin/python -m tests.golden) and review the diff of "
    "tests/invalid/*.expected if the change is deliberate"
)


def _params() -> list:
    return [
        pytest.param(spec, id=spec.stem, marks=[pytest.mark.tf] if needs_build(spec) else [])
        for spec in cases()
    ]


CASES = _params()


def test_corpus_is_complete() -> None:
    specs = cases()
    assert len(specs) >= 34
    missing = [s.name for s in specs if not expected_path(s).exists()]
    assert not missing, f"no .expected file for {missing}: {REGENERATE}"
    orphans = [e.name for e in INVALID.glob("*.expected") if not e.with_suffix(".yaml").exists()]
    assert not orphans, f"stale .expected files without a spec: {orphans}"


@pytest.mark.parametrize("spec", CASES)
def test_case_says_what_it_tests(spec: Path) -> None:
    raw = spec.read_bytes()
    if not raw.strip():
        return  # the empty-file case cannot hold a comment
    assert raw.startswith(b"# "), (
        f"{spec.name}: the first line must be a comment saying what it tests"
    )


@pytest.mark.parametrize("spec", CASES)
def test_diagnostics_match_golden(spec: Path) -> None:
    expected_file = expected_path(spec)
    expected = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
    actual = render(spec)
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"{expected_file.name} (expected)",
                f"{spec.name} (actual)",
            )
        )
        pytest.fail(f"diagnostics of {spec.name} changed; {REGENERATE}\n{diff}", pytrace=False)


@pytest.mark.parametrize("spec", CASES)
def test_human_output_points_at_the_problem(spec: Path) -> None:
    from tests.golden import run_validate

    run = run_validate(spec, json_output=False)
    output = run.stdout + run.stderr
    assert run.exception is None, f"kgraph validate crashed: {run.exception!r}"
    assert "Traceback" not in output
    expected_exit = int(expected_path(spec).read_text(encoding="utf-8").split()[1])
    assert run.exit_code == expected_exit, output
    location = first_location(spec)
    assert f"{location}: " in run.stderr, f"no '{location}' in:\n{run.stderr}"
