"""Score every open decision of a data lock: the batch path behind ``linewise score-lock``.

A decision is *open* when its patient progressed shortly before the lock date and no next step is recorded yet
(:mod:`linewise.features.decisions`): the decisions a tumour board still has to take. Each is scored under all
16 options by :func:`linewise.models.output_table.score_decisions`, the same code the registered model runs
for one patient, so a row here equals the row ``linewise score`` gives for that patient's exported history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.models.candidates import OPTIONS
from linewise.models.output_table import OUTPUT_COLUMNS, score_decisions
from linewise.serving.scoring import ScoringModel

#: Columns of :func:`score_lock`'s table, in order: the model's output without its ``row`` counter.
BATCH_COLUMNS: Final = tuple(column for column in OUTPUT_COLUMNS if column != "row")
#: Parquet schema-metadata key holding the model's provenance and the scored lock (JSON).
PROVENANCE_KEY: Final = b"linewise"


def open_decisions(examples: pd.DataFrame) -> pd.DataFrame:
    """Return the open decisions of a lock's examples, ordered by patient key, day and line.

    Parameters
    ----------
    examples : DataFrame
        :func:`linewise.features.examples.build_examples` of a lock.

    Returns
    -------
    DataFrame
        The rows whose ``open_decision`` is true.
    """
    chosen = examples[examples["open_decision"].astype(bool).to_numpy()]
    return chosen.sort_values(["patient_key", "decision_day", "line_number"], kind="stable")


@dataclass(frozen=True)
class LockScores:
    """The scores of a lock's open decisions, with what the lock itself says of them."""

    #: 16 rows per open decision, columns :data:`BATCH_COLUMNS`.
    scores: pd.DataFrame
    #: The scored lock's ``lock_id``, from its manifest as the loader read it.
    lock_id: str
    #: Every decision of the lock (open or not).
    decisions: int

    @property
    def open_decisions(self) -> int:
        """Open decisions scored (one row per option each)."""
        return len(self.scores) // len(OPTIONS)

    def out_of_scope(self) -> dict[str, int]:
        """Return how many open decisions break each scope rule (:mod:`linewise.models.scope`)."""
        counts: dict[str, int] = {}
        for text in self.scores["scope_warnings"].iloc[:: len(OPTIONS)]:
            for warning in json.loads(text):
                counts[warning["rule"]] = counts.get(warning["rule"], 0) + 1
        return counts


def score_lock(model: ScoringModel, lock_path: Path, key: bytes) -> LockScores:
    """Score every open decision of a lock under every option.

    Parameters
    ----------
    model : ScoringModel
        Loaded with :func:`linewise.serving.scoring.load_scoring_model`.
    lock_path : Path
        The lock folder; it is validated first.
    key : bytes
        The site's pseudonym key (the one ``linewise export-patient`` uses).

    Returns
    -------
    LockScores
        ``scores`` has 16 rows per open decision, columns :data:`BATCH_COLUMNS`; ``rank`` 1 is the
        recommendation and -1 marks an option with insufficient evidence (never ranked). No row
        when no decision is open; the caller says so (``decisions`` tells how many there are).

    Raises
    ------
    linewise.features.errors.LockValidationError
        If the lock breaks the contract.
    """
    lock = load_lock(lock_path, key)
    examples = build_examples(lock)
    chosen = open_decisions(examples)
    scored = score_decisions(model.recommender, chosen, np.arange(len(chosen)))
    return LockScores(
        scored[list(BATCH_COLUMNS)].reset_index(drop=True), lock.manifest.lock_id, len(examples)
    )


def write_scores(scores: pd.DataFrame, path: Path, provenance: dict[str, Any]) -> None:
    """Write scores as Parquet with the model's provenance in the file's schema metadata.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_lock`.
    path : Path
        The Parquet file.
    provenance : dict
        JSON-ready; stored under the metadata key ``linewise``.
    """
    table = pa.Table.from_pandas(scores, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True).encode("utf-8")
    pq.write_table(table.replace_schema_metadata(metadata), path)


def read_provenance(path: Path) -> dict[str, Any]:
    """Return the provenance stored by :func:`write_scores` in a Parquet file."""
    metadata = pq.read_schema(path).metadata or {}
    if PROVENANCE_KEY not in metadata:
        raise ValueError(f"{Path(path).name} holds no linewise provenance")
    loaded: dict[str, Any] = json.loads(metadata[PROVENANCE_KEY])
    return loaded
