"""``domainfit serve``: the search service over the workspace's production index.

Resolves, before anything heavy loads: the ``[serve]`` settings (options win),
the bearer token (``--token-file`` or the environment variable; only its hash
is kept) and whether the address may be bound without one (exit 2 when not).
Then it opens ``<workspace>/index`` at the tag its production pointer names,
loads the pointer's model and, for every other model version of the index,
the model the index records for it (``versions.json``; ``--version-model``
overrides), takes the default
``min_score`` from the pointer or else from ``calibrate``'s thresholds for that
model, and serves until interrupted. With ``--judgements DIR`` (or ``[serve]
judgements``) it also serves the side-by-side page ``/compare``, whose
judgements are appended to that BEIR folder; the folder's files are checked
before anything loads (exit 2 for a malformed one).

``--bridge`` (or ``[serve] bridge``): while a migration's backfill runs,
queries are embedded with the new model and mapped into production's vector
space by the map ``migrate bridge`` wrote into ``<workspace>/migrate/bridge/``.
The map is read and checked before any model loads (none, refused by the
migration gate, below ``[migrate] min_bridge_retention``, or fitted for other
versions, models or widths: one line, exit 2); once production serves another
version (a promotion), searches no longer go through it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from domainfit.cli.options import ConfigOpt, QuietOpt, WorkspaceOpt
from domainfit.compress.spec import FULL_PRECISION
from domainfit.core.errors import UsageError
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.index.backend import IndexBackend, ServingPointer
    from domainfit.index.versions import VersionRecord
    from domainfit.serve.bridge import BridgeFacts, ServedBridge
    from domainfit.serve.encoder import Encoder
    from domainfit.serve.judgements import JudgementFolder
    from domainfit.serve.pointer_watch import SnapshotBuilder
    from domainfit.serve.service import Served
    from domainfit.serve.shadow import ShadowSpec
    from domainfit.text.config import TextConfig


def parse_version_models(entries: list[str]) -> dict[str, str]:
    """Parse ``--version-model VERSION=MODEL`` options into {version: model}; `UsageError` for a malformed one."""
    found: dict[str, str] = {}
    for entry in entries:
        version, sep, model = entry.partition("=")
        if not sep or not version.strip() or not model.strip():
            raise UsageError(f"--version-model {entry!r}: expected VERSION=MODEL")
        found[version.strip()] = model.strip()
    return found


def check_log(path: Path, kind: str, key: str) -> Path:
    """Refuse a log path that is a folder, or a non-empty file whose first line is not a domainfit ``kind`` log.

    ``key``: a field every line of that log has (besides ``format_version``).
    Returns ``path``; raises `InputError` (exit 2) otherwise.
    """
    from domainfit.core.errors import InputError

    if path.is_dir():
        raise InputError(path, 0, "-", f"the {kind} log is a folder; give a file")
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            first = handle.readline(1 << 20)
        try:
            record = json.loads(first)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "format_version" not in record or key not in record:
            raise InputError(path, 1, "-", f"exists and is not a domainfit {kind} log; give a new file")
    return path


def check_query_log(path: Path) -> Path:
    """Refuse a query log path that is a folder or a non-empty file that is not a domainfit query log."""
    return check_log(path, "query", "query")


def calibrated_threshold(workspace: Workspace, model: str, configuration: str = FULL_PRECISION) -> float | None:
    """Return calibrate's threshold for ``model`` (matched by name or folder) at ``configuration``, or None.

    ``configuration``: how the served vectors are stored (the pointer's
    ``precision``); when calibrate did not calibrate it, its full-precision
    threshold. Reads ``<workspace>/calibrate/thresholds.json``; a workspace where
    calibrate did not run, or did not calibrate this model, gives None.
    """
    from domainfit.compress.calibrate import threshold_for_model

    return threshold_for_model(workspace.stage_dir("calibrate") / "thresholds.json", model, configuration)


def production_encoder(pointer: ServingPointer, text: TextConfig) -> Encoder:
    """Load the pointer's model as its version's query encoder (its sequence length and query prompt)."""
    from domainfit.core.models import load_bi_encoder
    from domainfit.serve.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        load_bi_encoder(pointer.model, max_seq_length=pointer.max_seq_length),
        pointer.model,
        text=text,
        query_prompt_name=pointer.query_prompt_name,
    )


def served_of(workspace: Workspace, pointer: ServingPointer, tag: str | None = None) -> Served:
    """Return what production serves under ``pointer``: its version, model, search defaults and threshold."""
    from domainfit.serve.service import Served

    threshold = pointer.min_score
    if threshold is None:
        threshold = calibrated_threshold(workspace, pointer.model, pointer.precision)
    return Served(
        version=pointer.version,
        model=pointer.model,
        mode=pointer.mode,
        fusion=pointer.fusion,
        alpha=pointer.alpha,
        thresholds={pointer.version: threshold} if threshold is not None else {},
        tag=tag or pointer.tag,
        backend=pointer.backend,
    )


def snapshot_builder(workspace: Workspace, text: TextConfig, bridge: ServedBridge | None = None) -> SnapshotBuilder:
    """Return the builder the pointer watcher calls on a new pointer: open its tag, re-use or load its model.

    ``bridge``: given to a snapshot whose pointer serves the bridge's old
    version (a rollback), never to another (a promotion to the new version).
    """
    from domainfit.index.backend import open_backend
    from domainfit.serve.service import checked_snapshot
    from domainfit.serve.snapshot import Snapshot

    folder = workspace.stage_dir("index")

    def build(pointer: ServingPointer, previous: Snapshot) -> Snapshot:
        store = open_backend(folder, pointer.corpus, backend=pointer.backend, read_only=True)
        try:
            store.checkout(pointer.tag)
            encoders = dict(previous.encoders)
            loaded = encoders.get(pointer.version)
            if loaded is None or loaded.name != pointer.model:
                encoders[pointer.version] = production_encoder(pointer, text)
            versions = dict(store.versions())
            bridged = bridge if bridge is not None and bridge.fits(pointer.version, versions) else None
            served = served_of(workspace, pointer)
            return checked_snapshot(Snapshot(store, served, versions, encoders, pointer, True, bridge=bridged))
        except BaseException:
            store.close()
            raise

    return build


def shadow_log_path(given: str | None, query_log: Path | None) -> Path:
    """Return the shadow log: the one given, else beside the query log (``<name>.shadow.jsonl``); `UsageError` else."""
    if given:
        path = Path(given)
    elif query_log is not None:
        path = query_log.with_name(f"{query_log.stem}.shadow.jsonl")
    else:
        raise UsageError("--shadow needs --shadow-log FILE (or a --query-log to write it beside)")
    return check_log(path, "shadow", "shadow")


def shadow_spec(
    version: str | None, encoders: dict[str, Encoder], production: str, versions: dict[str, int], log: Path
) -> ShadowSpec:
    """Return the shadow of ``--shadow VERSION``; `UsageError` for production's version, one not indexed or unloaded."""
    from domainfit.serve.shadow import ShadowSpec

    if version is None or version not in versions:
        raise UsageError(f"--shadow {version}: no such model version in the index (it has: {', '.join(versions)})")
    if version == production:
        raise UsageError(f"--shadow {version}: that is the version production serves; shadow another one")
    if version not in encoders:
        raise UsageError(f"--shadow {version}: no model recorded for it; give one with --version-model {version}=MODEL")
    return ShadowSpec(version, encoders[version], log)


def load_encoders(
    pointer: ServingPointer, extra: dict[str, str], text: TextConfig, records: dict[str, VersionRecord] | None = None
) -> dict[str, Encoder]:
    """Load the production model (for the pointer's version) and one for every other version of the index.

    Another version's model comes from ``--version-model`` (``extra``, which
    wins) or else from the index's record of which model produced it
    (``records``, `domainfit.index.versions`), with its recorded window and query prompt.
    """
    from domainfit.core.models import load_bi_encoder
    from domainfit.serve.encoder import SentenceTransformerEncoder

    production = production_encoder(pointer, text)
    others = {
        v: SentenceTransformerEncoder(
            load_bi_encoder(r.model, max_seq_length=r.max_seq_length), r.model, text=text,
            query_prompt_name=r.query_prompt_name,
        )
        for v, r in (records or {}).items()
        if v != pointer.version and v not in extra
    }  # fmt: skip
    others |= {v: SentenceTransformerEncoder(load_bi_encoder(m), m, text=text) for v, m in extra.items()}
    return {**others, pointer.version: production}


def judgement_folder(given: str | None, split: str, text: TextConfig) -> JudgementFolder | None:
    """Open (and validate) the judgements folder of ``/compare``; None when none is given.

    Raises `InputError` (exit 2) for a malformed file in it, `UsageError` for a path that is not a folder.
    """
    if not given:
        return None
    from domainfit.serve.judgements import JudgementFolder

    return JudgementFolder(Path(given), split, text)


def bridge_facts(workspace: Workspace, cfg: Config, pointer: ServingPointer, backend: IndexBackend) -> BridgeFacts:
    """Read ``migrate bridge``'s map and facts and check them against what is served (before any model loads)."""
    from domainfit.index.versions import read_versions
    from domainfit.serve.bridge import check_bridge, read_bridge_facts
    from domainfit.stages.migrate import migrate_home, old_facts

    facts = read_bridge_facts(migrate_home(workspace) / "bridge")
    check_bridge(
        facts,
        served_version=pointer.version,
        served_model=old_facts(workspace.stage_dir("index"), pointer).model,
        versions=backend.versions(),
        records=read_versions(workspace.stage_dir("index")),
        min_retention=cfg.migrate.min_bridge_retention,
    )
    return facts


def served_bridge(
    workspace: Workspace, facts: BridgeFacts, encoders: dict[str, Encoder], text: TextConfig
) -> ServedBridge:
    """Load the bridge's new model (re-using a loaded encoder of its version) and register it for that version."""
    from domainfit.core.models import load_bi_encoder
    from domainfit.serve.bridge import ServedBridge
    from domainfit.serve.encoder import SentenceTransformerEncoder

    encoder = encoders.get(facts.new_version)
    if encoder is None or encoder.name != facts.new_model:
        encoder = SentenceTransformerEncoder(
            load_bi_encoder(facts.new_model, max_seq_length=facts.new_max_seq_length), facts.new_model, text=text,
            query_prompt_name=facts.new_query_prompt_name,
        )  # fmt: skip
    encoders.setdefault(facts.new_version, encoder)
    label = facts.path.relative_to(workspace.root).as_posix() if facts.path.is_relative_to(workspace.root) else None
    return ServedBridge(facts, encoder, label)


def serve(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    host: Annotated[
        str | None, typer.Option(help="address to bind (default 127.0.0.1; any other needs a token)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000)")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="file whose first line is the bearer token (or set DOMAINFIT_SERVE_TOKEN)"),
    ] = None,
    query_log: Annotated[
        Path | None, typer.Option("--query-log", help="append every search to this JSONL file")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="serve this index tag instead of production's")] = None,
    version_model: Annotated[
        list[str] | None,
        typer.Option("--version-model", help="VERSION=MODEL: also encode queries for another model version"),
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option("--shadow", help="VERSION: also run each search on this version off the request path and log it"),
    ] = None,
    shadow_log: Annotated[
        Path | None, typer.Option("--shadow-log", help="JSONL file of the shadow comparisons")
    ] = None,
    judgements: Annotated[
        Path | None,
        typer.Option("--judgements", help="BEIR folder: serve GET /compare and append its judgements there"),
    ] = None,
    judgements_split: Annotated[
        str | None, typer.Option("--judgements-split", help="qrels split the judgements go to (default test)")
    ] = None,
    bridge: Annotated[
        bool | None,
        typer.Option(
            "--bridge/--no-bridge",
            help="embed queries with the migration's new model and search production's vectors through "
            "the map `migrate bridge` fitted (until the new version is promoted)",
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Serve search over the workspace's production index (FastAPI + uvicorn)."""
    from domainfit.config import load_config
    from domainfit.core.progress import set_quiet, stderr_console
    from domainfit.serve.auth import check_bind, load_token_digest

    set_quiet(quiet)
    cfg = load_config(
        config,
        {
            "serve": {
                "host": host,
                "port": port,
                "token_file": str(token_file) if token_file is not None else None,
                "query_log": str(query_log) if query_log is not None else None,
                "shadow_log": str(shadow_log) if shadow_log is not None else None,
                "judgements": str(judgements) if judgements is not None else None,
                "judgements_split": judgements_split,
                "bridge": bridge,
            }
        },
    )
    settings = cfg.serve
    digest = load_token_digest(settings.token_file, settings.token_env)
    check_bind(settings.host, digest)
    extra = parse_version_models(version_model or [])
    log_path = check_query_log(Path(settings.query_log)) if settings.query_log else None
    shadow_path = shadow_log_path(settings.shadow_log, log_path) if shadow else None
    if shadow and shadow not in extra:
        raise UsageError(f"--shadow {shadow}: give its model with --version-model {shadow}=MODEL")
    folder = judgement_folder(settings.judgements, settings.judgements_split, cfg.text)

    try:
        from domainfit.serve.app import create_app
    except ImportError as exc:
        raise UsageError(f"domainfit serve needs the serve extra ({exc}): pip install 'domainfit[serve]'") from None
    from domainfit.index.backend import open_index
    from domainfit.serve.querylog import QueryLog
    from domainfit.serve.server import serve_app

    ws = Workspace(workspace)
    backend, pointer = open_index(ws.stage_dir("index"), tag=tag)
    try:
        served = served_of(ws, pointer, tag)
        from domainfit.index.versions import read_versions

        stored = backend.versions()
        records = {v: r for v, r in read_versions(ws.stage_dir("index")).items() if v in stored}
        facts = bridge_facts(ws, cfg, pointer, backend) if settings.bridge else None
        encoders = load_encoders(pointer, extra, cfg.text, records)
        mapped = served_bridge(ws, facts, encoders, cfg.text) if facts is not None else None
        spec = shadow_spec(shadow, encoders, served.version, stored, shadow_path) if shadow_path else None
        follows = settings.follow_pointer and not tag  # a pinned tag is not moved by a promotion
        follow = (ws.stage_dir("index"), snapshot_builder(ws, cfg.text, mapped)) if follows else None
        log = QueryLog(log_path) if log_path is not None else None
        created = {v: r.created for v, r in records.items()}
        app = create_app(backend, encoders, served, settings, token_digest=digest, query_log=log, pointer=pointer,
                         follow=follow, shadow=spec, judgements=folder, version_created=created,
                         bridge=mapped)  # fmt: skip
        if not quiet:
            stderr_console().print(
                f"serving {pointer.model} (version {pointer.version}, tag {served.tag}, "
                f"{backend.count()} documents) on http://{settings.host}:{settings.port}"
                + (" with a bearer token" if digest is not None else "")
                + (f", shadowing version {shadow}" if spec is not None else "")
                + (f"; /compare appends judgements to {folder.root}" if folder is not None else "")
                + (
                    f", queries through the {mapped.facts.bridge.kind} bridge from {mapped.facts.new_model} "
                    f"(retention {mapped.facts.retention:.3f})"
                    if mapped is not None
                    else ""
                ),
                highlight=False,
                markup=False,
            )
        serve_app(app, settings.host, settings.port, token_digest=digest)
    finally:
        backend.close()


#: The function `domainfit.cli.app` registers as this command.
command = serve
