"""The recommender: every option's rwPFS and OS for a decision, adjusted, with intervals and support.

Design (chosen by measurement against the simulator's ground truth, ``docs/models.md``):

- **one outcome model per endpoint with the option as input** (an "S-learner"): the decision
  features followed by the treatment columns of :mod:`linewise.models.candidates`; counterfactual predictions
  set those columns to each option in turn. On the benchmark lock it captured more of the oracle's
  gain than one model per class (a "T-learner"), whose small classes (300-400 decisions) are fitted
  on too few patients;
- **inverse-probability weights** of the candidate class actually given, from the class factor of
  :class:`linewise.models.option_propensity.OptionPropensityModel` (``weighting``; ``"none"`` is the naive
  baseline reported beside it). Local therapy is a choice within the class and is not weighted: its
  small propensities made the weights noisier and captured less (measured, ``docs/models.md``);
- **intervals** from a patient-level bootstrap: ``n_bootstrap`` refits on patients drawn with
  replacement (a patient's decisions stay together); the interval is the normal bootstrap interval
  ``estimate +/- z * SD(replicates)`` (clipped to [0, 1] for curves, [0, horizon] for RMST), so it
  always contains the estimate; medians, which may be infinite, use the replicates' order statistics
  widened to contain the estimate. They describe the uncertainty of the model's estimate for
  patients with these features, not the spread of individual outcomes;
- **support**: an option whose propensity factors fall below ``min_support`` is flagged and never
  ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES
from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.models.candidates import (
    BASELINE,
    OPTIONS,
    TREATMENT_COLUMNS,
    counterfactual_rows,
    option_index,
    with_treatment,
)
from linewise.models.explain import (
    EXPLAINED_TIMES,
    Explanation,
    SurvivalExplanation,
    best_sides,
    explain_options,
    explain_survival_options,
    make_explainer,
)
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.propensity import DEFAULT_MIN_SUPPORT
from linewise.models.summaries import ENDPOINTS, UNRANKED
from linewise.models.survival import (
    BoostedCoxModel,
    RandomSurvivalForestModel,
    median_from_curves,
    rmst_from_curves,
)
from linewise.models.target import make_target
from linewise.models.weights import WEIGHTINGS, balancing_weights

FAMILIES: Final = ("boosted_cox", "random_survival_forest")
#: Input columns of the outcome models.
MODEL_COLUMNS: Final = (*FEATURES, *TREATMENT_COLUMNS)
BASELINE_INDEX: Final = OPTIONS.index(BASELINE)


def training_decisions(examples: pd.DataFrame) -> pd.DataFrame:
    """Decisions the models learn from: an action among the candidates and a positive follow-up."""
    action = examples["action"].astype("string")
    keep = action.isin(CANDIDATE_CLASSES).fillna(False).to_numpy(bool)
    keep &= (examples["pfs_time"] > 0).to_numpy(bool) & (examples["os_time"] > 0).to_numpy(bool)
    return examples.loc[keep].reset_index(drop=True)


def _family_model(family: str, params: dict[str, Any] | None, random_state: int) -> Any:
    if family == "boosted_cox":
        return BoostedCoxModel(random_state=random_state, **(params or {}))
    if family == "random_survival_forest":
        return RandomSurvivalForestModel(random_state=random_state, **(params or {}))
    raise ValueError(f"family must be one of {FAMILIES}, found {family!r}")


@dataclass(frozen=True)
class OptionPredictions:
    """Predictions for ``n`` decisions and the 16 options.

    ``curves[endpoint]`` holds survival on :attr:`grid`, shape (n, 16, grid); ``summary`` maps
    ``"{endpoint}_{summary}"`` to the point estimate (n, 16); ``lower`` and ``upper`` the bootstrap
    interval of the same; ``curve_lower``/``curve_upper`` the pointwise interval of the curves.
    """

    grid: np.ndarray
    curves: dict[str, np.ndarray]
    curve_lower: dict[str, np.ndarray]
    curve_upper: dict[str, np.ndarray]
    summary: dict[str, np.ndarray]
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    propensity: np.ndarray
    support: np.ndarray


class TreatmentRecommender(BaseEstimator):
    """Scores every option at a decision with one survival family, adjusted for confounding.

    Parameters
    ----------
    family : {"boosted_cox", "random_survival_forest"}
        Outcome model family (the same for rwPFS and OS).
    weighting : {"ipw", "overlap", "none"}
        Balancing weights of the outcome fits (:mod:`linewise.models.weights`); ``"none"`` is the naive model.
    n_bootstrap : int
        Patient-level bootstrap refits for the intervals: 0 (no intervals, bounds equal the point) or
        at least 2.
    interval : float
        Central coverage of the intervals.
    min_support : float
        Positivity threshold (:class:`linewise.models.option_propensity.OptionPropensityModel`).
    model_params : dict, optional
        Parameters of the family's model.
    random_state : int
        Seed of the bootstrap and the models.
    n_jobs : int
        Bootstrap refits run in this many threads (results do not depend on it).
    propensity : OptionPropensityModel, optional
        An already fitted propensity model to use as is (for example, shared by the candidates of a
        hyperparameter search, which differ only in their outcome models); by default one is fitted
        with ``min_support``.
    """

    def __init__(
        self,
        family: str = "boosted_cox",
        *,
        weighting: str = "ipw",
        n_bootstrap: int = 20,
        interval: float = 0.90,
        min_support: float = DEFAULT_MIN_SUPPORT,
        model_params: dict[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 2,
        propensity: OptionPropensityModel | None = None,
    ) -> None:
        self.family = family
        self.weighting = weighting
        self.n_bootstrap = n_bootstrap
        self.interval = interval
        self.min_support = min_support
        self.model_params = model_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.propensity = propensity

    def fit(self, examples: pd.DataFrame, y: None = None) -> TreatmentRecommender:
        """Fit the propensity model and, per endpoint, the outcome model and its bootstrap replicates.

        Parameters
        ----------
        examples : DataFrame
            Decision examples (:func:`linewise.features.examples.build_examples`); decisions without a
            candidate action (``none``, ``other``, open) are left out.
        y : None
            Unused: the outcomes are columns of ``examples``.

        Returns
        -------
        TreatmentRecommender

        Raises
        ------
        ValueError
            If a setting is invalid (family, weighting, interval outside (0, 1), ``n_bootstrap`` of 1 or
            negative) or no decision has a candidate action.
        """
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, found {self.family!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, found {self.weighting!r}")
        if not 0 < self.interval < 1:
            raise ValueError(f"interval must be in (0, 1), found {self.interval}")
        if self.n_bootstrap < 0 or self.n_bootstrap == 1:
            raise ValueError(
                f"n_bootstrap must be 0 (no intervals) or at least 2 (one refit has no spread), "
                f"found {self.n_bootstrap}"
            )
        decisions = training_decisions(examples)
        if decisions.empty:
            raise ValueError("no decision with a candidate action to learn from")
        X = decisions[list(FEATURES)].to_numpy(float)
        observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
        if self.propensity is not None:
            check_is_fitted(self.propensity, "local_model_")
            self.propensity_ = self.propensity
        else:
            self.propensity_ = OptionPropensityModel(min_support=self.min_support).fit(X, observed)
        class_propensity, _ = self.propensity_.class_and_local(X)
        weight = balancing_weights(class_propensity, observed // 2, self.weighting)
        design = with_treatment(X, observed)
        patients = decisions["patient_key"].astype(str).to_numpy()
        _, patient_index = np.unique(patients, return_inverse=True)
        rng = np.random.default_rng(self.random_state)
        count = int(patient_index.max()) + 1
        draws = [np.bincount(rng.integers(0, count, count), minlength=count) for _ in range(self.n_bootstrap)]
        self.models_: dict[str, Any] = {}
        self.replicates_: dict[str, list[Any]] = {}
        for endpoint in ENDPOINTS:
            target = make_target(decisions[f"{endpoint}_time"], decisions[f"{endpoint}_event"].astype(bool))
            model = _family_model(self.family, self.model_params, self.random_state)
            self.models_[endpoint] = clone(model).fit(design, target, sample_weight=weight)
            replicates = [
                clone(model).set_params(random_state=self.random_state + 1 + b) for b in range(len(draws))
            ]
            replicate_weights = [weight * counts[patient_index] for counts in draws]
            # XGBoost and scikit-survival's tree building release the GIL: threads use both cores
            with ThreadPoolExecutor(max_workers=max(1, self.n_jobs)) as pool:
                fits = [
                    pool.submit(replicate.fit, design, target, sample_weight=replicate_weight)
                    for replicate, replicate_weight in zip(replicates, replicate_weights, strict=True)
                ]
                self.replicates_[endpoint] = [fit.result() for fit in fits]
        self.explainer_, self.explanation_scale_, self.higher_is_better_ = make_explainer(self.models_["pfs"])
        self.time_grid_ = self.models_["pfs"].time_grid_
        self.n_training_decisions_ = len(decisions)
        self.weights_summary_ = {"min": float(weight.min()), "max": float(weight.max())}
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(FEATURES, dtype=object)
        return self

    def predict_options(self, X: Any) -> OptionPredictions:
        """Predict every option for each decision.

        Parameters
        ----------
        X : array-like of shape (n, len(FEATURES))
            Decision features in :data:`linewise.features.examples.FEATURES` order.

        Returns
        -------
        OptionPredictions
        """
        check_is_fitted(self, "models_")
        features = np.asarray(X, dtype=float)
        if features.ndim != 2 or features.shape[1] != len(FEATURES):
            raise ValueError(f"X must have shape (n, {len(FEATURES)}), found {features.shape}")
        n, k = len(features), len(OPTIONS)
        rows = counterfactual_rows(features)
        alpha = (1.0 - self.interval) / 2.0
        z = float(norm.ppf(1.0 - alpha))

        def bounds(
            point: np.ndarray, spread: np.ndarray, low: float = -np.inf, high: float = np.inf
        ) -> tuple[np.ndarray, np.ndarray]:
            # normal bootstrap interval around the full-data estimate: the replicates see about 63% of
            # the patients each and sit shifted from it, so their percentiles can exclude the estimate
            half = z * spread.std(axis=0, ddof=1) if len(spread) > 1 else np.zeros_like(point)
            return np.clip(point - half, low, high), np.clip(point + half, low, high)

        def median_bounds(point: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # medians may be infinite (not reached by 36 months): order statistics, widened to the estimate
            lower = np.quantile(spread, alpha, axis=0, method="lower")
            upper = np.quantile(spread, 1.0 - alpha, axis=0, method="higher")
            return np.minimum(lower, point), np.maximum(upper, point)

        curves, curve_lower, curve_upper, summary, lower, upper = {}, {}, {}, {}, {}, {}
        grid = self.time_grid_
        for endpoint in ENDPOINTS:
            point = self.models_[endpoint].predict_survival_function(rows).reshape(n, k, -1)
            stack = [point] + [
                m.predict_survival_function(rows).reshape(n, k, -1) for m in self.replicates_[endpoint]
            ]
            curves[endpoint] = point
            replicates = np.stack(stack[1:]) if len(stack) > 1 else point[None]
            curve_lower[endpoint], curve_upper[endpoint] = bounds(point, replicates, 0.0, 1.0)
            values = {
                "rmst12": [rmst_from_curves(s, grid, 12.0) for s in stack],
                "rmst24": [rmst_from_curves(s, grid, 24.0) for s in stack],
                "median": [median_from_curves(s, grid) for s in stack],
            }
            for name, (estimate, *others) in values.items():
                key = f"{endpoint}_{name}"
                summary[key] = estimate
                spread = np.stack(others) if others else estimate[None]
                if name == "median":
                    lower[key], upper[key] = median_bounds(estimate, spread)
                else:
                    lower[key], upper[key] = bounds(estimate, spread, 0.0, float(name.removeprefix("rmst")))
            for name in ("rmst12", "rmst24"):
                key = f"{endpoint}_{name}_vs_tbp"
                differences = [v - v[:, [BASELINE_INDEX]] for v in values[name]]
                summary[key] = differences[0]
                spread = np.stack(differences[1:]) if len(differences) > 1 else differences[0][None]
                lower[key], upper[key] = bounds(differences[0], spread)
        propensity, support = self.propensity_.proba_and_support(features)
        return OptionPredictions(
            grid=grid,
            curves=curves,
            curve_lower=curve_lower,
            curve_upper=curve_upper,
            summary=summary,
            lower=lower,
            upper=upper,
            propensity=propensity,
            support=support,
        )

    def explain(self, x: Any, predictions: OptionPredictions | None = None) -> Explanation:
        """Exact SHAP values of one decision's options and of TBP versus the best switch (rwPFS model).

        Parameters
        ----------
        x : array-like of shape (len(FEATURES),)
            One decision's features.
        predictions : OptionPredictions, optional
            This decision's predictions, when already computed (they choose the contrast's sides).

        Returns
        -------
        Explanation
        """
        check_is_fitted(self, "models_")
        features = np.asarray(x, dtype=float).reshape(1, -1)
        predictions = predictions or self.predict_options(features)
        sides = best_sides(predictions.summary["pfs_rmst24"][0], predictions.support[0])
        rows = counterfactual_rows(features)
        return explain_options(
            self.models_["pfs"],
            self.explainer_,
            self.explanation_scale_,
            self.higher_is_better_,
            rows,
            MODEL_COLUMNS,
            sides,
        )

    def explain_survival(self, x: Any, times: Sequence[float] = EXPLAINED_TIMES) -> SurvivalExplanation:
        """Time-dependent SHAP values of one decision's options: rwPFS survival at each of ``times``.

        Forest family only. The 16 counterfactual rows are those of :meth:`explain`; for each option and
        time, the values plus the base value equal the forest's survival probability.

        Parameters
        ----------
        x : array-like of shape (len(FEATURES),)
            One decision's features.
        times : sequence of float
            Times of the model's grid (months).

        Returns
        -------
        SurvivalExplanation

        Raises
        ------
        ValueError
            For the ``boosted_cox`` family: its survival ``S(t) = exp(-H0(t) exp(eta))`` is not additive
            in the trees, and its explanation is the time-independent log hazard ratio of :meth:`explain`.
            Also when a time is not a grid time.
        """
        check_is_fitted(self, "models_")
        features = np.asarray(x, dtype=float).reshape(1, -1)
        if features.shape[1] != len(FEATURES):
            raise ValueError(f"x must have {len(FEATURES)} features, found {features.shape[1]}")
        return explain_survival_options(
            self.models_["pfs"], counterfactual_rows(features), MODEL_COLUMNS, times
        )

    def recommend(self, examples: pd.DataFrame) -> pd.DataFrame:
        """Score every option of every decision: one row per decision and option.

        Parameters
        ----------
        examples : DataFrame
            Rows with the key columns and :data:`linewise.features.examples.FEATURES`.

        Returns
        -------
        DataFrame
            Keys, ``candidate``, ``local_therapy``, ``option`` (label), each summary of
            :data:`SUMMARIES` per endpoint with ``_lower``/``_upper``, the differences from TBP
            (``pfs_rmst24_vs_tbp`` ...), ``propensity``, ``support`` and ``rank`` (1 = recommended;
            by rwPFS RMST to 24 months among supported options; :data:`UNRANKED` when unsupported).
        """
        predictions = self.predict_options(examples[list(FEATURES)].to_numpy(float))
        return options_table(examples[list(KEYS)], predictions)


def options_table(keys: pd.DataFrame, predictions: OptionPredictions) -> pd.DataFrame:
    """Lay :class:`OptionPredictions` out long: one row per decision and option, ranked."""
    n, k = predictions.propensity.shape
    table = keys.loc[keys.index.repeat(k)].reset_index(drop=True)
    table["candidate"] = [o.candidate for o in OPTIONS] * n
    table["local_therapy"] = [o.local_therapy for o in OPTIONS] * n
    table["option"] = [o.label for o in OPTIONS] * n
    for key, value in predictions.summary.items():
        table[key] = value.ravel()
        table[f"{key}_lower"] = predictions.lower[key].ravel()
        table[f"{key}_upper"] = predictions.upper[key].ravel()
    table["propensity"] = predictions.propensity.ravel()
    table["support"] = predictions.support.ravel()
    score = np.where(predictions.support, predictions.summary["pfs_rmst24"], -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(1, k + 1)
    table["rank"] = np.where(predictions.support, rank, UNRANKED).ravel().astype(np.int64)
    return table
