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
