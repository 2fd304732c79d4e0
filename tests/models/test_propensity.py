"""Propensity: recovers known multinomial probabilities, is calibrated, flags positivity."""

from __future__ import annotations

import numpy as np
import pytest

from linewise.models.propensity import PropensityModel

CANDIDATES = ("tbp", "chemo", "et_mono", "adc")


def _draw(n: int, seed: int, *, step: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Actions from a known multinomial logit on two features (with ``step``: adc never when x0 < 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    adc = np.where(X[:, 0] > 1.0, 0.5, -np.inf) if step else 0.7 * X[:, 0] - 1.0
    logits = np.column_stack([0.8 * X[:, 0], -0.8 * X[:, 0] + 0.5 * X[:, 1], np.zeros(n), adc])
    probability = np.exp(logits - logits.max(axis=1, keepdims=True))
    probability /= probability.sum(axis=1, keepdims=True)
    actions = np.array([rng.choice(CANDIDATES, p=p) for p in probability], dtype=object)
    return X, actions, probability


def test_recovers_the_true_probabilities() -> None:
    X, actions, _ = _draw(6000, 0)
    model = PropensityModel(CANDIDATES).fit(X, actions)
    new_x, _, truth = _draw(2000, 1)
    predicted = model.predict_proba(new_x)
    assert predicted.shape == (2000, 4)
    assert np.abs(predicted - truth).mean() < 0.03


def test_calibrated_within_deciles() -> None:
    X, actions, _ = _draw(6000, 2)
    model = PropensityModel(CANDIDATES).fit(X, actions)
    new_x, new_actions, _ = _draw(4000, 3)
    predicted = model.predict_proba(new_x)[:, 0]  # tbp
    observed = new_actions == "tbp"
    edges = np.quantile(predicted, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, 9)
    for b in range(10):
        mean_predicted, frequency = predicted[bins == b].mean(), observed[bins == b].mean()
        standard_error = np.sqrt(mean_predicted * (1 - mean_predicted) / (bins == b).sum())
        assert abs(mean_predicted - frequency) < 4 * standard_error, b  # binomial noise only


def test_positivity_flag() -> None:
    X, actions, _ = _draw(6000, 4, step=True)
    model = PropensityModel(CANDIDATES, min_support=0.05).fit(X, actions)
    grid = np.column_stack([np.array([-1.5, 0.0, 2.0]), np.zeros(3)])
    support = model.support(grid)
    assert not support[0, 3] and not support[1, 3]  # adc was never given below x0 = 1
    assert support[2, 3]  # true propensity about 0.33
    assert support[1, :3].all()  # at x0 = 0 the other three are common
    assert not support[2, 1]  # true chemo propensity at x0 = 2 is about 0.03


def test_unseen_candidate_and_missing_values() -> None:
    X, actions, _ = _draw(2000, 5, step=True)
    X[::7, 1] = np.nan
    model = PropensityModel((*CANDIDATES, "oral_serd")).fit(X, actions)
    probability = model.predict_proba(X[:10])
    assert np.all(probability[:, 4] == 0) and not model.support(X[:10])[:, 4].any()
    assert np.isfinite(probability).all()


def test_bad_inputs() -> None:
    X, actions, _ = _draw(200, 6)
    with pytest.raises(ValueError, match="outside the candidates"):
        PropensityModel(("tbp", "chemo")).fit(X, actions)
    with pytest.raises(ValueError, match="min_support"):
        PropensityModel(CANDIDATES, min_support=1.5).fit(X, actions)
    with pytest.raises(ValueError, match="at least two"):
        PropensityModel(CANDIDATES).fit(X, np.full(200, "tbp", dtype=object))


def test_a_class_given_fewer_times_than_the_calibration_folds_is_left_out() -> None:
    X, actions, _ = _draw(600, 4)
    actions = actions.copy()
    actions[actions == "adc"] = "chemo"
    actions[:2] = "adc"  # twice: three calibration folds cannot each hold it
    model = PropensityModel(CANDIDATES).fit(X, actions)
    predicted = model.predict_proba(X)
    assert (predicted[:, CANDIDATES.index("adc")] == 0).all()
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0)
    # the other classes are fitted as if the two rows were not there
    alone = PropensityModel(CANDIDATES).fit(X[2:], actions[2:])
    np.testing.assert_allclose(predicted, alone.predict_proba(X), rtol=1e-12)
    with pytest.raises(ValueError, match="at least two actions observed 3 times"):
        PropensityModel(CANDIDATES).fit(X[:4], np.array(["adc", "adc", "tbp", "tbp"], dtype=object))
