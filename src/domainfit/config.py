"""Configuration: the whole ``domainfit.toml``, composed of the sections each capability defines.

Each section is defined next to the code it configures (``domainfit.<package>.config``);
this module only composes them into `Config`, checks references between
sections and reads the file.

Unknown keys are errors (``extra="forbid"``), so a typo never silently falls
back to a default; so are values of the wrong shape (a table where an array
is expected) and cross-references between sections that do not hold (a
metric named in ``[decide]`` that ``[bench]`` does not compute, see
`validate_config`). Every error is ``file:line: section.key: message``.
Command-line options override the file; the resolved config is saved into
every stage's output.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domainfit.budget.config import RunConfig
from domainfit.compress.config import CalibrateConfig, CompressConfig, CostConfig
from domainfit.core.errors import InputError
from domainfit.data.config import ChunkingConfig, DataConfig
from domainfit.evaluation.config import KNOWN_METRIC, BenchConfig, DecideConfig, EvalConfig
from domainfit.index.config import IndexConfig
from domainfit.migrate.config import MigrateSettings
from domainfit.mine.config import MineConfig
from domainfit.monitor.config import MonitorSettings
from domainfit.recipe.config import RecipeConfig
from domainfit.serve.config import ServeConfig
from domainfit.synth.config import SynthConfig
from domainfit.text.config import TextConfig
from domainfit.train.config import TrainConfig

__all__ = [
    "KNOWN_METRIC",
    "BenchConfig",
    "Config",
    "DataConfig",
    "PipelineConfig",
    "cross_reference_problems",
    "load_config",
    "validate_config",
]


class _Strict(BaseModel):
    """Base for config sections: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PipelineConfig(_Strict):
    """Which optional stages ``domainfit run`` includes."""

    compress: bool = Field(True, description="sweep compression of the shipped (or base) model after eval")
    index: bool = Field(True, description="build the serving index of the deployed system after the decision")


class Config(_Strict):
    """The whole ``domainfit.toml``."""

    data: DataConfig = Field(default_factory=DataConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    compress: CompressConfig = Field(default_factory=CompressConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    calibrate: CalibrateConfig = Field(default_factory=CalibrateConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    migrate: MigrateSettings = Field(default_factory=MigrateSettings)
    train: TrainConfig = Field(default_factory=TrainConfig)
    recipe: RecipeConfig = Field(default_factory=RecipeConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    decide: DecideConfig = Field(default_factory=DecideConfig)
    mine: MineConfig = Field(default_factory=MineConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)


_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def _dotted_key(line: str, start: int, stop: str) -> tuple[list[str], int] | None:
    """Parse a TOML dotted key (bare and quoted parts) from ``line[start:]`` up to ``stop``; return (parts, end)."""
    parts: list[str] = []
    i = start
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] in "\"'":
            quote, i, part = line[i], i + 1, ""
            while i < len(line) and line[i] != quote:
                if quote == '"' and line[i] == "\\" and i + 1 < len(line):
                    part += _ESCAPES.get(line[i + 1], line[i + 1])
                    i += 2
                    continue
                part += line[i]
                i += 1
            if i >= len(line):
                return None
            i += 1
        else:
            bare = _BARE.match(line, i)
            if bare is None:
                return None
            part, i = bare.group(), bare.end()
        parts.append(part)
        while i < len(line) and line[i] in " \t":
            i += 1
        if line.startswith(stop, i):
            return parts, i + len(stop)
        if i >= len(line) or line[i] != ".":
            return None
        i += 1


def _toml_keys(text: str) -> list[tuple[int, tuple[str | int, ...]]]:
    """Every table header and key of a TOML text as ``(line, full path)``, in file order.

    Paths are what pydantic reports as locations: ``[bench]`` + ``depth = 3`` is
    ``("bench", "depth")``; the n-th ``[[compress.pq]]`` table is ``("compress", "pq", n)``.
    """
    found: list[tuple[int, tuple[str | int, ...]]] = []
    current: tuple[str | int, ...] = ()
    arrays: dict[tuple[str | int, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" \t")
        if stripped.startswith("[["):
            parsed = _dotted_key(stripped, 2, "]]")
            if parsed is not None:
                path = tuple(parsed[0])
                arrays[path] = arrays.get(path, -1) + 1
                current = (*path, arrays[path])
                found.append((number, path))
                found.append((number, current))
            continue
        if stripped.startswith("["):
            parsed = _dotted_key(stripped, 1, "]")
            if parsed is not None:
                current = tuple(parsed[0])
                found.append((number, current))
            continue
        parsed = _dotted_key(line, 0, "=")
        if parsed is not None:
            found.append((number, (*current, *parsed[0])))
    return found


def _line_of(text: str, loc: tuple[int | str, ...]) -> int:
    """Line number of the key named by a validation error location (0 when not found).

    ``loc`` is pydantic's location, for example ``("bench", "depth")`` or
    ``("bench", "metrics", 1)``. Table headers (``[bench.similarity]``,
    ``[[compress.pq]]``), dotted and quoted keys and inline tables are honoured,
    so the same key in two sections is told apart. A location with no line of
    its own (a list item, a key inside an inline table, a key left at its
    default) gets the line of its nearest enclosing key or table.
    """
    if not loc:
        return 0
    best, best_length = 0, 0
    for number, path in _toml_keys(text):
        if path == tuple(loc):
            return number
        if best_length < len(path) < len(loc) and tuple(loc[: len(path)]) == path:
            best, best_length = number, len(path)
    return best


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Return the config model at a location (``("compress", "operating_point")`` -> its model), or None."""
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _kind(value: Any) -> str:
    """Name a TOML value's kind, for messages: ``a table``, ``an array``, ``a string``..."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


_TABLE_ERRORS = {"model_type", "model_attributes_type", "dict_type"}
_SHAPE_ERRORS = {"list_type", "string_type", "int_type", "float_type", "bool_type", "tuple_type", "set_type"}


def _located(err: Any) -> tuple[tuple[int | str, ...], str]:
    """Turn a pydantic error into (location, message): model-level errors name the key they are about."""
    loc = tuple(err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    kind = err["type"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind in _TABLE_ERRORS:
        return loc, f"must be a table ([{'.'.join(str(p) for p in loc)}] with keys), got {_kind(err.get('input'))}"
    if kind in _SHAPE_ERRORS:
        return loc, f"{message}, got {_kind(err.get('input'))}"
    model = _model_at(loc) if kind == "value_error" else None
    first = re.match(r"[a-z_]+", message)
    if model is not None and first is not None and first.group() in model.model_fields:
        loc = (*loc, first.group())  # "primary_metric 'x' is not in metrics" is about primary_metric
    return loc, message


def _metric_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Metrics named in one section that the section producing them does not compute."""
    problems: list[tuple[tuple[str, ...], str]] = []
    for name in ("bench", "eval"):
        section = getattr(config, name)
        if section.primary_metric not in section.metrics:
            if "primary_metric" in section.model_fields_set or "metrics" not in section.model_fields_set:
                problems.append(
                    (
                        (name, "primary_metric"),
                        f"{section.primary_metric!r} is not computed: {name}.metrics is {section.metrics}; "
                        "add it there or pick one of them",
                    )
                )
            else:
                problems.append(
                    (
                        (name, "metrics"),
                        f"does not include the primary metric {section.primary_metric!r} (the default); "
                        f"add it or set {name}.primary_metric",
                    )
                )
    metric = config.decide.metric
    for name, reads in (("bench", "bench/metrics.json (before training)"), ("eval", "eval/metrics.json (after)")):
        computed = getattr(config, name).metrics
        if metric in computed:
            continue
        if "metric" in config.decide.model_fields_set or "metrics" not in getattr(config, name).model_fields_set:
            problems.append(
                (
                    ("decide", "metric"),
                    f"{metric!r} is not computed by [{name}] (metrics = {computed}); decide reads it from {reads}: "
                    f"add it to {name}.metrics",
                )
            )
        else:
            problems.append(
                (
                    (name, "metrics"),
                    f"does not include {metric!r}, which decide.metric (the default) reads from {reads}; "
                    "add it or set decide.metric",
                )
            )
    return problems


def _split_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Split names (they become ``qrels/<split>.tsv``) of the sections whose models do not check them."""
    from domainfit.data.checks import split_name_problem

    keys = {
        "train": ("train_split", "eval_split"),
        "mine": ("train_split",),
        "synth": ("train_split",),
        "compress": ("split",),
        "calibrate": ("split", "eval_split"),
    }
    problems: list[tuple[tuple[str, ...], str]] = []
    for section, names in keys.items():
        for key in names:
            value = getattr(getattr(config, section), key)
            problem = split_name_problem(value) if value is not None else None
            if problem is not None:
                problems.append(((section, key), problem))
    return problems


def _model_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Bench models whose system names would collide or could not be written (TREC run tags, file names)."""
    from domainfit.data.checks import id_problem
    from domainfit.evaluation.config import short_name

    models = config.bench.models
    if len(models) < 2:
        return []
    seen: dict[str, str] = {}
    for model in models:
        label = short_name(model)
        problem = id_problem(label)
        if problem is not None:
            return [(("bench", "models"), f"model {model!r} gives the system name label {label!r}, which {problem}")]
        if label in seen:
            what = "is listed twice" if seen[label] == model else f"and {seen[label]!r} both give the label {label!r}"
            return [(("bench", "models"), f"model {model!r} {what}: their systems would overwrite each other")]
        seen[label] = model
    return []


def _calibrate_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Compression configuration names of ``[calibrate]`` that can never be built (whatever the model's width)."""
    from domainfit.compress.spec import _SPEC, parse_spec
    from domainfit.core.errors import UsageError

    if "configurations" not in config.calibrate.model_fields_set:
        return []
    for name in config.calibrate.configurations:
        match = _SPEC.match(name.strip())
        width = int(match["dim"]) if match and match["dim"] else 8 * max(1, int(match["m"] or 1) if match else 1)
        try:
            parse_spec(name, width)
        except UsageError as exc:
            return [(("calibrate", "configurations"), str(exc))]
    return []


def cross_reference_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Return what one section of ``config`` names that another does not provide, as ``[(location, message)]``.

    Checked: the primary metrics of ``[bench]`` and ``[eval]`` are among their
    metrics; ``decide.metric`` is computed by both ``[bench]`` and ``[eval]``
    (decide reads it from their metrics.json); split names can be file names;
    ``[bench]`` models give distinct, writable system names; ``[calibrate]``
    configuration names parse. Whether a split exists in the data is checked
    once the data is loaded (`domainfit.data.checks.check_evaluated_split`).
    """
    return [
        *_metric_problems(config),
        *_split_problems(config),
        *_model_problems(config),
        *_calibrate_problems(config),
    ]


def validate_config(config: Config, text: str = "", source: str | Path = "<options>") -> Config:
    """Raise `InputError` (``file:line: section.key: message``) for the first cross-reference problem."""
    for loc, message in cross_reference_problems(config):
        raise InputError(source, _line_of(text, loc), ".".join(loc), message)
    return config


def load_config(path: Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Load ``domainfit.toml`` (or defaults when ``path`` is None) and apply CLI overrides.

    Overrides are ``{section: {key: value}}``; None values are ignored.
    Raises `InputError` naming the file, line and key on any problem: a bad
    value, a value of the wrong shape (a table where an array is expected), or
    a cross-reference between sections that does not hold (`validate_config`).
    The ``[text]`` section is passed by every stage to every loader, encoder and
    training example it makes (`domainfit.text.config`), so they treat text alike.
    """
    raw: dict[str, Any] = {}
    text = ""
    source = str(path) if path else "<options>"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8-sig")
            raw = tomllib.loads(text)
        except FileNotFoundError:
            raise InputError(path, 0, "-", "config file not found") from None
        except UnicodeDecodeError as exc:
            raise InputError(path, 0, "-", f"invalid UTF-8 ({exc.reason})") from None
        except OSError as exc:
            raise InputError(path, 0, "-", f"cannot read the config file ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            where = re.search(r"\(at line (\d+)", str(exc))
            line = int(where.group(1)) if where else getattr(exc, "lineno", 0) or 0
            raise InputError(path, line, "-", f"invalid TOML ({str(exc).split(' (at')[0]})") from None
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None and isinstance(raw.setdefault(section, {}), dict):
                raw[section][key] = value  # a section that is not a table is reported below
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        loc, message = _located(exc.errors()[0])
        raise InputError(source, _line_of(text, loc), ".".join(str(p) for p in loc) or "-", message) from None
    validate_config(config, text, source)
    return config
