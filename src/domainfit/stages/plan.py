"""The run's plan: count what each stage will do, probe this machine, estimate, fit a budget, record actuals.

Input: the BEIR dataset, the root config, the workspace, the budget (from
``--budget`` or ``[run] budget``) and the seconds already spent. Output, in
``<workspace>/plan/``: ``plan.json`` (the probe, the workload, every stage's
estimate with its parts, what the budget changed and the config overrides
that apply it) and, when the run ends, ``timings.json`` (each stage's actual
seconds next to its estimate), which the report reads.

A run plans twice: before bench (every stage; synthetic pairs, pilots and
steps sized to the budget) and again after mine, when the synthetic pairs are
counted (recipe, train and the stages after it sized to what is left); the
recipe stage's own measured pilots refine the training estimate once more
(`refit_train`).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from domainfit.budget.duration import format_minutes
from domainfit.budget.estimate import SYNTHETIC_PER_DOCUMENT, Workload
from domainfit.budget.fit import Fitted, Schedule, eval_every, evaluations, fit_to_budget, still_to_run
from domainfit.budget.probe import Probe, corpus_lengths, measure_probe
from domainfit.core.errors import UsageError
from domainfit.core.files import atomic_write_json, staged_dir
from domainfit.core.workspace import Workspace
from domainfit.stages.manifest import write_manifest

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.data.beir import BeirDataset
    from domainfit.train.config import TrainConfig

STAGE = "plan"
FORMAT_VERSION = 1
#: Stages shorter than this (estimate and actual) get no actual/estimate ratio: a second's noise is not a miss.
MIN_COMPARED = 5.0
#: Phases that begin a plan: ``run``'s first one and ``train --budget``'s only one.
FIRST_PHASES = ("start", "train")


@dataclass
class Plan:
    """A plan: the estimates, the budget's changes and the config overrides that apply them."""

    budget_seconds: float | None
    spent_seconds: float
    seconds: float
    fits: bool
    stages: list[dict[str, Any]]
    changes: list[str]
    overrides: dict[str, dict[str, Any]]
    workload: dict[str, Any]
    probe: dict[str, Any]
    phase: str
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to ``plan.json``."""
        return {"format_version": FORMAT_VERSION, **asdict(self)}

    def estimate(self, stage: str, occurrence: int = 0) -> float | None:
        """Return the estimated seconds of the ``occurrence``-th run of ``stage`` (None when not planned)."""
        found = [s["seconds"] for s in self.stages if s["stage"] == stage]
        return found[occurrence] if occurrence < len(found) else None


def _judged(qrels: dict[str, dict[str, int]] | None) -> int:
    """Count the queries with at least one relevant document."""
    return sum(any(g > 0 for g in docs.values()) for docs in (qrels or {}).values())


def _labelled_triples(dataset: BeirDataset, split: str, seed: int) -> list[tuple[str, str, str]]:
    """(query, positive, random document) triples of the train qrels, for the training probe."""
    ids = list(dataset.corpus)
    rng = random.Random(seed)
    return [
        (dataset.queries[q].text, dataset.corpus[d].full_text(), dataset.corpus[rng.choice(ids)].full_text())
        for q, docs in sorted(dataset.qrels.get(split, {}).items())
        for d, g in docs.items()
        if g > 0 and q in dataset.queries and d in dataset.corpus
    ]


def _train_window(dataset: BeirDataset, config: Config, triples: list[tuple[str, str, str]]) -> int:
    """Return the training window the recipe stage will choose (the user's when set)."""
    if "max_seq_length" in config.train.model_fields_set:
        return config.train.max_seq_length
    from domainfit.core.models import load_bi_encoder
    from domainfit.recipe.settings import choose_seq_length, measure_token_lengths

    model = load_bi_encoder(config.train.base_model)
    window = min(int(getattr(model.tokenizer, "model_max_length", 512) or 512), int(model.max_seq_length or 512))
    lengths = measure_token_lengths(model, [t[1] for t in triples], seed=config.train.seed)
    return int(choose_seq_length(lengths, window, config.eval.max_seq_length).value)


def _schedule(config: Config, labelled: int, synthetic: int, folds: bool) -> Schedule:
    """Return the recipe search's pilot schedule: trials (grid size capped by ``max_trials``), steps, rungs."""
    from domainfit.recipe.settings import choose_negatives, choose_synthetic_shares

    cfg = config.recipe
    if not cfg.search:
        return Schedule(0, cfg.pilot_steps, cfg.min_rung_steps, cfg.reduction_factor)
    shares = cfg.synthetic_shares or choose_synthetic_shares(labelled, synthetic).value
    negatives = cfg.negatives or choose_negatives(labelled, config.mine.negatives).value
    grid = len(cfg.learning_rates) * len(shares if synthetic else [0.0]) * len(cfg.losses) * len(negatives)
    trials = min(cfg.max_trials, grid) if grid > 1 else 0
    return Schedule(trials, cfg.pilot_steps, cfg.min_rung_steps, cfg.reduction_factor, cfg.folds if folds else 1)


def _general_texts(config: Config) -> int:
    """Texts of the forgetting check's general set (0 when it is off)."""
    if not config.eval.general or config.eval.general.lower() == "none":
        return 0
    from domainfit.data.general_set import general_dataset

    return min(config.eval.max_general_texts, len(general_dataset(config.eval.general).corpus))


def _dev_pool(documents: int, train: TrainConfig, dev: int) -> tuple[int, float | None]:
    """Documents a dev evaluation during training encodes, and per dev query (None: not fewer with fewer queries).

    ``[train] eval_corpus``: ``full`` every document, ``sample`` the judged ones
    topped up to ``eval_max_corpus``, ``pool`` about ``eval_pool_depth`` per query.
    """
    if train.eval_corpus == "full":
        return documents, None
    if train.eval_corpus == "sample":
        return min(documents, train.eval_max_corpus), None
    pool = min(documents, dev * train.eval_pool_depth)
    return pool, pool / max(1, dev)


def count_workload(dataset: BeirDataset, config: Config, lengths: list[int], window: int, train_window: int,
                   synthetic: int | None = None, examples: int | None = None) -> tuple[Workload, Schedule]:  # fmt: skip
    """Count what the run will do from the data and the config.

    ``synthetic``: the synthetic pairs, when counted; ``examples``: the
    training examples of the full run, when known (else the labelled pairs:
    the reference recipe's).
    """
    train = config.train
    labelled = sum(g > 0 for docs in dataset.qrels.get(train.train_split, {}).values() for g in docs.values())
    splits = (config.bench.split, train.eval_split)
    held = {d for s in splits for docs in dataset.qrels.get(s, {}).values() for d in docs}
    source = len(dataset.corpus) - (len(held) if config.synth.exclude_eval_documents else 0)
    source = min(source, config.synth.max_documents or source)
    if synthetic is None:
        per_doc = config.synth.llm.queries_per_document if config.synth.llm.base_url else SYNTHETIC_PER_DOCUMENT
        synthetic = int(source * per_doc) if config.mine.synthetic else 0
    queries = {s: _judged(q) for s, q in dataset.qrels.items()}
    dev = min(queries.get(train.eval_split, 0), train.eval_max_queries or queries.get(train.eval_split, 0))
    from domainfit.recipe.folds import needs_folds

    folds = needs_folds(dataset.qrels.get(train.eval_split), config.recipe.min_dev_queries)
    examples = labelled if examples is None else examples  # the plan after recipe knows the winner's
    steps = train.max_steps if train.max_steps > 0 else math.ceil(examples * train.epochs / train.batch_size)
    pool, per_query = _dev_pool(len(dataset.corpus), train, dev)
    pilot_queries = min(dev, config.recipe.pilot_dev_queries)
    work = Workload(
        documents=len(dataset.corpus),
        lengths=lengths,
        queries=queries,
        labelled=labelled,
        synthetic=synthetic,
        source_documents=max(0, source),
        general_texts=_general_texts(config),
        bench_models=len(config.bench.models),
        window=window,
        train_window=train_window,
        train_steps=steps,
        train_evaluations=evaluations(steps, train.eval_steps),
        eval_pool_documents=pool,
        eval_queries=dev,
        eval_pool_per_query=per_query,
        negatives=train.max_negatives,
        pilot_pool_documents=min(len(dataset.corpus), pilot_queries * config.recipe.dev_pool_depth),
        pilot_queries=pilot_queries,
        compress=config.pipeline.compress,
        index=config.pipeline.index,
        llm_queries=config.synth.llm.base_url is not None,
        levels=config.decide.levels,
    )
    return work, _schedule(config, labelled, synthetic, folds)


def _overrides(config: Config, fitted: Fitted, asked: Workload, schedule: Schedule) -> dict[str, dict[str, Any]]:
    """Config overrides that apply what the budget changed (empty when nothing was)."""
    out: dict[str, dict[str, Any]] = {}
    if fitted.workload.source_documents < asked.source_documents:
        out["synth"] = {"max_documents": fitted.workload.source_documents}
    if (fitted.schedule.trials, fitted.schedule.pilot_steps) != (schedule.trials, schedule.pilot_steps):
        if fitted.schedule.trials == 0:
            out["recipe"] = {"search": False}
        else:
            out["recipe"] = {"max_trials": fitted.schedule.trials, "pilot_steps": fitted.schedule.pilot_steps}
    if fitted.workload.train_steps < asked.train_steps or fitted.eval_steps != config.train.eval_steps:
        out["train"] = _train_sizes(fitted.workload.train_steps, fitted.eval_steps)
    if fitted.workload.eval_queries < asked.eval_queries:
        out.setdefault("train", {})["eval_max_queries"] = fitted.workload.eval_queries
    return out


def _train_sizes(steps: int, eval_steps: int) -> dict[str, Any]:
    """``[train]`` overrides for a full run of ``steps`` steps that evaluates and saves every ``eval_steps``."""
    return {"max_steps": steps, "eval_steps": eval_steps, "save_steps": eval_steps}


def apply_overrides(config: Config, overrides: dict[str, dict[str, Any]]) -> Config:
    """Return ``config`` with the plan's overrides applied to its sections (each validated).

    Which settings the user set (``model_fields_set``) is kept as it was: the
    recipe stage treats a setting the user fixed as the only value to try, and
    a value the plan chose is not one the user fixed.
    """
    if not overrides:
        return config
    sections: dict[str, Any] = {}
    for name, values in overrides.items():
        current = getattr(config, name)
        updated = type(current).model_validate({**current.model_dump(), **values})
        object.__setattr__(updated, "__pydantic_fields_set__", set(current.model_fields_set))
        sections[name] = updated
    return config.model_copy(update=sections)


def make_plan(
    dataset: BeirDataset,
    config: Config,
    workspace: Workspace,
    *,
    budget: float | None,
    spent: float,
    phase: str,
    synthetic: int | None = None,
    probe: Probe | None = None,
    done: tuple[str, ...] = (),
    force: bool = False,
) -> tuple[Plan, Config, Probe]:
    """Probe (unless given), count, estimate and fit the run into ``budget``; write ``plan/plan.json``.

    Inputs: the dataset, the config, the workspace, the budget in seconds (None:
    no budget), seconds spent so far, the phase name ("start" or "after mine"),
    the counted synthetic pairs (after mine), an earlier probe to reuse and the
    stages already done (left out of the estimates) and ``force`` to probe
    again (else the workspace's last probe of the same model, batch and
    windows is reused). Output: the plan, the
    config with its overrides, the probe. Raises `UsageError` when, at the
    start, the budget cannot hold even the smallest plan; later phases keep
    the smallest plan and say by how much it overruns.
    """
    triples = _labelled_triples(dataset, config.train.train_split, config.train.seed)
    train_window = probe.train_window if probe else _train_window(dataset, config, triples)
    texts = [d.full_text() for d in dataset.corpus.values()]
    queries = [q.text for q in dataset.queries.values()]
    probe = probe or plan_probe(workspace, config, texts, queries, triples, train_window, force=force)
    lengths = corpus_lengths(config.train.base_model, texts, config.train.seed)
    asked, schedule = count_workload(dataset, config, lengths, encode_window(config), train_window, synthetic)
    plan = fit_plan(config, replace(asked, pilots=schedule.trials), schedule, probe, budget=budget, spent=spent,
                    phase=phase, done=done)  # fmt: skip
    write_plan(workspace, plan)
    return plan, apply_overrides(config, plan.overrides), probe


def encode_window(config: Config) -> int:
    """Return the window bench and eval encode documents at: ``[bench] max_seq_length`` (512 when unset)."""
    return config.bench.max_seq_length or 512


def plan_probe(
    workspace: Workspace,
    config: Config,
    texts: list[str],
    queries: list[str],
    triples: list[tuple[str, str, str]],
    train_window: int,
    *,
    force: bool = False,
) -> Probe:
    """Return the workspace's last probe of the same model, batches and windows, or measure one (always with ``force``).

    Inputs: the corpus texts, the query texts and the training triples (query,
    positive, negative) the probe times, and the training window. The encoding
    window is `encode_window`'s; the training batches are grouped as ``[train]
    batch_grouping`` says, as the trainer will group them.
    """
    window = encode_window(config)
    earlier = None if force else _earlier_probe(workspace, config, window, train_window)
    if earlier is not None:
        return earlier
    return measure_probe(config.train.base_model, texts, queries, triples, batch_size=config.bench.batch_size,
                         window=window, train_window=train_window, train_batch_size=config.train.batch_size,
                         batch_grouping=config.train.batch_grouping, seed=config.train.seed)  # fmt: skip


def fit_plan(
    config: Config,
    asked: Workload,
    schedule: Schedule,
    probe: Probe,
    *,
    budget: float | None,
    spent: float,
    phase: str,
    done: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
) -> Plan:
    """Fit ``asked`` into ``budget`` with the run's policy (`fit_to_budget`) and return the plan (not yet written).

    ``done``: the stages already run (their time is in ``spent``; after them
    nothing is generated again, so synthetic pairs are not cut); ``only``: the
    stages the command runs (empty: the whole loop; ``("train",)`` for
    ``train --budget``). Raises `UsageError`, before any expensive work, when
    nothing is done yet and even the smallest plan overruns the budget;
    mid-run the smallest plan is kept and its overrun is one of its changes.
    """
    fitted = fit_to_budget(
        asked,
        probe,
        schedule,
        eval_steps=config.train.eval_steps,
        budget_seconds=budget,
        spent=spent,
        min_train_steps=config.run.min_train_steps,
        max_share=max(config.recipe.synthetic_shares or [0.5]),
        cut_synthetic=not done and not only,
        done=done,
        only=only,
    )
    stages = still_to_run(fitted.stages, done, only)
    plan = Plan(
        budget_seconds=budget,
        spent_seconds=round(spent, 1),
        seconds=round(spent + sum(s.seconds for s in stages), 1),
        fits=fitted.fits,
        stages=[s.to_json() for s in stages],
        changes=fitted.changes,
        overrides=_overrides(config, fitted, asked, schedule),
        workload={
            **{k: v for k, v in asdict(fitted.workload).items() if k != "lengths"},
            "base_model": config.train.base_model,
            "train_batch_size": config.train.batch_size,
        },
        probe=probe.to_json(),
        phase=phase,
    )
    if budget is not None and not fitted.fits and done:  # mid-run: the work done is kept, the rest shrinks
        plan.changes.append(
            f"the smallest plan overruns the budget by {format_minutes(plan.seconds - budget)}: the stages before "
            "ran over their estimates; the run goes on with the smallest plan"
        )
    elif budget is not None and not fitted.fits:
        raise UsageError(
            f"the budget of {format_minutes(budget)} cannot hold even the smallest plan "
            f"({format_minutes(plan.seconds)}, {format_minutes(plan.seconds - budget)} over: {_breakdown(plan)}); "
            "raise --budget"
        )
    return plan


def _earlier_probe(workspace: Workspace, config: Config, window: int, train_window: int) -> Probe | None:
    """Return the last probe if it timed the same model, batches, grouping and windows (an old one: shuffled)."""
    previous = read_plan(workspace)
    if previous is None or previous.workload.get("base_model") != config.train.base_model:
        return None
    try:
        probe = Probe(**previous.probe)
    except TypeError:
        return None
    same = (probe.window, probe.train_window, probe.batch_size, probe.batch_grouping) == (
        window, train_window, config.bench.batch_size, config.train.batch_grouping)  # fmt: skip
    return probe if same and previous.workload.get("train_batch_size") == config.train.batch_size else None


def _breakdown(plan: Plan) -> str:
    """``bench 3.1 min, train 5.0 min, ...`` for one line; a plan of one stage names that stage's parts."""
    if len(plan.stages) == 1:
        (only,) = plan.stages
        parts = ", ".join(f"{k} {format_minutes(v)}" for k, v in only["parts"].items())
        return f"{only['stage']} {format_minutes(only['seconds'])}" + (f" ({parts})" if parts else "")
    return ", ".join(f"{s['stage']} {format_minutes(s['seconds'])}" for s in plan.stages if s["seconds"] >= 1)


def plan_lines(plan: Plan) -> list[str]:
    """Lines the run prints: the total against the budget, the stages' minutes and what the budget changed."""
    budget = f" of a {format_minutes(plan.budget_seconds)} budget" if plan.budget_seconds else ""
    w = plan.workload
    queries = f" of {w['eval_queries']} dev queries" if w.get("eval_queries") else ""
    head = (
        f"plan ({plan.phase}): {format_minutes(plan.seconds)}{budget}; {w['labelled']} labelled + "
        f"{w['synthetic']} synthetic pairs, {w['train_steps']} steps at {w['train_window']} tokens, "
        f"{w['train_evaluations']} dev evaluations{queries}, {w['pilots']} pilots"
    )
    return [head, f"plan: {_breakdown(plan)}", *(f"plan: budget: {c}" for c in plan.changes)]


def write_plan(workspace: Workspace, plan: Plan) -> None:
    """Write ``plan/plan.json``, keeping the earlier phases' estimates in ``history`` (a first phase starts anew)."""
    out_dir = workspace.stage_dir(STAGE)
    previous = read_plan(workspace)
    if previous is not None and plan.phase not in FIRST_PHASES:
        plan.history = [*previous.history, {k: v for k, v in asdict(previous).items() if k != "history"}]
    with workspace.lock(), staged_dir(out_dir) as tmp:
        atomic_write_json(tmp / "plan.json", plan.to_json())
        write_manifest(tmp, STAGE, {"phase": plan.phase}, ["plan.json"])


def read_plan(workspace: Workspace) -> Plan | None:
    """Return the workspace's plan (None when there is none or it is of another format)."""
    path = workspace.stage_dir(STAGE) / "plan.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.pop("format_version", None) != FORMAT_VERSION:
        return None
    return Plan(**data)


def refit_train(plan: Plan, config: Config, probe: Probe, measured_step: float | None, budget: float | None,
                spent: float) -> tuple[Config, list[str]]:  # fmt: skip
    """Cut the full run's steps to what the budget has left, at the pilots' measured step time.

    Returns the config (``[train] max_steps`` cut when needed) and what changed.
    """
    if budget is None or measured_step is None:
        return config, []
    after = sum(s["seconds"] for s in plan.stages if s["stage"] in ("eval", "compress", "index", "report", "decide"))
    train = next((s for s in plan.stages if s["stage"] == "train"), None)
    evals = train["parts"].get("evaluations", 0.0) if train else 0.0
    room = budget - spent - after - evals - probe.model_load_seconds
    steps = config.train.max_steps
    if steps <= 0:
        return config, []
    cut = max(config.run.min_train_steps, int(room / max(measured_step, 1e-6)))
    if cut >= steps:
        return config, []
    count = min(3, plan.workload.get("train_evaluations") or 3)  # as many as the fitted plan kept, at most three
    changed = apply_overrides(config, {"train": _train_sizes(cut, eval_every(cut, count))})
    return changed, [f"full run cut to {cut} of {steps} steps at the pilots' {measured_step:.1f} s per step"]


def planned(plan: Plan) -> list[tuple[str, float]]:
    """Every stage the run planned, in loop order, each with its latest estimate made before it ran.

    Each later phase plans the tail of the loop again; its estimates replace the earlier ones of that tail.
    """
    phases = [*plan.history, asdict(plan)]
    merged = [(s["stage"], float(s["seconds"])) for s in phases[0]["stages"]]
    for phase in phases[1:]:
        tail = [(s["stage"], float(s["seconds"])) for s in phase["stages"]]
        merged = merged[: max(0, len(merged) - len(tail))] + tail
    return merged


def record_timings(workspace: Workspace, stages: list[dict[str, Any]], total: float) -> None:
    """Write ``plan/timings.json``: each stage's actual seconds and status next to its latest estimate."""
    plan = read_plan(workspace)
    if plan is None:
        return
    merged, at, rows = planned(plan), 0, []
    for entry in stages:
        if entry["stage"] == "plan":
            continue
        found = next((i for i in range(at, len(merged)) if merged[i][0] == entry["stage"]), None)
        estimate = merged[found][1] if found is not None else None
        at = found + 1 if found is not None else at
        comparable = estimate and entry["status"] == "ran" and max(estimate, entry["seconds"]) >= MIN_COMPARED
        ratio = round(entry["seconds"] / estimate, 2) if comparable and estimate else None
        rows.append({**entry, "estimate": estimate, "ratio": ratio})
    payload = {"format_version": FORMAT_VERSION, "budget_seconds": plan.budget_seconds,
               "estimate_seconds": plan.history[0]["seconds"] if plan.history else plan.seconds,
               "seconds": round(total, 1), "stages": rows}  # fmt: skip
    with workspace.lock():
        atomic_write_json(workspace.stage_dir(STAGE) / "timings.json", payload)


def update_train(workspace: Workspace, plan: Plan, seconds: float, changes: list[str], spent: float) -> Plan:
    """Write the phase "after recipe": the full run's estimate from the pilots' measured steps."""
    stages = still_to_run([_Entry(**s) for s in plan.stages], ("recipe",))
    rows = [{**asdict(s), "seconds": round(seconds, 1) if s.stage == "train" else s.seconds} for s in stages]
    new = replace(plan, phase="after recipe", stages=rows, changes=changes, history=[], spent_seconds=round(spent, 1),
                  seconds=round(spent + sum(r["seconds"] for r in rows), 1))  # fmt: skip
    write_plan(workspace, new)
    return new


@dataclass
class _Entry:
    """A stage estimate read back from ``plan.json``."""

    stage: str
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)
