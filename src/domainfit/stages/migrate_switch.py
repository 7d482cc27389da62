"""The switching steps of a migration: ``compare``, ``promote`` and ``rollback`` (see `domainfit.stages.migrate`).

``compare`` runs the benchmark split's judged queries and the canary queries
through both versions of the index (production's tag and the backfill's tag,
each version's own vector column, each query encoded by that version's model
exactly as the search service encodes it), then `compare_versions` and
`migration_gate`. ``promote`` requires its go (``--force`` overrides a
no-go), tags the compared table version for production, writes the new
pointer in one rename with the new model's calibrated threshold, and records
the canaries' baseline beside it. ``rollback`` writes back the pointer (and
baseline) production had before, byte for byte, so every search returns what
it returned before the promotion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import DomainfitError, InputError, UsageError
from domainfit.core.files import atomic_write_json, read_json_or_none
from domainfit.evaluation.config import short_name
from domainfit.index.backend import IndexBackend, SearchQuery, ServingPointer, write_pointer
from domainfit.index.versions import read_versions
from domainfit.stages.inputs import DataFiles, Input, Section, Upstream, UserFile, Value
from domainfit.stages.migrate import (
    MigrateStep,
    StepResult,
    migrate_home,
    old_facts,
    open_store,
    required_result,
    store_tags,
)

if TYPE_CHECKING:
    from domainfit.core.types import Qrels, Run
    from domainfit.serve.encoder import Encoder


class PromotionRefused(DomainfitError):
    """``promote`` without a go from ``compare`` (exit 1; ``--force`` overrides)."""


def read_canaries(path: Path, known: set[str]) -> list[str]:
    """Read a canary file: one query id a line, blank lines and ``#`` comments skipped, each a known query.

    Raises `InputError` (file, line, field) for a missing file, an unknown id or a file naming none.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(path, 0, "-", "canary file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, 0, "-", f"invalid UTF-8 ({exc.reason})") from None
    ids: list[str] = []
    for number, line in enumerate(lines, start=1):
        qid = line.split("#", 1)[0].strip()
        if not qid:
            continue
        if qid not in known:
            raise InputError(path, number, "query_id", f"{qid!r} is not a query of queries.jsonl")
        ids.append(qid)
    if not ids:
        raise InputError(path, 0, "-", "names no query id")
    return list(dict.fromkeys(ids))


def encoder_of(model: str, window: int | None, prompt: str | None, config: Any) -> Encoder:
    """Return the query encoder the search service would load for a version (`domainfit.serve.encoder`)."""
    from domainfit.core.models import load_bi_encoder
    from domainfit.serve.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        load_bi_encoder(model, max_seq_length=window), model, text=config.text, query_prompt_name=prompt
    )


def version_run(
    store: IndexBackend,
    tag: str,
    version: str,
    encoder: Encoder,
    queries: dict[str, str],
    *,
    mode: str,
    k: int,
    pointer: ServingPointer,
) -> Run:
    """Search every query through one version of the index (checked out at ``tag``) as the service would."""
    store.checkout(tag)
    ids = list(queries)
    vectors = None
    if mode != "bm25":
        vectors = encoder.encode([queries[q] for q in ids], prompt_name=encoder.query_prompt_name)
    run: Run = {}
    for row, qid in enumerate(ids):
        query = SearchQuery(
            text=queries[qid],
            vector=vectors[row].tolist() if vectors is not None else None,
            mode=mode,  # type: ignore[arg-type]
            k=k,
            version=version,
            fusion=pointer.fusion,
            alpha=pointer.alpha,
        )
        run[qid] = {hit.id: float(hit.score) for hit in store.search(query)}
    return run


class CompareStep(MigrateStep):
    """``migrate compare``: a dual run of production and the backfilled version; the go / no-go gate."""

    step: ClassVar[str] = "compare"
    subfolder: ClassVar[str] = "compare"

    def check(self) -> None:
        """Need a backfill of another version than production's, the benchmark split, and readable canaries."""
        from domainfit.data.beir import load_beir

        super().check()
        self.backfill = required_result(self.workspace, "backfill", "compare")
        if self.backfill.to_version == self.pointer.version:
            raise UsageError(
                f"production already serves version {self.pointer.version}: nothing to compare "
                "(`migrate rollback` first to compare again)"
            )
        assert self.data is not None
        self.dataset = load_beir(self.data, max_line_bytes=self.config.data.max_line_mib << 20, text=self.config.text)
        if self.settings.split not in self.dataset.qrels:
            raise UsageError(f"{self.data}: no qrels/{self.settings.split}.tsv to compare the versions on")
        self.canary_file = Path(self.settings.canaries).expanduser().resolve() if self.settings.canaries else None
        from domainfit.evaluation.metrics import evaluated_query_ids

        judged = evaluated_query_ids(self.dataset.qrels[self.settings.split])
        self.canaries = (
            read_canaries(self.canary_file, set(self.dataset.queries)) if self.canary_file is not None else judged
        )

    def inputs(self) -> dict[str, Input]:
        """Declare the benchmark, the settings, production, the backfill, the canaries and the thresholds."""
        assert self.data is not None
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Section(self.settings),
            "slice_fields": Value(self.config.bench.slice_fields, of="config"),
            "pointer_sha256": Upstream("index", self.home / "serving.json"),
            "versions_sha256": Upstream("index", self.home / "versions.json"),
            "backfill_sha256": Upstream("migrate", migrate_home(self.workspace) / "backfill" / "result.json"),
            "canaries_sha256": UserFile(self.canary_file),
            "calibrate_sha256": Upstream("calibrate", self.workspace.stage_dir("calibrate") / "thresholds.json"),
            "domainfit_version": Value(__version__),
        }

    def run(self, out: Path) -> StepResult:
        """Run both versions, compare them, gate the switch; write compare.json, gate.json and the runs."""
        from domainfit.compress.calibrate import threshold_for_model
        from domainfit.evaluation.slices import slice_labels
        from domainfit.evaluation.trec import write_trec_run
        from domainfit.migrate.compare import compare_versions, migration_gate

        settings, pointer, dataset = self.settings, self.pointer, self.dataset
        old = old_facts(self.home, pointer)
        new_version = str(self.backfill.to_version)
        records = read_versions(self.home)
        if new_version not in records:
            raise UsageError(f"the index has no record of version {new_version}: run `migrate backfill` again")
        new = records[new_version]
        old_record = records.get(old.version)
        qrels = dataset.qrels[settings.split]
        wanted = list(dict.fromkeys([*qrels, *self.canaries]))
        queries = {qid: dataset.queries[qid].text for qid in wanted if qid in dataset.queries}
        mode = settings.mode or pointer.mode
        old_encoder = encoder_of(
            old.model,
            old_record.max_seq_length if old_record else pointer.max_seq_length,
            pointer.query_prompt_name,
            self.config,
        )
        new_encoder = encoder_of(new.model, new.max_seq_length, new.query_prompt_name, self.config)
        tag = str(self.backfill.numbers["tag"])
        store = open_store(self.home, pointer, read_only=True)
        try:
            if store.tags().get(tag) != self.backfill.numbers.get("table_version"):
                raise UsageError(f"the backfill's tag {tag} moved or is gone: run `migrate backfill` again")
            old_run = version_run(
                store, pointer.tag, old.version, old_encoder, queries, mode=mode, k=settings.depth, pointer=pointer
            )
            new_run = version_run(
                store, tag, new_version, new_encoder, queries, mode=mode, k=settings.depth, pointer=pointer
            )
        finally:
            store.close()
        calibrated = self.workspace.stage_dir("calibrate") / "thresholds.json"
        old_threshold = pointer.min_score
        if old_threshold is None:
            old_threshold = threshold_for_model(calibrated, old.model)
        comparison = compare_versions(
            qrels,
            old_run,
            new_run,
            labels=slice_labels(
                {q: dataset.queries[q] for q in qrels if q in dataset.queries}, self.config.bench.slice_fields
            ),
            canaries=self.canaries,
            old_threshold=old_threshold,
            new_threshold=threshold_for_model(calibrated, new.model),
            settings=settings,
        )
        gate = migration_gate(comparison, settings, churn_gates=self.canary_file is not None)
        atomic_write_json(out / "compare.json", comparison.to_dict())
        atomic_write_json(out / "gate.json", gate.to_dict())
        (out / "runs").mkdir()
        write_trec_run(out / "runs" / "old.trec", old_run, "old")
        write_trec_run(out / "runs" / "new.trec", new_run, "new")
        canary_qrels = {q: rel for split in dataset.qrels.values() for q, rel in split.items() if q in self.canaries}
        atomic_write_json(
            out / "canaries.json",
            {
                "ids": self.canaries,
                "qrels": canary_qrels,
                "queries": {q: queries[q] for q in self.canaries},
                "source": str(self.canary_file) if self.canary_file else f"qrels/{settings.split}.tsv",
            },
        )
        row = comparison.overall()
        canary = comparison.canary_agreement
        numbers = {
            "metric": row.metric,
            "old": row.old,
            "new": row.new,
            "delta": row.delta,
            "p_value": row.p_value,
            "significant": row.significant,
            "queries": row.n_queries,
            "jaccard": comparison.agreement.jaccard,
            "overlap": comparison.agreement.overlap,
            "top1_agreement": comparison.agreement.top1_agreement,
            "canary_churn": canary.churn if canary else None,
            "canaries": len(self.canaries),
            "old_threshold": comparison.old_threshold,
            "new_threshold": comparison.new_threshold,
            "old_tag": pointer.tag,
            "new_tag": tag,
            "new_table_version": self.backfill.numbers.get("table_version"),
            "mode": mode,
            "go": gate.go,
            "reasons": gate.reasons,
        }
        verdict = "go" if gate.go else "no-go: " + "; ".join(gate.reasons)
        summary = (
            f"{verdict} — {row.metric} {row.old:.4f} -> {row.new:.4f} ({row.delta:+.4f}, p = {row.p_value}) over "
            f"{row.n_queries} queries; top-{comparison.k} Jaccard {comparison.agreement.jaccard:.3f}, "
            f"top-1 agreement {comparison.agreement.top1_agreement:.3f}"
            + (f"; canary churn {canary.churn:.3f} over {canary.n_queries}" if canary else "")
        )
        return StepResult(self.step, old.version, new_version, summary, numbers, go=gate.go)

    def still_valid(self, result: StepResult) -> bool:
        """Return True while the backfill's tag still names the version compared."""
        tag = result.numbers.get("new_tag")
        return store_tags(self.home, self.pointer).get(str(tag)) == result.numbers.get("new_table_version")


def _baseline(qrels: Qrels, run: Run, settings: Any) -> dict[str, float] | None:
    """Return the canaries' baseline of one version's run (None when no canary query is judged)."""
    from domainfit.monitor.canary import canary_baseline

    try:
        return canary_baseline(qrels, {q: r for q, r in run.items() if q in qrels}, settings)
    except ValueError:
        return None


def _record_baseline(
    home: Path, pointer: ServingPointer, metrics: dict[str, float] | None, canaries: dict[str, Any], settings: Any,
    by: str,
) -> None:  # fmt: skip
    """Record one version's canary metrics as the baseline ``monitor`` compares against (`monitor.baseline`).

    The baseline is keyed by the canary set's fingerprint (its queries and
    qrels), beside the pointer. ``metrics`` None (a rollback to a version
    whose baseline was never measured) forgets the set's baseline, so the
    next ``monitor`` run records one on the version then served.
    """
    from domainfit.monitor.baseline import CanaryBaseline, canary_fingerprint, forget_baseline, write_baseline

    qrels = canaries.get("qrels", {})
    if not qrels:
        return
    fingerprint = canary_fingerprint(canaries.get("queries", {}), qrels)
    if metrics is None:
        forget_baseline(home, fingerprint)
        return
    baseline = CanaryBaseline(metrics=metrics, k=settings.canary_k, n_queries=len(qrels), version=pointer.version,
                              model=pointer.model, tag=pointer.tag, recorded_by=by)  # fmt: skip
    write_baseline(home, fingerprint, baseline)


def _monitor_settings(config: Any) -> Any:
    """Return the ``[monitor]`` settings when the config has them, else the defaults (canary k and floors)."""
    from domainfit.monitor.config import MonitorSettings

    found = getattr(config, "monitor", None)
    return found if isinstance(found, MonitorSettings) else MonitorSettings()


class PromoteStep(MigrateStep):
    """``migrate promote``: production's pointer moves to the compared version, atomically; needs compare's go."""

    step: ClassVar[str] = "promote"
    subfolder: ClassVar[str] = "promote"

    def check(self) -> None:
        """Need compare (and the backfill it compared)."""
        super().check()
        self.compared = required_result(self.workspace, "compare", "promote")
        self.backfill = required_result(self.workspace, "backfill", "promote")

    def inputs(self) -> dict[str, Input]:
        """Declare compare's result and gate, the backfill, the override and the canary settings."""
        home = migrate_home(self.workspace)
        return {
            "compare_sha256": Upstream("migrate", home / "compare" / "result.json"),
            "gate_sha256": Upstream("migrate", home / "compare" / "gate.json"),
            "backfill_sha256": Upstream("migrate", home / "backfill" / "result.json"),
            "force": Value(self.override, of="config"),
            "tag_prefix": Value(self.config.index.tag_prefix, of="config"),
            "monitor": Section(_monitor_settings(self.config)),
            "domainfit_version": Value(__version__),
        }

    def run(self, out: Path) -> StepResult:
        """Tag, write the new pointer in one rename, record the canary baselines of both versions."""
        from domainfit.compress.calibrate import threshold_for_model
        from domainfit.evaluation.trec import read_trec_run

        pointer, compared = self.pointer, self.compared
        new_version = str(compared.to_version)
        if pointer.version != compared.from_version:
            raise UsageError(
                f"production serves version {pointer.version}, not the {compared.from_version} "
                "compare measured: run `migrate compare` again"
            )
        if not compared.go and not self.override:
            reasons = "; ".join(compared.numbers.get("reasons") or []) or "no go"
            raise PromotionRefused(f"the migration gate said no-go ({reasons}); `--force` promotes anyway")
        record = read_versions(self.home)[new_version]
        store = open_store(self.home, pointer, read_only=False)
        try:
            tagged = store.tags().get(str(compared.numbers["new_tag"]))
            if tagged != compared.numbers["new_table_version"] or store.table_version() != tagged:
                now, then = store.table_version(), compared.numbers["new_table_version"]
                raise UsageError(
                    f"the index was written since compare (now table version {now}, compared {then}): "
                    "run backfill and compare again"
                )
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            tag = f"{self.config.index.tag_prefix}-{new_version}-{stamp}"[:120]
            table_version = store.create_tag(tag)
        finally:
            store.close()
        mode = str(compared.numbers.get("mode") or pointer.mode)
        calibrated = self.workspace.stage_dir("calibrate") / "thresholds.json"
        system = (f"hybrid-{pointer.fusion}" if mode == "hybrid" else mode) + f":{short_name(record.model)}"
        promoted = ServingPointer(
            backend=pointer.backend,
            corpus=pointer.corpus,
            version=new_version,
            dimension=record.dimension,
            model=record.model,
            tag=tag,
            table_version=table_version,
            mode=mode,  # type: ignore[arg-type]
            fusion=pointer.fusion,
            alpha=pointer.alpha,
            system=system,
            min_score=threshold_for_model(calibrated, record.model) if mode == "dense" else None,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            max_seq_length=record.max_seq_length,
            query_prompt_name=record.query_prompt_name,
        )
        folder = migrate_home(self.workspace) / "compare"
        canaries = json.loads((folder / "canaries.json").read_text(encoding="utf-8"))
        monitor = _monitor_settings(self.config)
        new_base = _baseline(canaries["qrels"], read_trec_run(folder / "runs" / "new.trec"), monitor)
        old_base = _baseline(canaries["qrels"], read_trec_run(folder / "runs" / "old.trec"), monitor)
        previous = json.loads((self.home / "serving.json").read_text(encoding="utf-8"))
        write_pointer(self.home, promoted)
        _record_baseline(self.home, promoted, new_base, canaries, monitor, "migrate promote")
        numbers = {
            "previous_pointer": previous,
            "promoted_pointer": promoted.to_json(),
            "tag": tag,
            "table_version": table_version,
            "min_score": promoted.min_score,
            "forced": not compared.go,
            "canary_baseline": new_base,
            "previous_canary_baseline": old_base,
        }
        forced = " (forced past a no-go)" if not compared.go else ""
        threshold = f"{promoted.min_score:.4f}" if promoted.min_score is not None else "none"
        summary = (
            f"promoted version {new_version} ({short_name(record.model)}){forced}: production reads tag {tag}, "
            f"min_score {threshold}; was {pointer.version} at tag {pointer.tag}"
        )
        return StepResult(self.step, pointer.version, new_version, summary, numbers, go=compared.go)

    def still_valid(self, result: StepResult) -> bool:
        """Production still reads the pointer this promotion wrote."""
        return _current(self.home) == result.numbers.get("promoted_pointer")


def _current(home: Path) -> Any:
    """Production's pointer as JSON (None when unreadable)."""
    return read_json_or_none(home / "serving.json")


class RollbackStep(MigrateStep):
    """``migrate rollback``: production's pointer goes back to exactly what it was before the promotion."""

    step: ClassVar[str] = "rollback"
    subfolder: ClassVar[str] = "rollback"

    def check(self) -> None:
        """Need a promotion to roll back."""
        super().check()
        self.promoted = required_result(self.workspace, "promote", "rollback")

    def inputs(self) -> dict[str, Input]:
        """Declare the promotion rolled back and the override."""
        return {
            "promote_sha256": Upstream("migrate", migrate_home(self.workspace) / "promote" / "result.json"),
            "force": Value(self.override, of="config"),
            "domainfit_version": Value(__version__),
        }

    def run(self, out: Path) -> StepResult:
        """Write the previous pointer back (and the previous version's canary baseline)."""
        numbers = self.promoted.numbers
        previous, promoted = numbers["previous_pointer"], numbers["promoted_pointer"]
        current = _current(self.home)
        back = ServingPointer.from_json(previous)
        if current == previous:
            summary = f"production already serves version {back.version} at tag {back.tag}: nothing to roll back"
            return StepResult(self.step, self.promoted.to_version, back.version, summary, {"rolled_back": False})
        if current != promoted and not self.override:
            now = (current or {}).get("tag")
            raise UsageError(
                f"production moved since the promotion (it reads tag {now}, the promotion wrote "
                f"{promoted.get('tag')}); `--force` rolls back anyway"
            )
        if back.tag not in store_tags(self.home, back):
            raise UsageError(f"the index no longer has the previous tag {back.tag}: cannot roll back to it")
        write_pointer(self.home, back)
        canaries_path = migrate_home(self.workspace) / "compare" / "canaries.json"
        canaries = json.loads(canaries_path.read_text(encoding="utf-8")) if canaries_path.is_file() else {}
        monitor = _monitor_settings(self.config)
        _record_baseline(
            self.home, back, numbers.get("previous_canary_baseline"), canaries, monitor, "migrate rollback"
        )
        summary = (
            f"rolled back to version {back.version}: production reads tag {back.tag} again "
            f"(was {promoted.get('version')} at {promoted.get('tag')})"
        )
        return StepResult(
            self.step,
            str(promoted.get("version")),
            back.version,
            summary,
            {"rolled_back": True, "pointer": previous, "from_tag": promoted.get("tag")},
        )

    def still_valid(self, result: StepResult) -> bool:
        """Production still reads the pointer this rollback restored."""
        return _current(self.home) == self.promoted.numbers.get("previous_pointer")
