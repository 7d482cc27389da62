"""Query-embedding drift: centroid cosine distance, kernel MMD² and a domain classifier.

Inputs everywhere: two ``(n, d)`` float arrays of query embeddings, the
reference window and the current one (rows need not be normalised). Each
function returns a `Statistic` whose value grows with drift:

* ``embedding_centroid``: cosine distance between the two mean embeddings
  (Evidently's ``distance(dist="cosine")``, threshold 0.2), with a permutation
  p-value.
* ``embedding_mmd``: the unbiased estimate of MMD² with an RBF kernel whose
  bandwidth is the median heuristic (``k(x, y) = exp(-|x - y|² / median)``,
  the median of the pooled pairwise squared distances), threshold 0.015 as in
  Evidently's ``mmd()``, with a permutation p-value. The kernel matrix is
  computed once; each permutation is one matrix product.
* ``embedding_classifier``: the cross-validated ROC AUC of a logistic
  regression telling the windows apart (Evidently's ``model()``, threshold
  0.55), with the one-sided Mann-Whitney p-value of its out-of-fold scores.
"""

from __future__ import annotations

import numpy as np

from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.permutation import membership, permutation_p_value
from domainfit.monitor.results import Statistic
from domainfit.monitor.window import subsample

_CHUNK = 250  # permutations per matrix product (bounds memory at (2 * max_samples) x _CHUNK floats)


def _checked_pair(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both windows as float64, after checking they are 2-d, non-empty, of one width and finite."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise ValueError(f"embeddings must be (n, d) arrays of one width, got {ref.shape} and {cur.shape}")
    if len(ref) < 2 or len(cur) < 2:
        raise ValueError("each window needs at least 2 embeddings")
    if not (np.isfinite(ref).all() and np.isfinite(cur).all()):
        raise ValueError("the embeddings hold a NaN or an infinity")
    return ref, cur


def _sampled(
    reference: np.ndarray, current: np.ndarray, settings: MonitorSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Both windows subsampled to at most ``settings.max_samples`` rows each."""
    ref, cur = _checked_pair(reference, current)
    return ref[subsample(len(ref), settings.max_samples, rng)], cur[subsample(len(cur), settings.max_samples, rng)]


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distance between matching columns of two ``(d, p)`` arrays (1 - cosine; 1 when a norm is 0)."""
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    dots = np.sum(a * b, axis=0)
    return np.asarray(1.0 - np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0))


def centroid_distance(reference: np.ndarray, current: np.ndarray, settings: MonitorSettings | None = None) -> Statistic:
    """Cosine distance between the mean embeddings of the windows, with a permutation p-value.

    Inputs: the two embedding windows and the settings (threshold, permutations, seed, max_samples).
    Output: the ``embedding_centroid`` `Statistic`.
    """
    settings = settings or MonitorSettings()
    rng = np.random.default_rng(settings.seed)
    ref, cur = _sampled(reference, current, settings, rng)
    pooled = np.concatenate([ref, cur])
    n, m = len(ref), len(cur)
    observed = float(_cosine_distance(ref.mean(0)[:, None], cur.mean(0)[:, None])[0])
    total = pooled.sum(0)[:, None]
    permuted = []
    for start in range(0, settings.permutations, _CHUNK):
        mask = membership(n, m, min(_CHUNK, settings.permutations - start), rng)
        ref_sum = pooled.T @ mask
        permuted.append(_cosine_distance(ref_sum / n, (total - ref_sum) / m))
    return Statistic(
        name="embedding_centroid",
        value=observed,
        threshold=settings.centroid_threshold,
        p_value=permutation_p_value(observed, np.concatenate(permuted)),
        source="Evidently 0.7.23 embedding_drift_methods.distance(dist='cosine'): threshold 0.2",
        n_reference=n,
        n_current=m,
        details={"permutations": settings.permutations},
    )


def median_bandwidth(pooled: np.ndarray) -> tuple[np.ndarray, float]:
    """Squared pairwise distances of the pooled rows and their median over distinct pairs (the RBF bandwidth)."""
    sq = np.sum(pooled * pooled, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = dist2[np.triu_indices(len(pooled), k=1)]
    median = float(np.median(upper))
    return dist2, median if median > 0 else 1.0


def _mmd2(kernel_sums: tuple[np.ndarray, np.ndarray, np.ndarray], n: int, m: int) -> np.ndarray:
    """Unbiased MMD² from the within-reference, within-current and cross sums of the zero-diagonal kernel."""
    within_ref, within_cur, cross = kernel_sums
    return np.asarray(within_ref / (n * (n - 1)) + within_cur / (m * (m - 1)) - 2.0 * cross / (n * m))


def mmd(reference: np.ndarray, current: np.ndarray, settings: MonitorSettings | None = None) -> Statistic:
    """Unbiased MMD² with an RBF kernel (median-heuristic bandwidth), with a permutation p-value.

    Inputs: the two embedding windows and the settings (threshold, permutations, seed, max_samples).
    Output: the ``embedding_mmd`` `Statistic`; ``details`` holds the bandwidth.
    """
    settings = settings or MonitorSettings()
    rng = np.random.default_rng(settings.seed + 1)
    ref, cur = _sampled(reference, current, settings, rng)
    n, m = len(ref), len(cur)
    pooled = np.concatenate([ref, cur])
    dist2, bandwidth = median_bandwidth(pooled)
    kernel = np.exp(-dist2 / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    row_sums = kernel.sum(1)
    total = float(row_sums.sum())

    def sums(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        within_ref = np.sum(mask * (kernel @ mask), axis=0)
        ref_rows = row_sums @ mask
        cross = ref_rows - within_ref
        return within_ref, total - 2.0 * ref_rows + within_ref, cross

    observed_mask = np.zeros((n + m, 1))
    observed_mask[:n] = 1.0
    observed = float(_mmd2(sums(observed_mask), n, m)[0])
    permuted = [
        _mmd2(sums(membership(n, m, min(_CHUNK, settings.permutations - start), rng)), n, m)
        for start in range(0, settings.permutations, _CHUNK)
    ]
    return Statistic(
        name="embedding_mmd",
        value=observed,
        threshold=settings.mmd_threshold,
        p_value=permutation_p_value(observed, np.concatenate(permuted)),
        source="Evidently 0.7.23 embedding_drift_methods.mmd(): threshold 0.015 (RBF, median heuristic)",
        n_reference=n,
        n_current=m,
        details={"bandwidth": bandwidth, "permutations": settings.permutations, "estimator": "unbiased"},
    )


def classifier_auc(reference: np.ndarray, current: np.ndarray, settings: MonitorSettings | None = None) -> Statistic:
    """Cross-validated ROC AUC of a logistic regression that tells the current window from the reference.

    Inputs: the two embedding windows and the settings (threshold, folds, seed, max_samples).
    Output: the ``embedding_classifier`` `Statistic`; the p-value is the
    one-sided Mann-Whitney test that out-of-fold scores of current queries are
    higher (cross-validated AUC is, if anything, below 0.5 under no drift, so
    the test errs on the quiet side).
    """
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    settings = settings or MonitorSettings()
    rng = np.random.default_rng(settings.seed + 2)
    ref, cur = _sampled(reference, current, settings, rng)
    features = np.concatenate([ref, cur])
    labels = np.concatenate([np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)])
    folds = min(settings.classifier_folds, len(ref), len(cur))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    with threadpool_limits(1):  # L-BFGS on small problems crawls when BLAS threads contend for the cores
        scores = cross_val_predict(
            LogisticRegression(max_iter=1000), features, labels, cv=splitter, method="decision_function"
        )
    auc = float(roc_auc_score(labels, scores))
    p_value = float(mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater").pvalue)
    return Statistic(
        name="embedding_classifier",
        value=auc,
        threshold=settings.classifier_auc,
        p_value=p_value,
        source="Evidently 0.7.23 embedding_drift_methods.model(): ROC AUC threshold 0.55",
        n_reference=len(ref),
        n_current=len(cur),
        details={"folds": folds, "model": "sklearn LogisticRegression (L2, C=1)"},
    )
