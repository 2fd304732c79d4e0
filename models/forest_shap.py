"""Exact SHAP values for the random survival forest, by conversion to shap's custom tree format.

shap's ``TreeExplainer`` does not accept scikit-survival forests (shap issue 3308). Each tree is
converted to shap's dictionary format with, as node value, the restricted mean survival time of the
node's survival curve on the model's grid. The forest's prediction is the mean of its trees' survival
curves and RMST is linear in the curve, so the SHAP values plus the expected value add up exactly to
:meth:`RandomSurvivalForestModel.predict_rmst` (tested). Time-dependent explanations (a vector value
per node) are not done yet: shap's additivity check failed for them in a first try.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shap
from sklearn.utils.validation import check_is_fitted

from models.survival import RandomSurvivalForestModel


def _node_survival_on_grid(model: RandomSurvivalForestModel, tree: Any) -> np.ndarray:
    survival = tree.value[
        :, :, 1
    ]  # (nodes, unique times): scikit-survival stores (cumulative hazard, survival)
    times = model.forest_.unique_times_
    index = np.searchsorted(times, model.time_grid_, side="right") - 1
    padded = np.concatenate([np.ones((survival.shape[0], 1)), survival], axis=1)
    return np.asarray(padded[:, index + 1])


def _rmst_weights(model: RandomSurvivalForestModel, horizon: float) -> np.ndarray:
    """Weights w such that RMST = 1 * width_0 + S(grid) @ w (the step-curve integral of the mixin)."""
    grid = model.time_grid_
    starts = np.concatenate([[0.0], grid[:-1]])
    widths = np.clip(np.minimum(grid, horizon) - starts, 0.0, None)
    return np.concatenate([widths[1:], [0.0]])


def forest_as_shap_model(model: RandomSurvivalForestModel, horizon: float) -> dict[str, Any]:
    """Return the forest in shap's custom tree format.

    Parameters
    ----------
    model : RandomSurvivalForestModel
        A fitted forest.
    horizon : float
        Node values are the RMST to this horizon (months).

    Returns
    -------
    dict
        ``{"trees": [...]}`` for :class:`shap.TreeExplainer`.
    """
    check_is_fitted(model, "forest_")
    trees = []
    count = len(model.forest_.estimators_)
    first_width = float(min(model.time_grid_[0], horizon))
    for estimator in model.forest_.estimators_:
        tree = estimator.tree_
        survival = _node_survival_on_grid(model, tree)
        values = (first_width + survival @ _rmst_weights(model, horizon))[:, None]
        trees.append(
            {
                "children_left": tree.children_left.astype(np.int32),
                "children_right": tree.children_right.astype(np.int32),
                # a missing value follows the side the tree learned for it at each split
                "children_default": np.where(
                    tree.missing_go_to_left.astype(bool), tree.children_left, tree.children_right
                ).astype(np.int32),
                "features": tree.feature.astype(np.int32),
                "thresholds": tree.threshold.astype(np.float64),
                "values": np.asarray(values, dtype=np.float64) / count,
                "node_sample_weight": tree.weighted_n_node_samples.astype(np.float64),
            }
        )
    return {"trees": trees}


def forest_rmst_shap(model: RandomSurvivalForestModel, X: Any, horizon: float) -> tuple[np.ndarray, float]:
    """SHAP values of the forest's RMST to ``horizon`` (path-dependent TreeSHAP) and the expected value."""
    explainer = shap.TreeExplainer(
        forest_as_shap_model(model, horizon), feature_perturbation="tree_path_dependent"
    )
    values = np.asarray(explainer.shap_values(np.asarray(X, dtype=float)))
    return values, float(np.ravel(explainer.expected_value)[0])
