"""Malformed inputs fail with exit code 2, one `file:line: field: message` line, and no writes.

Each case builds a valid BEIR folder in tmp_path, applies exactly one defect and
runs the CLI (`bench`, or `validate` for pair files, or `bench --config` for a
bad domainfit.toml). Tolerated variants (BOM, CRLF, blank lines, metadata) must
load fine.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.core.errors import InputError
from domainfit.data.beir import load_beir
from domainfit.data.jsonl import BOM, MAX_LINE_BYTES, iter_lines

# Click >= 8.2 always keeps stderr apart (`result.stderr`); `result.output` interleaves both streams.
runner = CliRunner(env={"NO_COLOR": "1"})

CORPUS = [
    {"_id": "d1", "title": "Login errors", "text": "Login fails with ERR_AUTH_702 when the session token expired."},
    {"_id": "d2", "title": "Invoices", "text": "Invoices can be downloaded as PDF files from the billing page."},
    {"_id": "d3", "title": "", "text": "Uploads fail with QUOTA_409 once a bucket exceeds its quota."},
    {"_id": "d4", "text": "Open TCP port 443 in the firewall to allow HTTPS traffic."},
]
QUERIES = [
    {"_id": "q1", "text": "token expired", "family": "auth"},
    {"_id": "q2", "text": "download invoice pdf"},
    {"_id": "q3", "text": "bucket quota exceeded"},
]
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 2)]
OK_LINE = "ok: 4 documents, 3 queries, judged queries: test=3"


# ---------------------------------------------------------------- helpers


def jsonl(records: list) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def qrels_tsv(rows: list, header: bool = True) -> bytes:
    lines = ["query-id\tcorpus-id\tscore"] if header else []
    lines += [f"{q}\t{d}\t{s}" for q, d, s in rows]
    return "".join(line + "\n" for line in lines).encode()


def make_beir(root: Path) -> Path:
    """Write a valid BEIR folder: 4 documents, 3 queries, qrels/test.tsv."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_bytes(jsonl(CORPUS))
    (root / "queries.jsonl").write_bytes(jsonl(QUERIES))
    (root / "qrels" / "test.tsv").write_bytes(qrels_tsv(QRELS))
    return root


def set_line(path: Path, number: int, content: bytes) -> None:
    """Replace 1-based line ``number`` of ``path`` (newline kept)."""
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = content
    path.write_bytes(b"\n".join(lines))


def append(path: Path, content: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(content + b"\n")


def write(rel: str, content: bytes) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / rel).write_bytes(content)

    return apply


def snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` with a hash of its bytes (None for folders)."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def expected_prefix(path: Path, line: int, field: str) -> str:
    where = f"{path}:{line}" if line else f"{path}"
    return f"error: {where}: {field}: "


# ---------------------------------------------------------------- defects


def truncate_corpus(root: Path) -> None:
    """Cut the file in the middle of the 4th object (an interrupted copy)."""
    data = jsonl(CORPUS)
    cut = len(jsonl(CORPUS[:3])) + 20
    (root / "corpus.jsonl").write_bytes(data[:cut])


def concatenated_corpus(root: Path) -> None:
    """Two BOM-prefixed files joined with `cat`: a BOM starts line 3."""
    (root / "corpus.jsonl").write_bytes(BOM + jsonl(CORPUS[:2]) + BOM + jsonl(CORPUS[2:]))


def crlf_bom_duplicate(root: Path) -> None:
    """BOM + CRLF are tolerated, and the line number of a later defect is still right."""
    data = BOM + jsonl([*CORPUS, {"_id": "d1", "text": "again"}]).replace(b"\n", b"\r\n")
    (root / "corpus.jsonl").write_bytes(data)


def huge_document(root: Path) -> None:
    text = "x" * (10 * 1024 * 1024)
    set_line(root / "corpus.jsonl", 2, json.dumps({"_id": "d2", "text": text}).encode())


def config_limit_then_big_document(root: Path) -> None:
    """A 2 MiB document is fine by default but over a configured 1 MiB limit."""
    (root / "domainfit.toml").write_bytes(b"[data]\nmax_line_mib = 1\n")
    set_line(root / "corpus.jsonl", 3, json.dumps({"_id": "d3", "text": "y" * (2 * 1024 * 1024)}).encode())


def drop_test_split(root: Path) -> None:
    (root / "qrels" / "test.tsv").rename(root / "qrels" / "dev.tsv")


@dataclass
class Case:
    """One defect and where the error must point: ``file`` (relative to the data folder), line, field."""

    defect: Callable[[Path], None]
    file: str
    line: int
    field: str
    fragment: str
    command: str = "bench"  # "bench" | "validate" (pair files) | "config" (bench --config)


C, Q, T = "corpus.jsonl", "queries.jsonl", "qrels/test.tsv"


def corpus_line(n: int, content: bytes) -> Callable[[Path], None]:
    return lambda root: set_line(root / C, n, content)


def queries_line(n: int, content: bytes) -> Callable[[Path], None]:
    return lambda root: set_line(root / Q, n, content)


def qrels_line(n: int, content: bytes) -> Callable[[Path], None]:
    return lambda root: set_line(root / T, n, content)


def add_corpus(content: bytes) -> Callable[[Path], None]:
    return lambda root: append(root / C, content)


def add_qrels(content: bytes) -> Callable[[Path], None]:
    return lambda root: append(root / T, content)


CASES = {
    # --- corpus.jsonl
    "duplicate_doc_id": Case(add_corpus(b'{"_id": "d2", "text": "again"}'), C, 5, "_id", "duplicate id 'd2'"),
    "empty_text_and_title": Case(corpus_line(3, b'{"_id": "d3", "title": "", "text": ""}'), C, 3, "text", "empty"),
    "blank_text_no_title": Case(corpus_line(4, b'{"_id": "d4", "text": "  "}'), C, 4, "text", "empty"),
    "invalid_utf8_corpus": Case(corpus_line(2, b'{"_id": "d2", "text": "caf\xe9 \xff"}'), C, 2, "-", "invalid UTF-8"),
    "truncated_json": Case(truncate_corpus, C, 4, "-", "invalid JSON"),
    "bom_mid_file": Case(concatenated_corpus, C, 3, "-", "byte-order mark inside the file"),
    "line_over_8mib": Case(huge_document, C, 2, "-", "over the 8 MiB limit"),
    "non_string_id": Case(corpus_line(3, b'{"_id": 123, "text": "t"}'), C, 3, "_id", "must be a string, got int"),
    "null_id": Case(corpus_line(1, b'{"_id": null, "text": "t"}'), C, 1, "_id", "missing"),
    "missing_id": Case(corpus_line(2, b'{"id": "d2", "text": "t"}'), C, 2, "_id", "missing"),
    "non_string_text": Case(corpus_line(2, b'{"_id": "d2", "text": ["a", "b"]}'), C, 2, "text", "must be a string"),
    "non_string_title": Case(corpus_line(1, b'{"_id": "d1", "title": 7, "text": "t"}'), C, 1, "title", "string"),
    "json_array_line": Case(corpus_line(2, b'["d2", "Invoices"]'), C, 2, "-", "expected a JSON object, got list"),
    "raw_control_char": Case(corpus_line(2, b'{"_id": "d2", "text": "a\x01b"}'), C, 2, "-", "invalid JSON"),
    "id_with_tab": Case(corpus_line(2, b'{"_id": "d\\t2", "text": "t"}'), C, 2, "_id", "tab"),
    "empty_corpus": Case(write(C, b""), C, 0, "-", "no documents"),
    "blank_lines_only_corpus": Case(write(C, b"\n  \n\r\n"), C, 0, "-", "no documents"),
    "missing_corpus_file": Case(lambda root: (root / C).unlink(), C, 0, "-", "file not found"),
    "crlf_bom_then_duplicate": Case(crlf_bom_duplicate, C, 5, "_id", "duplicate id 'd1' (first on line 1)"),
    # --- queries.jsonl
    "duplicate_query_id": Case(
        lambda root: append(root / Q, b'{"_id": "q1", "text": "x"}'), Q, 4, "_id", "duplicate id 'q1'"
    ),
    "empty_query_text": Case(queries_line(2, b'{"_id": "q2", "text": ""}'), Q, 2, "text", "is empty"),
    "missing_query_text": Case(queries_line(3, b'{"_id": "q3", "query": "bucket"}'), Q, 3, "text", "missing"),
    "query_id_surrounding_space": Case(queries_line(2, b'{"_id": " q2", "text": "t"}'), Q, 2, "_id", "whitespace"),
    "query_json_array": Case(queries_line(1, b'["q1", "token"]'), Q, 1, "-", "expected a JSON object"),
    "family_not_string": Case(
        queries_line(1, b'{"_id": "q1", "text": "t", "family": ["a"]}'), Q, 1, "family", "must be a string"
    ),
    # --- qrels/test.tsv
    "qrels_unknown_query": Case(add_qrels(b"q9\td1\t1"), T, 5, "query-id", "unknown query 'q9'"),
    "qrels_unknown_document": Case(add_qrels(b"q1\td9\t1"), T, 5, "corpus-id", "unknown document 'd9'"),
    "qrels_invalid_utf8": Case(qrels_line(3, b"q2\td\xe92\t1"), T, 3, "-", "invalid UTF-8"),
    "qrels_two_columns": Case(qrels_line(3, b"q2\td2"), T, 3, "-", "expected 3 tab-separated columns, got 2"),
    "qrels_trec_four_columns": Case(qrels_line(2, b"q1\t0\td1\t1"), T, 2, "-", "got 4"),
    "qrels_missing_header": Case(write(T, qrels_tsv(QRELS, header=False)), T, 1, "-", "missing header row"),
    "qrels_wrong_header": Case(qrels_line(1, b"qid\tdocid\trel"), T, 1, "-", "header must be"),
    "qrels_non_integer_score": Case(qrels_line(4, b"q3\td3\t1.5"), T, 4, "score", "must be an integer"),
    "qrels_duplicate_judgement": Case(add_qrels(b"q1\td1\t0"), T, 5, "corpus-id", "duplicate judgement"),
    "qrels_empty_query_id": Case(qrels_line(3, b"\td2\t1"), T, 3, "query-id", "is empty"),
    "qrels_empty_file": Case(write(T, b""), T, 0, "-", "empty file"),
    "qrels_markup_in_score": Case(qrels_line(3, b"q2\td2\t[/b]"), T, 3, "score", "got '[/b]'"),
    "qrels_underscore_digits": Case(qrels_line(3, b"q2\td2\t1_0"), T, 3, "score", "must be an integer"),
    "qrels_split_missing": Case(drop_test_split, "qrels", 0, "split", "no qrels/test.tsv (available: dev)"),
    "qrels_header_only": Case(write(T, qrels_tsv([])), T, 0, "-", "no judgements"),
    "qrels_no_relevant_grade": Case(write(T, qrels_tsv([(q, d, 0) for q, d, _ in QRELS])), T, 0, "score", "grade > 0"),
    "qrels_only_negative_grades": Case(write(T, qrels_tsv([(q, d, -1) for q, d, _ in QRELS])), T, 0, "score", "<= 0"),
    "qrels_grade_out_of_range": Case(qrels_line(3, b"q2\td2\t99999999999999999999"), T, 3, "score", "out of range"),
    "qrels_id_with_space": Case(qrels_line(2, b"q1\td 1\t1"), T, 2, "corpus-id", "whitespace"),
    "qrels_id_with_nbsp": Case(qrels_line(4, "q\u00a03\td3\t2".encode()), T, 4, "query-id", "NO-BREAK SPACE"),
    "queries_file_missing": Case(lambda root: (root / Q).unlink(), Q, 0, "-", "file not found"),
    # --- ids every writer can carry (TREC run files split on whitespace; UTF-8 cannot encode a lone surrogate)
    "id_with_space": Case(corpus_line(2, b'{"_id": "doc 2", "text": "t"}'), C, 2, "_id", "whitespace"),
    "id_with_nbsp": Case(corpus_line(2, b'{"_id": "doc\\u00a02", "text": "t"}'), C, 2, "_id", "whitespace"),
    "id_with_line_separator": Case(corpus_line(3, b'{"_id": "d\\u20283", "text": "t"}'), C, 3, "_id", "whitespace"),
    "id_with_vertical_tab": Case(corpus_line(1, b'{"_id": "d\\u000b1", "text": "t"}'), C, 1, "_id", "whitespace"),
    "id_with_control_char": Case(corpus_line(2, b'{"_id": "d\\u00012", "text": "t"}'), C, 2, "_id", "control"),
    "id_with_zero_width_space": Case(corpus_line(2, b'{"_id": "d\\u200b2", "text": "t"}'), C, 2, "_id", "invisible"),
    "id_lone_surrogate": Case(corpus_line(2, b'{"_id": "d\\ud8002", "text": "t"}'), C, 2, "_id", "lone surrogate"),
    "title_lone_surrogate": Case(
        corpus_line(1, b'{"_id": "d1", "title": "x\\udc80", "text": "t"}'), C, 1, "title", "lone surrogate"
    ),
    "metadata_lone_surrogate": Case(
        corpus_line(1, b'{"_id": "d1", "text": "t", "tags": ["\\udfff"]}'), C, 1, "tags.0", "lone surrogate"
    ),
    "query_id_with_space": Case(queries_line(3, b'{"_id": "q 3", "text": "t"}'), Q, 3, "_id", "whitespace"),
    "query_text_lone_surrogate": Case(queries_line(2, b'{"_id": "q2", "text": "\\ud800"}'), Q, 2, "text", "surrogate"),
    "json_integer_too_long": Case(
        corpus_line(2, b'{"_id": "d2", "text": "t", "n": ' + b"9" * 5000 + b"}"), C, 2, "-", "invalid JSON"
    ),
    # --- pair files (domainfit validate FILE)
    "pairs_jsonl_missing_positive": Case(
        write("pairs.jsonl", b'{"query": "a", "positive": "b"}\n{"query": "c", "negative": "d"}\n'),
        "pairs.jsonl",
        2,
        "positive",
        "missing",
        "validate",
    ),
    "pairs_jsonl_boolean_score": Case(
        write("pairs.jsonl", b'{"anchor": "a", "positive": "b", "score": true}\n'),
        "pairs.jsonl",
        1,
        "score",
        "boolean",
        "validate",
    ),
    "pairs_jsonl_empty_anchor": Case(
        write("pairs.jsonl", b'{"anchor": "a", "pos": "b"}\n{"anchor": "  ", "pos": "b"}\n'),
        "pairs.jsonl",
        2,
        "anchor",
        "is empty",
        "validate",
    ),
    "pairs_csv_non_numeric_score": Case(
        write("pairs.csv", b"query,positive,score\nq1,p1,0.5\nq2,p2,high\n"),
        "pairs.csv",
        3,
        "score",
        "must be a number",
        "validate",
    ),
    "pairs_csv_wrong_column_count": Case(
        write("pairs.csv", b"query,positive,score\nq1,p1,1\nq2,p2\n"),
        "pairs.csv",
        3,
        "-",
        "expected 3 columns, got 2",
        "validate",
    ),
    "pairs_csv_nan_score": Case(
        write("pairs.csv", b"query,positive,score\nq1,p1,nan\n"), "pairs.csv", 2, "score", "finite", "validate"
    ),
    "pairs_folder_not_a_dataset": Case(
        lambda root: (root / "empty-folder").mkdir(), "empty-folder", 0, "-", "not a BEIR folder", "validate"
    ),
    "pairs_tsv_missing_header": Case(
        write("pairs.tsv", b"q1\tp1\nq2\tp2\n"), "pairs.tsv", 1, "-", "missing header row", "validate"
    ),
    # --- domainfit.toml (bench --config)
    "toml_unknown_key": Case(
        write("domainfit.toml", b'[bench]\nsplit = "test"\nspilt = "dev"\n'),
        "domainfit.toml",
        3,
        "bench.spilt",
        "unknown key",
        "config",
    ),
    "toml_wrong_type": Case(
        write("domainfit.toml", b'[bench]\nsplit = "test"\ndepth = "many"\n'),
        "domainfit.toml",
        3,
        "bench.depth",
        "valid integer",
        "config",
    ),
    "toml_bad_metric": Case(
        write("domainfit.toml", b'[bench]\nmetrics = ["ndcg@10", "bleu@4"]\n'),
        "domainfit.toml",
        2,
        "bench.metrics",
        "unknown metric",
        "config",
    ),
    "toml_blank_line_before_key": Case(
        write("domainfit.toml", b'[bench]\n\ndepth = "many"\n'), "domainfit.toml", 3, "bench.depth", "integer", "config"
    ),
    "toml_bad_list_item": Case(
        write("domainfit.toml", b'[bench]\nmetrics = ["ndcg@10", 5]\n'),
        "domainfit.toml",
        2,
        "bench.metrics.1",
        "valid string",
        "config",
    ),
    "toml_unknown_section": Case(
        write("domainfit.toml", b"[bnech]\ndepth = 3\n"), "domainfit.toml", 1, "bnech", "unknown key", "config"
    ),
    "toml_syntax_error": Case(
        write("domainfit.toml", b"[bench]\ndepth = \n"), "domainfit.toml", 2, "-", "invalid TOML", "config"
    ),
    "toml_no_models": Case(
        write("domainfit.toml", b"[bench]\nmodels = []\n"), "domainfit.toml", 2, "bench.models", "at least 1", "config"
    ),
    "configured_line_limit": Case(config_limit_then_big_document, C, 3, "-", "over the 1 MiB limit", "config"),
    "toml_primary_metric_not_computed": Case(
        write("domainfit.toml", b'[bench]\nmetrics = ["ndcg@10"]\nprimary_metric = "mrr@10"\n'),
        "domainfit.toml",
        3,
        "bench.primary_metric",
        "not computed",
        "config",
    ),
    "toml_decide_metric_not_computed": Case(
        write("domainfit.toml", b'[decide]\nmin_lift = 0.01\nmetric = "recall@10"\n'),
        "domainfit.toml",
        3,
        "decide.metric",
        "not computed by [bench]",
        "config",
    ),
    "toml_eval_metric_unknown": Case(
        write("domainfit.toml", b'[eval]\nmetrics = ["ndcg@10", "bleu"]\n'),
        "domainfit.toml",
        2,
        "eval.metrics",
        "unknown metric",
        "config",
    ),
    "toml_unknown_significance_test": Case(
        write("domainfit.toml", b'[bench]\nsignificance_test = "wilcoxon"\n'),
        "domainfit.toml",
        2,
        "bench.significance_test",
        "unknown significance test",
        "config",
    ),
    "toml_table_where_list_expected": Case(
        write("domainfit.toml", b"[bench]\ndepth = 10\n\n[bench.metrics]\nndcg = 10\n"),
        "domainfit.toml",
        4,
        "bench.metrics",
        "valid list, got a table",
        "config",
    ),
    "toml_section_not_a_table": Case(
        write("domainfit.toml", b'bench = "fast"\n'), "domainfit.toml", 1, "bench", "must be a table", "config"
    ),
    "toml_split_is_a_path": Case(
        write("domainfit.toml", b'[bench]\nsplit = "../test"\n'),
        "domainfit.toml",
        2,
        "bench.split",
        "not a path",
        "config",
    ),
    "toml_out_of_range": Case(
        write("domainfit.toml", b"[data]\nmax_line_mib = 0\n"),
        "domainfit.toml",
        2,
        "data.max_line_mib",
        "greater than or equal to 1",
        "config",
    ),
}


def prepare(case: Case, tmp_path: Path) -> tuple[list[str], Path, Path]:
    """Build the folder, apply the defect, pre-populate the workspace; return (argv, data, workspace)."""
    data = make_beir(tmp_path / "data")
    case.defect(data)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "keep.txt").write_text("written before the run\n")
    if case.command == "validate":
        argv = ["validate", str(data / case.file)]
    else:
        argv = ["bench", str(data), "--workspace", str(ws)]
        if case.command == "config":
            argv += ["--config", str(data / "domainfit.toml")]
    return argv, data, ws


# ---------------------------------------------------------------- tests


def test_table_is_large_enough():
    assert len(CASES) >= 24


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(name, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)  # a stray relative write would land in the snapshot
    argv, data, _ws = prepare(case, tmp_path)
    before = snapshot(tmp_path)

    result = runner.invoke(app, argv)

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected_prefix(data / case.file, case.line, case.field)), lines[0]
    where = f"{case.file.rsplit('/', 1)[-1]}:{case.line}:" if case.line else f"{case.file.rsplit('/', 1)[-1]}:"
    assert where in lines[0] and f" {case.field}: " in lines[0]
    assert case.fragment in lines[0]
    # workspace (with its pre-existing file) and inputs are byte-for-byte unchanged, nothing new appeared
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["duplicate_doc_id", "qrels_invalid_utf8"])
def test_bad_input_from_the_installed_script(name, tmp_path):
    script = Path(sys.executable).with_name("domainfit")
    case = CASES[name]
    argv, data, _ws = prepare(case, tmp_path)
    before = snapshot(tmp_path)
    env = {**os.environ, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(expected_prefix(data / case.file, case.line, case.field))
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- tolerated inputs


def bom_files(root: Path) -> None:
    for rel in (C, Q, T):
        (root / rel).write_bytes(BOM + (root / rel).read_bytes())


def crlf_everywhere(root: Path) -> None:
    for rel in (C, Q, T):
        (root / rel).write_bytes((root / rel).read_bytes().replace(b"\n", b"\r\n"))


def blank_trailing_lines(root: Path) -> None:
    for rel in (C, Q, T):
        append(root / rel, b"\n \n\t")


def no_final_newline(root: Path) -> None:
    for rel in (C, Q, T):
        (root / rel).write_bytes((root / rel).read_bytes().rstrip(b"\n"))


def everything_at_once(root: Path) -> None:
    for rel in (C, Q, T):
        (root / rel).write_bytes(BOM + (root / rel).read_bytes().replace(b"\n", b"\r\n") + b"\r\n\r\n")


def blank_line_inside(root: Path) -> None:
    set_line(root / C, 2, jsonl(CORPUS[1:2]) + b"  ")


TOLERATED = {
    "bom_at_start": bom_files,
    "crlf_everywhere": crlf_everywhere,
    "blank_trailing_lines": blank_trailing_lines,
    "no_final_newline": no_final_newline,
    "blank_line_inside": blank_line_inside,
    "bom_crlf_and_blank_lines": everything_at_once,
}


@pytest.mark.parametrize("name", list(TOLERATED))
def test_tolerated_variants_validate_and_load_cleanly(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_beir(tmp_path / "data")
    TOLERATED[name](data)
    before = snapshot(tmp_path)

    result = runner.invoke(app, ["validate", str(data)])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == OK_LINE
    assert result.stderr == ""
    assert snapshot(tmp_path) == before
    dataset = load_beir(data)
    assert list(dataset.corpus) == ["d1", "d2", "d3", "d4"]  # no BOM or \r glued to ids
    assert [d.text for d in dataset.corpus.values()] == [r["text"] for r in CORPUS]
    assert [q.text for q in dataset.queries.values()] == [r["text"] for r in QUERIES]
    assert dataset.qrels == {"test": {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 2}}}


def test_extra_fields_kept_and_nested_metadata_flattened(tmp_path):
    data = make_beir(tmp_path / "data")
    corpus = [
        {**CORPUS[0], "url": "https://kb/1", "lang": "en"},
        {**CORPUS[1], "metadata": {"url": "https://kb/2", "tags": ["billing"]}, "lang": "de"},
        {"_id": "d3", "title": "Title only", "text": ""},  # empty text is fine when the title is not
        CORPUS[3],
    ]
    queries = [{**QUERIES[0], "metadata": {"slice": "errors"}}, {**QUERIES[1], "family": 7}, QUERIES[2]]
    (data / C).write_bytes(jsonl(corpus))
    (data / Q).write_bytes(jsonl(queries))

    result = runner.invoke(app, ["validate", str(data)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == OK_LINE

    dataset = load_beir(data)
    assert dataset.corpus["d1"].metadata == {"url": "https://kb/1", "lang": "en"}
    assert dataset.corpus["d2"].metadata == {"url": "https://kb/2", "tags": ["billing"], "lang": "de"}
    assert dataset.corpus["d3"].metadata == {} and dataset.corpus["d3"].full_text() == "Title only\n"
    assert dataset.corpus["d4"].title == "" and dataset.corpus["d4"].metadata == {}
    assert dataset.queries["q1"].metadata == {"family": "auth", "slice": "errors"}
    assert dataset.queries["q2"].metadata == {"family": 7}


def test_max_line_bytes_is_inclusive_of_the_newline(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"a" * 99 + b"\n" + b"b" * 100 + b"\n")
    lines = iter_lines(path, max_line_bytes=100)
    assert next(lines) == (1, "a" * 99)
    with pytest.raises(InputError) as info:
        next(lines)
    assert (info.value.line, info.value.field) == (2, "-")
    assert MAX_LINE_BYTES == 8 * 1024 * 1024


def test_bom_only_stripped_on_first_line(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(BOM + b"x\r\n" + b"y\n")
    assert list(iter_lines(path)) == [(1, "x"), (2, "y")]
