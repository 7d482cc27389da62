"""Build two benchmark corpora (BEIR folders) from the docstrings of installed Python packages.

The material is the source code of third-party packages installed next to
domainfit (numpy, scipy, scikit-learn, pandas, matplotlib, sympy, networkx,
torch, transformers and about thirty more; the list is `PACKAGES`). Files are
parsed with ``ast``, never imported, so nothing runs and only docstrings
written in the source are read (not ones added at import time). The standard
library is left out on purpose: the packaged demo corpus is built from it.
Tests, vendored copies, code generators and conversion scripts are skipped.

``longdocs`` (corpus A): one long document per documented class, its "page":
the class docstring, then for every public method or property defined in the
class body, its signature and its docstring *without its summary sentence*.
The queries are those summary sentences: a query asks for the class page that
documents the method it summarises, and the sentence itself is nowhere in that
page (the rest of the method's docstring, its name and signature are). Most
pages are far longer than a 256-token window, and a method can sit anywhere in
its page; a page stops before the method that would take it past `A_MAX_WORDS`
words. At most `A_MAX_QUERIES_PER_DOC` queries per page, chosen at random.

``short`` (corpus B): one short document per documented function, method or
class or module: its signature and its docstring without the summary sentence
(the whole docstring when it has no usable one), cut to `B_MAX_WORDS` words at a
paragraph boundary. A random sample of `B_MAX_QUERIES` summaries are judged:
the query is the summary sentence, the one relevant document the rest of that
docstring. The other documents are distractors.

Rules common to both: docstrings that are trivial (a summary of fewer than 4 or
more than 40 words, "Same as ...", "See ...", "Deprecated ...", templates with
unfilled ``%(name)s`` fields) give no query; documents with the same normalised
text are kept once (inherited or copied docstrings); summaries that occur for
more than one document, or that are near-duplicates (token Jaccard >= 0.8,
`domainfit.data.splits.derive_families`) of one for another document, give no
query (they would have several right answers). Every query carries a
``family``: the package folder of its source file (``sklearn.linear_model``,
``transformers.models.bert``); whole families are assigned to train, dev or
test (about 60/10/30 of the queries), so no package folder is in two splits.

Usage::

    .venv/bin/python scripts/build_bench_corpora.py --out /path/to/corpora [--which longdocs|short|all]

writes ``OUT/longdocs/`` and ``OUT/short/`` (``corpus.jsonl``, ``queries.jsonl``,
``qrels/{train,dev,test}.tsv``, ``build_info.json``) and prints their
statistics, with token lengths counted by the default model's tokenizer when it
is installed. It refuses to write into an existing non-empty folder. The output
depends only on the installed package versions (recorded in build_info.json):
two runs give byte-identical files.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from domainfit.core.types import Document, Query  # noqa: E402
from domainfit.data.beir import BeirDataset, write_beir  # noqa: E402
from domainfit.data.splits import check_leakage, derive_families, normalise_text, split_queries  # noqa: E402
from domainfit.text.normalize import normalize_text  # noqa: E402

SEED = 20_251
RATIOS = (0.6, 0.1, 0.3)
NAMES = ("longdocs", "short")

#: Top-level import packages read, sorted: domainfit's dependencies (and theirs),
#: its development tools, pip and setuptools. Missing ones are skipped (and listed
#: in build_info.json). Left out: the standard library (the demo corpus), domainfit
#: itself, the packaged model, and SWIG-generated wrappers (faiss).
PACKAGES: tuple[str, ...] = (
    "_pytest", "accelerate", "anyio", "bm25s", "charset_normalizer", "click", "contourpy",
    "cycler", "datasets", "dateutil", "dill", "fastparquet", "filelock", "fontTools", "fsspec",
    "functorch", "huggingface_hub", "hypothesis", "idna", "ir_datasets", "jinja2", "joblib",
    "kiwisolver", "llvmlite", "lxml", "markdown_it", "matplotlib", "mpmath", "multiprocess",
    "mypy", "mypyc", "narwhals", "networkx", "numba", "numpy", "packaging", "pandas",
    "pathspec", "PIL", "pip", "pluggy", "psutil", "pyarrow", "pydantic", "pygments",
    "pyparsing", "ranx", "requests", "rich", "safetensors", "scipy", "seaborn",
    "sentence_transformers", "setuptools", "sklearn", "sympy", "tabulate",
    "tokenizers", "torch", "torchgen", "tqdm", "transformers", "typer", "urllib3",
)  # fmt: skip
#: Folder names whose files are not read (tests, vendored copies, examples ...).
SKIP_DIRS = frozenset(
    {
        "__pycache__", "_testing", "_vendor", "_vendored", "benchmarks", "conftest", "examples",
        "externals", "_externals", "test", "testing", "tests", "vendor", "vendored",
    }
)  # fmt: skip
#: File names not read: test modules, code generators and conversion scripts.
SKIP_FILE = re.compile(r"^(test_.*|.*_test|conftest|setup|__main__|modular_.*|convert_.*|_version)\.py$")

MIN_QUERY_WORDS, MAX_QUERY_WORDS = 4, 40
NEAR_DUPLICATE = 0.8
TRIVIAL_START = re.compile(
    r"^(same as|alias (for|of)|an alias|synonym for|see |deprecated|equivalent to|undocumented|"
    r"obsolete|internal|todo|fixme|xxx|this is a|the same as|ditto|placeholder|dummy|"
    r"wrapper (for|around|of)|shortcut (for|to)|docstring|inherited)",
    re.IGNORECASE,
)
#: A summary that is a signature, code or markup rather than a sentence.
NOT_A_SENTENCE = re.compile(
    r"^[\w.]+\(.*\)|->|>>>|^\.\. |^[:@*=#|-]|^\w+ *:\s*$|::$|^\w+ \(.*?\)\s*:|https?://|"
    r"^(args|arguments|parameters|params|returns?|yields?|raises?|examples?|notes?|attributes|warnings?|"
    r"usage|inputs?|outputs?|example usage)\b\s*:",
    re.IGNORECASE,
)
TEMPLATE = re.compile(r"%\(\w+\)[sdr]|\{\{|\{(klass|name|cls|caller|method|func|axis|op)[\w.]*\}")
SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)(?<!\bcf)[.!?](?=\s|$)")

#: Corpus A (long class pages).
A_MIN_METHODS = 3  # documented public methods/properties a page needs
A_MIN_WORDS = 250
A_MAX_WORDS = 2_500  # method sections past this are left out of the page
A_MIN_BODY_WORDS = 5  # words a method keeps besides its summary, for it to give a query
A_MAX_QUERIES_PER_DOC = 4
A_MAX_DOCS_PER_PACKAGE = 250  # pages kept per top-level package (random choice)
A_MIN_QUERIES, A_MIN_TEST, A_MIN_DEV = 1_000, 300, 100

#: Corpus B (short docstrings).
B_MIN_BODY_WORDS = 6
B_MAX_WORDS = 100
B_MAX_DOCS_PER_PACKAGE = 9_000
B_MAX_QUERIES = 8_000
B_MIN_DOCS, B_MIN_TEST, B_MIN_DEV = 40_000, 300, 100


@dataclass
class Doc:
    """A parsed docstring: summary sentence (query candidate) and the rest."""

    summary: str | None  # None: no usable summary (the whole docstring is ``rest``)
    rest: str
    full: str  # the whole cleaned docstring


@dataclass
class Member:
    """A documented function, method, property or class found in the source."""

    qualname: str
    kind: str  # function | method | property | class
    package: str  # top-level package
    family: str  # package folder of the source file
    signature: str
    doc: Doc
    public: bool = True  # False for private names and members of private classes
    methods: list[Member] = field(default_factory=list)  # classes only: public documented members
    extra: list[str] = field(default_factory=list)  # classes only: __init__ / __call__ docstrings


def clean(text: str) -> str:
    """Return ``text`` normalised as domainfit reads it, tabs expanded."""
    return normalize_text(text.expandtabs(4))


def parse_doc(raw: str) -> Doc | None:
    """Split a cleaned docstring into its summary sentence and the rest; None for an empty one."""
    doc = clean(raw)
    if not doc:
        return None
    para_end = doc.find("\n\n")
    para_end = len(doc) if para_end < 0 else para_end
    match = SENTENCE_END.search(doc, 0, para_end)
    end = match.end() if match else para_end
    summary, rest = " ".join(doc[:end].split()), doc[end:].strip()
    if (
        not MIN_QUERY_WORDS <= len(summary.split()) <= MAX_QUERY_WORDS
        or TRIVIAL_START.match(summary)
        or NOT_A_SENTENCE.search(summary)
        or TEMPLATE.search(summary)
    ):
        return Doc(None, doc, doc)
    return Doc(summary, rest, doc)


def signature(node: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> str:
    """Return ``name(params)`` without annotations (and without ``self``/``cls`` for methods)."""
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None:
            arg.annotation = None
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if method and not static:
        if args.posonlyargs:
            args.posonlyargs = args.posonlyargs[1:]
        elif args.args:
            args.args = args.args[1:]
    text = " ".join(ast.unparse(args).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{node.name}({text})"


def decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Return the plain names of a function's decorators (``property``, ``setter``, ``overload`` ...)."""
    names = set()
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def usable(raw: str | None) -> bool:
    """Return whether a docstring is worth reading (not empty, not a template)."""
    return bool(raw and raw.strip()) and not TEMPLATE.search(raw or "")


def module_members(path: Path, module: str, package: str, family: str) -> Iterator[Member]:
    """Yield the documented members of one file: the module, its top-level functions and classes.

    Each class is followed by its own documented methods and properties. Private
    names (one leading underscore) and ``__init__``/``__call__`` are yielded too,
    with ``public=False``: only public members make up the class pages.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    raw = ast.get_docstring(tree)
    doc = parse_doc(raw) if usable(raw) else None
    if doc:
        yield Member(module, "module", package, family, module.rsplit(".", 1)[-1], doc)
    seen: set[str] = set()
    for node in top_level(tree.body):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name in seen:
            continue
        if node.name.startswith("__"):
            continue
        if isinstance(node, ast.ClassDef):
            seen.add(node.name)
            yield from class_member(node, module, package, family)
            continue
        raw = ast.get_docstring(node)
        if not usable(raw) or "overload" in decorator_names(node):
            continue
        doc = parse_doc(raw or "")
        if doc:
            seen.add(node.name)
            public = not node.name.startswith("_")
            sig = signature(node, method=False)
            yield Member(f"{module}.{node.name}", "function", package, family, sig, doc, public=public)


def top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield the statements of a module body, and those inside its top-level ``if`` and ``try`` blocks."""
    for node in body:
        if isinstance(node, ast.If):
            yield from top_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from top_level(node.body + node.orelse + node.finalbody)
        else:
            yield node


def class_member(node: ast.ClassDef, module: str, package: str, family: str) -> Iterator[Member]:
    """Yield a class (its public documented methods attached, for its page), then each documented method."""
    qual = f"{module}.{node.name}"
    raw = ast.get_docstring(node)
    doc = parse_doc(raw) if usable(raw) else None
    public = not node.name.startswith("_")
    cls = Member(qual, "class", package, family, node.name, doc or Doc(None, "", ""), public=public)
    members: list[Member] = []
    seen: set[str] = set()
    for item in top_level(node.body):
        if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) or item.name in seen:
            continue
        raw = ast.get_docstring(item)
        decorators = decorator_names(item)
        if not usable(raw) or decorators & {"overload", "setter", "deleter"}:
            continue
        if item.name.startswith("__") and item.name not in ("__init__", "__call__"):
            continue
        member_doc = parse_doc(raw or "")
        if member_doc is None:
            continue
        seen.add(item.name)
        is_property = bool(decorators & {"property", "cached_property"})
        sig = item.name if is_property else signature(item, method=True)
        kind = "property" if is_property else "method"
        member_public = public and not item.name.startswith("_")
        member = Member(f"{qual}.{item.name}", kind, package, family, sig, member_doc, public=member_public)
        members.append(member)
        if item.name in ("__init__", "__call__"):
            cls.extra.append(f"{member.signature}\n{member_doc.full}")
        elif member_public:
            cls.methods.append(member)
    yield cls
    yield from members


def package_files(site: Path, package: str) -> Iterator[tuple[Path, str, str]]:
    """Yield ``(path, module name, family)`` for a package's readable source files, sorted."""
    top = site / package
    if not (top / "__init__.py").is_file():
        return
    for path in sorted(top.rglob("*.py")):
        rel = path.relative_to(site)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or SKIP_FILE.match(path.name):
            continue
        if any(not part.isidentifier() for part in rel.with_suffix("").parts):
            continue
        folder = ".".join(rel.parts[:-1])
        module = folder if path.name == "__init__.py" else f"{folder}.{path.stem}"
        yield path, module, folder


def site_packages() -> Path:
    """Return the site-packages folder that holds the installed packages (numpy's)."""
    import numpy

    return Path(numpy.__file__).resolve().parents[1]


def harvest(site: Path) -> tuple[list[Member], dict[str, str]]:
    """Return every documented member of `PACKAGES` in traversal order, and the package versions."""
    members: list[Member] = []
    versions: dict[str, str] = {}
    for package in PACKAGES:
        files = list(package_files(site, package))
        if not files:
            continue
        versions[package] = distribution_version(package)
        for path, module, family in files:
            members.extend(module_members(path, module, package, family))
    return members, versions


def distribution_version(package: str) -> str:
    """Return the installed version of the distribution that provides ``package``."""
    for dist in metadata.packages_distributions().get(package, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def cut_words(text: str, limit: int) -> str:
    """Return the leading paragraphs of ``text`` up to ``limit`` words (a first paragraph past it is cut)."""
    out: list[str] = []
    words = 0
    for para in text.split("\n\n"):
        n = len(para.split())
        if words + n > limit:
            if not out:
                out.append(" ".join(para.split()[:limit]))
            break
        out.append(para)
        words += n
    return "\n\n".join(out)


def ambiguous_summaries(summary_of: dict[str, str]) -> set[str]:
    """Return the keys whose summary also belongs to another key (same or near-duplicate text)."""
    by_text: dict[str, list[str]] = defaultdict(list)
    for key, summary in summary_of.items():
        by_text[normalise_text(summary)].append(key)
    bad = {key for keys in by_text.values() if len(keys) > 1 for key in keys}
    pool = {key: Query(id=key, text=text) for key, text in summary_of.items() if key not in bad}
    families = derive_families(pool, {}, overlap_threshold=NEAR_DUPLICATE)
    groups = Counter(families.values())
    bad.update(key for key, fam in families.items() if groups[fam] > 1)
    return bad


def cap_per_package(items: list[Member], limit: int, rng: random.Random) -> list[Member]:
    """Keep at most ``limit`` items per top-level package (a seeded random choice), in their order."""
    by_package: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        by_package[item.package].append(n)
    keep: set[int] = set()
    for package in sorted(by_package):
        indexes = by_package[package]
        keep.update(indexes if len(indexes) <= limit else rng.sample(indexes, limit))
    return [item for n, item in enumerate(items) if n in keep]


@dataclass
class Built:
    """One corpus ready to write: documents, queries with their families, and the split of each query."""

    name: str
    description: str
    corpus: dict[str, Document]
    queries: dict[str, Query]
    relevant: dict[str, str]  # query id -> its one relevant document id
    split_of: dict[str, str] = field(default_factory=dict)


def page_of(cls: Member) -> tuple[str, list[Member]]:
    """Return a class page (docstring, then each member without its summary) and the members in it."""
    parts = [p for p in (cls.doc.full, *cls.extra) if p]
    words = sum(len(p.split()) for p in parts)
    included: list[Member] = []
    for method in cls.methods:
        section = f"{method.signature}\n{method.doc.rest}".strip()
        n = len(section.split())
        if included and words + n > A_MAX_WORDS:
            break
        parts.append(section)
        included.append(method)
        words += n
    return "\n\n".join(parts), included


def build_longdocs(members: list[Member], rng: random.Random) -> Built:
    """Corpus A: class pages; queries are the summary sentences removed from them."""
    pages: list[tuple[Member, str, list[Member]]] = []
    seen: set[str] = set()
    names: set[str] = set()
    for cls in members:
        if cls.kind != "class" or not cls.public:
            continue
        text, included = page_of(cls)
        key = normalise_text(text)
        if len(included) < A_MIN_METHODS or len(text.split()) < A_MIN_WORDS or key in seen or cls.qualname in names:
            continue
        seen.add(key)
        names.add(cls.qualname)
        pages.append((cls, text, included))
    candidates = {
        m.qualname: m.doc.summary
        for _, _, included in pages
        for m in included
        if m.doc.summary and len(m.doc.rest.split()) >= A_MIN_BODY_WORDS
    }
    bad = ambiguous_summaries(candidates)
    chosen: list[tuple[Member, str, list[Member]]] = []
    for cls, text, included in pages:
        key = normalise_text(f"{cls.qualname}\n{text}")
        ok = [m for m in included if m.qualname in candidates and m.qualname not in bad]
        ok = [m for m in ok if normalise_text(m.doc.summary or "") not in key]
        if ok:
            chosen.append((cls, text, ok))
    by_name = {cls.qualname: (cls, text, ok) for cls, text, ok in chosen}
    kept = cap_per_package([cls for cls, _, _ in chosen], A_MAX_DOCS_PER_PACKAGE, rng)
    corpus: dict[str, Document] = {}
    queries: dict[str, Query] = {}
    relevant: dict[str, str] = {}
    for cls in kept:
        _, text, ok = by_name[cls.qualname]
        corpus[cls.qualname] = Document(id=cls.qualname, title=cls.qualname, text=text)
        picked = ok if len(ok) <= A_MAX_QUERIES_PER_DOC else rng.sample(ok, A_MAX_QUERIES_PER_DOC)
        for m in sorted(picked, key=lambda m: m.qualname):
            qid = f"q:{m.qualname}"
            queries[qid] = Query(id=qid, text=m.doc.summary or "", metadata={"family": cls.family})
            relevant[qid] = cls.qualname
    return Built(
        "longdocs",
        "class pages of installed packages (docstring + members without their summaries) <- member summary",
        corpus,
        queries,
        relevant,
    )


def build_short(members: list[Member], rng: random.Random) -> Built:
    """Corpus B: one short document per docstring; a sample of their summary sentences are the queries."""
    docs: list[tuple[Member, str]] = []
    seen: set[str] = set()
    names: set[str] = set()  # a module and a function of its parent package can share a name
    for m in members:
        if len(m.doc.rest.split()) < B_MIN_BODY_WORDS:
            continue
        body = cut_words(m.doc.rest, B_MAX_WORDS)
        key = normalise_text(body)
        if key in seen or m.qualname in names or (key.startswith("see ") and len(key.split()) < 20):
            continue
        seen.add(key)
        names.add(m.qualname)
        docs.append((m, f"{m.signature}\n{body}"))
    by_name = {m.qualname: (m, text) for m, text in docs}
    kept = cap_per_package([m for m, _ in docs], B_MAX_DOCS_PER_PACKAGE, rng)
    candidates = {m.qualname: m.doc.summary for m in kept if m.doc.summary}
    bad = ambiguous_summaries(candidates)
    eligible = []
    for m in kept:
        text = by_name[m.qualname][1]
        if (
            m.qualname in candidates
            and m.qualname not in bad
            and normalise_text(candidates[m.qualname]) not in normalise_text(f"{m.qualname}\n{text}")
        ):
            eligible.append(m.qualname)
    picked = set(eligible if len(eligible) <= B_MAX_QUERIES else rng.sample(eligible, B_MAX_QUERIES))
    corpus: dict[str, Document] = {}
    queries: dict[str, Query] = {}
    relevant: dict[str, str] = {}
    for m in kept:
        corpus[m.qualname] = Document(id=m.qualname, title=m.qualname, text=by_name[m.qualname][1])
        if m.qualname in picked:
            qid = f"q:{m.qualname}"
            queries[qid] = Query(id=qid, text=candidates[m.qualname], metadata={"family": m.family})
            relevant[qid] = m.qualname
    return Built(
        "short",
        "docstrings of installed packages without their summary sentence <- that summary (sampled)",
        corpus,
        queries,
        relevant,
    )


def assign_splits(built: Built, *, min_test: int, min_dev: int) -> None:
    """Split the queries by family (`RATIOS`, `SEED`) and check sizes and leakage."""
    families = {qid: q.metadata["family"] for qid, q in built.queries.items()}
    built.split_of = split_queries(families, ratios=RATIOS, seed=SEED)
    if check_leakage(built.split_of, families):
        raise SystemExit(f"{built.name}: a family crosses splits")
    sizes = Counter(built.split_of.values())
    if sizes["test"] < min_test or sizes["dev"] < min_dev:
        raise SystemExit(f"{built.name}: split sizes {dict(sizes)} below test>={min_test}, dev>={min_dev}")


def percentile(values: list[int], q: float) -> int:
    """Return the nearest-rank ``q`` percentile (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def token_lengths(texts: list[str]) -> list[int] | None:
    """Return each text's length in tokens of the default model's tokenizer, or None when unavailable."""
    try:
        from transformers import AutoTokenizer

        from domainfit.core.models import DEFAULT_MODEL, resolve_model

        tokenizer = AutoTokenizer.from_pretrained(str(resolve_model(DEFAULT_MODEL).path))
        tokenizer.model_max_length = sys.maxsize  # lengths are measured, nothing is encoded
    except Exception:
        return None
    lengths: list[int] = []
    for start in range(0, len(texts), 2_000):
        batch = tokenizer(texts[start : start + 2_000], add_special_tokens=True, truncation=False)
        lengths.extend(len(ids) for ids in batch["input_ids"])
    return lengths


def stats(built: Built) -> dict[str, Any]:
    """Return the corpus statistics recorded in build_info.json and printed."""
    texts = [doc.full_text() for doc in built.corpus.values()]
    words = [len(t.split()) for t in texts]
    info: dict[str, Any] = {
        "documents": len(texts),
        "document_words": {"median": int(statistics.median(words)), "p90": percentile(words, 90), "max": max(words)},
    }
    tokens = token_lengths(texts)
    if tokens is not None:
        info["document_tokens"] = {
            "tokenizer": "sentence-transformers/all-MiniLM-L6-v2",
            "median": int(statistics.median(tokens)),
            "p90": percentile(tokens, 90),
            "max": max(tokens),
            "share_over_256": round(sum(t > 256 for t in tokens) / len(tokens), 4),
        }
    qwords = [len(q.text.split()) for q in built.queries.values()]
    info["queries"] = len(built.queries)
    info["query_words"] = {"median": int(statistics.median(qwords)), "p90": percentile(qwords, 90)}
    info["judged_documents"] = len(set(built.relevant.values()))
    info["queries_per_split"] = {s: sum(v == s for v in built.split_of.values()) for s in ("train", "dev", "test")}
    families = {qid: q.metadata["family"] for qid, q in built.queries.items()}
    info["families"] = len(set(families.values()))
    info["families_per_split"] = {
        s: len({families[q] for q, v in built.split_of.items() if v == s}) for s in ("train", "dev", "test")
    }
    top = Counter(fam.split(".")[0] for fam in families.values())
    info["queries_per_package"] = dict(sorted(top.items(), key=lambda kv: (-kv[1], kv[0])))
    return info


def write(built: Built, folder: Path, info: dict[str, Any]) -> None:
    """Write ``built`` as a BEIR folder with its build_info.json."""
    qrels = {
        split: {qid: {built.relevant[qid]: 1} for qid in sorted(built.split_of) if built.split_of[qid] == split}
        for split in ("train", "dev", "test")
    }
    write_beir(BeirDataset(corpus=built.corpus, queries=built.queries, qrels=qrels), folder)
    (folder / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def refuse_non_empty(folder: Path) -> None:
    """Exit when ``folder`` exists and is not an empty folder."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SystemExit(f"{folder} exists and is not empty: choose another --out or remove it")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build the chosen corpora and print their statistics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder that receives one sub-folder per corpus")
    parser.add_argument("--which", choices=(*NAMES, "all"), default="all", help="corpus to build (default all)")
    args = parser.parse_args(argv)
    names = NAMES if args.which == "all" else (args.which,)
    out = args.out.expanduser().resolve()
    for name in names:
        refuse_non_empty(out / name)
    started = time.perf_counter()
    site = site_packages()
    members, versions = harvest(site)
    print(f"read {len(members)} documented members of {len(versions)} packages", file=sys.stderr)
    for name in names:
        rng = random.Random(f"{SEED}:{name}")
        if name == "longdocs":
            built = build_longdocs(members, rng)
            assign_splits(built, min_test=A_MIN_TEST, min_dev=A_MIN_DEV)
            if len(built.queries) < A_MIN_QUERIES:
                raise SystemExit(f"longdocs: {len(built.queries)} queries, fewer than {A_MIN_QUERIES}")
        else:
            built = build_short(members, rng)
            assign_splits(built, min_test=B_MIN_TEST, min_dev=B_MIN_DEV)
            if len(built.corpus) < B_MIN_DOCS:
                raise SystemExit(f"short: {len(built.corpus)} documents, fewer than {B_MIN_DOCS}")
        info = {
            "name": name,
            "description": built.description,
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "packages": versions,
            "missing_packages": [p for p in PACKAGES if p not in versions],
            "seed": SEED,
            "ratios": list(RATIOS),
            **stats(built),
        }
        write(built, out / name, info)
        print(json.dumps(info, indent=2))
    print(f"built {', '.join(names)} in {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
