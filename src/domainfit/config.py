"""Configuration: pydantic models for ``domainfit.toml``.

Unknown keys are errors (``extra="forbid"``), so a typo never silently falls
back to a default. Command-line options override the file; the resolved
config is saved into every stage's output.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domainfit.calibrate import CalibrateConfig
from domainfit.compress.config import CompressConfig
from domainfit.compress.cost import CostConfig
from domainfit.data.chunking import ChunkingConfig
from domainfit.decide import DecideConfig
from domainfit.errors import InputError
from domainfit.eval_config import EvalConfig
from domainfit.models import DEFAULT_MODEL
from domainfit.retrieval.similarity_config import SimilarityConfig
from domainfit.synth.config import SynthConfig
from domainfit.synth.mine_stage import MineConfig
from domainfit.text.config import TextConfig, set_text_config
from domainfit.train.config import TrainConfig

KNOWN_METRIC = re.compile(r"^(ndcg|recall|mrr|map|precision)(@\d+)?$")


class _Strict(BaseModel):
    """Base for config sections: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BenchConfig(_Strict):
    """Settings of the ``bench`` stage (baselines on one split)."""

    split: str = Field("test", description="qrels split to evaluate")
    tune_split: str | None = Field("dev", description="split used to tune the hybrid weight (skipped if absent)")
    models: list[str] = Field(
        default_factory=lambda: [DEFAULT_MODEL], min_length=1, description="bi-encoders to evaluate"
    )
    reranker: str | None = Field(None, description="cross-encoder name or path; reranks the best hybrid run")
    rerank_depth: int = Field(50, ge=1, le=1000)
    depth: int = Field(100, ge=1, le=10000, description="documents retrieved per query")
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    primary_metric: str = "ndcg@10"
    rrf_k: int = Field(60, ge=1)
    hybrid: bool = True
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = Field(256, ge=8)
    slice_fields: list[str] | None = Field(None, description="query metadata fields to slice by (None = all)")
    significance_test: str = "student"
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    similarity: SimilarityConfig = Field(
        default_factory=SimilarityConfig, description="facets, time decay, category hierarchy (all off)"
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        """Reject metric names the evaluator does not know."""
        bad = [m for m in value if not KNOWN_METRIC.match(m)]
        if bad:
            raise ValueError(f"unknown metric(s) {bad}; use ndcg@k, recall@k, mrr@k, map@k, map, precision@k")
        return value


class DataConfig(_Strict):
    """Settings of the data layer."""

    max_line_mib: int = Field(8, ge=1, description="largest accepted JSONL record")


class PipelineConfig(_Strict):
    """Which optional stages ``domainfit run`` includes."""

    compress: bool = Field(True, description="sweep compression of the shipped (or base) model after eval")


class Config(_Strict):
    """The whole ``domainfit.toml``."""

    data: DataConfig = Field(default_factory=DataConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    compress: CompressConfig = Field(default_factory=CompressConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    calibrate: CalibrateConfig = Field(default_factory=CalibrateConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    decide: DecideConfig = Field(default_factory=DecideConfig)
    mine: MineConfig = Field(default_factory=MineConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    text: TextConfig = Field(default_factory=TextConfig)


_SECTION = re.compile(r"^[ \t]*\[([^\[\]]+)\][ \t]*(#.*)?$")


def _line_of(text: str, loc: tuple[int | str, ...]) -> int:
    """Line number of the key named by a validation error location (0 when not found).

    ``loc`` is pydantic's location, for example ``("bench", "depth")`` or
    ``("bench", "metrics", 1)``; the section header is honoured, so the same
    key in two sections is told apart. A location of one part names a section.
    """
    parts = [p for p in loc if isinstance(p, str)]
    if not parts:
        return 0
    section, key = (".".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (None, parts[0])
    key_line = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=")
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _SECTION.match(line)
        if header:
            current = header.group(1).strip()
            if section is None and current == key:
                return number
            continue
        if current == section and key_line.match(line):
            return number
    return 0


def load_config(path: Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Load ``domainfit.toml`` (or defaults when ``path`` is None) and apply CLI overrides.

    Overrides are ``{section: {key: value}}``; None values are ignored.
    Raises `InputError` naming the file, line and key on any problem. The
    ``[text]`` section becomes the process's text settings (`set_text_config`),
    so loaders, encoders and training treat text alike.
    """
    raw: dict[str, Any] = {}
    text = ""
    source = str(path) if path else "<options>"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
            raw = tomllib.loads(text)
        except FileNotFoundError:
            raise InputError(path, 0, "-", "config file not found") from None
        except UnicodeDecodeError as exc:
            raise InputError(path, 0, "-", f"invalid UTF-8 ({exc.reason})") from None
        except tomllib.TOMLDecodeError as exc:
            where = re.search(r"\(at line (\d+)", str(exc))
            line = int(where.group(1)) if where else getattr(exc, "lineno", 0) or 0
            raise InputError(path, line, "-", f"invalid TOML ({str(exc).split(' (at')[0]})") from None
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None:
                raw.setdefault(section, {})[key] = value
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "-"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        raise InputError(source, _line_of(text, tuple(err["loc"])), loc, message) from None
    set_text_config(config.text)  # one text treatment for every stage of this process
    return config
