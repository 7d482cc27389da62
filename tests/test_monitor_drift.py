"""Drift statistics on synthetic query streams: silent on resamples of one distribution, loud on a shift.

The streams are built here: query embeddings from a mixture of topic centres
(a shift moves to other centres), top-k scores from a Beta distribution (a
shift lowers them), query texts from English templates (a shift uses German
ones, longer) and a share of empty results (a shift raises it). Every draw is
seeded; margins keep the assertions far from their thresholds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ks_2samp

from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.distributions import categorical_psi, ks_test, psi, psi_test
from domainfit.monitor.drift import drift_report
from domainfit.monitor.embedding import centroid_distance, classifier_auc, mmd
from domainfit.monitor.empty import empty_rate, empty_rate_change
from domainfit.monitor.language import language_shift
from domainfit.monitor.permutation import permutation_p_value
from domainfit.monitor.verdict import decide, holm
from domainfit.monitor.window import QueryWindow, window_from_records

ENGLISH = [
    "how do I reset my password", "invoice download as pdf", "the storage bucket quota is exceeded",
    "open the firewall port for https", "why was my instance restarted", "change the credit card for billing",
    "configure single sign on with saml", "where are the lifecycle rules", "refund for an annual plan",
    "rotate the ssh keys of a server", "dns changes are not visible yet", "enable two factor authentication",
]  # fmt: skip
GERMAN = [
    "wie kann ich mein Passwort zurücksetzen und warum funktioniert die Anmeldung nicht mehr",
    "die Rechnung als PDF herunterladen geht leider nicht, was muss ich tun",
    "der Speicher ist voll und das Hochladen der Dateien schlägt ständig fehl",
    "welche Ports müssen in der Firewall für den Dienst geöffnet werden",
    "warum wurde meine virtuelle Maschine heute Nacht ohne Warnung neu gestartet",
    "ich möchte die Kreditkarte für die monatliche Abrechnung ändern",
]  # fmt: skip
DIM = 64
CENTRES = np.random.default_rng(100).normal(size=(12, DIM))


def make_window(n: int, rng: np.random.Generator, shifted: bool = False) -> QueryWindow:
    """One window of ``n`` searches from the reference stream (or the shifted one)."""
    centres = CENTRES[6:] if shifted else CENTRES[:6]
    topic = rng.integers(0, 6, size=n)
    emb = centres[topic] + 0.8 * rng.normal(size=(n, DIM))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    templates = GERMAN if shifted else ENGLISH
    texts = tuple(templates[int(i)] for i in rng.integers(0, len(templates), size=n))
    empty_share = 0.35 if shifted else 0.05
    a, b = (3.0, 4.0) if shifted else (6.0, 2.0)
    scores = tuple(
        () if rng.random() < empty_share else tuple(sorted(rng.beta(a, b, size=10).tolist(), reverse=True))
        for _ in range(n)
    )
    return QueryWindow(texts, scores, emb)


FAST = MonitorSettings(permutations=300, max_samples=300)


# ---------------------------------------------------------------- single statistics


def test_embedding_statistics_are_quiet_on_a_resample_and_loud_on_a_shift():
    rng = np.random.default_rng(1)
    ref, same, moved = make_window(200, rng), make_window(200, rng), make_window(200, rng, shifted=True)
    for test in (centroid_distance, mmd, classifier_auc):
        quiet = test(ref.embeddings, same.embeddings, FAST)
        loud = test(ref.embeddings, moved.embeddings, FAST)
        assert quiet.p_value > 0.01, quiet
        assert quiet.value < (0.6 if test is classifier_auc else quiet.threshold / 2), quiet
        assert loud.exceeds, loud
        assert loud.p_value <= 1 / (FAST.permutations + 1) + 1e-12 or loud.p_value < 1e-6, loud
    assert mmd(ref.embeddings, moved.embeddings, FAST).value > 3 * FAST.mmd_threshold
    assert classifier_auc(ref.embeddings, moved.embeddings, FAST).value > 0.95


def test_permutation_p_values_are_roughly_uniform_under_no_drift():
    settings = MonitorSettings(permutations=200)
    p_values = []
    for seed in range(60):
        rng = np.random.default_rng(1000 + seed)
        a, b = make_window(40, rng), make_window(40, rng)
        p_values.append(centroid_distance(a.embeddings, b.embeddings, settings).p_value)
        p_values.append(mmd(a.embeddings, b.embeddings, settings).p_value)
    p = np.array(p_values)
    assert p.min() >= 1 / 201
    assert 0.0 <= np.mean(p <= 0.1) <= 0.25  # about 0.1 expected
    assert 0.3 < np.median(p) < 0.7
    assert ks_2samp(p, np.linspace(0, 1, 1000)).pvalue > 0.001


def test_permutation_p_value_formula():
    assert permutation_p_value(5.0, np.array([1.0, 2.0, 3.0])) == pytest.approx(1 / 4)
    assert permutation_p_value(2.0, np.array([1.0, 2.0, 3.0])) == pytest.approx(3 / 4)
    # an identical split is as extreme as every permutation
    same = np.ones((30, 4))
    assert centroid_distance(same, same, MonitorSettings(permutations=50)).p_value == 1.0


def test_psi_on_known_cases():
    ref = np.arange(100, dtype=float)
    assert psi(ref, ref, bins=4) == pytest.approx(0.0)
    # four quartile bins of 25%; the current window puts 70/10/10/10 %
    cur = np.concatenate([np.full(70, 5.0), np.full(10, 30.0), np.full(10, 60.0), np.full(10, 90.0)])
    expected = (0.7 - 0.25) * np.log(0.7 / 0.25) + 3 * (0.1 - 0.25) * np.log(0.1 / 0.25)
    assert psi(ref, cur, bins=4) == pytest.approx(expected)
    # a bin the current window leaves empty counts as 0.0001 (Evidently)
    cur = np.concatenate([np.full(50, 30.0), np.full(50, 60.0)])
    expected = 2 * (0.0001 - 0.25) * np.log(0.0001 / 0.25) + 2 * (0.5 - 0.25) * np.log(0.5 / 0.25)
    assert psi(ref, cur, bins=4) == pytest.approx(expected)
    value, labels = categorical_psi(["en"] * 50 + ["de"] * 50, ["en"] * 90 + ["de"] * 10)
    assert labels == ["de", "en"]
    assert value == pytest.approx((0.1 - 0.5) * np.log(0.1 / 0.5) + (0.9 - 0.5) * np.log(0.9 / 0.5))


def test_psi_and_ks_tests_on_shifted_and_resampled_normals():
    rng = np.random.default_rng(3)
    ref, same, moved = rng.normal(size=400), rng.normal(size=400), rng.normal(0.5, 1.0, size=400)
    quiet, loud = psi_test("x", ref, same, FAST), psi_test("x", ref, moved, FAST)
    assert loud.value > 0.2 and loud.p_value < 0.01
    assert quiet.p_value > 0.05
    assert psi_test("x", ref, moved, FAST).value == pytest.approx(psi(ref, moved, 30))
    ks = ks_test("x", ref, moved, FAST)
    assert ks.value == pytest.approx(ks_2samp(ref, moved).statistic)
    assert ks.p_value == pytest.approx(ks_2samp(ref, moved).pvalue)
    assert ks.exceeds and ks.p_value < 1e-6
    assert ks_test("x", ref, same, FAST).p_value > 0.05


def test_language_shift_detects_german_and_not_a_resample():
    rng = np.random.default_rng(4)
    ref = [ENGLISH[i] for i in rng.integers(0, len(ENGLISH), 120)]
    same = [ENGLISH[i] for i in rng.integers(0, len(ENGLISH), 120)]
    mixed = same[:60] + [GERMAN[i] for i in rng.integers(0, len(GERMAN), 60)]
    quiet = language_shift(ref, same, FAST)
    loud = language_shift(ref, mixed, FAST)
    assert not quiet.exceeds or quiet.p_value > 0.05
    assert loud.exceeds and loud.p_value < 0.01
    assert loud.details["current"].get("de", 0) >= 50


def test_empty_rate_level_and_change():
    ref = np.array([True] * 5 + [False] * 95)
    cur = np.array([True] * 30 + [False] * 70)
    assert empty_rate(cur).value == pytest.approx(0.3) and empty_rate(cur).exceeds
    change = empty_rate_change(ref, cur)
    assert change.value == pytest.approx(0.25) and change.p_value < 1e-4
    assert empty_rate_change(cur, ref).p_value > 0.5  # fewer empties is no alarm


def test_window_from_log_records_and_bad_input():
    records = [
        {"query": "a b c", "scores": [0.2, 0.9], "ids": ["x", "y"], "mode": "dense"},
        {"query": "d", "scores": [], "ids": []},
    ]
    window = window_from_records(records)
    assert window.scores == ((0.9, 0.2), ())
    assert window.top1().tolist() == [0.9]
    assert window.empty().tolist() == [False, True]
    assert window.empty(min_score=0.95).tolist() == [True, True]
    assert window.lengths().tolist() == [3.0, 1.0]
    with pytest.raises(ValueError, match="record 1"):
        window_from_records([{"scores": []}])
    with pytest.raises(ValueError, match="embeddings of shape"):
        window_from_records(records, embeddings=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        window_from_records([{"query": "x", "scores": [float("nan")]}])


# ---------------------------------------------------------------- the verdict


def test_holm_adjustment_matches_the_textbook():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9])


def test_every_statistic_alerts_on_a_shifted_stream():
    rng = np.random.default_rng(5)
    reference, current = make_window(200, rng), make_window(200, rng, shifted=True)
    verdict = decide(drift_report(reference, current, FAST), None, FAST)
    assert verdict.status == "alert" and verdict.exit_code == 1
    names = {d.statistic.name for d in verdict.decisions}
    assert names == {
        "embedding_centroid", "embedding_mmd", "embedding_classifier", "top1_psi", "top1_ks", "topk_psi",
        "topk_ks", "length_psi", "length_ks", "language_psi", "empty_rate", "empty_rate_change",
    }  # fmt: skip
    assert [d.statistic.name for d in verdict.decisions if not d.alert] == []
    assert len(verdict.reasons) == len(names)
    json.loads(json.dumps(verdict.to_dict()))


def test_false_alarm_rate_on_resampled_windows_is_within_alpha():
    settings = MonitorSettings(permutations=300, max_samples=300, classifier=False)
    rng = np.random.default_rng(6)
    reference = make_window(150, rng)
    alarms = [decide(drift_report(reference, make_window(150, rng), settings), None, settings) for _ in range(30)]
    assert sum(not v.healthy for v in alarms) <= 3  # alpha 0.05 of 30 windows is 1.5; seeded, never flaky
    assert all(v.exit_code == 0 for v in alarms if v.healthy)


@pytest.mark.slow
def test_false_alarm_rate_over_a_hundred_windows_with_every_statistic():
    rng = np.random.default_rng(7)
    reference = make_window(150, rng)
    alarms = sum(
        not decide(drift_report(reference, make_window(150, rng), FAST), None, FAST).healthy for _ in range(100)
    )
    assert alarms <= 5


def test_small_windows_and_missing_inputs_are_skipped_with_reasons():
    rng = np.random.default_rng(8)
    tiny = decide(drift_report(make_window(10, rng), make_window(10, rng), FAST), None, FAST)
    assert tiny.healthy and "all" in tiny.skipped
    ref, cur = make_window(60, rng), make_window(60, rng)
    no_emb = QueryWindow(cur.texts, cur.scores, None)
    report = drift_report(ref, no_emb, MonitorSettings(permutations=100, classifier=False))
    assert "embedding_mmd" in report.skipped and "no query embeddings" in report.skipped["embedding_mmd"]
    assert report.get("top1_ks").n_current > 0
    with pytest.raises(KeyError):
        report.get("embedding_mmd")
