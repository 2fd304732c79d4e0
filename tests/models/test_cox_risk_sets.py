"""``CoxRiskSets`` (risk sets sorted once per fit) against the per-call computation it replaced.

The reference below is the straightforward computation, sorting the times at every call, written out
here as it stood before the risk sets were kept: the two must agree bit for bit, for float32 and float64
margins, tied times, zero weights and samples without events.
"""

from __future__ import annotations

import numpy as np
import pytest

from linewise.models.cox_likelihood import CoxRiskSets


def _reference_gradient(margin, time, event, weight):  # type: ignore[no-untyped-def]
    shift = float(np.max(margin)) if len(margin) else 0.0
    risk = weight * np.exp(margin - shift)
    order = np.argsort(time, kind="stable")
    unique_times, first = np.unique(time[order], return_index=True)
    risk_sum = np.cumsum(risk[order][::-1])[::-1][first]
    event_weight = np.bincount(
        np.searchsorted(unique_times, time[event]), weights=weight[event], minlength=len(unique_times)
    ).astype(float)
    positive = risk_sum > 0
    a_terms = np.divide(event_weight, risk_sum, out=np.zeros_like(event_weight), where=positive)
    b_terms = np.divide(event_weight, risk_sum**2, out=np.zeros_like(event_weight), where=positive)
    position = np.searchsorted(unique_times, time, side="right") - 1
    a_cumulative, b_cumulative = np.cumsum(a_terms)[position], np.cumsum(b_terms)[position]
    gradient = risk * a_cumulative - weight * event
    hessian = risk * a_cumulative - risk * np.exp(margin - shift) * b_cumulative
    return gradient, np.maximum(hessian, 0.0)


def _reference_loss(margin, time, event, weight):  # type: ignore[no-untyped-def]
    event = event & (weight > 0)
    total = float(np.sum(weight[event]))
    if total <= 0:
        return float("nan")
    shift = float(np.max(margin))
    risk = weight * np.exp(margin - shift)
    order = np.argsort(time, kind="stable")
    unique_times, first = np.unique(time[order], return_index=True)
    risk_sum = np.cumsum(risk[order][::-1])[::-1][first]
    log_risk = np.log(risk_sum[np.searchsorted(unique_times, time[event])]) + shift
    return float(-np.sum(weight[event] * (margin[event] - log_risk)) / total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_risk_sets_give_the_per_call_results_bit_for_bit(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    time = np.round(rng.exponential(10.0, n), 0)  # many ties
    event = rng.random(n) < (0.0 if seed == 5 else 0.6)  # seed 5: no event at all
    weight = rng.choice([0.0, 0.5, 1.0, 2.0], n)
    risk_sets = CoxRiskSets(time, event, weight)
    for _ in range(3):  # the same risk sets at several margins, as boosting uses them
        margin = rng.normal(size=n).astype(dtype)
        gradient, hessian = risk_sets.gradient(margin)
        expected_gradient, expected_hessian = _reference_gradient(margin, time, event, weight)
        np.testing.assert_array_equal(gradient, expected_gradient)
        np.testing.assert_array_equal(hessian, expected_hessian)
        np.testing.assert_array_equal(
            risk_sets.negative_log_likelihood(margin), _reference_loss(margin, time, event, weight)
        )
