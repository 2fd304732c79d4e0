"""The whole recommender as one MLflow pyfunc model: a patient's JSON history in, every option scored out.

:class:`RecommenderModel` wraps a fitted :class:`linewise.models.recommender.TreatmentRecommender` with
the feature pipeline of :mod:`linewise.features`, so that
``mlflow.pyfunc.load_model("models:/linewise@champion")`` in a fresh process scores a patient history
with nothing but the linewise package installed
(``mlflow models serve --env-manager local``). Input: a DataFrame with one string column ``patient``,
each cell one document of :mod:`linewise.features.patient`. Output: one row per input row and option (16 per
patient) for the patient's latest decision, with the columns of
:data:`linewise.models.output_table.OUTPUT_COLUMNS` (the same table ``linewise score-lock`` writes).

Layout of a logged model (MLflow 3: ``<experiment artifact root>/models/<model id>/artifacts/``)::

    MLmodel                       flavour, signature, metadata (lock id, date, digest, training run)
    recommender_model.py          the model as code (MLflow "models from code"): no pickled wrapper
    artifacts/recommender.joblib  the fitted TreatmentRecommender without its SHAP explainer
    artifacts/metadata.json       :func:`model_metadata`: lock, run, features, options, versions
    input_example.json            one synthetic patient (``linewise.model_input_example``)
    serving_input_example.json    the same in the scoring server's ``dataframe_split`` format
    requirements.txt, python_env.yaml, conda.yaml
                                  linewise and its runtime dependencies, pinned as installed; linewise
                                  is on no package index, so serve with ``--env-manager local``

The SHAP explainer is not pickled: a ``shap.TreeExplainer`` holds a converted copy of the trees whose
pickled form is no documented shap format. It is a deterministic function of the rwPFS model, so
:meth:`RecommenderModel.load_context` rebuilds it with :func:`linewise.models.explain.make_explainer`.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any, Final

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, DataType, Schema
from sklearn.utils.validation import check_is_fitted

from linewise.features.errors import LockValidationError, Violation
from linewise.features.examples import FEATURES
from linewise.models.explain import make_explainer
from linewise.models.output_table import (
    OUTPUT_TYPES,
    check_model_format,
    document_decision,
    empty_output,
    score_decisions,
)
from linewise.models.recommender import TreatmentRecommender
from linewise.training.model_metadata import METADATA_KEYS, model_metadata, pip_requirements

with warnings.catch_warnings():
    # MLflow 3.17 warns while importing mlflow.pyfunc: mlflow/types/responses.py infers a schema from a
    # pydantic model with an `Any` field ("Any type hint is inferred as AnyType ..."). Only that warning.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    import mlflow.pyfunc
    from mlflow.pyfunc import PythonModel, PythonModelContext

#: The one input column: a patient JSON document per row.
INPUT_COLUMN: Final = "patient"
_ARTIFACTS: Final = {"recommender": "recommender.joblib", "metadata": "metadata.json"}
_MODEL_CODE_FILE: Final = "recommender_model.py"
# MLflow's "models from code": the model is this script, not a pickled wrapper
_MODEL_CODE: Final = '''"""linewise's recommender as an MLflow model from code (linewise.training.pyfunc)."""

from mlflow.models import set_model

from linewise.training.pyfunc import RecommenderModel

set_model(RecommenderModel())
'''


def model_signature() -> ModelSignature:
    """Return the signature: a string column ``patient`` in, the output table's columns out.

    The output columns are :data:`linewise.models.output_table.OUTPUT_COLUMNS`.
    """
    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string, INPUT_COLUMN)]),
        outputs=Schema([ColSpec(DataType[kind], name) for name, kind in OUTPUT_TYPES]),
    )


class RecommenderModel(PythonModel):
    """Score a patient history's latest decision under all 16 options, with SHAP explanations.

    The instance logged with the model holds no state; :meth:`load_context` loads the fitted
    recommender and its metadata from the model's artifacts.
    """

    def __init__(self) -> None:
        self._recommender: TreatmentRecommender | None = None
        self._metadata: dict[str, Any] = {}

    def load_context(self, context: PythonModelContext) -> None:
        """Load the recommender, rebuild its explainer and read the metadata.

        Parameters
        ----------
        context : PythonModelContext
            Holds the local paths of the ``recommender`` and ``metadata`` artifacts.

        Raises
        ------
        ValueError
            If the model was trained on other features than this code builds.
        """
        metadata = json.loads(Path(context.artifacts["metadata"]).read_text(encoding="utf-8"))
        if tuple(metadata.get("features", ())) != FEATURES:
            raise ValueError(
                "the model was trained on other features than this version of linewise builds "
                f"(model: {len(metadata.get('features', ()))} features from linewise "
                f"{metadata.get('package_version')}; code: {len(FEATURES)})"
            )
        self._recommender = _load_recommender(Path(context.artifacts["recommender"]))
        self._metadata = metadata

    @property
    def recommender(self) -> TreatmentRecommender:
        """The fitted recommender inside the model, once loaded (for comparisons on examples)."""
        return self._fitted()

    @property
    def metadata(self) -> dict[str, Any]:
        """The model's metadata (:func:`model_metadata`), once loaded."""
        return dict(self._metadata)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score the latest decision of each patient document under every option.

        Parameters
        ----------
        context : PythonModelContext
            Unused (the artifacts were read by :meth:`load_context`).
        model_input : DataFrame
            A string column ``patient``: one JSON document of :mod:`linewise.features.patient` per row.
        params : dict, optional
            Unused; the model takes no parameters.

        Returns
        -------
        DataFrame
            16 rows per input row, columns :data:`linewise.models.output_table.OUTPUT_COLUMNS`: ``row``
            (position of the input row), the decision's keys, the option, every summary of
            :func:`linewise.models.option_predictions.options_table` (months; a median not reached by
            36 months is NaN, never infinite, and MLflow's scoring server writes NaN as the JSON token
            ``NaN``), ``propensity``, ``support``, ``rank`` (1 = recommended;
            :data:`linewise.models.summaries.UNRANKED`, -1, for an unsupported option, which is never
            ranked), ``shap_top`` and ``contrast_top`` (JSON texts, see
            :func:`linewise.models.output_table.explanation_json`) and ``model_scale`` (what the SHAP
            values add up to).

        Raises
        ------
        ValueError
            If ``patient`` is missing or not text; a :class:`linewise.features.errors.LockValidationError` (a
            ``ValueError``) with the loader's message if a document breaks the patient-file contract;
            a ``ValueError`` if a patient has no decision to score (no progression while alive).
        """
        recommender = self._fitted()
        if not isinstance(model_input, pd.DataFrame) or INPUT_COLUMN not in model_input.columns:
            raise ValueError(f"model_input must be a DataFrame with a column {INPUT_COLUMN!r}")
        frames = [
            score_latest_decision(recommender, _parse(text, f"row {row}"), row=row, source=f"row {row}")
            for row, text in enumerate(model_input[INPUT_COLUMN].tolist())
        ]
        if not frames:
            return empty_output()
        return pd.concat(frames, ignore_index=True)

    def _fitted(self) -> TreatmentRecommender:
        if self._recommender is None:
            raise ValueError("the model's context is not loaded: load it with mlflow.pyfunc.load_model")
        return self._recommender


def score_latest_decision(
    recommender: TreatmentRecommender, document: dict[str, Any], *, row: int = 0, source: str = "row 0"
) -> pd.DataFrame:
    """Score one patient document's latest decision under every option (the model's per-row work).

    Parameters
    ----------
    recommender : TreatmentRecommender
        Fitted, with its explainer.
    document : dict
        A parsed patient document (:mod:`linewise.features.patient`).
    row : int
        Value of the ``row`` column.
    source : str
        Name of the document in error messages.

    Returns
    -------
    DataFrame
        16 rows, columns :data:`linewise.models.output_table.OUTPUT_COLUMNS`.

    Raises
    ------
    LockValidationError
        If the document breaks the patient-file contract (the loader's message).
    ValueError
        If the patient has no decision to score.
    """
    named = f"{source} (patient {document.get('patient_key')})"
    return score_decisions(recommender, document_decision(document, source, named=named), np.array([row]))


def load_recommender_model(uri: str) -> RecommenderModel:
    """Load a logged or registered linewise model through MLflow, after checking its format.

    Parameters
    ----------
    uri : str
        Any MLflow model URI (``models:/linewise@champion``, ``runs:/...``).

    Returns
    -------
    RecommenderModel
        With its context loaded.

    Raises
    ------
    linewise.models.output_table.ModelFormatError
        If the model was written by another layout of linewise (retrain it) or is not a linewise model;
        checked from the model's metadata before any of its code or pickles is loaded.
    mlflow.exceptions.MlflowException, OSError
        If the model cannot be found or read.
    """
    check_model_format(mlflow.models.get_model_info(uri).metadata, uri)
    loaded = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    if not isinstance(loaded, RecommenderModel):
        raise TypeError(f"{uri} is not a linewise recommender (found {type(loaded).__name__})")
    return loaded


def _parse(text: Any, source: str) -> dict[str, Any]:
    """Parse one cell into a document; failures are patient-file violations, without the text."""
    if not isinstance(text, str):
        raise ValueError(f"{source}: {INPUT_COLUMN} must be a JSON text, found {type(text).__name__}")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as err:
        violation = Violation(source, None, None, None, None, "patient-file", f"not valid JSON: {err}")
        raise LockValidationError(source, [violation]) from err
    if not isinstance(document, dict):
        violation = Violation(source, None, None, None, None, "patient-file", "must hold a JSON object")
        raise LockValidationError(source, [violation])
    return document


def _dump_recommender(recommender: TreatmentRecommender, path: Path) -> None:
    """Write the recommender without its explainer (a shallow copy: the caller's object is unchanged)."""
    stored = copy.copy(recommender)
    del stored.explainer_
    joblib.dump(stored, path)


def _load_recommender(path: Path) -> TreatmentRecommender:
    """Read a recommender written by :func:`_dump_recommender` and rebuild its explainer."""
    recommender = joblib.load(path)
    if not isinstance(recommender, TreatmentRecommender):
        raise TypeError(f"expected a TreatmentRecommender in {path.name}, found {type(recommender).__name__}")
    explainer, scale, higher_is_better = make_explainer(recommender.models_["pfs"])
    if (scale, higher_is_better) != (recommender.explanation_scale_, recommender.higher_is_better_):
        raise ValueError(
            f"the rebuilt explainer's scale {scale!r} differs from the fitted one "
            f"{recommender.explanation_scale_!r}"
        )
    recommender.explainer_ = explainer
    return recommender


def log_recommender(
    recommender: TreatmentRecommender,
    metadata: dict[str, Any],
    input_example_document: dict[str, Any],
    *,
    name: str = "recommender",
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log the recommender as one pyfunc model in the active run, and optionally register it.

    Parameters
    ----------
    recommender : TreatmentRecommender
        Fitted.
    metadata : dict
        Lock fields (:func:`model_metadata`).
    input_example_document : dict
        A **synthetic** patient document (``linewise.model_input_example``), never a real patient's;
        it is stored with the model and must be scorable.
    name : str
        The model's name in the run.
    registered_model_name : str, optional
        Register the model under this name (a new version).

    Returns
    -------
    ModelInfo
        MLflow's description of the logged model (``model_uri``, ``registered_model_version``, ...).

    Raises
    ------
    ValueError
        If no run is active, the metadata is wrong, or the example cannot be scored.
    """
    check_is_fitted(recommender, "models_")
    run = mlflow.active_run()
    if run is None:
        raise ValueError("log_recommender logs into the active run: start one with mlflow.start_run()")
    full = model_metadata(recommender, metadata, run.info.run_id)
    score_latest_decision(recommender, input_example_document, source="input example")
    example = pd.DataFrame({INPUT_COLUMN: [json.dumps(input_example_document)]})
    with tempfile.TemporaryDirectory(prefix="linewise-model-") as folder:
        paths = {key: Path(folder) / file for key, file in _ARTIFACTS.items()}
        _dump_recommender(recommender, paths["recommender"])
        paths["metadata"].write_text(json.dumps(full, indent=2), encoding="utf-8")
        code = Path(folder) / _MODEL_CODE_FILE
        code.write_text(_MODEL_CODE, encoding="utf-8")
        info: ModelInfo = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(code),
            artifacts={key: str(path) for key, path in paths.items()},
            signature=model_signature(),
            input_example=example,
            pip_requirements=pip_requirements(),
            metadata={key: full[key] for key in (*METADATA_KEYS, "format_version", "package_version")},
            registered_model_name=registered_model_name,
        )
    return info
