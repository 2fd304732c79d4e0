"""Doubly robust (AIPW) value of a treatment policy on observational, right-censored data.

The value of a policy is the mean restricted survival time ``E[min(T, tau)]`` (months) if every patient
received the option the policy picks for them. Options are discrete and indexed ``0 .. k-1`` (for
example 8 candidate classes x local therapy yes/no = 16 options). There is no ground truth on real data,
so three estimates are offered side by side:

- direct (plug-in): the mean of the outcome model's prediction under the policy's option;
- IPW: inverse-propensity weighting of the patients whose observed option agrees with the policy;
- AIPW (doubly robust): the direct estimate corrected by the weighted residuals of the followers. It is
  consistent when either the propensity model or the outcome model is right.

Censoring is handled by inverse probability of censoring weighting (:mod:`linewise.models.ipcw`), which
assumes censoring independent of the features and of the option taken.

Standard errors are ``sd(psi) / sqrt(n)`` of the per-patient contributions ``psi`` (the influence
function), treating the propensities, the outcome predictions and ``G`` as known. Estimating them adds
variance that this ignores; cross-fitting the nuisance models (predictions for each patient from models
fitted without that patient's fold) keeps the AIPW interval approximately valid, the IPW and direct
intervals have no such guarantee (the direct one in particular reflects only the spread of the
predictions, not the outcome model's error).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from linewise.models.exceptions import WeightTruncationWarning
from linewise.models.ipcw import check_horizon, check_sample_weight, ipcw_restricted_time

#: Two-sided 95% standard normal quantile, for the Wald interval.
Z_95: Final = 1.959963984540054

#: Tolerance on propensity rows summing to 1.
ROW_SUM_TOLERANCE: Final = 1e-6

Estimator = Literal["aipw", "ipw", "direct"]


@dataclass(frozen=True)
class PolicyValue:
    """Estimated value of a policy: mean restricted survival time to the horizon (months).

    Attributes
    ----------
    value : float
        Point estimate of ``estimator``.
    standard_error : float
        ``sd(psi) / sqrt(n)`` of the per-patient contributions, nuisance models taken as known.
    lower, upper : float
        95% Wald interval ``value -/+ 1.96 standard_error``.
    n : int
        Rows in the sample.
    n_followed : int
        Rows whose observed option equals the policy's option (the only rows the weighting uses).
    estimator : {"aipw", "ipw", "direct"}
        Which estimate ``value`` is.
    ipw_value : float
        IPW point estimate on the same data (NaN for the direct estimator, which has no propensities).
    direct_value : float
        Plug-in point estimate on the same data (NaN for the IPW estimator, which has no outcome model).
    max_weight : float
        Largest inverse-propensity weight among the followers, after clipping (0 if none followed).
    n_clipped : int
        Followers whose propensity was below ``clip`` and was raised to it.
    """

    value: float
    standard_error: float
    lower: float
    upper: float
    n: int
    n_followed: int
    estimator: Estimator
    ipw_value: float
    direct_value: float
    max_weight: float = 0.0
    n_clipped: int = 0


def aipw_policy_value(
    policy: np.ndarray,
    observed: np.ndarray,
    propensity: np.ndarray,
    outcome_prediction: np.ndarray,
    y: np.ndarray,
    horizon: float,
    *,
    clip: float = 0.01,
    sample_weight: np.ndarray | None = None,
) -> PolicyValue:
    """Doubly robust (AIPW) value of ``policy``: mean restricted survival time if everyone followed it.

    For row ``i`` with ``d = policy[i]``::

        psi_i = mu_i(d) + 1{observed_i = d} / max(e_i(d), clip) * (Y*_i - mu_i(d))

    with ``mu`` the outcome prediction, ``e`` the propensity and ``Y*`` the IPCW restricted time
    (:func:`linewise.models.ipcw.ipcw_restricted_time`). The value is the (weighted) mean of ``psi`` and the
    standard error its ``sd / sqrt(n)``, ignoring the estimation of ``e``, ``mu`` and ``G`` (see the
    module docstring).

    Parameters
    ----------
    policy : array of int, shape (n,)
        Option chosen by the policy for each row, in ``0 .. k-1``.
    observed : array of int, shape (n,)
        Option actually taken, in ``0 .. k-1``.
    propensity : array of float, shape (n, k)
        Estimated probability of each option given the features; non-negative rows summing to 1.
    outcome_prediction : array of float, shape (n, k)
        Predicted restricted mean ``E[min(T, tau) | x, option]`` under each option; non-negative.
    y : structured array, shape (n,)
        Survival target (fields ``event``, ``time`` in months).
    horizon : float
        Restriction time ``tau`` (months), positive.
    clip : float
        Propensities below ``clip`` are raised to it before inversion, bounding the weights by
        ``1 / clip``; in ``(0, 1]``.
    sample_weight : array of float, shape (n,), optional
        Non-negative sampling weights: the value is the weighted mean of ``psi``, the standard error the
        linearisation ``sqrt(m / (m - 1) * sum w^2 (psi - value)^2) / sum w`` over the ``m`` rows of
        positive weight (``sd(psi) / sqrt(n)`` with unit weights).

    Returns
    -------
    PolicyValue
        With ``estimator="aipw"`` and the IPW and direct point estimates alongside.

    Raises
    ------
    ValueError
        On inconsistent shapes, options outside ``0 .. k-1``, invalid propensities, negative or
        non-finite predictions, a non-positive horizon, an invalid ``clip`` or invalid weights.

    Warns
    -----
    linewise.models.exceptions.WeightTruncationWarning
        When a follower's propensity is below ``clip`` (the count is also ``n_clipped``).
    """
    inputs = _PolicyInputs.validated(policy, observed, propensity, y, horizon, clip, sample_weight)
    predicted = _policy_outcome(outcome_prediction, inputs)
    correction = inputs.followed_weight * (inputs.restricted_time - predicted)
    contributions = predicted + correction
    return _summarise(
        "aipw",
        contributions,
        inputs,
        ipw_value=_weighted_mean(inputs.ipw_contributions, inputs.sample_weight),
        direct_value=_weighted_mean(predicted, inputs.sample_weight),
    )


def ipw_policy_value(
    policy: np.ndarray,
    observed: np.ndarray,
    propensity: np.ndarray,
    y: np.ndarray,
    horizon: float,
    *,
    clip: float = 0.01,
    sample_weight: np.ndarray | None = None,
) -> PolicyValue:
    """Inverse-propensity-weighted value of ``policy``: the mean of ``1{observed = d} / e(d) * Y*``.

    The Horvitz-Thompson form (weights not normalised); consistent only when the propensities are.
    Parameters, errors and warnings as in :func:`aipw_policy_value`, without the outcome model.

    Returns
    -------
    PolicyValue
        With ``estimator="ipw"``, ``ipw_value`` equal to ``value`` and ``direct_value`` NaN.
    """
    inputs = _PolicyInputs.validated(policy, observed, propensity, y, horizon, clip, sample_weight)
    value = _weighted_mean(inputs.ipw_contributions, inputs.sample_weight)
    return _summarise("ipw", inputs.ipw_contributions, inputs, ipw_value=value, direct_value=np.nan)


def direct_policy_value(
    policy: np.ndarray,
    outcome_prediction: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
) -> PolicyValue:
    """Plug-in value of ``policy``: the mean predicted restricted survival under the policy's option.

    Consistent only when the outcome model is. Its standard error reflects the spread of the predictions
    across patients only, not the outcome model's error, and understates the uncertainty.

    Parameters
    ----------
    policy : array of int, shape (n,)
        Option chosen by the policy for each row, in ``0 .. k-1``.
    outcome_prediction : array of float, shape (n, k)
        Predicted restricted mean survival under each option; non-negative.
    sample_weight : array of float, shape (n,), optional
        Non-negative sampling weights.

    Returns
    -------
    PolicyValue
        With ``estimator="direct"``, ``direct_value`` equal to ``value``, ``ipw_value`` NaN and
        ``n_followed`` 0 (no observed options are used).
    """
    outcome = _outcome_matrix(outcome_prediction)
    n, k = outcome.shape
    options = _options(policy, "policy", n, k)
    weights = check_sample_weight(sample_weight, n, minimum_positive=2)
    predicted = outcome[np.arange(n), options]
    value = _weighted_mean(predicted, weights)
    standard_error = _standard_error(predicted, weights, value)
    return PolicyValue(
        value=value,
        standard_error=standard_error,
        lower=value - Z_95 * standard_error,
        upper=value + Z_95 * standard_error,
        n=n,
        n_followed=0,
        estimator="direct",
        ipw_value=np.nan,
        direct_value=value,
    )


@dataclass(frozen=True)
class _PolicyInputs:
    """Validated inputs shared by the IPW and AIPW estimators."""

    policy: np.ndarray
    n_options: int
    followed_weight: np.ndarray  # 1{observed = policy} / max(e(policy), clip)
    restricted_time: np.ndarray  # Y*
    sample_weight: np.ndarray
    n_clipped: int

    @classmethod
    def validated(
        cls,
        policy: np.ndarray,
        observed: np.ndarray,
        propensity: np.ndarray,
        y: np.ndarray,
        horizon: float,
        clip: float,
        sample_weight: np.ndarray | None,
    ) -> _PolicyInputs:
        check_horizon(horizon)
        probability = _propensity_matrix(propensity)
        n, k = probability.shape
        chosen = _options(policy, "policy", n, k)
        taken = _options(observed, "observed", n, k)
        if not 0 < clip <= 1:
            raise ValueError(f"clip must be in (0, 1], found {clip}")
        if np.shape(y) != (n,):
            raise ValueError(f"y must have shape ({n},) like the propensity rows, found {np.shape(y)}")
        weights = check_sample_weight(sample_weight, n, minimum_positive=2)
        followed = chosen == taken
        policy_probability = probability[np.arange(n), chosen]
        followed_weight = np.where(followed, 1.0 / np.maximum(policy_probability, clip), 0.0)
        n_clipped = int(np.sum(followed & (policy_probability < clip)))
        if n_clipped:
            warnings.warn(
                f"{n_clipped} of {int(followed.sum())} decisions that followed the policy had a propensity "
                f"below {clip}; it was raised to {clip}, which truncates their weights at {1 / clip:g}",
                WeightTruncationWarning,
                stacklevel=3,
            )
        return cls(
            policy=chosen,
            n_options=k,
            followed_weight=followed_weight,
            restricted_time=ipcw_restricted_time(y, horizon, sample_weight=weights),
            sample_weight=weights,
            n_clipped=n_clipped,
        )

    @property
    def ipw_contributions(self) -> np.ndarray:
        """Per-row IPW terms ``1{observed = d} / e(d) * Y*``."""
        return np.asarray(self.followed_weight * self.restricted_time)


def _summarise(
    estimator: Estimator,
    contributions: np.ndarray,
    inputs: _PolicyInputs,
    *,
    ipw_value: float,
    direct_value: float,
) -> PolicyValue:
    value = _weighted_mean(contributions, inputs.sample_weight)
    standard_error = _standard_error(contributions, inputs.sample_weight, value)
    followed = inputs.followed_weight > 0
    return PolicyValue(
        value=value,
        standard_error=standard_error,
        lower=value - Z_95 * standard_error,
        upper=value + Z_95 * standard_error,
        n=int(contributions.size),
        n_followed=int(followed.sum()),
        estimator=estimator,
        ipw_value=ipw_value,
        direct_value=direct_value,
        max_weight=float(inputs.followed_weight.max(initial=0.0)),
        n_clipped=inputs.n_clipped,
    )


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean, shifted by a data value so that a constant column returns that constant exactly."""
    reference = values[np.flatnonzero(weights > 0)[0]]
    return float(reference + np.sum(weights * (values - reference)) / np.sum(weights))


def _standard_error(values: np.ndarray, weights: np.ndarray, mean: float) -> float:
    """Linearised standard error of a weighted mean; ``sd(values, ddof=1) / sqrt(n)`` for unit weights."""
    positive = int(np.sum(weights > 0))
    spread = np.sum((weights * (values - mean)) ** 2) * positive / (positive - 1)
    return float(np.sqrt(spread) / np.sum(weights))


def _policy_outcome(outcome_prediction: np.ndarray, inputs: _PolicyInputs) -> np.ndarray:
    """Return the outcome prediction under each row's policy option, after checking its shape."""
    outcome = _outcome_matrix(outcome_prediction)
    n, k = inputs.policy.size, inputs.n_options
    if outcome.shape != (n, k):
        raise ValueError(f"outcome_prediction must have shape {(n, k)}, found {outcome.shape}")
    return np.asarray(outcome[np.arange(n), inputs.policy])


def _propensity_matrix(propensity: np.ndarray) -> np.ndarray:
    probability = np.asarray(propensity, dtype=float)
    if probability.ndim != 2 or probability.shape[1] < 1:
        raise ValueError(f"propensity must be 2-d (n, k), found shape {probability.shape}")
    if not np.all(np.isfinite(probability)):
        raise ValueError("propensity must be finite")
    if np.any(probability < 0):
        raise ValueError("propensity must not be negative")
    off = np.flatnonzero(np.abs(probability.sum(axis=1) - 1.0) > ROW_SUM_TOLERANCE)
    if off.size:
        raise ValueError(
            f"propensity rows must sum to 1 within {ROW_SUM_TOLERANCE}, "
            f"row {off[0]} sums to {probability[off[0]].sum()}"
        )
    return probability


def _outcome_matrix(outcome_prediction: np.ndarray) -> np.ndarray:
    outcome = np.asarray(outcome_prediction, dtype=float)
    if outcome.ndim != 2 or outcome.shape[1] < 1:
        raise ValueError(f"outcome_prediction must be 2-d (n, k), found shape {outcome.shape}")
    if not np.all(np.isfinite(outcome)):
        raise ValueError("outcome_prediction must be finite")
    if np.any(outcome < 0):
        raise ValueError("outcome_prediction must not be negative (it is a restricted mean time)")
    return outcome


def _options(options: np.ndarray, name: str, n: int, k: int) -> np.ndarray:
    """Check a vector of option indices: shape (n,), integer, in ``0 .. k-1``."""
    array = np.asarray(options)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), found {array.shape}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer option indices, found dtype {array.dtype}")
    outside = (array < 0) | (array >= k)
    if outside.any():
        raise ValueError(f"{name} has option {array[outside][0]} outside 0..{k - 1}")
    return array.astype(np.intp)
