"""Exact SHAP values for the random survival forest, by conversion to shap's custom tree format.

shap's ``TreeExplainer`` does not accept scikit-survival forests (shap issue 3308). Each tree is
converted to shap's dictionary format (:func:`forest_as_shap_trees`) with, as node values, a linear
function of the node's survival curve on the model's grid. The forest's prediction is the mean of its
trees' leaf curves, so the SHAP values plus the expected value add up exactly (path-dependent TreeSHAP,
tested to 1e-8) to:

- the restricted mean survival time to a horizon (:func:`forest_rmst_shap`), equal to
  :meth:`RandomSurvivalForestModel.predict_rmst`;
- the survival probability at each requested grid time, in one explainer with a vector of node values
  (:func:`forest_survival_shap`), equal to the columns of
  :meth:`RandomSurvivalForestModel.predict_survival_function`.

A missing value follows the side each split learned for it, in the forest and in the explainer.

shap recomputes every internal node's value as the cover-weighted mean of its children in place
(``compute_expectations``); given a value array that is not C-contiguous, it writes into a copy and
drops it, so the internal nodes keep the forest's own (Kaplan-Meier) curves and the expected value is
wrong while the SHAP values are right. Selecting grid columns of a curve array gives a Fortran-ordered
array: that is why a first try at time-dependent values failed shap's additivity check. The values are
therefore always handed over C-contiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shap
from sklearn.utils.validation import check_is_fitted

from linewise.models.survival import RandomSurvivalForestModel
from linewise.models.tree_shap import tree_shap_values


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


def grid_indices(model: RandomSurvivalForestModel, times: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the positions of ``times`` in the model's time grid.

    Parameters
    ----------
    model : RandomSurvivalForestModel
        A fitted forest.
    times : sequence of float
        Grid times (months), at least one.

    Returns
    -------
    ndarray of int, shape (len(times),)

    Raises
    ------
    ValueError
        When ``times`` is empty or holds a value that is not a grid time.
    """
    check_is_fitted(model, "time_grid_")
    grid = model.time_grid_
    requested = np.atleast_1d(np.asarray(times, dtype=float))
    if requested.ndim != 1 or requested.size == 0:
        raise ValueError(f"times must be a non-empty sequence of grid times, found {times!r}")
    nearest = np.argmin(np.abs(grid[None, :] - requested[:, None]), axis=1)
    for time, position in zip(requested, nearest, strict=True):
        if not abs(grid[position] - time) <= 1e-9:
            raise ValueError(
                f"time {time:g} is not a time of the model's grid "
                f"({grid[0]:g} to {grid[-1]:g} months in steps of {model.grid_step:g})"
            )
    return np.asarray(nearest, dtype=int)


def forest_as_shap_trees(
    model: RandomSurvivalForestModel, node_values: Callable[[np.ndarray], np.ndarray]
) -> dict[str, Any]:
    """Return the forest in shap's custom tree format, with node values derived from the node curves.

    Parameters
    ----------
    model : RandomSurvivalForestModel
        A fitted forest.
    node_values : callable
        Maps a tree's node survival curves on the grid, shape (nodes, len(grid)), to the node values
        to explain, shape (nodes, outputs); it must be linear in the curves for the explanation to add
        up to the forest's prediction.

    Returns
    -------
    dict
        ``{"trees": [...]}`` for :class:`shap.TreeExplainer`, each tree's values divided by the number
        of trees (the forest averages them).
    """
    check_is_fitted(model, "forest_")
    trees = []
    count = len(model.forest_.estimators_)
    for estimator in model.forest_.estimators_:
        tree = estimator.tree_
        values = np.asarray(node_values(_node_survival_on_grid(model, tree)), dtype=np.float64)
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
                # C order: shap recomputes internal node values in place (see the module docstring)
                "values": np.ascontiguousarray(values.reshape(len(values), -1) / count),
                "node_sample_weight": tree.weighted_n_node_samples.astype(np.float64),
            }
        )
    return {"trees": trees}


def forest_as_shap_model(model: RandomSurvivalForestModel, horizon: float) -> dict[str, Any]:
    """Return the forest in shap's custom tree format, each node valued at its RMST to ``horizon``.

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
    weights = _rmst_weights(model, horizon)
    first_width = float(min(model.time_grid_[0], horizon))
    return forest_as_shap_trees(model, lambda survival: first_width + survival @ weights)


def forest_survival_as_shap_model(
    model: RandomSurvivalForestModel, times: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Return the forest in shap's custom tree format, each node valued at its survival at ``times``.

    Parameters
    ----------
    model : RandomSurvivalForestModel
        A fitted forest.
    times : sequence of float
        Grid times (months); node values have one column per time.

    Returns
    -------
    dict
        ``{"trees": [...]}`` for :class:`shap.TreeExplainer`.
    """
    index = grid_indices(model, times)
    return forest_as_shap_trees(model, lambda survival: survival[:, index])


def _tree_shap(shap_model: dict[str, Any], X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Path-dependent TreeSHAP: values of shape (n, outputs, p) and expected values (outputs,)."""
    features = np.asarray(X, dtype=float)
    if features.ndim != 2:
        raise ValueError(f"X must be 2-d, found shape {features.shape}")
    explainer = shap.TreeExplainer(shap_model, feature_perturbation="tree_path_dependent")
    values, _ = tree_shap_values(explainer, features)  # shap's values (linewise.models.tree_shap)
    return np.moveaxis(values, 2, 1), np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))


def forest_rmst_shap(model: RandomSurvivalForestModel, X: Any, horizon: float) -> tuple[np.ndarray, float]:
    """SHAP values of the forest's RMST to ``horizon`` (path-dependent TreeSHAP) and the expected value.

    Parameters
    ----------
    model : RandomSurvivalForestModel
        A fitted forest.
    X : array-like of shape (n, p)
        Rows to explain (missing values allowed).
    horizon : float
        RMST horizon (months).

    Returns
    -------
    values : ndarray of shape (n, p)
        ``values.sum(axis=1) + expected`` equals ``model.predict_rmst(X, horizon)``.
    expected : float
    """
    values, expected = _tree_shap(forest_as_shap_model(model, horizon), X)
    return values[:, 0, :], float(expected[0])


def forest_survival_shap(
    model: RandomSurvivalForestModel, X: Any, times: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-dependent SHAP values: of the forest's survival probability at each of ``times``.

    One path-dependent TreeSHAP pass with a vector of node values (the node's survival at each time).

    Parameters
    ----------
    model : RandomSurvivalForestModel
        A fitted forest.
    X : array-like of shape (n, p)
        Rows to explain (missing values allowed).
    times : sequence of float
        Times of the model's grid (:attr:`RandomSurvivalForestModel.time_grid_`, months).

    Returns
    -------
    values : ndarray of shape (n, len(times), p)
        ``values.sum(axis=-1) + expected`` equals ``model.predict_survival_function(X)`` at the
        grid positions of ``times``.
    expected : ndarray of shape (len(times),)
        The expected survival at each time.

    Raises
    ------
    ValueError
        When a time is not a grid time of the model.
    """
    return _tree_shap(forest_survival_as_shap_model(model, times), X)
