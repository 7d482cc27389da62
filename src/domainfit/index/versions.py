"""Which model produced each vector column of an index: ``versions.json`` beside the production pointer.

An index holds one vector column per model version (``vec_<version>``); the
pointer names only the version production reads. This record says, for every
version, the model that filled it and how it encoded (dimension, window,
query and document prompts, the ``[text]`` normalisation), so a reader can
encode queries for any version without being told its model. It is written
by whatever embeds a version (the ``index`` stage, ``migrate backfill``) and
read by the search service.

The file is one JSON object, ``{"format": 1, "versions": {version: record}}``,
replaced atomically; a record is only ever added or replaced whole.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from domainfit.core.files import atomic_write_json
from domainfit.index.types import IndexFailure

#: The record's file name in the index folder.
VERSIONS = "versions.json"
#: Version of the file's format.
VERSIONS_FORMAT = 1


@dataclass(frozen=True)
class VersionRecord:
    """One model version of an index: the model that embedded it and its encoding settings.

    ``model`` is a sentence-transformers folder (resolved to an absolute path
    when it is one) or a model name; ``fingerprint`` the encoder's fingerprint
    (model weights and settings); ``text_normalization`` the ``[text]``
    normalisation id texts were prepared under; ``created`` an ISO time.
    """

    version: str
    model: str
    dimension: int
    max_seq_length: int | None = None
    query_prompt_name: str | None = None
    document_prompt_name: str | None = None
    text_normalization: str | None = None
    fingerprint: str = ""
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the record's JSON form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionRecord:
        """Build a record from its JSON form (unknown keys are ignored; KeyError for a missing one)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def read_versions(folder: Path | str) -> dict[str, VersionRecord]:
    """Return the index folder's records by version ({} when the file is absent: an index built before them).

    Raises `IndexFailure` for a file that is there but damaged or of another format.
    """
    path = Path(folder) / VERSIONS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise IndexFailure(f"{path}: cannot read the model versions ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != VERSIONS_FORMAT:
        raise IndexFailure(
            f"{path}: format {data.get('format') if isinstance(data, dict) else None!r}, expected {VERSIONS_FORMAT}"
        )
    try:
        return {name: VersionRecord.from_json(record) for name, record in dict(data.get("versions") or {}).items()}
    except (TypeError, KeyError) as exc:
        raise IndexFailure(f"{path}: a model version record is damaged ({exc})") from None


def record_version(folder: Path | str, record: VersionRecord) -> Path:
    """Add (or replace) ``record`` in the index folder's ``versions.json``, atomically; return the file's path."""
    records = read_versions(folder)
    records[record.version] = record
    path = Path(folder) / VERSIONS
    atomic_write_json(
        path, {"format": VERSIONS_FORMAT, "versions": {name: r.to_json() for name, r in sorted(records.items())}}
    )
    return path


def version_models(folder: Path | str) -> dict[str, str]:
    """Return ``{version: model}`` for every recorded version of the index folder."""
    return {name: record.model for name, record in read_versions(folder).items()}
