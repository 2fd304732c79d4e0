"""Exact SHAP explanations of a recommendation: every option's score and TBP versus the best switch.

The rwPFS outcome model is explained, on the scale it predicts:

- boosted Cox: ``shap.TreeExplainer`` on the XGBoost booster, in **log hazard ratio** (higher means
  shorter rwPFS);
- random survival forest: the trees in shap's custom format with each node's RMST to 24 months
  (:mod:`linewise.models.forest_shap`), in **months of rwPFS RMST24**.

Both use path-dependent TreeSHAP, so each option's values plus the base value equal the model's output
for that option's counterfactual row. The contrast is the difference of two options' SHAP values; the
base value cancels, so it adds up to the difference of the two outputs.

Time-dependent explanations (:func:`explain_survival_options`) exist for the forest only: SHAP values
of each option's rwPFS survival probability at a few grid times
(:func:`linewise.models.forest_shap.forest_survival_shap`). The boosted Cox model's survival
``S(t) = exp(-H0(t) exp(eta))`` is not a sum over its trees, so TreeSHAP cannot explain it exactly; its
explanation is the time-independent log hazard ratio above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shap

from linewise.models.candidates import OPTIONS
from linewise.models.forest_shap import forest_as_shap_model, forest_survival_shap, grid_indices
from linewise.models.survival import BoostedCoxModel, RandomSurvivalForestModel
from linewise.models.tree_shap import supports, tree_shap_values

EXPLAINED_HORIZON: Final = 24.0
#: Default times (months) of the time-dependent explanations.
EXPLAINED_TIMES: Final = (6.0, 12.0, 24.0)
_TBP_OPTIONS: Final = tuple(i for i, o in enumerate(OPTIONS) if o.candidate == "tbp")
_SWITCH_OPTIONS: Final = tuple(i for i, o in enumerate(OPTIONS) if o.candidate != "tbp")


@dataclass(frozen=True)
class Explanation:
    """SHAP values of one decision's options and of the TBP-versus-best-switch contrast.

    Attributes
    ----------
    scale : str
        What the values add up to.
    higher_is_better : bool
        False for a log hazard ratio, True for RMST.
    feature_names : tuple of str
        Columns of ``values``: decision features, then treatment columns.
    base_value : float
        The explainer's expected output.
    output : ndarray of shape (16,)
        The model's output for each option.
    values : ndarray of shape (16, p)
        SHAP values per option.
    tbp_option, switch_option : int
        Indices in :data:`linewise.models.candidates.OPTIONS` of the contrast's two sides.
    contrast_values : ndarray of shape (p,)
        ``values[tbp_option] - values[switch_option]``.
    contrast_output : float
        ``output[tbp_option] - output[switch_option]``.
    """

    scale: str
    higher_is_better: bool
    feature_names: tuple[str, ...]
    base_value: float
    output: np.ndarray
    values: np.ndarray
    tbp_option: int
    switch_option: int
    contrast_values: np.ndarray
    contrast_output: float


def make_explainer(model: Any) -> tuple[shap.TreeExplainer, str, bool]:
    """Build the TreeSHAP explainer of a fitted rwPFS model, with its scale and direction.

    Parameters
    ----------
    model : BoostedCoxModel or RandomSurvivalForestModel
        A fitted model.

    Returns
    -------
    explainer, scale, higher_is_better
    """
    if isinstance(model, BoostedCoxModel):
        explainer = shap.TreeExplainer(model.booster_, feature_perturbation="tree_path_dependent")
        return explainer, "log hazard ratio of rwPFS", False
    if isinstance(model, RandomSurvivalForestModel):
        explainer = shap.TreeExplainer(
            forest_as_shap_model(model, EXPLAINED_HORIZON), feature_perturbation="tree_path_dependent"
        )
        return explainer, "rwPFS RMST to 24 months (months)", True
    raise TypeError(f"cannot explain a {type(model).__name__}")


def best_sides(score: np.ndarray, support: np.ndarray) -> tuple[int, int]:
    """Return the contrast's sides: the best TBP option and the best switch, supported ones first.

    Parameters
    ----------
    score : ndarray of shape (16,)
        Higher is better (the ranking score, rwPFS RMST24).
    support : ndarray of bool, shape (16,)
        Support flags.

    Returns
    -------
    tbp_option, switch_option : int
    """

    def best(indices: tuple[int, ...]) -> int:
        supported = [i for i in indices if support[i]]
        pool = supported or list(indices)
        return max(pool, key=lambda i: (score[i], -i))

    return best(_TBP_OPTIONS), best(_SWITCH_OPTIONS)


def model_output(model: Any, rows: np.ndarray) -> np.ndarray:
    """Return what the explanation adds up to: the log hazard ratio (boosted Cox) or the RMST24 (forest)."""
    if isinstance(model, RandomSurvivalForestModel):
        return np.asarray(model.predict_rmst(rows, EXPLAINED_HORIZON))
    return np.asarray(model.predict(rows), dtype=float)


def explain_options(
    model: Any,
    explainer: shap.TreeExplainer,
    scale: str,
    higher_is_better: bool,
    rows: np.ndarray,
    feature_names: tuple[str, ...],
    sides: tuple[int, int],
) -> Explanation:
    """SHAP values of one decision's 16 counterfactual rows and of the contrast between two of them.

    Parameters
    ----------
    model : BoostedCoxModel or RandomSurvivalForestModel
        The fitted rwPFS model that ``explainer`` explains.
    explainer, scale, higher_is_better
        From :func:`make_explainer`.
    rows : ndarray of shape (16, p)
        The decision under every option (:func:`linewise.models.candidates.counterfactual_rows`).
    feature_names : tuple of str
        Column names of ``rows``.
    sides : (int, int)
        The TBP option and the switch option of the contrast (:func:`best_sides`).

    Returns
    -------
    Explanation
    """
    features = np.asarray(rows, dtype=float)
    if supports(explainer):  # the forest: shap's values, computed once per group of rows that agree
        values = tree_shap_values(explainer, features)[0][:, :, 0]
    else:
        values = np.asarray(explainer.shap_values(features), dtype=float)
    base = float(np.ravel(explainer.expected_value)[0])
    output = model_output(model, rows)
    tbp, switch = sides
    return Explanation(
        scale=scale,
        higher_is_better=higher_is_better,
        feature_names=feature_names,
        base_value=base,
        output=output,
        values=values,
        tbp_option=tbp,
        switch_option=switch,
        contrast_values=values[tbp] - values[switch],
        contrast_output=float(output[tbp] - output[switch]),
    )


@dataclass(frozen=True)
class SurvivalExplanation:
    """SHAP values of one decision's options for the survival probability at a few times (forest only).

    Attributes
    ----------
    scale : str
        What the values add up to.
    feature_names : tuple of str
        Last axis of ``values``: decision features, then treatment columns.
    times : ndarray of shape (T,)
        Grid times (months).
    base_values : ndarray of shape (T,)
        The explainer's expected survival at each time.
    output : ndarray of shape (16, T)
        The model's survival probability of each option at each time.
    values : ndarray of shape (16, T, p)
        SHAP values per option and time: ``values.sum(-1) + base_values == output``. A negative value
        lowers the survival probability at that time.
    """

    scale: str
    feature_names: tuple[str, ...]
    times: np.ndarray
    base_values: np.ndarray
    output: np.ndarray
    values: np.ndarray


def explain_survival_options(
    model: Any, rows: np.ndarray, feature_names: tuple[str, ...], times: Sequence[float]
) -> SurvivalExplanation:
    """Time-dependent SHAP values of one decision's counterfactual rows: survival at each of ``times``.

    Parameters
    ----------
    model : RandomSurvivalForestModel
        The fitted rwPFS model.
    rows : ndarray of shape (16, p)
        The decision under every option.
    feature_names : tuple of str
        Column names of ``rows``.
    times : sequence of float
        Times of the model's grid (months).

    Returns
    -------
    SurvivalExplanation

    Raises
    ------
    ValueError
        For a boosted Cox model (its survival is not additive in its trees), or when a time is not a
        grid time.
    """
    if isinstance(model, BoostedCoxModel):
        raise ValueError(
            "time-dependent SHAP values exist for the random survival forest only: the boosted Cox "
            "survival S(t) = exp(-H0(t) exp(eta)) is not additive in the trees, so TreeSHAP cannot "
            "explain it exactly; its explanation is the time-independent log hazard ratio eta (explain())"
        )
    if not isinstance(model, RandomSurvivalForestModel):
        raise TypeError(f"cannot explain a {type(model).__name__}")
    index = grid_indices(model, times)
    values, base = forest_survival_shap(model, rows, times)
    return SurvivalExplanation(
        scale="rwPFS survival probability",
        feature_names=feature_names,
        times=np.asarray(model.time_grid_[index], dtype=float),
        base_values=base,
        output=np.asarray(model.predict_survival_function(rows))[:, index],
        values=values,
    )
