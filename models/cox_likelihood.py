"""The weighted Cox partial likelihood (Breslow ties): its gradient and Hessian, and Breslow's baseline.

A case weight counts as copies of its row: weight 2 gives the same gradient, Hessian and baseline as the
row written twice, and weight 0 the same as the row dropped (which XGBoost's built-in ``survival:cox``,
whose risk sets ignore the weights, does not). :class:`linewise.models.survival.BoostedCoxModel` boosts
with :func:`cox_gradient` and draws its curves from :func:`breslow_cumulative_hazard`.
"""

from __future__ import annotations

import numpy as np


def breslow_cumulative_hazard(
    time: np.ndarray, event: np.ndarray, weight: np.ndarray, margin: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """Weighted Breslow cumulative baseline hazard, evaluated at each grid time.

    ``H0(t) = sum_{event times s <= t} d(s) / R(s)`` with ``d(s)`` the weight of the events at ``s`` and
    ``R(s) = sum_{k: t_k >= s} w_k exp(eta_k)``.

    Parameters
    ----------
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.
    margin : ndarray of shape (n,)
        Fitted log hazard ratios.
    grid : ndarray
        Times at which to evaluate ``H0``.

    Returns
    -------
    ndarray of shape (len(grid),)
    """
    risk = weight * np.exp(margin - margin.max())
    order = np.argsort(time, kind="stable")
    times, at_risk_tail = time[order], np.cumsum(risk[order][::-1])[::-1]
    event_times = np.unique(time[event])
    first = np.searchsorted(times, event_times, side="left")
    deaths = np.bincount(
        np.searchsorted(event_times, time[event]), weights=weight[event], minlength=len(event_times)
    )
    at_risk = at_risk_tail[first]
    # event times whose rows all carry zero weight leave nobody at risk: they add no hazard
    increments = np.divide(deaths, at_risk, out=np.zeros_like(deaths), where=at_risk > 0)
    cumulative = np.cumsum(increments) * np.exp(-margin.max())
    index = np.searchsorted(event_times, grid, side="right") - 1
    return np.where(index >= 0, cumulative[np.maximum(index, 0)], 0.0)


def cox_gradient(
    margin: np.ndarray, time: np.ndarray, event: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and diagonal Hessian of the weighted negative Cox log partial likelihood (Breslow ties).

    With risk sums ``R(t) = sum_{k: t_k >= t} w_k exp(eta_k)``, the loss is
    ``-sum_i w_i d_i (eta_i - log R(t_i))``; row ``k`` gets
    ``g_k = w_k exp(eta_k) A(t_k) - w_k d_k`` and ``h_k = w_k (exp(eta_k) A(t_k) - exp(eta_k)^2 B(t_k))``
    with ``A(t) = sum_{i: d_i, t_i <= t} w_i / R(t_i)`` and ``B(t)`` the same with ``R(t_i)^2``. The
    Hessian is the per-copy diagonal times the weight, so that weight 2 and a duplicated row give the
    same boosting step.

    Parameters
    ----------
    margin : ndarray of shape (n,)
        Current log hazard ratios.
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.

    Returns
    -------
    gradient, hessian : ndarray of shape (n,)
    """
    return CoxRiskSets(time, event, weight).gradient(margin)


def cox_negative_log_likelihood(
    margin: np.ndarray, time: np.ndarray, event: np.ndarray, weight: np.ndarray
) -> float:
    """Weighted negative Cox log partial likelihood (Breslow ties) per unit of event weight.

    ``-sum_i w_i d_i (eta_i - log R(t_i)) / sum_i w_i d_i`` with ``R(t) = sum_{k: t_k >= t} w_k exp(eta_k)``:
    the loss whose gradient is :func:`cox_gradient`, as a mean so that parts of different sizes compare.

    Parameters
    ----------
    margin : ndarray of shape (n,)
        Log hazard ratios.
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.

    Returns
    -------
    float
        NaN when no event has a positive weight.
    """
    return CoxRiskSets(time, event, weight).negative_log_likelihood(margin)


class CoxRiskSets:
    """The risk sets of one sample, sorted once: the partial likelihood's gradient and loss per margin.

    Boosting evaluates the gradient (and early stopping the held-out loss) at every round on the same
    times, events and weights; only the margin changes. The sort, the distinct times and the position of
    each row among them are computed here once. :func:`cox_gradient` and
    :func:`cox_negative_log_likelihood` are this class used once.

    Parameters
    ----------
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, weight: np.ndarray) -> None:
        self.event = np.asarray(event, dtype=bool)
        self.weight = np.asarray(weight, dtype=float)
        time = np.asarray(time, dtype=float)
        self.order = np.argsort(time, kind="stable")
        unique_times, self.first = np.unique(time[self.order], return_index=True)
        self.event_weight = np.bincount(
            np.searchsorted(unique_times, time[self.event]),
            weights=self.weight[self.event],
            minlength=len(unique_times),
        ).astype(float)  # without events bincount gives integers
        self.position = np.searchsorted(unique_times, time, side="right") - 1
        self.counted = self.event & (self.weight > 0)  # a zero weight adds nothing to the loss
        self.counted_position = np.searchsorted(unique_times, time[self.counted])
        self.counted_weight = float(np.sum(self.weight[self.counted]))

    def _risk_sums(self, margin: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Return the shift, each row's scaled risk ``w exp(eta - shift)`` and ``R(t)`` at distinct times."""
        shift = float(np.max(margin)) if len(margin) else 0.0
        risk = self.weight * np.exp(margin - shift)
        return shift, risk, np.cumsum(risk[self.order][::-1])[::-1][self.first]

    def gradient(self, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and diagonal Hessian at ``margin`` (:func:`cox_gradient`)."""
        shift, risk, risk_sum = self._risk_sums(margin)
        positive = risk_sum > 0
        a_terms = np.divide(self.event_weight, risk_sum, out=np.zeros_like(self.event_weight), where=positive)
        b_terms = np.divide(
            self.event_weight, risk_sum**2, out=np.zeros_like(self.event_weight), where=positive
        )
        a_cumulative, b_cumulative = np.cumsum(a_terms)[self.position], np.cumsum(b_terms)[self.position]
        gradient = risk * a_cumulative - self.weight * self.event
        hessian = risk * a_cumulative - risk * np.exp(margin - shift) * b_cumulative
        return gradient, np.maximum(hessian, 0.0)

    def negative_log_likelihood(self, margin: np.ndarray) -> float:
        """Return the loss at ``margin`` per unit of event weight (:func:`cox_negative_log_likelihood`)."""
        if self.counted_weight <= 0:
            return float("nan")
        shift, _, risk_sum = self._risk_sums(margin)
        log_risk = np.log(risk_sum[self.counted_position]) + shift
        weight = self.weight[self.counted]
        return float(-np.sum(weight * (margin[self.counted] - log_risk)) / self.counted_weight)
