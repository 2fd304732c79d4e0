"""SHAP for the survival forest: values plus expected value equal the forest's RMST exactly."""

from __future__ import annotations

import numpy as np

from models.forest_shap import forest_rmst_shap
from models.survival import RandomSurvivalForestModel
from models.target import make_target


def _fitted(n_estimators: int = 30) -> tuple[RandomSurvivalForestModel, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    time = 10 * np.exp(-0.8 * X[:, 0] + 0.3 * X[:, 1]) * rng.weibull(1.3, 400)
    censor = rng.uniform(2, 40, 400)
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


def test_rmst_shap_is_additive_with_missing_values() -> None:
    """Missing values follow the side each split learned for them, in the forest and in the explainer."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3))
    time = 10 * np.exp(-0.8 * np.nan_to_num(X[:, 0]) - 0.8 * np.isnan(X[:, 1])) * rng.weibull(1.3, 500)
    X[rng.random(500) < 0.3, 1] = np.nan  # the rows that lost feature 1 are not random in their outcome
    X[rng.random(500) < 0.2, 2] = np.nan
    y = make_target(np.maximum(time, 0.05), np.ones(500, dtype=bool))
    model = RandomSurvivalForestModel(n_estimators=20, min_samples_leaf=10, random_state=0).fit(X, y)
    assert any(not tree.tree_.missing_go_to_left.all() for tree in model.forest_.estimators_)
    values, expected = forest_rmst_shap(model, X[:60], 24.0)
    np.testing.assert_allclose(values.sum(axis=1) + expected, model.predict_rmst(X[:60], 24.0), atol=1e-8)
