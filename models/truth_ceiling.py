"""How much of the true risk the recorded features can carry: a regression fitted to simulated truth.

On a simulated lock, every decision's true rwPFS RMST24 under every option is known. A regression of
that truth on the recorded decision features and the option, scored by Harrell's C on held-out
observed outcomes, shows how far any model of the lock's features can get; the distance to the C of
the true risk itself is what the lock does not record (the simulator's latent frailty, untested
biomarkers). One fitted regression is a lower bound on that ceiling, not the ceiling itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb
from sksurv.metrics import concordance_index_censored

from features.decisions import KEYS
from features.examples import FEATURES
from models.candidates import option_index, with_treatment
from models.recommender import training_decisions


def feature_ceiling_c_index(
    train: pd.DataFrame,
    test: pd.DataFrame,
    train_truth: pd.DataFrame,
    *,
    value_column: str = "pfs_rmst24",
    random_state: int = 0,
) -> float:
    """Harrell's C, on ``test``'s observed rwPFS, of a regression fitted to ``train``'s true values.

    Parameters
    ----------
    train, test : DataFrame
        Decision examples (:func:`features.examples.build_examples`); decisions without a candidate
        action are left out. ``test`` is scored under the option actually taken.
    train_truth : DataFrame
        The training lock's truth, keyed by ``patient_key`` (pseudonymised with the examples' key),
        ``line_number``, ``decision_day``, ``candidate`` and ``local_therapy``, with ``value_column``.
    value_column : str
        The true value learned (positive; fitted on the log scale).
    random_state : int
        Seed of the regression.

    Returns
    -------
    float
        Harrell's C of the regression's prediction (higher value, lower risk).

    Raises
    ------
    ValueError
        If no training decision matches the truth.
    """
    decisions = training_decisions(train)
    joined = decisions[[*KEYS, *FEATURES]].merge(
        train_truth[[*KEYS, "candidate", "local_therapy", value_column]], on=list(KEYS)
    )
    if joined.empty:
        raise ValueError(
            "no training decision matches the truth table (are both keyed by one pseudonym key?)"
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
    event = held_out["pfs_event"].astype(bool).to_numpy()
    time = held_out["pfs_time"].to_numpy(float)
    return float(concordance_index_censored(event, time, -regression.predict(taken))[0])
