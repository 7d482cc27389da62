"""Build the packaged demo corpus (a BEIR folder) from Python's standard-library docstrings.

Every documented module, class, function, method and property of a fixed list
of standard-library modules (pure Python, plus a few implemented in C such as
``builtins``, ``math`` and ``itertools``) becomes one query/document pair: the
first sentence of its docstring is the query, and the document is the
qualified name (title) plus the signature and the rest of the docstring
(text). Trivial docstrings are dropped; each family (top-level module) is
capped so large packages do not dominate. Queries are split into
train/dev/test by family, so no module is seen in more than one split.

Usage::

    .venv/bin/python scripts/build_demo_corpus.py              # src/domainfit/demo_data
    .venv/bin/python scripts/build_demo_corpus.py --out DIR

The output depends only on the Python version (recorded in build_info.json):
running the script twice gives byte-identical files.

Size: about 2,200 documents with CPython 3.11 (MIN_DOCS..MAX_DOCS is checked).
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import importlib
import inspect
import io
import json
import pkgutil
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from domainfit.core.files import staged_dir  # noqa: E402
from domainfit.core.types import Query  # noqa: E402
from domainfit.data.jsonl import dumps_line  # noqa: E402
from domainfit.data.splits import derive_families, normalise_text, split_queries  # noqa: E402

DEFAULT_OUT = ROOT / "src" / "domainfit" / "demo_data"
SEED = 13
RATIOS = (0.7, 0.1, 0.2)
#: Most documents kept per family (top-level module), so big packages do not dominate.
MAX_PER_FAMILY = 150
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 4, 40
#: Fewest words the rest of a docstring (the document body) must have, besides the
#: qualified name and signature that every document also carries.
MIN_REST_WORDS = 8
#: Accepted corpus sizes.
MIN_DOCS, MAX_DOCS = 2_000, 6_000

#: Top-level pure-Python standard-library modules and packages, sorted. Left out
#: on purpose: modules with import side effects (antigravity, this, site;
#: lib2to3 writes grammar caches), GUI and IDE code (tkinter, turtle,
#: turtledemo, idlelib), tests, codecs (encodings), distutils (shadowed by
#: setuptools), installers (ensurepip, venv), private top-level modules and
#: platform-specific ones (posixpath, ntpath, msilib, winreg, _osx_support ...).
#: Modules missing from the running Python (e.g. PEP 594 ones after 3.12) are skipped.
MODULES: tuple[str, ...] = (
    "abc", "aifc", "argparse", "ast", "asynchat", "asyncio", "asyncore", "base64",
    "bdb", "bisect", "bz2", "calendar", "cgi", "cgitb", "chunk", "cmd", "code", "codecs",
    "codeop", "collections", "colorsys", "compileall", "concurrent", "configparser",
    "contextlib", "copy", "copyreg", "csv", "ctypes", "dataclasses", "datetime",
    "difflib", "dis", "doctest", "email", "enum", "filecmp", "fileinput", "fnmatch",
    "fractions", "ftplib", "functools", "getopt", "getpass", "gettext", "glob",
    "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "http", "imaplib", "imghdr",
    "importlib", "inspect", "io", "ipaddress", "json", "keyword", "linecache", "locale",
    "logging", "lzma", "mailbox", "mailcap", "mimetypes", "modulefinder",
    "multiprocessing", "netrc", "nntplib", "numbers", "opcode", "operator", "optparse",
    "os", "pathlib", "pdb", "pickle", "pickletools", "pipes", "pkgutil", "platform",
    "plistlib", "poplib", "pprint", "profile", "pstats", "py_compile", "pyclbr", "pydoc",
    "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "runpy", "sched",
    "secrets", "selectors", "shelve", "shlex", "shutil", "smtpd", "smtplib", "sndhdr",
    "socket", "socketserver", "sqlite3", "ssl", "stat", "statistics", "string",
    "stringprep", "struct", "subprocess", "sunau", "symtable", "sysconfig", "tabnanny",
    "tarfile", "telnetlib", "tempfile", "textwrap", "threading", "timeit", "token",
    "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "types", "typing",
    "unittest", "urllib", "uu", "uuid", "warnings", "wave", "weakref", "webbrowser",
    "wsgiref", "xdrlib", "xml", "xmlrpc", "zipapp", "zipfile", "zipimport", "zoneinfo",
)  # fmt: skip
#: Standard-library modules implemented in C (their functions, types and methods
#: carry docstrings too). Platform-independent ones only.
C_MODULES: tuple[str, ...] = (
    "_collections_abc", "_pydecimal", "_pyio", "array", "binascii", "builtins", "cmath",
    "gc", "itertools", "marshal", "math",
    "select", "sys", "time", "unicodedata", "zlib",
)  # fmt: skip
#: Sub-module name parts that mark tests, entry points or platform-specific code. Private
#: sub-modules (``concurrent.futures._base``) are kept: they define public classes.
SKIP_PART = re.compile(r"^(tests?|__main__|.*win(32|dows|types)?.*|unix_events|macholib)$")
TRIVIAL_START = re.compile(
    r"^(same as|alias (for|of)|an alias|synonym for|see |deprecated|equivalent to|"
    r"undocumented|this is a|obsolete|internal)",
    re.IGNORECASE,
)
#: A first line that is a signature (``f(x) -> y``, ``Foo(a, b)``) rather than a sentence.
SIGNATURE_LIKE = re.compile(r"^[\w.]+\(.*\)|->|>>>")
SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?](?=\s|$)")
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@dataclass
class Entry:
    """One candidate query/document pair taken from a docstring."""

    title: str
    module: str
    kind: str
    query: str
    text: str

    @property
    def family(self) -> str:
        """Return the top-level module name."""
        return self.module.split(".")[0]


def quiet_import(name: str) -> Any | None:
    """Import module ``name`` silently; return None when it fails."""
    try:
        with (
            warnings.catch_warnings(),
            redirect_stdout(io.StringIO()),
            redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:
        return None


def module_names() -> list[str]:
    """Return the sorted names of every module to read: MODULES plus their public sub-modules."""
    names: set[str] = set()
    for top in MODULES:
        module = quiet_import(top)
        if module is None or not str(getattr(module, "__file__", "")).endswith(".py"):
            continue
        names.add(top)
        if not hasattr(module, "__path__"):
            continue
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{top}.", onerror=lambda _: None):
            parts = info.name.split(".")[1:]
            if any(SKIP_PART.match(part) for part in parts):
                continue
            sub = quiet_import(info.name)
            if sub is not None and str(getattr(sub, "__file__", "")).endswith(".py"):
                names.add(info.name)
    names.update(name for name in C_MODULES if quiet_import(name) is not None)
    return sorted(names)


def own_doc(obj: Any) -> str | None:
    """Return the object's own cleaned docstring (never one inherited from a base class)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)


class Literal:
    """A stand-in default value that renders as the given text in a signature."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


SIMPLE = (type(None), bool, int, float, str, bytes, enum.Enum)
#: Machine-specific paths that must not leak into the corpus through default values.
ENVIRONMENT_PATHS = tuple(
    sorted(
        {
            p
            for p in (
                sys.executable,
                sys.prefix,
                sys.base_prefix,
                sys.exec_prefix,
                str(Path.home()),
                str(Path.cwd()),
            )
            if len(p) > 1
        }
    )
)


def safe_default(value: Any) -> Any:
    """Return a default value whose repr is stable across runs and machines.

    Simple values and tuples of them are kept, except strings that start with a
    path of this machine (``sys.executable``, ``sys.prefix``, the home and
    current folders); (frozen)sets are rendered with sorted members (their own
    order depends on PYTHONHASHSEED); anything else (objects, functions,
    ``os.environ`` ...) becomes ``...``.
    """
    if isinstance(value, str) and value.startswith(ENVIRONMENT_PATHS):
        return Literal("...")  # e.g. platform.architecture(executable=sys.executable)
    if isinstance(value, SIMPLE) or value is inspect.Parameter.empty:
        return value
    if isinstance(value, tuple) and all(isinstance(v, SIMPLE) for v in value):
        return value
    if isinstance(value, set | frozenset) and all(isinstance(v, SIMPLE) for v in value):
        members = ", ".join(sorted(repr(v) for v in value))
        return Literal(f"{type(value).__name__}({{{members}}})" if value else f"{type(value).__name__}()")
    return Literal("...")


def signature_line(name: str, obj: Any) -> str:
    """Return ``name(params)`` for a callable, or "" when no signature is available."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = [p.replace(default=safe_default(p.default)) for p in signature.parameters.values()]
    try:
        text = str(signature.replace(parameters=params))
    except (TypeError, ValueError):
        return ""
    return name + ADDRESS.sub("", text)


def split_first_sentence(doc: str) -> tuple[str, str]:
    """Split a docstring into (first sentence, rest).

    The sentence ends at the first ``.``, ``!`` or ``?`` followed by white space
    inside the first paragraph (not after "e.g", "i.e", "etc", "vs"), else at the
    end of the first paragraph.
    """
    para_end = doc.find("\n\n")
    para_end = len(doc) if para_end < 0 else para_end
    match = SENTENCE_END.search(doc, 0, para_end)
    end = match.end() if match else para_end
    return " ".join(doc[:end].split()), doc[end:].strip()


def make_entry(title: str, module: str, kind: str, obj: Any, short_name: str) -> Entry | None:
    """Turn one documented object into an `Entry`, or None when its docstring is trivial."""
    doc = own_doc(obj)
    if doc is None:
        return None
    doc_signature = ""
    head, sep, tail = doc.partition("\n\n")
    if sep and SIGNATURE_LIKE.search(head) and "\n" not in head.strip():
        doc_signature, doc = head.strip(), tail.strip()  # C docstrings start with "f(x) -> y"
    query, rest = split_first_sentence(doc)
    words = query.split()
    if not MIN_QUERY_WORDS <= len(words) <= MAX_QUERY_WORDS:
        return None
    if TRIVIAL_START.match(query) or SIGNATURE_LIKE.search(query):
        return None
    if len(rest.split()) < MIN_REST_WORDS:
        return None
    signature = "" if kind in ("module", "property") else signature_line(short_name, obj)
    signature = signature or doc_signature
    text = f"{signature}\n{rest}" if signature else rest
    if normalise_text(query) in normalise_text(f"{title}\n{text}"):
        return None
    return Entry(title=title, module=module, kind=kind, query=query, text=text)


def class_members(cls: type) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(kind, name, object)`` for methods and properties defined in ``cls`` itself.

    Methods written in Python or C and properties count; dunder names do not,
    single-underscore (private) ones do when documented.
    """
    for name in sorted(cls.__dict__):
        if name.startswith("__"):
            continue
        value = cls.__dict__[name]
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if (
            (inspect.isfunction(value) and value.__qualname__ == f"{cls.__qualname__}.{name}")
            or inspect.ismethoddescriptor(value)
            or inspect.isbuiltin(value)
        ):
            yield "method", name, value
        elif isinstance(value, property):
            yield "property", name, value


def module_entries(name: str) -> Iterator[Entry]:
    """Yield the entries of one module: the module, then its classes, functions and methods."""
    module = quiet_import(name)
    if module is None:
        return
    entry = make_entry(name, name, "module", module, name)
    if entry:
        yield entry
    for attr in sorted(vars(module)):
        obj = vars(module)[attr]
        if attr.startswith("__") or getattr(obj, "__module__", None) != name:
            continue
        if inspect.isclass(obj) and obj.__qualname__ == attr:
            entry = make_entry(f"{name}.{attr}", name, "class", obj, attr)
            if entry:
                yield entry
            for kind, method_name, method in class_members(obj):
                title = f"{name}.{attr}.{method_name}"
                entry = make_entry(title, name, kind, method, method_name)
                if entry:
                    yield entry
        elif (inspect.isfunction(obj) or inspect.isbuiltin(obj)) and obj.__qualname__ == attr:
            entry = make_entry(f"{name}.{attr}", name, "function", obj, attr)
            if entry:
                yield entry


def collect() -> list[Entry]:
    """Return the deduplicated, per-family-capped entries in a fixed order."""
    seen_queries: set[str] = set()
    seen_texts: set[str] = set()
    entries: list[Entry] = []
    for name in module_names():
        for entry in module_entries(name):
            key = normalise_text(entry.query)
            if key in seen_queries or entry.text in seen_texts:
                continue
            seen_queries.add(key)
            seen_texts.add(entry.text)
            entries.append(entry)
    # cap per family with a stable pseudo-random choice (spread over sub-modules)
    by_family: dict[str, list[int]] = {}
    for n, entry in enumerate(entries):
        by_family.setdefault(entry.family, []).append(n)
    keep: set[int] = set()
    for members in by_family.values():
        ranked = sorted(members, key=lambda n: hashlib.sha256(entries[n].title.encode()).hexdigest())
        keep.update(ranked[:MAX_PER_FAMILY])
    return [entry for n, entry in enumerate(entries) if n in keep]


def write_corpus(out: Path, entries: list[Entry]) -> dict[str, Any]:
    """Split the entries by family, write the BEIR folder to ``out``; return the build info.

    The folder is built in a staged temporary folder that replaces ``out`` only
    when every file was written.
    """
    if not MIN_DOCS <= len(entries) <= MAX_DOCS:
        raise SystemExit(f"{len(entries)} documents, outside {MIN_DOCS}-{MAX_DOCS}: adjust the caps")
    corpus, queries, qrels = [], {}, {}
    for n, entry in enumerate(entries, start=1):
        qid, did = f"q{n:05d}", f"d{n:05d}"
        meta = {"family": entry.family, "module": entry.module, "kind": entry.kind}
        corpus.append({"_id": did, "title": entry.title, "text": entry.text, **meta})
        queries[qid] = Query(id=qid, text=entry.query, metadata=meta)
        qrels[qid] = {did: 1}
    families = derive_families(queries, qrels)
    split_of = split_queries(families, ratios=RATIOS, seed=SEED)

    with staged_dir(out) as tmp:
        tmp.chmod(0o755)
        (tmp / "qrels").mkdir()
        (tmp / "corpus.jsonl").write_text("".join(dumps_line(d) for d in corpus), encoding="utf-8")
        lines = [dumps_line({"_id": q.id, "text": q.text, **q.metadata}) for q in queries.values()]
        (tmp / "queries.jsonl").write_text("".join(lines), encoding="utf-8")
        per_split: dict[str, int] = {}
        for split in ("train", "dev", "test"):
            rows = ["query-id\tcorpus-id\tscore\n"]
            for qid in sorted(q for q, s in split_of.items() if s == split):
                rows.extend(f"{qid}\t{did}\t{rel}\n" for did, rel in sorted(qrels[qid].items()))
            per_split[split] = len(rows) - 1
            (tmp / "qrels" / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
        family_sizes = Counter(families.values())
        info = {
            "description": "Python standard-library docstrings: first sentence -> the rest",
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "seed": SEED,
            "ratios": list(RATIOS),
            "max_per_family": MAX_PER_FAMILY,
            "documents": len(corpus),
            "queries": len(queries),
            "queries_per_split": per_split,
            "families": len(family_sizes),
            "families_per_split": {
                split: len({families[q] for q, s in split_of.items() if s == split})
                for split in ("train", "dev", "test")
            },
            "kinds": dict(sorted(Counter(e.kind for e in entries).items())),
            "largest_families": dict(sorted(family_sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:10]),
        }
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build the corpus and print its statistics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    info = write_corpus(args.out.resolve(), collect())
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
