"""The ``cost`` stage: price the corpus (and projected sizes) with tiers, write ``<workspace>/cost/``.

Input: optionally a BEIR folder (its corpus size is the number of vectors and
its documents feed the throughput probe), a workspace and a `CostConfig`.
Output files: ``cost.json`` (every number and assumption), ``summary.md`` and
``manifest.json``, written together. The pricing is `domainfit.compress.cost`.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import ClassVar

from domainfit import __version__
from domainfit.compress.config import CostConfig
from domainfit.compress.cost import CostReport, cost_report
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.render.cost import cost_markdown
from domainfit.stages.contract import SHIP, Previous, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig


def _tier_line(path: Path | None, tier: str) -> int:
    """Line of ``dims`` in ``[cost.tiers.<tier>]`` of the config file (0 when not found)."""
    if path is None or not path.is_file():
        return 0
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            inside = header.group(1).strip() == f"cost.tiers.{tier}"
        elif inside and re.match(r"^\s*dims\s*=", line):
            return number
    return 0


def fit_tiers(config: CostConfig, model_dims: int, config_path: Path | None) -> tuple[CostConfig, list[str]]:
    """Check tier widths against the model: an error for tiers the user set, narrowed with a note for defaults."""
    notes: list[str] = []
    tiers = dict(config.tiers)
    for name, tier in config.tiers.items():
        if tier.dims is None or tier.dims <= model_dims:
            continue
        if "tiers" in config.model_fields_set:
            raise InputError(
                config_path or "<options>",
                _tier_line(config_path, name),
                f"cost.tiers.{name}.dims",
                f"{tier.dims} exceeds the model's {model_dims} dimensions",
            )
        tiers[name] = tier.model_copy(update={"dims": model_dims})
        notes.append(
            f"default tier '{name}' keeps {tier.dims} dimensions, more than the model's {model_dims}: used all"
        )
    return config.model_copy(update={"tiers": tiers}), notes


def _probe_texts(data: Path | None, count: int, max_line_bytes: int, text: TextConfig) -> list[str]:
    """Sample ``count`` documents of DATA (or of the demo corpus), seeded."""
    from domainfit.data.beir import read_corpus
    from domainfit.data.demo import demo_path

    root = data if data is not None else demo_path()
    corpus = read_corpus(root / "corpus.jsonl", max_line_bytes, text)
    texts = [doc.full_text() for doc in corpus.values()]
    return random.Random(13).sample(texts, min(count, len(texts)))


class CostStage(Stage[CostReport]):
    """Price the index of the corpus (or of ``[cost] vectors`` vectors) with storage tiers.

    Inputs: the workspace, a BEIR folder or None (then ``config.vectors`` is
    required and the probe reads the demo corpus), the settings and their file
    (for error lines), the largest JSONL record, the window the throughput probe
    encodes with and the ``[text]`` settings. Output: the `CostReport`.
    """

    name: ClassVar[str] = "cost"
    command: ClassVar[str | None] = "cost"
    panel: ClassVar[str] = SHIP

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str | None,
        config: CostConfig,
        *,
        config_path: Path | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_seq_length: int | None = 256,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.config_path = config, config_path
        self.max_line_bytes, self.max_seq_length, self.text = max_line_bytes, max_seq_length, text
        self.vectors: int | None = config.vectors

    def check(self) -> None:
        """Read (and check) the corpus for its size, before the model loads; the size must be known."""
        root = self.data
        if root is not None and not (root / "corpus.jsonl").is_file():
            raise InputError(root, 0, "-", "not a BEIR folder (no corpus.jsonl)")
        if self.vectors is None and root is None:
            raise UsageError("the number of vectors is unknown: give a DATA folder, --demo or --vectors")
        if root is not None:
            from domainfit.data.beir import read_corpus

            n_docs = len(read_corpus(root / "corpus.jsonl", self.max_line_bytes, self.text))
            self.vectors = n_docs if self.vectors is None else self.vectors

    def inputs(self) -> dict[str, Input]:
        """Declare the data (when given), the settings and the model."""
        return {
            "data": Value(str(self.data) if self.data else None),
            "data_sha256": DataFiles(self.data) if self.data is not None else Value(None, of="data"),
            "config": Section(self.config),
            "model_sha256": Model(self.config.model),
            "max_seq_length": Value(self.max_seq_length),
            "domainfit_version": Value(__version__),
        }

    def compute(self, out: Path, previous: Previous | None) -> CostReport:
        """Load the model, fit the tiers to its width, probe its throughput (unless given) and price."""
        from domainfit.core.models import load_bi_encoder

        assert self.vectors is not None
        config = self.config
        model = load_bi_encoder(config.model, max_seq_length=self.max_seq_length)
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dims = int(get_dim() or 0)
        config, notes = fit_tiers(config, dims, self.config_path)
        if config.embed_docs_per_second is not None:
            rate, source = config.embed_docs_per_second, "given (cost.embed_docs_per_second)"
        else:
            from domainfit.compress.probe import measure_throughput
            from domainfit.core.progress import progress_bar

            texts = _probe_texts(self.data, config.probe_documents, self.max_line_bytes, self.text)
            with progress_bar("probing embedding throughput", len(texts)) as advance:
                probe = measure_throughput(model, texts)
                advance(len(texts))
            rate = probe.docs_per_second
            source = f"measured on this machine: {probe.documents} documents in {probe.seconds:.2f} s"
        report = cost_report(
            config,
            vectors=self.vectors,
            model=config.model,
            model_dims=dims,
            docs_per_second=rate,
            throughput_source=source,
            notes=notes,
        )
        atomic_write_json(out / "cost.json", report.to_json())
        atomic_write_text(out / "summary.md", cost_markdown(report))
        return report

    def load(self, folder: Path) -> CostReport:
        """Read ``cost.json`` back."""
        return read_result(folder / "cost.json", CostReport.from_json)


def run_cost(
    data: Path | None,
    workspace: Workspace,
    config: CostConfig,
    *,
    config_path: Path | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_seq_length: int | None = 256,
    text: TextConfig = DEFAULT_TEXT,
    force: bool = False,
) -> CostReport:
    """Price the index and write the cost artifacts (up to date when the data, settings and model did not change).

    Inputs: a BEIR folder or None (then ``config.vectors`` is required and the
    probe reads the demo corpus), the workspace, the config and its file (for
    error lines). Output: the `CostReport`. Raises `UsageError` when the number
    of vectors is unknown and `InputError` for a tier wider than the model;
    nothing is written then. ``force`` measures and prices again when nothing changed.
    """
    stage = CostStage(workspace, data, config, config_path=config_path, max_line_bytes=max_line_bytes,
                      max_seq_length=max_seq_length, text=text)  # fmt: skip
    return run_stage(stage, force=force).result
