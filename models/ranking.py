"""The learners that rank the options: each option's rwPFS RMST24, with replicates for intervals.

Every learner of :class:`linewise.models.recommender.TreatmentRecommender` shares the S-learner's outcome
models for the curves, medians, OS and explanations; the learner decides the quantity that ranks the
options, rwPFS restricted to 24 months, and its uncertainty:

- ``s`` (S-learner): the outcome model's own restricted mean, replicated by its bootstrap refits;
- ``t`` (T-learner): one model per candidate class (:class:`linewise.models.t_learner.ClassSurvivalModels`),
  refitted on the same bootstrap draws;
- ``dr`` (DR-learner) and ``causal_forest``: the outcome model's restricted mean under TBP plus each
  option's difference from TBP learnt from cross-fitted nuisances (:mod:`linewise.models.cross_fitting`,
  :mod:`linewise.models.effect_learners`); the replicates add normal draws of the difference, with the
  forest's covariance across options (bootstrap of little bags), to the outcome model's replicates.
  The nuisances' outcome and censoring models are boosted Cox models whose rounds are chosen on the
  lock by early stopping (:func:`nuisance_outcome_model`, :func:`censoring_model`), whatever the
  recommender's family;
- an **ensemble** of several of them, written with ``+`` (``"s+dr"``): the mean of its members'
  ranked quantities, replicate by replicate (every member's replicate ``b`` comes from the same
  bootstrap draw of patients).

:func:`probability_best` counts, over the replicates, how often each option is the best supported one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sklearn.base import clone

from linewise.models.candidates import BASELINE, OPTIONS
from linewise.models.cross_fitting import HORIZON, Nuisances, cross_fit, patient_folds
from linewise.models.effect_learners import DRContrastForest, ResidualCausalForest
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.survival import BoostedCoxModel, rmst_from_curves
from linewise.models.t_learner import ClassSurvivalModels

LEARNERS: Final = ("s", "t", "dr", "causal_forest")
#: Learners that learn from the cross-fitted nuisances.
NUISANCE_LEARNERS: Final = ("dr", "causal_forest")
BASELINE_INDEX: Final = OPTIONS.index(BASELINE)


def learner_members(learner: str) -> tuple[str, ...]:
    """Return the learners of ``learner``: one of :data:`LEARNERS`, or several joined by ``+``.

    Raises
    ------
    ValueError
        If a member is not one of :data:`LEARNERS` or appears twice.
    """
    members = tuple(str(learner).split("+"))
    unknown = [member for member in members if member not in LEARNERS]
    if unknown or len(set(members)) != len(members):
        raise ValueError(
            f"learner must be one of {list(LEARNERS)} or several distinct ones joined by '+', "
            f"found {learner!r}"
        )
    return members


def nuisance_outcome_model(random_state: int) -> BoostedCoxModel:
    """Return the outcome model of the nuisances: a boosted Cox, rounds by early stopping."""
    return BoostedCoxModel(
        n_estimators=500, learning_rate=0.05, max_depth=3, early_stopping_rounds=20, random_state=random_state
    )


def censoring_model(random_state: int) -> BoostedCoxModel:
    """Return the censoring model of the nuisances: a shallow boosted Cox, rounds by early stopping."""
    return BoostedCoxModel(
        n_estimators=300, learning_rate=0.05, max_depth=2, early_stopping_rounds=15, random_state=random_state
    )


def probability_best(replicates: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Share of replicates in which each option has the highest value among the supported ones.

    Parameters
    ----------
    replicates : ndarray of shape (R, n, k)
        The ranked quantity in each replicate (at least one).
    support : ndarray of bool, shape (n, k)
        Options that may be ranked.

    Returns
    -------
    ndarray of shape (n, k)
        0 for unsupported options; rows sum to 1, or are all 0 for a decision without a supported option.
        Ties go to the first option.

    Raises
    ------
    ValueError
        If there is no replicate or the shapes disagree.
    """
    values = np.asarray(replicates, dtype=float)
    allowed = np.asarray(support, dtype=bool)
    if values.ndim != 3 or values.shape[0] == 0 or values.shape[1:] != allowed.shape:
        raise ValueError(
            f"replicates must be (R >= 1, n, k) with (n, k) = {allowed.shape}, found {values.shape}"
        )
    best = np.argmax(np.where(allowed[None], values, -np.inf), axis=2)  # (R, n)
    n, k = allowed.shape
    counts = np.zeros((n, k))
    np.add.at(counts, (np.broadcast_to(np.arange(n), best.shape), best), 1.0)
    return np.where(allowed, counts / values.shape[0], 0.0)


@dataclass(frozen=True)
class RankingModel:
    """A fitted learner's own part (nothing for the S-learner)."""

    learner: str
    class_models: tuple[Any, ...] = ()  # T-learner: the full-data model, then the bootstrap refits
    effect_model: DRContrastForest | ResidualCausalForest | None = None
    seed: int = 0
    members: tuple[RankingModel, ...] = ()  # an ensemble's learners

    def values(
        self, features: np.ndarray, rows: np.ndarray, outcome_rmst24: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ranked quantity (n, 16) and its replicates (R, n, 16).

        Parameters
        ----------
        features : ndarray of shape (n, p)
            Decision features.
        rows : ndarray of shape (n * 16, p + 9)
            Their counterfactual rows.
        outcome_rmst24 : list of ndarray of shape (n, 16)
            The outcome model's rwPFS RMST24: the full-data model's, then each bootstrap refit's.
        """
        n, k = len(features), len(OPTIONS)
        if self.members:
            parts = [member.values(features, rows, outcome_rmst24) for member in self.members]
            return (
                np.mean([point for point, _ in parts], axis=0),
                np.mean([replicates for _, replicates in parts], axis=0),
            )
        if self.learner == "s":
            estimates = outcome_rmst24
        elif self.learner == "t":
            estimates = [
                rmst_from_curves(
                    model.predict_survival_function(rows).reshape(n, k, -1), model.time_grid_, HORIZON
                )
                for model in self.class_models
            ]
        else:
            assert self.effect_model is not None
            difference, covariance = self.effect_model.predict_and_covariance(features)
            baseline = [values[:, [BASELINE_INDEX]] for values in outcome_rmst24]
            rng = np.random.default_rng(self.seed)
            draws = _normal_draws(difference, covariance, len(outcome_rmst24) - 1, rng)
            estimates = [baseline[0] + difference] + [
                base + draw for base, draw in zip(baseline[1:], draws, strict=True)
            ]
        clipped = [np.clip(values, 0.0, HORIZON) for values in estimates]
        point = clipped[0]
        replicates = np.stack(clipped[1:]) if len(clipped) > 1 else point[None]
        return point, replicates


def _normal_draws(
    mean: np.ndarray, covariance: np.ndarray, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` draws of each decision's options from ``N(mean, covariance)`` (a square root by eigh).

    The same standard normal draws serve every decision, so that a decision's draws do not depend on
    which other decisions are scored with it.
    """
    if count == 0:
        return []
    values, vectors = np.linalg.eigh(covariance)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]
    noise = rng.standard_normal((count, mean.shape[1]))
    return [mean + np.einsum("nij,j->ni", root, z) for z in noise]


def fit_ranking(
    learner: str,
    outcome_template: Any,
    *,
    X: np.ndarray,
    design: np.ndarray,
    observed: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    replicate_weights: list[np.ndarray],
    patients: np.ndarray,
    naive: bool,
    min_support: float,
    nuisance_folds: int,
    random_state: int,
    n_jobs: int,
    nuisances: Nuisances | None = None,
) -> RankingModel:
    """Fit a learner's own part on the rwPFS target (module docstring).

    Parameters
    ----------
    learner : str
        One of :data:`LEARNERS`.
    outcome_template : estimator
        The unfitted outcome model of the recommender's family and settings.
    X, design : ndarray
        Features, and features followed by the treatment columns of the option taken.
    observed : ndarray of int
        Option taken.
    target : structured array
        rwPFS.
    weight, replicate_weights : ndarray
        Balancing weights of the full-data fit and of each bootstrap refit.
    patients : ndarray
        The patient of each row (folds of the cross-fitting).
    naive : bool
        The naive twin: no propensity model in the nuisances.
    min_support : float
        Positivity threshold of the nuisances' propensity model.
    nuisance_folds : int
        Folds of the cross-fitting.
    random_state : int
    n_jobs : int
        Threads for the bootstrap refits and the forests.
    nuisances : Nuisances, optional
        Cross-fitted nuisances of these rows, already computed with ``nuisance_folds`` folds of the
        patients (for example by the selection of ``linewise train``); by default they are fitted here.

    Raises
    ------
    ValueError
        If ``learner`` is not a learner or an ensemble of them (:func:`learner_members`), or
        ``nuisances`` has another number of rows.
    """
    members = learner_members(learner)
    if nuisances is not None and len(nuisances.observed) != len(X):
        raise ValueError(f"nuisances has {len(nuisances.observed)} rows for {len(X)} decisions")
    if any(member in NUISANCE_LEARNERS for member in members) and nuisances is None:
        folds = patient_folds(patients, nuisance_folds, random_state)
        nuisances = cross_fit(
            X,
            observed,
            target,
            folds,
            outcome_model=nuisance_outcome_model(random_state),
            censoring_model=censoring_model(random_state),
            propensity_model=OptionPropensityModel(min_support=min_support),
            naive=naive,
        )
    settings: dict[str, Any] = {
        "outcome_template": outcome_template,
        "design": design,
        "weight": weight,
        "replicate_weights": replicate_weights,
        "random_state": random_state,
        "n_jobs": n_jobs,
    }
    fitted = [_fit_member(member, X, target, nuisances, **settings) for member in members]
    return fitted[0] if len(fitted) == 1 else RankingModel(learner, members=tuple(fitted), seed=random_state)


def _fit_member(
    learner: str,
    X: np.ndarray,
    target: np.ndarray,
    nuisances: Nuisances | None,
    *,
    outcome_template: Any,
    design: np.ndarray,
    weight: np.ndarray,
    replicate_weights: list[np.ndarray],
    random_state: int,
    n_jobs: int,
) -> RankingModel:
    """Fit one learner of :data:`LEARNERS` (its nuisances already cross-fitted when it needs them)."""
    if learner == "s":
        return RankingModel("s")
    if learner == "t":
        point = (
            ClassSurvivalModels(clone(outcome_template))
            .set_params(base__random_state=random_state)
            .fit(design, target, sample_weight=weight)
        )
        # the refits keep the point fit's pooled classes: a resample holds fewer distinct events
        base = ClassSurvivalModels(clone(outcome_template), pooled_classes=tuple(point.pooled_classes_))
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            fits = [
                pool.submit(
                    clone(base).set_params(base__random_state=random_state + b).fit,
                    design,
                    target,
                    sample_weight=w,
                )
                for b, w in enumerate(replicate_weights, start=1)
            ]
            return RankingModel("t", class_models=(point, *(fit.result() for fit in fits)))
    assert nuisances is not None
    stage = DRContrastForest if learner == "dr" else ResidualCausalForest
    effect = stage(random_state=random_state, n_jobs=n_jobs).fit(X, nuisances)
    return RankingModel(learner, effect_model=effect, seed=random_state)
