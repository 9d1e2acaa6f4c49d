"""Diagnostics (errors as data) and the one exception tree the CLI catches."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A place in a file; line and column are 1-based (0 means unknown)."""

    file: str
    line: int = 0
    col: int = 0
    # How many characters the faulty token spans, for the caret underline.
    length: int = 1

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a spec: where, what, and how to fix it."""

    code: str
    message: str
    location: Location | None = None
    path: str = ""
    hint: str = ""
    severity: Severity = Severity.ERROR
    # Further places that explain this one (e.g. each node of a cycle).
    related: tuple[tuple[Location, str], ...] = field(default_factory=tuple)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple:
        loc = self.location or Location("")
        return (loc.file, loc.line, loc.col, self.code, self.message)

    def to_json(self) -> dict:
        loc = self.location
        return {
            "severity": self.severity.value,
            "code": self.code,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "path": self.path,
            "message": self.message,
            "hint": self.hint or None,
            "related": [{**asdict(rel_loc), "message": msg} for rel_loc, msg in self.related],
        }


class KgraphError(Exception):
    """Base of every user-facing error; the CLI maps it to an exit code."""

    exit_code = 1
    code = "error"  # the diagnostic code it is reported under (--json)

    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message)


class SpecError(KgraphError):
    """The spec is invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        # Sorted by place; a block used N times would otherwise repeat its problems.
        self.diagnostics = sorted(dict.fromkeys(diagnostics), key=Diagnostic.sort_key)
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0] if errors else (self.diagnostics[0] if self.diagnostics else None)
        Exception.__init__(self, first.message if first else "invalid spec")
        self.hint = ""


class UsageError(KgraphError):
    """Bad command-line usage (unknown option value, missing file...)."""

    exit_code = 2
    code = "usage"


class MissingDependencyError(KgraphError):
    """An optional dependency (TensorFlow, a plugin's imports) is absent."""

    code = "missing-dependency"


def short_message(error: BaseException | str, limit: int = 300) -> str:
    """An exception's text on one line, cut to `limit` characters, for a message."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
