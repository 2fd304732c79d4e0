"""Both survival families through the shared interface, with independent checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from lifelines import NelsonAalenFitter
from sklearn.exceptions import NotFittedError

from linewise.models.exceptions import EmptyRiskSetWarning
from linewise.models.survival import BoostedCoxModel, RandomSurvivalForestModel, time_grid
from linewise.models.target import SurvivalTargetError, make_target

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
    censor = rng.uniform(2, 48, n)
    return X, make_target(np.maximum(np.minimum(time, censor), 0.05), time <= censor)


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_interface_contract(family) -> None:
    X, y = _data()
    model = family()
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        model.predict(X)
    assert model.fit(X, y) is model
    grid = model.time_grid_
    np.testing.assert_allclose(grid, np.arange(1, 73) * 0.5)  # 0.5, 1.0, ..., 36 months
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
    from linewise.models.cox_likelihood import breslow_cumulative_hazard

    _, y = _data(n=300, seed=4)
    margin = np.random.default_rng(1).normal(size=300)
    grid = time_grid(0.5, 36.0)
    weight = np.r_[np.zeros(100), np.ones(200)]
    with_zero = breslow_cumulative_hazard(y["time"], y["event"], weight, margin, grid)
    dropped = breslow_cumulative_hazard(y["time"][100:], y["event"][100:], np.ones(200), margin[100:], grid)
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


def test_weight_two_boosts_like_a_duplicated_row() -> None:
    """The Cox objective counts a case weight as copies: weight 2 on a row = the row twice."""
    from linewise.models.cox_likelihood import cox_gradient

    rng = np.random.default_rng(5)
    time = rng.choice([1.0, 2.0, 3.0, 4.0], size=30)  # ties on purpose (Breslow)
    event = rng.random(30) < 0.7
    margin = rng.normal(size=30)
    weight = np.ones(30)
    weight[[3, 11]] = 2.0
    gradient, hessian = cox_gradient(margin, time, event, weight)
    copies = np.r_[np.arange(30), 3, 11]  # rows 3 and 11 once more, unit weights
    g_copies, h_copies = cox_gradient(margin[copies], time[copies], event[copies], np.ones(32))
    # a weighted row's gradient is the sum over its copies; the others are unchanged
    summed_g = np.bincount(copies, weights=g_copies, minlength=30)
    summed_h = np.bincount(copies, weights=h_copies, minlength=30)
    np.testing.assert_allclose(gradient, summed_g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hessian, summed_h, rtol=1e-12, atol=1e-12)


def test_weights_predict_like_copies() -> None:
    """Without row subsampling, weights 0, 1, 2 predict as dropping, keeping and doubling rows."""
    X, y = _data(n=200, seed=6)
    weight = np.random.default_rng(7).integers(0, 3, 200).astype(float)
    copies = np.repeat(np.arange(200), weight.astype(int))
    settings = {"n_estimators": 20, "subsample": 1.0, "colsample_bytree": 1.0}
    weighted = BoostedCoxModel(**settings).fit(X, y, sample_weight=weight)
    copied = BoostedCoxModel(**settings).fit(X[copies], y[copies])
    # XGBoost's leaf values are float32: agreement to its precision, not to the last bit
    np.testing.assert_allclose(weighted.predict(X), copied.predict(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        weighted.predict_survival_function(X[:20]), copied.predict_survival_function(X[:20]), atol=1e-6
    )


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_a_grid_past_the_last_follow_up_warns_that_nobody_is_at_risk(family) -> None:
    X, y = _data(n=200, seed=8)
    short = make_target(np.minimum(y["time"], 20.0), y["event"] & (y["time"] < 20.0))  # nobody past 20
    last = float(short["time"].max())
    with pytest.warns(EmptyRiskSetWarning, match=rf"nobody is at risk after {last:.2f} months.*36-month"):
        family().fit(X, short)
    # weights count: zero-weight rows do not keep anyone at risk
    weight = np.where(y["time"] >= 30.0, 0.0, 1.0)
    with pytest.warns(EmptyRiskSetWarning, match="nobody is at risk after"):
        family().fit(X, y, sample_weight=weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyRiskSetWarning)
        family().fit(X, y)  # followed past 36 months: no warning
