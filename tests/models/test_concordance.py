"""Harrell's C of resamples given as multiplicities, against scikit-survival on the written-out resamples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sksurv.metrics import concordance_index_censored

from linewise.models.concordance import resampled_concordance


def _written_out(event, time, risk, counts):
    rows = np.repeat(np.arange(len(event)), counts)
    return concordance_index_censored(event[rows], time[rows], risk[rows])[0]


def test_hand_counted_pairs() -> None:
    # rows (event, time, risk): A (1, 1, 3), B (1, 2, 2), C (0, 2, 2), D (0, 3, 1)
    event = np.array([True, True, False, False])
    time = np.array([1.0, 2.0, 2.0, 3.0])
    risk = np.array([3.0, 2.0, 2.0, 1.0])
    # comparable: A-B, A-C, A-D (all concordant); B-C (same time, C censored: tied risk, one half);
    # B-D (concordant): 4.5 of 5
    once = resampled_concordance(event, time, risk, np.ones((1, 4), dtype=int))
    assert once[0] == 4.5 / 5
    # B twice, D dropped: A-B x2, A-C, B-C x2 (tied): (3 + 1) / 5
    twice = resampled_concordance(event, time, risk, np.array([[1, 2, 1, 0]]))
    assert twice[0] == 4 / 5


def test_no_comparable_pair_is_nan_and_bad_input_is_refused() -> None:
    event = np.array([False, False, True])
    time = np.array([1.0, 2.0, 3.0])
    out = resampled_concordance(event, time, np.zeros(3), np.array([[1, 1, 1], [1, 1, 0]]))
    assert np.isnan(out).all()
    with pytest.raises(ValueError, match="one entry per row"):
        resampled_concordance(event, time, np.zeros(2), np.ones((1, 3), dtype=int))
    with pytest.raises(ValueError, match="whole"):
        resampled_concordance(event, time, np.zeros(3), np.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="negative"):
        resampled_concordance(event, time, np.zeros(3), -np.ones((1, 3), dtype=int))
    with pytest.raises(ValueError, match="finite"):
        resampled_concordance(event, np.array([1.0, np.nan, 2.0]), np.zeros(3), np.ones((1, 3), dtype=int))


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.booleans(), st.integers(1, 6), st.integers(0, 4)), min_size=2, max_size=30),
    seed=st.integers(0, 2**16),
)
def test_equals_scikit_survival_on_written_out_resamples(data, seed) -> None:
    # coarse times and risks: many ties of both kinds
    event = np.array([row[0] for row in data])
    time = np.array([float(row[1]) for row in data])
    risk = np.array([row[2] / 3.0 for row in data])
    risk[::3] += 5e-9  # near-ties, within scikit-survival's tolerance of 1e-8
    rng = np.random.default_rng(seed)
    counts = np.stack(
        [np.bincount(rng.integers(0, len(data), len(data)), minlength=len(data)) for _ in range(5)]
    )
    out = resampled_concordance(event, time, risk, counts)
    for resample, value in zip(counts, out, strict=True):
        rows = np.repeat(np.arange(len(data)), resample)
        comparable = any(
            event[i] and (time[j] > time[i] or (time[j] == time[i] and not event[j]))
            for i in rows
            for j in rows
        )
        if comparable:
            assert value == _written_out(event, time, risk, resample)
        else:
            assert np.isnan(value)
