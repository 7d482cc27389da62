"""The ``recipe`` stage: settings read from the data, then the training recipe chosen on dev.

Input: the BEIR folder, the workspace (``mine/`` when it ran: its dataset and
each row's origin) and the root config (``[train]``, ``[recipe]``, ``[eval]``).
Output, in ``<workspace>/recipe/``: ``search.json`` (every setting with its
reason, how selection was done, the dev pool against the full corpus, every
trial with its recipe, state, dev curve and seconds, the winner and the
``[train]`` overrides the full run uses), ``summary.md`` and ``manifest.json``.

Steps: measure the training positives' token lengths with the base model's
tokenizer and choose the training window; choose the synthetic shares and
hard-negative counts to try from the counts of labelled and synthetic pairs;
choose where selection happens (the dev split, or held-out folds of the train
queries when dev is missing or tiny); build the grid of recipes and run them
as short pilots pruned by successive halving on dev NDCG@10
(`domainfit.recipe.search`). Pilots score on a dev pool (judged documents and
the top of BM25 and base dense for a seeded sample of dev queries), which
keeps the base score where the full corpus puts it; the difference is reported.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.progress import progress_bar
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.recipe.settings import Setting
from domainfit.recipe.space import Recipe
from domainfit.stages.contract import Previous, ReportSection, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Section, Text, Upstream, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.data import Example

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.data.beir import BeirDataset
    from domainfit.recipe.config import RecipeConfig
    from domainfit.recipe.search import PilotFn
    from domainfit.train.config import TrainConfig
    from domainfit.train.origins import MinedExamples

FORMAT_VERSION = 1


@dataclass
class RecipeResult:
    """What the stage chose and why; also what ``search.json`` holds."""

    settings: list[dict[str, Any]]
    selection: dict[str, Any]
    pool: dict[str, Any] | None
    search: dict[str, Any] | None
    winner: dict[str, Any]
    train_overrides: dict[str, Any]
    examples: dict[str, int]
    seconds: dict[str, float]
    output_dir: str
    notes: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    up_to_date: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to ``search.json``."""
        data = asdict(self)
        data.pop("up_to_date")
        return {"format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecipeResult:
        """Rebuild a result from ``search.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"search.json format_version {data.get('format_version')!r} is not {FORMAT_VERSION}")
        return cls(**{k: v for k, v in data.items() if k != "format_version"})


def trained_config(train: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Return ``[train]`` with the chosen recipe's overrides applied (validated)."""
    from domainfit.train.config import TrainConfig

    return TrainConfig.model_validate({**train.model_dump(), **overrides})


def _examples(
    workspace: Workspace, dataset: BeirDataset, train: TrainConfig, text: TextConfig = DEFAULT_TEXT
) -> MinedExamples:
    """Return the training examples with their origins: mine's dataset when it exists, else the train qrels."""
    from domainfit.train.data import examples_from_qrels
    from domainfit.train.origins import LABELLED, MinedExamples, mined_examples

    mine_dir = workspace.stage_dir("mine")
    if train.dataset is None and (mine_dir / "dataset").is_dir():
        return mined_examples(mine_dir, text)
    if train.dataset is not None:
        from domainfit.train.data import examples_from_pairs

        found = examples_from_pairs(Path(train.dataset).expanduser().resolve(), text)
        return MinedExamples(found, [LABELLED] * len(found))
    found = examples_from_qrels(dataset, train.train_split, text)
    return MinedExamples(found, [LABELLED] * len(found))


def _seq_length(model: Any, mined: MinedExamples, config: Config) -> Setting:
    """Return the training window: the user's when ``[train] max_seq_length`` is set, else read from the data."""
    from domainfit.recipe.settings import choose_seq_length, measure_token_lengths

    if "max_seq_length" in config.train.model_fields_set:
        return Setting("max_seq_length", config.train.max_seq_length, "set in [train]")
    window = int(getattr(model.tokenizer, "model_max_length", 512) or 512)
    window = min(window, int(model.max_seq_length or window))
    lengths = measure_token_lengths(
        model, [e.positive for e in mined.examples], seed=config.train.seed, prompt=config.train.document_prompt
    )
    return choose_seq_length(lengths, window, config.eval.max_seq_length)


def _dev_sample(dev: dict[str, dict[str, int]], limit: int, seed: int) -> dict[str, dict[str, int]]:
    """Return a seeded sample of at most ``limit`` judged dev queries (all when fewer)."""
    judged = sorted(q for q, docs in dev.items() if any(g > 0 for g in docs.values()))
    picked = judged if len(judged) <= limit else sorted(random.Random(seed).sample(judged, limit))
    return {q: dev[q] for q in picked}


def _pool_pilot(
    dataset: BeirDataset,
    workspace: Workspace,
    config: Config,
    train: TrainConfig,
    mined: MinedExamples,
    pilots: list[Any],
) -> tuple[PilotFn, dict[str, Any], Any]:
    """Return the pilot scored on a dev pool, the pool report and the pilot object (for its base score).

    The pilot is added to ``pilots`` (their measured step and evaluation times make the plan).
    """
    from domainfit.evaluation.metrics import evaluate
    from domainfit.recipe.devpool import candidate_runs, dev_pool, pool_evaluator
    from domainfit.recipe.pilot import TrainingPilot
    from domainfit.recipe.search import evaluation_steps

    cfg = config.recipe
    dev = _dev_sample(dataset.qrels[train.eval_split], cfg.pilot_dev_queries, cfg.seed)
    texts = {q: dataset.queries[q].text for q in dev if q in dataset.queries}
    runs = candidate_runs(
        dataset.corpus,
        texts,
        train.base_model,
        max(cfg.dev_pool_depth, 10),
        max_seq_length=config.eval.max_seq_length,
        cache_dir=workspace.cache_dir / "embeddings",
        text=config.text,
    )
    pool = dev_pool(dataset.corpus, dev, runs, cfg.dev_pool_depth)
    evaluator = pool_evaluator(dataset.corpus, texts, dev, pool, batch_size=train.batch_size)
    pilot = TrainingPilot(
        train,
        lambda recipe: mined.with_share(recipe.synthetic_share, train.seed),
        evaluator,
        evaluation_steps(cfg),
        text=config.text,
    )
    pilots.append(pilot)
    full = evaluate(dev, runs[1], ["ndcg@10"])["ndcg@10"]
    report = {"full": round(full, 6), "n_pool": len(pool), "n_corpus": len(dataset.corpus), "n_queries": len(dev)}
    return pilot, report, pilot


def _fixed(examples: list[Example]) -> Callable[[Recipe], list[Example]]:
    """Return ``examples(recipe)`` giving the same examples to every recipe (one fold's training part)."""
    return lambda _recipe: examples


def _fold_pilot(dataset: BeirDataset, config: Config, train: TrainConfig, pilots: list[Any]) -> PilotFn:
    """Return the pilot scored on held-out folds of the train queries (few labels, no usable dev split).

    Each fold's pilot is added to ``pilots`` (their measured times make the plan).
    """
    from domainfit.recipe.devpool import pool_evaluator
    from domainfit.recipe.foldpilot import CrossFoldPilot
    from domainfit.recipe.folds import selection_folds
    from domainfit.recipe.pilot import TrainingPilot
    from domainfit.recipe.search import evaluation_steps

    cfg = config.recipe
    qrels = dataset.qrels[train.train_split]
    folds: list[PilotFn] = []
    for part, heldout in selection_folds(qrels, dataset.queries, cfg.folds, cfg.seed):
        examples = [
            Example(dataset.queries[q].text, dataset.corpus[d].full_text(), settings=config.text)
            for q, docs in part.items()
            for d, g in docs.items()
            if g > 0 and q in dataset.queries and d in dataset.corpus
        ]
        texts = {q: dataset.queries[q].text for q in heldout if q in dataset.queries}
        evaluator = pool_evaluator(dataset.corpus, texts, heldout, None, batch_size=train.batch_size)
        folds.append(TrainingPilot(train, _fixed(examples), evaluator, evaluation_steps(cfg), text=config.text))
        pilots.append(folds[-1])
    return CrossFoldPilot(folds, fold_steps=cfg.pilot_steps)


def _counted(pilot: PilotFn, advance: Callable[[int], None]) -> PilotFn:
    """Return ``pilot`` advancing the progress bar by one when each pilot ends (complete, pruned or failed)."""

    def run(recipe: Recipe, reporter: Any) -> float:
        try:
            return pilot(recipe, reporter)
        finally:
            advance(1)

    return run


def _space_config(config: Config) -> RecipeConfig:
    """Return ``[recipe]`` with every ``[train]`` setting the user fixed taken as the only value to try."""
    fixed = config.train.model_fields_set
    update: dict[str, Any] = {}
    if "learning_rate" in fixed:
        update["learning_rates"] = [config.train.learning_rate]
    if "loss" in fixed and config.train.loss in ("mnrl", "cached-mnrl", "margin-mse"):
        update["losses"] = [config.train.loss]
    if "max_negatives" in fixed:
        update["negatives"] = [config.train.max_negatives]
    if "synthetic_share" in fixed:
        update["synthetic_shares"] = [config.train.synthetic_share or 0.0]
    return config.recipe.model_copy(update=update) if update else config.recipe


def _search(
    dataset: BeirDataset,
    workspace: Workspace,
    config: Config,
    train: TrainConfig,
    mined: MinedExamples,
    pilots: list[Any],
) -> tuple[dict[str, Any], list[Setting], dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]:
    """Choose shares and negatives, build the recipes and search them; return (winner, settings, pool, search, sel)."""
    from domainfit.recipe.folds import needs_folds, selection_setting
    from domainfit.recipe.search import run_search
    from domainfit.recipe.settings import choose_negatives, choose_synthetic_shares
    from domainfit.recipe.space import recipe_space

    space = _space_config(config)
    counts = mined.counts()
    n_labelled, n_synthetic = counts.get("labelled", 0), counts.get("synthetic", 0)
    available = min((len(e.negatives) for e in mined.examples), default=0)
    shares = choose_synthetic_shares(n_labelled, n_synthetic)
    negatives = choose_negatives(n_labelled, available)
    dev = dataset.qrels.get(train.eval_split)
    selection_on = selection_setting(dev, config.recipe.min_dev_queries, config.recipe.folds)
    settings = [shares, negatives, selection_on]
    recipes = recipe_space(
        space,
        has_synthetic=n_synthetic > 0,
        has_teacher=False,
        has_labelled=n_labelled > 0,
        shares=shares.value,
        negatives=[n for n in negatives.value if n <= available] or [0],
    )
    selection: dict[str, Any] = {"on": selection_on.value, "reason": selection_on.reason}
    if not config.recipe.search or len(recipes) == 1:
        return recipes[0].to_json(), settings, None, None, {**selection, "searched": False}
    pool: dict[str, Any] | None = None
    if needs_folds(dev, config.recipe.min_dev_queries):
        if train.train_split not in dataset.qrels:
            raise InputError(dataset.root or "-", 0, "recipe", "no dev split and no train qrels to select on")
        pilot = _fold_pilot(dataset, config, train, pilots)
    else:
        pilot, pool, base = _pool_pilot(dataset, workspace, config, train, mined, pilots)
        pool["pool"] = round(base.base_score(), 6)
        pool["difference"] = round(pool["pool"] - pool["full"], 6)
    with progress_bar("recipe pilots", min(len(recipes), space.max_trials)) as advance:
        found = run_search(recipes, _counted(pilot, advance), space)
    if found.winner is None:
        raise InputError("-", 0, "recipe", "no recipe pilot completed; see recipe/search.json")
    return found.winner.recipe.to_json(), settings, pool, found.to_json(), {**selection, "searched": True}


def _overrides(winner: dict[str, Any], seq: Setting, searched: bool) -> dict[str, Any]:
    """Return the ``[train]`` overrides of the full run: the chosen window and, after a search, the winner's recipe."""
    if not searched:
        return {"max_seq_length": seq.value}
    return {
        "learning_rate": winner["learning_rate"],
        "loss": winner["loss"],
        "max_negatives": winner["negatives"],
        "synthetic_share": winner["synthetic_share"],
        "max_seq_length": seq.value,
    }


def _median(values: list[float]) -> float | None:
    """Return the median of ``values`` (None when empty)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def _plan(
    train: TrainConfig, n_examples: int, n_dev_queries: int, pool: dict[str, Any] | None, pilots: list[Any]
) -> dict[str, Any]:
    """Return the full run's plan: its time from the pilots' steps and evaluations measured on this machine.

    A pilot's first step (warm-up) is left out. An evaluation of the full run
    scores every dev query over its pool: the pilots' evaluation time is scaled
    by the pool's expected growth (pilot pool size x dev queries / pilot queries,
    at most the corpus).
    """
    steps_s = [t for p in pilots for run in p.timings for t in run["steps"][1:]]
    evals_s = [t for p in pilots for run in p.timings for t in run["evaluations"]]
    step, evaluation = _median(steps_s), _median(evals_s)
    steps = train.max_steps if train.max_steps > 0 else math.ceil(n_examples * train.epochs / train.batch_size)
    n_evals = 1 + steps // train.eval_steps  # the base model first, then every eval_steps
    plan: dict[str, Any] = {"steps": steps, "examples": n_examples, "evaluations": n_evals,
                            "max_seq_length": train.max_seq_length, "batch_size": train.batch_size}  # fmt: skip
    if step is None:
        return {**plan, "seconds": None, "basis": "no pilot ran: nothing measured"}
    scale = 1.0
    if pool and evaluation is not None:
        grown = min(pool["n_corpus"], pool["n_pool"] * max(1, n_dev_queries) / max(1, pool["n_queries"]))
        scale = grown / max(1, pool["n_pool"])
    eval_seconds = (evaluation or 0.0) * scale
    plan.update(
        seconds_per_step=round(step, 3),
        seconds_per_evaluation=round(eval_seconds, 1),
        seconds=round(steps * step + n_evals * eval_seconds, 1),
        basis=f"median of {len(steps_s)} measured pilot steps and {len(evals_s)} pilot evaluations on this machine",
    )
    return plan


def plan_line(result: RecipeResult) -> str | None:
    """One line saying what the full run will train on and how long it should take (None without a plan)."""
    plan = result.plan
    if not plan or plan.get("seconds") is None:
        return None
    origins = ", ".join(f"{n} {o}" for o, n in sorted(result.examples.items()))
    return (
        f"plan: train {plan['steps']} steps x {plan['seconds_per_step']:.1f} s + {plan['evaluations']} dev "
        f"evaluations x {plan['seconds_per_evaluation']:.0f} s = {plan['seconds'] / 60:.1f} min "
        f"(max_seq_length {plan['max_seq_length']}, batch {plan['batch_size']}, {plan['examples']} examples; "
        f"pairs available: {origins}; recipe {result.winner['name']})"
    )


def _summary(result: RecipeResult) -> str:
    """Render the settings, selection, pool and trials as Markdown."""
    lines = ["# Training recipe", "", "## Settings read from the data", ""]
    lines += [f"- `{s['name']}` = {s['value']}: {s['reason']}" for s in result.settings]
    lines += ["", f"Selection on **{result.selection['on']}**: {result.selection['reason']}."]
    if result.pool:
        p = result.pool
        lines.append(
            f"Pilots score on a dev pool of {p['n_pool']} of {p['n_corpus']} documents ({p['n_queries']} queries): "
            f"base NDCG@10 {p['pool']:.4f} on the pool vs {p['full']:.4f} on the full corpus "
            f"(difference {p['difference']:+.4f})."
        )
    if result.search:
        lines += ["", "| recipe | state | dev NDCG@10 by step | seconds |", "|---|---|---|---:|"]
        for trial in result.search["trials"]:
            curve = ", ".join(f"{p['step']}: {p['ndcg@10']:.3f}" for p in trial["curve"])
            lines.append(f"| {trial['recipe']['name']} | {trial['state']} | {curve} | {trial['seconds']:.0f} |")
    lines += ["", f"Winner: **{result.winner['name']}**; the full run trains with {result.train_overrides}."]
    if (line := plan_line(result)) is not None:
        lines += ["", line.replace("plan: ", "Plan: ", 1) + "."]
    return "\n".join(lines) + "\n"


class RecipeStage(Stage[RecipeResult]):
    """Read settings from the data and choose the training recipe on dev (or on folds of the train queries).

    Inputs: the workspace (``mine/`` when it ran), the BEIR folder, the root
    config (``[train]``, ``[recipe]``, ``[eval]``, ``[text]``) and the largest
    JSONL record. Output: a `RecipeResult` whose ``train_overrides`` the train
    stage applies (`trained_config`). Raises `InputError` on bad data (nothing is written).
    """

    name: ClassVar[str] = "recipe"
    reads: ClassVar[tuple[str, ...]] = ("mine",)
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection("summary.md", 20),)

    def __init__(
        self, workspace: Workspace, data: Path | str, config: Config, *, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.max_line_bytes = config, max_line_bytes

    def check(self) -> None:
        """Load (and check) the data."""
        from domainfit.data.beir import load_beir

        self._started = time.perf_counter()
        assert self.data is not None
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.config.text)

    def inputs(self) -> dict[str, Input]:
        """Declare the data, mine's output (its manifest), the settings the choice depends on."""
        assert self.data is not None
        config = self.config
        return {
            "data_sha256": DataFiles(self.data),
            "mine_manifest_sha256": Upstream("mine", self.workspace.stage_dir("mine") / "manifest.json"),
            "recipe": Section(config.recipe),
            "train": Section(config.train),
            "eval_max_seq_length": Value(config.eval.max_seq_length, of="config"),
            "domainfit_version": Value(__version__),
            "text_normalization": Text(config.text, only_normalization=True),
        }

    def compute(self, out: Path, previous: Previous | None) -> RecipeResult:
        """Measure, choose and search; write ``search.json`` and ``summary.md``."""
        from domainfit.core.models import load_bi_encoder

        config, dataset, workspace, started = self.config, self.dataset, self.workspace, self._started
        assert self.data is not None
        mined = _examples(workspace, dataset, config.train, config.text)
        if not mined.examples:
            raise InputError(self.data / "qrels", 0, config.train.train_split, "no training examples")
        seq = _seq_length(load_bi_encoder(config.train.base_model), mined, config)  # its own window, not [train]'s
        train = config.train.model_copy(update={"max_seq_length": seq.value})
        clock = time.perf_counter()
        pilots: list[Any] = []  # the pilots of this search (their measured step and evaluation times make the plan)
        winner, settings, pool, search, selection = _search(dataset, workspace, config, train, mined, pilots)
        result = RecipeResult(
            settings=[s.to_json() for s in [seq, *settings]],
            selection=selection,
            pool=pool,
            search=search,
            winner=winner,
            train_overrides=_overrides(winner, seq, bool(selection.get("searched"))),
            examples=mined.counts(),
            seconds={"search": round(time.perf_counter() - clock, 1), "total": 0.0},
            output_dir=str(self.folder),
        )
        final = trained_config(config.train, result.train_overrides)
        n_examples = len(mined.with_share(final.synthetic_share, final.seed))
        n_dev = len(dataset.qrels.get(final.eval_split, {}))
        result.plan = _plan(final, n_examples, n_dev, pool, pilots)
        result.seconds["total"] = round(time.perf_counter() - started, 1)
        atomic_write_json(out / "search.json", result.to_json())
        atomic_write_text(out / "summary.md", _summary(result))
        return result

    def load(self, folder: Path) -> RecipeResult:
        """Read ``search.json`` back (another format version is stale)."""
        return read_result(folder / "search.json", RecipeResult.from_json)


def run_recipe(
    data: Path, workspace: Workspace, config: Config, *, force: bool = False, max_line_bytes: int = MAX_LINE_BYTES
) -> RecipeResult:
    """Read settings from the data and choose the training recipe on dev; write ``<workspace>/recipe/``.

    Inputs: the BEIR folder, the workspace, the root config, ``force`` to
    search again when nothing changed and the largest JSONL record (see `RecipeStage`).
    """
    return run_stage(RecipeStage(workspace, data, config, max_line_bytes=max_line_bytes), force=force).result
