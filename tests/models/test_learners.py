"""Every learner on hand-built decisions with a known effect, where the raw comparison is wrong in sign.

Two options are given, TBP and chemotherapy (each with local therapy, which does nothing, in a fifth of
the decisions). Patients with a worse ECOG live shorter and are given chemotherapy more often, so that
chemotherapy looks worse in the raw comparison (checked with lifelines' Kaplan-Meier). The truth is
known in closed form: rwPFS is exponential, chemotherapy lengthens its mean by ``exp(0.5)`` with
oligoprogression and shortens it by ``exp(-0.3)`` without.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from linewise.features.examples import FEATURES
from linewise.models.candidates import OPTIONS
from linewise.models.ranking import probability_best
from linewise.models.recommender import TreatmentRecommender

HORIZON = 24.0
TBP, CHEMO = OPTIONS.index(("tbp", False)), OPTIONS.index(("chemo", False))
FAST = {
    "boosted_cox": {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 2, "early_stopping_rounds": 20},
}


def _true_rmst(log_mean: np.ndarray) -> np.ndarray:
    mean = np.exp(log_mean)
    return np.asarray(mean * (1 - np.exp(-HORIZON / mean)))  # closed form of an exponential


@pytest.fixture(scope="module")
def decisions() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 3000
    ecog = rng.integers(0, 3, n).astype(float)
    oligo = (rng.random(n) < 0.5).astype(float)
    chemo = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 1.5 * ecog)))
    effect = np.where(oligo == 1, 0.5, -0.3)
    log_mean = 2.3 - 0.9 * ecog + effect * chemo
    event_time = rng.exponential(np.exp(log_mean))
    follow = rng.uniform(6, 60, n)
    frame = pd.DataFrame(0.0, index=range(n), columns=list(FEATURES))
    frame["ecog"], frame["oligoprogression"] = ecog, oligo
    frame["age_at_decision"] = rng.normal(62, 10, n)
    frame["current_line"] = 1.0
    time = np.minimum(event_time, follow)
    return frame.assign(
        patient_key=[f"p{i:05d}" for i in range(n)],
        line_number=1,
        decision_day=100,
        action=np.where(chemo, "chemo", "tbp"),
        local_therapy=rng.random(n) < 0.2,
        pfs_time=time,
        pfs_event=event_time <= follow,
        os_time=time + 6.0,
        os_event=event_time <= follow,
        true_difference=_true_rmst(2.3 - 0.9 * ecog + effect) - _true_rmst(2.3 - 0.9 * ecog),
    )


def test_the_unadjusted_comparison_is_wrong_in_sign(decisions: pd.DataFrame) -> None:
    rmst = {}
    for action in ("tbp", "chemo"):
        rows = decisions[decisions["action"] == action]
        fitted = KaplanMeierFitter().fit(rows["pfs_time"], rows["pfs_event"])
        rmst[action] = restricted_mean_survival_time(fitted, t=HORIZON)
    assert rmst["chemo"] - rmst["tbp"] < -1.0  # looks harmful
    assert decisions["true_difference"].mean() > 0.5  # helps on average


@pytest.mark.parametrize(
    ("learner", "weighting"),
    [("s", "ipw"), ("s", "none"), ("t", "ipw"), ("dr", "ipw"), ("causal_forest", "ipw")],
)
def test_each_learner_finds_the_effect_and_its_modifier(
    decisions: pd.DataFrame, learner: str, weighting: str
) -> None:
    model = TreatmentRecommender(
        "boosted_cox", learner=learner, weighting=weighting, n_bootstrap=4, model_params=FAST["boosted_cox"]
    ).fit(decisions)
    predictions = model.predict_options(decisions[list(FEATURES)])
    estimated = predictions.summary["pfs_rmst24_vs_tbp"][:, CHEMO]
    for oligo, sign in ((1.0, 1.0), (0.0, -1.0)):
        rows = (decisions["oligoprogression"] == oligo).to_numpy()
        true = decisions.loc[rows, "true_difference"].mean()
        assert np.sign(estimated[rows].mean()) == sign == np.sign(true)
        assert abs(estimated[rows].mean() - true) < 0.5 * abs(true) + 0.3, (estimated[rows].mean(), true)
    np.testing.assert_allclose(predictions.probability_best.sum(axis=1), 1.0)


def test_probability_best_is_a_direct_count_on_the_replicates() -> None:
    rng = np.random.default_rng(4)
    replicates = rng.normal(size=(50, 6, 4))
    support = np.ones((6, 4), dtype=bool)
    support[2, 1] = support[3, [0, 2]] = False
    expected = np.zeros((6, 4))
    for r in range(50):  # the textbook loop: which supported option wins in each replicate
        for i in range(6):
            allowed = [a for a in range(4) if support[i, a]]
            winner = max(allowed, key=lambda a: replicates[r, i, a])
            expected[i, winner] += 1 / 50
    np.testing.assert_allclose(probability_best(replicates, support), expected)
    assert (probability_best(replicates, support)[~support] == 0).all()
    assert (probability_best(replicates, np.zeros((6, 4), dtype=bool)) == 0).all()
    with pytest.raises(ValueError, match="replicates must be"):
        probability_best(replicates[:, :5], support)
