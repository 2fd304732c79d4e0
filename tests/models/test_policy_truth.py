"""Policy metrics against simulated truth, checked on tables small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewise.models.policy_truth import policy_truth_metrics, truth_precision

# 3 decisions x 4 options: (candidate, local_therapy, true, predicted, lower, upper, supported)
HAND_TABLE = {
    1: [
        ("tbp", False, 10.0, 9.0, 7.0, 11.0, True),
        ("tbp", True, 12.0, 11.0, 9.0, 13.0, True),
        ("chemo", False, 8.0, 12.0, 10.0, 14.0, True),  # recommended (best supported), true 8
        ("adc", False, 15.0, 14.0, 12.0, 16.0, False),  # highest predicted but unsupported
    ],
    2: [
        ("tbp", False, 6.0, 7.0, 5.0, 8.0, True),
        ("tbp", True, 10.5, 7.0, 6.0, 9.0, False),
        ("chemo", False, 9.0, 10.0, 8.0, 12.0, True),  # tied with adc at 10, first: recommended, true 9
        ("adc", False, 11.0, 10.0, 9.0, 13.0, True),
    ],
    3: [
        ("tbp", False, 20.0, 15.0, 13.0, 17.0, True),
        ("tbp", True, 19.0, 14.0, 12.0, 20.0, True),
        ("chemo", False, 14.0, 16.0, 14.0, 18.0, True),
        ("adc", False, 16.0, 17.0, 15.0, 19.0, True),  # recommended, true 16
    ],
}
HAND_OBSERVED = {1: ("tbp", False), 2: ("adc", False), 3: ("chemo", False)}  # true 10, 11, 14


def _frames(
    table: dict[int, list[tuple[str, bool, float, float, float, float, bool]]],
    observed: dict[int, tuple[str, bool]],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = [(decision, *option) for decision, options in table.items() for option in options]
    columns = ["decision", "candidate", "local_therapy", "true", "predicted", "lower", "upper", "supported"]
    long = pd.DataFrame(rows, columns=columns)
    scores = long.drop(columns="true")
    truth = long[["decision", "candidate", "local_therapy", "true"]]
    taken = pd.DataFrame(
        [(decision, *option) for decision, option in observed.items()],
        columns=["decision", "candidate", "local_therapy"],
    )
    return scores, truth, taken


def test_policy_metrics_on_the_hand_table() -> None:
    metrics = policy_truth_metrics(*_frames(HAND_TABLE, HAND_OBSERVED))
    expected = {
        "n_decisions": 3.0,
        "value_model": (8 + 9 + 16) / 3,  # chemo, chemo (tie, first), adc
        "value_observed": (10 + 11 + 14) / 3,
        "value_oracle": (15 + 11 + 20) / 3,  # adc, adc, tbp
        "value_always_tbp": (10 + 6 + 20) / 3,
        # option means: tbp 36/3, tbp+local (12 + 10.5 + 19)/3, chemo 31/3, adc (15 + 11 + 16)/3 = 14
        "value_best_single": 14.0,
        "best_single_candidate": "adc",
        "best_single_local_therapy": 0.0,
        "capture": (33 / 3 - 35 / 3) / (46 / 3 - 35 / 3),  # = -2/11
        # decision 1: true switch - tbp = 15 - 12 = 3, predicted (supported) 12 - 11 = 1: agree
        # decision 2: true 11 - 10.5 = 0.5 <= 1: left out
        # decision 3: true 16 - 20 = -4, predicted 17 - 15 = 2: disagree
        "tbp_switch_agreement": 0.5,
        "tbp_switch_n": 2.0,
        # predicted gains over tbp  [2, 3, 5 | 0, 3, 3 | -1, 1, 2], ranks [4.5, 7, 9, 2, 7, 7, 1, 3, 4.5]
        # true gains over tbp       [2, -2, 5 | 4.5, 3, 5 | -1, -6, -4], ranks [5, 3, 8.5, 7, 6, 8.5, 4, 1, 2]
        # centred ranks: sum of products 26.5, sums of squares 57.5 and 59.5
        "rank_correlation": 26.5 / math.sqrt(57.5 * 59.5),
        # decision 1: ranks [1, 2, 3, 4] vs [2, 3, 1, 4]: 1 - 6 * 6 / (4 * 15) = 0.4
        # decision 2: ranks [1.5, 1.5, 3.5, 3.5] vs [1, 3, 2, 4]: 2 / sqrt(4 * 5)
        # decision 3: ranks [2, 1, 3, 4] vs [4, 3, 1, 2]: 1 - 6 * 16 / 60 = -0.6
        "rank_correlation_within": (0.4 + 2 / math.sqrt(20) - 0.6) / 3,
        # supported rows covered: 2 of 3, 3 of 3, 3 of 4 (20 > 17 is not) -> 8 / 10
        "interval_coverage_90": 0.8,
        # all rows: add decision 1's adc (covered) and decision 2's tbp+local (10.5 > 9 not) -> 9 / 12
        "interval_coverage_90_all": 0.75,
        "interval_width_mean": (4 + 4 + 4 + 3 + 4 + 4 + 4 + 8 + 4 + 4) / 10,
        # supported predicted - true: [-1, -1, 4 | 1, 1, -1 | -5, -5, 2, 1], sum -4
        "interval_error_mean": -0.4,
        # squared deviations from -0.4: 0.36 x 3, 19.36, 1.96 x 3, 21.16 x 2, 5.76 -> 74.4
        "interval_error_sd": math.sqrt(74.4 / 9),
        # |errors| sorted [1, 1, 1, 1, 1, 1, 2, 4, 5, 5]: the 90th percentile lies between the last two
        "interval_half_width_needed_90": 5.0,
    }
    assert set(metrics) == set(expected)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key


def test_value_column_and_baseline_are_parameters() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    metrics = policy_truth_metrics(
        scores,
        truth.rename(columns={"true": "rmst_24"}),
        observed,
        value_column="rmst_24",
        baseline=("tbp", True),
    )
    assert metrics["value_always_tbp"] == pytest.approx((12 + 10.5 + 19) / 3)
    assert metrics["tbp_switch_n"] == 2.0  # the TBP side is every tbp row, with or without local therapy


def test_unsupported_options_are_never_recommended() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    boosted = scores.assign(predicted=np.where(scores["supported"], scores["predicted"], 1000.0))
    assert policy_truth_metrics(boosted, truth, observed)["value_model"] == pytest.approx(11.0)
    only_tbp = scores.assign(supported=scores["candidate"] == "tbp", predicted=-scores["predicted"])
    # supported tbp rows only; lowest original prediction wins: 10 (tbp, decision 1), 6 (decision 2: the
    # tbp+local row is unsupported), 19 (decision 3)
    assert policy_truth_metrics(only_tbp, truth, observed)["value_model"] == pytest.approx((10 + 6 + 19) / 3)


def test_capture_is_one_for_the_oracle_and_zero_for_current_practice() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    oracle = scores.assign(predicted=truth["true"], supported=True)
    assert policy_truth_metrics(oracle, truth, observed)["capture"] == pytest.approx(1.0)
    is_taken = scores.merge(observed, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    practice = scores.assign(predicted=is_taken.astype(float), supported=True)
    assert policy_truth_metrics(practice, truth, observed)["capture"] == pytest.approx(0.0)
    # the observed options are already the best: no gain to capture
    best = {1: ("adc", False), 2: ("adc", False), 3: ("tbp", False)}
    assert math.isnan(policy_truth_metrics(scores, truth, _frames(HAND_TABLE, best)[2])["capture"])


def test_constant_decisions_are_skipped_and_empty_comparisons_are_nan() -> None:
    table = {
        1: [("tbp", False, 5.0, 1.0, 0.0, 9.0, True), ("chemo", False, 5.2, 1.0, 0.0, 9.0, True)],
        2: [("tbp", False, 4.0, 1.0, 0.0, 9.0, True), ("chemo", False, 6.0, 3.0, 0.0, 9.0, True)],
    }
    frames = _frames(table, {1: ("tbp", False), 2: ("chemo", False)})
    metrics = policy_truth_metrics(*frames)
    # decision 1's predictions are constant (skipped); decision 2 ranks its two options right (1)
    assert metrics["rank_correlation_within"] == pytest.approx(1.0)
    # gains over tbp: predicted [0, 2], true [0.2, 2] -> same order
    assert metrics["rank_correlation"] == pytest.approx(1.0)
    # true switch - tbp: 0.2 (left out at min_difference 1) and 2 (predicted 2: agree)
    assert (metrics["tbp_switch_agreement"], metrics["tbp_switch_n"]) == (1.0, 1.0)
    strict = policy_truth_metrics(*frames, min_difference=5.0)
    assert math.isnan(strict["tbp_switch_agreement"]) and strict["tbp_switch_n"] == 0.0
    flat = frames[0].assign(predicted=1.0)
    assert math.isnan(policy_truth_metrics(flat, *frames[1:])["rank_correlation_within"])
    assert math.isnan(policy_truth_metrics(flat, *frames[1:])["rank_correlation"])


def test_policy_validation_errors() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    with pytest.raises(
        ValueError, match="1 scores keys missing from truth, 0 truth keys missing from scores"
    ):
        policy_truth_metrics(scores, truth.iloc[1:], observed)
    extra = pd.concat(
        [truth, pd.DataFrame([{"decision": 3, "candidate": "x", "local_therapy": False, "true": 1}])]
    )
    with pytest.raises(
        ValueError, match="0 scores keys missing from truth, 1 truth keys missing from scores"
    ):
        policy_truth_metrics(scores, extra, observed)
    with pytest.raises(ValueError, match="scores has 1 duplicated"):
        policy_truth_metrics(pd.concat([scores, scores.iloc[:1]]), truth, observed)
    unknown = observed.assign(candidate=["tbp", "oral_serd", "chemo"])
    with pytest.raises(ValueError, match="1 observed options are not among the options of truth"):
        policy_truth_metrics(scores, truth, unknown)
    with pytest.raises(ValueError, match="observed must cover the decisions"):
        policy_truth_metrics(scores, truth, observed.iloc[:2])
    unsupported = scores.assign(supported=scores["decision"] != 2)
    with pytest.raises(ValueError, match="1 decisions have no supported option"):
        policy_truth_metrics(unsupported, truth, observed)
    with pytest.raises(ValueError, match="lack the baseline option"):
        policy_truth_metrics(scores, truth, observed, baseline=("et_mono", False))
    with pytest.raises(ValueError, match=r"scores lacks columns \['supported'\]"):
        policy_truth_metrics(scores.drop(columns="supported"), truth, observed)
    with pytest.raises(ValueError, match="must be boolean"):
        policy_truth_metrics(scores.assign(supported=1), truth, observed)
    with pytest.raises(ValueError, match="must be finite"):
        policy_truth_metrics(scores.assign(predicted=np.nan), truth, observed)


OPTIONS = (("tbp", False), ("tbp", True), ("chemo", False), ("adc", False))


@st.composite
def _random_policy(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n_decisions = draw(st.integers(1, 5))
    value = st.integers(0, 30).map(float)
    table, observed = {}, {}
    for decision in range(n_decisions):
        supported = draw(st.lists(st.booleans(), min_size=4, max_size=4))
        supported[draw(st.integers(0, 3))] = True
        table[decision] = [
            (candidate, local, draw(value), draw(value), 0.0, 30.0, support)
            for (candidate, local), support in zip(OPTIONS, supported, strict=True)
        ]
        observed[decision] = OPTIONS[draw(st.integers(0, 3))]
    return _frames(table, observed)


@settings(max_examples=60, deadline=None)
@given(_random_policy())
def test_policy_value_properties(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    scores, truth, observed = frames
    metrics = policy_truth_metrics(scores, truth, observed)
    best = truth.groupby("decision")["true"].max()
    assert metrics["value_oracle"] == pytest.approx(best.mean())
    for key in ("value_model", "value_observed", "value_always_tbp", "value_best_single"):
        assert metrics["value_oracle"] >= metrics[key] - 1e-12, key
    assert metrics["value_best_single"] >= metrics["value_always_tbp"] - 1e-12
    # the recommendation, recomputed row by row: the first supported row with the highest prediction
    chosen = []
    for _, rows in scores.assign(true=truth["true"]).groupby("decision"):
        candidates = [row for row in rows.itertuples() if row.supported]
        chosen.append(max(candidates, key=lambda row: (row.predicted, -row.Index)).true)
    assert metrics["value_model"] == pytest.approx(np.mean(chosen))

    oracle = policy_truth_metrics(scores.assign(predicted=truth["true"], supported=True), truth, observed)
    if metrics["value_oracle"] > metrics["value_observed"]:
        assert oracle["capture"] == pytest.approx(1.0)
        assert metrics["capture"] <= 1.0 + 1e-12
    else:
        assert math.isnan(oracle["capture"])


def test_half_width_needed_is_the_smallest_that_covers_90_percent() -> None:
    """Five supported rows off by 0-4 months: 3 covers 4 of 5 (80%), 4 covers all; one row has no SD."""
    options = [("tbp", False), ("tbp", True), ("chemo", False), ("adc", False), ("et_mono", False)]
    rows = [(1, c, lt, 10.0, 10.0 + e, 9.0 + e, 11.0 + e, True) for e, (c, lt) in enumerate(options)]
    columns = ["decision", "candidate", "local_therapy", "true", "predicted", "lower", "upper", "supported"]
    long = pd.DataFrame(rows, columns=columns)
    taken = pd.DataFrame([(1, "tbp", False)], columns=["decision", "candidate", "local_therapy"])
    metrics = policy_truth_metrics(long.drop(columns="true"), long[[*columns[:3], "true"]], taken)
    assert metrics["interval_half_width_needed_90"] == 4.0  # a linear 90th percentile would say 3.6
    assert metrics["interval_error_mean"] == pytest.approx(2.0)
    assert metrics["interval_error_sd"] == pytest.approx(math.sqrt(10 / 4))
    alone = long.assign(supported=[True, False, False, False, False])
    single = policy_truth_metrics(alone.drop(columns="true"), alone[[*columns[:3], "true"]], taken)
    assert math.isnan(single["interval_error_sd"])
    assert single["interval_error_mean"] == 0.0
    assert single["interval_half_width_needed_90"] == 0.0


# ---------------------------------------------------------------- precision of the truth


def test_truth_precision_by_hand() -> None:
    # decision 0: values 1, 2, 3 -> variance (ddof 1) 1; decision 1: 4, 4, 10 -> mean 6, squares
    # 4 + 4 + 16 = 24, variance 12; spread = sqrt((1 + 12) / 2) = sqrt(6.5)
    values = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 10.0]])
    # squared errors 0.25 x 3, 1, 1, 6.25: mean 9 / 6 = 1.5; signal = sqrt(6.5 - 1.5) = sqrt(5)
    errors = np.array([[0.5, 0.5, 0.5], [1.0, 1.0, 2.5]])
    figures = truth_precision(values, errors)
    assert figures["truth_spread"] == pytest.approx(np.sqrt(6.5), rel=1e-12)
    assert figures["truth_standard_error"] == pytest.approx(np.sqrt(1.5), rel=1e-12)
    assert figures["truth_signal_spread"] == pytest.approx(np.sqrt(5.0), rel=1e-12)
    closed_form = truth_precision(values, None)
    assert closed_form["truth_standard_error"] == 0.0
    assert closed_form["truth_signal_spread"] == pytest.approx(np.sqrt(6.5), rel=1e-12)
    assert truth_precision(values, np.full((2, 3), 9.0))["truth_signal_spread"] == 0.0  # all noise
    unknown = truth_precision(values, np.full((2, 3), np.nan))
    assert np.isnan(unknown["truth_standard_error"]) and np.isnan(unknown["truth_signal_spread"])
    assert np.isnan(truth_precision(values[:, :1], None)["truth_spread"])


@pytest.mark.parametrize(
    ("values", "errors", "message"),
    [
        (np.ones(3), None, "must be \\(decisions, options\\)"),
        (np.ones((0, 3)), None, "must be \\(decisions, options\\)"),
        (np.array([[1.0, np.nan]]), None, "must be finite"),
        (np.ones((2, 3)), np.ones((3, 2)), "standard_error has shape"),
        (np.ones((2, 3)), -np.ones((2, 3)), "non-negative and finite"),
        (np.ones((2, 3)), np.full((2, 3), np.inf), "non-negative and finite"),
    ],
)
def test_truth_precision_refuses_bad_arrays(
    values: np.ndarray, errors: np.ndarray | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        truth_precision(values, errors)
