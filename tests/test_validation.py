"""Everything is validated when a command starts, before any model is loaded.

Ids (corpus, queries, qrels, click logs) must be one token every writer can
carry: no whitespace of any kind, no control or invisible character, no lone
surrogate. Text read from JSON must be valid Unicode. The evaluated split
must have judged queries. ``domainfit.toml`` must be consistent across
sections (metrics named in one section are computed by the section that
produces them; tests, losses, splits are known). Each problem is one
``file:line: field: message`` line, exit 2, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import Config, load_config, validate_config
from domainfit.core.errors import InputError
from domainfit.core.models import resolve_model
from domainfit.core.types import Document, Query
from domainfit.data.beir import BeirDataset, load_beir, read_qrels, write_beir
from domainfit.data.checks import check_id, id_problem, split_name_problem, surrogate_problem
from domainfit.data.jsonl import iter_jsonl
from domainfit.data.judged import check_evaluated_split
from domainfit.data.pairs import pairs_from_records, read_pairs
from domainfit.evaluation.trec import read_trec_run
from domainfit.synth.clicks import read_click_log

runner = CliRunner(env={"NO_COLOR": "1"})

CORPUS = [
    {"_id": "d1", "title": "Login errors", "text": "Login fails with ERR_AUTH_702 when the session token expired."},
    {"_id": "d2", "title": "Invoices", "text": "Invoices can be downloaded as PDF files from the billing page."},
    {"_id": "d3", "text": "Uploads fail with QUOTA_409 once a bucket exceeds its quota."},
    {"_id": "d4", "text": "Open TCP port 443 in the firewall to allow HTTPS traffic."},
]
QUERIES = [
    {"_id": "q1", "text": "token expired"},
    {"_id": "q2", "text": "download invoice pdf"},
    {"_id": "q3", "text": "bucket quota exceeded"},
]
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 2)]
HEADER = "query-id\tcorpus-id\tscore\n"

#: Characters no id may hold: every kind of whitespace, controls, invisible format characters, a noncharacter.
BAD_ID_CHARS = {
    "space": " ",
    "tab": "\t",
    "newline": "\n",
    "carriage return": "\r",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "file separator": "\x1c",
    "unit separator": "\x1f",
    "next line": "\x85",
    "no-break space": "\xa0",
    "ogham space": "\u1680",
    "en quad": "\u2000",
    "em space": "\u2003",
    "thin space": "\u2009",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "narrow no-break space": "\u202f",
    "ideographic space": "\u3000",
    "nul": "\x00",
    "bell": "\x07",
    "escape": "\x1b",
    "delete": "\x7f",
    "c1 control": "\x9b",
    "zero width space": "\u200b",
    "zero width joiner": "\u200d",
    "right-to-left override": "\u202e",
    "byte-order mark": "\ufeff",
    "noncharacter": "\uffff",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
}
GOOD_IDS = ["d-1", "doc_2.v3", "caf\u00e9", "\u6587\u66f81", "d\U0001f600", "a/b:c#d", "x" * 300]


def jsonl(records: list) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def qrels_tsv(rows: list) -> bytes:
    return (HEADER + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)).encode()


def make_beir(root: Path, corpus: list = CORPUS, queries: list = QUERIES, qrels: list = QRELS) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_bytes(jsonl(corpus))
    (root / "queries.jsonl").write_bytes(jsonl(queries))
    (root / "qrels" / "test.tsv").write_bytes(qrels_tsv(qrels))
    return root


def snapshot(root: Path) -> dict[str, str | None]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def assert_one_error_line(result, prefix: str, *fragments: str) -> str:
    """Exit 2, nothing on stdout, exactly one ``error: <prefix>...`` line, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: {prefix}"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def no_models(monkeypatch):
    """Fail the test if any bi-encoder or cross-encoder is constructed."""
    import sentence_transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were validated")

    monkeypatch.setattr(sentence_transformers.SentenceTransformer, "__init__", refuse)
    monkeypatch.setattr(sentence_transformers.CrossEncoder, "__init__", refuse)


def escaped(char: str) -> str:
    """The JSON escape of one character (how a surrogate or control character reaches a JSONL file)."""
    return f"\\u{ord(char):04x}"


# ---------------------------------------------------------------- ids


def test_the_no_models_guard_works(tmp_path, no_models):
    result = runner.invoke(app, ["bench", str(make_beir(tmp_path / "data")), "-w", str(tmp_path / "ws")])
    assert result.exit_code != 0 and result.exit_code != 2
    assert "before the inputs were validated" in result.stderr + str(result.exception)


@pytest.mark.parametrize("name", list(BAD_ID_CHARS))
def test_id_problem_names_every_bad_character(name):
    char = BAD_ID_CHARS[name]
    for value in (f"d{char}1", f"{char}d1", f"d1{char}", char):
        problem = id_problem(value)
        assert problem is not None and problem.startswith("contains "), (name, value)
        assert f"U+{ord(char):04X}" in problem
    with pytest.raises(InputError) as info:
        check_id(f"d{char}1", "corpus.jsonl", 7, "_id")
    assert (info.value.line, info.value.field) == (7, "_id")


@pytest.mark.parametrize("value", GOOD_IDS)
def test_valid_unicode_ids_pass(value):
    assert id_problem(value) is None


def test_empty_id_is_a_problem():
    assert id_problem("") == "is empty"


@pytest.mark.parametrize("where", ["corpus", "queries"])
@pytest.mark.parametrize("name", list(BAD_ID_CHARS))
def test_bad_ids_in_jsonl_are_refused_by_validate(tmp_path, monkeypatch, where, name):
    monkeypatch.chdir(tmp_path)
    data = make_beir(tmp_path / "data")
    bad = f"x{escaped(BAD_ID_CHARS[name])}2"
    file = data / f"{where}.jsonl"
    lines = file.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"d2"' if where == "corpus" else b'"q2"', f'"{bad}"'.encode())
    file.write_bytes(b"\n".join(lines) + b"\n")
    before = snapshot(tmp_path)

    result = runner.invoke(app, ["validate", str(data)])

    assert_one_error_line(result, f"{file}:2: _id: ")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("column", ["query-id", "corpus-id"])
@pytest.mark.parametrize(
    "name",  # a tab splits the cell, a newline the row; a lone surrogate cannot be written as UTF-8 at all
    [n for n in BAD_ID_CHARS if n not in ("tab", "newline", "carriage return") and "surrogate" not in n],
)
def test_bad_ids_in_qrels_are_refused(tmp_path, column, name):
    char = BAD_ID_CHARS[name]
    data = make_beir(tmp_path / "data")
    row = ["q2", "d2", "1"]
    row[0 if column == "query-id" else 1] = f"x{char}2"
    rows = (data / "qrels" / "test.tsv").read_text().splitlines()
    rows[2] = "\t".join(row)
    (data / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(data)])
    assert_one_error_line(result, f"{data / 'qrels' / 'test.tsv'}:3: {column}: ", "contains")


def test_doc_id_with_a_space_fails_bench_at_load_not_at_the_trec_writer(tmp_path, no_models):
    """The reported bug: "doc 2" passed validate, then crashed bench's TREC writer after all the encoding."""
    corpus = [*CORPUS[:1], {"_id": "doc 2", "text": CORPUS[1]["text"]}, *CORPUS[2:]]
    data = make_beir(tmp_path / "data", corpus=corpus, qrels=[("q1", "d1", 1), ("q2", "doc 2", 1)])
    ws = tmp_path / "ws"

    checked = runner.invoke(app, ["validate", str(data)])
    assert_one_error_line(checked, f"{data / 'corpus.jsonl'}:2: _id: ", "whitespace", "'doc 2'")
    result = runner.invoke(app, ["bench", str(data), "--workspace", str(ws)])
    assert_one_error_line(result, f"{data / 'corpus.jsonl'}:2: _id: ", "whitespace")
    assert not (ws / "bench").exists()


def test_click_log_ids_are_checked_with_their_line(tmp_path):
    log = tmp_path / "clicks.jsonl"
    log.write_text(
        '{"query": "token", "shown": ["d1", "d2"], "clicked": ["d1"]}\n'
        '{"query": "invoice", "shown": ["d1", "d\\u00a02"], "clicked": []}\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        read_click_log(log, {"d1", "d2"})
    assert (info.value.line, info.value.field) == (2, "shown") and "NO-BREAK SPACE" in info.value.message
    log.write_text('{"query": "x\\ud800", "shown": ["d1"], "clicked": ["d1"]}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_click_log(log, {"d1"})
    assert (info.value.line, info.value.field) == (1, "query") and "surrogate" in info.value.message


def test_valid_unicode_ids_reach_the_trec_run_files(tmp_path):
    """Non-ASCII ids are not whitespace: they load, rank and are written to the runs exactly."""
    ids = ["caf\u00e9", "\u6587\u66f8-2", "d\U0001f600", "d4"]
    corpus = [{**doc, "_id": ident} for doc, ident in zip(CORPUS, ids, strict=True)]
    queries = [{**q, "_id": f"\u554f{n}"} for n, q in enumerate(QUERIES, start=1)]
    qrels = [(queries[i]["_id"], ids[i], 1) for i in range(3)]
    data = make_beir(tmp_path / "data", corpus=corpus, queries=queries, qrels=qrels)
    config = tmp_path / "domainfit.toml"
    config.write_text('[bench]\ntune_split = "none"\nhybrid = false\nmax_seq_length = 32\n', encoding="utf-8")
    result = runner.invoke(app, ["bench", str(data), "-w", str(tmp_path / "ws"), "-c", str(config), "-q"])
    assert result.exit_code == 0, result.output
    run = read_trec_run(tmp_path / "ws" / "bench" / "runs" / "dense.trec")
    assert set(run) == {q["_id"] for q in queries} and set(run[queries[0]["_id"]]) <= set(ids)
    metrics = json.loads((tmp_path / "ws" / "bench" / "per_query.json").read_text(encoding="utf-8"))
    assert set(metrics["dense"]["ndcg@10"]) == set(run)


# ---------------------------------------------------------------- Unicode of every text field


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"_id": "d1", "text": "\ud800"}, "text"),
        ({"_id": "d1", "title": "ok", "text": "a\udc80b"}, "text"),
        ({"_id": "d1", "title": "\udbff", "text": "t"}, "title"),
        ({"_id": "d1", "text": "t", "url": "https://x/\udc00"}, "url"),
        ({"_id": "d1", "text": "t", "metadata": {"tags": ["ok", "\ud834"]}}, "metadata.tags.1"),
        ({"_id": "d1", "text": "t", "\udc80key": 1}, "\\udc80key"),
        ({"_id": "d1", "text": "\udc00\ud800"}, "text"),  # a pair in the wrong order is two lone surrogates
    ],
)
def test_lone_surrogates_anywhere_in_a_record_are_refused(tmp_path, record, field):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "d0", "text": "fine \\ud83d\\ude00"}\n' + json.dumps(record).encode() + b"\n")
    lines = iter_jsonl(path)
    assert next(lines)[1]["text"] == "fine \U0001f600"  # a proper pair is one character
    with pytest.raises(InputError) as info:
        next(lines)
    assert (info.value.line, info.value.field) == (2, field)
    assert "lone surrogate" in info.value.message


def test_surrogate_problem_scans_nested_values():
    assert surrogate_problem({"a": ["x", {"b": "y"}]}) is None
    assert surrogate_problem({"a": ["x", {"b": "\ud800"}]}) == (
        "a.1.b",
        "invalid Unicode: lone surrogate U+D800 (a \\ud800 escape without its pair) at character 1",
    )


def test_pair_files_and_rows_refuse_lone_surrogates(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"query": "a", "positive": "b"}\n{"query": "q", "positive": "p\\udfff"}\n')
    result = runner.invoke(app, ["validate", str(path)])
    assert_one_error_line(result, f"{path}:2: positive: ", "lone surrogate")
    with pytest.raises(InputError) as info:
        pairs_from_records([{"anchor": "a\ud800", "positive": "b"}], "rows")
    assert (info.value.line, info.value.field) == (1, "anchor")
    fine = tmp_path / "fine.jsonl"
    fine.write_bytes(b'{"query": "caf\\u00e9 \\ud83d\\ude00", "positive": "b"}\n')
    assert read_pairs(fine)[0].query == "caf\u00e9 \U0001f600"


def test_json_that_python_cannot_represent_is_one_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    for line in (
        b'{"_id": "d1", "n": ' + b"7" * 5000 + b"}",
        b'{"_id": "d1", "n": ' + b"[" * 50000 + b"]" * 50000 + b"}",
    ):
        path.write_bytes(line + b"\n")
        with pytest.raises(InputError) as info:
            list(iter_jsonl(path))
        assert (info.value.line, info.value.field) == (1, "-") and "invalid JSON" in info.value.message


# ---------------------------------------------------------------- qrels and the evaluated split


@pytest.mark.parametrize(
    ("content", "field", "fragment"),
    [
        (HEADER, "-", "no judgements"),
        (HEADER + "\n\n", "-", "no judgements"),
        (HEADER + "q1\td1\t0\nq2\td2\t0\n", "score", "grade > 0"),
        (HEADER + "q1\td1\t-1\nq2\td2\t-2\n", "score", "grade > 0"),
    ],
)
def test_qrels_that_judge_no_query_are_refused_at_load(tmp_path, content, field, fragment):
    path = tmp_path / "test.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_qrels(path, {"q1", "q2"}, {"d1", "d2"})
    assert (info.value.path, info.value.line, info.value.field) == (path, 0, field)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("grade", "ok"),
    [
        ("3", True),
        ("-2", True),
        ("2147483647", True),
        ("2147483648", False),
        ("-2147483648", False),
        ("9" * 5000, False),
    ],
)
def test_grades_must_fit_32_bits(tmp_path, grade, ok):
    path = tmp_path / "test.tsv"
    path.write_text(f"{HEADER}q1\td1\t1\nq2\td2\t{grade}\n", encoding="utf-8")
    if ok:
        assert read_qrels(path, {"q1", "q2"}, {"d1", "d2"})["q2"]["d2"] == int(grade)
        return
    with pytest.raises(InputError) as info:
        read_qrels(path, {"q1", "q2"}, {"d1", "d2"})
    assert (info.value.line, info.value.field) == (3, "score") and "out of range" in info.value.message


def test_check_evaluated_split():
    corpus = {"d1": Document("d1", "t")}
    queries = {"q1": Query("q1", "t")}
    dataset = BeirDataset(corpus, queries, {"test": {"q1": {"d1": 1}}, "dev": {}, "x": {"q9": {"d1": 1}}})
    assert check_evaluated_split(dataset, "test") == {"q1": {"d1": 1}}
    with pytest.raises(InputError) as info:
        check_evaluated_split(dataset, "train", Path("data/qrels"))
    assert str(info.value) == "data/qrels: split: no qrels/train.tsv (available: dev, test, x)"
    with pytest.raises(InputError) as info:
        check_evaluated_split(dataset, "dev", Path("data/qrels"), "eval.split")
    assert str(info.value).startswith("data/qrels/dev.tsv: eval.split: split 'dev' has no judged query (no judgements)")
    with pytest.raises(InputError, match=r"no judgement with grade > 0 for a query of queries\.jsonl"):
        check_evaluated_split(dataset, "x")


def test_write_beir_leaves_out_empty_splits(tmp_path):
    dataset = load_beir(make_beir(tmp_path / "data"))
    dataset.qrels["dev"] = {}
    out = write_beir(dataset, tmp_path / "out")
    assert not (out / "qrels" / "dev.tsv").exists()
    assert load_beir(out).qrels == {"test": dataset.qrels["test"]}


def _empty_split(root: Path) -> None:
    (root / "qrels" / "test.tsv").write_text(HEADER, encoding="utf-8")


def _no_relevant(root: Path) -> None:
    (root / "qrels" / "test.tsv").write_bytes(qrels_tsv([(q, d, 0) for q, d, _ in QRELS]))


@pytest.mark.parametrize("defect", [_empty_split, _no_relevant])
@pytest.mark.parametrize("command", ["validate", "bench", "eval", "compress", "calibrate", "run"])
def test_a_split_with_no_judged_query_stops_every_command_before_any_model(
    tmp_path, monkeypatch, no_models, defect, command
):
    """The reported bug: a header-only (or all-zero) test.tsv passed validate and crashed bench with a traceback."""
    monkeypatch.chdir(tmp_path)
    data = make_beir(tmp_path / "data")
    defect(data)
    ws = tmp_path / "ws"
    argv = {
        "validate": ["validate", str(data)],
        "eval": ["eval", str(data), "-w", str(ws), "--model", str(resolve_model("all-MiniLM-L6-v2").path)],
        "calibrate": ["calibrate", str(data), "-w", str(ws), "--split", "test"],
    }.get(command, [command, str(data), "-w", str(ws)])
    before = snapshot(tmp_path)

    result = runner.invoke(app, argv)

    field = "-" if defect is _empty_split else "score"
    assert_one_error_line(result, f"{data / 'qrels' / 'test.tsv'}: {field}: ", "judges no query")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["bench", "compress", "cost", "run"])
def test_a_bad_corpus_stops_every_command_before_any_model(tmp_path, monkeypatch, no_models, command):
    monkeypatch.chdir(tmp_path)
    data = make_beir(tmp_path / "data")
    lines = (data / "corpus.jsonl").read_bytes().splitlines()
    lines[2] = b'{"_id": "d\\u200b3", "text": "t"}'
    (data / "corpus.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    argv = [command, str(data), "-w", str(tmp_path / "ws")]
    if command == "cost":
        argv += ["--vectors", "1000", "--docs-per-second", "100"]
    before = snapshot(tmp_path)

    result = runner.invoke(app, argv)

    assert_one_error_line(result, f"{data / 'corpus.jsonl'}:3: _id: ", "ZERO WIDTH SPACE")
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- domainfit.toml cross-references


CONFIG_CASES = {
    "bench primary not in metrics": (
        '[bench]\nmetrics = ["recall@100"]\nprimary_metric = "ndcg@10"\n',
        3,
        "bench.primary_metric",
    ),
    "bench metrics lack the default primary": ('[bench]\nmetrics = ["recall@100"]\n', 2, "bench.metrics"),
    "eval primary not in metrics": ('[eval]\n\nprimary_metric = "mrr@5"\n', 3, "eval.primary_metric"),
    "decide metric not in bench": ('[decide]\nmetric = "precision@5"\n', 2, "decide.metric"),
    "decide metric not in eval": (
        '[bench]\nmetrics = ["ndcg@10", "recall@10"]\n[decide]\nmetric = "recall@10"\n',
        4,
        "decide.metric",
    ),
    "eval metrics lack the decide default": (
        '[eval]\nmetrics = ["recall@100"]\nprimary_metric = "recall@100"\n',
        2,
        "eval.metrics",
    ),
    "compress primary not in metrics": (
        '[compress]\nmetrics = ["recall@100"]\nprimary_metric = "ndcg@10"\n',
        3,
        "compress.primary_metric",
    ),
    "metric without cutoff": ('[bench]\nmetrics = ["ndcg@10", "recall"]\n', 2, "bench.metrics"),
    "metric with zero cutoff": ('[eval]\nmetrics = ["ndcg@10", "mrr@0"]\n', 2, "eval.metrics"),
    "no metric": ("[bench]\nmetrics = []\n", 2, "bench.metrics"),
    "unknown bench test": ('[bench]\nsignificance_test = "wilcoxon"\n', 2, "bench.significance_test"),
    "unknown eval test": ('[eval]\nsignificance_test = "t-test"\n', 2, "eval.significance_test"),
    "unknown loss": ('[train]\nloss = "infonce"\n', 2, "train.loss"),
    "split with a slash": ('[eval]\nsplit = "qrels/test"\n', 2, "eval.split"),
    "split with a space": ('[bench]\ntune_split = "my dev"\n', 2, "bench.tune_split"),
    "train split is a path": ('[train]\neval_split = "../dev"\n', 2, "train.eval_split"),
    "calibrate split empty": ('[calibrate]\nsplit = ""\n', 2, "calibrate.split"),
    "calibrate configuration": (
        '[calibrate]\nconfigurations = ["full/float32", "pca-12/int8"]\n',
        2,
        "calibrate.configurations",
    ),
    "bench models collide": ('[bench]\nmodels = ["./a/model", "./b/model"]\n', 2, "bench.models"),
    "table where a list is expected": ("[bench]\ndepth = 5\n[bench.metrics]\nndcg = 10\n", 3, "bench.metrics"),
    "inline table where a list is expected": ("[eval]\nmetrics = { ndcg = 10 }\n", 2, "eval.metrics"),
    "list where a table is expected": ('[[bench]]\nsplit = "test"\n', 1, "bench"),
    "string where a table is expected": ('decide = "yes"\n', 1, "decide"),
    "table where a string is expected": ("[bench]\n[bench.split]\nname = 1\n", 2, "bench.split"),
    "dotted key of the wrong shape": ("[bench]\nsimilarity.facets = 3\n", 2, "bench.similarity.facets"),
    "quoted key": ('[bench]\n"depth" = "deep"\n', 2, "bench.depth"),
    "second array table": ("[[compress.pq]]\nm = 8\n[[compress.pq]]\nm = 0\n", 4, "compress.pq.1.m"),
    "model-level error names its key": ("[chunking]\nsize = 16\noverlap = 16\n", 3, "chunking.overlap"),
}


@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_config_problems_name_file_line_and_key(tmp_path, name):
    text, line, field = CONFIG_CASES[name]
    path = tmp_path / "domainfit.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert (info.value.line, info.value.field) == (line, field), str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: {field}: ")
    assert "Value error" not in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("name", ["decide metric not in bench", "table where a list is expected", "unknown loss"])
@pytest.mark.parametrize("command", ["bench", "eval", "train", "compress", "decide", "run"])
def test_config_problems_stop_every_command_before_any_model(tmp_path, monkeypatch, no_models, name, command):
    monkeypatch.chdir(tmp_path)
    text, line, field = CONFIG_CASES[name]
    data = make_beir(tmp_path / "data")
    config = tmp_path / "domainfit.toml"
    config.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)

    result = runner.invoke(app, [command, str(data), "-w", str(tmp_path / "ws"), "-c", str(config)])

    assert_one_error_line(result, f"{config}:{line}: {field}: ")
    assert snapshot(tmp_path) == before


def test_consistent_configs_load():
    assert load_config(Path(__file__).parents[1] / "src" / "domainfit" / "demo.toml").bench.split == "test"
    cfg = Config.model_validate(
        {
            "bench": {"metrics": ["recall@100", "mrr@10"], "primary_metric": "recall@100"},
            "eval": {"metrics": ["recall@100"], "primary_metric": "recall@100"},
            "decide": {"metric": "recall@100"},
        }
    )
    assert validate_config(cfg) is cfg
    assert load_config(None, {"bench": {"models": ["a/model", "b/other"]}}).bench.models == ["a/model", "b/other"]


def test_cross_reference_problem_from_options_has_no_line():
    with pytest.raises(InputError) as info:
        load_config(None, {"decide": {"metric": "map@5"}})
    assert str(info.value).startswith("<options>: decide.metric: 'map@5' is not computed by [bench]")


def test_an_option_for_a_section_that_is_not_a_table_is_one_line(tmp_path):
    path = tmp_path / "domainfit.toml"
    path.write_text('bench = "fast"\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path, {"bench": {"split": "dev"}})
    assert (info.value.line, info.value.field) == (1, "bench") and "must be a table" in info.value.message


def test_a_config_path_that_is_a_folder_is_one_line(tmp_path):
    with pytest.raises(InputError) as info:
        load_config(tmp_path)
    assert info.value.field == "-" and "cannot read" in info.value.message


def test_split_name_problem():
    assert split_name_problem("test") is None and split_name_problem("dev-2024") is None
    for bad in ("", ".", "..", "a/b", "a\\b", "test.tsv", "my split", "t\x00"):
        assert split_name_problem(bad) is not None, bad


# ---------------------------------------------------------------- inputs of later stages, checked first


def test_decide_refuses_a_metric_the_bench_run_did_not_compute(tmp_path, no_models):
    from domainfit.core.workspace import Workspace

    data = make_beir(tmp_path / "data")
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    bench = ws.stage_dir("bench")
    bench.mkdir(parents=True)
    systems = [{"name": "bm25", "kind": "lexical", "metrics": {"ndcg@10": 0.5}, "config": {}}]
    (bench / "metrics.json").write_text(json.dumps({"systems": systems}), encoding="utf-8")
    config = tmp_path / "domainfit.toml"
    config.write_text(
        '[bench]\nmetrics = ["ndcg@10", "mrr@10"]\n[eval]\nmetrics = ["ndcg@10", "mrr@10"]\n'
        '[decide]\nmetric = "mrr@10"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["decide", str(data), "-w", str(ws.root), "-c", str(config), "--when", "before"])
    assert_one_error_line(result, f"{bench / 'metrics.json'}: metrics: ", "'mrr@10' was not computed")
    assert not ws.stage_dir("decide").exists()


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ('[eval]\nsplit = "validation"\n', "eval.split: no qrels/validation.tsv (available: test)"),
        ('[compress]\nsplit = "dev"\n', "compress.split: no qrels/dev.tsv"),
        ('[eval]\ngeneral = "GENERAL"\n', "positive: missing"),
        ('[train]\ngeneral_pairs = "GENERAL"\n', "positive: missing"),
        ('[synth.clicks]\npath = "CLICKS"\n', "unknown document 'd9'"),
    ],
)
def test_run_checks_the_inputs_of_every_stage_first(tmp_path, monkeypatch, no_models, setting, fragment):
    """`run` used to find a bad eval split or general set only after bench, synth, mine and train."""
    monkeypatch.chdir(tmp_path)
    data = make_beir(tmp_path / "data")
    (tmp_path / "general.jsonl").write_text('{"query": "a", "positive": "b"}\n{"query": "c"}\n', encoding="utf-8")
    (tmp_path / "clicks.jsonl").write_text('{"query": "a", "shown": ["d9"], "clicked": []}\n', encoding="utf-8")
    config = tmp_path / "domainfit.toml"
    text = setting.replace("GENERAL", str(tmp_path / "general.jsonl")).replace("CLICKS", str(tmp_path / "clicks.jsonl"))
    config.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)

    result = runner.invoke(app, ["run", str(data), "-w", str(tmp_path / "ws"), "-c", str(config)])

    line = assert_one_error_line(result, "")
    assert fragment in line, line
    assert snapshot(tmp_path) == before


def test_eval_checks_its_general_set_before_any_model(tmp_path, monkeypatch, no_models):
    monkeypatch.chdir(tmp_path)
    data = make_beir(tmp_path / "data")
    general = tmp_path / "general.jsonl"
    general.write_text('{"query": "a", "positive": "b\\udc80"}\n', encoding="utf-8")
    model = str(resolve_model("all-MiniLM-L6-v2").path)
    before = snapshot(tmp_path)
    result = runner.invoke(
        app, ["eval", str(data), "-w", str(tmp_path / "ws"), "--model", model, "--general", str(general)]
    )
    assert_one_error_line(result, f"{general}:1: positive: ", "lone surrogate")
    assert snapshot(tmp_path) == before
