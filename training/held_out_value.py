"""The value of recommendations on the test part, from nuisance models that never saw it.

The propensity, outcome and censoring models of the nuisances (those of the selection,
:mod:`linewise.training.selection`) are fitted once on the development decisions and predict the test
decisions. That gives every test decision its doubly robust pseudo-outcome of every option
(:mod:`linewise.models.dr_value`), the same for every model judged: the registered model, its naive
twin, always-TBP and, in the champion rule, the current champion. So their values are comparable. The
nuisance outcome model has the specification of the first default candidate setting; fitted without
weights on the development part, it can coincide with the outcome model of that setting's naive
S-learner, which is then judged partly by its own predictions. Observed practice is not a function of
the features: its value is the mean censoring-unbiased restricted time ``Y*`` of the test decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from linewise.features.examples import FEATURES
from linewise.models.candidates import BASELINE, OPTIONS, option_index, training_decisions
from linewise.models.cross_fitting import Nuisances, fit_nuisances
from linewise.models.dr_value import DRPolicyValue, clustered_value, dr_policy_value, recommendations
from linewise.models.option_predictions import OptionPredictions
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.ranking import censoring_model, nuisance_outcome_model
from linewise.models.recommender import TreatmentRecommender
from linewise.models.target import make_target

#: Propensity floor of the pseudo-outcomes (that of :func:`linewise.models.policy_value.aipw_policy_value`).
CLIP: Final = 0.01
#: Metric prefix of the figures of :func:`held_out_figures`.
PREFIX: Final = "dr_rwpfs_rmst24"


@dataclass(frozen=True)
class HeldOutScores:
    """Pseudo-outcomes of the test decisions (in the order of ``training_decisions``).

    Attributes
    ----------
    features : ndarray of shape (n, p)
        The test decisions' features.
    nuisances : Nuisances
        Their nuisances, from models fitted on the development part.
    scores : ndarray of shape (n, 16)
        Doubly robust pseudo-outcome of every option (propensities clipped at :data:`CLIP`).
    patients : ndarray of int, shape (n,)
        The patient of each decision (the clusters of the standard errors).
    """

    features: np.ndarray
    nuisances: Nuisances
    scores: np.ndarray
    patients: np.ndarray

    def policy_value(self, policy: np.ndarray) -> DRPolicyValue:
        """Return the value of one option per test decision."""
        return dr_policy_value(self.scores, policy, self.patients)

    def model_value(
        self, model: TreatmentRecommender, predictions: OptionPredictions | None = None
    ) -> DRPolicyValue:
        """Return the value of a fitted recommender's recommendations (best supported option).

        ``predictions`` are ``model.predict_options`` of :attr:`features`, when already computed.
        """
        if predictions is None:
            predictions = model.predict_options(self.features)
        if len(predictions.support) != len(self.patients):
            raise ValueError(
                f"predictions of {len(predictions.support)} decisions for {len(self.patients)} test decisions"
            )
        policy = recommendations(
            predictions.summary["pfs_rmst24"], predictions.support, self.nuisances.observed
        )
        return self.policy_value(policy)

    def observed_value(self) -> DRPolicyValue:
        """Return the mean censoring-unbiased restricted time of the options actually taken."""
        return clustered_value(self.nuisances.adjusted, self.patients)


def held_out_scores(
    development: pd.DataFrame, test: pd.DataFrame, *, min_support: float, random_state: int
) -> HeldOutScores:
    """Fit the nuisance models on ``development`` and score every option of every ``test`` decision.

    Parameters
    ----------
    development, test : DataFrame
        Decision examples; decisions without a candidate action are left out.
    min_support : float
        Support threshold of the propensity model.
    random_state : int
        Seed of the outcome and censoring models.

    Returns
    -------
    HeldOutScores

    Raises
    ------
    ValueError
        If either part has no decision with a candidate action, or the test part has one patient.
    """
    learned, judged = training_decisions(development), training_decisions(test)
    if learned.empty or judged.empty:
        raise ValueError("both parts need a decision with a candidate action")
    parts = []
    for frame in (learned, judged):
        parts.append(
            (
                frame[list(FEATURES)].to_numpy(float),
                option_index(frame["action"].astype(str), frame["local_therapy"].astype(bool)),
                make_target(frame["pfs_time"], frame["pfs_event"].astype(bool)),
            )
        )
    (X, observed, y), (X_test, observed_test, y_test) = parts
    models = fit_nuisances(
        X,
        observed,
        y,
        outcome_model=nuisance_outcome_model(random_state),
        censoring_model=censoring_model(random_state),
        propensity_model=OptionPropensityModel(min_support=min_support),
    )
    nuisances = models.predict(X_test, observed_test, y_test)
    _, patients = np.unique(judged["patient_key"].astype(str).to_numpy(), return_inverse=True)
    return HeldOutScores(X_test, nuisances, nuisances.pseudo_outcomes(clip=CLIP), patients)


def held_out_figures(
    scores: HeldOutScores,
    model: TreatmentRecommender,
    naive: TreatmentRecommender,
    predictions: Mapping[str, OptionPredictions] | None = None,
) -> dict[str, float]:
    """Return the values of the model, the naive model, always-TBP and observed practice, with intervals.

    Keys ``dr_rwpfs_rmst24_{model,naive,always_tbp,observed}`` and each with ``_lower``/``_upper``.
    ``predictions`` may hold the ``predict_options`` of the test decisions under ``"model"`` and
    ``"naive"``, when already computed.
    """
    known = predictions or {}
    values = {
        "model": scores.model_value(model, known.get("model")),
        "naive": scores.model_value(naive, known.get("naive")),
        "always_tbp": scores.policy_value(np.full(len(scores.patients), OPTIONS.index(BASELINE))),
        "observed": scores.observed_value(),
    }
    figures: dict[str, float] = {}
    for name, value in values.items():
        figures[f"{PREFIX}_{name}"] = value.value
        figures[f"{PREFIX}_{name}_lower"] = value.lower
        figures[f"{PREFIX}_{name}_upper"] = value.upper
    return figures
