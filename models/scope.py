"""The scope stated on every score: whether a decision is one the model was built for and learned from.

A decision is outside the model's scope, and its score carries a warning, when

- ``first-line``: the patient's first line was not endocrine therapy plus a CDK4/6 inhibitor
  (:func:`linewise.features.regimens.is_endocrine_cdk46i`), the population linewise is built for;
- ``line-beyond-training``: it follows a line beyond every line at which the model's training lock
  had a decision (``TreatmentRecommender.max_training_line_``).

The scores are still given: they are extrapolations, and the warning says so.
"""

from __future__ import annotations

import json
from typing import Final

import numpy as np
import pandas as pd

#: Rule id -> what the warning says (``{line}`` is the decision's line, ``{trained}`` the highest trained).
SCOPE_RULES: Final = {
    "first-line": (
        "the patient's first line was not endocrine therapy plus a CDK4/6 inhibitor: outside the "
        "population linewise is built for (progression after first-line ET + CDK4/6i); the scores "
        "are extrapolations"
    ),
    "line-beyond-training": (
        "this decision follows line {line}, and the model learned from decisions up to line {trained} "
        "only: the scores are extrapolations"
    ),
}


def scope_warnings(decisions: pd.DataFrame, max_training_line: int | None) -> list[list[dict[str, str]]]:
    """Return the scope warnings of each decision: a list of ``{"rule", "message"}``, empty when in scope.

    Parameters
    ----------
    decisions : DataFrame
        Rows of :func:`linewise.features.examples.build_examples`: ``line_number`` and, when it is
        there, ``first_line_et_cdk46i`` (without it the first line is not judged).
    max_training_line : int or None
        The highest line at which the model learned from a decision; None when the model does not
        say (no ``line-beyond-training`` warning then).

    Returns
    -------
    list of list of dict
        One list per decision, in order, rules in :data:`SCOPE_RULES` order.
    """
    lines = decisions["line_number"].to_numpy(dtype=np.int64)
    if "first_line_et_cdk46i" in decisions.columns:
        outside = ~decisions["first_line_et_cdk46i"].to_numpy(dtype=bool)
    else:
        outside = np.zeros(len(decisions), dtype=bool)
    beyond = lines > max_training_line if max_training_line is not None else np.zeros(len(lines), dtype=bool)
    warnings: list[list[dict[str, str]]] = []
    for line, first, later in zip(lines, outside, beyond, strict=True):
        found = []
        if first:
            found.append({"rule": "first-line", "message": SCOPE_RULES["first-line"]})
        if later:
            message = SCOPE_RULES["line-beyond-training"].format(line=int(line), trained=max_training_line)
            found.append({"rule": "line-beyond-training", "message": message})
        warnings.append(found)
    return warnings


def scope_json(decisions: pd.DataFrame, max_training_line: int | None) -> list[str]:
    """Return :func:`scope_warnings` of each decision as JSON text (the ``scope_warnings`` output column)."""
    return [json.dumps(found) for found in scope_warnings(decisions, max_training_line)]
