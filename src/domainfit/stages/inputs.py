"""What a stage declares it reads, and how each input is fingerprinted.

A stage's output depends on its declared inputs and nothing else: the data
files it reads, the config sections it uses, the models it loads and the
artifacts of earlier stages. Each input turns into a JSON value (a hash, a
config dump, a plain value); together they are the ``inputs`` of the stage's
manifest, and a stage whose inputs did not change since its last run is up
to date (DVC's dependencies and parameters are the model). ``kind`` says which
sort of input it is, so a test can change each declared input of each stage in
turn.

Example::

    {
        "data_sha256": DataFiles(root),
        "config": Section(config),
        "model_sha256": Model("sentence-transformers/all-MiniLM-L6-v2"),
        "synthetic_sha256": Upstream("synth", workspace.stage_dir("synth") / "queries.jsonl"),
        "domainfit_version": Value(__version__),
    }
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from domainfit.core.files import sha256_file

#: The sorts of input a stage can declare.
Kind = Literal["data", "config", "model", "upstream", "value"]


class Input(ABC):
    """One declared input of a stage: its kind, and a fingerprint that changes whenever it does."""

    KIND: ClassVar[Kind]

    @property
    def kind(self) -> Kind:
        """Which sort of input this is (data, config, model, upstream artifact or plain value)."""
        return self.KIND

    @abstractmethod
    def fingerprint(self) -> Any:
        """Return the JSON value recorded in the manifest (equal values: the input did not change)."""


def files_fingerprint(files: list[Path]) -> str:
    """Hash the names and contents of the files of ``files`` that exist, in order."""
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def beir_files(root: Path) -> list[Path]:
    """Return the files of a BEIR folder a stage reads: the corpus, the queries and every qrels split."""
    return [root / "corpus.jsonl", root / "queries.jsonl", *sorted((root / "qrels").glob("*.tsv"))]


def data_fingerprint(root: Path) -> str:
    """Hash the files of a BEIR folder (corpus, queries, every qrels split)."""
    return files_fingerprint(beir_files(root))


@dataclass(frozen=True)
class DataFiles(Input):
    """The files of the BEIR folder (or any list of user files): their names and contents."""

    KIND: ClassVar[Kind] = "data"
    root: Path
    files: tuple[Path, ...] | None = None  # None: the BEIR folder's files (`beir_files`)

    def fingerprint(self) -> str:
        """Return the SHA-256 over the files' names and contents."""
        return files_fingerprint(list(self.files) if self.files is not None else beir_files(self.root))


@dataclass(frozen=True)
class UserFile(Input):
    """One file the user named (a click log): its SHA-256, or None when no file is configured."""

    KIND: ClassVar[Kind] = "data"
    path: Path | None

    def fingerprint(self) -> str | None:
        """Return the file's SHA-256 (None when there is no file)."""
        return sha256_file(self.path) if self.path is not None else None


@dataclass(frozen=True)
class Section(Input):
    """A config section (or part of one): its resolved values."""

    KIND: ClassVar[Kind] = "config"
    settings: BaseModel | None
    mode: Literal["python", "json"] = "python"
    exclude: frozenset[str] = field(default_factory=frozenset)

    def fingerprint(self) -> dict[str, Any] | None:
        """Return the section's values (None for an absent section)."""
        if self.settings is None:
            return None
        return self.settings.model_dump(mode=self.mode, exclude=set(self.exclude) or None)


@dataclass(frozen=True)
class Text(Input):
    """The ``[text]`` settings: every setting with the id of the normalisation they apply."""

    KIND: ClassVar[Kind] = "config"
    settings: Any  # a TextConfig
    only_normalization: bool = False  # True: the normalisation id alone (stages that do not slice by language)

    def fingerprint(self) -> Any:
        """Return the settings' fingerprint, or only their normalisation id."""
        return self.settings.normalization() if self.only_normalization else self.settings.fingerprint()


@dataclass(frozen=True)
class Model(Input):
    """A model a stage loads (a name resolved offline first, or a folder): the fingerprint of its files."""

    KIND: ClassVar[Kind] = "model"
    name: str | None
    digits: int | None = None  # keep only the first digits of the hex fingerprint

    def fingerprint(self) -> str | None:
        """Return the model folder's content fingerprint (None for no model)."""
        if self.name is None:
            return None
        from domainfit.core.models import folder_fingerprint, resolve_model

        found = folder_fingerprint(resolve_model(self.name).path)
        return found[: self.digits] if self.digits else found


@dataclass(frozen=True)
class Models(Input):
    """Several models a stage loads: the fingerprint of each, by name."""

    KIND: ClassVar[Kind] = "model"
    names: tuple[str, ...]

    def fingerprint(self) -> dict[str, str | None]:
        """Return ``{name: fingerprint}`` (see `Model`)."""
        return {name: Model(name).fingerprint() for name in self.names}


@dataclass(frozen=True)
class Upstream(Input):
    """An artifact of an earlier stage (a file or a folder in the workspace): its content hash, None when absent."""

    KIND: ClassVar[Kind] = "upstream"
    stage: str
    path: Path

    def fingerprint(self) -> str | None:
        """Return the SHA-256 of the file, the fingerprint of the folder, or None when it does not exist."""
        if self.path.is_file():
            return sha256_file(self.path)
        if self.path.is_dir():
            files = sorted(p for p in self.path.rglob("*") if p.is_file())
            digest = hashlib.sha256()
            for file in files:
                digest.update(str(file.relative_to(self.path)).encode())
                digest.update(sha256_file(file).encode())
            return digest.hexdigest()
        return None


@dataclass(frozen=True)
class Value(Input):
    """A plain value the output depends on (a path, a version, a count), standing for an input of kind ``of``."""

    KIND: ClassVar[Kind] = "value"
    value: Any
    of: Kind = "value"  # e.g. "upstream" for a hash computed from an upstream artifact's content

    @property
    def kind(self) -> Kind:
        """The kind of input the value stands for."""
        return self.of

    def fingerprint(self) -> Any:
        """Return the value itself."""
        return self.value


def fingerprint(inputs: dict[str, Input]) -> dict[str, Any]:
    """Return the manifest's ``inputs``: every declared input by name, fingerprinted."""
    return {name: item.fingerprint() for name, item in inputs.items()}
