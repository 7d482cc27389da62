"""Serve through a query-side bridge while the backfill runs: the new model's queries against the old documents.

``domainfit migrate bridge`` fits a map from the new model's query vectors
into the old model's document space (`domainfit.migrate.bridge.Bridge`) and
writes, in its step folder, the map (``bridge.npz``) and what it measured
(``bridge.json``: the models and versions on each side, the retention of full
re-embedding, the migration gate's go or no-go). ``domainfit serve --bridge``
reads that folder (`read_bridge_facts`), checks it against what the service
is about to serve (`check_bridge`: a gate's no-go, a retention below
``min_bridge_retention``, another old version or model, other widths are all
refusals, exit 2), loads the new model and wraps both in a `ServedBridge`.

A search of the bridge's old version (the default while production serves it)
then embeds its query with the new model, maps it with `Bridge.apply` and
searches the old vector column; BM25 is untouched, so hybrid search fuses the
bridged dense side with the same BM25 side. Any other version, in particular
the new one once it is promoted and its own vectors are searched, is never
bridged (`ServedBridge.applies`).

Input: the step folder (plain files; this module knows nothing of the
workspace). Output: `BridgeFacts` (read without loading a model) and
`ServedBridge` (the facts with the new model's encoder).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.errors import InputError, UsageError
from domainfit.migrate.bridge import Bridge, load_bridge

if TYPE_CHECKING:
    from domainfit.index.versions import VersionRecord
    from domainfit.serve.encoder import Encoder

#: The map and its facts, as ``migrate bridge`` names them in its folder.
BRIDGE_MAP = "bridge.npz"
BRIDGE_FACTS = "bridge.json"


@dataclass(frozen=True)
class BridgeFacts:
    """What ``migrate bridge`` recorded: the map, both sides' versions and models, its retention and the gate.

    ``new_model``, ``new_max_seq_length`` and ``new_query_prompt_name`` are how
    the new model encodes queries (its record as the index would keep it);
    ``retention`` is bridged over full re-embedding on ``metric``; ``go`` and
    ``reasons`` are the migration gate's decision on the map.
    """

    path: Path
    bridge: Bridge
    old_version: str
    old_model: str
    new_version: str
    new_model: str
    new_max_seq_length: int | None
    new_query_prompt_name: str | None
    retention: float
    metric: str
    go: bool
    reasons: tuple[str, ...]

    @property
    def dims(self) -> tuple[int, int]:
        """Return ``(new model's width, old vectors' width)``."""
        return self.bridge.dims


def _facts_json(path: Path) -> dict[str, Any]:
    """Read ``bridge.json`` (`InputError` when it is missing or not a JSON object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, 0, "-", "missing beside the bridge map: re-run `domainfit migrate bridge`") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, 0, "-", f"not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, 0, "-", "expected a JSON object")
    return data


def _field(data: Mapping[str, Any], path: Path, name: str, kind: type | tuple[type, ...]) -> Any:
    """Return ``data[name]`` (dotted for nested keys) when of ``kind``; `InputError` naming the field otherwise."""
    value: Any = data
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    number_wanted = kind in (int, float, (int, float))
    if not isinstance(value, kind) or (number_wanted and isinstance(value, bool)):
        hint = " (written by an older domainfit: re-run `domainfit migrate bridge --force`)"
        raise InputError(path, 0, name, f"missing or of the wrong type{hint}")
    return value


def read_bridge_facts(folder: Path | str) -> BridgeFacts:
    """Read the map and the facts ``migrate bridge`` wrote into ``folder``.

    Raises `UsageError` when there is no map (``migrate bridge`` has not run),
    `InputError` (file: field: problem) for a map or facts file that is damaged
    or lacks a field. Loads no model.
    """
    home = Path(folder)
    path = home / BRIDGE_MAP
    if not path.is_file():
        raise UsageError(f"no bridge map at {path}: run `domainfit migrate bridge` before `serve --bridge`")
    bridge = load_bridge(path)
    facts_path = home / BRIDGE_FACTS
    data = _facts_json(facts_path)
    record = _field(data, facts_path, "new_record", dict)
    window = record.get("max_seq_length")
    prompt = record.get("query_prompt_name")
    return BridgeFacts(
        path=path,
        bridge=bridge,
        old_version=_field(data, facts_path, "old_version", str),
        old_model=_field(data, facts_path, "old_model", str),
        new_version=_field(data, facts_path, "new_version", str),
        new_model=_field(record, facts_path, "model", str),
        new_max_seq_length=window if isinstance(window, int) and not isinstance(window, bool) else None,
        new_query_prompt_name=prompt if isinstance(prompt, str) else None,
        retention=float(_field(data, facts_path, "retention.retention", (int, float))),
        metric=_field(data, facts_path, "retention.metric", str),
        go=_field(data, facts_path, "gate.go", bool),
        reasons=tuple(str(r) for r in (data.get("gate") or {}).get("reasons") or ()),
    )


def check_bridge(
    facts: BridgeFacts,
    *,
    served_version: str,
    served_model: str,
    versions: Mapping[str, int],
    records: Mapping[str, VersionRecord],
    min_retention: float,
) -> None:
    """Refuse (`UsageError`, one line) a bridge that must not be served over what production serves.

    Inputs: the facts; production's version and the model its vectors were
    embedded with (the index's record, else the pointer's); the index's
    versions (name → width) and model records; ``[migrate] min_bridge_retention``.
    Refused: a map the migration gate refused, a retention below the minimum
    (the setting may have been raised since), a production version that is
    the new one already or not the map's old one, another old model, an old
    column of another width, and a new version the index records with another
    model or width than the map was fitted on.
    """
    where = f"the bridge {facts.path}"
    if not facts.go:
        why = "; ".join(facts.reasons) or "no-go"
        raise UsageError(f"{where} was refused by the migration gate ({why}); it is not served")
    if not facts.retention >= min_retention:
        raise UsageError(
            f"{where} retains {facts.retention:.3f} of full re-embedding {facts.metric}, "
            f"below min_bridge_retention {min_retention:.3f}; it is not served"
        )
    if served_version == facts.new_version:
        raise UsageError(f"production already serves the bridge's new version {facts.new_version}: no bridge needed")
    if served_version != facts.old_version:
        raise UsageError(
            f"{where} maps into version {facts.old_version}'s vectors, but production serves {served_version}"
        )
    if served_model != facts.old_model:
        raise UsageError(
            f"{where} was fitted on old model {facts.old_model}, but version {served_version} "
            f"was embedded with {served_model}"
        )
    new_width, old_width = facts.dims
    if versions.get(served_version) != old_width:
        raise UsageError(
            f"{where} maps into {old_width} dimensions, but version {served_version} has {versions.get(served_version)}"
        )
    record = records.get(facts.new_version)
    if record is not None and (record.model != facts.new_model or record.dimension != new_width):
        raise UsageError(
            f"{where} maps {facts.new_model} ({new_width} dimensions), but the index records version "
            f"{facts.new_version} as {record.model} ({record.dimension} dimensions)"
        )
    stored = versions.get(facts.new_version)
    if stored is not None and stored != new_width:
        raise UsageError(f"{where} maps {new_width}-wide queries, but version {facts.new_version} holds {stored}")


class ServedBridge:
    """A checked bridge and the new model's query encoder: what the service maps query vectors with.

    Inputs: the facts (after `check_bridge`), the new model's encoder and the
    name the service shows for the map (default: its path); raises
    `UsageError` when the encoder's width is not the map's input width (the
    model on disk changed since the map was fitted).
    """

    def __init__(self, facts: BridgeFacts, encoder: Encoder, label: str | None = None) -> None:
        if encoder.dimension != facts.dims[0]:
            raise UsageError(
                f"the bridge {facts.path} maps {facts.dims[0]}-wide queries, but {facts.new_model} "
                f"now encodes {encoder.dimension} dimensions"
            )
        self.facts = facts
        self.encoder = encoder
        self.label = label or str(facts.path)

    @property
    def old_version(self) -> str:
        """The version whose vectors bridged queries search."""
        return self.facts.old_version

    def fits(self, version: str, versions: Mapping[str, int]) -> bool:
        """Return True when a snapshot serving ``version`` over ``versions`` should search through this bridge."""
        return version == self.facts.old_version and versions.get(version) == self.facts.dims[1]

    def applies(self, version: str) -> bool:
        """Return True when a search of ``version`` goes through the bridge (only the old version's searches do)."""
        return version == self.facts.old_version

    def query_vector(self, text: str) -> list[float]:
        """Embed ``text`` with the new model (its query prompt) and map it into the old space; unit length."""
        vector = self.encoder.encode([text], prompt_name=self.encoder.query_prompt_name)[0]
        mapped: list[float] = self.facts.bridge.apply(vector).tolist()
        return mapped

    def info(self) -> dict[str, Any]:
        """Return what ``/info`` and each bridged search say: which map, its retention, both sides."""
        f = self.facts
        return {
            "map": self.label,
            "kind": f.bridge.kind,
            "retention": round(f.retention, 6),
            "metric": f.metric,
            "query_model": f.new_model,
            "query_version": f.new_version,
            "document_version": f.old_version,
            "dims": list(f.dims),
        }
