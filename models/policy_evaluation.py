"""Fit on one lock's decisions, judge on another's: held-out metrics, AIPW values and, with truth, capture.

:func:`evaluate_policy` returns one flat dictionary of figures (the keys are listed in
``docs/models.md``). The adjusted recommender (inverse-probability weights) and the naive one (no
weights, same family and settings) are both fitted; every truth figure is given for both.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
from sksurv.metrics import concordance_index_censored

from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES
from linewise.models.candidates import BASELINE, OPTIONS, option_index, with_treatment
from linewise.models.evaluation import survival_metrics
from linewise.models.ipcw import ipcw_restricted_time
from linewise.models.policy_truth import policy_truth_metrics, truth_precision
from linewise.models.policy_value import aipw_policy_value
from linewise.models.recommender import (
    BASELINE_INDEX,
    OptionPredictions,
    TreatmentRecommender,
    options_table,
    training_decisions,
)
from linewise.models.target import make_target

#: Columns of the truth that the evaluation reads; ``os_rmst24_se`` is the Monte Carlo standard error of
#: each true OS RMST24 (the rwPFS truth is a closed form).
TRUTH_COLUMNS: Final = ("pfs_scale", "pfs_rmst24", "os_rmst24", "os_rmst24_se")
#: Fewest bootstrap refits whose intervals have a width to judge.
MIN_BOOTSTRAP: Final = 2
OS_TRUTH_ERROR: Final = "os_rmst24_se"


def check_refits(n_bootstrap: int, model: TreatmentRecommender | None = None) -> None:
    """Refuse to judge intervals that have no width: fewer than :data:`MIN_BOOTSTRAP` refits.

    Parameters
    ----------
    n_bootstrap : int
        Refits asked for (used when no ``model`` is given).
    model : TreatmentRecommender, optional
        A fitted recommender to be judged instead; its own ``n_bootstrap`` counts.

    Raises
    ------
    ValueError
        If the refits that would be judged are fewer than :data:`MIN_BOOTSTRAP`.
    """
    refits = model.n_bootstrap if model is not None else n_bootstrap
    if refits < MIN_BOOTSTRAP:
        whose = "the registered model was fitted with" if model is not None else "asked for"
        raise ValueError(
            f"the interval figures need at least {MIN_BOOTSTRAP} bootstrap refits; {whose} {refits}"
        )


def evaluate_policy(
    train: pd.DataFrame,
    test: pd.DataFrame,
    truth: pd.DataFrame | None = None,
    *,
    family: str = "boosted_cox",
    n_bootstrap: int = 20,
    random_state: int = 0,
    model: TreatmentRecommender | None = None,
) -> dict[str, Any]:
    """Fit the adjusted and naive recommenders on ``train`` and report how they do on ``test``.

    Parameters
    ----------
    train, test : DataFrame
        Decision examples (:func:`linewise.features.examples.build_examples`) of two locks (or two
        patient sets).
    truth : DataFrame, optional
        The test lock's ground truth keyed by ``patient_key`` (already pseudonymised), ``line_number``,
        ``decision_day``, ``candidate``, ``local_therapy``, with :data:`TRUTH_COLUMNS`.
    family : str
        Outcome model family.
    n_bootstrap : int
        Bootstrap refits for the intervals, at least 2 (the interval figures need a spread).
    random_state : int
        Seed.
    model : TreatmentRecommender, optional
        An already fitted recommender (a registered model) judged instead of fitting the adjusted one;
        the naive baseline is still fitted on ``train`` with its family, parameters and bootstrap.

    Returns
    -------
    dict
        Figures by name (floats, counts, and the family and settings).

    Raises
    ------
    ValueError
        If the judged model has fewer than 2 bootstrap refits (its intervals would have no width and
        their coverage would read 0), or the test lock has no decision with a candidate action.
    """
    check_refits(n_bootstrap, model)
    adjusted = model or TreatmentRecommender(
        family, weighting="ipw", n_bootstrap=n_bootstrap, random_state=random_state
    ).fit(train)
    naive = TreatmentRecommender(
        adjusted.family,
        weighting="none",
        n_bootstrap=adjusted.n_bootstrap,
        model_params=adjusted.model_params,
        random_state=random_state,
    ).fit(train)
    fitted = {"ipw": adjusted, "none": naive}
    decisions = training_decisions(test)
    if decisions.empty:
        raise ValueError("the test lock has no decision with a candidate action")
    X = decisions[list(FEATURES)].to_numpy(float)
    observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
    predictions = {name: fitted_model.predict_options(X) for name, fitted_model in fitted.items()}
    figures: dict[str, Any] = {
        "family": adjusted.family,
        "weighting": adjusted.weighting,
        "n_bootstrap": adjusted.n_bootstrap,
        "train_decisions": adjusted.n_training_decisions_,
        "test_decisions": len(decisions),
        "test_patients": int(decisions["patient_key"].nunique()),
    }
    figures |= assess(adjusted, train, decisions, predictions["ipw"])
    if truth is not None:
        figures |= _truth_figures(decisions, observed, predictions, truth)
    return figures


def assess(
    model: TreatmentRecommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    predictions: OptionPredictions | None = None,
) -> dict[str, float]:
    """Held-out figures of one fitted recommender that need no ground truth.

    Parameters
    ----------
    model : TreatmentRecommender
        A fitted recommender.
    train : DataFrame
        The examples it was fitted on (censoring distribution of Uno's C and the time-dependent AUC).
    test : DataFrame
        Held-out examples; decisions without a candidate action are left out.
    predictions : OptionPredictions, optional
        ``model.predict_options`` of the test decisions, when already computed.

    Returns
    -------
    dict
        The discrimination and calibration keys (``c_index_rwpfs``, ``uno_c_rwpfs`` ...) for rwPFS and
        OS, and the AIPW values (``aipw_rwpfs_rmst24_model`` ...) of ``docs/models.md``.
    """
    decisions = training_decisions(test)
    if decisions.empty:
        raise ValueError("the held-out part has no decision with a candidate action")
    observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
    if predictions is None:
        predictions = model.predict_options(decisions[list(FEATURES)].to_numpy(float))
    figures = _held_out_metrics(model, training_decisions(train), decisions, observed)
    return figures | _aipw_figures(model, predictions, decisions, observed)


def _held_out_metrics(
    model: TreatmentRecommender, train: pd.DataFrame, test: pd.DataFrame, observed: np.ndarray
) -> dict[str, float]:
    """Discrimination and calibration of the outcome models for the option actually taken."""
    rows = with_treatment(test[list(FEATURES)].to_numpy(float), observed)
    figures: dict[str, float] = {}
    for endpoint, label in (("pfs", "rwpfs"), ("os", "os")):
        y_train = make_target(train[f"{endpoint}_time"], train[f"{endpoint}_event"].astype(bool))
        y_test = make_target(test[f"{endpoint}_time"], test[f"{endpoint}_event"].astype(bool))
        outcome = model.models_[endpoint]
        metrics = survival_metrics(
            y_train,
            y_test,
            outcome.predict(rows),
            outcome.predict_survival_function(rows),
            outcome.time_grid_,
        )
        for name, value in metrics.items():
            figures[f"{name.replace('harrell_c', 'c_index')}_{label}"] = value
    return figures


def _aipw_figures(
    model: TreatmentRecommender, predictions: OptionPredictions, test: pd.DataFrame, observed: np.ndarray
) -> dict[str, float]:
    """Return the rwPFS RMST24 of the model's policy and always-TBP (AIPW), and of observed practice.

    Observed practice is not a function of the features, so its value is the IPCW mean of the
    restricted times actually seen, with a Wald interval.
    """
    y = make_target(test["pfs_time"], test["pfs_event"].astype(bool))
    mu = predictions.summary["pfs_rmst24"]
    score = np.where(predictions.support, mu, -np.inf)
    policies = {
        "model": np.argmax(score, axis=1),
        "always_tbp": np.full(len(test), OPTIONS.index(BASELINE)),
    }
    seen = ipcw_restricted_time(y, 24.0)
    half_width = 1.959963984540054 * seen.std(ddof=1) / np.sqrt(len(seen))
    figures: dict[str, float] = {
        "aipw_rwpfs_rmst24_observed": float(seen.mean()),
        "aipw_rwpfs_rmst24_observed_lower": float(seen.mean() - half_width),
        "aipw_rwpfs_rmst24_observed_upper": float(seen.mean() + half_width),
    }
    for name, policy in policies.items():
        value = aipw_policy_value(policy, observed, predictions.propensity, mu, y, 24.0)
        figures[f"aipw_rwpfs_rmst24_{name}"] = value.value
        figures[f"aipw_rwpfs_rmst24_{name}_lower"] = value.lower
        figures[f"aipw_rwpfs_rmst24_{name}_upper"] = value.upper
    return figures


def _truth_figures(
    test: pd.DataFrame,
    observed: np.ndarray,
    predictions: dict[str, OptionPredictions],
    truth: pd.DataFrame,
) -> dict[str, Any]:
    """Ground-truth figures of the adjusted and naive models (simulated locks only)."""
    keys = test[list(KEYS)].reset_index(drop=True)
    absent = [column for column in TRUTH_COLUMNS if column not in truth.columns]
    if absent:
        raise ValueError(f"the truth table lacks the column(s) {absent}: simulate it with linewise simulate")
    joined = options_table(keys, predictions["ipw"])[[*KEYS, "candidate", "local_therapy"]].merge(
        truth[[*KEYS, "candidate", "local_therapy", *TRUTH_COLUMNS]],
        on=[*KEYS, "candidate", "local_therapy"],
        how="left",
        validate="one_to_one",
    )
    missing = int(joined[list(TRUTH_COLUMNS)].isna().any(axis=1).sum())
    if missing:
        raise ValueError(f"the truth table lacks {missing} decision-option rows of the test lock")
    n, k = len(test), len(OPTIONS)
    decision = np.repeat(np.arange(n), k)
    observed_table = pd.DataFrame(
        {
            "decision": np.arange(n),
            "candidate": [OPTIONS[i].candidate for i in observed],
            "local_therapy": [OPTIONS[i].local_therapy for i in observed],
        }
    )
    y = make_target(test["pfs_time"], test["pfs_event"].astype(bool))
    true_scale = joined["pfs_scale"].to_numpy().reshape(n, k)[np.arange(n), observed]
    figures: dict[str, Any] = {
        "c_index_true_risk": float(concordance_index_censored(y["event"], y["time"], -np.log(true_scale))[0])
    }
    for endpoint, label in (("pfs", "rwpfs"), ("os", "os")):
        column = f"{endpoint}_rmst24"
        standard_error = (
            None if endpoint == "pfs" else joined[OS_TRUTH_ERROR].to_numpy(float).reshape(n, k)
        )  # rwPFS: a closed form
        precision = truth_precision(joined[column].to_numpy(float).reshape(n, k), standard_error)
        figures.update({f"{metric}_{label}_rmst24": figure for metric, figure in precision.items()})
        truth_long = pd.DataFrame(
            {
                "decision": decision,
                "candidate": joined["candidate"],
                "local_therapy": joined["local_therapy"].astype(bool),
                "true": joined[column].to_numpy(float),
            }
        )
        for name, prediction in predictions.items():
            scores = truth_long[["decision", "candidate", "local_therapy"]].assign(
                predicted=prediction.summary[column].ravel(),
                lower=prediction.lower[column].ravel(),
                upper=prediction.upper[column].ravel(),
                supported=prediction.support.ravel(),
            )
            metrics = policy_truth_metrics(scores, truth_long, observed_table)
            prefix = "" if name == "ipw" else "naive_"
            for metric, value in metrics.items():
                figures[f"{prefix}{metric}_{label}_rmst24"] = value
            # the intervals of each option's difference from TBP against the true difference; TBP's own
            # row (0 in [0, 0], always covered) is left out
            true_values = truth_long["true"].to_numpy().reshape(n, k)
            true_difference = true_values - true_values[:, [BASELINE_INDEX]]
            counted = prediction.support.copy()
            counted[:, BASELINE_INDEX] = False
            lower, upper = prediction.lower[f"{column}_vs_tbp"], prediction.upper[f"{column}_vs_tbp"]
            if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
                raise ValueError(f"the intervals of {column}_vs_tbp must be finite")
            covered = (lower <= true_difference) & (true_difference <= upper)
            coverage = float(covered[counted].mean()) if counted.any() else float("nan")
            figures[f"{prefix}interval_coverage_90_vs_tbp_{label}_rmst24"] = coverage
    figures["interval_coverage_90"] = figures["interval_coverage_90_rwpfs_rmst24"]
    return figures
