"""The recommender's output table: every option of a decision scored and explained, one row each.

:func:`score_decisions` is the work shared by the registered MLflow model
(:class:`linewise.training.pyfunc.RecommenderModel`), ``linewise score-lock``
(:mod:`linewise.serving.batch`) and the scoring of one patient (:mod:`linewise.serving.scoring`): 16 rows
per decision with the columns of :data:`OUTPUT_COLUMNS`. The table lives here, beside the recommender,
because both training (which logs the model and its signature) and serving (which reads the model's
rows) use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import load_patient
from linewise.models.candidates import OPTIONS, counterfactual_rows
from linewise.models.explain import Explanation
from linewise.models.option_predictions import OptionPredictions, options_table
from linewise.models.recommender import TreatmentRecommender
from linewise.models.scope import scope_json
from linewise.models.summaries import DIFFERENCES, ENDPOINTS, SUMMARIES

#: Version of the registered model's layout (code, artifacts, module paths) and of this table; a model
#: whose metadata carries another version is refused at loading, with the advice to retrain.
FORMAT_VERSION: Final = 5
#: Contributions listed in ``shap_top`` and ``contrast_top``.
TOP_CONTRIBUTIONS: Final = 5
#: Summary columns of :func:`linewise.models.option_predictions.options_table`, in its order.
SUMMARY_COLUMNS: Final = tuple(
    f"{endpoint}_{summary}{bound}"
    for endpoint in ENDPOINTS
    for summary in (*SUMMARIES, *DIFFERENCES)
    for bound in ("", "_lower", "_upper")
)
_LEADING: Final = (
    ("row", "long"),
    ("patient_key", "string"),
    ("line_number", "long"),
    ("decision_day", "long"),
    ("candidate", "string"),
    ("local_therapy", "boolean"),
    ("option", "string"),
)
_TRAILING: Final = (
    ("propensity", "double"),
    ("support", "boolean"),
    ("probability_best", "double"),
    ("rank", "long"),
    ("shap_top", "string"),
    ("contrast_top", "string"),
    ("sensitivity", "string"),
    ("model_scale", "string"),
    ("scope_warnings", "string"),
)
#: (name, type) of every output column, in order; the types are the names of MLflow's column types
#: (``mlflow.types.DataType``), which the model's signature uses.
OUTPUT_TYPES: Final = (*_LEADING, *((c, "double") for c in SUMMARY_COLUMNS), *_TRAILING)
#: Columns of :func:`score_decisions` (and of the registered model's ``predict``), in order.
OUTPUT_COLUMNS: Final = tuple(name for name, _ in OUTPUT_TYPES)
#: pandas dtype of each column type (an empty table keeps the columns' types).
_DTYPES: Final = {"long": "int64", "string": "object", "boolean": "bool", "double": "float64"}


class ModelFormatError(ValueError):
    """A logged model that this version of linewise does not read (another layout, or not linewise's)."""


class NoDecisionError(ValueError):
    """A valid patient document without a decision to score (no progression recorded while alive)."""


def check_model_format(metadata: Mapping[str, Any] | None, uri: str) -> None:
    """Refuse a model whose metadata does not carry this layout's :data:`FORMAT_VERSION`.

    Call it on the ``metadata`` of the model's ``MLmodel`` file (``mlflow.models.get_model_info``)
    before loading the model: a model of another layout imports modules and unpickles classes under
    names that this package does not have.

    Parameters
    ----------
    metadata : mapping or None
        The model's MLflow metadata.
    uri : str
        The model's URI, named in the message.

    Raises
    ------
    ModelFormatError
        One line: retrain for a linewise model of another format; not a linewise model otherwise.
    """
    found = (metadata or {}).get("format_version")
    if found is None:
        raise ModelFormatError(f"{uri} is not a linewise recommender (its metadata has no format_version)")
    if str(found) != str(FORMAT_VERSION):
        raise ModelFormatError(
            f"{uri} was saved by another layout of linewise (model format {found}; this version reads "
            f"format {FORMAT_VERSION}); retrain it with `linewise train`"
        )


def empty_output() -> pd.DataFrame:
    """Return a table with the columns of :data:`OUTPUT_COLUMNS`, their types, and no row."""
    return pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in OUTPUT_TYPES})


def latest_decision(examples: pd.DataFrame) -> pd.DataFrame:
    """Return the example row of a patient's latest decision (latest day, then highest line).

    Parameters
    ----------
    examples : DataFrame
        One patient's rows of :func:`linewise.features.examples.build_examples`, at least one.

    Returns
    -------
    DataFrame
        One row.
    """
    return examples.sort_values(["decision_day", "line_number"], kind="stable").tail(1)


def document_decision(document: Mapping[str, Any], source: str, *, named: str | None = None) -> pd.DataFrame:
    """Return the example row of a patient document's latest decision.

    Parameters
    ----------
    document : mapping
        A parsed patient document (:mod:`linewise.features.patient`).
    source : str
        Name of the document in the loader's messages.
    named : str, optional
        How the document is named when it has no decision (default ``source``).

    Returns
    -------
    DataFrame
        One row of :func:`linewise.features.examples.build_examples`.

    Raises
    ------
    linewise.features.errors.LockValidationError
        If the document breaks the patient-file contract.
    NoDecisionError
        If the patient has no decision to score.
    """
    examples = build_examples(load_patient(dict(document), source=source))
    if examples.empty:
        raise NoDecisionError(
            f"{named or source} has no decision to score: no progression recorded while alive up to as_of"
        )
    return latest_decision(examples)


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
        Rows of :func:`linewise.features.examples.build_examples` (their keys and :data:`FEATURES`).
    rows : array-like of int
        Value of the ``row`` column for each decision.
    predictions : OptionPredictions, optional
        ``recommender.predict_options`` of these decisions, when the caller already has them.

    Returns
    -------
    DataFrame
        16 rows per decision, in the decisions' order, columns :data:`OUTPUT_COLUMNS`.

    Raises
    ------
    ValueError
        If ``rows`` does not hold one value per decision.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) != len(decisions):
        raise ValueError(f"rows has {len(rows)} values for {len(decisions)} decisions")
    if decisions.empty:
        return empty_output()
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
    out["probability_best"] = table["probability_best"].to_numpy(float)
    out["rank"] = table["rank"].to_numpy(np.int64)
    shap_top: list[str] = []
    contrast_top: list[str] = []
    for i in range(len(features)):
        explanation = recommender.explain(features[i], predictions.decision(i))
        per_option, contrast = explanation_json(explanation, counterfactual_rows(features[i : i + 1]))
        shap_top.extend(per_option)
        contrast_top.extend([contrast] * len(OPTIONS))
    out["shap_top"] = shap_top
    out["contrast_top"] = contrast_top
    sensitivity = [
        sensitivity_json(predictions.first_vs_second, i, recommender.interval, recommender.outcome_sd_)
        for i in range(len(features))
    ]
    out["sensitivity"] = np.repeat(np.array(sensitivity, dtype=object), len(OPTIONS))
    out["model_scale"] = recommender.explanation_scale_
    scope = scope_json(decisions, recommender.max_training_line_)
    out["scope_warnings"] = np.repeat(np.array(scope, dtype=object), len(OPTIONS))
    return out[list(OUTPUT_COLUMNS)]


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
        The decision under every option (:func:`linewise.models.candidates.counterfactual_rows`).

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


def sensitivity_json(contrast: dict[str, np.ndarray], i: int, interval: float, outcome_sd: float) -> str:
    """Return the ``sensitivity`` text of decision ``i``: its first-versus-second contrast and E-values.

    Parameters
    ----------
    contrast : dict
        :attr:`linewise.models.option_predictions.OptionPredictions.first_vs_second`.
    i : int
        The decision.
    interval : float
        Coverage of the contrast's interval.
    outcome_sd : float
        The E-values' scale (months).

    Returns
    -------
    str
        JSON with ``first_option`` and ``second_option`` (labels), ``difference``, ``lower``,
        ``upper`` (months of rwPFS RMST24), ``interval``, ``e_value``, ``e_value_interval`` and
        ``outcome_sd``; the second option and the numbers are null when fewer than two options are
        supported.
    """
    first, second = int(contrast["first"][i]), int(contrast["second"][i])

    def number(key: str) -> float | None:
        value = float(contrast[key][i])
        return value if np.isfinite(value) else None

    return json.dumps(
        {
            "first_option": OPTIONS[first].label if first >= 0 else None,
            "second_option": OPTIONS[second].label if second >= 0 else None,
            "difference": number("difference"),
            "lower": number("lower"),
            "upper": number("upper"),
            "interval": float(interval),
            "e_value": number("e_value"),
            "e_value_interval": number("e_value_interval"),
            "outcome_sd": float(outcome_sd),
        },
        allow_nan=False,
    )
