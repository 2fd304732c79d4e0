"""Both survival families through the shared interface, with independent checks."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import NelsonAalenFitter
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from linewise.models.survival import BoostedCoxModel, RandomSurvivalForestModel, time_grid
from linewise.models.target import SurvivalTargetError, make_target, to_xgboost_label

FAMILIES = {
    "random_survival_forest": lambda: RandomSurvivalForestModel(
        n_estimators=40, min_samples_leaf=10, random_state=0
    ),
    "boosted_cox": lambda: BoostedCoxModel(n_estimators=80, learning_rate=0.1, random_state=0),
}


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Weibull times whose log scale falls with the first feature; uniform censoring."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    scale = 10.0 * np.exp(-0.8 * X[:, 0])
    time = scale * rng.weibull(1.3, n)
    censor = rng.uniform(2, 40, n)
    return X, make_target(np.maximum(np.minimum(time, censor), 0.05), time <= censor)


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_interface_contract(family) -> None:
    X, y = _data()
    model = family()
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert model.fit(X, y) is model
    grid = model.time_grid_
    np.testing.assert_allclose(grid, time_grid(0.5, 36.0))
    survival = model.predict_survival_function(X[:50])
    assert survival.shape == (50, len(grid))
    assert np.all(np.diff(survival, axis=1) <= 1e-12) and np.all((survival >= 0) & (survival <= 1))
    rmst = model.predict_rmst(X[:50], 24.0)
    assert np.all((rmst > 0) & (rmst <= 24.0))
    assert np.all(model.predict_rmst(X[:50], 12.0) <= rmst)
    median = model.predict_median(X[:50])
    assert np.all(median > 0)
    assert model.score(X, y) > 0.65  # strong signal on the first feature
    risk = model.predict(X)
    assert np.corrcoef(risk, X[:, 0])[0, 1] > 0.5  # higher feature, shorter survival, higher risk
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_rmst_is_the_area_under_the_step_curve(family) -> None:
    X, y = _data()
    model = family().fit(X, y)
    survival = model.predict_survival_function(X[:5])
    # closed form for a step curve on a 0.5-month grid: 0.5 * (1 + S(0.5) + ... + S(11.5))
    by_hand = 0.5 * (1.0 + survival[:, :23].sum(axis=1))
    np.testing.assert_allclose(model.predict_rmst(X[:5], 12.0), by_hand)


def test_breslow_equals_nelson_aalen_when_all_risks_are_equal() -> None:
    X, y = _data(seed=3)
    model = BoostedCoxModel(n_estimators=0).fit(X, y)  # no trees: one risk for everyone
    fitter = NelsonAalenFitter(nelson_aalen_smoothing=False).fit(
        y["time"], y["event"]
    )  # Breslow: d/n at ties
    expected = fitter.cumulative_hazard_at_times(model.time_grid_).to_numpy()
    risk = np.exp(model.predict(X[:1]))[0]
    np.testing.assert_allclose(model.baseline_cumulative_hazard_ * risk, expected, rtol=1e-6)


def test_breslow_baseline_is_weighted() -> None:
    """Zero-weight rows leave the Breslow baseline exactly as if they were dropped (same margins)."""
    from linewise.models.survival import _breslow

    _, y = _data(n=300, seed=4)
    margin = np.random.default_rng(1).normal(size=300)
    grid = time_grid(0.5, 36.0)
    weight = np.r_[np.zeros(100), np.ones(200)]
    with_zero = _breslow(y["time"], y["event"], weight, margin, grid)
    dropped = _breslow(y["time"][100:], y["event"][100:], np.ones(200), margin[100:], grid)
    np.testing.assert_allclose(with_zero, dropped)


def test_forest_weights_change_the_fit() -> None:
    X, y = _data(n=300)
    plain = RandomSurvivalForestModel(n_estimators=20, random_state=0).fit(X, y)
    weighted = RandomSurvivalForestModel(n_estimators=20, random_state=0).fit(
        X, y, sample_weight=np.where(X[:, 0] > 0, 5.0, 1.0)
    )
    assert not np.allclose(plain.predict(X), weighted.predict(X))


def test_bad_targets_and_parameters() -> None:
    X, y = _data(n=50)
    with pytest.raises(SurvivalTargetError, match="structured array"):
        BoostedCoxModel().fit(X, y["time"])
    with pytest.raises(SurvivalTargetError, match="positive and finite"):
        BoostedCoxModel().fit(X, make_target(np.r_[0.0, y["time"][1:]], y["event"]))
    with pytest.raises(SurvivalTargetError, match="no observed event"):
        BoostedCoxModel().fit(X, make_target(y["time"], np.zeros(50, bool)))
    with pytest.raises(ValueError, match="grid_step"):
        RandomSurvivalForestModel(grid_step=0).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        BoostedCoxModel().fit(X, y, sample_weight=-np.ones(50))
    model = BoostedCoxModel(n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match="horizon"):
        model.predict_rmst(X, 48.0)


def test_xgboost_label_adapter() -> None:
    y = make_target(np.array([1.0, 2.0, 3.0]), np.array([True, False, True]))
    np.testing.assert_array_equal(to_xgboost_label(y), [1.0, -2.0, 3.0])
