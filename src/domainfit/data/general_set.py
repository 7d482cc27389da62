"""General-domain data against forgetting: the bundled pair set or the user's own.

The package ships ``domainfit/data/general/pairs.jsonl``: 300 general-knowledge
(query, passage) pairs in fifteen topics, written for domainfit and distributed
under the project's licence (see the README beside it). Wherever a setting
names general-domain data (``train.general_pairs``, ``eval.general``), the
value ``"bundled"`` selects this set; anything else is a path to a pair file
(JSONL/CSV), a saved dataset or, for ``eval``, a BEIR folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from domainfit.core.errors import DomainfitError
from domainfit.core.types import Document, Query
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.pairs import read_pairs
from domainfit.text.config import DEFAULT_TEXT, TextConfig

#: Setting value that selects the packaged general-domain pairs.
BUNDLED = "bundled"


def bundled_pairs_path() -> Path:
    """Return the path of the packaged general-domain pair file.

    Raises `DomainfitError` when the package was installed without it (or zipped).
    """
    resource = files("domainfit.data") / "general" / "pairs.jsonl"
    if not isinstance(resource, Path) or not resource.is_file():
        raise DomainfitError(f"the bundled general-domain pairs are missing ({resource}); reinstall domainfit")
    return resource


def general_path(value: str) -> Path:
    """Resolve a general-data setting: ``"bundled"`` -> the packaged pair file, else the user's path."""
    return bundled_pairs_path() if value == BUNDLED else Path(value).expanduser().resolve()


def general_dataset(value: str, text: TextConfig = DEFAULT_TEXT) -> BeirDataset:
    """Load general-domain data as a BEIR dataset for the forgetting check.

    Input: ``"bundled"``, a BEIR folder, or a JSONL/CSV pair file. A pair file
    becomes one document per distinct passage and one query per pair, judged in
    a ``test`` split (each query's passage is its relevant document). Texts are
    prepared under the ``[text]`` settings ``text``.
    """
    path = general_path(value)
    if path.is_dir():
        return load_beir(path, text=text)
    corpus: dict[str, Document] = {}
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    ids: dict[str, str] = {}
    for n, pair in enumerate(read_pairs(path, text)):
        did = ids.setdefault(pair.positive, f"g{len(ids):05d}")
        corpus.setdefault(did, Document(id=did, text=pair.positive))
        qid = f"gq{n:05d}"
        queries[qid] = Query(id=qid, text=pair.query)
        qrels[qid] = {did: 1}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"test": qrels}, root=path)
