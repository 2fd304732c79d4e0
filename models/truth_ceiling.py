"""How much of the true risk the recorded features can carry: a regression fitted to simulated truth.

On a simulated lock, every decision's true RMST24 under every option is known. A regression of that
truth on the recorded decision features and the option, scored by Harrell's C on held-out observed
outcomes, gives a lower bound on the C that a model of the lock's features can reach (one fitted
regression, not the ceiling itself). Its distance to the C of the true risk is, at most, what the
lock does not record (the simulator's latent frailty, untested biomarkers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb
from sksurv.metrics import concordance_index_censored

from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES
from linewise.models.candidates import OPTIONS, option_index, training_decisions, with_treatment
from linewise.models.summaries import ENDPOINTS


def feature_ceiling_c_index(
    train: pd.DataFrame,
    test: pd.DataFrame,
    train_truth: pd.DataFrame,
    *,
    endpoint: str = "pfs",
    random_state: int = 0,
) -> float:
    """Harrell's C, on ``test``'s observed outcomes, of a regression fitted to ``train``'s true RMST24.

    Parameters
    ----------
    train, test : DataFrame
        Decision examples (:func:`linewise.features.examples.build_examples`); as in fitting, only decisions
        with a candidate action and positive follow-up count
        (:func:`linewise.models.candidates.training_decisions`). ``test`` is scored under the option taken.
    train_truth : DataFrame
        The training lock's truth (:func:`linewise.training.policy.read_truth`), keyed by ``patient_key``,
        ``line_number``, ``decision_day``, ``candidate`` and ``local_therapy``, with
        ``{endpoint}_rmst24`` for every option of every training decision.
    endpoint : {"pfs", "os"}
        The truth learned (``{endpoint}_rmst24``, positive, fitted on the log scale) and the outcome
        the C-index is taken on (``{endpoint}_time``, ``{endpoint}_event``).
    random_state : int
        Seed of the regression.

    Returns
    -------
    float
        Harrell's C of the regression's prediction (higher value, lower risk).

    Raises
    ------
    ValueError
        If ``endpoint`` is unknown, the truth holds a decision-option twice, or a training decision
        lacks the truth of an option (for example a truth keyed by another pseudonym key).
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {ENDPOINTS}, found {endpoint!r}")
    value_column = f"{endpoint}_rmst24"
    decisions = training_decisions(train)
    truth = train_truth[[*KEYS, "candidate", "local_therapy", value_column]]
    if truth.duplicated([*KEYS, "candidate", "local_therapy"]).any():
        raise ValueError("the truth table holds a decision-option more than once")
    joined = decisions[[*KEYS, *FEATURES]].merge(truth, on=list(KEYS))
    if len(joined) != len(decisions) * len(OPTIONS):
        matched = joined[list(KEYS)].drop_duplicates().shape[0]
        raise ValueError(
            f"the truth table covers {matched} of {len(decisions)} training decisions, with "
            f"{len(joined)} of their {len(decisions) * len(OPTIONS)} options "
            "(keyed with another pseudonym key, or from another lock?)"
        )
    X = with_treatment(
        joined[list(FEATURES)].to_numpy(float), option_index(joined["candidate"], joined["local_therapy"])
    )
    regression = xgb.XGBRegressor(
        n_estimators=600, max_depth=6, learning_rate=0.05, n_jobs=2, random_state=random_state
    )
    regression.fit(X, np.log(joined[value_column].to_numpy(float)))
    held_out = training_decisions(test)
    taken = with_treatment(
        held_out[list(FEATURES)].to_numpy(float),
        option_index(held_out["action"].astype(str), held_out["local_therapy"].astype(bool)),
    )
    event = held_out[f"{endpoint}_event"].astype(bool).to_numpy()
    time = held_out[f"{endpoint}_time"].to_numpy(float)
    return float(concordance_index_censored(event, time, -regression.predict(taken))[0])
