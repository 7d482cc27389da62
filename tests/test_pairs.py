"""Reading training pairs from JSONL, CSV/TSV files and saved Hugging Face datasets."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.core.errors import InputError
from domainfit.data.pairs import Pair, pairs_from_records, read_pairs

runner = CliRunner(env={"NO_COLOR": "1"})


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_jsonl_query_positive_negative_score(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "token expired", "positive": "refresh the token", "negative": "invoice pdf", "score": 0.9},
            {"query": "reset password", "positive": "open the account page", "score": 1},
            {"query": "vat number", "positive": "add a VAT number", "negative": "", "score": None},
        ],
    )
    assert read_pairs(path) == [
        Pair("token expired", "refresh the token", "invoice pdf", 0.9),
        Pair("reset password", "open the account page", None, 1.0),
        Pair("vat number", "add a VAT number", None, None),
    ]


def test_jsonl_anchor_positive_aliases(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"anchor": "bucket quota", "positive": "QUOTA_409 once a bucket is full"},
            {"anchor": "dns ttl", "pos": "records expire by TTL", "neg": "firewall 443", "label": "0.25"},
        ],
    )
    pairs = read_pairs(str(path))  # a str path works too
    assert pairs == [
        Pair("bucket quota", "QUOTA_409 once a bucket is full"),
        Pair("dns ttl", "records expire by TTL", "firewall 443", 0.25),
    ]


def test_jsonl_extra_fields_ignored(tmp_path):
    path = write_jsonl(tmp_path / "p.json", [{"query": "q", "positive": "p", "source": "synthetic", "id": 3}])
    assert read_pairs(path) == [Pair("q", "p")]


def test_csv_with_header_and_quoted_cells(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(
        'query,positive,negative,score\n"login, sso",Single sign-on uses SAML,refund policy,1\nq2,p2,,0.5\n',
        encoding="utf-8",
    )
    assert read_pairs(path) == [
        Pair("login, sso", "Single sign-on uses SAML", "refund policy", 1.0),
        Pair("q2", "p2", None, 0.5),
    ]


def test_tsv_with_header_and_aliases(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("anchor\tpos\tlabel\nq, with comma\tp1\t2\nq2\tp2\t\n", encoding="utf-8")
    assert read_pairs(path) == [Pair("q, with comma", "p1", None, 2.0), Pair("q2", "p2", None, None)]


def test_csv_bom_crlf_and_blank_lines_are_tolerated(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_bytes(b"\xef\xbb\xbfquery,positive\r\nq1,p1\r\n\r\nq2,p2\r\n\r\n")
    assert read_pairs(path) == [Pair("q1", "p1"), Pair("q2", "p2")]


def test_hf_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "hf"
    datasets.Dataset.from_dict(
        {
            "anchor": ["token expired", "invoice pdf"],
            "positive": ["refresh the token", "download from billing"],
            "negative": ["port 443", None],
            "score": [1.0, 0.5],
        }
    ).save_to_disk(str(folder))
    assert read_pairs(folder) == [
        Pair("token expired", "refresh the token", "port 443", 1.0),
        Pair("invoice pdf", "download from billing", None, 0.5),
    ]
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ok: 2 pairs"


def test_hf_dataset_dict_uses_train_split_and_reports_missing_one(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"query": ["q1"], "positive": ["p1"]}
    good, bad = tmp_path / "good", tmp_path / "bad"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(good))
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows)}).save_to_disk(str(bad))
    assert read_pairs(good) == [Pair("q1", "p1")]
    with pytest.raises(InputError) as info:
        read_pairs(bad)
    assert info.value.field == "-" and "split 'train' not in dataset (has: validation)" in str(info.value)


def test_hf_rows_are_validated_with_row_numbers():
    with pytest.raises(InputError) as info:
        pairs_from_records([{"query": "q", "positive": "p"}, {"query": "q", "positive": 5}], "hub/name")
    assert str(info.value).startswith("hub/name:2: positive: must be a string")
    with pytest.raises(InputError, match="no rows"):
        pairs_from_records([], "hub/name")


def test_validate_cli_counts_pairs(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"query": "q", "positive": "p"}] * 3)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: 3 pairs\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("pairs.jsonl", b"", "pairs.jsonl: -: no pairs in the file"),
        ("pairs.csv", b"query,positive\n", "pairs.csv: -: no pairs in the file"),
        ("pairs.csv", b"", "pairs.csv: -: empty file"),
        ("pairs.txt", b"query,positive\nq,p\n", "pairs.txt: -: unknown pair file type"),
        ("pairs.jsonl", b'{"positive": "p"}\n', "pairs.jsonl:1: query: missing (accepted names: query, anchor)"),
        ("pairs.jsonl", b'{"query": "q", "positive": "p", "neg": 3}\n', "pairs.jsonl:1: neg: must be a string"),
        ("pairs.csv", b"query,positive,score\nq,p,1e\n", "pairs.csv:2: score: must be a number"),
    ],
)
def test_bad_pair_files(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_pairs(path)
    assert expected in str(info.value)


def test_csv_quoted_cell_spanning_lines(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('query,positive,score\n"multi\nline",p,1\nq2,p2,0\n')
    pairs = read_pairs(path)
    assert [p.query for p in pairs] == ["multi\nline", "q2"]
