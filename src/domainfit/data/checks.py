r"""Checks every input passes at load time, so that no bad value reaches a writer after the expensive work.

* **Ids** (documents, queries, qrels, click logs) become columns of TREC run
  files, keys of JSON files and lines of JSONL files. An id must be non-empty
  and hold no whitespace of any kind (TREC columns are whitespace-separated),
  no control or invisible format character, no Unicode noncharacter and no
  lone surrogate (UTF-8 cannot encode one). `id_problem` says what is wrong.
* **Text** read from JSON may carry a lone surrogate through a ``\ud800``
  escape; UTF-8 writers cannot encode it. `surrogate_problem` finds one in any
  value (keys and nested values included).
* **The evaluated split** must exist and have at least one judged query (a
  query of queries.jsonl with a document of grade > 0). Stages call
  `check_evaluated_split` right after loading the data, before any model.
* **Split names** become file names (``qrels/<split>.tsv``): `split_name_problem`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.errors import InputError

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.data.beir import BeirDataset
    from domainfit.types import Qrels

#: Largest accepted relevance grade, in absolute value (a 32-bit integer, as trec_eval and ranx store it).
MAX_GRADE = 2**31 - 1

_NAMES = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return", " ": "a space"}
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A JSON escape that may decode to a surrogate (a fast pre-check before scanning a record).
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _describe(char: str) -> str:
    """Name a character for an error message: ``U+00A0 NO-BREAK SPACE``."""
    code = f"U+{ord(char):04X}"
    name = _NAMES.get(char) or unicodedata.name(char, "")
    return f"{name}, {code}" if char in _NAMES else (f"{code} {name}" if name else code)


def _is_noncharacter(code: int) -> bool:
    """Tell whether ``code`` is a Unicode noncharacter (U+FDD0..U+FDEF, the last two code points of each plane)."""
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def id_problem(value: str) -> str | None:
    """Return what makes ``value`` unusable as an id, or None when every writer can carry it.

    Rejected: the empty string, any whitespace (``str.isspace``: spaces, tabs,
    newlines, no-break and ideographic spaces, line and paragraph separators,
    the ASCII separators U+001C..U+001F), control characters, invisible format
    characters (zero-width space, byte-order mark, bidirectional controls),
    noncharacters and lone surrogates.
    """
    if not value:
        return "is empty"
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            what = f"a lone surrogate U+{code:04X} (invalid Unicode; UTF-8 cannot encode it)"
        elif char.isspace():
            what = f"whitespace ({_describe(char)})"
        elif unicodedata.category(char) == "Cc":
            what = f"a control character ({_describe(char)})"
        elif unicodedata.category(char) == "Cf":
            what = f"an invisible format character ({_describe(char)})"
        elif _is_noncharacter(code):
            what = f"a Unicode noncharacter (U+{code:04X})"
        else:
            continue
        shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return f"contains {what} at character {position}: {shown!r:.60}"
    return None


def check_id(value: str, path: Path | str, line: int, field: str) -> str:
    """Return ``value`` when it is a valid id (see `id_problem`), else raise `InputError` at ``path:line: field``."""
    problem = id_problem(value)
    if problem is not None:
        raise InputError(path, line, field, problem)
    return value


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield ``(location, string)`` for every string in a JSON value, keys included (dotted locations)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where != "-" else str(key)
            yield inner, str(key)
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}.{index}" if where != "-" else str(index))


def surrogate_problem(value: Any) -> tuple[str, str] | None:
    """Return ``(field, message)`` for the first lone surrogate in ``value`` (any nesting), or None."""
    for where, text in _strings(value, "-"):
        found = _SURROGATE.search(text)
        if found is not None:
            field = where.encode("utf-8", "backslashreplace").decode("utf-8")
            code = ord(found.group())
            return field, (
                f"invalid Unicode: lone surrogate U+{code:04X} (a \\u{code:04x} escape without its pair) "
                f"at character {found.start() + 1}"
            )
    return None


def split_name_problem(name: str) -> str | None:
    """Return what makes ``name`` unusable as a split (the file ``qrels/<name>.tsv``), or None."""
    if not name or name in (".", ".."):
        return f"{name!r} is not a split name"
    if "/" in name or "\\" in name or name.endswith(".tsv"):
        return f"{name!r} must be a bare split name such as 'test' (the file qrels/<split>.tsv), not a path"
    problem = id_problem(name)
    return None if problem is None else f"split name {problem}"


def judged_query_ids(qrels: Qrels, queries: Mapping[str, Any]) -> list[str]:
    """Return the queries of ``qrels`` that can be evaluated: in ``queries`` and with a document of grade > 0."""
    return [qid for qid, docs in qrels.items() if qid in queries and any(g > 0 for g in docs.values())]


#: A tuning split with fewer judged queries than this is too small to set a hybrid weight on.
MIN_TUNING_QUERIES = 3


def tuning_qrels(
    dataset: BeirDataset, preferred: str | None, fallback: str = "train", min_queries: int = MIN_TUNING_QUERIES
) -> tuple[Qrels | None, str | None, str | None]:
    """Return the qrels the hybrid weight is tuned on, their split, and a note when they are not ``preferred``'s.

    The preferred split (dev) is used when it has ``min_queries`` judged
    queries. Otherwise the ``fallback`` split's queries (the train queries:
    few-shot tuning) are used when they are more, with a note saying so, so a
    corpus with a few labelled queries and no dev split still gets a tuned
    weight instead of a fixed 0.5. None qrels when no split is judged.
    """
    if not preferred:  # tuning turned off
        return None, None, None
    chosen = dataset.qrels.get(preferred)
    n_chosen = len(judged_query_ids(chosen, dataset.queries)) if chosen else 0
    if n_chosen >= min_queries or fallback == preferred:
        return chosen, preferred, None
    other = dataset.qrels.get(fallback)
    n_other = len(judged_query_ids(other, dataset.queries)) if other else 0
    if n_other <= n_chosen:
        return chosen, preferred, None
    what = f"qrels/{preferred}.tsv has {n_chosen} judged queries" if chosen else f"no qrels/{preferred}.tsv"
    return (
        other,
        fallback,
        (
            f"{what} (< {min_queries}): the hybrid weight is tuned on the {n_other} {fallback} queries "
            "instead (few-shot)"
        ),
    )


def check_evaluated_split(
    dataset: BeirDataset, split: str, path: Path | str | None = None, field: str = "split"
) -> Qrels:
    """Return the qrels of ``split``, raising `InputError` unless it exists and has a judged query.

    Inputs: the loaded dataset, the split a stage evaluates, where to point
    the error (default: the dataset's ``qrels`` folder) and the config key
    that named the split. Call it right after loading the data, before any model.
    """
    folder = Path(path) if path is not None else (dataset.root / "qrels" if dataset.root else Path("qrels"))
    if split not in dataset.qrels:
        available = ", ".join(sorted(dataset.qrels)) or "none"
        raise InputError(folder, 0, field, f"no qrels/{split}.tsv (available: {available})")
    qrels = dataset.qrels[split]
    if not judged_query_ids(qrels, dataset.queries):
        file = folder / f"{split}.tsv" if folder.name == "qrels" else folder
        why = "no judgements" if not qrels else "no judgement with grade > 0 for a query of queries.jsonl"
        raise InputError(file, 0, field, f"split {split!r} has no judged query ({why}): nothing to evaluate")
    return qrels


def check_pipeline_inputs(data: Path | str, config: Config, max_line_bytes: int | None = None) -> BeirDataset:
    """Check every input ``domainfit run`` reads, before its first stage; return the loaded dataset.

    The BEIR folder (every file), the splits the stages evaluate (``bench.split``,
    ``eval.split`` and, when the pipeline compresses, ``compress.split``), the
    general-domain sets of the forgetting checks (``eval.general``,
    ``train.general_pairs``), the training pair file (``train.dataset``) and
    the click log (``synth.clicks.path``). Without this, a bad file read by a
    late stage (``eval`` runs after training) would fail only after hours of work.
    Raises `InputError` (``file:line: field: message``) on the first problem.
    """
    from domainfit.data.beir import load_beir
    from domainfit.data.general_set import general_dataset, general_path
    from domainfit.data.jsonl import MAX_LINE_BYTES
    from domainfit.data.pairs import read_pairs
    from domainfit.synth.clicks import read_click_log

    limit = max_line_bytes if max_line_bytes is not None else config.data.max_line_mib << 20
    root = Path(data).expanduser().resolve()
    dataset = load_beir(root, max_line_bytes=limit or MAX_LINE_BYTES)
    check_evaluated_split(dataset, config.bench.split, root / "qrels", "bench.split")
    check_evaluated_split(dataset, config.eval.split, root / "qrels", "eval.split")
    if config.pipeline.compress:
        check_evaluated_split(dataset, config.compress.split, root / "qrels", "compress.split")
    if config.eval.general and config.eval.general.lower() != "none":
        general_dataset(config.eval.general)
    if config.train.general_pairs and (config.train.general_share > 0 or config.train.regularize != "none"):
        read_pairs(general_path(config.train.general_pairs))
    if config.train.dataset and not Path(config.train.dataset).expanduser().is_dir():  # folders are saved datasets
        read_pairs(config.train.dataset)
    if config.synth.clicks.path is not None:
        read_click_log(Path(config.synth.clicks.path), dataset.corpus, limit)
    return dataset
