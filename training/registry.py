"""The champion rule: a new version becomes ``champion`` only when it beats the current one.

The selection metric is the doubly robust estimate of the mean rwPFS RMST to 24 months if the test
patients' decisions followed the model's recommendations (``dr_rwpfs_rmst24_model``,
:mod:`linewise.training.held_out_value`), evaluated for both models on the **same** test decisions of
the new lock with the **same** pseudo-outcomes, from nuisance models fitted on the new lock's
development part. It needs no ground truth and measures what the recommender is for. A new version
with a higher value takes the ``champion`` alias; otherwise it gets ``challenger``. The first version
of a registered model is champion, and so is a new version when the champion was saved by another
layout of linewise: this installation cannot load it, so it cannot serve
(:func:`linewise.models.output_table.check_model_format`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

SELECTION_METRIC: Final = "dr_rwpfs_rmst24_model"
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing a new version with the champion on the same test decisions."""

    alias: str
    new_value: float
    champion_value: float | None
    champion_version: str | None
    reason: str

    def as_dict(self) -> dict[str, str | float | None]:
        """Plain values, for logging."""
        return {
            "selection_metric": SELECTION_METRIC,
            "alias": self.alias,
            "new_value": self.new_value,
            "champion_value": self.champion_value,
            "champion_version": self.champion_version,
            "reason": self.reason,
        }


def decide_alias(
    new_value: float,
    champion_value: float | None,
    champion_version: str | None,
    failure: str | None = None,
    *,
    unservable: str | None = None,
) -> Comparison:
    """Apply the champion rule.

    Parameters
    ----------
    new_value : float
        The new version's selection metric.
    champion_value : float or None
        The champion's value on the same decisions; None when there is no champion or it could not
        be evaluated.
    champion_version : str or None
        The champion's version, when there is one.
    failure : str, optional
        Why the champion could not be evaluated (the new version then stays challenger).
    unservable : str, optional
        Why this installation cannot load the champion at all (another model format): the new version
        then replaces it.

    Returns
    -------
    Comparison
    """
    if champion_version is None:
        return Comparison(CHAMPION, new_value, None, None, "no champion yet: the first version is champion")
    if unservable is not None:
        return Comparison(
            CHAMPION, new_value, None, champion_version, f"the champion cannot be served: {unservable}"
        )
    if failure is not None or champion_value is None or not math.isfinite(new_value):
        why = failure or "the selection metric could not be computed"
        return Comparison(CHALLENGER, new_value, champion_value, champion_version, f"not compared: {why}")
    if new_value > champion_value:
        return Comparison(
            CHAMPION,
            new_value,
            champion_value,
            champion_version,
            f"{SELECTION_METRIC} {new_value:.3f} > champion's {champion_value:.3f} on the same decisions",
        )
    return Comparison(
        CHALLENGER,
        new_value,
        champion_value,
        champion_version,
        f"{SELECTION_METRIC} {new_value:.3f} <= champion's {champion_value:.3f} on the same decisions",
    )
