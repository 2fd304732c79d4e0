"""The score document of one patient: the JSON that ``linewise score --json`` prints and the API returns.

A registered model's rows (one per option of the patient's latest decision,
:data:`linewise.models.output_table.OUTPUT_COLUMNS`) are regrouped into one document: ``candidates``
in rank order (supported options first; an unsupported option has ``rank`` null), each with rwPFS and
OS summaries and their intervals, the difference from TBP, the support flag and the top SHAP
contributions; the TBP versus best switch explanation; the decision's scope (whether it lies in the
population and the lines the model learned from, :mod:`linewise.models.scope`); and the model's
provenance (registered version, lock id and date).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import pandas as pd

from linewise.models.summaries import DIFFERENCES, SUMMARIES, UNRANKED

DEFAULT_MODEL_URI: Final = "models:/linewise@champion"
ENDPOINT_NAMES: Final = {"pfs": "rwpfs", "os": "os"}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def candidates_document(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Regroup one patient's 16 model rows into the ``candidates`` list, ranked first, then unsupported.

    Parameters
    ----------
    scores : DataFrame
        The model's output rows of one patient.

    Returns
    -------
    list of dict
        One entry per option; numbers not reached by 36 months (medians) are null.
    """
    ordered = scores.assign(
        _order=scores["rank"].where(scores["rank"] != UNRANKED, len(scores) + 1)
    ).sort_values(["_order", "option"], kind="stable")
    out = []
    for row in ordered.to_dict("records"):
        entry: dict[str, Any] = {
            "option": row["option"],
            "candidate": row["candidate"],
            "local_therapy": bool(row["local_therapy"]),
            "rank": None if int(row["rank"]) == UNRANKED else int(row["rank"]),
            "support": bool(row["support"]),
            "propensity": _number(row["propensity"]),
            "probability_best": _number(row["probability_best"]),
        }
        for endpoint, name in ENDPOINT_NAMES.items():
            entry[name] = {
                f"{summary}{bound}": _number(row[f"{endpoint}_{summary}{bound}"])
                for summary in (*SUMMARIES, *DIFFERENCES)
                for bound in ("", "_lower", "_upper")
            }
        entry["explanation"] = json.loads(row["shap_top"])
        out.append(entry)
    return out


def score_document(scores: pd.DataFrame, provenance: dict[str, Any]) -> dict[str, Any]:
    """Build the ``linewise score --json`` document of one patient.

    Parameters
    ----------
    scores : DataFrame
        The model's 16 rows for the patient.
    provenance : dict
        ``model_uri``, ``model_version``, ``lock_id``, ``lock_date``, ``training_run_id``.

    Returns
    -------
    dict
    """
    first = scores.iloc[0]
    warnings = json.loads(first["scope_warnings"])
    return {
        "patient_key": str(first["patient_key"]),
        "line_number": int(first["line_number"]),
        "decision_day": int(first["decision_day"]),
        "model": provenance,
        "scope": {"in_scope": not warnings, "warnings": warnings},
        "explanation_scale": str(first["model_scale"]),
        "candidates": candidates_document(scores),
        "tbp_versus_best_switch": json.loads(first["contrast_top"]),
        "sensitivity": json.loads(first["sensitivity"]),
    }
