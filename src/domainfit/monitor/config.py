"""Settings of drift monitoring and canary checks: the ``[monitor]`` section of ``domainfit.toml``.

Every threshold is a named constant below with the source it comes from, and a
field of `MonitorSettings` that overrides it. Example::

    [monitor]
    alpha = 0.05
    psi_threshold = 0.1
    canary_max_drop = 0.05
    max_empty_rate = 0.2
    query_log = "queries.jsonl"   # domainfit monitor: the service's query log
    canaries = "canaries.jsonl"   # and a canary list (besides the benchmark's test split)

How a check decides (see `domainfit.monitor.verdict`): a statistic alerts when
its effect size is above its threshold *and*, for the statistics that have a
p-value, the p-value survives Holm's correction over all of them at level
``alpha``. The effect thresholds alone are tuned for large windows (PSI with 30
bins reads about 0.3 on two samples of 100 from one distribution); the
significance gate is what keeps the false-alarm rate of the whole verdict at
most ``alpha`` on small windows.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Evidently 0.7.23 ``stattests/psi.py``: PSI >= 0.1 is drift.
EVIDENTLY_PSI_THRESHOLD = 0.1
#: Evidently 0.7.23 ``stattests/psi.py``: the number of bins (quantiles of the reference).
EVIDENTLY_PSI_BINS = 30
#: Evidently 0.7.23 ``stattests/psi.py``: the share given to an empty bin, so the log stays finite.
EVIDENTLY_PSI_EMPTY_SHARE = 0.0001
#: Evidently 0.7.23 ``embedding_drift_methods.distance()``: cosine distance between mean embeddings > 0.2.
EVIDENTLY_CENTROID_DISTANCE = 0.2
#: Evidently 0.7.23 ``embedding_drift_methods.mmd()``: MMD² (RBF kernel, median heuristic) > 0.015.
EVIDENTLY_MMD_THRESHOLD = 0.015
#: Evidently 0.7.23 ``embedding_drift_methods.model()``: domain-classifier ROC AUC > 0.55.
EVIDENTLY_CLASSIFIER_AUC = 0.55
#: Evidently's stattests (``ks``, ``chisquare``, ``z``): drift when p < 0.05; here the family-wise level.
EVIDENTLY_P_VALUE = 0.05
#: domainfit default: the KS statistic (largest CDF gap) that counts as a material shift.
KS_STATISTIC_THRESHOLD = 0.1
#: domainfit default: the largest share of searches that may return nothing.
MAX_EMPTY_RATE = 0.2
#: domainfit default: the change of the empty-result share (absolute) that counts as material.
EMPTY_RATE_CHANGE = 0.05
#: domainfit default: the absolute drop of a canary metric below its baseline that alerts.
CANARY_MAX_DROP = 0.05


class MonitorSettings(BaseModel):
    """Settings of the ``monitor`` stage (the ``[monitor]`` section).

    ``alpha`` is the family-wise false-alarm level of the drift tests (Holm's
    correction across them); the ``*_threshold`` fields are the effect sizes
    each statistic must also exceed. Permutations are bounded and seeded, and
    each window is subsampled to ``max_samples`` queries for the kernel tests,
    so one run costs at most ``permutations`` products of a ``2 * max_samples``
    square kernel matrix.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    alpha: float = Field(EVIDENTLY_P_VALUE, gt=0.0, lt=1.0, description="family-wise false-alarm level")
    permutations: int = Field(1000, ge=20, le=100_000, description="permutations of the MMD/centroid tests")
    max_samples: int = Field(1000, ge=20, description="queries per window used by the kernel tests")
    seed: int = 0
    centroid_threshold: float = Field(EVIDENTLY_CENTROID_DISTANCE, ge=0.0, le=2.0)
    mmd_threshold: float = Field(EVIDENTLY_MMD_THRESHOLD, ge=0.0)
    classifier: bool = Field(True, description="also train a domain classifier (logistic regression, CV ROC AUC)")
    classifier_auc: float = Field(EVIDENTLY_CLASSIFIER_AUC, ge=0.5, le=1.0)
    classifier_folds: int = Field(5, ge=2, le=20)
    psi_threshold: float = Field(EVIDENTLY_PSI_THRESHOLD, ge=0.0)
    psi_bins: int = Field(EVIDENTLY_PSI_BINS, ge=2, le=1000)
    ks_threshold: float = Field(KS_STATISTIC_THRESHOLD, ge=0.0, le=1.0)
    top_k: int = Field(10, ge=1, description="results per query whose mean score is the top-k statistic")
    language_psi_threshold: float = Field(EVIDENTLY_PSI_THRESHOLD, ge=0.0)
    language_min_count: int = Field(5, ge=1, description="languages seen fewer times in both windows pool as other")
    max_empty_rate: float = Field(MAX_EMPTY_RATE, ge=0.0, le=1.0)
    empty_rate_change: float = Field(EMPTY_RATE_CHANGE, ge=0.0, le=1.0)
    canary_k: int = Field(10, ge=1, description="cut-off of canary recall@k and MRR@k")
    canary_max_drop: float = Field(CANARY_MAX_DROP, ge=0.0, le=1.0)
    canary_floor: float | None = Field(
        None, ge=0.0, le=1.0, description="absolute floor of every canary metric (None: baseline - max drop only)"
    )
    min_window: int = Field(20, ge=2, description="fewest queries a window needs to be tested at all")
    # What ``domainfit monitor`` reads (the stage; the functions above take plain inputs).
    query_log: str | None = Field(None, description="the service's query log (default: [serve] query_log)")
    reference_size: int = Field(500, ge=2, description="searches in the reference window (the first since promotion)")
    current_size: int = Field(500, ge=2, description="searches in the current window (the latest)")
    since_promotion: bool = Field(True, description="leave out searches logged before the pointer was written")
    canaries: str | None = Field(None, description="JSONL canary list: query and its relevant documents per line")
    canary_split: str | None = Field(
        "test", description="benchmark split whose queries are canaries too (None: the canary list only)"
    )
    canary_max: int = Field(200, ge=1, description="most benchmark queries used as canaries (a seeded sample)")
