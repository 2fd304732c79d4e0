"""The censoring-unbiased restricted time and the pseudo-outcomes, against independent figures."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from linewise.models.censoring_unbiased import censoring_unbiased_rmst, dr_pseudo_outcomes
from linewise.models.target import make_target

HORIZON = 24.0


def test_without_censoring_the_transform_is_the_restricted_time() -> None:
    rng = np.random.default_rng(1)
    time = rng.exponential(20.0, 300)  # off the grid, some past the horizon
    grid = np.arange(1, 49) * 0.5
    survival = np.exp(-np.outer(np.ones(300), grid) / 20.0)
    adjusted = censoring_unbiased_rmst(
        make_target(time, np.ones(300, dtype=bool)), HORIZON, grid, np.ones((300, 48)), survival
    )
    np.testing.assert_allclose(adjusted, np.minimum(time, HORIZON), rtol=1e-12)


def test_with_pooled_kaplan_meier_curves_the_mean_is_the_kaplan_meier_rmst() -> None:
    rng = np.random.default_rng(2)
    n = 400
    event_time, censoring_time = rng.exponential(20.0, n), rng.exponential(30.0, n)
    time, event = np.minimum(event_time, censoring_time), event_time <= censoring_time
    grid = np.unique(np.concatenate([time[time < HORIZON], [HORIZON]]))
    outcome = KaplanMeierFitter().fit(time, event)
    censoring = KaplanMeierFitter().fit(time, ~event)
    adjusted = censoring_unbiased_rmst(
        make_target(time, event),
        HORIZON,
        grid,
        np.tile(censoring.survival_function_at_times(grid).to_numpy(), (n, 1)),
        np.tile(outcome.survival_function_at_times(grid).to_numpy(), (n, 1)),
        floor=1e-9,
    )
    assert adjusted.mean() == pytest.approx(restricted_mean_survival_time(outcome, t=HORIZON), rel=1e-10)


@pytest.fixture(scope="module")
def dependent_censoring() -> dict[str, np.ndarray]:
    """Exponential event and censoring times whose rates both depend on one binary feature."""
    rng = np.random.default_rng(3)
    n = 40_000
    x = rng.random(n) < 0.5
    event_rate, censoring_rate = 0.1 * (1 + x), 0.02 + 0.08 * x
    event_time, censoring_time = rng.exponential(1 / event_rate), rng.exponential(1 / censoring_rate)
    time, event = np.minimum(event_time, censoring_time), event_time <= censoring_time
    grid = np.arange(1, 97) * 0.25
    return {
        "y": make_target(time, event),
        "grid": grid,
        "true_rmst": np.mean((1 - np.exp(-event_rate * HORIZON)) / event_rate),  # closed form
        "true_survival": np.exp(-np.outer(event_rate, grid)),
        "true_censoring": np.exp(-np.outer(censoring_rate, grid)),
        "pooled_survival": np.tile(
            KaplanMeierFitter().fit(time, event).survival_function_at_times(grid), (n, 1)
        ),
        "pooled_censoring": np.tile(
            KaplanMeierFitter().fit(time, ~event).survival_function_at_times(grid), (n, 1)
        ),
    }


@pytest.mark.parametrize(
    ("censoring", "outcome", "unbiased"),
    [
        ("pooled_censoring", "true_survival", True),  # the outcome model is right
        ("true_censoring", "pooled_survival", True),  # the censoring model is right
        ("pooled_censoring", "pooled_survival", False),  # both wrong: the test can fail
    ],
)
def test_the_transform_is_unbiased_when_either_model_is_right(
    dependent_censoring: dict[str, np.ndarray], censoring: str, outcome: str, unbiased: bool
) -> None:
    data = dependent_censoring
    adjusted = censoring_unbiased_rmst(
        data["y"], HORIZON, data["grid"], data[censoring], data[outcome], floor=1e-6
    )
    error = adjusted.mean() - float(data["true_rmst"])
    standard_error = adjusted.std(ddof=1) / np.sqrt(adjusted.size)
    # a 0.25-month grid moves the mean by a few hundredths; the sampling error is about 0.04
    assert bool(abs(error) < 4 * standard_error) is unbiased, (error, standard_error)


def test_pseudo_outcomes_by_hand() -> None:
    observed = np.array([0, 1, 1])
    propensity = np.array([[0.5, 0.5], [0.25, 0.75], [0.995, 0.005]])
    outcome = np.array([[10.0, 12.0], [8.0, 9.0], [6.0, 7.0]])
    adjusted = np.array([14.0, 3.0, 9.0])
    expected = np.array(
        [
            [10.0 + (14.0 - 10.0) / 0.5, 12.0],
            [8.0, 9.0 + (3.0 - 9.0) / 0.75],
            [6.0, 7.0 + (9.0 - 7.0) / 0.01],  # the propensity 0.005 is clipped at 0.01
        ]
    )
    np.testing.assert_allclose(dr_pseudo_outcomes(observed, propensity, outcome, adjusted), expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": np.array([1.0, 0.5, 24.0])}, "increasing"),
        ({"grid": np.array([1.0, 23.0])}, "must be one of the grid times"),
        ({"floor": 0.0}, "floor"),
        ({"censoring_survival": np.full((2, 2), 1.5)}, "probabilities"),
        ({"outcome_survival": np.ones((2, 3))}, "shape"),
    ],
)
def test_bad_inputs_are_refused(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "y": make_target(np.array([3.0, 30.0]), np.array([True, False])),
        "horizon": HORIZON,
        "grid": np.array([12.0, 24.0]),
        "censoring_survival": np.ones((2, 2)),
        "outcome_survival": np.ones((2, 2)),
    } | change
    with pytest.raises(ValueError, match=message):
        censoring_unbiased_rmst(**arguments)  # type: ignore[arg-type]
