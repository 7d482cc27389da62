"""Which level of effort to take: each level's estimated time and expected lift, and the cheapest that suffices.

Time is measured on this machine (`domainfit.budget.levels`); the expected lift
before anything is trained is a **prior**, said so wherever it is shown:

- full fine-tuning's lift is ``expected_full_lift`` (``[decide]``, default 0.05
  NDCG@10), or the lift eval measured when the workspace has one;
- the other levels get a share of it, measured with one epoch of MiniLM on the
  same pairs on two corpora (`bench/bench_levels.py`: the demo, and a
  long-document corpus): ``top-layers`` (top 2 of 6) 0.4 (0.40 and 0.44),
  the query-side adapter 0.3 (0.21 and 0.32); ``prompts`` 0.4 (the rough
  quality steps of the levels of effort), 0 for a model never trained
  with instructions (one whose folder defines no prompts, like all-MiniLM-L6-v2);
  a static model loses about a fifth of the
  base score (distilled static models trail their teacher) and gains half a
  fine-tune's lift back by training.

Once a level has run, `measured_lifts` reads the lift eval measured for it
and that replaces the prior ("measured" in the output).
The rule (`recommend_level`): among the levels whose expected lift reaches the
lift needed, the one with the least estimated time (training plus re-indexing);
when none does, none is recommended and the largest expected lift is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domainfit.budget.levels import LevelTimes

#: Share of full fine-tuning's lift each level is expected to reach (a prior).
PRIOR_SHARE = {"prompts": 0.4, "adapter": 0.3, "static": 0.5, "top-layers": 0.4, "full": 1.0}
#: A static model's expected loss before training, as a share of the base model's score (a prior).
STATIC_LOSS_SHARE = 0.2
#: The level numbers shown next to the names.
NUMBER = {"prompts": "1", "adapter": "1q", "static": "4", "top-layers": "2", "full": "3"}


@dataclass
class LevelEstimate:
    """One level's estimated cost on this machine and its expected lift, with where each comes from."""

    level: str
    train_seconds: float
    reindex_seconds: float
    expected_lift: float
    lift_basis: str  # "prior" or "measured"
    documents_reembedded: int
    note: str = ""

    @property
    def total_seconds(self) -> float:
        """Training plus re-indexing."""
        return self.train_seconds + self.reindex_seconds

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form kept in the decision (with the total)."""
        return {**asdict(self), "number": NUMBER.get(self.level, "?"), "total_seconds": self.total_seconds}


def expected_lifts(
    full_lift: float, base_score: float, instruction_trained: bool, measured: dict[str, float] | None = None
) -> dict[str, tuple[float, str]]:
    """Return ``{level: (expected lift, "prior" | "measured")}`` (see the module docstring for the priors)."""
    out: dict[str, tuple[float, str]] = {}
    for level, share in PRIOR_SHARE.items():
        lift = share * full_lift
        if level == "prompts" and not instruction_trained:
            lift = 0.0
        if level == "static":
            lift = share * full_lift - STATIC_LOSS_SHARE * base_score
        out[level] = (lift, "prior")
    for level, lift in (measured or {}).items():
        if level in out:
            out[level] = (lift, "measured")
    return out


def estimate_levels(
    times: LevelTimes,
    *,
    n_pairs: int,
    n_docs: int,
    steps: int,
    lifts: dict[str, tuple[float, str]],
    dev_docs: int,
    dev_queries: int,
    prompt_candidates: int,
    negatives: int = 1,
    top_layer_trials: int = 1,
    distill: bool = True,
) -> list[LevelEstimate]:
    """Turn the measured times into each level's training and re-indexing seconds (cheapest first by level order).

    Inputs: the probe's `LevelTimes`, the training pairs, corpus documents, trainer
    steps, the expected lifts, the dev pool and queries, the prompt candidates, hard
    negatives per pair, how many N the top-layers level tries, whether the static
    model is distilled. Output: one `LevelEstimate` per level.
    """
    reindex = n_docs * times.per_document
    tried = f", {top_layer_trials} N tried on dev" if top_layer_trials > 1 else ""
    texts = n_pairs * (2 + negatives)
    distill_seconds = times.vocab_size * times.per_vocab_token if distill else 0.0
    rows = [
        LevelEstimate(
            "prompts", prompt_candidates * (dev_docs * times.per_document + dev_queries * times.per_query),
            0.0, *lifts["prompts"], 0, "no re-index when the chosen document prompt is empty",
        ),
        LevelEstimate(
            "adapter", texts * times.per_document, 0.0, *lifts["adapter"], 0, "queries only: no stored vector changes"
        ),
        LevelEstimate(
            "static", distill_seconds + steps * times.static_step, n_docs * times.per_static_document,
            *lifts["static"], n_docs, "encodes far faster: re-index and serving cost drop too",
        ),
        LevelEstimate(
            "top-layers", top_layer_trials * steps * times.top_step, reindex, *lifts["top-layers"], n_docs,
            f"top {times.top_layers} layers trained{tried}",
        ),
        LevelEstimate("full", steps * times.full_step, reindex, *lifts["full"], n_docs, "every weight trained"),
    ]  # fmt: skip
    return rows


def recommend_level(estimates: Sequence[LevelEstimate], needed_lift: float) -> tuple[LevelEstimate | None, str]:
    """Return the cheapest level whose expected lift reaches ``needed_lift``, and the reason in one line.

    Cheapest is the least estimated time (training plus re-indexing); equal times
    go to the earlier level in ``estimates``. None when no level is expected to
    reach it (the reason then names the largest expected lift).
    """
    enough = [e for e in estimates if e.expected_lift >= needed_lift]
    if not enough:
        best = max(estimates, key=lambda e: e.expected_lift, default=None)
        if best is None:
            return None, "no level was estimated"
        return None, (
            f"no level is expected to reach the lift needed ({needed_lift:+.4f}); the largest expected is "
            f"{best.level} ({best.expected_lift:+.4f}, {best.lift_basis})"
        )
    chosen = min(enough, key=lambda e: e.total_seconds)
    return chosen, (
        f"cheapest level expected to reach the lift needed ({needed_lift:+.4f}): {chosen.level} "
        f"(level {NUMBER.get(chosen.level, '?')}), about {chosen.total_seconds / 60:.1f} min, expected lift "
        f"{chosen.expected_lift:+.4f} ({chosen.lift_basis})"
    )


def needed_lift(bench_scores: dict[str, float], target: float | None, min_lift: float) -> tuple[float, str]:
    """Return the lift a level must bring to the dense model, and why: the gap to ``target``, else ``min_lift``."""
    dense = max((v for k, v in bench_scores.items() if k.startswith("dense")), default=None)
    if target is not None and dense is not None:
        return target - dense, f"the gap from dense ({dense:.4f}) to the target {target:.4f}"
    return min_lift, f"the smallest lift worth shipping ({min_lift})"


def level_advice(estimates: Sequence[LevelEstimate], needed: float, why: str, basis: str) -> dict[str, Any]:
    """Return the decision's ``levels`` record: every estimate, the lift needed and why, the recommendation, bases."""
    chosen, reason = recommend_level(estimates, needed)
    return {
        "needed_lift": needed,
        "needed_because": why,
        "recommended": chosen.level if chosen else None,
        "reason": reason,
        "estimates": [e.to_json() for e in estimates],
        "time_basis": basis,
        "lift_basis": (
            "prior: shares of full fine-tuning's expected lift (decide.expected_full_lift), "
            "replaced by eval's measured lift for every level that ran on this data"
        ),
    }
