"""Diagnostics (errors as data) and the one exception tree the CLI catches."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    """Every diagnostic code kgraph reports: the `[code]` of `error[code]` and
    the `code` of --json. tests/test_codes.py checks that the code uses no other."""

    # the YAML text (spec/loader.py)
    YAML = "yaml"
    DUPLICATE_KEY = "duplicate-key"
    UNSAFE_TAG = "unsafe-tag"
    ENCODING = "encoding"
    EMPTY = "empty"
    NOT_A_MAPPING = "not-a-mapping"
    TOO_LARGE = "too-large"
    NESTING = "nesting"
    NUMBER = "number"
    FILE = "file"
    # the spec's structure (spec/parse.py, spec/assemble.py, spec/overrides.py)
    VERSION = "version"
    UNKNOWN_KEY = "unknown-key"
    TYPE = "type"
    MISSING = "missing"
    NAME = "name"
    CONFLICT = "conflict"
    REF = "ref"
    DTYPE = "dtype"
    INCLUDE = "include"
    INCLUDE_CYCLE = "include-cycle"
    OVERRIDE = "override"
    VIEW_LAYERS = "view-layers"
    # blocks (spec/blocks.py)
    UNKNOWN_BLOCK = "unknown-block"
    UNKNOWN_PARAM = "unknown-param"
    BLOCK_CYCLE = "block-cycle"
    BLOCK_INPUTS = "block-inputs"
    BLOCK_REPEAT = "block-repeat"
    TOO_MANY_NODES = "too-many-nodes"  # the blocks expand past MAX_EXPANDED_NODES
    # the graph and the layers (spec/graph.py, spec/validate.py, layers.py)
    UNDEFINED_REF = "undefined-ref"
    DUPLICATE_NAME = "duplicate-name"
    CYCLE = "cycle"
    UNUSED = "unused"
    NOT_ADAPTED = "not-adapted"
    UNREACHABLE = "unreachable"
    TOO_DEEP = "too-deep"
    UNKNOWN_LAYER = "unknown-layer"
    UNKNOWN_ARG = "unknown-arg"
    MISSING_ARG = "missing-arg"
    UNKNOWN_VALUE = "unknown-value"
    LAYER_ARG = "layer-arg"
    PLUGIN = "plugin"
    MODEL_CYCLE = "model-cycle"
    MODEL_INPUTS = "model-inputs"
    VIEW_INPUT = "view-input"
    VIEW_OF_VIEW = "view-of-view"
    UNKNOWN_OP = "unknown-op"
    UNKNOWN_APPLICATION = "unknown-application"
    WEIGHTS = "weights"
    OP_ARGS = "op-args"
    CALL_REF = "call-ref"
    RUNS_CODE = "runs-code"
    # building the model (build.py)
    SHAPE = "shape"
    LAYER_ARGS = "layer-args"
    OP_RESULT = "op-result"
    LAYER_RESULT = "layer-result"
    # the train: section (spec/train/)
    OUTPUTS = "outputs"
    SOURCE = "source"
    UNKNOWN_DATASET = "unknown-dataset"
    UNKNOWN_TRANSFORM = "unknown-transform"
    UNKNOWN_OPTIMIZER = "unknown-optimizer"
    UNKNOWN_LOSS = "unknown-loss"
    UNKNOWN_METRIC = "unknown-metric"
    UNKNOWN_CALLBACK = "unknown-callback"
    UNKNOWN_SCHEDULE = "unknown-schedule"
    CALLBACK = "callback"
    # the tune: section and --tune (spec/tune.py, tune/)
    SEARCH_SPACE = "search-space"
    # the data, checked against the model before training (data/)
    DATA = "data"
    DATA_MISSING = "data-missing"
    LABEL_RANGE = "label-range"
    # errors that are not about a place in a spec (KgraphError.code)
    ERROR = "error"
    USAGE = "usage"
    MISSING_DEPENDENCY = "missing-dependency"
    WRITE = "write"
    TRAINING = "training"
    INTERRUPTED = "interrupted"
    PEER_LOST = "peer-lost"  # a multi-worker run lost a worker (exit 75)
    DISTRIBUTE = "distribute"  # a strategy this machine or TF_CONFIG cannot provide


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


class Reporter:
    """Where the checks of a stage put what they find. Every collector of
    diagnostics (the parser, the block expander, the validator, the `train:`
    checker) is one, so diagnostics are made in one way and gathered in one
    list that several collectors of a stage may share."""

    def __init__(self, diagnostics: list[Diagnostic] | None = None):
        self.diagnostics: list[Diagnostic] = [] if diagnostics is None else diagnostics

    def error(
        self,
        code: str,
        message: str,
        loc: Location | None,
        path: str = "",
        hint: str = "",
        related: tuple[tuple[Location, str], ...] = (),
    ) -> None:
        self.diagnostics.append(Diagnostic(code, message, loc, path, hint, related=related))

    def warn(
        self, code: str, message: str, loc: Location | None, path: str = "", hint: str = ""
    ) -> None:
        self.diagnostics.append(Diagnostic(code, message, loc, path, hint, Severity.WARNING))


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

    @classmethod
    def at(
        cls,
        code: str,
        message: str,
        location: Location | None = None,
        path: str = "",
        hint: str = "",
        related: tuple[tuple[Location, str], ...] = (),
    ) -> SpecError:
        """One located problem as an error: `raise SpecError.at(Code.EMPTY, ...)`."""
        return cls([Diagnostic(code, message, location, path, hint, related=related)])


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
