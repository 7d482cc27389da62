from __future__ import annotations

import math

import pytest

from domainfit.core.types import Query
from domainfit.evaluation.slices import (
    SliceRow,
    builtin_slices,
    has_identifier,
    is_identifier_token,
    length_bucket,
    slice_labels,
    slice_table,
)

IDENTIFIERS = [
    "ERR_AUTH_702",
    "snake_case_name",
    "__init__",
    "CamelCaseName",
    "camelCase",
    "getValue",
    "HTTPServer",
    "dotted.name",
    "os.path.join",
    "config.yaml",
    "foo.bar()",
    "len()",
    "print(x).",
    "v2.3.1",
    "v2",
    "3.11",
    "1.0.0-beta",
    "A12B",
    "12AB",
    "E1101",
    "0x1F",
    "sha256",
    "ISO-8601",
    "UTF-8",
    "COVID-19",
    "--flag",
    "--dry-run",
    "--top-k=10",
    "-v",
    "$HOME",
    "/etc/hosts",
    "~/.bashrc",
    # surrounding punctuation is ignored
    "`os.environ`",
    "(snake_case)",
    "'ERR_AUTH_702'?",
    "os.path.join,",
    "ERR_AUTH_702's",
]

PLAIN = [
    "Return",
    "the",
    "value",
    "Hello,",
    "don't",
    "What's",
    "e.g.",
    "i.e.",
    "U.S.",
    "Ph.D.",
    "PhD",
    "McDonald",
    "etc.",
    "a.b",
    "1st",
    "22nd",
    "1990s",
    "10mb",
    "9am",
    "720p",
    "3D",
    "5G",
    "2024",
    "404",
    "$5",
    "100%",
    "HTTP",
    "NASA",
    "URLs",
    "COVID",
    "well-known",
    "24-hour",
    "top-10",
    "e-mail",
    "T-shirt",
    "(optional)",
    "and/or",
    "-",
    "--",
    "_",
    "Mr.",
]


@pytest.mark.parametrize("token", IDENTIFIERS)
def test_identifier_tokens(token: str) -> None:
    assert is_identifier_token(token)


@pytest.mark.parametrize("token", PLAIN)
def test_plain_tokens(token: str) -> None:
    assert not is_identifier_token(token)


def test_identifier_in_queries() -> None:
    assert not has_identifier("Return the value")
    assert not has_identifier("How do I reset my password? (e.g. after 3 failed logins)")
    assert not has_identifier("What happened in the 1990s to the 2nd-largest U.S. bank?")
    assert has_identifier("How do I fix ERR_AUTH_702 on login?")
    assert has_identifier("what does os.path.join do")
    assert has_identifier("upgrade to Python 3.11")
    assert has_identifier("dates in ISO-8601 format")
    assert has_identifier("why does --dry-run still write files")
    assert not has_identifier("")


def test_length_buckets() -> None:
    assert length_bucket("") == "1-2"
    assert length_bucket("one") == "1-2"
    assert length_bucket("one two") == "1-2"
    assert length_bucket("one two three") == "3-5"
    assert length_bucket(" ".join(["w"] * 5)) == "3-5"
    assert length_bucket(" ".join(["w"] * 6)) == "6-10"
    assert length_bucket(" ".join(["w"] * 10)) == "6-10"
    assert length_bucket(" ".join(["w"] * 11)) == "11+"
    assert length_bucket("  tabs\tand\nnewlines  ") == "3-5"
    assert builtin_slices("Return the value") == {"length": "3-5", "identifier": "no"}


def _queries() -> dict[str, Query]:
    return {
        "q1": Query("q1", "fix ERR_AUTH_702", {"family": "auth", "lang": "en", "tags": ["a"]}),
        "q2": Query("q2", "how do I log in", {"family": "auth", "length": 5}),
        "q3": Query("q3", "Return the value of the config", {"family": None, "lang": "de"}),
        "q4": Query("q4", "billing", {}),
    }


def test_slice_labels_all_scalar_fields() -> None:
    labels = slice_labels(_queries(), None)
    assert labels["q1"] == {
        "length": "1-2",
        "identifier": "yes",
        "family": "auth",
        "lang": "en",
        "metadata.length": "(none)",
    }
    assert labels["q2"]["metadata.length"] == "5"
    assert labels["q2"]["length"] == "3-5"
    assert labels["q3"]["family"] == "(none)"
    assert labels["q4"]["lang"] == "(none)"
    assert "tags" not in labels["q1"]  # not scalar


def test_slice_labels_selected_fields() -> None:
    labels = slice_labels(_queries(), ["lang", "tags"])
    assert labels["q1"] == {"length": "1-2", "identifier": "yes", "lang": "en", "tags": '["a"]'}
    assert labels["q2"]["tags"] == "(none)"
    assert set(slice_labels(_queries(), [])["q3"]) == {"length", "identifier"}


def test_slice_table() -> None:
    scores = {
        "ndcg@10": {"q1": 1.0, "q2": 0.5, "q3": 0.0, "q5": 0.25},
        "map": {"q1": 0.5, "q2": 0.5, "q3": 0.5, "q5": 0.5},
    }
    labels = slice_labels(_queries(), ["family"])  # q4 labelled but not evaluated; q5 unlabelled
    rows = slice_table(scores, labels)
    assert rows[0] == SliceRow("all", "all", 4, {"ndcg@10": 0.4375, "map": 0.5})
    by_key = {(r.slice, r.value): r for r in rows}
    assert [(r.slice, r.value) for r in rows] == [
        ("all", "all"),
        ("length", "1-2"),
        ("length", "3-5"),
        ("length", "6-10"),
        ("length", "(none)"),
        ("identifier", "no"),
        ("identifier", "yes"),
        ("identifier", "(none)"),
        ("family", "auth"),
        ("family", "(none)"),
    ]
    assert by_key["family", "auth"].n_queries == 2
    assert by_key["family", "auth"].scores["ndcg@10"] == pytest.approx(0.75)
    # q3 has family None and q5 no labels at all
    assert by_key["family", "(none)"].n_queries == 2
    assert by_key["family", "(none)"].scores["ndcg@10"] == pytest.approx(0.125)
    for name in ("length", "identifier", "family"):
        assert sum(r.n_queries for r in rows if r.slice == name) == 4


def test_slice_table_edge_cases() -> None:
    (row,) = slice_table({"map": {}}, {})
    assert (row.slice, row.value, row.n_queries) == ("all", "all", 0)
    assert math.isnan(row.scores["map"])
    rows = slice_table({"map": {"a": 1.0}}, {})
    assert rows == [SliceRow("all", "all", 1, {"map": 1.0})]
