"""SHAP for the survival forest: values plus expected value equal the forest's RMST and survival exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linewise.features import load_lock
from linewise.features.examples import FEATURES, build_examples
from linewise.models.candidates import OPTIONS, counterfactual_rows, training_decisions
from linewise.models.forest_shap import forest_rmst_shap, forest_survival_shap
from linewise.models.recommender import TreatmentRecommender
from linewise.models.survival import RandomSurvivalForestModel
from linewise.models.target import make_target
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

#: A fixed pseudonym key: the same patients, in the same order, on every run.
KEY = b"forest-shap-test-key------------"

TIMES = (6.0, 12.0, 24.0)


def _fitted(n_estimators: int = 30) -> tuple[RandomSurvivalForestModel, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    time = 10 * np.exp(-0.8 * X[:, 0] + 0.3 * X[:, 1]) * rng.weibull(1.3, 400)
    censor = rng.uniform(2, 48, 400)
    y = make_target(np.maximum(np.minimum(time, censor), 0.05), time <= censor)
    return RandomSurvivalForestModel(n_estimators=n_estimators, min_samples_leaf=10, random_state=0).fit(
        X, y
    ), X


def test_rmst_shap_is_additive_and_points_at_the_signal() -> None:
    model, X = _fitted()
    values, expected = forest_rmst_shap(model, X[:25], 24.0)
    np.testing.assert_allclose(values.sum(axis=1) + expected, model.predict_rmst(X[:25], 24.0), atol=1e-8)
    importance = np.abs(forest_rmst_shap(model, X[:200], 24.0)[0]).mean(axis=0)
    assert importance.argmax() == 0  # the feature that drives survival time


def _fitted_with_missing() -> tuple[RandomSurvivalForestModel, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3))
    time = 10 * np.exp(-0.8 * np.nan_to_num(X[:, 0]) - 0.8 * np.isnan(X[:, 1])) * rng.weibull(1.3, 500)
    X[rng.random(500) < 0.3, 1] = np.nan  # the rows that lost feature 1 are not random in their outcome
    X[rng.random(500) < 0.2, 2] = np.nan
    y = make_target(np.maximum(time, 0.05), np.ones(500, dtype=bool))
    model = RandomSurvivalForestModel(n_estimators=20, min_samples_leaf=10, random_state=0).fit(X, y)
    return model, X


def _survival_at(model: RandomSurvivalForestModel, X: np.ndarray, times: tuple[float, ...]) -> np.ndarray:
    """The forest's own survival at ``times``, found on the grid without the explainer's index helper."""
    columns = [int(np.flatnonzero(np.isclose(model.time_grid_, t))[0]) for t in times]
    return model.predict_survival_function(X)[:, columns]


def test_rmst_shap_is_additive_with_missing_values() -> None:
    """Missing values follow the side each split learned for them, in the forest and in the explainer."""
    model, X = _fitted_with_missing()
    assert any(not tree.tree_.missing_go_to_left.all() for tree in model.forest_.estimators_)
    values, expected = forest_rmst_shap(model, X[:60], 24.0)
    np.testing.assert_allclose(values.sum(axis=1) + expected, model.predict_rmst(X[:60], 24.0), atol=1e-8)


def test_survival_shap_is_additive_at_each_time() -> None:
    model, X = _fitted()
    values, expected = forest_survival_shap(model, X[:25], TIMES)
    assert values.shape == (25, len(TIMES), X.shape[1]) and expected.shape == (len(TIMES),)
    np.testing.assert_allclose(values.sum(axis=-1) + expected, _survival_at(model, X[:25], TIMES), atol=1e-8)
    # one time alone gives the same values as its slice of the vector-valued explanation
    single, single_expected = forest_survival_shap(model, X[:25], [12.0])
    np.testing.assert_allclose(single[:, 0], values[:, 1], atol=1e-12)
    assert single_expected[0] == pytest.approx(expected[1], abs=1e-12)


def test_survival_shap_is_additive_with_missing_values() -> None:
    model, X = _fitted_with_missing()
    assert np.isnan(X[:60]).any()
    values, expected = forest_survival_shap(model, X[:60], TIMES)
    np.testing.assert_allclose(values.sum(axis=-1) + expected, _survival_at(model, X[:60], TIMES), atol=1e-8)


def test_survival_shap_of_the_risk_feature_lowers_survival_more_as_time_goes_on() -> None:
    """Feature 0 shortens survival: at 1 month few events have happened, by 6 months many more."""
    model, X = _fitted()
    values, _ = forest_survival_shap(model, X[:200], (1.0, 6.0))
    risk = values[:, :, 0]
    high, low = X[:200, 0] > 1.0, X[:200, 0] < -1.0
    assert np.all(risk[high] < 0) and np.all(risk[low, 1] > 0)
    assert risk[high, 1].mean() < risk[high, 0].mean() < 0  # a lower survival at the later time
    assert np.abs(values[:, 1]).mean(axis=0).argmax() == 0


@pytest.mark.parametrize("times", [(6.0, 6.25), (12.0, 40.0), (0.0,), (-6.0,)])
def test_survival_shap_rejects_times_off_the_grid(times: tuple[float, ...]) -> None:
    model, X = _fitted(n_estimators=3)
    with pytest.raises(ValueError, match=rf"time {times[-1]:g} is not a time of the model's grid"):
        forest_survival_shap(model, X[:2], times)
    with pytest.raises(ValueError, match="non-empty"):
        forest_survival_shap(model, X[:2], [])


@pytest.fixture(scope="module")
def small_lock(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root: Path = tmp_path_factory.mktemp("survival-shap")
    simulate_lock(300, 3, root / "lock", root / "truth", load_config())
    return build_examples(load_lock(root / "lock", KEY))


def test_recommender_explains_survival_of_every_option(small_lock: pd.DataFrame) -> None:
    recommender = TreatmentRecommender(
        "random_survival_forest", n_bootstrap=0, model_params={"n_estimators": 10, "min_samples_leaf": 20}
    ).fit(small_lock)
    x = training_decisions(small_lock)[list(FEATURES)].to_numpy(float)[0]
    explanation = recommender.explain_survival(x)
    rows = counterfactual_rows(x[None, :])
    survival = _survival_at(recommender.models_["pfs"], rows, TIMES)
    assert explanation.values.shape == (len(OPTIONS), len(TIMES), len(explanation.feature_names))
    np.testing.assert_allclose(explanation.times, TIMES)
    np.testing.assert_allclose(explanation.output, survival, atol=1e-12)
    np.testing.assert_allclose(explanation.values.sum(axis=-1) + explanation.base_values, survival, atol=1e-8)
    with pytest.raises(ValueError, match=r"time 7\.3 is not"):
        recommender.explain_survival(x, times=(7.3,))


def test_recommender_refuses_time_dependent_shap_for_boosted_cox(small_lock: pd.DataFrame) -> None:
    recommender = TreatmentRecommender("boosted_cox", n_bootstrap=0, model_params={"n_estimators": 5}).fit(
        small_lock
    )
    x = training_decisions(small_lock)[list(FEATURES)].to_numpy(float)[0]
    with pytest.raises(ValueError, match=r"not additive in the trees.*log hazard ratio"):
        recommender.explain_survival(x)
