"""The forest's fast predictions (leaf tables) against scikit-survival's own, missing values included."""

from __future__ import annotations

import numpy as np
import pytest

from linewise.models.survival import RandomSurvivalForestModel
from linewise.models.target import make_target


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 4))
    time = 10 * np.exp(-0.8 * X[:, 0] + 0.3 * X[:, 1]) * rng.weibull(1.3, 400)
    censor = rng.uniform(2, 50, 400)  # some follow-up beyond the 36-month grid
    X[rng.random(400) < 0.25, 1] = np.nan  # missing values the splits learn a side for
    X[rng.random(400) < 0.1, 3] = np.nan
    return X, make_target(np.maximum(np.minimum(time, censor), 0.05), time <= censor)


def _rows(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(60, 4))
    rows[rng.random((60, 4)) < 0.2] = np.nan
    return rows


def _sksurv_survival_on_grid(model: RandomSurvivalForestModel, X: np.ndarray) -> np.ndarray:
    """scikit-survival's curves, read at the grid times as step functions (1 before the first time)."""
    curves = model.forest_.predict_survival_function(X, return_array=True)
    times = model.forest_.unique_times_
    columns = [np.flatnonzero(times <= t)[-1] if (times <= t).any() else None for t in model.time_grid_]
    return np.column_stack([np.ones(len(X)) if c is None else curves[:, c] for c in columns])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_fast_predictions_equal_scikit_survival(weighted: bool) -> None:
    X, y = _data(0)
    weight = np.random.default_rng(1).integers(0, 4, len(X)).astype(float) if weighted else None
    model = RandomSurvivalForestModel(n_estimators=25, min_samples_leaf=8, random_state=0)
    model.fit(X, y, sample_weight=weight)
    rows = np.vstack([_rows(2), X[:20]])
    np.testing.assert_allclose(
        model.predict_survival_function(rows), _sksurv_survival_on_grid(model, rows), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(model.predict(rows), model.forest_.predict(rows), rtol=0, atol=1e-12)
    # the risk score is scikit-survival's cumulative hazard summed over the event times
    chf = model.forest_.predict_cumulative_hazard_function(rows, return_array=True)
    np.testing.assert_allclose(
        model.predict(rows), chf[:, model.forest_.is_event_time_].sum(1), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (np.full((2, 4), np.inf), "infinity"),
        (np.zeros((2, 3)), "expecting 4 features"),
    ],
    ids=["infinite", "wrong-width"],
)
def test_bad_rows_are_rejected(rows: np.ndarray, match: str) -> None:
    X, y = _data(5)
    model = RandomSurvivalForestModel(n_estimators=3, min_samples_leaf=20, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=match):
        model.predict_survival_function(rows)
