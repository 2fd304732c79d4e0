"""IPCW restricted times: the censoring Kaplan-Meier against lifelines and by hand, weights, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from linewise.models.ipcw import censoring_survival, ipcw_restricted_time
from linewise.models.target import make_target

# ---------------------------------------------------------------- censoring Kaplan-Meier


def _lifelines_left_limit(time: np.ndarray, censored: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Lifelines' Kaplan-Meier of the censoring times, read just before each point of ``at``."""
    fitter = KaplanMeierFitter().fit(time, event_observed=censored)
    return np.asarray(fitter.survival_function_at_times(at - 1e-3).to_numpy())


def test_censoring_survival_matches_lifelines_with_ties_within_each_kind() -> None:
    # events on even months, censorings on odd months: many ties, none between an event and a censoring
    rng = np.random.default_rng(0)
    event = rng.random(300) < 0.6
    time = np.where(event, 2 * rng.integers(1, 10, 300), 2 * rng.integers(0, 10, 300) + 1).astype(float)
    at = np.arange(1.0, 22.0)  # every jump point, where the left limit matters
    expected = _lifelines_left_limit(time, ~event, at)
    np.testing.assert_allclose(censoring_survival(time, event, at), expected, rtol=1e-12)


def test_censoring_survival_matches_lifelines_when_events_come_first() -> None:
    # mixed ties: moving every event a hair earlier tells lifelines that events precede censorings
    rng = np.random.default_rng(1)
    time = rng.integers(1, 12, 400).astype(float)
    event = rng.random(400) < 0.5
    at = np.concatenate([np.arange(1.0, 14.0), np.arange(1.5, 13.0)])
    expected = _lifelines_left_limit(time - 1e-6 * event, ~event, at)
    np.testing.assert_allclose(censoring_survival(time, event, at), expected, rtol=1e-12)


def test_censoring_survival_tie_convention_by_hand() -> None:
    time = np.array([2.0, 2.0, 2.0, 3.0])
    event = np.array([True, False, False, True])
    # at t = 2: 4 at risk, the event at 2 leaves first, so 2 censorings among 3: G(2) = 1 - 2/3 = 1/3
    # (counting the event in the risk set would give 1 - 2/4 = 1/2); G(2-) = 1; nothing censored after
    at = np.array([1.0, 2.0, 2.5, 3.0])
    np.testing.assert_allclose(censoring_survival(time, event, at), [1, 1, 1 / 3, 1 / 3])


def test_integer_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(2)
    time, event = rng.integers(1, 9, 60).astype(float), rng.random(60) < 0.5
    repeats = rng.integers(0, 4, 60)
    repeats[:2] = 1
    at = np.arange(0.5, 10.0, 0.5)
    np.testing.assert_allclose(
        censoring_survival(time, event, at, sample_weight=repeats.astype(float)),
        censoring_survival(np.repeat(time, repeats), np.repeat(event, repeats), at),
        rtol=1e-12,
    )


def test_censoring_survival_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="one length"):
        censoring_survival(np.array([1.0, 2.0]), np.array([True]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        censoring_survival(np.array([1.0, -2.0]), np.array([True, False]), np.array([1.0]))


@pytest.mark.parametrize("horizon", [0.0, -1.0, float("nan"), float("inf")])
def test_ipcw_restricted_time_rejects_a_bad_horizon(horizon: float) -> None:
    y = make_target(np.array([1.0, 2.0]), np.array([True, False]))
    with pytest.raises(ValueError, match="horizon must be positive and finite"):
        ipcw_restricted_time(y, horizon)


def test_ipcw_restricted_time_by_hand_with_weights() -> None:
    # T = 2 (event), 3 (censored), 5 (event), 7 (censored), tau = 6; weights 1, 2, 1, 1
    # censoring KM: at 3, weighted at risk 2 + 1 + 1 = 4, censored 2: G(3) = 1/2; G(5-) = 1/2, G(6-) = 1/2
    # Y* = [2 / 1, 0, 5 / (1/2), 6 / (1/2)] = [2, 0, 10, 12] (row 3 reached tau: Delta = 1)
    y = make_target(np.array([2.0, 3.0, 5.0, 7.0]), np.array([True, False, True, False]))
    weights = np.array([1.0, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(ipcw_restricted_time(y, 6.0, sample_weight=weights), [2.0, 0.0, 10.0, 12.0])


def test_censoring_survival_rejects_bad_weights() -> None:
    time, event = np.array([1.0, 2.0]), np.array([True, False])
    with pytest.raises(ValueError, match="finite and non-negative"):
        censoring_survival(time, event, np.array([1.0]), sample_weight=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="positive weight"):
        censoring_survival(time, event, np.array([1.0]), sample_weight=np.zeros(2))


def test_a_tiny_censored_weight_tied_with_an_event_keeps_the_censoring_hazard_exact() -> None:
    # at t = 2: events weigh 1, censorings 1e-17. In floats 1 + 1e-17 == 1, so "at risk minus events"
    # is 0; by hand the censored are the whole risk set of censoring: hazard 1e-17 / 1e-17 = 1, G(2+) = 0
    time, event = np.array([2.0, 2.0]), np.array([True, False])
    got = censoring_survival(time, event, np.array([2.0, 2.5]), sample_weight=np.array([1.0, 1e-17]))
    np.testing.assert_array_equal(got, [1.0, 0.0])
