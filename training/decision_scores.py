"""The recommender's output table: every option of a decision scored and explained, one row each.

:func:`score_decisions` is the work shared by the registered MLflow model
(:class:`training.pyfunc.RecommenderModel`), ``linewise score-lock`` (:mod:`serving.batch`) and the
scoring of one patient (:mod:`serving.scoring`): 16 rows per decision with the columns of
:data:`OUTPUT_COLUMNS`. :func:`score_latest_decision` scores a patient document's latest decision.
"""

from __future__ import annotations

import json
from typing import Any, Final

import numpy as np
import pandas as pd
from mlflow.types import DataType

from features.decisions import KEYS
from features.examples import FEATURES, build_examples
from features.patient import load_patient
from models.candidates import OPTIONS, counterfactual_rows
from models.explain import Explanation
from models.recommender import ENDPOINTS, SUMMARIES, OptionPredictions, TreatmentRecommender, options_table

#: ``rank`` of an option flagged as unsupported (never recommended).
UNSUPPORTED_RANK: Final = -1
#: Contributions listed in ``shap_top`` and ``contrast_top``.
TOP_CONTRIBUTIONS: Final = 5
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
#: (name, MLflow type) of every output column, in order (the model's signature).
OUTPUT_TYPES: Final = (*_LEADING, *((c, DataType.double) for c in SUMMARY_COLUMNS), *_TRAILING)
#: Columns of :func:`score_decisions` (and of :meth:`training.pyfunc.RecommenderModel.predict`), in order.
OUTPUT_COLUMNS: Final = tuple(name for name, _ in OUTPUT_TYPES)
#: pandas dtype of each MLflow column type (an empty table keeps the columns' types).
_DTYPES: Final = {
    DataType.long: "int64",
    DataType.string: "object",
    DataType.boolean: "bool",
    DataType.double: "float64",
}


def empty_output() -> pd.DataFrame:
    """Return a table with the columns of :data:`OUTPUT_COLUMNS`, their types, and no row."""
    return pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in OUTPUT_TYPES})


def latest_decision(examples: pd.DataFrame) -> pd.DataFrame:
    """Return the example row of a patient's latest decision (latest day, then highest line).

    Parameters
    ----------
    examples : DataFrame
        One patient's rows of :func:`features.examples.build_examples`, at least one.

    Returns
    -------
    DataFrame
        One row.
    """
    return examples.sort_values(["decision_day", "line_number"], kind="stable").tail(1)


def score_latest_decision(
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
    return score_decisions(recommender, latest_decision(examples), np.array([row]))


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
