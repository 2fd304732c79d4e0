"""Sensitivity of a recommendation to prognosis that the lock never records: E-values.

Clinicians choose on prognosis that no lock records (in PALMARES-2, patients continued beyond
progression were selected for a good one), so an adjusted difference between two options can still be
confounded. The **E-value** (VanderWeele and Ding 2017, *Ann Intern Med* 167:268) is the smallest
strength of association, on the risk-ratio scale, that an unrecorded factor would need with both the
choice between the two options and the outcome, beyond the recorded features, to explain the
difference away: ``E = RR + sqrt(RR (RR - 1))`` for a risk ratio ``RR >= 1`` (its inverse below 1).

The contrast here is a difference in rwPFS restricted to 24 months, a mean. VanderWeele and Ding's
conversion for a difference in means turns the standardised difference ``d = difference / SD`` into
an approximate risk ratio ``RR = exp(0.91 d)``, with ``SD`` the standard deviation of the restricted time
in the training population (:func:`restricted_time_sd`). The E-value of the interval is that of the
bound nearer to no difference, and 1 when the interval holds no difference. A large E-value says that
only a strong unrecorded factor could reverse the ranking; an E-value near 1 that a weak one could.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: VanderWeele and Ding's factor from a standardised mean difference to a log risk ratio.
SMD_TO_LOG_RR: Final = 0.91


def e_value(risk_ratio: np.ndarray | float) -> np.ndarray:
    """Return the E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))``, with ``1 / RR`` below 1.

    Parameters
    ----------
    risk_ratio : array-like of positive float

    Returns
    -------
    ndarray
        At least 1; 1 for a risk ratio of 1, infinite for an infinite one.

    Raises
    ------
    ValueError
        If a risk ratio is not positive (or is NaN).
    """
    ratio = np.asarray(risk_ratio, dtype=float)
    if not np.all(ratio > 0):  # NaN fails too
        raise ValueError("risk ratios must be positive (an infinite one has an infinite E-value)")
    ratio = np.where(ratio < 1, 1 / ratio, ratio)
    with np.errstate(invalid="ignore"):  # inf * (inf - 1)
        return np.asarray(np.where(np.isinf(ratio), np.inf, ratio + np.sqrt(ratio * (ratio - 1))))


def difference_e_values(
    difference: np.ndarray, lower: np.ndarray, upper: np.ndarray, outcome_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the E-values of mean differences and of their intervals.

    Parameters
    ----------
    difference, lower, upper : ndarray
        A difference in means and its interval (same units as ``outcome_sd``).
    outcome_sd : float
        Standard deviation of the outcome, positive.

    Returns
    -------
    point, interval : ndarray
        E-values of ``exp(0.91 |difference| / sd)`` and of the interval's bound nearer to 0 (1 when the
        interval holds 0).

    Raises
    ------
    ValueError
        If ``outcome_sd`` is not positive and finite.
    """
    if not (np.isfinite(outcome_sd) and outcome_sd > 0):
        raise ValueError(f"outcome_sd must be positive and finite, found {outcome_sd}")
    with np.errstate(over="ignore"):  # a difference of many SDs: an infinite risk ratio
        point = e_value(np.exp(SMD_TO_LOG_RR * np.abs(np.asarray(difference, dtype=float)) / outcome_sd))
        low, high = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        nearer = np.where(low > 0, low, np.where(high < 0, -high, 0.0))
        return point, e_value(np.exp(SMD_TO_LOG_RR * nearer / outcome_sd))


def restricted_time_sd(time: np.ndarray, event: np.ndarray, horizon: float) -> float:
    """Return the standard deviation of ``min(T, horizon)`` from the Kaplan-Meier curve of ``T``.

    ``Var = 2 int_0^h t S(t) dt - (int_0^h S(t) dt)^2``, both integrals exact for the step function.

    Parameters
    ----------
    time : ndarray of shape (n,)
        Follow-up (months).
    event : ndarray of bool, shape (n,)
    horizon : float

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If there are no rows or the horizon is not positive.
    """
    follow = np.asarray(time, dtype=float)
    happened = np.asarray(event, dtype=bool)
    if follow.size == 0 or not horizon > 0:
        raise ValueError("restricted_time_sd needs rows and a positive horizon")
    times = np.unique(follow[happened & (follow < horizon)])
    at_risk = np.array([(follow >= t).sum() for t in times], dtype=float)
    events = np.array([(happened & (follow == t)).sum() for t in times], dtype=float)
    survival = np.cumprod(1 - events / at_risk)  # S just after each event time
    knots = np.concatenate([[0.0], times, [horizon]])
    level = np.concatenate([[1.0], survival])  # S on [knots[j], knots[j + 1])
    width = np.diff(knots)
    mean = float(np.sum(level * width))
    second = float(np.sum(level * (knots[1:] ** 2 - knots[:-1] ** 2)))  # 2 int t S(t) dt
    return float(np.sqrt(max(second - mean**2, 0.0)))
