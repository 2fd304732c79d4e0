"""The selection rule of ``linewise train``: candidates judged by their cross-fitted policy value.

Hand-built decisions with a known truth: rwPFS is exponential; chemotherapy lengthens its mean by
``exp(0.7)`` with oligoprogression and shortens it by ``exp(-0.5)`` without, and sicker patients (worse
ECOG) get chemotherapy more often. A boosted Cox model of stumps (``max_depth: 1``) is additive in the
log hazard, so it cannot see that the effect changes sign: it recommends one option to everybody. Deeper
trees can. The true value of any recommendation is known in closed form, so each candidate's estimate is
checked against the true value of the very recommendations it was computed from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linewise.features.examples import FEATURES
from linewise.models.candidates import OPTIONS
from linewise.models.dr_value import clustered_mean, recommendations
from linewise.training import selection
from linewise.training.config import TrainingConfig
from linewise.training.held_out_value import held_out_scores
from linewise.training.selection import select

HORIZON = 24.0
CHEMO, CHEMO_LOCAL = OPTIONS.index(("chemo", False)), OPTIONS.index(("chemo", True))
STUMPS = {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 1}
DEEP = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3, "early_stopping_rounds": 20}


def _true_rmst(log_mean: np.ndarray) -> np.ndarray:
    mean = np.exp(log_mean)
    return np.asarray(mean * (1 - np.exp(-HORIZON / mean)))  # closed form of an exponential


@pytest.fixture(scope="module")
def development() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3000
    ecog = rng.integers(0, 3, n).astype(float)
    oligo = (rng.random(n) < 0.5).astype(float)
    chemo = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.0 * ecog)))
    effect = np.where(oligo == 1, 0.7, -0.5)
    base = 2.3 - 0.8 * ecog
    event_time = rng.exponential(np.exp(base + effect * chemo))
    follow = rng.uniform(6, 60, n)
    frame = pd.DataFrame(0.0, index=range(n), columns=list(FEATURES))
    frame["ecog"], frame["oligoprogression"] = ecog, oligo
    frame["age_at_decision"] = rng.normal(62, 10, n)
    frame["current_line"] = 1.0
    time = np.minimum(event_time, follow)
    truth = np.zeros((n, len(OPTIONS)))  # every option but chemotherapy does what TBP does
    truth[:] = _true_rmst(base)[:, None]
    truth[:, CHEMO] = truth[:, CHEMO_LOCAL] = _true_rmst(base + effect)
    frame = frame.assign(
        patient_key=[f"p{i // 2:05d}" for i in range(n)],  # two decisions per patient
        line_number=1,
        decision_day=100,
        action=np.where(chemo, "chemo", "tbp"),
        local_therapy=rng.random(n) < 0.2,
        pfs_time=time,
        pfs_event=event_time <= follow,
        os_time=time + 6.0,
        os_event=event_time <= follow,
    )
    frame.attrs["truth"] = truth
    return frame


def _config(candidates: list[dict], ensemble_size: int = 2) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {"seed": 3, "selection": {"folds": 2, "ensemble_size": ensemble_size, "candidates": candidates}}
    )


def test_selection_prefers_the_candidate_whose_recommendations_are_better(development: pd.DataFrame) -> None:
    config = _config(
        [
            {"family": "boosted_cox", "learners": ["s"], "params": STUMPS},
            {"family": "boosted_cox", "learners": ["s", "dr"], "params": DEEP},
        ]
    )
    result = select(development, config)
    table = result.table
    assert list(table["learner"]) == ["s", "s", "dr", "s+dr"]  # the ensemble of the deep setting is last
    assert list(table["setting"]) == [0, 1, 1, 1]
    truth = development.attrs["truth"]
    true_values = truth[np.arange(len(truth)), result.policies].mean(axis=1)
    # stumps recommend one class to (nearly) everybody; the others follow the modifier
    chemo_share = np.isin(result.policies, [CHEMO, CHEMO_LOCAL]).mean(axis=1)
    assert max(chemo_share[0], 1 - chemo_share[0]) > 0.9
    assert 0.3 < chemo_share[1] < 0.7
    assert true_values[1:].min() > true_values[0] + 0.5
    # the winner is the first candidate within 1.96 paired standard errors (the default) of the best
    # estimate; the stumps trail by far more, and the winner's true value is within 0.2 months of the
    # best true value
    values = table["policy_value_rwpfs_rmst24"].to_numpy()
    np.testing.assert_allclose(table["gap_to_best"], values.max() - values, atol=1e-12)
    best, chosen = int(np.argmax(values)), result.chosen
    assert table.loc[best, "gap_se"] == 0 and table.loc[0, "gap_to_best"] > 3 * table.loc[0, "gap_se"]
    tolerance = config.selection.tolerance_se
    assert tolerance == 1.96 and chosen <= best
    assert chosen == int(np.flatnonzero(table["gap_to_best"] <= tolerance * table["gap_se"])[0])
    assert chosen != 0 and result.learner == table.loc[chosen, "learner"] and result.params == DEEP
    assert true_values[chosen] > true_values.max() - 0.2
    assert result.value == table.loc[chosen, "policy_value_rwpfs_rmst24"]
    # each estimate is within 3 standard errors of the true value of its own recommendations
    errors = np.abs(table["policy_value_rwpfs_rmst24"].to_numpy() - true_values)
    assert (errors < 3 * table["policy_value_se"].to_numpy()).all(), (errors, table["policy_value_se"])
    assert (table["policy_value_lower"] < table["policy_value_rwpfs_rmst24"]).all()
    assert table["c_index_rwpfs"].between(0.5, 1).all()


def test_ties_go_to_the_first_candidate_and_no_ensemble_without_two_learners(
    development: pd.DataFrame,
) -> None:
    rows = development.iloc[:1200]
    same = {"family": "boosted_cox", "learners": ["s"], "params": STUMPS}
    # without early stopping, validation_fraction changes nothing: the same fit under another name
    twin = {**same, "params": {**STUMPS, "validation_fraction": 0.3}}
    result = select(rows, _config([twin, same]))
    assert len(result.table) == 2
    first, second = result.table["policy_value_rwpfs_rmst24"]
    assert first == second and (result.policies[0] == result.policies[1]).all()
    assert result.params == twin["params"]  # the tie goes to the first listed
    assert select(rows, _config([same, twin])).params == STUMPS
    both = _config([{**same, "learners": ["s", "t"]}], ensemble_size=0)
    assert list(select(development, both).table["learner"]) == ["s", "t"]


def test_inner_nuisances_never_see_the_fold_they_rank(
    development: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real functions, wrapped to record which decisions (by their unique age) each fit saw
    age = FEATURES.index("age_at_decision")
    fitted_on: dict[int, frozenset[float]] = {}
    ranked_with: list[tuple[frozenset[float], int]] = []
    real_cross_fit, real_fit_ranking = selection.cross_fit, selection.fit_ranking

    def recording_cross_fit(X, *args, **kwargs):
        result = real_cross_fit(X, *args, **kwargs)
        fitted_on[id(result)] = frozenset(X[:, age])
        return result

    def recording_fit_ranking(learner, template, *, X, nuisances, **kwargs):
        if nuisances is not None:
            ranked_with.append((frozenset(X[:, age]), id(nuisances)))
        return real_fit_ranking(learner, template, X=X, nuisances=nuisances, **kwargs)

    monkeypatch.setattr("linewise.training.selection.cross_fit", recording_cross_fit)
    monkeypatch.setattr("linewise.training.selection.fit_ranking", recording_fit_ranking)
    rows = development.iloc[:1200]
    select(rows, _config([{"family": "boosted_cox", "learners": ["dr", "causal_forest"], "params": STUMPS}]))
    everyone = frozenset(rows["age_at_decision"])
    assert len(ranked_with) == 4  # two learners on each of two folds
    for learnt_from, nuisances in ranked_with:
        held = everyone - learnt_from
        assert len(held) > 400  # the fold the learner ranks
        # its nuisances were cross-fitted on exactly the decisions it learnt from: none of the fold's
        assert fitted_on[nuisances] == learnt_from and not fitted_on[nuisances] & held


def test_held_out_values_match_the_closed_form_truth(development: pd.DataFrame) -> None:
    patients = development["patient_key"].str[1:].astype(int)
    learn, judge = development[patients % 2 == 0], development[patients % 2 == 1]
    scores = held_out_scores(learn, judge, min_support=0.01, random_state=0)
    truth = development.attrs["truth"][(patients % 2 == 1).to_numpy()]
    oligo = judge["oligoprogression"].to_numpy() == 1
    policies = {
        "always chemotherapy": np.full(len(judge), CHEMO),
        "always TBP": np.full(len(judge), OPTIONS.index(("tbp", False))),
        "chemotherapy with oligoprogression": np.where(oligo, CHEMO, OPTIONS.index(("tbp", False))),
    }
    for name, policy in policies.items():
        estimate = scores.policy_value(policy)
        true = truth[np.arange(len(policy)), policy].mean()
        assert abs(estimate.value - true) < 3 * estimate.standard_error, (name, estimate, true)
    observed = scores.observed_value()
    true_observed = truth[np.arange(len(judge)), scores.nuisances.observed].mean()
    assert abs(observed.value - true_observed) < 3 * observed.standard_error
    # the best policy is told apart from always-TBP by more than its interval
    best, tbp = (
        scores.policy_value(policies["chemotherapy with oligoprogression"]),
        scores.policy_value(policies["always TBP"]),
    )
    assert best.lower > tbp.upper


def test_first_not_worse_against_a_hand_written_table() -> None:
    # three candidates, four patients (patient 1 has two decisions); per-decision contributions
    contributions = np.array(
        [
            [5.0, 6.0, 7.0, 4.0, 8.0],  # mean 6.0
            [6.0, 6.0, 7.0, 5.0, 8.0],  # mean 6.4
            [9.0, 3.0, 7.0, 8.0, 6.0],  # mean 6.6, the best, but noisy against the others
        ]
    )
    patients = np.array([0, 1, 1, 2, 3])
    # hand computations: best = 2; differences best - c per decision, then by patient
    diff0 = np.array([4.0, -3.0, 0.0, 4.0, -2.0])  # mean 0.6
    diff1 = np.array([3.0, -3.0, 0.0, 3.0, -2.0])  # mean 0.2
    totals0 = np.array([4 - 0.6, (-3 - 0.6) + (0 - 0.6), 4 - 0.6, -2 - 0.6])
    totals1 = np.array([3 - 0.2, (-3 - 0.2) + (0 - 0.2), 3 - 0.2, -2 - 0.2])
    se0 = np.sqrt(4 / 3 * np.sum(totals0**2)) / 5
    se1 = np.sqrt(4 / 3 * np.sum(totals1**2)) / 5
    assert diff0.mean() == pytest.approx(0.6) and diff1.mean() == pytest.approx(0.2)
    chosen, gaps, errors = selection.first_not_worse(contributions, patients, 1.0)
    np.testing.assert_allclose(gaps, [0.6, 0.2, 0.0])
    np.testing.assert_allclose(errors, [se0, se1, 0.0])
    # by hand: sqrt(4/3 * 47.52) / 5 and sqrt(4/3 * 32.08) / 5
    assert se0 == pytest.approx(1.5920, abs=1e-4) and se1 == pytest.approx(1.3080, abs=1e-4)
    assert chosen == 0  # 0.6 <= 1 * se0: the first listed stays
    assert selection.first_not_worse(contributions, patients, 0.0)[0] == 2  # the highest value
    # a tolerance between the two gaps' ratios keeps the second but not the first
    ratio0, ratio1 = 0.6 / se0, 0.2 / se1
    assert ratio1 < ratio0
    assert selection.first_not_worse(contributions, patients, (ratio0 + ratio1) / 2)[0] == 1
    # at tolerance 0, of two different candidates with the same highest value the first listed wins
    tied = np.vstack([contributions[:2], [[9.0, 3.0, 7.0, 6.0, 8.0]], contributions[2:]])
    assert tied[2].mean() == pytest.approx(tied[3].mean()) and not np.array_equal(tied[2], tied[3])
    chosen, gaps, _ = selection.first_not_worse(tied, patients, 0.0)
    assert chosen == 2 and gaps[3] == 0


def test_recommendations_fall_back_to_the_option_taken_without_support() -> None:
    values = np.array([[1.0, 3.0, 2.0], [5.0, 1.0, 0.0], [0.0, 0.0, 9.0]])
    support = np.array([[True, False, True], [False, False, False], [True, True, True]])
    observed = np.array([0, 1, 0])
    np.testing.assert_array_equal(recommendations(values, support, observed), [2, 1, 2])


def test_clustered_standard_error_against_hand_computations() -> None:
    rng = np.random.default_rng(0)
    psi = rng.normal(size=40)
    # one decision per patient: the textbook standard error of a mean
    mean, error = clustered_mean(psi, np.arange(40))
    assert mean == pytest.approx(psi.mean())
    assert error == pytest.approx(psi.std(ddof=1) / np.sqrt(40))
    # a hand-written table: patients {0, 1}, {2}, {3, 4, 5}
    table = np.array([1.0, 4.0, 2.0, 5.0, 0.0, 0.0])  # mean 2
    clusters = np.array([0, 0, 1, 2, 2, 2])
    totals = np.array([(1 - 2) + (4 - 2), 2 - 2, (5 - 2) + (0 - 2) + (0 - 2)])  # 1, 0, -1, by hand
    expected = np.sqrt(3 / 2 * np.sum(totals**2)) / 6
    assert clustered_mean(table, clusters) == pytest.approx((2.0, expected))
    # decisions of one patient that move together widen the interval
    paired = np.repeat(psi[:20], 2)
    assert clustered_mean(paired, np.repeat(np.arange(20), 2))[1] > clustered_mean(paired, np.arange(40))[1]
