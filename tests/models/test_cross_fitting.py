"""Cross-fitting: no row is predicted by a model that saw its patient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from linewise.models.candidates import OPTIONS
from linewise.models.cross_fitting import cross_fit, patient_folds
from linewise.models.survival import time_grid
from linewise.models.target import make_target

GRID = time_grid(0.5, 36.0)


class _RememberingSurvival(BaseEstimator):
    """Survival 1 everywhere for rows it never saw, 0 after the first grid time for rows it was fitted on.

    Column 0 of the design is the row's patient number, so a model can tell what it saw.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> _RememberingSurvival:
        self.seen_ = set(np.asarray(X)[:, 0].tolist())
        self.time_grid_ = GRID
        return self

    def predict_survival_function(self, X: np.ndarray) -> np.ndarray:
        seen = np.isin(np.asarray(X)[:, 0], list(self.seen_))
        curves = np.ones((len(X), GRID.size))
        curves[seen, 1:] = 0.0
        return curves


class _RememberingPropensity(BaseEstimator):
    """Uniform over the options for unseen rows; all on the first option for rows it was fitted on."""

    def fit(self, X: np.ndarray, options: np.ndarray) -> _RememberingPropensity:
        self.seen_ = set(np.asarray(X)[:, 0].tolist())
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        seen = np.isin(np.asarray(X)[:, 0], list(self.seen_))
        proba = np.full((len(X), len(OPTIONS)), 1.0 / len(OPTIONS))
        proba[seen] = np.eye(len(OPTIONS))[0]
        return proba


@pytest.fixture
def rows() -> dict[str, Any]:
    rng = np.random.default_rng(5)
    patient = rng.integers(0, 120, 400)  # several decisions per patient
    X = np.column_stack([patient.astype(float), rng.normal(size=(400, 3))])
    return {
        "X": X,
        "patient": patient,
        "observed": rng.integers(0, len(OPTIONS), 400),
        "y": make_target(rng.uniform(1, 40, 400), rng.random(400) < 0.7),
    }


def _remembering_fit(rows: dict[str, Any], folds: np.ndarray, *, naive: bool) -> Any:
    return cross_fit(
        rows["X"],
        rows["observed"],
        rows["y"],
        folds,
        outcome_model=_RememberingSurvival(),
        censoring_model=_RememberingSurvival(),
        propensity_model=_RememberingPropensity(),
        naive=naive,
    )


def test_no_row_is_predicted_by_a_model_that_saw_its_patient(rows: dict[str, Any]) -> None:
    nuisances = _remembering_fit(rows, patient_folds(rows["patient"], 4, random_state=0), naive=False)
    np.testing.assert_allclose(nuisances.propensity, 1.0 / len(OPTIONS))
    np.testing.assert_allclose(nuisances.outcome, 24.0)  # survival 1 to the horizon: never seen
    # with G = S = 1 (never seen) the transform is the restricted time of a known row, and m(u) = 24
    # plus nothing for a censored one: a censoring model that saw the row would give another value
    time, event = rows["y"]["time"], rows["y"]["event"]
    known = event | (time >= 24.0)
    np.testing.assert_allclose(nuisances.adjusted, np.where(known, np.minimum(time, 24.0), 24.0))


def test_the_remembering_models_would_show_a_leak(rows: dict[str, Any]) -> None:
    seen = _RememberingPropensity().fit(rows["X"], rows["observed"])
    assert (seen.predict_proba(rows["X"])[:, 0] == 1).all()


def test_a_patient_is_in_one_fold_and_folds_are_balanced(rows: dict[str, Any]) -> None:
    folds = patient_folds(rows["patient"], 4, random_state=1)
    per_patient = {p: set(folds[rows["patient"] == p]) for p in np.unique(rows["patient"])}
    assert all(len(found) == 1 for found in per_patient.values())
    patients_per_fold = np.bincount([next(iter(found)) for found in per_patient.values()])
    assert patients_per_fold.max() - patients_per_fold.min() <= 1
    assert not np.array_equal(folds, patient_folds(rows["patient"], 4, random_state=2))
    with pytest.raises(ValueError, match="n_folds must be in"):
        patient_folds(rows["patient"], 1, random_state=0)


def test_naive_propensities_are_the_other_folds_shares(rows: dict[str, Any]) -> None:
    folds = patient_folds(rows["patient"], 3, random_state=0)
    nuisances = _remembering_fit(rows, folds, naive=True)
    for fold in range(3):
        counts = np.bincount(rows["observed"][folds != fold], minlength=len(OPTIONS))
        np.testing.assert_allclose(
            nuisances.propensity[folds == fold],
            np.broadcast_to(counts / counts.sum(), (int((folds == fold).sum()), len(OPTIONS))),
        )
