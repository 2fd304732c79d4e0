"""The one scoring path: load by resolved version, score a patient, its curves."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy.stats import norm

from linewise.features import LockValidationError
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import load_patient
from linewise.models.candidates import OPTIONS, counterfactual_rows
from linewise.serving.scoring import ScoringError, patient_curves, score_patient

from .conftest import Served


def test_the_alias_is_resolved_to_the_version_it_points_at(served: Served) -> None:
    # the fixture's store is new and registers one version, which @champion points at
    assert served.model.version == "1"
    assert served.model.resolved_uri == "models:/linewise/1"
    assert served.model.provenance["model_version"] == "1"
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


def test_probability_best_is_the_share_of_refits_where_the_option_ranks_first(served: Served) -> None:
    document = next(iter(served.open_patients.values()))
    result = score_patient(served.model, document)
    recommender = served.model.recommender
    examples = build_examples(load_patient(document))
    latest = examples.sort_values(["decision_day", "line_number"]).tail(1)
    rows = counterfactual_rows(latest[list(FEATURES)].to_numpy(float))
    grid = recommender.time_grid_
    support = {entry["option"]: entry["support"] for entry in result["candidates"]}
    wins = dict.fromkeys(support, 0)
    for refit in recommender.replicates_["pfs"]:  # by hand: each refit's best supported option
        curves = refit.predict_survival_function(rows)
        widths = np.diff(np.concatenate([[0.0], grid]))[grid <= 24.0]
        rmst = widths[0] + curves[:, : widths.size - 1] @ widths[1:]
        supported = [i for i, option in enumerate(OPTIONS) if support[option.label]]
        wins[OPTIONS[max(supported, key=lambda i: rmst[i])].label] += 1
    refits = len(recommender.replicates_["pfs"])
    for entry in result["candidates"]:
        assert entry["probability_best"] == pytest.approx(wins[entry["option"]] / refits, abs=1e-12)


def test_curves_are_the_models_survival_with_normal_bootstrap_bands(served: Served) -> None:
    document = next(iter(served.open_patients.values()))
    curves = patient_curves(served.model, document)
    recommender = served.model.recommender
    examples = build_examples(load_patient(document))
    latest = examples.sort_values(["decision_day", "line_number"]).tail(1)
    rows = counterfactual_rows(latest[list(FEATURES)].to_numpy(float))
    z = float(norm.ppf(0.95))  # the model's 90% interval
    for endpoint, name in (("pfs", "rwpfs"), ("os", "os")):
        # by hand: the full-data model's curve, +/- z SD of the refits' curves, clipped to [0, 1]
        point = recommender.models_[endpoint].predict_survival_function(rows)
        refits = np.stack([m.predict_survival_function(rows) for m in recommender.replicates_[endpoint]])
        half = z * refits.std(axis=0, ddof=1)
        assert list(curves[name]) == [option.label for option in OPTIONS]
        for i, curve in enumerate(curves[name].values()):
            np.testing.assert_allclose(curve["survival"], point[i], rtol=0, atol=1e-12)
            np.testing.assert_allclose(curve["lower"], np.clip(point[i] - half[i], 0, 1), rtol=0, atol=1e-12)
            np.testing.assert_allclose(curve["upper"], np.clip(point[i] + half[i], 0, 1), rtol=0, atol=1e-12)
            assert np.all(np.diff(curve["survival"]) <= 1e-12)  # a survival function never rises


def test_a_patient_without_decision_and_a_late_as_of_are_scoring_errors(served: Served) -> None:
    with pytest.raises(ScoringError, match="no decision to score"):
        score_patient(served.model, served.undecided_patient)
    document = next(iter(served.open_patients.values()))
    late = dt.date.fromisoformat(document["as_of"]) + dt.timedelta(days=1)
    with pytest.raises(ScoringError, match="after"):
        score_patient(served.model, document, late)
    with pytest.raises(LockValidationError, match="schema_version"):
        score_patient(served.model, {**document, "schema_version": 2})


def test_an_explicit_as_of_does_not_hide_a_record_that_breaks_the_contract(served: Served) -> None:
    # a record dated after the document's own as_of breaks the patient-file contract; cutting the
    # document at an earlier as_of would drop it unseen, so the whole document is checked first
    document = next(iter(served.open_patients.values()))
    stated = dt.date.fromisoformat(document["as_of"])
    earlier = dt.date.fromisoformat(document["lines"][-1]["start_date"])
    assert earlier < stated
    assert score_patient(served.model, document, stated)["patient_key"] == document["patient_key"]
    future = (stated + dt.timedelta(days=30)).isoformat()
    late_record = {**document["progressions"][-1], "date": future}
    spoiled = {**document, "progressions": [*document["progressions"], late_record]}
    with pytest.raises(LockValidationError, match="progressions") as raised:
        score_patient(served.model, spoiled, earlier)
    assert future not in str(raised.value)
    with pytest.raises(LockValidationError, match="progressions"):
        patient_curves(served.model, spoiled, earlier)
