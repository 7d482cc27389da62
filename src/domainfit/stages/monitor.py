"""The ``monitor`` stage: canaries and query-stream drift of the production index, one point of a time series.

Inputs: the workspace's production index (``<workspace>/index/serving.json``
and its store), the service's query log, canary queries (the benchmark split
``[monitor] canary_split`` of DATA, and/or the user's canary list) and the
``[monitor]`` settings. Output, in ``<workspace>/monitor/``: ``result.json``
(this run's `MonitorRun`), ``history.jsonl`` (one line per run, appended),
``monitor.md`` and ``history.png`` (the report section and its plot),
``config.json`` and ``manifest.json``.

Why this is a stage on the contract that is never "up to date": a monitoring
run measures the service *now* (the live index, the latest log lines), so the
same declared inputs do not give the same result, and a cron job must never
be told "nothing changed". The command always runs it forced
(`run_monitor`), and its declared inputs include the time of the run. The
contract still gives it what every stage gets: validation before the lock and
before any model loads (exit 2 on a bad log line, with file and line), the
workspace lock (two cron runs do not interleave), and a staged folder swapped
in atomically. The history is carried from the earlier folder into the staged
one (`Stage.keep`) and the new line appended there, so an interrupted run
leaves the history as it was, never half a line.

The work: the serving model (the pointer's) embeds both windows' query texts;
`domainfit.monitor.drift.drift_report` compares them (the empty-result rate
against the served threshold); the canary queries run against production, in
process through the index backend or through a running service (``--url``),
and `domainfit.monitor.canary.canary_check` compares them with the baseline
recorded at promotion (``<workspace>/index/canary-baseline.json``; when there
is none for this canary set, this run records it and says so);
`domainfit.monitor.verdict.decide` gives the verdict, whose exit code the
command returns: 0 healthy, 1 alert.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from domainfit import __version__
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from domainfit.core.types import Run
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.index.backend import ServingPointer, read_pointer
from domainfit.monitor.baseline import BASELINE, CanaryBaseline, canary_fingerprint, read_baseline, write_baseline
from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.history import MonitorRun, read_history
from domainfit.monitor.logs import CanarySet, read_canaries, read_query_log
from domainfit.monitor.stream import WindowSplit, split_windows
from domainfit.render.monitor import monitor_markdown
from domainfit.stages.contract import OPERATE, Previous, ReportSection, Stage, read_result, run_stage
from domainfit.stages.inputs import Input, Section, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.serve.encoder import Encoder

#: The history of the runs, one JSON line each (carried from run to run).
HISTORY = "history.jsonl"


def benchmark_canaries(
    data: Path, split: str, limit: int, seed: int, max_line_bytes: int, text: TextConfig
) -> CanarySet:
    """Return up to ``limit`` queries of a BEIR split that have a relevant document, as canaries (a seeded sample).

    Raises `InputError` for a bad BEIR folder or a split it does not have.
    """
    from domainfit.data.beir import load_beir

    dataset = load_beir(data, max_line_bytes=max_line_bytes, text=text)
    if split not in dataset.qrels:
        have = ", ".join(sorted(dataset.qrels)) or "none"
        raise InputError(data / "qrels", 0, "monitor.canary_split", f"no split {split!r} (the data has: {have})")
    judged = sorted(q for q, rel in dataset.qrels[split].items() if any(g > 0 for g in rel.values()))
    if len(judged) > limit:
        rng = np.random.default_rng(seed)
        judged = sorted(rng.choice(judged, size=limit, replace=False).tolist())
    return CanarySet({q: dataset.queries[q].text for q in judged}, {q: dict(dataset.qrels[split][q]) for q in judged})


class MonitorStage(Stage[MonitorRun]):
    """Check the production index's canaries and the query stream's drift; one run of the time series.

    Inputs: the workspace, the BEIR folder (for benchmark canaries; may be
    None), the ``[monitor]`` settings, the query log (None: drift is not
    checked), a running service's URL and bearer token (None: canaries run in
    process), the ``[text]`` settings and the largest JSONL line.
    Output: the `MonitorRun`. Raises `InputError` / `UsageError` (exit 2)
    before any model loads.
    """

    name: ClassVar[str] = "monitor"
    command: ClassVar[str | None] = "monitor"
    panel: ClassVar[str] = OPERATE
    reads: ClassVar[tuple[str, ...]] = ("index",)
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection("monitor.md", 95),)
    report_config: ClassVar[tuple[str, ...]] = ("monitor",)
    workspace_first: ClassVar[bool] = True  # it reads the workspace's index

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str | None,
        settings: MonitorSettings,
        *,
        query_log: Path | str | None = None,
        url: str | None = None,
        token: str | None = None,
        text: TextConfig = DEFAULT_TEXT,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(workspace, data)
        self.settings, self.url, self.token, self.text = settings, url, token, text
        self.query_log = Path(query_log).expanduser().resolve() if query_log is not None else None
        self.max_line_bytes = max_line_bytes
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.pointer: ServingPointer | None = None
        self.records: list[dict[str, Any]] | None = None
        self.canaries: CanarySet | None = None
        self.notes: list[str] = []
        self._loaded: Encoder | None = None

    @property
    def index_folder(self) -> Path:
        """The production index's folder (``serving.json``, the store, the canary baseline)."""
        return self.workspace.stage_dir("index")

    def _canaries(self) -> CanarySet | None:
        """Read the canary list and the benchmark's canaries (both when both are configured)."""
        s = self.settings
        found: CanarySet | None = None
        if self.data is not None and s.canary_split:
            found = benchmark_canaries(self.data, s.canary_split, s.canary_max, s.seed, self.max_line_bytes, self.text)
        elif s.canary_split and not s.canaries:
            self.notes.append("no DATA folder: the benchmark's queries are not used as canaries")
        if s.canaries:
            own = read_canaries(Path(s.canaries).expanduser(), self.max_line_bytes)
            found = own if found is None else found.merged(own)
        return found

    def check(self) -> None:
        """Read the pointer, the whole query log, the canaries and the baseline file; exit 2 on any problem."""
        self.pointer = read_pointer(self.index_folder)
        if self.query_log is not None:
            self.records = read_query_log(self.query_log, self.max_line_bytes)
        self.canaries = self._canaries()
        if self.records is None and self.canaries is None:
            raise UsageError("nothing to monitor: give --log (the service's query log) and/or canary queries")
        if self.canaries is not None:
            try:
                read_baseline(self.index_folder, canary_fingerprint(self.canaries.queries, self.canaries.qrels))
            except ValueError as exc:
                raise InputError(self.index_folder / BASELINE, 0, "-", str(exc)) from None

    def inputs(self) -> dict[str, Input]:
        """Declare the pointer, the log, the canaries, the settings and the time of the run (never up to date)."""
        assert self.pointer is not None
        canaries = self.canaries
        return {
            "run_at": Value(self.started),
            "pointer": Value(self.pointer.to_json(), of="upstream"),
            "query_log": Value(str(self.query_log) if self.query_log else None, of="data"),
            "query_log_lines": Value(len(self.records) if self.records is not None else None, of="data"),
            "canaries": Value(canary_fingerprint(canaries.queries, canaries.qrels) if canaries else None, of="data"),
            "config": Section(self.settings),
            "url": Value(self.url),
            "domainfit_version": Value(__version__),
        }

    def keep(self) -> tuple[str, ...]:
        """Carry the history of earlier runs into the new folder (this run appends its line)."""
        return (HISTORY,)

    def compute(self, out: Path, previous: Previous | None) -> MonitorRun:
        """Embed the windows, run the canaries, decide; write the result, the history line and the report section."""
        from domainfit.monitor.verdict import decide

        assert self.pointer is not None
        pointer = self.pointer
        drift, windows = self._drift()
        canary, canary_info, recorded = self._canary_check()
        verdict = decide(drift, canary, self.settings)
        run = MonitorRun(
            time=self.started,
            status=verdict.status,
            exit_code=verdict.exit_code,
            version=pointer.version,
            model=pointer.model,
            tag=pointer.tag,
            verdict=verdict.to_dict(),
            windows=windows,
            canary=canary_info,
            baseline_recorded=recorded,
            notes=list(self.notes),
            output_dir=str(self.folder),
        )
        self._write(out, run)
        return run

    def _encoder(self) -> Encoder:
        """Return the serving model as production encodes queries (the pointer's length and prompt), loaded once."""
        from domainfit.core.models import load_bi_encoder
        from domainfit.serve.encoder import SentenceTransformerEncoder

        p = self.pointer
        assert p is not None
        if self._loaded is None:
            model = load_bi_encoder(p.model, max_seq_length=p.max_seq_length)
            prompt = p.query_prompt_name
            self._loaded = SentenceTransformerEncoder(model, p.model, text=self.text, query_prompt_name=prompt)
        return self._loaded

    def _threshold(self, split: WindowSplit) -> float | None:
        """Return the served score threshold: the pointer's, else the floor the service logged most often."""
        assert self.pointer is not None
        if self.pointer.min_score is not None:
            return self.pointer.min_score
        floors = [r.get("min_score") for r in split.reference + split.current if isinstance(r.get("min_score"), float)]
        return max(set(floors), key=floors.count) if floors else None

    def _drift(self) -> tuple[Any, dict[str, Any]]:
        """Cut the log into its windows, embed their queries and compute the drift report (None: not checked)."""
        from domainfit.monitor.drift import drift_report
        from domainfit.monitor.window import window_from_records

        s, pointer = self.settings, self.pointer
        assert pointer is not None
        if self.records is None:
            self.notes.append("no query log given: the query stream was not checked")
            return None, {"described": "not checked (no query log)", "n_reference": 0, "n_current": 0}
        split = split_windows(
            self.records,
            reference_size=s.reference_size,
            current_size=s.current_size,
            version=pointer.version,
            since=pointer.created if s.since_promotion else None,
        )
        windows = {"described": split.describe(), "n_reference": len(split.reference), "n_current": len(split.current),
                   "considered": split.considered, "log_records": split.total, "log": str(self.query_log)}  # fmt: skip
        if min(len(split.reference), len(split.current)) < s.min_window:
            self.notes.append(f"the query log is too short for drift: {split.describe()}, {s.min_window} needed each")
        texts = [r["query"] for r in split.reference + split.current]
        vectors = None
        if texts:
            encoder = self._encoder()
            vectors = encoder.encode(texts, prompt_name=encoder.query_prompt_name)
        n = len(split.reference)
        reference = window_from_records(split.reference, vectors[:n] if vectors is not None else None)
        current = window_from_records(split.current, vectors[n:] if vectors is not None else None)
        threshold = self._threshold(split)
        windows["min_score"] = threshold
        return drift_report(reference, current, s, min_score=threshold), windows

    def _canary_run(self, canaries: CanarySet) -> Run:
        """Search every canary query against production (in process, or through ``--url``); return the run."""
        if self.url is not None:
            from domainfit.monitor.remote import remote_run

            return remote_run(self.url, self.token, canaries.queries, self.settings.canary_k)
        from domainfit.index.backend import SearchQuery, open_index

        store, pointer = open_index(self.index_folder)
        try:
            ids = list(canaries.queries)
            texts = [canaries.queries[q] for q in ids]
            vectors = None
            if pointer.mode in ("dense", "hybrid"):
                encoder = self._encoder()
                vectors = encoder.encode(texts, prompt_name=encoder.query_prompt_name)
            run: Run = {}
            for i, (qid, query) in enumerate(zip(ids, texts, strict=True)):
                vector = vectors[i].tolist() if vectors is not None else None
                search = SearchQuery(text=query, vector=vector, mode=pointer.mode, k=self.settings.canary_k,
                                     version=pointer.version, fusion=pointer.fusion, alpha=pointer.alpha)  # fmt: skip
                run[qid] = {h.id: float(h.score) for h in store.search(search)}
            return run
        finally:
            store.close()

    def _canary_check(self) -> tuple[Any, dict[str, Any] | None, bool]:
        """Run the canaries and compare with the baseline (recording one when there is none); None: no canaries."""
        from domainfit.monitor.canary import canary_baseline, canary_check

        canaries, pointer, s = self.canaries, self.pointer, self.settings
        assert pointer is not None
        if canaries is None:
            self.notes.append("no canary queries: canaries were not checked")
            return None, None, False
        run = self._canary_run(canaries)
        fingerprint = canary_fingerprint(canaries.queries, canaries.qrels)
        baseline = read_baseline(self.index_folder, fingerprint)
        recorded = False
        if baseline is not None and baseline.k != s.canary_k:
            self.notes.append(f"the canary baseline is at k={baseline.k}; recorded a new one at k={s.canary_k}")
            baseline = None
        if baseline is None:
            baseline = CanaryBaseline(metrics=canary_baseline(canaries.qrels, run, s), k=s.canary_k,
                                      n_queries=len(canaries), version=pointer.version, model=pointer.model,
                                      tag=pointer.tag, table_version=pointer.table_version)  # fmt: skip
            write_baseline(self.index_folder, fingerprint, baseline)
            recorded = True
            self.notes.append(f"no canary baseline for this canary set: recorded one now ({BASELINE})")
        elif baseline.version != pointer.version:
            self.notes.append(f"the canary baseline was recorded on version {baseline.version}, "
                              f"production serves {pointer.version}")  # fmt: skip
        result = canary_check(canaries.qrels, run, baseline.metrics, s)
        where = self.url or "in process"
        info = {
            "described": f"{len(canaries)} queries searched {where}, baseline of {baseline.created} "
            f"({baseline.recorded_by}, version {baseline.version})",
            "n_queries": len(canaries),
            "fingerprint": fingerprint,
            "baseline": baseline.to_json(),
            "searched": where,
        }
        return result, info, recorded

    def _write(self, out: Path, run: MonitorRun) -> None:
        """Write the result, append the history line, render the plot and the report section, record the settings."""
        from domainfit.render.plots import monitor_history

        atomic_write_json(out / "result.json", run.to_dict())
        history_path = out / HISTORY
        with history_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(run.history_record(), ensure_ascii=False) + "\n")
        history = read_history(history_path)
        atomic_write_bytes(out / "history.png", monitor_history(history))
        atomic_write_text(out / "monitor.md", monitor_markdown(run, len(history), "../monitor/history.png"))
        atomic_write_json(out / "config.json", {"monitor": self.settings.model_dump(), "data": str(self.data or "")})

    def load(self, folder: Path) -> MonitorRun:
        """Read ``result.json`` back."""
        return read_result(folder / "result.json", MonitorRun.from_dict)


def run_monitor(stage: MonitorStage) -> MonitorRun:
    """Run one monitoring pass (always: a monitoring run is never up to date); return its `MonitorRun`."""
    return run_stage(stage, force=True).result
