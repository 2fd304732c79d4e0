"""The small hyperparameter search: every candidate of every family, judged on the validation part.

Each candidate is a :class:`linewise.models.recommender.TreatmentRecommender` without bootstrap, fitted
on the training part with one shared propensity model (passed as a ``FrozenEstimator``, so that a clone
of a candidate keeps it); its score is Harrell's C of the rwPFS model for the option actually taken, on
the validation decisions. The best candidate over all families wins (ties: the first listed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.frozen import FrozenEstimator

from linewise.features.examples import FEATURES
from linewise.models.candidates import option_index, training_decisions, with_treatment
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.recommender import TreatmentRecommender
from linewise.models.target import make_target
from linewise.training.config import TrainingConfig


@dataclass(frozen=True)
class SearchResult:
    """The search table and the winner."""

    table: pd.DataFrame
    family: str
    params: dict[str, Any]


def validation_c_index(model: TreatmentRecommender, decisions: pd.DataFrame) -> float:
    """Harrell's C of the rwPFS model for the option actually taken.

    Parameters
    ----------
    model : TreatmentRecommender
        A fitted recommender.
    decisions : DataFrame
        Decisions with a candidate action.

    Returns
    -------
    float
    """
    rows = with_treatment(
        decisions[list(FEATURES)].to_numpy(float),
        option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool)),
    )
    target = make_target(decisions["pfs_time"], decisions["pfs_event"].astype(bool))
    return float(model.models_["pfs"].score(rows, target))


def search(train: pd.DataFrame, validation: pd.DataFrame, config: TrainingConfig) -> SearchResult:
    """Fit every candidate on ``train`` and score it on ``validation``.

    Parameters
    ----------
    train, validation : DataFrame
        Decision examples of the two parts.
    config : TrainingConfig
        Families, candidates, weighting, seed.

    Returns
    -------
    SearchResult
    """
    judged = training_decisions(validation)
    if judged.empty:
        raise ValueError("the validation part has no decision with a candidate action")
    decisions = training_decisions(train)
    propensity = OptionPropensityModel(min_support=config.min_support).fit(
        decisions[list(FEATURES)].to_numpy(float),
        option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool)),
    )
    rows = []
    for family in config.families:
        for index, params in enumerate(getattr(config.search, family)):
            start = time.perf_counter()
            model = TreatmentRecommender(
                family,
                weighting=config.weighting,
                n_bootstrap=0,
                min_support=config.min_support,
                model_params=dict(params),
                random_state=config.seed,
                propensity=FrozenEstimator(propensity),
            ).fit(train)
            rows.append(
                {
                    "family": family,
                    "candidate": index,
                    "params": dict(params),
                    "validation_c_index_rwpfs": validation_c_index(model, judged),
                    "fit_seconds": round(time.perf_counter() - start, 2),
                }
            )
    table = pd.DataFrame(rows)
    best = table.loc[table["validation_c_index_rwpfs"].idxmax()]
    return SearchResult(table=table, family=str(best["family"]), params=dict(best["params"]))
