"""The ground-truth figures of evaluate_policy, on predictions and truth written by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linewise.models.candidates import OPTIONS
from linewise.models.option_predictions import OptionPredictions
from linewise.models.policy_evaluation import _truth_figures
from linewise.models.recommender import BASELINE_INDEX


def test_difference_coverage_counts_supported_options_and_leaves_tbp_out() -> None:
    """Coverage of the differences from TBP, against a hand count (TBP's own 0 in [0, 0] is not a hit)."""
    n, k = 2, len(OPTIONS)
    true = np.random.default_rng(0).uniform(4.0, 12.0, (n, k))
    offset = np.where(np.arange(k) % 2 == 0, 0.0, 3.0)  # odd options (with local therapy) are off by 3
    predicted = true + offset
    difference = predicted - predicted[:, [BASELINE_INDEX]]
    support = np.ones((n, k), dtype=bool)
    support[0, 2] = False  # an even option, covered, but unsupported: not counted
    summary, lower, upper = {}, {}, {}
    for endpoint in ("pfs", "os"):
        summary[f"{endpoint}_rmst24"] = predicted
        lower[f"{endpoint}_rmst24"], upper[f"{endpoint}_rmst24"] = predicted - 1.0, predicted + 1.0
        summary[f"{endpoint}_rmst24_vs_tbp"] = difference
        lower[f"{endpoint}_rmst24_vs_tbp"] = difference - 1.0
        upper[f"{endpoint}_rmst24_vs_tbp"] = difference + 1.0
    predictions = OptionPredictions(
        grid=np.array([1.0]),
        curves={},
        curve_lower={},
        curve_upper={},
        summary=summary,
        lower=lower,
        upper=upper,
        propensity=np.full((n, k), 1.0 / k),
        support=support,
        probability_best=np.full((n, k), 1.0 / k),
        first_vs_second={},
    )
    test = pd.DataFrame(
        {"patient_key": ["a", "b"], "line_number": [1, 1], "decision_day": [100, 200]}
        | {"pfs_time": [5.0, 8.0], "pfs_event": [True, False]}
    )
    truth = pd.DataFrame(
        {
            "patient_key": np.repeat(["a", "b"], k),
            "line_number": 1,
            "decision_day": np.repeat([100, 200], k),
            "candidate": [o.candidate for o in OPTIONS] * n,
            "local_therapy": [o.local_therapy for o in OPTIONS] * n,
            "pfs_scale": 10.0,
            "pfs_rmst24": true.ravel(),
            "os_rmst24": true.ravel(),
            "os_rmst24_se": np.repeat([0.5, 1.5], k),  # root mean square sqrt(1.25)
        }
    )
    shuffled = truth.sample(frac=1.0, random_state=1)  # the truth's row order must not matter
    figures = _truth_figures(test, np.array([0, 0]), {"ipw": predictions, "none": predictions}, shuffled)
    # counted: options 1-15 of both decisions, less decision 0's option 2 -> 29 rows; covered: the even
    # options 2-14 (error 0 <= 1) -> 7 per decision, less decision 0's option 2 -> 13
    assert figures["interval_coverage_90_vs_tbp_rwpfs_rmst24"] == pytest.approx(13 / 29)
    assert figures["naive_interval_coverage_90_vs_tbp_os_rmst24"] == pytest.approx(13 / 29)
    # the values themselves: every supported row is off by 0 or 3 -> 15 of 31 within the +/- 1 interval
    assert figures["interval_coverage_90_rwpfs_rmst24"] == pytest.approx(15 / 31)
    # the truth's own precision: rwPFS is a closed form; OS has a Monte Carlo error
    spread = float(np.sqrt(np.mean([np.var(row, ddof=1) for row in true])))
    assert figures["truth_spread_rwpfs_rmst24"] == pytest.approx(spread, rel=1e-12)
    assert figures["truth_spread_os_rmst24"] == pytest.approx(spread, rel=1e-12)
    assert figures["truth_standard_error_rwpfs_rmst24"] == 0.0
    assert figures["truth_standard_error_os_rmst24"] == pytest.approx(np.sqrt(1.25), rel=1e-12)
    assert figures["truth_signal_spread_os_rmst24"] == pytest.approx(np.sqrt(spread**2 - 1.25), rel=1e-12)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['os_rmst24_se'\]"):
        _truth_figures(
            test,
            np.array([0, 0]),
            {"ipw": predictions, "none": predictions},
            truth.drop(columns="os_rmst24_se"),
        )
    lower["pfs_rmst24_vs_tbp"][1, 3] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        _truth_figures(test, np.array([0, 0]), {"ipw": predictions, "none": predictions}, truth)
