"""The whole recommender as one MLflow pyfunc model: a patient's JSON history in, every option scored out.

:class:`RecommenderModel` wraps a fitted :class:`models.recommender.TreatmentRecommender` with the
feature pipeline of :mod:`features`, so that ``mlflow.pyfunc.load_model("models:/linewise@champion")``
in a fresh process scores a patient history with nothing but the linewise package installed
(``mlflow models serve --env-manager local``). Input: a DataFrame with one string column ``patient``,
each cell one document of :mod:`features.patient`. Output: one row per input row and option (16 per
patient) for the patient's latest decision, with the columns of :data:`OUTPUT_COLUMNS`.

Layout of a logged model (MLflow 3: ``<experiment artifact root>/models/<model id>/artifacts/``)::

    MLmodel                       flavour, signature, metadata (lock id, date, digest, training run)
    recommender_model.py          the model as code (MLflow "models from code"): no pickled wrapper
    artifacts/recommender.joblib  the fitted TreatmentRecommender without its SHAP explainer
    artifacts/metadata.json       :func:`model_metadata`: lock, run, features, options, versions
    input_example.json            one synthetic patient (:func:`synthetic_input_example`)
    serving_input_example.json    the same in the scoring server's ``dataframe_split`` format
    requirements.txt, python_env.yaml, conda.yaml
                                  linewise and its runtime dependencies, pinned as installed; linewise
                                  is on no package index, so serve with ``--env-manager local``

The SHAP explainer is not pickled: a ``shap.TreeExplainer`` holds a converted copy of the trees whose
pickled form is no documented shap format. It is a deterministic function of the rwPFS model, so
:meth:`RecommenderModel.load_context` rebuilds it with :func:`models.explain.make_explainer`.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.metadata
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
from packaging.requirements import Requirement
from sklearn.utils.validation import check_is_fitted

from features.decisions import KEYS
from features.errors import LockValidationError, Violation
from features.examples import FEATURES, build_examples
from features.loader import load_lock
from features.patient import export_patients, load_patient
from models.candidates import OPTIONS, counterfactual_rows
from models.explain import Explanation, make_explainer
from models.recommender import (
    ENDPOINTS,
    MODEL_COLUMNS,
    SUMMARIES,
    OptionPredictions,
    TreatmentRecommender,
    options_table,
)
from simulation.config import SimulationConfig, load_config
from simulation.simulate import simulate_lock

with warnings.catch_warnings():
    # MLflow 3.17 warns while importing mlflow.pyfunc: mlflow/types/responses.py infers a schema from a
    # pydantic model with an `Any` field ("Any type hint is inferred as AnyType ..."). Only that warning.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    import mlflow.pyfunc
    from mlflow.pyfunc import PythonModel, PythonModelContext

#: Version of this model's layout and output; bumped when either changes.
FORMAT_VERSION: Final = 1
#: The one input column: a patient JSON document per row.
INPUT_COLUMN: Final = "patient"
#: ``rank`` of an option flagged as unsupported (never recommended).
UNSUPPORTED_RANK: Final = -1
#: Contributions listed in ``shap_top`` and ``contrast_top``.
TOP_CONTRIBUTIONS: Final = 5
#: Keys of the ``metadata`` argument of :func:`log_recommender` (``training_run_id`` is optional).
METADATA_KEYS: Final = ("lock_id", "lock_date", "lock_digest", "training_run_id")
#: Summary columns of :func:`models.recommender.options_table`, in its order.
SUMMARY_COLUMNS: Final = tuple(
    f"{endpoint}_{summary}{bound}"
    for endpoint in ENDPOINTS
    for summary in (*SUMMARIES, *(f"{s}_vs_tbp" for s in SUMMARIES if s.startswith("rmst")))
    for bound in ("", "_lower", "_upper")
)
_LEADING: Final = (
    ("row", DataType.long),
    ("patient_key", DataType.string),
    ("line_number", DataType.long),
    ("decision_day", DataType.long),
    ("candidate", DataType.string),
    ("local_therapy", DataType.boolean),
    ("option", DataType.string),
)
_TRAILING: Final = (
    ("propensity", DataType.double),
    ("support", DataType.boolean),
    ("rank", DataType.long),
    ("shap_top", DataType.string),
    ("contrast_top", DataType.string),
    ("model_scale", DataType.string),
)
_OUTPUT_TYPES: Final = (*_LEADING, *((c, DataType.double) for c in SUMMARY_COLUMNS), *_TRAILING)
#: Columns of :meth:`RecommenderModel.predict`, in order.
OUTPUT_COLUMNS: Final = tuple(name for name, _ in _OUTPUT_TYPES)
_ARTIFACTS: Final = {"recommender": "recommender.joblib", "metadata": "metadata.json"}
_MODEL_CODE_FILE: Final = "recommender_model.py"
# MLflow's "models from code": the model is this script, not a pickled wrapper
_MODEL_CODE: Final = '''"""linewise's recommender as an MLflow model from code (see training.pyfunc)."""

from mlflow.models import set_model

from training.pyfunc import RecommenderModel

set_model(RecommenderModel())
'''


def model_signature() -> ModelSignature:
    """Return the signature: a string column ``patient`` in, the columns of :data:`OUTPUT_COLUMNS` out."""
    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string, INPUT_COLUMN)]),
        outputs=Schema([ColSpec(kind, name) for name, kind in _OUTPUT_TYPES]),
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
            A string column ``patient``: one JSON document of :mod:`features.patient` per row.
        params : dict, optional
            Unused; the model takes no parameters.

        Returns
        -------
        DataFrame
            16 rows per input row, columns :data:`OUTPUT_COLUMNS`: ``row`` (position of the input
            row), the decision's keys, the option, every summary of
            :func:`models.recommender.options_table` (months; a median not reached by 36 months is
            NaN, never infinite, and MLflow's scoring server writes NaN as the JSON token ``NaN``),
            ``propensity``, ``support``, ``rank`` (1 = recommended; ``-1`` for an unsupported option,
            which is never ranked), ``shap_top`` and ``contrast_top`` (JSON texts, see
            :func:`explanation_json`) and ``model_scale`` (what the SHAP values add up to).

        Raises
        ------
        ValueError
            If ``patient`` is missing or not text; a :class:`features.errors.LockValidationError` (a
            ``ValueError``) with the loader's message if a document breaks the patient-file contract;
            a ``ValueError`` if a patient has no decision to score (no progression while alive).
        """
        recommender = self._fitted()
        if not isinstance(model_input, pd.DataFrame) or INPUT_COLUMN not in model_input.columns:
            raise ValueError(f"model_input must be a DataFrame with a column {INPUT_COLUMN!r}")
        frames = [
            score_document(recommender, _parse(text, f"row {row}"), row=row, source=f"row {row}")
            for row, text in enumerate(model_input[INPUT_COLUMN].tolist())
        ]
        if not frames:
            return pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in _OUTPUT_TYPES})
        return pd.concat(frames, ignore_index=True)

    def _fitted(self) -> TreatmentRecommender:
        if self._recommender is None:
            raise ValueError("the model's context is not loaded: load it with mlflow.pyfunc.load_model")
        return self._recommender


_DTYPES: Final = {
    DataType.long: "int64",
    DataType.string: "object",
    DataType.boolean: "bool",
    DataType.double: "float64",
}


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


def score_document(
    recommender: TreatmentRecommender, document: dict[str, Any], *, row: int = 0, source: str = "row 0"
) -> pd.DataFrame:
    """Score one patient document's latest decision under every option (the model's per-row work).

    Parameters
    ----------
    recommender : TreatmentRecommender
        Fitted, with its explainer.
    document : dict
        A parsed patient document (:mod:`features.patient`).
    row : int
        Value of the ``row`` column.
    source : str
        Name of the document in error messages.

    Returns
    -------
    DataFrame
        16 rows, columns :data:`OUTPUT_COLUMNS`.

    Raises
    ------
    LockValidationError
        If the document breaks the patient-file contract (the loader's message).
    ValueError
        If the patient has no decision to score.
    """
    examples = build_examples(load_patient(document, source=source))
    if examples.empty:
        raise ValueError(
            f"{source} (patient {document.get('patient_key')}) has no decision to score: "
            "no progression recorded while alive up to as_of"
        )
    latest = examples.sort_values(["decision_day", "line_number"], kind="stable").tail(1)
    return score_decisions(recommender, latest, np.array([row]))


def score_decisions(
    recommender: TreatmentRecommender,
    decisions: pd.DataFrame,
    rows: Any,
    predictions: OptionPredictions | None = None,
) -> pd.DataFrame:
    """Score decisions under every option, with explanations: the work of both the model and the batch.

    Parameters
    ----------
    recommender : TreatmentRecommender
        Fitted, with its explainer.
    decisions : DataFrame
        Rows of :func:`features.examples.build_examples` (their keys and :data:`FEATURES`).
    rows : array-like of int
        Value of the ``row`` column for each decision.
    predictions : OptionPredictions, optional
        ``recommender.predict_options`` of these decisions, when the caller already has them.

    Returns
    -------
    DataFrame
        16 rows per decision, in the decisions' order, columns :data:`OUTPUT_COLUMNS`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) != len(decisions):
        raise ValueError(f"rows has {len(rows)} values for {len(decisions)} decisions")
    if decisions.empty:
        return pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in _OUTPUT_TYPES})
    features = decisions[list(FEATURES)].to_numpy(float)
    predictions = predictions or recommender.predict_options(features)
    table = options_table(decisions[list(KEYS)].reset_index(drop=True), predictions)
    out = pd.DataFrame({"row": np.repeat(rows, len(OPTIONS))})
    out["patient_key"] = table["patient_key"].astype(str).astype(object)
    out["line_number"] = table["line_number"].astype("int64")
    out["decision_day"] = table["decision_day"].astype("int64")
    out["candidate"] = table["candidate"].astype(object)
    out["local_therapy"] = table["local_therapy"].astype(bool)
    out["option"] = table["option"].astype(object)
    for column in SUMMARY_COLUMNS:
        values = table[column].to_numpy(float)
        # medians not reached within the 36-month grid are infinite: NaN serves as JSON
        out[column] = np.where(np.isinf(values), np.nan, values)
    out["propensity"] = table["propensity"].to_numpy(float)
    out["support"] = table["support"].to_numpy(bool)
    out["rank"] = table["rank"].fillna(UNSUPPORTED_RANK).astype("int64").to_numpy()
    shap_top: list[str] = []
    contrast_top: list[str] = []
    for i in range(len(features)):
        explanation = recommender.explain(features[i], _one(predictions, i))
        per_option, contrast = explanation_json(explanation, counterfactual_rows(features[i : i + 1]))
        shap_top.extend(per_option)
        contrast_top.extend([contrast] * len(OPTIONS))
    out["shap_top"] = shap_top
    out["contrast_top"] = contrast_top
    out["model_scale"] = recommender.explanation_scale_
    return out[list(OUTPUT_COLUMNS)]


def _one(predictions: OptionPredictions, i: int) -> OptionPredictions:
    """Return the predictions of decision ``i`` alone (what :meth:`TreatmentRecommender.explain` reads)."""
    pick = slice(i, i + 1)
    return OptionPredictions(
        grid=predictions.grid,
        curves={key: value[pick] for key, value in predictions.curves.items()},
        curve_lower={key: value[pick] for key, value in predictions.curve_lower.items()},
        curve_upper={key: value[pick] for key, value in predictions.curve_upper.items()},
        summary={key: value[pick] for key, value in predictions.summary.items()},
        lower={key: value[pick] for key, value in predictions.lower.items()},
        upper={key: value[pick] for key, value in predictions.upper.items()},
        propensity=predictions.propensity[pick],
        support=predictions.support[pick],
    )


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _top(values: np.ndarray, names: tuple[str, ...], rows: list[np.ndarray]) -> list[dict[str, Any]]:
    order = np.argsort(-np.abs(values), kind="stable")[:TOP_CONTRIBUTIONS]
    keys = ("value", "switch_value")
    return [
        {
            "feature": names[j],
            **{key: _number(r[j]) for key, r in zip(keys, rows, strict=False)},
            "shap": float(values[j]),
        }
        for j in order
    ]


def explanation_json(explanation: Explanation, rows: np.ndarray) -> tuple[list[str], str]:
    """Lay an explanation out as JSON texts: the largest contributions per option and of the contrast.

    Parameters
    ----------
    explanation : Explanation
        Of one decision's 16 options (:meth:`TreatmentRecommender.explain`).
    rows : ndarray of shape (16, p)
        The decision under every option (:func:`models.candidates.counterfactual_rows`).

    Returns
    -------
    shap_top : list of str
        Per option: ``{"scale", "higher_is_better", "base_value", "output", "top"}``; ``top`` lists
        the :data:`TOP_CONTRIBUTIONS` largest ``|SHAP|`` as ``{"feature", "value", "shap"}``, largest
        first, ``value`` null when the feature is missing.
    contrast_top : str
        TBP versus the best switch: ``{"scale", "higher_is_better", "tbp_option", "switch_option",
        "difference", "top"}``; ``top`` as above with ``value`` on the TBP side and ``switch_value``
        on the switch side (they differ only for the treatment columns).
    """
    names = explanation.feature_names
    head = {"scale": explanation.scale, "higher_is_better": explanation.higher_is_better}
    shap_top = [
        json.dumps(
            head
            | {
                "base_value": explanation.base_value,
                "output": float(explanation.output[i]),
                "top": _top(explanation.values[i], names, [rows[i]]),
            },
            allow_nan=False,
        )
        for i in range(len(OPTIONS))
    ]
    tbp, switch = explanation.tbp_option, explanation.switch_option
    contrast = head | {
        "tbp_option": OPTIONS[tbp].label,
        "switch_option": OPTIONS[switch].label,
        "difference": explanation.contrast_output,
        "top": _top(explanation.contrast_values, names, [rows[tbp], rows[switch]]),
    }
    return shap_top, json.dumps(contrast, allow_nan=False)


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


def model_metadata(
    recommender: TreatmentRecommender, metadata: dict[str, Any], training_run_id: str
) -> dict[str, Any]:
    """Return the metadata stored with the model: the caller's lock fields and what the model knows.

    Parameters
    ----------
    recommender : TreatmentRecommender
        Fitted.
    metadata : dict
        ``lock_id``, ``lock_date`` (ISO text or date) and ``lock_digest``; optionally
        ``training_run_id`` (default: the argument below). No other key is accepted: nothing about
        patients belongs here.
    training_run_id : str
        The run the model is logged in.

    Returns
    -------
    dict
        JSON-ready: ``format_version``, the lock fields, ``training_run_id``, ``package_version``,
        the recommender's settings, ``explanation_scale``, ``features``, ``options`` (labels, output
        order) and ``output_columns``.

    Raises
    ------
    ValueError
        If a key is missing or unknown, or a value is not text.
    """
    unknown = sorted(set(metadata) - set(METADATA_KEYS))
    missing = [key for key in METADATA_KEYS[:3] if key not in metadata]
    if unknown or missing:
        raise ValueError(
            f"metadata takes the keys {list(METADATA_KEYS)} (training_run_id optional), "
            f"found unknown {unknown} and missing {missing}"
        )
    fields = {"training_run_id": training_run_id} | dict(metadata)
    if isinstance(fields["lock_date"], dt.date):
        fields["lock_date"] = fields["lock_date"].isoformat()
    wrong = sorted(key for key, value in fields.items() if not isinstance(value, str) or not value)
    if wrong:
        raise ValueError(f"metadata values must be non-empty text, found otherwise for {wrong}")
    return {
        "format_version": FORMAT_VERSION,
        **{key: fields[key] for key in METADATA_KEYS},
        "package_version": importlib.metadata.version("linewise"),
        "family": recommender.family,
        "weighting": recommender.weighting,
        "n_bootstrap": recommender.n_bootstrap,
        "interval": recommender.interval,
        "min_support": recommender.min_support,
        "n_training_decisions": int(recommender.n_training_decisions_),
        "explanation_scale": recommender.explanation_scale_,
        "higher_is_better": bool(recommender.higher_is_better_),
        "features": list(FEATURES),
        "model_columns": list(MODEL_COLUMNS),
        "options": [option.label for option in OPTIONS],
        "output_columns": list(OUTPUT_COLUMNS),
    }


def _pip_requirements() -> list[str]:
    """Linewise and its runtime dependencies, pinned at the installed versions."""
    version = importlib.metadata.version
    requirements = [Requirement(text) for text in importlib.metadata.requires("linewise") or []]
    names = sorted({r.name for r in requirements if r.marker is None})
    return [f"linewise=={version('linewise')}", *(f"{name}=={version(name)}" for name in names)]


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
        A **synthetic** patient document (:func:`synthetic_input_example`), never a real patient's;
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
    score_document(recommender, input_example_document, source="input example")
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
            pip_requirements=_pip_requirements(),
            metadata={key: full[key] for key in (*METADATA_KEYS, "format_version", "package_version")},
            registered_model_name=registered_model_name,
        )
    return info


def synthetic_input_example(
    seed: int = 0, *, patients: int = 40, config: SimulationConfig | None = None
) -> dict[str, Any]:
    """Return a simulated patient's document to store as the model's input example.

    A lock of ``patients`` simulated patients is written to a temporary folder and exported with a
    pseudonym key drawn from ``seed`` (not the site's key); the patient chosen is the first, by key,
    whose latest decision is open, else the first with a decision. The same seed gives the same
    document.

    Parameters
    ----------
    seed : int
        Seed of the simulation and of the pseudonym key.
    patients : int
        Size of the simulated lock.
    config : SimulationConfig, optional
        Simulator configuration (default: the bundled one).

    Returns
    -------
    dict
        A patient document (:mod:`features.patient`).

    Raises
    ------
    ValueError
        If no simulated patient has a decision (too few patients).
    """
    key = np.random.default_rng(seed).bytes(32)
    with tempfile.TemporaryDirectory(prefix="linewise-example-") as folder:
        lock = Path(folder) / "lock"
        simulate_lock(
            patients, seed, lock, Path(folder) / "truth", config or load_config(), lock_id=f"example-{seed}"
        )
        examples = build_examples(load_lock(lock, key))
        if examples.empty:
            raise ValueError(f"none of {patients} simulated patients has a decision; simulate more")
        latest = examples.sort_values(["patient_key", "decision_day", "line_number"], kind="stable")
        latest = latest.groupby("patient_key", sort=True).tail(1)
        open_first = latest.sort_values(["open_decision", "patient_key"], ascending=[False, True])
        chosen = str(open_first["patient_key"].iloc[0])
        return export_patients(lock, key, [chosen])[chosen]
