"""E-values of a difference between two options, checked against the paper's closed forms and lifelines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from linewise.models.sensitivity import difference_e_values, e_value, restricted_time_sd


def test_e_value_closed_forms() -> None:
    # VanderWeele and Ding (2017): a risk ratio of 3.9 has E-value 3.9 + sqrt(3.9 * 2.9) = 7.26
    assert e_value(3.9) == pytest.approx(7.263, abs=1e-3)
    assert e_value(1.0) == 1.0
    assert e_value(0.5) == pytest.approx(2 + np.sqrt(2))  # a protective ratio is inverted
    assert e_value(np.inf) == np.inf
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="must be positive"):
            e_value(np.array([1.2, bad]))
    # a difference of thousands of SDs: an infinite risk ratio, no overflow error
    point, _ = difference_e_values(np.array([1e4]), np.array([1e4]), np.array([1e4]), 1.0)
    assert point[0] == np.inf


def test_difference_e_values_by_hand() -> None:
    point, interval = difference_e_values(
        np.array([1.0, 1.0, -2.0]), np.array([0.4, -0.3, -3.0]), np.array([1.6, 2.3, -0.5]), 2.0
    )
    rr = np.exp(0.91 * np.array([0.5, 0.5, 1.0]))
    np.testing.assert_allclose(point, rr + np.sqrt(rr * (rr - 1)))
    rr_bound = np.exp(0.91 * np.array([0.2, 0.0, 0.25]))  # lower 0.4, zero inside, upper -0.5
    np.testing.assert_allclose(interval, rr_bound + np.sqrt(rr_bound * (rr_bound - 1)))
    assert interval[1] == 1.0
    with pytest.raises(ValueError, match="outcome_sd"):
        difference_e_values(np.ones(1), np.ones(1), np.ones(1), 0.0)


@given(
    st.lists(st.floats(0.01, 1.0), min_size=1, max_size=4),
    st.floats(0.1, 5.0),
)
def test_e_values_grow_with_the_difference_and_the_interval_never_exceeds_the_point(
    differences: list[float], sd: float
) -> None:
    values = np.sort(np.asarray(differences))
    point, interval = difference_e_values(values, values * 0.5, values * 1.5, sd)
    assert np.all(np.diff(point) >= -1e-12)
    assert np.all(interval <= point + 1e-12) and np.all(interval >= 1.0)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # lifelines integrates by quad
def test_restricted_time_sd_matches_lifelines() -> None:
    rng = np.random.default_rng(3)
    event_time = rng.exponential(10.0, 400)
    follow = rng.uniform(2, 40, 400)
    time = np.round(np.minimum(event_time, follow), 1)  # ties on purpose
    event = event_time <= follow
    fitted = KaplanMeierFitter().fit(time, event)
    _, variance = restricted_mean_survival_time(fitted, t=24.0, return_variance=True)
    assert restricted_time_sd(time, event, 24.0) == pytest.approx(np.sqrt(variance), rel=1e-3)
    # without censoring it is the sample SD (ddof 0) of min(T, 24)
    assert restricted_time_sd(event_time, np.ones(400, bool), 24.0) == pytest.approx(
        np.minimum(event_time, 24.0).std()
    )
    with pytest.raises(ValueError, match="positive horizon"):
        restricted_time_sd(time, event, 0.0)
