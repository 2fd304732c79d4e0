"""Choice of learner, family and hyperparameters by the lock's own evidence: a cross-fitted policy value.

``linewise train`` does not choose by prognosis (Harrell's C) but by the quantity that matters: the
rwPFS restricted to 24 months of following each candidate's recommendations, estimated on decisions
that the candidate did not learn from.

1. The development decisions are split into ``selection.folds`` folds of patients
   (:func:`linewise.models.cross_fitting.patient_folds`).
2. The evaluator's nuisances are cross-fitted once on these folds
   (:func:`linewise.models.cross_fitting.cross_fit`: propensity, a boosted Cox outcome model and a
   boosted Cox censoring model, each blind to the fold it predicts; always with the propensity model,
   whatever ``weighting`` says). They give every decision the doubly robust pseudo-outcome
   ``Gamma_i(a)`` of every option (augmented IPCW for the censoring, AIPW for the option; propensities
   clipped at :data:`EVALUATION_CLIP`).
3. For each fold and each candidate setting (family and hyperparameters), the propensity model, the
   balancing weights, the outcome model and every learner of the setting are fitted on the other
   folds, without bootstrap. The DR-learner and the causal forest learn from nuisances cross-fitted
   again **within** the other folds (two folds of their patients; their naive twin when ``weighting``
   is ``none``), so that nothing a candidate learns from has seen the fold it is judged on. Each
   learner ranks the fold's options; the recommendation is the best option that the fold's propensity
   model supports, and the option actually taken where none is supported.
4. A candidate's value is the mean of ``Gamma_i`` at its recommendations over all development
   decisions, with a 95% Wald interval whose standard error is clustered by patient. It is the AIPW
   value of the cross-fitted policy.
5. For each setting with at least two learners, the mean of the ranked values of its
   ``selection.ensemble_size`` best learners is one more candidate (an ensemble ``"s+dr"``, no new fit).
6. The winner is the first listed candidate that is not significantly worse than the best
   (:func:`first_not_worse`): its value trails the best by at most ``selection.tolerance_se``
   (default 1.96) standard errors of the paired difference (the mean of ``Gamma_i`` at the best
   candidate's recommendation minus ``Gamma_i`` at this one's, clustered by patient; decisions where
   the two recommend the same option add zero to it). Against a best picked on the same decisions,
   1.96 is a one-sided test at about 2.5%. Ensembles are listed last, so one wins only when every
   single learner trails the best clearly. The candidates' values differ by less than their noise more
   often than not, and the highest of several noisy values is mostly luck: a candidate listed later
   replaces an earlier one only on evidence that it is better, so the order of the candidates is a
   prior, the most robust first. With ``tolerance_se: 0`` the highest value wins (ties: the first
   listed).
   The winner's value is optimistic (selected among noisy estimates): the honest estimate of the
   registered model is the doubly robust value on the test part
   (:mod:`linewise.training.held_out_value`), which ``linewise train`` reports beside it.

Harrell's C of each candidate's out-of-fold ranked value of the option taken (a prognostic figure)
is reported in the table; it plays no part in the choice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.base import clone
from sksurv.metrics import concordance_index_censored

from linewise.features.examples import FEATURES
from linewise.models.candidates import (
    OPTIONS,
    counterfactual_rows,
    option_index,
    training_decisions,
    with_treatment,
)
from linewise.models.cross_fitting import HORIZON, Nuisances, cross_fit, patient_folds
from linewise.models.dr_value import clustered_mean, dr_policy_value, recommendations
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.ranking import NUISANCE_LEARNERS, censoring_model, fit_ranking, nuisance_outcome_model
from linewise.models.recommender import family_model
from linewise.models.survival import rmst_from_curves
from linewise.models.target import make_target
from linewise.models.weights import balancing_weights
from linewise.training.config import CandidateConfig, TrainingConfig

#: Propensity floor of the evaluation's pseudo-outcomes (that of :func:`aipw_policy_value`).
EVALUATION_CLIP: Final = 0.01

#: Columns of :attr:`SelectionResult.table`.
TABLE_COLUMNS: Final = (
    "candidate",
    "setting",
    "family",
    "learner",
    "params",
    "policy_value_rwpfs_rmst24",
    "policy_value_se",
    "policy_value_lower",
    "policy_value_upper",
    "gap_to_best",
    "gap_se",
    "c_index_rwpfs",
    "fit_seconds",
)


@dataclass(frozen=True)
class SelectionResult:
    """The candidates' estimated values and the winner.

    Attributes
    ----------
    table : DataFrame
        One row per candidate (:data:`TABLE_COLUMNS`), in the order tried; ensembles last.
        ``gap_to_best`` is the best value minus the candidate's, ``gap_se`` the patient-clustered
        standard error of that paired difference. ``fit_seconds`` is the setting's fitting time shared
        out among its learners (an ensemble's is the sum of its members').
    chosen : int
        The winner's row of :attr:`table` (:func:`first_not_worse`).
    family, learner : str
        The winner's family and learner (an ensemble is written ``"s+dr"``).
    params : dict
        The winner's hyperparameters.
    value, lower, upper : float
        The winner's estimated value (months) and 95% interval.
    nuisances : Nuisances
        The evaluator's cross-fitted nuisances of the development decisions, on :attr:`folds`, with the
        propensity model; the final model reuses them (or their naive twin).
    folds : int
        Folds of patients.
    policies : ndarray of int, shape (candidates, n)
        Each candidate's out-of-fold recommendation for every development decision with a candidate
        action (in the order of :func:`linewise.models.candidates.training_decisions`), as an index of
        :data:`linewise.models.candidates.OPTIONS`.
    """

    table: pd.DataFrame
    chosen: int
    family: str
    learner: str
    params: dict[str, Any]
    value: float
    lower: float
    upper: float
    nuisances: Nuisances
    folds: int
    policies: np.ndarray


@dataclass(frozen=True)
class _Lock:
    """The development decisions as arrays."""

    X: np.ndarray
    observed: np.ndarray
    target: np.ndarray
    patients: np.ndarray
    folds: np.ndarray


def select(development: pd.DataFrame, config: TrainingConfig) -> SelectionResult:
    """Estimate every candidate's policy value by cross-fitting and choose one (module docstring).

    Parameters
    ----------
    development : DataFrame
        Decision examples the final model is fitted on (decisions without a candidate action are left
        out).
    config : TrainingConfig
        Candidates, folds, ensemble size, weighting, support threshold and seed.

    Returns
    -------
    SelectionResult

    Raises
    ------
    ValueError
        If no decision has a candidate action or there are fewer patients than folds.
    """
    decisions = training_decisions(development)
    if decisions.empty:
        raise ValueError("the development part has no decision with a candidate action")
    X = decisions[list(FEATURES)].to_numpy(float)
    observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
    _, patients = np.unique(decisions["patient_key"].astype(str).to_numpy(), return_inverse=True)
    selection = config.selection
    lock = _Lock(
        X=X,
        observed=observed,
        target=make_target(decisions["pfs_time"], decisions["pfs_event"].astype(bool)),
        patients=patients,
        folds=patient_folds(patients, selection.folds, config.seed),
    )
    nuisances = _nuisances(lock.X, lock.observed, lock.target, lock.folds, config)
    scores = nuisances.pseudo_outcomes(clip=EVALUATION_CLIP)
    needed = any(learner in NUISANCE_LEARNERS for c in selection.candidates for learner in c.learners)
    inner = {
        int(fold): _inner_nuisances(lock, lock.folds != fold, config) if needed else None
        for fold in np.unique(lock.folds)
    }
    # every setting learns on the same other folds: one propensity model per fold serves them all
    propensities = {
        fold: OptionPropensityModel(min_support=config.min_support).fit(
            lock.X[lock.folds != fold], lock.observed[lock.folds != fold]
        )
        for fold in inner
    }
    rows: list[dict[str, Any]] = []
    ranked: dict[int, np.ndarray] = {}
    for setting, candidate in enumerate(selection.candidates):
        start = time.perf_counter()
        values, support = _out_of_fold_values(candidate, lock, inner, propensities, config)
        seconds = (time.perf_counter() - start) / len(candidate.learners)
        for learner, value in values.items():
            ranked[len(rows)] = value
            labels = {"setting": setting, "family": candidate.family, "params": dict(candidate.params)}
            rows.append(_row(len(rows), labels | {"learner": learner}, value, support, scores, lock, seconds))
    for labels, mean_values, seconds in _ensembles(rows, ranked, selection.ensemble_size):
        ranked[len(rows)] = mean_values
        rows.append(_row(len(rows), labels, mean_values, support, scores, lock, seconds))
    policies = np.stack([recommendations(ranked[i], support, lock.observed) for i in range(len(rows))])
    contributions = scores[np.arange(len(lock.observed)), policies]
    chosen, gaps, gap_errors = first_not_worse(contributions, lock.patients, selection.tolerance_se)
    for row, gap, gap_error in zip(rows, gaps, gap_errors, strict=True):
        row["gap_to_best"], row["gap_se"] = gap, gap_error
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    best = table.loc[chosen]
    return SelectionResult(
        table=table,
        chosen=chosen,
        family=str(best["family"]),
        learner=str(best["learner"]),
        params=dict(best["params"]),
        value=float(best["policy_value_rwpfs_rmst24"]),
        lower=float(best["policy_value_lower"]),
        upper=float(best["policy_value_upper"]),
        nuisances=nuisances,
        folds=selection.folds,
        policies=policies,
    )


def first_not_worse(
    contributions: np.ndarray, patients: np.ndarray, tolerance_se: float
) -> tuple[int, np.ndarray, np.ndarray]:
    """Choose the first candidate whose value is within ``tolerance_se`` paired standard errors of the best.

    Parameters
    ----------
    contributions : ndarray of shape (candidates, n)
        Each candidate's per-decision contribution to its value (``Gamma_i`` at its recommendation),
        candidates in the order listed.
    patients : ndarray of int, shape (n,)
        The patient of each decision (``0 .. P-1``).
    tolerance_se : float
        How many standard errors of the paired difference a candidate may trail the best by (0: the
        highest value wins, ties to the first listed).

    Returns
    -------
    chosen : int
        The first candidate ``c`` with ``gap_c <= tolerance_se * se_c``.
    gaps : ndarray of shape (candidates,)
        The best value minus each candidate's (0 for the best).
    errors : ndarray of shape (candidates,)
        The patient-clustered standard error of each paired difference (0 for the best).
    """
    psi = np.asarray(contributions, dtype=float)
    values = psi.mean(axis=1)
    best = int(np.argmax(values))  # the first of exact ties
    gaps, errors = values[best] - values, np.zeros(len(psi))
    for candidate in range(len(psi)):
        if candidate != best:
            errors[candidate] = clustered_mean(psi[best] - psi[candidate], patients)[1]
    return int(np.flatnonzero(gaps <= tolerance_se * errors)[0]), gaps, errors


def _nuisances(
    X: np.ndarray, observed: np.ndarray, target: np.ndarray, folds: np.ndarray, config: TrainingConfig
) -> Nuisances:
    """Cross-fit the nuisance models (with the propensity model) on ``folds``."""
    return cross_fit(
        X,
        observed,
        target,
        folds,
        outcome_model=nuisance_outcome_model(config.seed),
        censoring_model=censoring_model(config.seed),
        propensity_model=OptionPropensityModel(min_support=config.min_support),
    )


def _inner_nuisances(lock: _Lock, kept: np.ndarray, config: TrainingConfig) -> Nuisances:
    """Return the nuisances that one fold's learners learn from, cross-fitted within the other folds only."""
    folds = patient_folds(lock.patients[kept], 2, config.seed)
    inner = _nuisances(lock.X[kept], lock.observed[kept], lock.target[kept], folds, config)
    return inner.naive_twin() if config.weighting == "none" else inner


def _out_of_fold_values(
    candidate: CandidateConfig,
    lock: _Lock,
    inner: dict[int, Nuisances | None],
    propensities: dict[int, OptionPropensityModel],
    config: TrainingConfig,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each learner's ranked values of every decision from fits on the other folds, and the support.

    The support is the same for every candidate: each fold's propensity model decides it.
    """
    n, k = len(lock.X), len(OPTIONS)
    values: dict[str, np.ndarray] = {learner: np.empty((n, k)) for learner in candidate.learners}
    support = np.zeros((n, k), dtype=bool)
    for fold, nuisances in inner.items():
        kept, held = lock.folds != fold, lock.folds == fold
        ranked, support[held] = fit_and_rank(
            candidate,
            lock.X[kept],
            lock.observed[kept],
            lock.target[kept],
            lock.patients[kept],
            nuisances,
            lock.X[held],
            config,
            propensities[fold],
        )
        for learner, value in ranked.items():
            values[learner][held] = value
    return values, support


def fit_and_rank(
    candidate: CandidateConfig,
    X: np.ndarray,
    observed: np.ndarray,
    target: np.ndarray,
    patients: np.ndarray,
    nuisances: Nuisances | None,
    X_new: np.ndarray,
    config: TrainingConfig,
    propensity: OptionPropensityModel | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fit one candidate setting's learners on some decisions (no bootstrap) and rank new decisions' options.

    Parameters
    ----------
    candidate : CandidateConfig
        Family, hyperparameters and learners.
    X, observed, target, patients : ndarray
        The decisions learnt from: features, option taken, rwPFS and patient.
    nuisances : Nuisances or None
        Their cross-fitted nuisances, naive when ``config.weighting`` is ``none`` (the DR-learner and
        the causal forest learn from them); None when the setting has neither.
    X_new : ndarray of shape (m, p)
        The decisions ranked.
    config : TrainingConfig
        Weighting, support threshold, folds, threads and seed.
    propensity : OptionPropensityModel, optional
        The propensity model already fitted on ``X`` and ``observed`` (with ``config.min_support``),
        when several settings learn on the same decisions; fitted here otherwise.

    Returns
    -------
    values : dict of str to ndarray of shape (m, 16)
        Each learner's ranked rwPFS RMST24.
    support : ndarray of bool, shape (m, 16)
        The options that the propensity model fitted on ``X`` supports.
    """
    k = len(OPTIONS)
    if propensity is None:
        propensity = OptionPropensityModel(min_support=config.min_support).fit(X, observed)
    class_propensity, _ = propensity.class_and_local(X)
    weight = balancing_weights(class_propensity, observed // 2, config.weighting)
    _, support = propensity.proba_and_support(X_new)
    design = with_treatment(X, observed)
    template = family_model(candidate.family, dict(candidate.params), config.seed)
    outcome = clone(template).fit(design, target, sample_weight=weight)
    rows = counterfactual_rows(X_new)
    curves = outcome.predict_survival_function(rows).reshape(len(X_new), k, -1)
    rmst = rmst_from_curves(curves, outcome.time_grid_, HORIZON)
    values: dict[str, np.ndarray] = {}
    for learner in candidate.learners:
        ranking = fit_ranking(
            learner,
            template,
            X=X,
            design=design,
            observed=observed,
            target=target,
            weight=weight,
            replicate_weights=[],
            patients=patients,
            naive=config.weighting == "none",
            min_support=config.min_support,
            nuisance_folds=config.selection.folds,
            random_state=config.seed,
            n_jobs=config.n_jobs,
            nuisances=nuisances,
        )
        values[learner], _ = ranking.values(X_new, rows, [rmst])
    return values, np.asarray(support, dtype=bool)


def _row(
    index: int,
    labels: dict[str, Any],
    values: np.ndarray,
    support: np.ndarray,
    scores: np.ndarray,
    lock: _Lock,
    seconds: float,
) -> dict[str, Any]:
    """One row of the table: the candidate's cross-fitted policy value and Harrell's C."""
    policy = recommendations(values, support, lock.observed)
    estimate = dr_policy_value(scores, policy, lock.patients)
    event, months = lock.target["event"], lock.target["time"]
    risk = -values[np.arange(len(policy)), lock.observed]
    return {
        "candidate": index,
        **labels,
        "policy_value_rwpfs_rmst24": estimate.value,
        "policy_value_se": estimate.standard_error,
        "policy_value_lower": estimate.lower,
        "policy_value_upper": estimate.upper,
        "c_index_rwpfs": float(concordance_index_censored(event, months, risk)[0]),
        "fit_seconds": round(seconds, 2),
    }


def _ensembles(
    rows: list[dict[str, Any]], ranked: dict[int, np.ndarray], size: int
) -> list[tuple[dict[str, Any], np.ndarray, float]]:
    """For each setting with two or more learners, the mean of its ``size`` best learners' values."""
    if size < 2:
        return []
    out: list[tuple[dict[str, Any], np.ndarray, float]] = []
    table = pd.DataFrame(rows)
    for setting, group in table.groupby("setting", sort=True):
        if len(group) < 2:
            continue
        best = group.sort_values("policy_value_rwpfs_rmst24", ascending=False, kind="stable").head(size)
        members = sorted(int(member) for member in best["candidate"])  # in the order listed
        first = rows[members[0]]
        labels = {
            "setting": int(setting),
            "family": first["family"],
            "params": first["params"],
            "learner": "+".join(rows[member]["learner"] for member in members),
        }
        values = np.mean([ranked[member] for member in members], axis=0)
        out.append((labels, values, float(sum(rows[member]["fit_seconds"] for member in members))))
    return out
