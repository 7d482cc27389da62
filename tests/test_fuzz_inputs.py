"""Property-based fuzzing of BEIR folders: whatever the damage, `validate` and `bench` exit 0 or 2, cleanly.

Each example starts from one small valid BEIR folder (14 documents, 12 queries,
qrels train/dev/test) and applies 1-3 random mutations: bytes flipped, inserted
or deleted, lines dropped, duplicated or swapped, JSON fields re-typed or
removed, ids with whitespace, control characters or lone surrogates (in one
place or renamed consistently everywhere), grades out of range, files emptied,
deleted or truncated mid-line, header-only qrels, rows with too many or too few
columns, a byte-order mark in the middle, CRLF or CR line endings.

For every example, `domainfit validate DATA` and `domainfit bench DATA` must:
exit 0 or 2 (never an internal error), print no traceback, leave the input
folder byte-identical, print exactly one ``error:`` line on exit 2 and leave no
stage folder or temporary file behind; on exit 0 the bench artifacts are
complete (a manifest whose listed outputs exist with their hashes).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import TOPICS
from domainfit.cli.app import _show_warning, app
from domainfit.core.workspace import MARKER
from domainfit.data.jsonl import BOM

runner = CliRunner(env={"NO_COLOR": "1"})

CORPUS, QUERIES = "corpus.jsonl", "queries.jsonl"
SPLITS = {"train": "auth", "dev": "billing", "test": "storage"}
QRELS = [f"qrels/{split}.tsv" for split in SPLITS]
JSON_FILES = (CORPUS, QUERIES)
HEADER = b"query-id\tcorpus-id\tscore\n"

Files = dict[str, bytes]


# ---------------------------------------------------------------- the valid folder


def _jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def base_files() -> Files:
    """One valid BEIR folder as {relative path: bytes}: 12 judged documents, 2 distractors, 12 queries."""
    corpus, queries = [], []
    qrels: dict[str, list[tuple[str, str, int]]] = {split: [] for split in SPLITS}
    n = 0
    for split, family in SPLITS.items():
        for query_text, doc_text in TOPICS[family]:
            n += 1
            did, qid = f"d{n:02d}", f"q{n:02d}"
            corpus.append({"_id": did, "title": query_text.title(), "text": doc_text})
            queries.append({"_id": qid, "text": query_text, "family": family})
            qrels[split].append((qid, did, 1 + n % 2))
    corpus.append({"_id": "x01", "title": "", "text": "Unrelated release note about the dashboard theme colour."})
    corpus.append({"_id": "x02", "text": "Another release note: the sidebar can be collapsed.", "lang": "en"})
    qrels["test"].append(("q09", "x01", 0))
    files = {CORPUS: _jsonl(corpus), QUERIES: _jsonl(queries)}
    for split, rows in qrels.items():
        files[f"qrels/{split}.tsv"] = HEADER + b"".join(f"{q}\t{d}\t{s}\n".encode() for q, d, s in rows)
    return files


def write_files(files: Files, root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    for rel, content in files.items():
        (root / rel).write_bytes(content)
    return root


# ---------------------------------------------------------------- mutations

#: Characters that must never pass silently into an id (or must be handled when they do).
ODD_CHARS = [" ", "\t", "\u00a0", "\u2028", "\u2029", "\x00", "\x1b", "\x85", "\ufeff", "\u200b", "\r", "\n", "  "]

#: Relevance grades that are out of range, not integers, or not numbers at all.
ODD_GRADES = ["-1", "-7", "3", "99", "2147483648", "9223372036854775808", str(10**30), "-" + str(10**30),
              "1.5", "1e3", "+1", " 1", "1 ", "0x1", "", "abc", "NaN", "inf", "\u0663", "1\u00a0", "01",
              "-0"]  # fmt: skip

JSON_VALUES = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.just(""),
    st.just("   "),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
    st.text(max_size=6),
)


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _pick_file(draw: Callable, files: Files, among: tuple[str, ...] | list[str] | None = None) -> str | None:
    names = sorted(n for n in files if among is None or n in among)
    return draw(st.sampled_from(names)) if names else None


def _pick_line(draw: Callable, lines: list[bytes], skip_header: bool = False) -> int | None:
    first = 1 if skip_header else 0
    return draw(st.integers(first, len(lines) - 1)) if len(lines) > first else None


def m_bytes(draw: Callable, files: Files) -> str:
    """Flip, insert or delete a few random bytes of one file."""
    name = _pick_file(draw, files)
    if name is None:
        return "bytes: no file"
    data = bytearray(files[name])
    op = draw(st.sampled_from(["flip", "insert", "delete"]))
    pos = draw(st.integers(0, max(len(data) - 1, 0)))
    if op == "flip" and data:
        data[pos] = draw(st.integers(0, 255))
    elif op == "delete" and data:
        del data[pos : pos + draw(st.integers(1, 4))]
    else:
        data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    files[name] = bytes(data)
    return f"bytes {op} {name}@{pos}"


def m_lines(draw: Callable, files: Files) -> str:
    """Drop, duplicate or swap lines of one file."""
    name = _pick_file(draw, files)
    if name is None:
        return "lines: no file"
    lines = _lines(files[name])
    if not lines:
        return f"lines: {name} is empty"
    op = draw(st.sampled_from(["drop", "duplicate", "swap"]))
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    if op == "drop":
        del lines[i]
    elif op == "duplicate":
        lines.insert(j, lines[i] if lines[i].endswith(b"\n") else lines[i] + b"\n")
    else:
        lines[i], lines[j] = lines[j], lines[i]
    files[name] = b"".join(lines)
    return f"lines {op} {name} {i} {j}"


def _json_line(draw: Callable, files: Files) -> tuple[str, list[bytes], int, dict] | None:
    """Pick a JSON file and a line of it that still parses as an object."""
    name = _pick_file(draw, files, JSON_FILES)
    if name is None:
        return None
    lines = _lines(files[name])
    i = _pick_line(draw, lines)
    if i is None:
        return None
    try:
        record = json.loads(lines[i])
    except ValueError:
        return None
    return (name, lines, i, record) if isinstance(record, dict) else None


def _dump(draw: Callable, record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass") + b"\n"


def m_retype(draw: Callable, files: Files) -> str:
    """Give a JSON field another type (number, list, null, object, bool, empty string) or remove it."""
    picked = _json_line(draw, files)
    if picked is None:
        return "retype: no JSON line"
    name, lines, i, record = picked
    key = draw(st.sampled_from(sorted({*record, "_id", "text", "title", "family", "metadata"})))
    if draw(st.integers(0, 4)) == 0:
        record.pop(key, None)
        change = "removed"
    else:
        record[key] = draw(JSON_VALUES)
        change = repr(record[key])[:40]
    lines[i] = _dump(draw, record)
    files[name] = b"".join(lines)
    return f"retype {name}:{i + 1} {key} -> {change}"


def _odd_id(draw: Callable, ident: str, chars: list[str]) -> str:
    char = draw(st.sampled_from(chars))
    where = draw(st.sampled_from(["prefix", "middle", "suffix", "only"]))
    if where == "prefix":
        return char + ident
    if where == "suffix":
        return ident + char
    if where == "only":
        return char
    return ident[:1] + char + ident[1:]


def _rename_in_qrels(files: Files, column: int, old: str, new: str) -> None:
    raw = new.encode("utf-8", "surrogatepass")
    for rel in QRELS:
        if rel in files:
            rows = []
            for line in _lines(files[rel]):
                cols = line.split(b"\t")
                if len(cols) == 3 and cols[column].strip() == old.encode("utf-8", "surrogatepass"):
                    cols[column] = raw
                rows.append(b"\t".join(cols))
            files[rel] = b"".join(rows)


def m_odd_id(draw: Callable, files: Files, chars: list[str] | None = None) -> str:
    """Put whitespace or a control character into an id: in one file only, or renamed everywhere."""
    chars = chars or ODD_CHARS
    target = draw(st.sampled_from(["json", "json", "qrels"]))
    if target == "qrels":
        name = _pick_file(draw, files, QRELS)
        if name is None:
            return "odd id: no qrels"
        lines = _lines(files[name])
        i = _pick_line(draw, lines, skip_header=True)
        if i is None:
            return f"odd id: {name} has no rows"
        cols = lines[i].split(b"\t")
        column = draw(st.integers(0, min(1, len(cols) - 1)))
        cols[column] = _odd_id(draw, cols[column].decode("utf-8", "replace"), chars).encode("utf-8", "surrogatepass")
        lines[i] = b"\t".join(cols)
        files[name] = b"".join(lines)
        return f"odd id {name}:{i + 1} column {column}"
    picked = _json_line(draw, files)
    if picked is None:
        return "odd id: no JSON line"
    name, lines, i, record = picked
    old = record.get("_id")
    if not isinstance(old, str):
        return "odd id: _id not a string"
    new = _odd_id(draw, old, chars)
    record["_id"] = new
    lines[i] = _dump(draw, record)
    files[name] = b"".join(lines)
    everywhere = draw(st.booleans())
    if everywhere:
        _rename_in_qrels(files, 0 if name == QUERIES else 1, old, new)
    return f"odd id {name}:{i + 1} {old!r} -> {new!r}{' everywhere' if everywhere else ''}"


def m_surrogate(draw: Callable, files: Files) -> str:
    """A lone surrogate escape (``"\\ud800"``) in a JSON string: text, title, or the id (renamed everywhere)."""
    picked = _json_line(draw, files)
    if picked is None:
        return "surrogate: no JSON line"
    name, lines, i, record = picked
    key = draw(st.sampled_from(["_id", "text", "title"]))
    value = record.get(key) if isinstance(record.get(key), str) else "v"
    surrogate = draw(st.sampled_from(["\ud800", "\udfff", "\udc80"]))
    new = value + surrogate if draw(st.booleans()) else surrogate + value
    record[key] = new
    lines[i] = json.dumps(record).encode() + b"\n"  # ensure_ascii: the surrogate is written as an escape
    files[name] = b"".join(lines)
    if key == "_id" and draw(st.booleans()):
        _rename_in_qrels(files, 0 if name == QUERIES else 1, value, new)
    return f"surrogate {name}:{i + 1} {key} -> {new!r}"


def m_grade(draw: Callable, files: Files) -> str:
    """Replace a relevance grade with one out of range, negative, huge or not an integer."""
    name = _pick_file(draw, files, QRELS)
    if name is None:
        return "grade: no qrels"
    lines = _lines(files[name])
    i = _pick_line(draw, lines, skip_header=True)
    if i is None:
        return f"grade: {name} has no rows"
    cols = lines[i].rstrip(b"\r\n").split(b"\t")
    grade = draw(st.one_of(st.sampled_from(ODD_GRADES), st.integers(-(10**40), 10**40).map(str)))
    cols[-1] = grade.encode()
    lines[i] = b"\t".join(cols) + b"\n"
    files[name] = b"".join(lines)
    return f"grade {name}:{i + 1} -> {grade!r}"


def m_empty_or_delete(draw: Callable, files: Files) -> str:
    """Empty a file (or leave only blank lines), or delete it."""
    name = _pick_file(draw, files)
    if name is None:
        return "empty: no file"
    op = draw(st.sampled_from(["empty", "blank", "delete"]))
    if op == "delete":
        del files[name]
    else:
        files[name] = b"" if op == "empty" else b"\n \r\n"
    return f"{op} {name}"


def m_truncate(draw: Callable, files: Files) -> str:
    """Cut a file at a random byte (an interrupted copy)."""
    name = _pick_file(draw, files)
    if name is None or len(files[name]) < 2:
        return "truncate: nothing to cut"
    cut = draw(st.integers(1, len(files[name]) - 1))
    files[name] = files[name][:cut]
    return f"truncate {name} at {cut}"


def m_header_only(draw: Callable, files: Files) -> str:
    """A qrels file with its header row and no judgements."""
    name = draw(st.sampled_from(QRELS))
    files[name] = HEADER if draw(st.booleans()) else HEADER.rstrip(b"\n")
    return f"header-only {name}"


def m_columns(draw: Callable, files: Files) -> str:
    """A qrels row with too many or too few columns (or space-separated, TREC style)."""
    name = _pick_file(draw, files, QRELS)
    if name is None:
        return "columns: no qrels"
    lines = _lines(files[name])
    i = _pick_line(draw, lines, skip_header=draw(st.booleans()))
    if i is None:
        return f"columns: {name} has no rows"
    cols = lines[i].rstrip(b"\r\n").split(b"\t")
    op = draw(st.sampled_from(["more", "fewer", "trec", "spaces"]))
    if op == "more":
        cols.append(draw(st.sampled_from([b"1", b"", b"extra"])))
    elif op == "fewer":
        cols = cols[:-1]
    elif op == "trec":
        cols.insert(1, b"0")
    lines[i] = (b" " if op == "spaces" else b"\t").join(cols) + b"\n"
    files[name] = b"".join(lines)
    return f"columns {op} {name}:{i + 1}"


def m_bom(draw: Callable, files: Files) -> str:
    """A byte-order mark at the start of a later line or at a random byte."""
    name = _pick_file(draw, files)
    if name is None:
        return "bom: no file"
    data = files[name]
    lines = _lines(data)
    if len(lines) > 1 and draw(st.booleans()):
        i = draw(st.integers(1, len(lines) - 1))
        lines[i] = BOM + lines[i]
        files[name] = b"".join(lines)
        return f"bom {name} line {i + 1}"
    pos = draw(st.integers(0, len(data)))
    files[name] = data[:pos] + BOM + data[pos:]
    return f"bom {name}@{pos}"


def m_line_endings(draw: Callable, files: Files) -> str:
    """CRLF (or bare CR) line endings in one file, or in all of them."""
    ending = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r"]))
    names = sorted(files) if draw(st.booleans()) else [n for n in [_pick_file(draw, files)] if n]
    for name in names:
        files[name] = files[name].replace(b"\r\n", b"\n").replace(b"\n", ending)
    return f"line endings {ending!r} in {names}"


#: Ids that are unusual but legal: each becomes a column of run files, a JSON key and a file line.
LEGAL_IDS = ["0", "-1", "1e3", "NaN", "null", "true", "D01", "\uff44\uff10\uff11", "\ufb01", "d/01", "..", "d\\01",
             'd"01', "d'01", "d:01", "d#01", "d%01", "<d>", "\u03a9", "\U0001f600", "q01", "x" * 300,
             "CON"]  # fmt: skip

#: Texts that are valid but leave little to search with (stop words, punctuation, other scripts, one character).
WEIRD_TEXTS = ["the", "a of the", "???", "!!!", "-", "\u65e5\u672c\u8a9e", "\U0001f600\U0001f600", "0", "x",
               "ERR_AUTH_702", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "word " * 400, "\u00e9" * 50,
               "a\u0301", "\ufb01nd", "\u2028", "<b>bold</b>", "{json}"]  # fmt: skip


def m_legal_id(draw: Callable, files: Files) -> str:
    """Rename an id, in its file and in every qrels file, to one that is unusual but legal."""
    picked = _json_line(draw, files)
    if picked is None:
        return "legal id: no JSON line"
    name, lines, i, record = picked
    old = record.get("_id")
    if not isinstance(old, str):
        return "legal id: _id not a string"
    new = draw(st.sampled_from(LEGAL_IDS))
    record["_id"] = new
    lines[i] = _dump(draw, record)
    files[name] = b"".join(lines)
    _rename_in_qrels(files, 0 if name == QUERIES else 1, old, new)
    return f"legal id {name}:{i + 1} {old!r} -> {new!r} everywhere"


def m_weird_text(draw: Callable, files: Files) -> str:
    """Give a document or query a valid text that leaves little to search with."""
    picked = _json_line(draw, files)
    if picked is None:
        return "weird text: no JSON line"
    name, lines, i, record = picked
    key = draw(st.sampled_from(["text", "title"] if name == CORPUS else ["text"]))
    record[key] = draw(st.sampled_from(WEIRD_TEXTS))
    lines[i] = _dump(draw, record)
    files[name] = b"".join(lines)
    return f"weird text {name}:{i + 1} {key} -> {record[key][:20]!r}"


def m_extra_split(draw: Callable, files: Files) -> str:
    """Add a qrels file under an odd split name, copied from an existing split."""
    source = _pick_file(draw, files, QRELS)
    target = draw(st.sampled_from(["extra", "te st", ".hidden", "TEST", "a\u00a0b", "x" * 200, "-", "dev.old"]))
    files[f"qrels/{target}.tsv"] = files[source] if source else HEADER
    return f"extra split {target!r} from {source}"


MUTATIONS = [
    m_bytes,
    m_lines,
    m_retype,
    m_odd_id,
    m_surrogate,
    m_grade,
    m_empty_or_delete,
    m_truncate,
    m_header_only,
    m_columns,
    m_bom,
    m_line_endings,
    m_legal_id,
    m_weird_text,
    m_extra_split,
]


@st.composite
def damaged_folders(draw: Callable) -> tuple[Files, list[str]]:
    """A valid BEIR folder with 1-3 random mutations applied; also returns what was done."""
    files = base_files()
    log = []
    for _ in range(draw(st.integers(1, 3))):
        mutation = draw(st.sampled_from(MUTATIONS))
        log.append(mutation(draw, files))
    return files, log


# ---------------------------------------------------------------- checks


def snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` with a hash of its bytes (None for folders)."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def leftovers(ws: Path) -> list[str]:
    """Temporary files and swapped-out folders a stage must never leave behind."""
    if not ws.exists():
        return []
    return sorted(
        str(p.relative_to(ws))
        for p in ws.rglob(".*")
        if p.name.endswith(".tmp") or ".tmp." in p.name or ".old." in p.name
    )


def check_clean_exit(result, what: str) -> None:
    """Exit 0 or 2, no traceback, no escaped exception; on exit 2 exactly one ``error:`` line on stderr."""
    stdout, stderr = result.stdout, result.stderr
    assert result.exit_code in (0, 2), f"{what}: exit {result.exit_code}\nstdout: {stdout}\nstderr: {stderr}"
    assert "Traceback" not in stdout and "Traceback" not in stderr, f"{what}: traceback\n{stdout}{stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{what}: {result.exception!r}"
    if result.exit_code == 2:
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, f"{what}: expected one error line\nstderr: {stderr}"
        assert "error:" not in stdout, f"{what}: error on stdout: {stdout}"


def check_manifest(stage: Path) -> None:
    """A stage folder holds a manifest whose every listed output exists with its recorded hash and size."""
    manifest = json.loads((stage / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stage"] == stage.name and manifest["outputs"], manifest
    for name, entry in manifest["outputs"].items():
        file = stage / name
        assert file.is_file(), f"{stage.name}: {name} listed in the manifest but missing"
        assert hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"], f"{stage.name}: {name} differs"
        assert file.stat().st_size == entry["bytes"]


def check_example(
    files: Files, log: list[str], scratch: Path, tell: Callable[[str], None] = lambda _: None
) -> tuple[int, int]:
    """Run `validate` and `bench` on the folder and check both; return their exit codes."""
    tell(f"mutations: {log}")
    root = Path(tempfile.mkdtemp(prefix="ex-", dir=scratch))
    try:
        data = write_files(files, root / "data")
        before = snapshot(data)

        checked = runner.invoke(app, ["validate", str(data)])
        check_clean_exit(checked, "validate")
        assert snapshot(data) == before, "validate changed the input folder"
        if checked.exit_code == 0:
            assert checked.stdout.startswith("ok: "), checked.stdout

        ws = root / "ws"
        bench = runner.invoke(app, ["bench", str(data), "--workspace", str(ws), "--quiet"])
        tell(f"bench stderr: {bench.stderr}")
        check_clean_exit(bench, "bench")
        assert snapshot(data) == before, "bench changed the input folder"
        assert leftovers(ws) == [], f"bench left temporary files: {leftovers(ws)}"
        if bench.exit_code == 0:
            assert (ws / "bench" / "metrics.json").is_file()
            check_manifest(ws / "bench")
        else:
            assert not (ws / "bench").exists(), "a failed bench left its stage folder"
            if ws.exists():  # the embedding cache may stay; nothing else may
                assert {p.name for p in ws.iterdir()} <= {MARKER, ".lock", "cache"}, sorted(ws.iterdir())
        assert {p.name for p in root.iterdir()} <= {"data", "ws"}, f"stray files: {sorted(root.iterdir())}"
        return checked.exit_code, bench.exit_code
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def scratch(tmp_path_factory, monkeypatch):
    """A folder for the examples, and warnings printed as the installed `domainfit` script prints them."""
    monkeypatch.setattr(warnings, "showwarning", _show_warning)
    return tmp_path_factory.mktemp("fuzz")


# ---------------------------------------------------------------- tests


def test_the_undamaged_folder_is_valid_and_benches(scratch):
    assert check_example(base_files(), [], scratch) == (0, 0)
    data = write_files(base_files(), scratch / "base")
    assert runner.invoke(app, ["validate", str(data)]).stdout.startswith("ok: 14 documents, 12 queries")


FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(FUZZ, max_examples=100)
@given(case=damaged_folders())
def test_damaged_folder_exits_0_or_2_cleanly(case, scratch):
    check_example(*case, scratch, note)


@pytest.mark.slow
@settings(FUZZ, max_examples=2000)
@given(case=damaged_folders())
def test_damaged_folder_exits_0_or_2_cleanly_many(case, scratch):
    check_example(*case, scratch, note)
