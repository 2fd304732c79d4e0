"""The recommender: every option's rwPFS and OS for a decision, adjusted, with intervals and support.

- **One outcome model per endpoint with the option as input** (an S-learner): the decision features
  followed by the treatment columns of :mod:`linewise.models.candidates`; counterfactual predictions
  set those columns to each option in turn, so the prognostic part is shared by every option, also
  the rarely given ones.
- **Inverse-probability weights** of the candidate class actually given, from the class factor of
  :class:`linewise.models.option_propensity.OptionPropensityModel` (``weighting``; ``"none"`` is the
  naive baseline reported beside it). Local therapy is a choice within the class and is not
  weighted: its small propensities would make the weights noisy.
- **Intervals** from a patient-level bootstrap: ``n_bootstrap`` refits on patients drawn with
  replacement (a patient's decisions stay together), by the rules of
  :mod:`linewise.models.option_predictions`. They describe the uncertainty of the model's estimate
  for patients with these recorded features, not the spread of individual outcomes.
- **Support**: an option whose propensity factors fall below ``min_support`` is flagged and never
  ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES
from linewise.models.candidates import (
    BASELINE,
    OPTIONS,
    TREATMENT_COLUMNS,
    counterfactual_rows,
    option_index,
    training_decisions,
    with_treatment,
)
from linewise.models.cross_fitting import Nuisances
from linewise.models.explain import (
    EXPLAINED_TIMES,
    Explanation,
    SurvivalExplanation,
    best_sides,
    explain_options,
    explain_survival_options,
    make_explainer,
)
from linewise.models.option_predictions import (
    OptionPredictions,
    first_versus_second,
    normal_interval,
    options_table,
    order_statistic_interval,
)
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.propensity import DEFAULT_MIN_SUPPORT
from linewise.models.ranking import fit_ranking, learner_members, probability_best
from linewise.models.sensitivity import restricted_time_sd
from linewise.models.summaries import ENDPOINTS
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


def family_model(family: str, params: dict[str, Any] | None, random_state: int) -> Any:
    """Return the unfitted outcome model of ``family`` (one of :data:`FAMILIES`) with ``params``."""
    model = BoostedCoxModel if family == "boosted_cox" else RandomSurvivalForestModel
    return model(random_state=random_state, **(params or {}))


class TreatmentRecommender(BaseEstimator):
    """Scores every option at a decision with one survival family, adjusted for confounding.

    Parameters
    ----------
    family : {"boosted_cox", "random_survival_forest"}
        Outcome model family (the same for rwPFS and OS).
    learner : str
        What ranks the options (:mod:`linewise.models.ranking`): ``"s"``, the outcome model itself
        (S-learner); ``"t"``, one model per class (T-learner); ``"dr"`` or ``"causal_forest"``, the
        outcome model's TBP value plus differences from TBP learnt from cross-fitted nuisances
        (DR-learner, causal forest); or an ensemble of several joined by ``+`` (``"s+dr"``), the mean of
        its members. Curves, medians, OS and explanations are the outcome models' for every learner.
    weighting : {"ipw", "overlap", "none"}
        Balancing weights of the outcome fits (:mod:`linewise.models.weights`); ``"none"`` is the naive
        model, whose DR-learner and causal forest also use no propensity model.
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
    nuisance_folds : int
        Folds of the cross-fitted nuisances of the DR-learner and the causal forest.
    propensity : estimator, optional
        The propensity model of the options: an unfitted
        :class:`~linewise.models.option_propensity.OptionPropensityModel` (cloned and fitted here), or
        a fitted one wrapped in :class:`sklearn.frozen.FrozenEstimator`, used as it is (for example,
        shared by the candidates of a hyperparameter search, which differ only in their outcome
        models). ``clone`` keeps a frozen model, so a clone fits with the same propensities. Its own
        ``min_support`` decides support. By default an ``OptionPropensityModel(min_support)`` is fitted.

    Attributes
    ----------
    propensity_ : OptionPropensityModel or FrozenEstimator
        The propensity model used.
    models_ : dict
        The outcome model of each endpoint (``"pfs"``, ``"os"``), fitted on every decision.
    replicates_ : dict
        The bootstrap refits of each endpoint's model.
    ranking_ : RankingModel
        The learner's own part (:mod:`linewise.models.ranking`).
    explainer_, explanation_scale_, higher_is_better_
        The SHAP explainer of the rwPFS model and what its values add up to.
    time_grid_ : ndarray
        Months at which survival is predicted.
    n_training_decisions_ : int
    max_training_line_ : int
        The highest line at which a decision was learned from: a later decision is out of scope
        (:mod:`linewise.models.scope`).
    weights_summary_ : dict
        Smallest and largest balancing weight.
    outcome_sd_ : float
        Standard deviation of rwPFS restricted to 24 months in the training decisions (Kaplan-Meier), the
        scale of the E-values (:mod:`linewise.models.sensitivity`).
    n_features_in_ : int
        ``len(FEATURES)``: predictions take the features in
        :data:`linewise.features.examples.FEATURES` order, or a DataFrame with those columns.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "family": [StrOptions(set(FAMILIES))],
        "learner": [str],  # one of LEARNERS or several joined by "+": checked by learner_members
        "weighting": [StrOptions(set(WEIGHTINGS))],
        # 0 (no intervals) or at least 2: one refit has no spread, and its intervals would have no width
        "n_bootstrap": [Options(Integral, {0}), Interval(Integral, 2, None, closed="left")],
        "interval": [Interval(Real, 0, 1, closed="neither")],
        "min_support": [Interval(Real, 0, 1, closed="neither")],
        "model_params": [dict, None],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "n_jobs": [Interval(Integral, 1, None, closed="left")],
        "nuisance_folds": [Interval(Integral, 2, None, closed="left")],
        "propensity": [HasMethods(["fit", "class_and_local", "proba_and_support"]), None],
    }

    def __init__(
        self,
        family: str = "boosted_cox",
        *,
        learner: str = "s",
        weighting: str = "ipw",
        n_bootstrap: int = 20,
        interval: float = 0.90,
        min_support: float = DEFAULT_MIN_SUPPORT,
        model_params: dict[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 2,
        nuisance_folds: int = 3,
        propensity: OptionPropensityModel | FrozenEstimator | None = None,
    ) -> None:
        self.family = family
        self.learner = learner
        self.weighting = weighting
        self.n_bootstrap = n_bootstrap
        self.interval = interval
        self.min_support = min_support
        self.model_params = model_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.nuisance_folds = nuisance_folds
        self.propensity = propensity

    def fit(
        self, examples: pd.DataFrame, y: None = None, *, nuisances: Nuisances | None = None
    ) -> TreatmentRecommender:
        """Fit the propensity model and, per endpoint, the outcome model and its bootstrap replicates.

        Parameters
        ----------
        examples : DataFrame
            Decision examples (:func:`linewise.features.examples.build_examples`); decisions without a
            candidate action (``none``, ``other``, open) are left out.
        y : None
            Unused: the outcomes are columns of ``examples``.
        nuisances : Nuisances, optional
            The rwPFS nuisances of these decisions (in the order of their candidate-action rows),
            cross-fitted on ``nuisance_folds`` folds of their patients by
            :func:`linewise.models.cross_fitting.cross_fit`, with the propensity model of this
            ``weighting`` (constant shares for ``"none"``). Only the DR-learner and the causal forest use
            them; by default they are fitted here.

        Returns
        -------
        TreatmentRecommender

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ``ValueError``: if a parameter breaks :attr:`_parameter_constraints` (for example
            ``n_bootstrap=1``, whose single refit has no spread).
        ValueError
            If no decision has a candidate action, ``learner`` names no learner, or ``nuisances`` belong
            to other decisions or to the other weighting (naive or not).

        Warns
        -----
        linewise.models.exceptions.WeightTruncationWarning
            If an option actually given has a propensity below the weights' floor.
        linewise.models.exceptions.EmptyRiskSetWarning
            If nobody (or no patient drawn by a bootstrap refit) is followed up to the grid's horizon.
        """
        self._validate_params()
        learner_members(self.learner)
        decisions = training_decisions(examples)
        if decisions.empty:
            raise ValueError("no decision with a candidate action to learn from")
        X = validate_data(self, decisions[list(FEATURES)].to_numpy(float), ensure_all_finite="allow-nan")
        observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
        if nuisances is not None and not np.array_equal(nuisances.observed, observed):
            raise ValueError(
                f"nuisances were fitted on other decisions ({len(nuisances.observed)} rows for "
                f"{len(decisions)} decisions, or other options taken)"
            )
        if nuisances is not None and nuisances.naive != (self.weighting == "none"):
            raise ValueError(
                f"weighting={self.weighting!r} needs {'naive' if self.weighting == 'none' else 'propensity'} "
                f"nuisances, found {'naive' if nuisances.naive else 'propensity'} ones"
            )
        template = self.propensity or OptionPropensityModel(min_support=self.min_support)
        self.propensity_ = clone(template).fit(X, observed)  # a FrozenEstimator clones to itself
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
            model = family_model(self.family, self.model_params, self.random_state)
            self.models_[endpoint] = clone(model).fit(design, target, sample_weight=weight)
            replicates = [
                clone(model).set_params(random_state=self.random_state + 1 + b) for b in range(len(draws))
            ]
            replicate_weights = [weight * counts[patient_index] for counts in draws]
            # XGBoost and scikit-survival's tree building release the GIL: threads use both cores
            with ThreadPoolExecutor(max_workers=self.n_jobs) as pool:
                fits = [
                    pool.submit(replicate.fit, design, target, sample_weight=replicate_weight)
                    for replicate, replicate_weight in zip(replicates, replicate_weights, strict=True)
                ]
                self.replicates_[endpoint] = [fit.result() for fit in fits]
            if endpoint == "pfs":
                self.ranking_ = fit_ranking(
                    self.learner,
                    model,
                    X=X,
                    design=design,
                    observed=observed,
                    target=target,
                    weight=weight,
                    replicate_weights=replicate_weights,
                    patients=patient_index,
                    naive=self.weighting == "none",
                    min_support=self.min_support,
                    nuisance_folds=self.nuisance_folds,
                    random_state=self.random_state,
                    n_jobs=self.n_jobs,
                    nuisances=nuisances,
                )
        self.explainer_, self.explanation_scale_, self.higher_is_better_ = make_explainer(self.models_["pfs"])
        self.time_grid_ = self.models_["pfs"].time_grid_
        self.n_training_decisions_ = len(decisions)
        self.max_training_line_ = int(decisions["line_number"].max())
        self.weights_summary_ = {"min": float(weight.min()), "max": float(weight.max())}
        self.outcome_sd_ = restricted_time_sd(
            decisions["pfs_time"].to_numpy(float), decisions["pfs_event"].to_numpy(bool), 24.0
        )
        return self

    def predict_options(self, X: Any) -> OptionPredictions:
        """Predict every option for each decision.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n, len(FEATURES))
            Decision features: a DataFrame with the columns of
            :data:`linewise.features.examples.FEATURES` (in any order; others are ignored), or an array
            in that order. Missing values are NaN.

        Returns
        -------
        OptionPredictions

        Raises
        ------
        ValueError
            If a feature column is missing, the width is not ``len(FEATURES)`` or a value is infinite.
        """
        check_is_fitted(self, "models_")
        features = self._features(X)
        n, k = len(features), len(OPTIONS)
        rows = counterfactual_rows(features)
        alpha = (1.0 - self.interval) / 2.0
        z = float(norm.ppf(1.0 - alpha))

        curves, curve_lower, curve_upper, summary, lower, upper = {}, {}, {}, {}, {}, {}
        grid = self.time_grid_
        for endpoint in ENDPOINTS:
            point = self.models_[endpoint].predict_survival_function(rows).reshape(n, k, -1)
            stack = [point] + [
                m.predict_survival_function(rows).reshape(n, k, -1) for m in self.replicates_[endpoint]
            ]
            curves[endpoint] = point
            replicates = np.stack(stack[1:]) if len(stack) > 1 else point[None]
            curve_lower[endpoint], curve_upper[endpoint] = normal_interval(point, replicates, z, 0.0, 1.0)
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
                    lower[key], upper[key] = order_statistic_interval(estimate, spread, alpha)
                else:
                    horizon = float(name.removeprefix("rmst"))
                    lower[key], upper[key] = normal_interval(estimate, spread, z, 0.0, horizon)
            if endpoint == "pfs":  # the learner's ranked quantity
                point_value, replicate_values = self.ranking_.values(features, rows, values["rmst24"])
                values["rmst24"] = [point_value, *(replicate_values if len(stack) > 1 else [])]
                values_pfs_rmst24 = values["rmst24"]
                summary["pfs_rmst24"] = point_value
                lower["pfs_rmst24"], upper["pfs_rmst24"] = normal_interval(
                    point_value, replicate_values, z, 0.0, 24.0
                )
            for name in ("rmst12", "rmst24"):
                key = f"{endpoint}_{name}_vs_tbp"
                differences = [v - v[:, [BASELINE_INDEX]] for v in values[name]]
                summary[key] = differences[0]
                spread = np.stack(differences[1:]) if len(differences) > 1 else differences[0][None]
                lower[key], upper[key] = normal_interval(differences[0], spread, z)
        propensity, support = self.propensity_.proba_and_support(features)
        ranked = np.stack(values_pfs_rmst24[1:]) if len(values_pfs_rmst24) > 1 else values_pfs_rmst24[0][None]
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
            probability_best=probability_best(ranked, support),
            first_vs_second=first_versus_second(values_pfs_rmst24[0], ranked, support, z, self.outcome_sd_),
        )

    def _features(self, X: Any) -> np.ndarray:
        """Validate prediction features (scikit-learn's ``validate_data`` against the fitted width)."""
        if isinstance(X, pd.DataFrame):
            missing = [name for name in FEATURES if name not in X.columns]
            if missing:
                raise ValueError(f"X lacks {len(missing)} feature column(s), first {missing[0]!r}")
            X = X[list(FEATURES)].to_numpy(float)
        return np.asarray(
            validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
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
        features = self._features(np.asarray(x, dtype=float).reshape(1, -1))
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
        features = self._features(np.asarray(x, dtype=float).reshape(1, -1))
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
            :data:`linewise.models.summaries.SUMMARIES` per endpoint with ``_lower``/``_upper``, the
            differences from TBP (``pfs_rmst24_vs_tbp`` ...), ``propensity``, ``support`` and ``rank``
            (1 = recommended; by rwPFS RMST to 24 months among supported options;
            :data:`linewise.models.summaries.UNRANKED` when unsupported).
        """
        predictions = self.predict_options(examples[list(FEATURES)].to_numpy(float))
        return options_table(examples[list(KEYS)], predictions)
