"""AIPW policy value: a hand-computed example, closed-form truths, double robustness."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.integrate import quad

from linewise.models.exceptions import WeightTruncationWarning
from linewise.models.ipcw import ipcw_restricted_time
from linewise.models.policy_value import aipw_policy_value, direct_policy_value, ipw_policy_value
from linewise.models.target import make_target

# ---------------------------------------------------------------- a hand-computed example


def test_four_rows_by_hand() -> None:
    # tau = 10, two options, clip = 0.25
    # row  T   event  observed  policy  e(policy)  mu(policy)
    #  0   4   yes    0         0       0.50       5
    #  1   6   no     1         0       0.25       6    censored before tau: Delta = 0, not followed anyway
    #  2  12   no     1         1       0.80       8    follow-up reached tau: Delta = 1, min(T, tau) = 10
    #  3   8   yes    1         1       0.20       7    propensity clipped to 0.25: weight 4
    # censoring KM: at 6, 3 at risk (6, 8, 12), 1 censored: G = 2/3; at 12 the last one: G = 0
    # Y* = [4 / G(4-), 0, 10 / G(10-), 8 / G(8-)] = [4 / 1, 0, 10 / (2/3), 8 / (2/3)] = [4, 0, 15, 12]
    # psi = [5 + 2 (4 - 5), 6, 8 + 1.25 (15 - 8), 7 + 4 (12 - 7)] = [3, 6, 16.75, 27]
    # AIPW = 52.75 / 4 = 13.1875; deviations -10.1875, -7.1875, 3.5625, 13.8125,
    # squares 103.78515625 + 51.66015625 + 12.69140625 + 190.78515625 = 358.921875
    # SE = sqrt(358.921875 / 3 / 4) = 5.469017850583412
    # IPW = (2 * 4 + 0 + 1.25 * 15 + 4 * 12) / 4 = 74.75 / 4 = 18.6875; direct = (5 + 6 + 8 + 7) / 4 = 6.5
    y = make_target(np.array([4.0, 6.0, 12.0, 8.0]), np.array([True, False, False, True]))
    policy, observed = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    propensity = np.array([[0.5, 0.5], [0.25, 0.75], [0.2, 0.8], [0.8, 0.2]])
    outcome = np.array([[5.0, 1.0], [6.0, 1.0], [1.0, 8.0], [1.0, 7.0]])
    np.testing.assert_allclose(ipcw_restricted_time(y, 10.0), [4.0, 0.0, 15.0, 12.0])
    with pytest.warns(WeightTruncationWarning, match=r"1 of 3 decisions .* below 0\.25.* at 4$"):
        result = aipw_policy_value(policy, observed, propensity, outcome, y, 10.0, clip=0.25)
    assert result.value == pytest.approx(13.1875, rel=1e-12)
    assert result.standard_error == pytest.approx(5.469017850583412, rel=1e-12)
    assert result.lower == pytest.approx(13.1875 - 1.959963984540054 * 5.469017850583412, rel=1e-12)
    assert result.upper == pytest.approx(13.1875 + 1.959963984540054 * 5.469017850583412, rel=1e-12)
    assert result.ipw_value == pytest.approx(18.6875, rel=1e-12)
    assert result.direct_value == pytest.approx(6.5, rel=1e-12)
    assert (result.n, result.n_followed, result.n_clipped, result.max_weight) == (4, 3, 1, 4.0)
    with pytest.warns(WeightTruncationWarning, match="1 of 3 decisions"):
        assert ipw_policy_value(policy, observed, propensity, y, 10.0, clip=0.25).value == pytest.approx(
            18.6875
        )
    assert direct_policy_value(policy, outcome).value == pytest.approx(6.5)


# ---------------------------------------------------------------- a synthetic world with a known truth

TAU = 24.0
BASE_RATE = np.array([0.05, 0.08, 0.03])  # events per month at x = 0, by option
RATE_SLOPE = np.array([0.8, -0.6, 1.2])  # log-hazard change per unit of x, by option
ASSIGNMENT_SLOPE = np.array([0.0, 1.5, -1.5])  # multinomial logit of the option taken, per unit of x
THRESHOLD = 0.2  # the evaluated policy: option 0 below x = 0.2, option 2 above


def _rate(x: np.ndarray, option: np.ndarray) -> np.ndarray:
    return np.asarray(BASE_RATE[option] * np.exp(RATE_SLOPE[option] * x))


def _exponential_rmst(rate: np.ndarray | float) -> np.ndarray:
    """Closed-form E[min(T, tau)] for T exponential with this rate."""
    return np.asarray((1 - np.exp(-np.asarray(rate) * TAU)) / rate)


def _true_propensity(x: np.ndarray) -> np.ndarray:
    logits = np.outer(x, ASSIGNMENT_SLOPE)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _policy(x: np.ndarray) -> np.ndarray:
    return np.where(x < THRESHOLD, 0, 2)


def _true_value() -> float:
    """Integral of the policy's closed-form RMST over x ~ Uniform(-1, 1)."""
    below, _ = quad(lambda x: float(_exponential_rmst(_rate(np.array(x), np.array(0)))), -1, THRESHOLD)
    above, _ = quad(lambda x: float(_exponential_rmst(_rate(np.array(x), np.array(2)))), THRESHOLD, 1)
    return (below + above) / 2


TRUE_VALUE = _true_value()


@dataclass(frozen=True)
class World:
    x: np.ndarray
    observed: np.ndarray
    propensity: np.ndarray
    outcome: np.ndarray  # the true conditional restricted mean under each option
    y: np.ndarray
    true_time: np.ndarray

    @property
    def policy(self) -> np.ndarray:
        return _policy(self.x)


def _world(seed: int, *, censoring_max: float | None = None, n: int = 20_000) -> World:
    """Confounded data: x drives both the option taken and the hazard; censoring Uniform(0, max)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    propensity = _true_propensity(x)
    observed = (rng.random(n)[:, None] > np.cumsum(propensity, axis=1)).sum(axis=1)
    true_time = rng.exponential(1 / _rate(x, observed))
    if censoring_max is None:
        y = make_target(true_time, np.ones(n, dtype=bool))
    else:
        censoring = rng.uniform(0, censoring_max, n)
        y = make_target(np.minimum(true_time, censoring), true_time <= censoring)
    outcome = _exponential_rmst(_rate(x[:, None], np.arange(3)[None, :]))
    return World(x, observed, propensity, outcome, y, true_time)


def test_true_value_by_a_second_route() -> None:
    # Monte Carlo of the policy's restricted time on a million patients (independent of quad)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 1_000_000)
    restricted = np.minimum(rng.exponential(1 / _rate(x, _policy(x))), TAU)
    assert abs(restricted.mean() - TRUE_VALUE) < 4 * restricted.std() / 1000


def test_without_censoring_aipw_is_direct_plus_a_mean_zero_correction() -> None:
    world = _world(10)
    result = aipw_policy_value(world.policy, world.observed, world.propensity, world.outcome, world.y, TAU)
    rows = np.arange(world.x.size)
    predicted = world.outcome[rows, world.policy]
    followed = world.observed == world.policy
    residual = np.minimum(world.true_time, TAU) - predicted
    correction = followed / world.propensity[rows, world.policy] * residual
    assert result.direct_value == pytest.approx(predicted.mean(), rel=1e-12)
    assert result.value == pytest.approx(result.direct_value + correction.mean(), rel=1e-12)
    assert abs(correction.mean()) < 3 * correction.std(ddof=1) / np.sqrt(correction.size)
    assert abs(result.value - TRUE_VALUE) < 3 * result.standard_error
    assert result.n_followed == followed.sum() and result.n_clipped == 0


def test_correct_propensity_rescues_a_wrong_outcome_model() -> None:
    world = _world(11)
    wrong_outcome = _exponential_rmst(2 * _rate(-world.x[:, None], np.arange(3)[None, :]))
    aipw = aipw_policy_value(world.policy, world.observed, world.propensity, wrong_outcome, world.y, TAU)
    direct = direct_policy_value(world.policy, wrong_outcome)
    assert abs(aipw.value - TRUE_VALUE) < 3 * aipw.standard_error
    assert abs(direct.value - TRUE_VALUE) > 5 * max(direct.standard_error, aipw.standard_error)


def test_correct_outcome_model_rescues_a_wrong_propensity() -> None:
    world = _world(12)
    wrong_propensity = np.full_like(world.propensity, 1 / 3)  # ignores the confounder
    aipw = aipw_policy_value(world.policy, world.observed, wrong_propensity, world.outcome, world.y, TAU)
    ipw = ipw_policy_value(world.policy, world.observed, wrong_propensity, world.y, TAU)
    assert abs(aipw.value - TRUE_VALUE) < 3 * aipw.standard_error
    assert abs(ipw.value - TRUE_VALUE) > 5 * max(ipw.standard_error, aipw.standard_error)
    right = ipw_policy_value(world.policy, world.observed, world.propensity, world.y, TAU)
    assert abs(right.value - TRUE_VALUE) < 3 * right.standard_error  # IPW is fine with the right one


def test_ipcw_corrects_independent_censoring() -> None:
    world = _world(13, censoring_max=48.0)  # half the patients are censored before tau
    assert 0.3 < (~world.y["event"] & (world.y["time"] < TAU)).mean() < 0.6
    result = aipw_policy_value(world.policy, world.observed, world.propensity, world.outcome, world.y, TAU)
    assert abs(result.value - TRUE_VALUE) < 3 * result.standard_error
    ipw = ipw_policy_value(world.policy, world.observed, world.propensity, world.y, TAU)
    assert abs(ipw.value - TRUE_VALUE) < 3 * ipw.standard_error
    # ignoring censoring (every time taken as an event) is clearly biased, so the check can fail
    as_events = make_target(world.y["time"], np.ones(world.x.size, dtype=bool))
    naive = ipw_policy_value(world.policy, world.observed, world.propensity, as_events, TAU)
    assert TRUE_VALUE - naive.value > 5 * naive.standard_error


def test_integer_sample_weights_equal_repeated_rows() -> None:
    world = _world(14, censoring_max=48.0, n=500)
    repeats = np.random.default_rng(4).integers(0, 3, 500)
    repeats[:2] = 1
    weighted = aipw_policy_value(
        world.policy,
        world.observed,
        world.propensity,
        world.outcome,
        world.y,
        TAU,
        sample_weight=repeats.astype(float),
    )
    repeated = aipw_policy_value(
        np.repeat(world.policy, repeats),
        np.repeat(world.observed, repeats),
        np.repeat(world.propensity, repeats, axis=0),
        np.repeat(world.outcome, repeats, axis=0),
        np.repeat(world.y, repeats),
        TAU,
    )
    assert weighted.value == pytest.approx(repeated.value, rel=1e-10)
    assert weighted.ipw_value == pytest.approx(repeated.ipw_value, rel=1e-10)
    assert weighted.direct_value == pytest.approx(repeated.direct_value, rel=1e-10)


# ---------------------------------------------------------------- input validation


def _valid() -> dict[str, object]:
    return {
        "policy": np.array([0, 1, 1]),
        "observed": np.array([0, 0, 1]),
        "propensity": np.array([[0.5, 0.5], [0.3, 0.7], [0.9, 0.1]]),
        "outcome_prediction": np.array([[5.0, 6.0], [4.0, 3.0], [2.0, 1.0]]),
        "y": make_target(np.array([3.0, 7.0, 9.0]), np.array([True, False, True])),
        "horizon": 6.0,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"policy": np.array([0, 1])}, "policy must have shape"),
        ({"policy": np.array([0, 2, 1])}, "outside 0..1"),
        ({"observed": np.array([-1, 0, 1])}, "outside 0..1"),
        ({"policy": np.array([0.0, 1.0, 1.0])}, "integer option indices"),
        ({"propensity": np.array([[0.5, 0.5], [0.3, 0.6], [0.9, 0.1]])}, "sum to 1"),
        ({"propensity": np.array([[1.5, -0.5], [0.3, 0.7], [0.9, 0.1]])}, "negative"),
        ({"propensity": np.array([0.5, 0.3, 0.9])}, "2-d"),
        ({"outcome_prediction": np.array([[5.0, 6.0], [4.0, 3.0]])}, "shape"),
        ({"outcome_prediction": np.array([[5.0, 6.0], [4.0, -3.0], [2.0, 1.0]])}, "negative"),
        ({"outcome_prediction": np.array([[5.0, 6.0], [4.0, np.nan], [2.0, 1.0]])}, "finite"),
        ({"y": make_target(np.array([3.0, 7.0]), np.array([True, False]))}, "y must have shape"),
        ({"horizon": 0.0}, "horizon"),
        ({"horizon": -1.0}, "horizon"),
        ({"clip": 0.0}, "clip"),
        ({"sample_weight": np.array([1.0, -1.0, 1.0])}, "non-negative"),
        ({"sample_weight": np.array([1.0, 0.0, 0.0])}, "at least 2"),
    ],
)
def test_invalid_inputs_raise(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aipw_policy_value(**{**_valid(), **change})  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties


@st.composite
def _inputs(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(2, 25))
    k = draw(st.integers(2, 5))
    times = draw(hnp.arrays(float, n, elements=st.floats(0.01, 100.0)))
    events = draw(hnp.arrays(bool, n))
    events[draw(st.integers(0, n - 1))] = True  # a survival target needs one event
    raw = draw(hnp.arrays(float, (n, k), elements=st.floats(0.0, 1.0)))
    raw[np.arange(n), draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))] += 0.01
    weights = draw(st.none() | hnp.arrays(float, n, elements=st.floats(0.0, 10.0)))
    if weights is not None:
        weights[:2] = np.maximum(weights[:2], 0.1)
    return {
        "policy": draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1))),
        "observed": draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1))),
        "propensity": raw / raw.sum(axis=1, keepdims=True),
        "outcome_prediction": draw(hnp.arrays(float, (n, k), elements=st.floats(0.0, 100.0))),
        "y": make_target(times, events),
        "horizon": draw(st.floats(0.01, 100.0)),
        "clip": draw(st.floats(1e-4, 1.0)),
        "sample_weight": weights,
    }


@settings(max_examples=150, deadline=None)
@given(_inputs())
def test_estimate_is_finite(inputs: dict[str, object]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeightTruncationWarning)
        result = aipw_policy_value(**inputs)  # type: ignore[arg-type]
    # a warning exactly when a follower's propensity was raised to the clip
    assert [w.category for w in caught] == [WeightTruncationWarning] * (result.n_clipped > 0)
    values = [result.value, result.standard_error, result.lower, result.upper]
    assert np.all(np.isfinite([*values, result.ipw_value, result.direct_value, result.max_weight]))


@settings(max_examples=150, deadline=None)
@given(_inputs(), st.floats(0.0, 100.0), st.data())
def test_never_followed_policy_returns_the_constant_prediction(
    inputs: dict[str, object], constant: float, data: st.DataObject
) -> None:
    observed = np.asarray(inputs["observed"])
    k = np.asarray(inputs["propensity"]).shape[1]
    shift = data.draw(hnp.arrays(np.int64, observed.size, elements=st.integers(1, k - 1)))
    never_followed = (observed + shift) % k
    outcome = np.full((observed.size, k), constant)
    result = aipw_policy_value(**{**inputs, "policy": never_followed, "outcome_prediction": outcome})
    assert result.value == constant
    assert result.direct_value == constant
    assert result.standard_error == 0.0
    assert result.n_followed == 0 and result.max_weight == 0.0
