"""Boosted Cox rounds chosen on the lock: the held-out partial likelihood, against lifelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from linewise.models.cox_likelihood import cox_negative_log_likelihood
from linewise.models.survival import BoostedCoxModel
from linewise.models.target import make_target


def _data(n: int, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    event_time = rng.exponential(10 * np.exp(-signal * X[:, 0]))
    censoring_time = rng.exponential(20.0, n)
    return X, make_target(np.minimum(event_time, censoring_time), event_time <= censoring_time)


def test_the_partial_likelihood_is_lifelines_at_its_fit() -> None:
    X, y = _data(500, 0.7, 1)  # continuous times: no ties, so Breslow and Efron agree
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).assign(time=y["time"], event=y["event"])
    fitted = CoxPHFitter().fit(frame, "time", "event")
    margin = X @ fitted.params_.to_numpy()
    loss = cox_negative_log_likelihood(margin, y["time"], y["event"], np.ones(500))
    assert loss == pytest.approx(-fitted.log_likelihood_ / y["event"].sum(), rel=1e-9)


def test_a_weight_counts_as_copies_in_the_loss() -> None:
    X, y = _data(200, 0.5, 2)
    margin = 0.3 * X[:, 0]
    weight = np.ones(200)
    weight[:50] = 2.0
    doubled = np.r_[np.arange(200), np.arange(50)]
    assert cox_negative_log_likelihood(margin, y["time"], y["event"], weight) == pytest.approx(
        cox_negative_log_likelihood(margin[doubled], y["time"][doubled], y["event"][doubled], np.ones(250))
    )


def test_rounds_follow_the_signal_and_the_refit_keeps_them() -> None:
    rounds = {}
    for signal in (0.0, 1.0):
        X, y = _data(3000, signal, 3)
        model = BoostedCoxModel(n_estimators=400, early_stopping_rounds=20).fit(X, y)
        assert model.booster_.num_boosted_rounds() == model.n_estimators_
        assert np.isfinite(model.validation_loss_)
        again = BoostedCoxModel(n_estimators=400, early_stopping_rounds=20).fit(X, y)
        np.testing.assert_array_equal(model.predict(X[:20]), again.predict(X[:20]))
        rounds[signal] = model.n_estimators_
    assert rounds[0.0] < 40 < rounds[1.0]


def test_without_early_stopping_every_round_is_kept() -> None:
    X, y = _data(1000, 0.5, 4)
    model = BoostedCoxModel(n_estimators=25).fit(X, y)
    assert model.n_estimators_ == 25
    assert model.validation_loss_ is None
