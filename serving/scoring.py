"""Load a registered model once and score patients with it: the one path behind score, report and serve.

:func:`load_scoring_model` resolves an alias (``models:/linewise@champion``) to its version *before*
loading, so the model that scores and the provenance it reports are the same even if the alias moves
meanwhile, and checks the model's format from its metadata before any of its code runs.
:func:`score_patient` turns a patient document into the ``linewise score --json`` document
(:func:`linewise.serving.score_document.score_document`) with the registered model's own code
(:func:`linewise.models.output_table.score_decisions`, which the MLflow model and ``score-lock`` run
too), so the CLI, the service and the batch path cannot disagree; :func:`patient_curves` adds the
survival curves the report draws, from the same model. Both pick the decision that model does
(:func:`linewise.models.output_table.document_decision`).

The model is read only through MLflow; this package imports nothing of :mod:`linewise.training`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES
from linewise.features.patient import cut_document, load_patient
from linewise.models.candidates import OPTIONS
from linewise.models.option_predictions import OptionPredictions
from linewise.models.output_table import (
    NoDecisionError,
    check_model_format,
    document_decision,
    score_decisions,
)
from linewise.models.recommender import TreatmentRecommender
from linewise.serving.score_document import DEFAULT_MODEL_URI, score_document

#: Provenance keys taken from the model's metadata (``linewise.training.model_metadata.model_metadata``).
_METADATA_PROVENANCE: Final = (
    "lock_id",
    "lock_date",
    "lock_digest",
    "training_run_id",
    "package_version",
    "family",
    "learner",
    "weighting",
    "interval",
    "min_support",
    "n_training_decisions",
    "max_training_line",
    "policy_value",
)


class ScoringError(ValueError):
    """A patient document that is valid but cannot be scored (no decision, bad ``as_of``)."""


@dataclass(frozen=True)
class ScoringModel:
    """A loaded model with its provenance.

    Attributes
    ----------
    uri : str
        The URI as asked for (an alias URI stays an alias URI).
    resolved_uri : str
        The URI actually loaded: ``models:/NAME/VERSION`` for a registered model.
    version : str or None
        The registered version, None for a model that is not registered.
    provenance : dict
        ``model_uri``, ``model_version`` and the training lock and settings (:data:`_METADATA_PROVENANCE`).
    python_model : object
        The loaded model's Python object (``unwrap_python_model()``): its ``recommender`` is a fitted
        :class:`linewise.models.recommender.TreatmentRecommender`, its ``metadata`` a dict.
    """

    uri: str
    resolved_uri: str
    version: str | None
    provenance: dict[str, Any]
    python_model: Any

    @property
    def recommender(self) -> TreatmentRecommender:
        """The fitted recommender inside the model."""
        recommender: TreatmentRecommender = self.python_model.recommender
        return recommender


def resolve_model_uri(uri: str) -> tuple[str, str | None]:
    """Resolve ``models:/NAME@ALIAS`` to ``models:/NAME/VERSION``.

    Parameters
    ----------
    uri : str
        Any MLflow model URI.

    Returns
    -------
    resolved : str
        The URI to load (unchanged unless it names an alias).
    version : str or None
        The registered version when the URI names a registered model, else None.
    """
    import mlflow

    if not uri.startswith("models:/"):
        return uri, None
    path = uri.removeprefix("models:/")
    if "@" in path:
        name, alias = path.split("@", 1)
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
        return f"models:/{name}/{version}", version
    name, _, version = path.partition("/")
    return uri, version or None


def current_version(uri: str) -> str | None:
    """Return the version an alias URI points at now (None for other URIs): for reloading."""
    return resolve_model_uri(uri)[1] if "@" in uri else None


def load_scoring_model(uri: str = DEFAULT_MODEL_URI) -> ScoringModel:
    """Load the model at ``uri`` through MLflow, with its provenance.

    Parameters
    ----------
    uri : str
        A model URI; default ``models:/linewise@champion``. The tracking store is MLflow's current
        one (``MLFLOW_TRACKING_URI`` or what the caller set).

    Returns
    -------
    ScoringModel

    Raises
    ------
    mlflow.exceptions.MlflowException, OSError
        If the model cannot be found or read.
    linewise.models.output_table.ModelFormatError
        If the model was saved by another layout of linewise (retrain it) or is not a linewise model.
    TypeError
        If the loaded model holds no fitted linewise recommender.
    """
    import mlflow

    resolved, version = resolve_model_uri(uri)
    check_model_format(mlflow.models.get_model_info(resolved).metadata, uri)
    python_model = mlflow.pyfunc.load_model(resolved).unwrap_python_model()
    recommender = getattr(python_model, "recommender", None)
    if not isinstance(recommender, TreatmentRecommender) or not isinstance(
        getattr(python_model, "metadata", None), dict
    ):
        raise TypeError(f"{uri} is not a linewise recommender (found {type(python_model).__name__})")
    _warm_up(recommender)
    metadata = python_model.metadata
    provenance = {
        "model_uri": uri,
        "model_version": version,
        **{key: metadata.get(key) for key in _METADATA_PROVENANCE},
    }
    return ScoringModel(uri, resolved, version, provenance, python_model)


def _warm_up(recommender: TreatmentRecommender) -> None:
    """Score and explain one row of missing values, so compiled code is ready before the first patient.

    The forest's TreeSHAP (:mod:`linewise.models.tree_shap`) compiles on its first call in a process
    (seconds); a service should not make its first patient wait for that.
    """
    row = np.full((1, len(FEATURES)), np.nan)
    recommender.explain(row[0], recommender.predict_options(row))


def _prepared(document: dict[str, Any], as_of: dt.date | None, source: str) -> pd.DataFrame:
    """Return the latest decision's example row of a (cut) document; raise if there is none.

    With ``as_of``, the whole document is checked before it is cut, so a record that breaks the
    contract (one dated after the document's own ``as_of``, say) is refused, not dropped by the cut.
    """
    if as_of is not None:
        load_patient(dict(document), source=source)
        try:
            document = cut_document(document, as_of)
        except ValueError as err:
            raise ScoringError(str(err)) from err
    try:
        return document_decision(document, source)
    except NoDecisionError as err:
        raise ScoringError(str(err)) from err


def score_patient(
    model: ScoringModel, document: dict[str, Any], as_of: dt.date | None = None, source: str = "patient"
) -> dict[str, Any]:
    """Score a patient's latest decision: the ``linewise score --json`` document.

    Parameters
    ----------
    model : ScoringModel
        Loaded with :func:`load_scoring_model`.
    document : dict
        A patient document.
    as_of : date, optional
        Score the history as it stood on this date.
    source : str
        Name of the document in error messages.

    Returns
    -------
    dict
        See :func:`linewise.serving.score_document.score_document`, plus ``as_of``.

    Raises
    ------
    linewise.features.errors.LockValidationError
        If the document breaks the patient-file contract.
    ScoringError
        If it has no decision to score, or ``as_of`` is after the document's own.
    """
    return score_patient_with_curves(model, document, as_of, source)[0]


def score_patient_with_curves(
    model: ScoringModel, document: dict[str, Any], as_of: dt.date | None = None, source: str = "patient"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return :func:`score_patient`'s document and :func:`patient_curves`'s curves from one prediction.

    Parameters
    ----------
    model, document, as_of, source
        As :func:`score_patient`.

    Returns
    -------
    score : dict
        As :func:`score_patient`.
    curves : dict
        As :func:`patient_curves`.
    """
    latest = _prepared(document, as_of, source)
    predictions = model.recommender.predict_options(latest[list(FEATURES)].to_numpy(float))
    rows = score_decisions(model.recommender, latest, np.array([0]), predictions)
    stated = as_of.isoformat() if as_of is not None else str(document.get("as_of"))
    score = {"as_of": stated, **score_document(rows, model.provenance)}
    return score, _curves(predictions, latest, float(model.recommender.interval))


def patient_curves(
    model: ScoringModel, document: dict[str, Any], as_of: dt.date | None = None, source: str = "patient"
) -> dict[str, Any]:
    """Return the predicted rwPFS and OS curves of every option, with pointwise intervals.

    Parameters
    ----------
    model, document, as_of, source
        As :func:`score_patient`.

    Returns
    -------
    dict
        ``{"grid": [months], "interval": 0.9, "rwpfs": {option: {"survival", "lower", "upper"}},
        "os": {...}}``; lists of floats on the grid, options in
        :data:`linewise.models.candidates.OPTIONS` order.
    """
    latest = _prepared(document, as_of, source)
    predictions = model.recommender.predict_options(latest[list(FEATURES)].to_numpy(float))
    return _curves(predictions, latest, float(model.recommender.interval))


def _curves(predictions: OptionPredictions, latest: pd.DataFrame, interval: float) -> dict[str, Any]:
    """Lay out one decision's predicted curves and bands (:func:`patient_curves`)."""
    out: dict[str, Any] = {
        "grid": [float(t) for t in predictions.grid],
        "interval": interval,
        "decision": {key: _plain(latest[key].iloc[0]) for key in KEYS},
    }
    for endpoint, name in (("pfs", "rwpfs"), ("os", "os")):
        out[name] = {
            option.label: {
                "survival": predictions.curves[endpoint][0, i].tolist(),
                "lower": predictions.curve_lower[endpoint][0, i].tolist(),
                "upper": predictions.curve_upper[endpoint][0, i].tolist(),
            }
            for i, option in enumerate(OPTIONS)
        }
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def dumps(document: dict[str, Any]) -> str:
    """Write a score document as JSON text the same way everywhere (indented, no NaN)."""
    return json.dumps(document, indent=2, allow_nan=False)
