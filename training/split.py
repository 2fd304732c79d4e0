"""Development / test split of decision examples, always keeping a patient's decisions together.

- ``patient``: patients drawn at random;
- ``centre``: whole centres drawn at random (a check of transport to unseen centres);
- ``date``: patients ordered by the calendar month of their metastatic diagnosis, the latest to test
  (a temporal check).

The selection (:mod:`linewise.training.selection`) cross-fits within the development part; the test
part is used once, to assess the registered model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linewise.training.config import SplitConfig


@dataclass(frozen=True)
class Split:
    """Boolean row masks over the examples."""

    development: np.ndarray
    test: np.ndarray

    def counts(self, examples: pd.DataFrame) -> dict[str, int]:
        """Decisions and patients in each part."""
        keys = examples["patient_key"].astype(str)
        out: dict[str, int] = {}
        for part in ("development", "test"):
            mask = getattr(self, part)
            out[f"{part}_decisions"] = int(mask.sum())
            out[f"{part}_patients"] = int(keys[mask].nunique())
        return out


def split_examples(
    examples: pd.DataFrame, patients: pd.DataFrame, config: SplitConfig, rng: np.random.Generator
) -> Split:
    """Split decisions into development and test parts.

    Parameters
    ----------
    examples : DataFrame
        Decision examples with ``patient_key``.
    patients : DataFrame
        The lock's patients table (``patient_key``, ``center_id``, ``metastatic_dx_year``,
        ``metastatic_dx_month``).
    config : SplitConfig
        How to split.
    rng : numpy.random.Generator
        Randomness for the patient and centre draws.

    Returns
    -------
    Split

    Raises
    ------
    ValueError
        If a part would be empty.
    """
    keys = examples["patient_key"].astype(str).to_numpy()
    table = patients.assign(patient_key=patients["patient_key"].astype(str)).set_index("patient_key")
    unique = np.unique(keys)
    if config.by == "centre":
        centre_of = table["center_id"].astype(str)
        centres = np.unique(centre_of.loc[unique].to_numpy())
        part_of_centre = _assign(len(centres), config, rng.permutation(len(centres)))
        part = dict(zip(unique, part_of_centre[np.searchsorted(centres, centre_of.loc[unique])], strict=True))
    else:
        if config.by == "date":
            month = (
                table.loc[unique, "metastatic_dx_year"].astype(int) * 12
                + table.loc[unique, "metastatic_dx_month"].astype(int)
            ).to_numpy()
            order = np.lexsort((unique, month))  # earliest first; ties by pseudonym
        else:
            order = rng.permutation(len(unique))
        part = dict(zip(unique, _assign(len(unique), config, order), strict=True))
    labels = np.fromiter((part[k] for k in keys), dtype=np.int8, count=len(keys))
    split = Split(development=labels == 0, test=labels == 1)
    empty = [name for name in ("development", "test") if not getattr(split, name).any()]
    if empty:
        raise ValueError(f"the {config.by} split leaves no decision in: {', '.join(empty)}")
    return split


def _assign(count: int, config: SplitConfig, order: np.ndarray) -> np.ndarray:
    """Part (0 development, 1 test) of each unit; the last units of ``order`` go to test."""
    test = round(count * config.test_fraction)
    parts = np.zeros(count, dtype=np.int8)
    parts[order[count - test :]] = 1
    return parts
