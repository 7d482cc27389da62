"""The first steps of a migration: ``plan``, ``backfill`` and ``bridge`` (see `domainfit.stages.migrate`).

Which model is the new one: ``[migrate] model`` (``--to``), else the system
``decide`` after training says to deploy (as the ``index`` stage finds it),
encoded at ``[migrate] max_seq_length`` (else that system's window as eval
measured it, else eval's). Its model version name is the one ``index``
would give it (`domainfit.stages.index.model_version`), so a later
``domainfit index --model`` of the same model finds its vectors in place.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from domainfit import __version__
from domainfit.core.errors import UsageError
from domainfit.core.files import atomic_write_json
from domainfit.core.workspace import Workspace
from domainfit.evaluation.config import short_name
from domainfit.index.types import IndexDocument
from domainfit.index.versions import read_versions, record_version
from domainfit.migrate.plan import VersionFacts
from domainfit.stages.index import _quiet, deployed_system, encoder_dimension, model_version, version_record
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, Upstream, Value
from domainfit.stages.migrate import (
    BACKFILL_TAG,
    MigrateStep,
    StepResult,
    old_facts,
    open_store,
    store_tags,
)

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.data.beir import BeirDataset
    from domainfit.retrieval.dense import DenseRetriever


def target(workspace: Workspace, config: Config) -> tuple[str, int | None]:
    """Return the new model and the window it encodes at (see the module docstring)."""
    settings = config.migrate
    if settings.model is not None:
        return settings.model, settings.max_seq_length or config.eval.max_seq_length
    deployed = deployed_system(workspace, config.index.model_copy(update={"model": None}), config.eval)
    return deployed.model, settings.max_seq_length or deployed.max_seq_length


def retriever_for(workspace: Workspace, config: Config, model: str, window: int | None, **extra: Any) -> DenseRetriever:
    """Return a retriever of ``model`` encoding as the index does (the workspace's embedding cache)."""
    from domainfit.retrieval.dense import DenseRetriever

    return DenseRetriever(
        model,
        cache_dir=workspace.cache_dir / "embeddings",
        batch_size=config.eval.batch_size,
        max_seq_length=window,
        text=config.text,
        **extra,
    )


def backfill_tag(version: str) -> str:
    """Return the tag ``backfill`` gives the index version holding ``version``'s vectors."""
    return f"{BACKFILL_TAG}-{version}"[:120]


def fit_queries(dataset: BeirDataset, split: str) -> dict[str, str]:
    """Return the judged queries of every split but ``split`` (training queries a bridge may be fitted on)."""
    found: dict[str, str] = {}
    for name, qrels in sorted(dataset.qrels.items()):
        if name != split:
            found |= {qid: dataset.queries[qid].text for qid in qrels if qid in dataset.queries}
    held_out = set(dataset.qrels.get(split, {}))
    return {qid: text for qid, text in found.items() if qid not in held_out}


class _NewModelStep(MigrateStep):
    """A step that encodes with the new model: it resolves the model before anything heavy."""

    def check(self) -> None:
        """Read the pointer and resolve the new model (a model that is not there: exit 2)."""
        from domainfit.core.models import resolve_model

        super().check()
        self.model, self.window = target(self.workspace, self.config)
        resolve_model(self.model)

    def new_retriever(self) -> DenseRetriever:
        """Load the new model as the index encodes with it."""
        return retriever_for(self.workspace, self.config, self.model, self.window)


class PlanStep(_NewModelStep):
    """``migrate plan``: what must be re-embedded for the new model, how long, how many bytes, what cost."""

    step: ClassVar[str] = "plan"
    subfolder: ClassVar[str] = "plan"

    def check(self) -> None:
        """Resolve the model and read the whole corpus (file:line: field on a bad row)."""
        from domainfit.index.corpus import read_index_corpus

        super().check()
        assert self.data is not None
        limit = self.config.data.max_line_mib << 20
        self.docs: list[IndexDocument] = read_index_corpus(
            self.data / "corpus.jsonl", max_line_bytes=limit, text=self.config.text
        )

    def inputs(self) -> dict[str, Input]:
        """Declare the corpus, the settings, the model and the state of the index."""
        assert self.data is not None
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Section(self.settings),
            "cost": Section(self.config.cost),
            "model": Model(self.model),
            "max_seq_length": Value(self.window),
            "pointer_sha256": Upstream("index", self.home / "serving.json"),
            "versions_sha256": Upstream("index", self.home / "versions.json"),
            "store": Value(store_tags(self.home, self.pointer), of="upstream"),
            "text_normalization": Text(self.config.text, only_normalization=True),
            "domainfit_version": Value(__version__),
        }

    def run(self, out: Path) -> StepResult:
        """Measure the new model's rate on documents to embed, and plan the backfill."""
        from domainfit.compress.probe import measure_throughput
        from domainfit.core.progress import progress_bar
        from domainfit.migrate.plan import plan_migration

        retriever = self.new_retriever()
        version, dimension = model_version(self.model, retriever), encoder_dimension(retriever)
        store = open_store(self.home, self.pointer, read_only=True)
        try:
            states = store.states(version)
        finally:
            store.close()
        lacking = [
            d
            for d in self.docs
            if (s := states.get(d.id)) is None or not s.has_vector or s.content_hash != d.content_hash
        ]
        cost = self.config.cost
        if cost.embed_docs_per_second is not None:
            rate, source = cost.embed_docs_per_second, "given (cost.embed_docs_per_second)"
        else:
            pool = [d.embed_text() for d in (lacking or self.docs)]
            texts = random.Random(13).sample(pool, min(cost.probe_documents, len(pool)))
            with progress_bar("probing the new model's throughput", len(texts)) as advance:
                probe = measure_throughput(
                    retriever.model, self.config.text.prepare_all(texts), batch_size=self.config.eval.batch_size
                )
                advance(len(texts))
            rate = probe.docs_per_second
            source = f"measured on this machine: {probe.documents} documents in {probe.seconds:.2f} s"
        old = old_facts(self.home, self.pointer)
        new = VersionFacts(version, self.model, dimension, self.settings.mode or self.pointer.mode)
        paired = min(self.settings.bridge_documents, len(self.docs)) + self._training_queries()
        plan = plan_migration(
            states,
            self.docs,
            old,
            new,
            docs_per_second=rate,
            throughput_source=source,
            cost=cost,
            paired_texts=paired,
            in_cache=lambda todo: retriever.cached_documents([d.embed_text() for d in todo]),
        )
        atomic_write_json(out / "plan.json", plan.to_json())
        numbers = {
            "documents": plan.documents,
            "to_embed": plan.to_embed,
            "already_embedded": plan.already_embedded,
            "in_cache": plan.in_cache,
            "to_write": plan.to_write,
            "to_delete": plan.to_delete,
            "docs_per_second": round(plan.docs_per_second, 3),
            "estimated_seconds": round(plan.estimated_seconds, 3),
            "new_vector_bytes": plan.new_vector_bytes,
            "reembed_usd": plan.reembed_usd,
            "storage_usd_per_year": plan.storage_usd_per_year,
            "bridge_possible": plan.bridge.possible,
            "new_dimension": dimension,
            "old_dimension": old.dimension,
        }
        summary = (
            f"{plan.to_embed} of {plan.documents} documents to embed with {short_name(self.model)} "
            f"(version {version}, {dimension} dims): about {plan.estimated_seconds:.1f} s at "
            f"{plan.docs_per_second:.1f} docs/s, {plan.new_vector_bytes} bytes of new vectors; "
            f"bridge {'possible' if plan.bridge.possible else 'not possible'} ({plan.bridge.reason})"
        )
        return StepResult(self.step, old.version, version, summary, numbers)

    def _training_queries(self) -> int:
        """Count the judged queries outside the benchmark split (what a bridge is also fitted on)."""
        from domainfit.data.beir import load_beir

        assert self.data is not None
        if not (self.data / "queries.jsonl").is_file():
            return 0
        dataset = load_beir(self.data, max_line_bytes=self.config.data.max_line_mib << 20, text=self.config.text)
        return len(fit_queries(dataset, self.settings.split))


class BackfillStep(_NewModelStep):
    """``migrate backfill``: embed the new model's vectors beside the old ones; production does not move."""

    step: ClassVar[str] = "backfill"
    subfolder: ClassVar[str] = "backfill"

    def check(self) -> None:
        """Resolve the model and read the whole corpus before anything is written."""
        from domainfit.index.corpus import read_index_corpus

        super().check()
        assert self.data is not None
        limit = self.config.data.max_line_mib << 20
        self.docs = read_index_corpus(self.data / "corpus.jsonl", max_line_bytes=limit, text=self.config.text)

    def inputs(self) -> dict[str, Input]:
        """Declare the corpus, the model, its window and the store written."""
        assert self.data is not None
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Value([self.settings.model, self.settings.max_seq_length], of="config"),
            "model": Model(self.model),
            "max_seq_length": Value(self.window),
            "store": Value([self.pointer.backend, self.pointer.corpus], of="upstream"),
            "text_normalization": Text(self.config.text, only_normalization=True),
            "domainfit_version": Value(__version__),
        }

    def run(self, out: Path) -> StepResult:
        """Sync the new version's column with the corpus (committed batches), tag it, record its model."""
        from domainfit.index.embed import sync_index

        retriever = self.new_retriever()
        version, dimension = model_version(self.model, retriever), encoder_dimension(retriever)
        if version == self.pointer.version:
            raise UsageError(f"production already serves version {version} ({self.model}): nothing to backfill")
        store = open_store(self.home, self.pointer, read_only=False)
        try:
            synced = sync_index(
                store,
                self.docs,
                version,
                dimension,
                _quiet(retriever.encode_documents),
                batch_size=self.config.index.batch_size,
                description="backfilling the new model's vectors",
            )
            record_version(self.home, version_record(version, self.model, dimension, retriever, self.config.text))
            store.optimize()
            tag = backfill_tag(version)
            table_version = store.create_tag(tag)
        finally:
            store.close()
        record = read_versions(self.home)[version]
        numbers = {
            **synced.to_json(),
            "tag": tag,
            "table_version": table_version,
            "dimension": dimension,
            "model": record.model,
            "max_seq_length": record.max_seq_length,
        }
        summary = (
            f"backfilled version {version}: {synced.embedded} embedded, {synced.already_embedded} already there, "
            f"{synced.written} written, {synced.deleted} deleted; tagged {tag} (table version {table_version}); "
            f"production still reads {self.pointer.tag}"
        )
        return StepResult(self.step, self.pointer.version, version, summary, numbers)

    def still_valid(self, result: StepResult) -> bool:
        """Return True while the backfill's tag still names the version it tagged."""
        tag, version = result.numbers.get("tag"), result.numbers.get("table_version")
        return tag is not None and store_tags(self.home, self.pointer).get(str(tag)) == version


class BridgeStep(_NewModelStep):
    """``migrate bridge``: fit a query-side map from the new model into the old vectors' space; measure it."""

    step: ClassVar[str] = "bridge"
    subfolder: ClassVar[str] = "bridge"

    def check(self) -> None:
        """Resolve both models and load the benchmark (its split must exist)."""
        from domainfit.core.models import resolve_model
        from domainfit.data.beir import load_beir

        super().check()
        if self.pointer.mode == "bm25":
            raise UsageError("production serves BM25 only: there are no old vectors to bridge into")
        self.old = old_facts(self.home, self.pointer)
        resolve_model(self.old.model)
        assert self.data is not None
        self.dataset = load_beir(self.data, max_line_bytes=self.config.data.max_line_mib << 20, text=self.config.text)
        if self.settings.split not in self.dataset.qrels:
            raise UsageError(f"{self.data}: no qrels/{self.settings.split}.tsv to measure the bridge on")

    def inputs(self) -> dict[str, Input]:
        """Declare the benchmark, the settings, both models and their windows."""
        assert self.data is not None
        record = read_versions(self.home).get(self.old.version)
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Section(self.settings),
            "model": Model(self.model),
            "old_model": Model(self.old.model),
            "windows": Value([self.window, record.max_seq_length if record else self.pointer.max_seq_length]),
            "text_normalization": Text(self.config.text, only_normalization=True),
            "domainfit_version": Value(__version__),
        }

    def run(self, out: Path) -> StepResult:
        """Embed the pairs with both models, choose each kind's map on dev, measure retention, save the best."""
        from domainfit.migrate.bridge import normalize_rows, search_run
        from domainfit.migrate.compare import compare_versions, migration_gate

        data = self._vectors()
        settings = self.settings
        per_kind: dict[str, Any] = {}
        best = None
        for kind in ("procrustes", "affine"):
            choice, retention = self._fit(kind, data)
            per_kind[kind] = {"retention": retention.to_dict(), **choice.to_dict()}
            score = float(choice.bridge.header["dev_score"])
            if best is None or score > best[0]:
                best = (score, choice, retention)
        assert best is not None
        _, choice, retention = best
        qids, old_docs, doc_ids = data["qids"], data["old_docs"], data["doc_ids"]
        old_run = search_run(normalize_rows(data["old_q"]), qids, old_docs, doc_ids, settings.depth)
        bridged = search_run(
            choice.bridge.apply(data["new_q"]), data["qids"], data["old_docs"], data["doc_ids"], settings.depth
        )
        comparison = compare_versions(data["qrels"], old_run, bridged, settings=settings)
        gate = migration_gate(comparison, settings, bridge_retention=retention.retention)
        choice.bridge.save(out / "bridge.npz")
        version = model_version(self.model, self._new)
        dimension = encoder_dimension(self._new)
        atomic_write_json(
            out / "bridge.json",
            {
                "chosen": choice.bridge.kind,
                "retention": retention.to_dict(),
                "kinds": per_kind,
                "gate": gate.to_dict(),
                "pairs": len(data["fit_new"]),
                "train_pairs": choice.n_train,
                "dev_pairs": choice.n_dev,
                "old_version": self.old.version,
                "old_model": self.old.model,
                "new_model": self.model,
                "new_version": version,
                # how the new model encodes, as backfill records it (what `serve --bridge` loads and checks)
                "new_record": version_record(version, self.model, dimension, self._new, self.config.text).to_json(),
                "split": settings.split,
                "queries": len(data["qids"]),
            },
        )
        numbers = {
            "chosen": choice.bridge.kind,
            "pairs": len(data["fit_new"]),
            **{f"{k}_retention": v["retention"]["retention"] for k, v in per_kind.items()},
            **{f"{k}_bridged": v["retention"]["bridged"] for k, v in per_kind.items()},
            "full": retention.full,
            "old": retention.old,
            "metric": retention.metric,
            "go": gate.go,
        }
        verdict = "accepted" if gate.go else "refused: " + "; ".join(gate.reasons)
        summary = (
            f"bridge {choice.bridge.kind} (chosen on dev) retains {retention.retention:.3f} of full re-embedding "
            f"{retention.metric} ({retention.bridged:.4f} vs {retention.full:.4f}; old model {retention.old:.4f}); "
            + ", ".join(f"{k} {v['retention']['retention']:.3f}" for k, v in per_kind.items())
            + f"; {verdict}"
        )
        return StepResult(self.step, self.old.version, version, summary, numbers, go=gate.go)

    def _vectors(self) -> dict[str, Any]:
        """Encode the corpus, the fitting queries and the benchmark queries with both models."""
        from domainfit.evaluation.metrics import evaluated_query_ids

        record = read_versions(self.home).get(self.old.version)
        old_window = record.max_seq_length if record is not None else self.pointer.max_seq_length
        prompt = record.query_prompt_name if record is not None else self.pointer.query_prompt_name
        old = retriever_for(self.workspace, self.config, self.old.model, old_window, query_prompt_name=prompt)
        self._new = new = self.new_retriever()
        corpus = self.dataset.corpus
        doc_ids = list(corpus)
        texts = [corpus[d].full_text() for d in doc_ids]
        old_docs, new_docs = _quiet(old.encode_documents)(texts), _quiet(new.encode_documents)(texts)
        sample = min(self.settings.bridge_documents, len(doc_ids))
        rows = sorted(random.Random(self.settings.seed).sample(range(len(doc_ids)), sample))
        training = list(fit_queries(self.dataset, self.settings.split).values())
        fit_old = [old_docs[rows]]
        fit_new = [new_docs[rows]]
        if training:
            fit_old.append(_quiet(old.encode_queries)(training))
            fit_new.append(_quiet(new.encode_queries)(training))
        qrels = self.dataset.qrels[self.settings.split]
        qids = evaluated_query_ids(qrels)
        queries = [self.dataset.queries[q].text for q in qids]
        return {
            "doc_ids": doc_ids,
            "old_docs": old_docs,
            "new_docs": new_docs,
            "qrels": qrels,
            "qids": qids,
            "fit_old": np.vstack(fit_old),
            "fit_new": np.vstack(fit_new),
            "old_q": _quiet(old.encode_queries)(queries),
            "new_q": _quiet(new.encode_queries)(queries),
        }

    def _fit(self, kind: str, data: dict[str, Any]) -> tuple[Any, Any]:
        """Choose the best map of one kind on dev and measure its retention on the benchmark split."""
        from domainfit.migrate.bridge import bridge_retention, choose_bridge

        header = {
            "old_model": self.old.model,
            "new_model": self.model,
            "old_version": self.old.version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        choice = choose_bridge(
            data["fit_new"],
            data["fit_old"],
            self.settings,
            kinds=(kind,),  # type: ignore[arg-type]
            header=header,
        )
        retention = bridge_retention(
            choice.bridge,
            data["qrels"],
            data["qids"],
            data["new_q"],
            data["old_docs"],
            data["new_docs"],
            data["doc_ids"],
            old_queries=data["old_q"],
            metric=self.settings.primary_metric,
            k=self.settings.depth,
        )
        return choice, retention
