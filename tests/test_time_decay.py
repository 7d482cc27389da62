"""Time decay: the half-life halves the score, reorders by age, and undated documents are handled explicitly."""

import datetime as dt

import pytest

from domainfit.config import load_config
from domainfit.core.errors import InputError
from domainfit.core.types import Document, Query
from domainfit.retrieval.ranking import ranked_ids
from domainfit.retrieval.timedecay import (
    apply_time_decay,
    decay_factor,
    document_dates,
    parse_date,
    query_reference_times,
)

REF = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


def days_before(n: float) -> dt.datetime:
    return REF - dt.timedelta(days=n)


def test_factor_halves_at_each_half_life():
    assert decay_factor(0, 30) == 1.0
    assert decay_factor(30, 30) == pytest.approx(0.5)
    assert decay_factor(60, 30) == pytest.approx(0.25)
    assert decay_factor(-10, 30) == 1.0  # dated after the reference: no decay
    with pytest.raises(ValueError, match="half-life"):
        decay_factor(1, 0)


def test_multiplicative_decay_halves_the_score_at_age_h_and_reorders():
    run = {"q": {"old": 0.9, "new": 0.5, "mid": 0.8}}
    dates = {"old": days_before(200), "new": days_before(0), "mid": days_before(100)}
    decayed = apply_time_decay(run, dates, REF, half_life_days=100)
    assert decayed["q"]["mid"] == pytest.approx(0.4)  # age h: half
    assert decayed["q"]["old"] == pytest.approx(0.225)  # age 2h: a quarter
    assert decayed["q"]["new"] == pytest.approx(0.5)
    assert ranked_ids(run["q"]) == ["old", "mid", "new"]
    assert ranked_ids(decayed["q"]) == ["new", "mid", "old"]
    # a long half-life keeps the similarity order
    assert ranked_ids(apply_time_decay(run, dates, REF, half_life_days=100000)["q"]) == ["old", "mid", "new"]


def test_multiplicative_decay_never_raises_a_negative_score():
    decayed = apply_time_decay({"q": {"a": -0.2}}, {"a": days_before(365)}, REF, 30)
    assert decayed["q"]["a"] == 0.0


def test_additive_decay_breaks_near_ties_but_keeps_clear_winners():
    dates = {"old": days_before(365), "new": days_before(0)}
    near = apply_time_decay({"q": {"old": 0.80, "new": 0.79}}, dates, REF, 365, mode="additive", weight=0.05)
    assert near["q"]["new"] == pytest.approx(0.84) and near["q"]["old"] == pytest.approx(0.825)
    assert ranked_ids(near["q"]) == ["new", "old"]
    clear = apply_time_decay({"q": {"old": 0.9, "new": 0.5}}, dates, REF, 365, mode="additive", weight=0.05)
    assert ranked_ids(clear["q"]) == ["old", "new"]


def test_missing_dates_follow_the_policy():
    run = {"q": {"undated": 0.8, "recent": 0.8, "oldest": 0.8}}
    dates = {"undated": None, "recent": days_before(10), "oldest": days_before(100)}
    as_oldest = apply_time_decay(run, dates, REF, 100, missing="oldest")["q"]
    assert as_oldest["undated"] == pytest.approx(as_oldest["oldest"]) == pytest.approx(0.4)
    no_decay = apply_time_decay(run, dates, REF, 100, missing="no-decay")["q"]
    assert no_decay["undated"] == pytest.approx(0.8)
    dropped = apply_time_decay(run, dates, REF, 100, missing="drop")["q"]
    assert set(dropped) == {"recent", "oldest"}
    # nothing dated at all: "oldest" has nothing to go by, so no decay
    assert apply_time_decay({"q": {"a": 0.5}}, {"a": None}, REF, 10)["q"]["a"] == 0.5


def test_per_query_reference_times():
    queries = {
        "q1": Query(id="q1", text="x", metadata={"asked": "2024-01-01"}),
        "q2": Query(id="q2", text="y"),
    }
    refs = query_reference_times(queries, REF, "asked")
    assert refs == {"q1": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "q2": REF}
    run = {"q1": {"a": 1.0}, "q2": {"a": 1.0}}
    decayed = apply_time_decay(run, {"a": dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)}, refs, 365)
    assert decayed["q1"]["a"] == pytest.approx(0.5)  # one year before q1's own date
    assert decayed["q2"]["a"] < decayed["q1"]["a"]


def test_parse_date_and_document_dates():
    assert parse_date("2024-03-01") == dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    assert parse_date("2024-03-01T02:00:00+02:00") == dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    assert parse_date("2024-03-01T00:00:00Z") == dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    assert parse_date(None) is None and parse_date("") is None
    corpus = {"a": Document(id="a", text="t", metadata={"date": "last week"})}
    with pytest.raises(ValueError, match="document 'a': date"):
        document_dates(corpus, "date")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("half_life_days = -30", "bench.similarity.time.half_life_days"),
        ("half_life_days = 0", "bench.similarity.time.half_life_days"),
        ('reference_date = "yesterday"', "bench.similarity.time.reference_date"),
        ('mode = "exponential"', "bench.similarity.time.mode"),
    ],
)
def test_bad_time_config_is_a_clear_error(tmp_path, body, key):
    path = tmp_path / "domainfit.toml"
    path.write_text(f"[bench]\nsplit = 'test'\n\n[bench.similarity.time]\nenabled = true\n{body}\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.field == key and info.value.line == 6
    assert "half_life" not in key or "must be > 0" in str(info.value)
