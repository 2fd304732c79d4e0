"""What a logged model says about itself: the metadata stored with it, and the packages it needs.

:func:`model_metadata` is the JSON written as the model's ``metadata.json`` artifact (and, in part, its
MLflow metadata): the lock it was trained on (id, date, digest: never a row), the training run, the
package version, the recommender's settings, the feature and option lists and the output columns,
with :data:`linewise.models.output_table.FORMAT_VERSION`. Nothing about patients belongs here.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
from typing import Any, Final

from packaging.requirements import Requirement

from linewise.features.examples import FEATURES
from linewise.models.candidates import OPTIONS
from linewise.models.output_table import FORMAT_VERSION, OUTPUT_COLUMNS
from linewise.models.recommender import MODEL_COLUMNS, TreatmentRecommender

#: Text keys of the ``metadata`` argument of :func:`linewise.training.pyfunc.log_recommender`
#: (``training_run_id`` is optional).
METADATA_KEYS: Final = ("lock_id", "lock_date", "lock_digest", "training_run_id")
#: The optional ``policy_value`` of the metadata: the estimated rwPFS RMST24 of the model's policy.
POLICY_VALUE_KEYS: Final = ("estimate", "lower", "upper", "method")


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
        ``training_run_id`` (default: the argument below) and ``policy_value``, a dict of
        :data:`POLICY_VALUE_KEYS` (months, and the text that says how it was estimated). No other key is
        accepted: nothing about patients belongs here.
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
    unknown = sorted(set(metadata) - {*METADATA_KEYS, "policy_value"})
    missing = [key for key in METADATA_KEYS[:3] if key not in metadata]
    if unknown or missing:
        raise ValueError(
            f"metadata takes the keys {[*METADATA_KEYS, 'policy_value']} (training_run_id and "
            f"policy_value optional), found unknown {unknown} and missing {missing}"
        )
    value = _policy_value(metadata.get("policy_value"))
    fields = {"training_run_id": training_run_id} | {k: v for k, v in metadata.items() if k != "policy_value"}
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
        "learner": recommender.learner,
        "weighting": recommender.weighting,
        "n_bootstrap": recommender.n_bootstrap,
        "interval": recommender.interval,
        "min_support": recommender.min_support,
        "n_training_decisions": int(recommender.n_training_decisions_),
        "max_training_line": int(recommender.max_training_line_),
        "explanation_scale": recommender.explanation_scale_,
        "higher_is_better": bool(recommender.higher_is_better_),
        "features": list(FEATURES),
        "model_columns": list(MODEL_COLUMNS),
        "options": [option.label for option in OPTIONS],
        "output_columns": list(OUTPUT_COLUMNS),
        "policy_value": value,
    }


def _policy_value(value: Any) -> dict[str, Any] | None:
    """Check the optional policy value: finite months ``lower <= estimate <= upper`` and a method text."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(POLICY_VALUE_KEYS):
        raise ValueError(f"policy_value must be a dict with exactly the keys {list(POLICY_VALUE_KEYS)}")
    numbers = [value[key] for key in POLICY_VALUE_KEYS[:3]]
    if not all(isinstance(x, int | float) and math.isfinite(x) for x in numbers) or not (
        numbers[1] <= numbers[0] <= numbers[2]
    ):
        raise ValueError("policy_value needs finite numbers with lower <= estimate <= upper")
    if not isinstance(value["method"], str) or not value["method"]:
        raise ValueError("policy_value's method must be non-empty text")
    return {key: (float(value[key]) if key != "method" else value[key]) for key in POLICY_VALUE_KEYS}


def pip_requirements() -> list[str]:
    """Linewise and its runtime dependencies, pinned at the installed versions."""
    version = importlib.metadata.version
    requirements = [Requirement(text) for text in importlib.metadata.requires("linewise") or []]
    names = sorted({r.name for r in requirements if r.marker is None})
    return [f"linewise=={version('linewise')}", *(f"{name}=={version(name)}" for name in names)]
