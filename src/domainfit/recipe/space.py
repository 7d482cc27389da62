"""The recipe grid: which training recipes the search tries, in a fixed order.

A `Recipe` is one point of the grid (learning rate, share of synthetic pairs,
loss, hard negatives, optionally chunked positives); `Recipe.overrides` turns it
into ``{section: {key: value}}`` config overrides, the layout `load_config` takes.

Example::

    space = recipe_space(RecipeConfig(), has_synthetic=True, has_teacher=False, shares=[0.0, 0.1])
    space[0].name  # 'labelled_mnrl_neg1_lr2e-05': labelled pairs only come first
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from domainfit.recipe.config import RecipeConfig

#: Share meaning "every synthetic pair, no cap" (the mine stage's ``synthetic_share = None``).
ALL_SYNTHETIC = 1.0


@dataclass(frozen=True)
class Recipe:
    """One training recipe.

    ``synthetic_share``: 0.0 trains on labelled pairs only, 1.0 on every
    synthetic pair (no cap), a value between caps the synthetic pairs at that
    share of the mix. ``negatives``: hard negatives per example given to the
    loss (0: in-batch negatives only). ``chunk``: True trains on the best chunk
    of long positives, False on whole documents, None leaves ``[chunking]`` as
    configured.
    """

    name: str
    learning_rate: float
    synthetic_share: float
    loss: str
    negatives: int
    chunk: bool | None = None

    def overrides(self) -> dict[str, dict[str, Any]]:
        """Return the ``[train]``/``[mine]`` (and ``[chunking]``) overrides this recipe stands for.

        Output example: ``{"train": {"learning_rate": 2e-05, "loss": "mnrl", "max_negatives": 1},
        "mine": {"synthetic": False}}``. A share of 1.0 gives ``synthetic_share = None``
        (no cap): apply these with ``model_copy``/``model_validate``, since `load_config` skips None values.
        """
        out: dict[str, dict[str, Any]] = {
            "train": {"learning_rate": self.learning_rate, "loss": self.loss, "max_negatives": self.negatives}
        }
        if self.synthetic_share <= 0:
            out["mine"] = {"synthetic": False}
        else:
            share = None if self.synthetic_share >= ALL_SYNTHETIC else self.synthetic_share
            out["mine"] = {"synthetic": True, "synthetic_share": share}
        if self.chunk is not None:
            out["chunking"] = {"method": "auto" if self.chunk else "none"}
        return out

    def to_json(self) -> dict[str, Any]:
        """Return the recipe's fields and overrides as a JSON-ready dict."""
        return {**asdict(self), "overrides": self.overrides()}


def recipe_name(learning_rate: float, share: float, loss: str, negatives: int, chunk: bool | None = None) -> str:
    """Return a short name usable as a folder name, e.g. ``syn0.25_mnrl_neg3_lr5e-05_chunked``."""
    data = "labelled" if share <= 0 else ("synthetic-all" if share >= ALL_SYNTHETIC else f"syn{share:g}")
    tail = "" if chunk is None else ("_chunked" if chunk else "_whole")
    return f"{data}_{loss}_neg{negatives}_lr{learning_rate:g}{tail}"


def _shares(cfg: RecipeConfig, shares: Sequence[float] | None, has_synthetic: bool, has_labelled: bool) -> list[float]:
    """Return the synthetic shares to try: the config's, else the data's, else labelled only."""
    if not has_labelled:
        if not has_synthetic:
            raise ValueError("no training pairs: neither labelled train qrels nor synthetic queries")
        return [ALL_SYNTHETIC]  # without labelled pairs the cap has nothing to cap
    chosen = cfg.synthetic_shares if cfg.synthetic_shares is not None else list(shares or [])
    chosen = list(dict.fromkeys([0.0, *sorted(chosen)]))
    return chosen if has_synthetic else [0.0]


def _losses(cfg: RecipeConfig, has_teacher: bool) -> list[str]:
    """Return the losses to try; margin-mse only with a teacher."""
    losses = [name for name in cfg.losses if has_teacher or name != "margin-mse"]
    if not losses:
        raise ValueError("the recipe losses are only margin-mse, which needs a teacher: add mnrl to recipe.losses")
    return losses


def recipe_space(
    cfg: RecipeConfig,
    *,
    has_synthetic: bool,
    has_teacher: bool,
    has_labelled: bool = True,
    shares: Sequence[float] | None = None,
    negatives: Sequence[int] | None = None,
    try_chunking: bool = False,
) -> list[Recipe]:
    """Return the grid of recipes, in a deterministic order: labelled-only first, then cheaper first.

    Inputs: the config; whether synthetic queries exist (shares > 0 are dropped
    without them), whether a margin-mse teacher exists (margin-mse is dropped
    without one), whether labelled train pairs exist (without them the only
    share is 1.0); the shares and negative counts read from the data
    (`domainfit.recipe.settings`), used where the config leaves them None;
    ``try_chunking`` adds chunked-positive variants.
    Output: recipes ordered by share, chunking, loss, negatives, then learning
    rate in config order, so the first is the plain reference recipe.
    margin-mse reads one negative per example, so its recipes use exactly one.
    Raises ValueError when no recipe is left.
    """
    counts = cfg.negatives if cfg.negatives is not None else sorted(set(negatives or [1]))
    chunks: list[bool | None] = [False, True] if try_chunking else [None]
    seen: set[tuple[Any, ...]] = set()
    out: list[Recipe] = []
    grid = itertools.product(
        _shares(cfg, shares, has_synthetic, has_labelled), chunks, _losses(cfg, has_teacher), counts
    )
    for share, chunk, loss, count in grid:
        n = 1 if loss == "margin-mse" else count
        for rate in cfg.learning_rates:
            key = (share, chunk, loss, n, rate)
            if key not in seen:
                seen.add(key)
                out.append(Recipe(recipe_name(rate, share, loss, n, chunk), rate, share, loss, n, chunk))
    return out
