"""The one scoring path: load by resolved version, score a patient, its curves."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from linewise.features import LockValidationError
from linewise.serving.scoring import ScoringError, patient_curves, score_patient

from .conftest import Served


def test_the_alias_is_resolved_to_the_version_it_points_at(served: Served) -> None:
    assert served.model.resolved_uri == f"models:/linewise/{served.model.version}"
    assert served.model.provenance["model_version"] == served.model.version
    assert served.model.provenance["lock_id"] == "sim-5-1000"


def test_score_patient_lists_every_option_once_ranked_first(served: Served) -> None:
    document = next(iter(served.open_patients.values()))
    result = score_patient(served.model, document)
    options = [entry["option"] for entry in result["candidates"]]
    assert len(options) == len(set(options)) == 16
    ranks = [entry["rank"] for entry in result["candidates"] if entry["rank"] is not None]
    assert ranks == list(range(1, len(ranks) + 1))
    assert all(entry["support"] for entry in result["candidates"][: len(ranks)])
    assert result["patient_key"] == document["patient_key"]


def test_curves_are_survival_functions_inside_their_bands(served: Served) -> None:
    document = next(iter(served.open_patients.values()))
    curves = patient_curves(served.model, document)
    for endpoint in ("rwpfs", "os"):
        assert len(curves[endpoint]) == 16
        for curve in curves[endpoint].values():
            survival = np.array(curve["survival"])
            assert len(survival) == len(curves["grid"])
            assert np.all(np.diff(survival) <= 1e-12) and survival[0] <= 1.0 and survival[-1] >= 0.0
            assert np.all(np.array(curve["lower"]) <= survival + 1e-12)
            assert np.all(np.array(curve["upper"]) >= survival - 1e-12)


def test_a_patient_without_decision_and_a_late_as_of_are_scoring_errors(served: Served) -> None:
    with pytest.raises(ScoringError, match="no decision to score"):
        score_patient(served.model, served.undecided_patient)
    document = next(iter(served.open_patients.values()))
    late = dt.date.fromisoformat(document["as_of"]) + dt.timedelta(days=1)
    with pytest.raises(ScoringError, match="after"):
        score_patient(served.model, document, late)
    with pytest.raises(LockValidationError, match="schema_version"):
        score_patient(served.model, {**document, "schema_version": 2})
