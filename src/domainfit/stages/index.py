"""The ``index`` stage: the serving index of the deployed system, built incrementally in the workspace.

Input: a BEIR folder (its ``corpus.jsonl``), the workspace (what ``decide``
after training says to deploy, and eval's record of that system), the
``[index]`` settings and eval's encoding settings. Output:

* ``<workspace>/index/`` — the index folder: the store (``lancedb/`` or
  ``qdrant/``), written in place, and ``serving.json``, the production pointer
  (backend, corpus, model version, tag, the model to encode queries with, the
  served mode), replaced atomically when a build has finished;
* ``<workspace>/index/build/`` — the stage's folder under the contract:
  ``result.json``, ``index.md`` (the report's section) and ``manifest.json``.

Why the store is not in the staged folder: a staged folder is a copy swapped
in whole, and copying an index to re-embed a hundred changed documents would
cost as much as the index, and would lose the versions production reads. The
store has its own atomic commits and versions instead: the stage writes only
what changed (`domainfit.index.embed`), commits in batches (a killed build
resumes without redoing a committed batch), and moves production only at the
end, by tagging the new version and replacing ``serving.json``. The contract
still owns validation (the whole corpus is checked before the lock and before
any write, so bad input leaves the index exactly as it was), the lock, the
up-to-date check and the build's manifest; a store that no longer matches the
build's result (its pointer moved, or it is gone) makes the stored result stale.

Which model: ``[index] model`` (``--model``) when set; else the system
``decide`` after training chose to deploy (``decide/decision-after.json``),
read from eval's record of it (``eval/metrics.json``: its model, the hybrid's
fusion and weight, the encoding settings), so a hybrid that won is served as
that hybrid; else the base model, dense. Document embeddings are read from the
workspace's embedding cache when eval already computed them for that model.

How the vectors are stored: ``[index] precision`` (`domainfit.index.precision`):
float32 by default, or the operating point ``compress`` chose for that model
(``operating-point``), or an explicit configuration (``int8``, ``binary+float32x4``,
``truncate:256``). A quantised precision is its own model version
(``<model>_<fingerprint>_<precision>``), so float32 and compressed vectors can
live side by side; int8 ranges are calibrated on the whole corpus before the
first batch is written, and recorded with the vectors, so a re-run keeps them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from domainfit import __version__
from domainfit.compress.spec import FULL_PRECISION
from domainfit.core.files import atomic_write_json, atomic_write_text, read_json_or_none
from domainfit.core.progress import is_quiet, set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.evaluation.config import EvalConfig, short_name
from domainfit.index.backend import IndexDocument, ServingPointer, open_backend, version_name, write_pointer
from domainfit.index.config import IndexConfig
from domainfit.index.precision import OPERATING_POINT, resolve_precision
from domainfit.index.results import IndexResult
from domainfit.index.versions import VersionRecord, record_version
from domainfit.stages.contract import SHIP, Previous, ReportSection, Stage, StaleOutput, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, Upstream, Value
from domainfit.stages.migrate import promoted_production
from domainfit.text.config import DEFAULT_TEXT, TextConfig

#: The stage's own folder inside the index folder.
BUILD = "build"


@dataclass
class Deployed:
    """The system to serve: its name, model, mode and fusion, how eval encoded with it, and why it was chosen."""

    system: str
    model: str
    mode: str = "dense"
    fusion: str = "rrf"
    alpha: float | None = None
    max_seq_length: int | None = None
    notes: list[str] = field(default_factory=list)


def _systems(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """Return eval's systems by name with their recorded settings ({} when eval has not run)."""
    path = workspace.stage_dir("eval") / "metrics.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {s["name"]: dict(s.get("config") or {}) for s in data.get("systems", [])}


def _decided(workspace: Workspace) -> str | None:
    """Return the system ``decide`` after training says to deploy (None when it has not decided one)."""
    path = workspace.stage_dir("decide") / "decision-after.json"
    if not path.is_file():
        return None
    deploy = ((json.loads(path.read_text(encoding="utf-8")).get("numbers") or {}).get("deploy")) or {}
    system = deploy.get("system")
    return str(system) if system else None


def deployed_system(workspace: Workspace, config: IndexConfig, eval_cfg: EvalConfig) -> Deployed:
    """Return what to index and serve (see the module docstring for the order of the sources)."""
    if config.model is not None:
        return Deployed(f"dense:{short_name(config.model)}", config.model, max_seq_length=eval_cfg.max_seq_length)
    system = _decided(workspace)
    systems = _systems(workspace)
    if system is None or system not in systems:
        note = "no deployed system was decided after training: indexed the base model, dense"
        return Deployed(f"dense:{short_name(eval_cfg.base_model)}", eval_cfg.base_model, notes=[note],
                        max_seq_length=eval_cfg.max_seq_length)  # fmt: skip
    kind, _, label = system.partition(":")
    notes: list[str] = []
    if kind.endswith("-chunked"):
        kind = kind.removesuffix("-chunked")
        notes.append(f"{system} searches chunks; the index holds whole documents, so it serves {kind}:{label}")
    recorded = systems[system]
    dense = systems.get(f"dense:{label}", {})
    if kind == "bm25" or system == "bm25":
        base = systems.get("dense:base", {}).get("model") or eval_cfg.base_model
        seq = systems.get("dense:base", {}).get("max_seq_length", eval_cfg.max_seq_length)
        return Deployed(system, str(base), mode="bm25", max_seq_length=seq, notes=notes)
    model = str(recorded.get("model") or dense.get("model") or eval_cfg.base_model)
    seq = dense.get("max_seq_length", eval_cfg.max_seq_length)
    if kind == "hybrid-convex":
        return Deployed(system, model, "hybrid", "convex", float(recorded.get("alpha", 0.5)), seq, notes)
    if kind == "hybrid-rrf":
        return Deployed(system, model, "hybrid", "rrf", None, seq, notes)
    return Deployed(system, model, "dense", max_seq_length=seq, notes=notes)


def _folder_size(path: Path) -> int:
    """Return the bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _threshold(workspace: Workspace, fingerprint: str, configuration: str = FULL_PRECISION) -> float | None:
    """Return calibrate's threshold for the model of this fingerprint at this configuration (None: not calibrated).

    ``configuration``: the stored precision's name (calibrate scores pairs the
    way each compression configuration scores them; its float32 one is ``full/float32``).
    """
    path = workspace.stage_dir("calibrate") / "thresholds.json"
    if not path.is_file():
        return None
    for model in json.loads(path.read_text(encoding="utf-8")).get("models", []):
        if model.get("fingerprint") == fingerprint:
            for conf in model.get("configurations", []):
                if conf.get("configuration") == configuration and "threshold" in conf:
                    return float(conf["threshold"])
            return None
    return None


class IndexStage(Stage[IndexResult]):
    """Build (or bring up to date) the serving index of the deployed system; move production to it.

    Inputs: the workspace, the BEIR folder, the ``[index]`` settings, eval's
    settings (base model, batch size, sequence length: queries and documents are
    encoded as eval encoded them), the largest JSONL record and the ``[text]``
    settings. Output: the `IndexResult`. Raises `InputError` on a bad corpus row
    (nothing written), `UsageError` on a bad setting.
    """

    name: ClassVar[str] = "index"
    command: ClassVar[str | None] = "index"
    panel: ClassVar[str] = SHIP
    reads: ClassVar[tuple[str, ...]] = ("decide", "eval", "calibrate", "compress")
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection(f"{BUILD}/index.md", 85),)
    subfolder: ClassVar[str] = BUILD

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: IndexConfig,
        eval_config: EvalConfig,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.eval_config, self.max_line_bytes, self.text = config, eval_config, max_line_bytes, text
        self.docs: list[IndexDocument] | None = None
        self.deployed: Deployed | None = None

    @property
    def home(self) -> Path:
        """The index folder (the store and ``serving.json``)."""
        return self.workspace.stage_dir(self.name)

    @property
    def corpus(self) -> str:
        """The table / collection name."""
        assert self.data is not None
        return self.config.corpus or self.data.name

    def check(self) -> None:
        """Read and validate the whole corpus (file:line: field on the first bad row) before anything is written."""
        from domainfit.index.corpus import read_index_corpus

        assert self.data is not None
        self.docs = read_index_corpus(self.data / "corpus.jsonl", max_line_bytes=self.max_line_bytes, text=self.text)

    def inputs(self) -> dict[str, Input]:
        """Declare the corpus, the settings, the model and what decided it."""
        assert self.data is not None
        self.deployed = deployed_system(self.workspace, self.config, self.eval_config)
        decided = self.config.model is None
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Section(self.config),
            "encode": Section(self.eval_config.encode),
            "model": Model(self.deployed.model),
            "system": Value([self.deployed.system, self.deployed.mode, self.deployed.fusion, self.deployed.alpha]),
            "max_seq_length": Value(self.deployed.max_seq_length),
            "decision_sha256": Upstream("decide", self.workspace.stage_dir("decide") / "decision-after.json")
            if decided
            else Value(None),
            "calibrate_sha256": Upstream("calibrate", self.workspace.stage_dir("calibrate") / "thresholds.json"),
            "compress_sha256": Upstream("compress", self._compress_results())
            if self.config.precision == OPERATING_POINT
            else Value(None),
            "text_normalization": Text(self.text, only_normalization=True),
            "domainfit_version": Value(__version__),
        }

    def _compress_results(self) -> Path:
        """Return compress's ``results.json`` (its operating point); `UsageError` when it is not there."""
        from domainfit.index.precision import read_operating_point

        path = self.workspace.stage_dir("compress") / "results.json"
        read_operating_point(path)  # refuses a missing or choice-less record before anything is written
        return path

    def _precision(self, store: Any, version: str, dimension: int, retriever: Any, precision: Any) -> Any:
        """Return the precision of ``version`` in the store: the recorded one, or a new one calibrated and added.

        A version already in the store keeps the precision (and int8 ranges) it was
        built with, so a re-run embeds new documents with the same codes; a new one
        needing int8 ranges has them calibrated on the whole corpus first (as compress does).
        """
        from domainfit.index.precision import calibrate_ranges

        assert self.docs is not None
        if version in store.versions():
            return store.precision(version)
        texts = [d.embed_text() for d in self.docs]
        precision = calibrate_ranges(precision, texts, _quiet(retriever.encode_documents),
                                     batch_size=self.config.batch_size)  # fmt: skip
        store.add_version(version, dimension, precision)
        return precision

    def compute(self, out: Path, previous: Previous | None) -> IndexResult:
        """Sync the store with the corpus for the deployed model, tag it, move the pointer, write the result."""
        assert self.docs is not None and self.deployed is not None and self.data is not None
        from domainfit.retrieval.dense import DenseRetriever

        deployed, cfg = self.deployed, self.config
        _clear_leftovers(self.home, out)
        retriever = DenseRetriever(
            deployed.model,
            cache_dir=self.workspace.cache_dir / "embeddings",
            batch_size=self.eval_config.batch_size,
            max_seq_length=deployed.max_seq_length,
            text=self.text,
            encode=self.eval_config.encode,
        )
        if self.eval_config.encode.backend != "torch":  # the version is named after the runtime that encodes it
            retriever.choose_backend([doc.embed_text() for doc in self.docs])
        dimension = encoder_dimension(retriever)
        wanted = resolve_precision(cfg.precision, dimension, retriever.fingerprint,
                                   self.workspace.stage_dir("compress") / "results.json")  # fmt: skip
        label = model_version(deployed.model, retriever)
        version = version_name(f"{label}_{wanted.slug()}") if wanted.slug() else label
        store = open_backend(self.home, self.corpus, backend=cfg.backend)
        try:
            precision = self._precision(store, version, dimension, retriever, wanted)
            synced = self._sync(store, version, dimension, retriever)
            record_version(self.home, version_record(version, deployed.model, dimension, retriever, self.text))
            store.optimize()
            tag = f"{cfg.tag_prefix}-{version}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"[:120]
            table_version = store.create_tag(tag)
            pointer = ServingPointer(
                backend=cfg.backend,
                corpus=self.corpus,
                version=version,
                dimension=dimension,
                model=str(Path(deployed.model).resolve()) if Path(deployed.model).exists() else deployed.model,
                tag=tag,
                table_version=table_version,
                mode=deployed.mode,  # type: ignore[arg-type]
                fusion=deployed.fusion,  # type: ignore[arg-type]
                alpha=deployed.alpha,
                system=deployed.system,
                min_score=_threshold(self.workspace, retriever.fingerprint, precision.name)
                if deployed.mode == "dense"
                else None,
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                max_seq_length=retriever.model.max_seq_length,
                query_prompt_name=retriever.query_prompt_name,
                precision=precision.name,
            )
            sample = _sample(store, retriever, pointer, self._sample_query())
            versions, tags = store.versions(), store.tags()
        finally:
            store.close()
        promoted = promoted_production(self.workspace, read_json_or_none(self.home / "serving.json"))
        if promoted is None:
            write_pointer(self.home, pointer)
        result = IndexResult(
            backend=cfg.backend,
            corpus=self.corpus,
            folder=str(self.home),
            system=deployed.system,
            model=pointer.model,
            version=version,
            documents=len(self.docs),
            pointer=pointer.to_json(),
            sync=synced.to_json(),
            versions=versions,
            tags=tags,
            size_bytes=_folder_size(self.home / cfg.backend),
            sample=sample,
            notes=[*deployed.notes, *_precision_notes(precision), *_kept_production(promoted, version, tag)],
            output_dir=str(self.folder),
            served=promoted is None,
        )
        from domainfit.render.index import index_markdown

        atomic_write_json(out / "result.json", result.to_json())
        atomic_write_text(out / "index.md", index_markdown(result))
        return result

    def _sync(self, store: Any, version: str, dimension: int, retriever: Any) -> Any:
        """Embed what the store lacks: here (the encoder reads eval's cache) or on Ray Data (``engine = "ray"``)."""
        from domainfit.index.embed import sync_index

        assert self.docs is not None and self.deployed is not None
        cfg = self.config
        if cfg.engine == "ray":
            from domainfit.index.ray_embed import ray_sync_index

            return ray_sync_index(
                store,
                self.docs,
                version,
                dimension,
                self.deployed.model,
                max_seq_length=self.deployed.max_seq_length,
                workers=cfg.ray_workers,
                batch_size=cfg.batch_size,
                encode_batch_size=self.eval_config.batch_size,
            )
        encode = _quiet(retriever.encode_documents)
        return sync_index(store, self.docs, version, dimension, encode, batch_size=cfg.batch_size)

    def _sample_query(self) -> str:
        """Return the report's sample query: the configured one, else the first benchmark query."""
        if self.config.sample_query:
            return self.config.sample_query
        assert self.data is not None
        path = self.data / "queries.jsonl"
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        text = json.loads(line).get("text")
                        if isinstance(text, str) and text.strip():
                            return text
        return self.docs[0].title or self.docs[0].text[:60] if self.docs else "search"

    def load(self, folder: Path) -> IndexResult:
        """Read ``result.json`` back; stale when the production pointer no longer names the build's tag."""
        result = read_result(folder / "result.json", IndexResult.from_json)
        pointer = self.home / "serving.json"
        try:
            current = json.loads(pointer.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StaleOutput(f"the serving pointer is unreadable: {exc}") from None
        if not (self.home / result.backend).is_dir():
            raise StaleOutput("the index changed since this build (the store is gone)")
        if current != result.pointer and promoted_production(self.workspace, current) is None:
            raise StaleOutput("the index changed since this build (the pointer moved)")
        return result


def _kept_production(promoted: Any, version: str, tag: str) -> list[str]:
    """Return the note of a build that left production on a promoted version (none when it moved production)."""
    if promoted is None:
        return []
    return [
        f"production stays on version {promoted.to_version}, which `domainfit migrate promote` put there: "
        f"this build's version {version} is tagged {tag} but not served "
        "(after `domainfit migrate rollback`, the next index run serves it)"
    ]


def _precision_notes(precision: Any) -> list[str]:
    """Say how the vectors are stored when not float32 at full width (bytes per vector against float32)."""
    if precision.is_full:
        return []
    extra = precision.rescore_bytes_per_vector()
    rescored = f", plus a {precision.rescore} rescoring copy of {extra:g} bytes" if extra else ""
    return [
        f"vectors stored as {precision.name}: {precision.bytes_per_vector():g} bytes a vector{rescored} "
        f"(float32: {4 * precision.full_dim}); from {precision.source}"
    ]


def model_version(model: str, retriever: Any) -> str:
    """Return the index's version name of a model as a retriever encodes it: short name and fingerprint."""
    return version_name(f"{short_name(model)}_{retriever.fingerprint[:8]}")


def encoder_dimension(retriever: Any) -> int:
    """Return the width of a retriever's vectors."""
    get_dim = getattr(retriever.model, "get_embedding_dimension", None)
    return int((get_dim or retriever.model.get_sentence_embedding_dimension)() or 0)


def version_record(version: str, model: str, dimension: int, retriever: Any, text: TextConfig) -> VersionRecord:
    """Return the index's record of which model (and encoding settings) produced ``version``."""
    return VersionRecord(
        version=version,
        model=str(Path(model).resolve()) if Path(model).exists() else model,
        dimension=dimension,
        max_seq_length=retriever.model.max_seq_length,
        query_prompt_name=retriever.query_prompt_name,
        document_prompt_name=retriever.document_prompt_name,
        text_normalization=text.normalization(),
        fingerprint=retriever.fingerprint,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def _clear_leftovers(home: Path, out: Path) -> None:
    """Remove staged build folders a killed run left in the index folder (not ``out``, this run's)."""
    import shutil

    for leftover in home.glob(f".{BUILD}.*"):
        if leftover.is_dir() and leftover.resolve() != out.resolve():
            shutil.rmtree(leftover, ignore_errors=True)


def _quiet(encode: Any) -> Any:
    """Wrap an encoder so its own progress bar stays silent inside the sync's bar."""

    def run(texts: list[str]) -> Any:
        was = is_quiet()
        set_quiet(True)
        try:
            return encode(texts)
        finally:
            set_quiet(was)

    return run


def _sample(store: Any, retriever: Any, pointer: ServingPointer, query: str) -> dict[str, Any]:
    """Run one search in the served mode and return it (query, mode, top-5 hits with titles)."""
    from domainfit.index.backend import SearchQuery

    vector = _quiet(retriever.encode_queries)([query])[0].tolist() if pointer.mode != "bm25" else None
    hits = store.search(
        SearchQuery(
            text=query,
            vector=vector,
            mode=pointer.mode,
            k=5,
            version=pointer.version,
            fields=("title",),
            fusion=pointer.fusion,
            alpha=pointer.alpha,
        )
    )
    return {"query": query, "mode": pointer.mode, "hits": [{"id": h.id, "score": h.score, **h.fields} for h in hits]}


def run_index(
    data: Path,
    workspace: Workspace,
    config: IndexConfig,
    eval_config: EvalConfig,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
    force: bool = False,
) -> IndexResult:
    """Build or update the serving index of ``data`` in ``<workspace>/index/``; return the `IndexResult`.

    Raises `InputError` on a bad corpus row and `UsageError` on a bad setting;
    the index is left exactly as it was then. ``force`` rebuilds the result
    (the store still embeds only what it lacks).
    """
    stage = IndexStage(workspace, data, config, eval_config, max_line_bytes=max_line_bytes, text=text)
    return run_stage(stage, force=force).result
