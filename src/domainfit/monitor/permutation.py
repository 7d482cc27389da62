"""Seeded, bounded permutation tests: the p-value of a two-sample statistic under "same distribution".

Every permutation test here draws its relabellings from one seeded generator,
so a monitoring run is reproducible, and computes the p-value as
``(1 + #{permuted >= observed}) / (1 + permutations)`` (Phipson & Smyth 2010),
which is never 0 and keeps the test's level exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """Return the permutation p-value of ``observed`` against the statistics of the relabelled samples.

    Inputs: the statistic of the real split and a 1-d array of the statistic
    under each permutation (larger means more different).
    Output: ``(1 + #{permuted >= observed}) / (1 + len(permuted))``. A tiny
    tolerance counts floating-point ties as ties.
    """
    tolerance = 1e-12 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(permuted >= observed - tolerance)) / (1 + permuted.size))


def membership(n_reference: int, n_current: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Random relabellings of a pooled sample: a ``(n_reference + n_current, permutations)`` 0/1 float array.

    Column ``j`` marks with 1 the rows that permutation ``j`` calls "reference"
    (exactly ``n_reference`` of them).
    """
    total = n_reference + n_current
    order = np.argsort(rng.random((total, permutations)), axis=0)
    mask = np.zeros((total, permutations), dtype=np.float64)
    np.put_along_axis(mask, order[:n_reference], 1.0, axis=0)
    return mask


def permuted_rows(
    pooled: np.ndarray, permutations: int, rng: np.random.Generator, max_cells: int = 4_000_000
) -> Iterator[np.ndarray]:
    """Yield the pooled 1-d sample shuffled ``permutations`` times, as ``(p, n)`` blocks of at most ``max_cells``.

    Each row is one relabelling: its first ``n_reference`` values play the
    reference, the rest the current window.
    """
    per_block = max(1, max_cells // max(1, pooled.size))
    for start in range(0, permutations, per_block):
        rows = min(per_block, permutations - start)
        yield rng.permuted(np.broadcast_to(pooled, (rows, pooled.size)), axis=1)


def permutation_test_rows(
    reference: np.ndarray,
    current: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    permutations: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Permutation test of a two-sample statistic computed row-wise over blocks of relabellings.

    Inputs: the two 1-d samples, a function ``(reference rows (p, n), current
    rows (p, m)) -> values (p,)`` (larger means more different), the number of
    permutations and a generator.
    Output: ``(observed value, p-value)``.
    """
    observed = float(statistic(reference[None, :], current[None, :])[0])
    pooled = np.concatenate([reference, current])
    n = reference.size
    permuted = np.concatenate(
        [statistic(rows[:, :n], rows[:, n:]) for rows in permuted_rows(pooled, permutations, rng)]
    )
    return observed, permutation_p_value(observed, permuted)
