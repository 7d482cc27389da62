"""Settings of the recipe search (the ``[recipe]`` section of ``domainfit.toml``).

Example::

    RecipeConfig(learning_rates=[2e-5, 1e-4], synthetic_shares=[0.25], pilot_steps=40)
    # synthetic_shares becomes [0.0, 0.25]: "no synthetic pairs" is always a candidate
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domainfit.train.config import LOSSES

#: Losses a recipe may use: those that read (query, positive, hard negatives) examples.
RECIPE_LOSSES = ("mnrl", "cached-mnrl", "margin-mse")


class RecipeConfig(BaseModel):
    """The recipe grid, the pilot budget and the successive-halving schedule.

    ``synthetic_shares`` and ``negatives`` left at None are read from the data
    (`domainfit.recipe.settings`); given lists are used as they are (0.0 is
    always added to the shares). The first recipe of the grid is the reference:
    the pruner never stops the first trial, so the plain recipe (labelled pairs
    only, the first learning rate, the first loss) runs to the end of its pilot.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    search: bool = Field(True, description="search recipes on dev before the full training run")
    learning_rates: list[float] = Field(
        default_factory=lambda: [2e-5, 5e-5, 1e-4], min_length=1, description="learning rates tried (first: reference)"
    )
    synthetic_shares: list[float] | None = Field(
        None, description="shares of synthetic pairs tried (None: read from the data; 0.0 always included)"
    )
    losses: list[str] = Field(default_factory=lambda: ["mnrl"], min_length=1, description="mnrl, margin-mse ...")
    negatives: list[int] | None = Field(None, description="hard negatives per example tried (None: read from data)")
    pilot_steps: int = Field(40, ge=2, description="optimiser steps of a pilot that is never pruned")
    min_rung_steps: int = Field(10, ge=1, description="steps before the first pruning decision (first rung)")
    reduction_factor: int = Field(3, ge=2, description="a rung keeps about the top 1/reduction_factor of trials")
    max_trials: int = Field(12, ge=1, description="pilots run at most (the grid's first recipes)")
    seed: int = 13
    min_dev_queries: int = Field(30, ge=1, description="below this many dev queries, select on train-query folds")
    folds: int = Field(3, ge=2, description="held-out folds of the train queries when dev is missing or tiny")
    dev_pool_depth: int = Field(20, ge=10, description="dev pool: judged docs + top-k of BM25 and base dense")
    pilot_dev_queries: int = Field(100, ge=1, description="dev queries pilots score on (a seeded sample)")

    @field_validator("learning_rates")
    @classmethod
    def _positive_rates(cls, value: list[float]) -> list[float]:
        """Learning rates must be positive; duplicates are dropped, order kept."""
        if any(v <= 0 for v in value):
            raise ValueError(f"every learning rate must be > 0, got {value}")
        return list(dict.fromkeys(value))

    @field_validator("synthetic_shares")
    @classmethod
    def _shares(cls, value: list[float] | None) -> list[float] | None:
        """Shares lie in [0, 1] (1.0: every synthetic pair, no cap); 0.0 is put first."""
        if value is None:
            return None
        if any(not 0.0 <= v <= 1.0 for v in value):
            raise ValueError(f"every synthetic share must be in [0, 1], got {value}")
        return list(dict.fromkeys([0.0, *sorted(value)]))

    @field_validator("losses")
    @classmethod
    def _known_losses(cls, value: list[str]) -> list[str]:
        """Only losses that read query, positive and hard negatives can be searched."""
        unknown = [v for v in value if v not in RECIPE_LOSSES]
        if unknown:
            known = [name for name in LOSSES if name in RECIPE_LOSSES]
            raise ValueError(f"unknown recipe loss {unknown}; use some of {', '.join(known)}")
        return list(dict.fromkeys(value))

    @field_validator("negatives")
    @classmethod
    def _negatives(cls, value: list[int] | None) -> list[int] | None:
        """Hard-negative counts are between 0 (in-batch negatives only) and 64."""
        if value is None:
            return None
        if not value or any(not 0 <= v <= 64 for v in value):
            raise ValueError(f"negatives must be a non-empty list of counts in [0, 64], got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _schedule(self) -> RecipeConfig:
        """Check that the first rung comes before the end of a pilot."""
        if self.min_rung_steps >= self.pilot_steps:
            raise ValueError(
                f"min_rung_steps ({self.min_rung_steps}) must be below pilot_steps ({self.pilot_steps}): "
                "otherwise no pilot is ever pruned before its end"
            )
        return self
