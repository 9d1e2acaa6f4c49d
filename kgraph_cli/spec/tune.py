"""The `tune:` section and `--tune`: which values of a spec `kgraph tune`
searches, and how (pure Python: the search itself is `kgraph_cli/tune/`).

    tune:
      objective: val_accuracy          # direction inferred: maximize
      trials: 12
      space:
        layers.hidden1.units: choice(32, 64, 128)
        train.compile.optimizer.learning_rate: float(1e-4, 1e-2, log)
        layers.stack.repeat: int(1, 3)
        train.compile.optimizer.momentum:
          values: float(0.0, 0.95)
          when: train.compile.optimizer.type=SGD

A space entry is a KEY.PATH (as `--set` takes) and an expression:
`choice(V, ...)`, `int(LOW, HIGH)` (options `step=N`, `log`),
`float(LOW, HIGH)` (options `step=X`, `log`) or `bool`. The spec's own value
at that path is what `kgraph train` uses; a trial replaces it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, SpecError
from kgraph_cli.spec.fields import FieldChecker, join
from kgraph_cli.spec.loader import YamlMap, parse_yaml
from kgraph_cli.spec.values import describe, plain

TUNE_FILE = "--tune"  # the pseudo-file of --tune arguments, as "--set" is for overrides

TUNE_KEYS = {
    "space": "the searched values: KEY.PATH: EXPRESSION (choice(...), int(LOW, HIGH), "
    "float(LOW, HIGH), bool), or {values: EXPRESSION, when: PATH=VALUE}",
    "objective": "the metric a trial is scored by: a key of the epoch logs, e.g. "
    "val_accuracy (default val_loss)",
    "direction": "minimize or maximize (default: maximize for accuracy-like metrics, "
    "minimize for losses and errors)",
    "trials": "how many trials to finish (complete or pruned), over every process sharing "
    "the study (default 20)",
    "timeout": "stop starting trials after this many seconds (or 90s, 10m, 2h)",
    "sampler": "how values are chosen: tpe (default), random, grid, cmaes",
    "pruner": "how bad trials are stopped after an epoch: median (default), hyperband, none",
    "seed": "the sampler's seed: the same seed gives the same trials (default 0)",
}
ENTRY_KEYS = {
    "values": "the expression: choice(...), int(LOW, HIGH), float(LOW, HIGH) or bool",
    "when": "PATH=VALUE: searched only in the trials where that searched value is VALUE",
}
KINDS = ("choice", "int", "float", "bool")
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
# The settings that name one of a few values, with those values.
NAMED_SETTINGS = {"direction": DIRECTIONS, "sampler": SAMPLERS, "pruner": PRUNERS}
DEFAULT_TRIALS = 20
MAX_TRIALS = 100_000
MAX_CHOICES = 1_000
# Metric names that are better lower; anything else (accuracy, auc...) is maximized.
_LOWER_IS_BETTER = (
    "loss",
    "error",
    "crossentropy",
    "hinge",
    "divergence",
    "mse",
    "mae",
    "mape",
    "msle",
    "poisson",
    "logcosh",
)
# Words YAML reads as booleans or null, whatever their case.
_YAML_WORDS = {"true", "false", "null"}
_EXPRESSION = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
EXPRESSION_HINT = (
    "write choice(A, B, ...), int(LOW, HIGH), int(LOW, HIGH, step=N), float(LOW, HIGH, log) or bool"
)


@dataclass(frozen=True)
class Param:
    """One searched value: the spec path it replaces and the values it may take."""

    path: str
    kind: str  # choice, int, float, bool
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    # (path, value): searched only in trials where the param at `path` took `value`.
    when: tuple[str, Any] | None = None
    loc: Location | None = None  # the expression
    key_loc: Location | None = None  # the path
    when_loc: Location | None = None

    @property
    def keys(self) -> list[str]:
        """The path's keys, as --set walks them."""
        return self.path.split(".")

    def corners(self) -> list[Any]:
        """The values at the edges of the param's range: every choice, both bounds."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "bool":
            return [False, True]
        high = self.high if self.step is None else self.low + self._steps() * self.step
        if self.kind == "float" and self.step is not None:
            high = round(high, 12)
        return [self.low, high] if self.low != high else [self.low]

    def _steps(self) -> int:
        """How many whole steps fit between the bounds."""
        return int(math.floor((self.high - self.low) / self.step + 1e-9))

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler; None for a continuous range."""
        if self.kind in ("choice", "bool"):
            return self.corners()
        if self.kind == "int":  # a log scale too: every integer
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is not None:
            return [round(self.low + i * self.step, 12) for i in range(self._steps() + 1)]
        return None

    def expression(self) -> str:
        """The param as written: `choice(32, 64)`, `float(0.0001, 0.01, log)`."""
        if self.kind == "bool":
            return "bool"
        if self.kind == "choice":
            return f"choice({', '.join(flow(c) for c in self.choices)})"
        args = [flow(self.low), flow(self.high)]
        args += [f"step={flow(self.step)}"] if self.step is not None else []
        args += ["log"] if self.log else []
        return f"{self.kind}({', '.join(args)})"


@dataclass(frozen=True)
class TuneSpec:
    """The `tune:` section with --tune entries merged in (the flags of
    `kgraph tune` then replace its settings)."""

    space: tuple[Param, ...] = ()
    objective: str | None = None
    direction: str | None = None
    trials: int = DEFAULT_TRIALS
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    # Where each setting was written, for the errors found later (a missing metric).
    locs: dict[str, Location] = field(default_factory=dict, compare=False)

    def param(self, path: str) -> Param | None:
        return next((p for p in self.space if p.path == path), None)

    def objective_name(self, validation: bool) -> str:
        return self.objective or ("val_loss" if validation else "loss")

    def direction_of(self, objective: str) -> str:
        return self.direction or infer_direction(objective)


def infer_direction(metric: str) -> str:
    """`val_loss` minimize, `val_accuracy` maximize: by the metric's name."""
    name = metric.lower()
    return "minimize" if any(word in name for word in _LOWER_IS_BETTER) else "maximize"


def flow(value: Any) -> str:
    """A value as a one-line YAML flow text (what --set takes back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # Plain where YAML reads the word back as that string (not `true`, `null`).
        plain_word = re.fullmatch(r"[A-Za-z_][\w.\-/]*", value)
        if plain_word and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value)
    return json.dumps(value, separators=(", ", ": "))


def parse_duration(text: Any) -> float | None:
    """Seconds, from 90, 90s, 10m or 2h; None if it is not one."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text) if text > 0 else None
    match = _DURATION.match(str(text))
    if not match:
        return None
    seconds = float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]
    return seconds if seconds > 0 else None


class _TuneParser(FieldChecker):
    """Reads the `tune:` section and --tune arguments into a TuneSpec."""

    def settings(self, section: YamlMap) -> dict[str, Any]:
        found: dict[str, Any] = {}
        locs: dict[str, Location] = {}
        for key in ("objective", "direction", "sampler", "pruner"):
            if key in section:
                value = self.string(section, key, "tune", "")
                allowed = NAMED_SETTINGS.get(key)
                written = isinstance(section[key], str)
                if written and allowed and value not in allowed:
                    self.error(
                        "unknown-value",
                        f"tune.{key} must be one of {', '.join(allowed)}, got '{value}'",
                        section.value_loc(key),
                        f"tune.{key}",
                    )
                elif value:
                    found[key] = value
        if "trials" in section:
            trials = self.number(section, "trials", "tune.trials", int, minimum=1)
            if trials is not None and trials > MAX_TRIALS:
                self.error(
                    "type",
                    f"tune.trials is at most {MAX_TRIALS:,}, got {trials:,}",
                    section.value_loc("trials"),
                    "tune.trials",
                )
            elif trials is not None:
                found["trials"] = trials
        if "seed" in section:
            seed = self.number(section, "seed", "tune.seed", int, minimum=0)
            if seed is not None:
                found["seed"] = seed
        if "timeout" in section:
            timeout = parse_duration(section["timeout"])
            if timeout is None:
                self.type_error(
                    section,
                    "timeout",
                    "tune.timeout",
                    "tune.timeout must be a positive number of seconds, or 90s, 10m, 2h",
                    section["timeout"],
                )
            else:
                found["timeout"] = timeout
        for key in found:
            locs[key] = section.value_loc(key)
        found["locs"] = locs
        return found

    def space(self, section: YamlMap) -> list[Param]:
        space = section["space"]
        if not isinstance(space, YamlMap):
            self.type_error(
                section,
                "space",
                "tune.space",
                "tune.space must be a mapping of KEY.PATH to an expression",
                space,
                "e.g. `space: {layers.hidden1.units: choice(32, 64, 128)}`",
            )
            return []
        params = []
        for key, entry in space.items():
            path = f"tune.space.{key}"
            where = space.value_loc(key)
            when: Any = None
            if isinstance(entry, YamlMap):
                self.check_keys(entry, ENTRY_KEYS, path, "a space entry")
                if "values" not in entry:
                    self.error(
                        "missing",
                        "the entry has no `values`",
                        where,
                        path,
                        f"e.g. `values: int(1, 4)`; {EXPRESSION_HINT}",
                    )
                    continue
                when = entry.get("when")
                if when is not None and not isinstance(when, str):
                    self.type_error(
                        entry, "when", join(path, "when"), "when must be PATH=VALUE", when
                    )
                    continue
                when_loc = entry.value_loc("when") if when is not None else None
                where, entry = entry.value_loc("values"), entry["values"]
            else:
                when_loc = None
            param = self.param(str(key), entry, where, space.key_loc(key), path)
            if param is not None and when is not None:
                param = self.condition(param, when, when_loc, path)
            if param is not None:
                params.append(param)
        return params

    def cli_entry(self, number: int, text: str) -> Param | None:
        """`PATH=EXPRESSION` or `PATH=EXPRESSION when PATH=VALUE`, located in
        line `number` of the --tune pseudo-file."""
        path, eq, rest = text.partition("=")
        loc = Location(TUNE_FILE, number, 1, max(len(path), 1))
        if not eq or not path.strip() or not rest.strip():
            self.error(
                "search-space",
                f"expected KEY.PATH=EXPRESSION, got '{text}'",
                loc,
                hint="e.g. --tune 'layers.hidden1.units=choice(32, 64, 128)'",
            )
            return None
        expression, when = _split_condition(rest)
        where = Location(TUNE_FILE, number, len(path) + 2, max(len(expression.rstrip()), 1))
        param = self.param(path.strip(), expression, where, loc, path.strip())
        if param is not None and when.strip():
            col = len(path) + 2 + len(expression) + len(" when ")
            when_loc = Location(TUNE_FILE, number, col, max(len(when), 1))
            param = self.condition(param, when.strip(), when_loc, path.strip())
        return param

    def param(
        self, key: str, text: Any, where: Location, key_loc: Location, path: str
    ) -> Param | None:
        if not key or any(not part for part in key.split(".")):
            self.error(
                "search-space",
                f"'{key}' is not a KEY.PATH",
                key_loc,
                path,
                "paths are written as --set takes them, e.g. layers.hidden1.units",
            )
            return None
        if not isinstance(text, str) or not (match := _EXPRESSION.match(text)):
            self.error(
                "search-space",
                f"expected a search expression, got {describe(text)}",
                where,
                path,
                EXPRESSION_HINT,
            )
            return None
        kind, args_text = match[1], match[2]
        if kind not in KINDS:
            from kgraph_cli.suggest import did_you_mean

            self.error(
                "search-space",
                f"unknown search expression '{kind}'",
                where,
                path,
                did_you_mean(kind, KINDS, EXPRESSION_HINT),
            )
            return None
        args = self.arguments(args_text or "", where, path)
        if args is None:
            return None
        base = Param(key, kind, loc=where, key_loc=key_loc)
        if kind == "bool":
            return base if self.no_arguments(args, where, path) else None
        if kind == "choice":
            return self.choice(base, args, where, path)
        return self.range(base, args, where, path)

    def arguments(self, text: str, where: Location, path: str) -> list[Any] | None:
        """The expression's arguments: YAML flow values (`32`, `relu`, `[3, 3]`,
        `{type: Adam}`), `log`, `step=N`."""
        if not text.strip():
            return []
        try:
            parsed = parse_yaml(f"value: [{text}]", TUNE_FILE)
        except SpecError:
            self.error(
                "search-space",
                f"cannot read the arguments '{text}'",
                where,
                path,
                "separate values with commas; quote strings that contain ':' or '#'",
            )
            return None
        return [plain(item) for item in parsed["value"]]

    def no_arguments(self, args: list[Any], where: Location, path: str) -> bool:
        if args:
            self.error("search-space", "bool takes no arguments", where, path, "write `bool`")
        return not args

    def choice(self, base: Param, args: list[Any], where: Location, path: str) -> Param | None:
        if not args:
            self.error(
                "search-space",
                "choice() needs at least one value",
                where,
                path,
                "e.g. choice(32, 64, 128)",
            )
            return None
        if len(args) > MAX_CHOICES:
            self.error(
                "search-space",
                f"choice() takes at most {MAX_CHOICES:,} values, got {len(args):,}",
                where,
                path,
            )
            return None
        seen: list[str] = []
        for arg in args:
            text = json.dumps(arg, sort_keys=True)
            if text in seen:
                self.error(
                    "search-space",
                    f"choice() lists {flow(arg)} twice",
                    where,
                    path,
                    "list each value once",
                )
                return None
            seen.append(text)
        return replace(base, choices=tuple(args))

    def range(self, base: Param, args: list[Any], where: Location, path: str) -> Param | None:
        kind = base.kind
        bounds = [a for a in args if not _is_option(a)]
        options = [a for a in args if _is_option(a)]
        number = int if kind == "int" else (int, float)
        example = f"{kind}(1, 8)" if kind == "int" else f"{kind}(0.0001, 0.1, log)"
        if len(bounds) != 2 or not all(_is_number(b, number) for b in bounds):
            self.error(
                "search-space",
                f"{kind}() takes two {'integer' if kind == 'int' else 'number'} bounds"
                f", got {', '.join(flow(b) for b in bounds) or 'none'}",
                where,
                path,
                f"e.g. {example}",
            )
            return None
        low, high = bounds
        if low > high:
            self.error(
                "search-space",
                f"the low bound {flow(low)} is above the high bound {flow(high)}",
                where,
                path,
                f"write {kind}({flow(high)}, {flow(low)})",
            )
            return None
        log, step = False, None
        for option in options:
            if option == "log":
                log = True
                continue
            value = _step_value(option)
            if value is None or not _is_number(value, number) or value <= 0:
                self.error(
                    "search-space",
                    f"unknown option '{option}' of {kind}()",
                    where,
                    path,
                    f"the options are `log` and step=N (a positive "
                    f"{'integer' if kind == 'int' else 'number'})",
                )
                return None
            step = value
        if log and step is not None:
            self.error(
                "search-space",
                f"{kind}() cannot take both `log` and a step",
                where,
                path,
                "a log scale has no fixed step: drop one of them",
            )
            return None
        if log and low <= 0:
            self.error(
                "search-space",
                f"a log scale needs a low bound above 0, got {flow(low)}",
                where,
                path,
            )
            return None
        if kind == "float":
            low, high = float(low), float(high)
            step = float(step) if step is not None else None
        return replace(base, low=low, high=high, step=step, log=log)

    def condition(self, param: Param, text: str, where: Location | None, path: str) -> Param | None:
        other, eq, raw = text.partition("=")
        if not eq or not other.strip() or not raw.strip():
            self.error(
                "search-space",
                f"when must be PATH=VALUE, got '{text}'",
                where,
                path,
                "e.g. when: train.compile.optimizer.type=SGD",
            )
            return None
        values = self.arguments(raw, where or param.loc, path)
        if values is None:
            return None
        value = values[0] if len(values) == 1 else values
        return replace(param, when=(other.strip(), value), when_loc=where)


def _split_condition(text: str) -> tuple[str, str]:
    """`EXPRESSION when PATH=VALUE` split at the first ` when ` outside quotes
    and brackets (a choice may hold the word); the condition is '' without one."""
    quote, depth = "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(" when ", index):
            return text[:index], text[index + len(" when ") :]
    return text, ""


def _is_option(value: Any) -> bool:
    return value == "log" or (isinstance(value, str) and "=" in value)


def _step_value(option: Any) -> Any:
    if not isinstance(option, str) or not option.replace(" ", "").startswith("step="):
        return None
    text = option.replace(" ", "")[len("step=") :]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _is_number(value: Any, kinds: Any) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def parse_tune(
    section: Any, entries: list[str] | tuple[str, ...], file: str, loc: Location | None = None
) -> tuple[TuneSpec, list[Diagnostic]]:
    """The `tune:` section of spec `file` (None when it has none; written at
    `loc`) with the --tune `entries` added (an entry replaces the section's
    at the same path); every problem located."""
    parser = _TuneParser(file)
    settings: dict[str, Any] = {}
    params: list[Param] = []
    if section is not None:
        if not isinstance(section, YamlMap):
            parser.error(
                "type",
                f"tune must be a mapping, got {describe(section)}",
                getattr(section, "loc", None) or loc or Location(file),
                "tune",
                "e.g. `tune: {space: {layers.hidden1.units: choice(32, 64)}}`",
            )
        else:
            parser.check_keys(section, TUNE_KEYS, "tune", "tune")
            settings = parser.settings(section)
            if "space" in section:
                params = parser.space(section)
    for number, text in enumerate(entries, start=1):
        param = parser.cli_entry(number, text)
        if param is not None:
            paths = [p.path for p in params]
            if param.path in paths:  # it replaces the section's entry, in its place
                params[paths.index(param.path)] = param
            else:
                params.append(param)
    _check_conditions(parser, params)
    return TuneSpec(tuple(params), **settings), parser.diagnostics


def _check_conditions(parser: _TuneParser, params: list[Param]) -> None:
    """A `when:` names a param searched before it, by a value it can take."""
    for index, param in enumerate(params):
        if param.when is None:
            continue
        other_path, value = param.when
        earlier = {p.path: p for p in params[:index]}
        other = earlier.get(other_path)
        path = f"tune.space.{param.path}"
        if other is None:
            later = any(p.path == other_path for p in params[index:])
            parser.error(
                "search-space",
                f"when names '{other_path}', which is not searched"
                + (" before it" if later else ""),
                param.when_loc or param.loc,
                path,
                "list the value it depends on first"
                if later
                else f"search '{other_path}' too, e.g. {other_path}: choice(...)",
            )
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not _can_take(other, item):
                parser.error(
                    "search-space",
                    f"when {other_path}={flow(item)}, but '{other_path}' is {other.expression()}",
                    param.when_loc or param.loc,
                    path,
                    "name a value the other param can take",
                )


def holds(param: Param, chosen: dict[str, Any]) -> bool:
    """Whether `param`'s `when:` holds for the values chosen so far."""
    if param.when is None:
        return True
    path, value = param.when
    allowed = value if isinstance(value, list) else [value]
    return path in chosen and chosen[path] in allowed


def _can_take(param: Param, value: Any) -> bool:
    if param.kind in ("choice", "bool"):
        return value in param.corners()
    return _is_number(value, (int, float)) and param.low <= value <= param.high


def tune_of(spec_data: Any, entries: list[str] | tuple[str, ...], file: str) -> TuneSpec:
    """The TuneSpec of a loaded spec's data and --tune entries; raises SpecError."""
    section = spec_data.get("tune") if isinstance(spec_data, dict) else None
    loc = spec_data.value_loc("tune") if isinstance(spec_data, YamlMap) and section else None
    tune, diagnostics = parse_tune(section, entries, file, loc)
    if any(d.is_error for d in diagnostics):
        raise SpecError(diagnostics)
    return tune
