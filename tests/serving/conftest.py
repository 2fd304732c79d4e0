"""A small registered model in a temporary MLflow store, and simulated patients to score with it.

Shared by the tests of ``linewise score``, ``score-lock``, ``report`` and ``serve``. Everything is
simulated: no real patient's data is used anywhere.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest

from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.features.patient import export_patients
from linewise.model_input_example import synthetic_input_example
from linewise.models.recommender import TreatmentRecommender
from linewise.serving.report import render_report
from linewise.serving.scoring import ScoringModel, load_scoring_model
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock
from linewise.training.pyfunc import log_recommender

from ..conftest import TEST_KEY

NAME = "linewise"
SQLALCHEMY_NOLOAD = r"The ``noload`` loader strategy is deprecated"
GENERATED = dt.datetime(2025, 2, 3, 9, 30, tzinfo=dt.UTC)  # when the report of ``html`` says it was made


@dataclass(frozen=True)
class Served:
    """The registered model and the simulated data around it."""

    root: Path
    store: str
    lock: Path
    model: ScoringModel
    open_patients: dict[str, dict[str, Any]]  # patient_key -> document, latest decision open
    closed_patient: dict[str, Any]  # a patient whose latest decision is not open (still scorable)
    undecided_patient: dict[str, Any]  # a patient with no decision at all (nothing to score)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("served")
    key = TEST_KEY.encode("utf-8")
    simulate_lock(1000, 5, root / "lock", root / "truth", load_config(), lock_id="sim-5-1000")
    examples = build_examples(load_lock(root / "lock", key))
    recommender = TreatmentRecommender(
        n_bootstrap=3, model_params={"n_estimators": 30, "learning_rate": 0.1}
    ).fit(examples)
    ordered = examples.sort_values(["patient_key", "decision_day", "line_number"], kind="stable")
    latest = ordered.groupby("patient_key").tail(1)
    open_keys = sorted(latest.loc[latest["open_decision"].astype(bool), "patient_key"].astype(str))[:3]
    closed_key = sorted(latest.loc[~latest["open_decision"].astype(bool), "patient_key"].astype(str))[0]
    documents = export_patients(root / "lock", key)
    undecided = sorted(set(documents) - set(latest["patient_key"].astype(str)))[0]
    store = f"sqlite:///{root / 'mlflow.db'}"
    metadata = {"lock_id": "sim-5-1000", "lock_date": "2025-01-31", "lock_digest": "0" * 64}
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SQLALCHEMY_NOLOAD)
        patch.setenv("MLFLOW_TRACKING_URI", store)
        patch.setenv("MLFLOW_REGISTRY_URI", store)
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        try:
            client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
            experiment = client.create_experiment("serving", artifact_location=(root / "artifacts").as_uri())
            with mlflow.start_run(experiment_id=experiment):
                info = log_recommender(
                    recommender, metadata, synthetic_input_example(3), registered_model_name=NAME
                )
            client.set_registered_model_alias(NAME, "champion", str(info.registered_model_version))
            model = load_scoring_model(f"models:/{NAME}@champion")
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    return Served(
        root,
        store,
        root / "lock",
        model,
        {k: documents[k] for k in open_keys},
        documents[closed_key],
        documents[undecided],
    )


@pytest.fixture
def store(served: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point MLflow (and subprocesses) at the served model's store for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", served.store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", served.store)
    mlflow.set_tracking_uri(served.store)
    mlflow.set_registry_uri(served.store)
    try:
        yield served.store
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def patient(served: Served) -> dict[str, Any]:
    """The first open patient's document (the served model's own: read it, do not change it)."""
    return next(iter(served.open_patients.values()))


@pytest.fixture(scope="session")
def html(served: Served, patient: dict[str, Any]) -> str:
    """The report of ``patient``, made at ``GENERATED``: rendered once for the report's test modules."""
    return render_report(served.model, patient, generated_at=GENERATED)
