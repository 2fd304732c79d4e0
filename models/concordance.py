"""Harrell's C of many bootstrap resamples at once, each given as row multiplicities.

A patient-level bootstrap of Harrell's C repeats one computation on resamples in which each row appears
0, 1, 2 ... times. scikit-survival's ``concordance_index_censored`` needs the resample written out and
loops in Python over its events, about 0.15 s per resample of 2,000 decisions. :func:`resampled_concordance`
counts the same pairs once per resample in compiled code, weighting each pair of rows by the product of
their multiplicities, which is what writing the resample out does. The rules are scikit-survival's: a
pair is comparable when the row with the event is followed by the other row strictly longer, or as long
but censored; it is concordant when the row with the event has the higher risk, and a tie (risks within
``1e-8``) counts one half. The counts are whole numbers of halves, so the figures equal
scikit-survival's exactly (tested).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: scikit-survival's tolerance under which two risk scores are tied.
TIED_TOLERANCE = 1e-8


def resampled_concordance(
    event: np.ndarray, time: np.ndarray, risk: np.ndarray, multiplicity: np.ndarray
) -> np.ndarray:
    """Return Harrell's C of each resample.

    Parameters
    ----------
    event : ndarray of bool, shape (n,)
        Whether each row's event was observed.
    time : ndarray of shape (n,)
        Event or censoring time.
    risk : ndarray of shape (n,)
        Risk score (higher: earlier event).
    multiplicity : ndarray of int, shape (resamples, n)
        How often each row appears in each resample.

    Returns
    -------
    ndarray of shape (resamples,)
        Harrell's C of each resample; NaN where the resample has no comparable pair.

    Raises
    ------
    ValueError
        If the shapes disagree, a multiplicity is negative or not whole, or a time or risk is not finite.
    """
    events = np.asarray(event, dtype=np.bool_)
    times = np.asarray(time, dtype=np.float64)
    risks = np.asarray(risk, dtype=np.float64)
    given = np.atleast_2d(np.asarray(multiplicity, dtype=float))
    if not np.array_equal(given, np.round(given)):
        raise ValueError("multiplicities must be whole numbers")
    counts = given.astype(np.int64)
    n = len(events)
    if times.shape != (n,) or risks.shape != (n,) or counts.shape[1:] != (n,):
        raise ValueError("event, time, risk and each resample's multiplicities need one entry per row")
    if (counts < 0).any():
        raise ValueError("multiplicities must not be negative")
    if not (np.isfinite(times).all() and np.isfinite(risks).all()):
        raise ValueError("times and risk scores must be finite")
    halves, pairs = _pair_counts(events, times, risks, np.ascontiguousarray(counts.T), TIED_TOLERANCE)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, halves / (2.0 * pairs), np.nan)


@njit(cache=False)
def _pair_counts(
    event: np.ndarray, time: np.ndarray, risk: np.ndarray, counts: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    # per resample: twice the concordant-plus-half-tied count, and the comparable count, as integers;
    # counts is (n, resamples), so that the innermost loop reads one row's multiplicities in a run
    n, resamples = counts.shape
    halves = np.zeros(resamples, dtype=np.int64)
    pairs = np.zeros(resamples, dtype=np.int64)
    for i in range(n):
        if not event[i]:
            continue
        for j in range(n):
            if time[j] < time[i] or (time[j] == time[i] and event[j]):
                continue
            if abs(risk[j] - risk[i]) <= tolerance:
                score = 1
            elif risk[j] < risk[i]:
                score = 2
            else:
                score = 0
            for r in range(resamples):
                weight = counts[i, r] * counts[j, r]
                halves[r] += score * weight
                pairs[r] += weight
    return halves, pairs
