"""The fine-tune decision: is training worth it (before), is the result worth shipping (after).

Before training (from ``bench``): the gap between the best baseline and the
target, the labelled and synthetic pairs available, the corpus size and the
estimated cost (train and re-index time measured by a short probe on this
machine, money at a configurable $/hour) give one recommendation — keep the
baseline, hybrid first, generate data first, or fine-tune — with its reasons.
After training (from ``eval``): ship or do not ship, with the measured lift,
its p-value and the forgetting check. This module is the logic, over plain
records; the ``decide`` stage over a workspace is `domainfit.stages.decide`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from domainfit.evaluation.config import DecideConfig

if TYPE_CHECKING:
    from domainfit.train.config import TrainConfig

KEEP, HYBRID, DATA, FINETUNE = "keep the baseline", "hybrid first", "generate data first", "fine-tune"
SHIP, NO_SHIP = "ship", "do not ship"


def costed_as_trained(cfg: DecideConfig, train: TrainConfig) -> DecideConfig:
    """Return ``cfg`` with ``[train]``'s batch size, epochs and max_steps: the cost of the run as configured."""
    return cfg.model_copy(update={"batch_size": train.batch_size, "epochs": train.epochs, "max_steps": train.max_steps})


@dataclass
class Cost:
    """Estimated cost of fine-tuning and re-indexing on this machine."""

    train_pairs: int
    train_steps: int
    seconds_per_step: float
    train_hours: float
    docs_per_second: float
    reindex_hours: float
    usd: float


@dataclass
class Decision:
    """A recommendation, the reasons behind it and the numbers it used."""

    when: str
    recommendation: str
    reasons: list[str]
    numbers: dict[str, Any] = field(default_factory=dict)
    cost: Cost | None = None
    levels: dict[str, Any] | None = None  # before training: every level's estimate (`domainfit.evaluation.levels`)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to ``decision.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        """Rebuild a decision from ``decision-<when>.json``."""
        cost = data.get("cost")
        return cls(**{**data, "cost": Cost(**cost) if isinstance(cost, dict) else None})


def probe_cost(model_name: str, texts: list[str], n_pairs: int, n_docs: int, cfg: DecideConfig) -> Cost:
    """Measure encoding speed on a few texts and derive train and re-index time and money.

    One training step is taken as three forward passes (forward + backward) over
    the batch's queries and positives; re-indexing encodes every document once.
    """
    from domainfit.core.models import load_bi_encoder

    model = load_bi_encoder(model_name)
    sample = texts[:32] or ["probe"]
    model.encode(sample[:4], show_progress_bar=False)  # warm-up
    start = time.perf_counter()
    model.encode(sample, batch_size=len(sample), show_progress_bar=False)
    per_text = (time.perf_counter() - start) / len(sample)
    steps = cfg.max_steps if cfg.max_steps > 0 else max(1, round(n_pairs * cfg.epochs / cfg.batch_size))
    step_seconds = 3.0 * per_text * 2 * cfg.batch_size
    train_hours = steps * step_seconds / 3600
    reindex_hours = n_docs * per_text / 3600
    return Cost(
        train_pairs=n_pairs,
        train_steps=steps,
        seconds_per_step=round(step_seconds, 3),
        train_hours=round(train_hours, 4),
        docs_per_second=round(1 / per_text, 1),
        reindex_hours=round(reindex_hours, 4),
        usd=round((train_hours + reindex_hours) * cfg.usd_per_hour, 4),
    )


def decide_before(bench: dict[str, Any], n_pairs: int, cost: Cost | None, cfg: DecideConfig) -> Decision:
    """Recommend what to do next from the baselines (``bench/metrics.json``) and the data available."""
    scores = {s["name"]: s["metrics"][cfg.metric] for s in bench["systems"]}
    dense = max((v for k, v in scores.items() if k.startswith("dense")), default=None)
    hybrid = max((v for k, v in scores.items() if k.startswith("hybrid")), default=None)
    best_name = max(scores, key=lambda k: scores[k])
    best = scores[best_name]
    numbers = {"scores": scores, "best": best_name, "target": cfg.target, "train_pairs": n_pairs}
    reasons = [f"best baseline is {best_name} with {cfg.metric} {best:.4f}"]
    single = max((v for k, v in scores.items() if not k.startswith("hybrid")), default=0.0)
    if cfg.target is not None and single >= cfg.target:
        reasons.append(f"a single retriever ({single:.4f}) already meets the target {cfg.target:.4f}")
        return Decision("before", KEEP, reasons, numbers, cost)
    if cfg.target is not None and hybrid is not None and hybrid >= cfg.target:
        reasons.append(f"hybrid ({hybrid:.4f}) meets the target {cfg.target:.4f} with no training")
        return Decision("before", HYBRID, reasons, numbers, cost)
    if cfg.target is not None:
        reasons.append(f"gap to the target {cfg.target:.4f}: {cfg.target - best:.4f}")
    if hybrid is not None and dense is not None and hybrid - dense >= cfg.min_lift:
        reasons.append(f"hybrid beats dense by {hybrid - dense:+.4f} (>= {cfg.min_lift}): deploy it whatever follows")
    if n_pairs < cfg.min_pairs:
        reasons.append(f"only {n_pairs} training pairs (< {cfg.min_pairs}): run `domainfit synth` and `mine`")
        return Decision("before", DATA, reasons, numbers, cost)
    reasons.append(f"{n_pairs} training pairs available (>= {cfg.min_pairs})")
    if cost is not None:
        reasons.append(
            f"estimated cost: {cost.train_hours * 60:.1f} min training + {cost.reindex_hours * 60:.1f} min "
            f"re-indexing on this machine, ${cost.usd:.2f} at ${cfg.usd_per_hour}/hour"
        )
    return Decision("before", FINETUNE, reasons, numbers, cost)


def decide_after(evaluation: dict[str, Any], cfg: DecideConfig) -> Decision:
    """Ship or not, from ``eval/metrics.json``: lift, its significance and the forgetting check."""
    lift = evaluation["lift"]["dense"][cfg.metric]
    comparison = next(c for c in evaluation["significance"]["dense"]["comparisons"] if c["metric"] == cfg.metric)
    p = comparison["p_value"]
    numbers: dict[str, Any] = {"lift": lift, "p_value": p, "n_queries": evaluation["n_queries"]}
    reasons = [f"fine-tuned minus base {cfg.metric}: {lift:+.4f} over {evaluation['n_queries']} queries (p={p:.3g})"]
    ok = True
    if lift < cfg.min_lift:
        reasons.append(f"the lift is below the {cfg.min_lift} worth shipping")
        ok = False
    if p > cfg.alpha:
        reasons.append(f"not significant at alpha={cfg.alpha}")
        ok = False
    forgetting = evaluation.get("forgetting", {})
    if forgetting.get("measured"):
        if "labelled" in forgetting:
            drop = forgetting["labelled"]["drop"]
            numbers["forgetting_drop"] = drop
            if drop > cfg.max_forgetting:
                reasons.append(f"general-set {cfg.metric} dropped {drop:.4f} (> {cfg.max_forgetting})")
                ok = False
        overlap = forgetting["neighbour_overlap"]["mean"]
        numbers["neighbour_overlap"] = overlap
        if overlap < cfg.min_neighbour_overlap:
            reasons.append(f"general-text neighbour overlap {overlap:.3f} (< {cfg.min_neighbour_overlap})")
            ok = False
    else:
        reasons.append("forgetting was not measured (no general set): check before shipping widely")
    if ok:
        reasons.append("the lift is large enough and significant")
    _deploy_reasons(evaluation.get("deployable"), cfg, reasons, numbers)
    return Decision("after", SHIP if ok else NO_SHIP, reasons, numbers)


def _deploy_reasons(
    chosen: dict[str, Any] | None, cfg: DecideConfig, reasons: list[str], numbers: dict[str, Any]
) -> None:
    """Name what to deploy among everything measured, with its test lift over today's system.

    The deployable system was chosen on the selection split (`domainfit.evaluation.deployable`).
    A fine-tuned system is only named when its lift over today's system is at
    least ``min_lift`` and significant; otherwise the best system that needs no
    training is, so "do not ship" still says what to run.
    """
    if not chosen:
        return
    name, versus = chosen["chosen"], chosen.get("versus", {})
    today = (
        cfg.current
        if cfg.current in chosen["test"]
        else max((n for n in chosen["test"] if n == "bm25" or n.endswith(":base")), key=lambda n: chosen["test"][n])
    )
    against = versus.get(today)
    trained = not (name == "bm25" or name.endswith(":base"))
    if trained and (against is None or against["lift"] < cfg.min_lift or against["p_value"] > cfg.alpha):
        base = {k: v for k, v in chosen["selection"].items() if k == "bm25" or k.endswith(":base")}
        if base:
            fallback = max(base, key=lambda k: base[k])
            reasons.append(
                f"{name} was best on {chosen['chosen_on']} but does not beat today's {today} on test by "
                f"{cfg.min_lift} significantly; deploy {fallback} (no training needed)"
            )
            name = fallback
            against = versus.get(today) if fallback != today else None
    lift = chosen["test"][name] - chosen["test"][today] if today in chosen["test"] else None
    numbers["deploy"] = {"system": name, "chosen_on": chosen["chosen_on"], "today": today, "lift": lift}
    if name == today:
        reasons.append(f"deploy: keep {today} (best on {chosen['chosen_on']} among what needs no change)")
        return
    p_text = ""
    if against is not None and name == chosen["chosen"]:
        numbers["deploy"]["p_value"] = against["p_value"]
        p_text = f", p={against['p_value']:.3g}"
    lift_text = f"{lift:+.4f}" if lift is not None else "n/a"
    reasons.append(
        f"deploy: {name} (best on {chosen['chosen_on']}); test {cfg.metric} {chosen['test'][name]:.4f}, "
        f"{lift_text} over today's {today}{p_text}"
    )
    reasons.extend(chosen.get("notes", []))
