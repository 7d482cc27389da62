"""Language-mix shift of the query stream: PSI between the windows' language shares, with a permutation p-value.

Languages are identified by domainfit's own detector
(`domainfit.text.language.LanguageDetector`, py3langid), the one ``bench`` and
``eval`` use for their language slices; short or unsure queries are ``und``.
Misdetections of short queries are a fixed function of the text, so they do
not differ between two windows of one distribution; languages seen fewer than
``language_min_count`` times in both windows together pool as ``other``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.distributions import code_psi_rows, label_codes
from domainfit.monitor.permutation import permutation_test_rows
from domainfit.monitor.results import Statistic
from domainfit.text.language import LanguageDetector, shared_detector


def detect_languages(texts: Sequence[str], detector: LanguageDetector | None = None) -> list[str]:
    """Return the language code (or ``und``) of every text, by ``detector`` (default: the shared default detector)."""
    detector = detector or shared_detector()
    return [detector.language(text) for text in texts]


def language_shift(
    reference: Sequence[str],
    current: Sequence[str],
    settings: MonitorSettings | None = None,
    detector: LanguageDetector | None = None,
) -> Statistic:
    """PSI between the language shares of two windows of query texts, with a permutation p-value.

    Inputs: the two windows' query texts, the settings (threshold, min count,
    permutations, seed) and a detector (default: the shared default one).
    Output: the ``language_psi`` `Statistic`; ``details`` holds each window's
    language counts.
    """
    settings = settings or MonitorSettings()
    ref = np.array(detect_languages(reference, detector), dtype=object)
    cur = np.array(detect_languages(current, detector), dtype=object)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("each window needs at least one query text")
    labels, ref_codes, cur_codes = label_codes(list(ref), list(cur), settings.language_min_count)
    rng = np.random.default_rng([settings.seed, 7])
    value, p_value = permutation_test_rows(
        ref_codes.astype(np.float64),
        cur_codes.astype(np.float64),
        code_psi_rows(len(labels)),
        settings.permutations,
        rng,
    )
    return Statistic(
        name="language_psi",
        value=value,
        threshold=settings.language_psi_threshold,
        p_value=p_value,
        source="Evidently 0.7.23 stattests/psi.py (categorical): threshold 0.1",
        n_reference=int(ref.size),
        n_current=int(cur.size),
        details={
            "reference": dict(Counter(ref.tolist()).most_common()),
            "current": dict(Counter(cur.tolist()).most_common()),
            "labels": labels,
        },
    )
