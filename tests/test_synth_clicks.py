"""Click logs: validation with file:line:field errors, skip-above negatives, thresholds, session de-duplication."""

from __future__ import annotations

import json

import pytest

from domainfit.core.errors import InputError
from domainfit.synth.clicks import click_pairs, read_click_log

KNOWN = {"a", "b", "c", "d", "e"}


def write_log(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def pairs_of(tmp_path, records, **options):
    impressions = read_click_log(write_log(tmp_path / "clicks.jsonl", records), KNOWN)
    pairs, stats = click_pairs(impressions, **options)
    return {(p.text, p.doc_id): p for p in pairs}, stats


def test_skip_above_negatives_are_the_unclicked_documents_shown_above_each_click(tmp_path):
    pairs, stats = pairs_of(
        tmp_path,
        [
            {"query": "sso setup", "shown": ["a", "b", "c", "d"], "clicked": ["c"]},
            {"query": "vat number", "shown": ["a", "b", "c", "d", "e"], "clicked": ["b", "d"]},
        ],
    )
    assert pairs[("sso setup", "c")].negatives == ["a", "b"]
    assert pairs[("vat number", "b")].negatives == ["a"]
    assert pairs[("vat number", "d")].negatives == ["a", "c"]  # b was clicked, so it is no negative
    assert all(p.source == "clicks" and p.weight == 1.0 for p in pairs.values())
    assert stats.negatives == 5 and stats.kept_pairs == 3
    no_skips, _ = pairs_of(tmp_path, [{"query": "x", "shown": ["a", "b"], "clicked": ["b"]}], skip_above=False)
    assert no_skips[("x", "b")].negatives == []


def test_a_document_clicked_for_the_query_elsewhere_is_never_its_negative(tmp_path):
    pairs, _ = pairs_of(
        tmp_path,
        [
            {"query": "refund", "shown": ["a", "b", "c"], "clicked": ["c"], "session": "s1"},
            {"query": "refund", "shown": ["a", "b", "c"], "clicked": ["a"], "session": "s2"},
            {"query": "refund", "shown": ["b", "a", "c"], "clicked": ["c"], "session": "s3"},
        ],
    )
    assert pairs[("refund", "c")].negatives == ["b"]  # skipped twice; a was clicked in s2
    assert pairs[("refund", "c")].weight == 2.0


def test_min_clicks_threshold_counts_sessions(tmp_path):
    records = [
        {"query": "invoice pdf", "shown": ["a", "b"], "clicked": ["b"], "session": "s1"},
        {"query": "Invoice PDF", "shown": ["a", "b"], "clicked": ["b"], "session": "s2"},
        {"query": "invoice pdf", "shown": ["a", "b"], "clicked": ["a"], "session": "s3"},
    ]
    pairs, stats = pairs_of(tmp_path, records, min_clicks=2)
    assert list(pairs) == [("invoice pdf", "b")]  # the first spelling of the query is kept
    assert pairs[("invoice pdf", "b")].weight == 2.0
    assert (stats.pairs, stats.below_min_clicks, stats.kept_pairs) == (2, 1, 1)


def test_repeated_searches_in_one_session_count_once(tmp_path):
    records = [{"query": "reset 2fa", "shown": ["a", "b", "c"], "clicked": ["c"], "session": "s1"}] * 3
    records.append({"query": "reset 2FA", "shown": ["b", "c"], "clicked": ["c"], "session": "s1"})
    records.append({"query": "reset 2fa", "shown": ["a", "c"], "clicked": ["c"], "session": "s2"})
    records.append({"query": "reset 2fa", "shown": ["a", "c"], "clicked": ["c"]})  # no session: its own
    pairs, stats = pairs_of(tmp_path, records)
    assert pairs[("reset 2fa", "c")].weight == 3.0  # s1 once, s2 once, the session-less line once
    assert stats.merged_repeats == 3 and stats.impressions == 6 and stats.clicks == 6
    assert pairs[("reset 2fa", "c")].negatives == ["a", "b"]  # a skipped in 3 groups, b in 1


def test_min_dwell_ignores_short_clicks_but_keeps_unknown_dwell(tmp_path):
    records = [
        {"query": "q1", "shown": ["a", "b", "c"], "clicked": ["a", "c"], "dwell": {"a": 2, "c": 45.5}},
        {"query": "q2", "shown": ["a", "b"], "clicked": ["b"], "dwell": 3},
        {"query": "q3", "shown": ["a", "b"], "clicked": ["b"], "dwell": [30]},
        {"query": "q4", "shown": ["a", "b"], "clicked": ["b"]},
    ]
    pairs, stats = pairs_of(tmp_path, records, min_dwell=10)
    assert sorted(pairs) == [("q1", "c"), ("q3", "b"), ("q4", "b")]
    assert pairs[("q1", "c")].negatives == ["b"]  # a was clicked (briefly): not a skip
    assert stats.short_dwell_clicks == 2


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ('{"shown": ["a"], "clicked": []}', "query", "missing"),
        ('{"query": "  ", "shown": ["a"], "clicked": []}', "query", "is empty"),
        ('{"query": "x", "shown": "a", "clicked": []}', "shown", "must be a list of document ids"),
        ('{"query": "x", "shown": [], "clicked": []}', "shown", "is empty"),
        ('{"query": "x", "shown": ["a", "zz"], "clicked": []}', "shown", "unknown document 'zz'"),
        ('{"query": "x", "shown": ["a"]}', "clicked", "missing"),
        ('{"query": "x", "shown": ["a"], "clicked": ["zz"]}', "clicked", "unknown document 'zz'"),
        ('{"query": "x", "shown": ["a"], "clicked": ["b"]}', "clicked", "'b' was clicked but not shown"),
        ('{"query": "x", "shown": ["a"], "clicked": ["a"], "dwell": -1}', "dwell", "must be seconds"),
        ('{"query": "x", "shown": ["a"], "clicked": ["a"], "dwell": [1, 2]}', "dwell", "2 times for 1 clicks"),
        ('{"query": "x", "shown": ["a"], "clicked": ["a"], "dwell": {"b": 1}}', "dwell", "'b', which was not"),
        ('{"query": "x", "shown": ["a"], "clicked": [], "session": [1]}', "session", "string or a number"),
        ('{"query": "x", "shown": ["a"], "clicked": [], "timestamp": true}', "timestamp", "string or a number"),
        ('{"query": "x", "shown": ["a"], "clicked": [] ', "-", "invalid JSON"),
    ],
)
def test_bad_log_lines_raise_input_error_with_file_line_and_field(tmp_path, bad, field, message):
    good = {"query": "fine", "shown": ["a", "b"], "clicked": ["b"], "session": 7, "timestamp": 1714557600}
    path = write_log(tmp_path / "log.jsonl", [good, good, bad])
    with pytest.raises(InputError) as caught:
        read_click_log(path, KNOWN)
    error = caught.value
    assert (error.line, error.field) == (3, field)
    assert message in error.message
    assert str(error).startswith(f"{path}:3: {field}: ")


def test_an_empty_log_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no searches"):
        read_click_log(write_log(tmp_path / "log.jsonl", []), KNOWN)
