"""Grouped path-dependent TreeSHAP against shap's own C++ values, on the forest's explainers."""

from __future__ import annotations

import numpy as np
import pytest
import shap

from linewise.models.explain import make_explainer
from linewise.models.forest_shap import forest_as_shap_model, forest_survival_as_shap_model
from linewise.models.survival import BoostedCoxModel, RandomSurvivalForestModel
from linewise.models.target import make_target
from linewise.models.tree_shap import supports, tree_shap_values


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    X[:, 4:] = rng.integers(0, 2, size=(400, 2))  # treatment-like indicators
    time = 10 * np.exp(-0.8 * X[:, 0] + 0.5 * X[:, 4]) * rng.weibull(1.3, 400)
    censor = rng.uniform(2, 40, 400)
    X[rng.random(400) < 0.2, 1] = np.nan
    return X, make_target(np.maximum(np.minimum(time, censor), 0.05), time <= censor)


def _rows() -> np.ndarray:
    """Rows that share their first four features and differ in the indicators, then unrelated rows."""
    rng = np.random.default_rng(1)
    shared = np.repeat(rng.normal(size=(1, 6)), 4, axis=0)
    shared[:, 4:] = [[0, 0], [0, 1], [1, 0], [1, 1]]
    shared[:, 2] = np.nan
    other = rng.normal(size=(12, 6))
    other[rng.random((12, 6)) < 0.2] = np.nan
    return np.vstack([shared, other])


@pytest.fixture(scope="module")
def forest() -> RandomSurvivalForestModel:
    X, y = _data()
    return RandomSurvivalForestModel(
        n_estimators=15, min_samples_leaf=8, max_features=0.5, random_state=0
    ).fit(X, y)


def test_rmst_values_equal_shap(forest: RandomSurvivalForestModel) -> None:
    explainer = shap.TreeExplainer(
        forest_as_shap_model(forest, 24.0), feature_perturbation="tree_path_dependent"
    )
    rows = _rows()
    values, expected = tree_shap_values(explainer, rows)
    np.testing.assert_allclose(values[:, :, 0], explainer.shap_values(rows), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        values.sum(axis=1)[:, 0] + expected[0], forest.predict_rmst(rows, 24.0), atol=1e-8
    )


def test_vector_values_equal_shap(forest: RandomSurvivalForestModel) -> None:
    model = forest_survival_as_shap_model(forest, (6.0, 12.0, 24.0))
    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    rows = _rows()
    values, _ = tree_shap_values(explainer, rows)
    np.testing.assert_allclose(values, explainer.shap_values(rows), rtol=0, atol=1e-12)


def test_other_explainers_are_left_to_shap() -> None:
    X, y = _data()
    explainer, _, _ = make_explainer(BoostedCoxModel(n_estimators=5).fit(X, y))
    assert not supports(explainer)
    with pytest.raises(ValueError, match="custom tree model"):
        tree_shap_values(explainer, X[:2])


def test_rows_must_be_a_matrix(forest: RandomSurvivalForestModel) -> None:
    explainer, _, _ = make_explainer(forest)
    with pytest.raises(ValueError, match="2-d"):
        tree_shap_values(explainer, np.zeros(6))
