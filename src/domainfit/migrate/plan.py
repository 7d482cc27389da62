"""What a migration to a new model costs before anything is embedded: the plan.

Inputs, all plain: the index's rows for the new version (`DocState` by id:
content hash, whether the new version's vector is there), the corpus as
`IndexDocument` rows, both versions' facts (`VersionFacts`), the new model's
measured encoding rate on this machine and the ``[cost]`` settings. Output: a
`MigrationPlan` saying

* what must be embedded: documents lacking the new version's vector, or whose
  content changed since the index was written (`domainfit.index.embed.plan_sync`,
  the very plan ``backfill`` then carries out), and what is already done;
* how long that takes at the measured rate, what the new vectors weigh and what
  they cost, from the cost model (`domainfit.compress.cost.baseline_cost`: the
  index stores float32 vectors at full dimension);
* whether a query-side bridge can serve the new model's queries against the old
  vectors meanwhile (`bridge_feasibility`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.compress.config import CostConfig
from domainfit.compress.cost import baseline_cost
from domainfit.index.embed import plan_sync
from domainfit.index.types import DocState, IndexDocument

#: Fewest paired texts a bridge is fitted on (a training and a held-out share must both be non-trivial).
MIN_BRIDGE_PAIRS = 10


@dataclass(frozen=True)
class VersionFacts:
    """One model version as the plan sees it: its name, model, vector width and served mode."""

    version: str
    model: str
    dimension: int
    mode: str = "dense"


@dataclass(frozen=True)
class BridgeFeasibility:
    """Whether a query-side bridge is possible, which map kinds apply, on how many paired texts, and why."""

    possible: bool
    kinds: tuple[str, ...]
    paired_texts: int
    reason: str


@dataclass
class MigrationPlan:
    """What migrating the index from ``old`` to ``new`` involves (see the module docstring)."""

    old: VersionFacts
    new: VersionFacts
    documents: int
    to_write: int
    to_delete: int
    to_embed: int
    already_embedded: int
    docs_per_second: float
    throughput_source: str
    estimated_seconds: float
    new_vector_bytes: int
    reembed_usd: float
    storage_usd_per_year: float
    bridge: BridgeFeasibility
    notes: list[str] = field(default_factory=list)
    in_cache: int = 0  # documents to embed whose new vectors the embedding cache holds (read, not encoded)

    def to_json(self) -> dict[str, Any]:
        """Return the plan as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MigrationPlan:
        """Read a plan back from `to_json` (KeyError or TypeError when it does not fit)."""
        bridge = dict(data["bridge"])
        return cls(
            **{
                **{k: v for k, v in data.items() if k in cls.__dataclass_fields__},
                "old": VersionFacts(**data["old"]),
                "new": VersionFacts(**data["new"]),
                "bridge": BridgeFeasibility(**{**bridge, "kinds": tuple(bridge["kinds"])}),
            }
        )


def bridge_feasibility(old: VersionFacts, new: VersionFacts, paired_texts: int) -> BridgeFeasibility:
    """Say whether new-model query vectors can be mapped into the old version's space, and how.

    Inputs: both versions and the number of texts both models can embed to fit
    a map on (a corpus sample plus training queries). Orthogonal Procrustes
    needs no equal widths (both sides are zero-padded to the wider one); the
    affine map fits any ``d_new x d_old``; a BM25-only production has no
    vectors to map into.
    """
    if old.mode == "bm25":
        return BridgeFeasibility(False, (), paired_texts, "production serves BM25 only: there are no vectors to bridge")
    if paired_texts < MIN_BRIDGE_PAIRS:
        return BridgeFeasibility(
            False, (), paired_texts, f"only {paired_texts} texts to fit a map on (at least {MIN_BRIDGE_PAIRS})"
        )
    if old.dimension == new.dimension:
        width = f"same width ({new.dimension})"
    else:
        width = f"{new.dimension} -> {old.dimension} dimensions (Procrustes zero-pads the narrower side)"
    few = (
        f"; fewer texts than dimensions ({paired_texts}): the affine map leans on its ridge"
        if (paired_texts < new.dimension)
        else ""
    )
    return BridgeFeasibility(True, ("procrustes", "affine"), paired_texts, f"{width}, {paired_texts} paired texts{few}")


def plan_migration(
    states: Mapping[str, DocState],
    docs: Sequence[IndexDocument],
    old: VersionFacts,
    new: VersionFacts,
    *,
    docs_per_second: float,
    throughput_source: str,
    cost: CostConfig,
    paired_texts: int,
    in_cache: Callable[[list[IndexDocument]], int] | None = None,
) -> MigrationPlan:
    """Return the `MigrationPlan` of bringing the new version's vectors in step with ``docs``.

    ``states`` are the index's rows with the new version's vector flags;
    ``docs_per_second`` the new model's measured rate on this machine;
    ``in_cache`` counts the documents to embed whose new vectors the embedding
    cache already holds (eval encoded the corpus with the new model): those are
    read, not encoded, so the time and the one-off cost leave them out.
    """
    if docs_per_second <= 0:
        raise ValueError(f"docs_per_second must be positive, got {docs_per_second}")
    sync = plan_sync(dict(states), docs)
    cached = in_cache(list(sync.embed)) if in_cache is not None and sync.embed else 0
    embed = baseline_cost(len(sync.embed) - cached, cost, new.dimension, docs_per_second)
    stored = baseline_cost(len(docs), cost, new.dimension, docs_per_second)
    notes = []
    if sync.write:
        notes.append(f"{len(sync.write)} documents are new or changed since the index was written")
    if sync.delete:
        notes.append(f"{len(sync.delete)} indexed documents left the corpus and will be deleted")
    if cached:
        notes.append(
            f"{cached} of the {len(sync.embed)} documents to embed are in the embedding cache: read, not encoded"
        )
    if old.version == new.version:
        notes.append("the new model gives the version production already serves: nothing to migrate")
    return MigrationPlan(
        old=old,
        new=new,
        documents=len(docs),
        to_write=len(sync.write),
        to_delete=len(sync.delete),
        to_embed=len(sync.embed),
        already_embedded=sync.unchanged,
        docs_per_second=docs_per_second,
        throughput_source=throughput_source,
        estimated_seconds=embed.reembed_wall_hours * 3600.0,
        new_vector_bytes=stored.storage_bytes,
        reembed_usd=embed.reembed_usd_once,
        storage_usd_per_year=stored.storage_usd_per_year,
        bridge=bridge_feasibility(old, new, paired_texts),
        notes=notes,
        in_cache=cached,
    )
