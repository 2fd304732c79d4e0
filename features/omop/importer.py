"""Import an OMOP CDM 5.4 database as a data lock: read, map, write beside the target, validate, move.

The lock is written to a hidden folder next to ``out`` and checked by :func:`load_lock` like any other
lock. Only when the CDM maps without a problem and the lock keeps every rule of the contract is the
folder renamed to ``out``; otherwise it is removed and every problem is raised at once, each naming the
OMOP table and row that caused it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.errors import LockValidationError, Violation
from linewise.features.loader import load_lock
from linewise.features.omop.lines import RegimenRule
from linewise.features.omop.mapping import OmopMapping, load_mapping
from linewise.features.omop.problems import ImportProblem, OmopImportError
from linewise.features.omop.source import OmopReader, OmopSource, OmopSourceError
from linewise.features.omop.tables import LOCK_COLUMNS, ImportedTables, build_tables
from linewise.features.schema import SCHEMA_VERSION

_DATE_COLUMNS: Final = frozenset(
    {
        "metastatic_dx_date",
        "last_contact_date",
        "death_date",
        "date_detected",
        "start_date",
        "end_date",
        "date",
    }
)
_INTEGER_COLUMNS: Final = frozenset({"age_at_metastatic_dx", "line_number", "ecog", "grade"})


@dataclass(frozen=True)
class OmopImportSummary:
    """Counts of an import; no value of any row.

    Attributes
    ----------
    lock_id : str
        The lock written.
    persons : int
        Persons in the CDM.
    patients : int
        Persons with a primary breast cancer and a metastasis: the lock's patients.
    rows : dict of str to int
        Rows of each lock table.
    lines_from_episodes : int
        Lines read from Treatment Regimen episodes.
    lines_derived : int
        Lines derived from drug exposures by the regimen rule.
    """

    lock_id: str
    persons: int
    patients: int
    rows: dict[str, int]
    lines_from_episodes: int
    lines_derived: int

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict."""
        return {
            "lock_id": self.lock_id,
            "persons": self.persons,
            "patients": self.patients,
            "rows": dict(self.rows),
            "lines_from_episodes": self.lines_from_episodes,
            "lines_derived": self.lines_derived,
        }


def import_omop(
    source: OmopSource,
    out: Path | str,
    *,
    lock_id: str | None = None,
    lock_date: dt.date | None = None,
    mapping: OmopMapping | None = None,
    rule: RegimenRule | None = None,
    today: dt.date | None = None,
) -> OmopImportSummary:
    """Read the CDM at ``source`` and write it as the data lock ``out``.

    Parameters
    ----------
    source : OmopSource
        The database and its schemas.
    out : Path or str
        The lock folder to create; it must not exist.
    lock_id : str, optional
        The manifest's lock id (default: ``omop-`` and the lock date).
    lock_date : date, optional
        The lock's cut-off (default: ``cdm_source.source_release_date``).
    mapping : OmopMapping, optional
        Concepts and rules (default: the bundled ``mapping.yaml``).
    rule : RegimenRule, optional
        The regimen rule for persons without Treatment Regimen episodes.
    today : date, optional
        The day of the import, for the lock's ``lock-date`` rule (default: the machine's date).

    Returns
    -------
    OmopImportSummary

    Raises
    ------
    OmopSourceError
        When the database cannot be read, or a table or column is missing.
    OmopImportError
        Listing every row that cannot be mapped, or that breaks the contract; nothing is written.
    FileExistsError
        When ``out`` exists.
    """
    target = Path(out)
    if target.exists():
        raise FileExistsError(f"{target.name}: the lock folder to create already exists")
    mapping = mapping or load_mapping()
    with OmopReader(source) as reader:
        imported = build_tables(reader, mapping, rule or RegimenRule())
        released = _release_date(reader)
    cut_off = lock_date or released
    if cut_off is None:
        raise OmopSourceError(
            f"{source.shown_url}: cdm_source has no source_release_date; give the lock date (--lock-date)"
        )
    name = lock_id or f"omop-{cut_off.isoformat()}"
    if imported.problems:
        raise OmopImportError(source.shown_url, imported.problems)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_lock(staging, imported, name, cut_off, source)
        try:
            load_lock(staging, secrets.token_bytes(32), today=today)
        except LockValidationError as err:
            raise OmopImportError(source.shown_url, _problems_of(err, imported)) from None
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    lines = imported.tables["lines"]
    return OmopImportSummary(
        lock_id=name,
        persons=imported.persons,
        patients=imported.cohort,
        rows={table: len(frame) for table, frame in imported.tables.items()},
        lines_from_episodes=int((lines["origin_table"] == "episode").sum()),
        lines_derived=int((lines["origin_table"] == "drug_exposure").sum()),
    )


def _release_date(reader: OmopReader) -> dt.date | None:
    if not reader.has_table("cdm_source"):
        return None
    released = pd.to_datetime(reader.read("cdm_source")["source_release_date"], errors="coerce").dropna()
    return None if released.empty else released.max().date()


def _write_lock(
    folder: Path, imported: ImportedTables, lock_id: str, lock_date: dt.date, source: OmopSource
) -> None:
    manifest = {
        "lock_id": lock_id,
        "lock_date": lock_date.isoformat(),
        "schema_version": SCHEMA_VERSION,
        "source": f"OMOP CDM 5.4 import ({_dialect(source)})",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    for table, columns in LOCK_COLUMNS.items():
        frame = imported.tables[table]
        text = pd.DataFrame({column: _cells(frame[column], column) for column in columns})
        text.to_csv(folder / f"{table}.csv", index=False)


def _dialect(source: OmopSource) -> str:
    head = source.url.split(":", 1)[0]
    return head.split("+", 1)[0]


def _cells(values: pd.Series, column: str) -> pd.Series:
    """Write a column as the contract's text: ISO dates, true/false, whole numbers without decimals."""
    if column in _DATE_COLUMNS:
        return pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")
    if values.dtype == bool:
        return values.map({True: "true", False: "false"})
    whole = column in _INTEGER_COLUMNS
    if pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values).astype("Float64")
        integral = numbers.round() == numbers
        text = pd.Series(
            np.where(
                integral.fillna(False), numbers.round().astype("Int64").astype(str), numbers.astype(str)
            ),
            index=values.index,
        )
        return text.where(numbers.notna(), "")
    return values.map(lambda value: _cell(value, whole))


def _cell(value: object, whole: bool) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if whole or number.is_integer():
            return str(int(number)) if number.is_integer() else repr(number)
        return repr(number)
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def _problems_of(err: LockValidationError, imported: ImportedTables) -> list[ImportProblem]:
    """Turn the lock's violations into problems of the OMOP rows that the lock's rows came from."""
    problems = []
    for violation in err.violations:
        problems.append(_origin(violation, imported))
    for omitted in err.omitted:
        problems.append(
            ImportProblem(
                omitted.file.removesuffix(".csv"),
                None,
                None,
                f"lock:{omitted.rule}",
                f"{omitted.count} more rows of the lock break this rule",
            )
        )
    return problems


def _origin(violation: Violation, imported: ImportedTables) -> ImportProblem:
    rule = f"lock:{violation.rule}"
    table = violation.table
    if table is None or violation.row is None or table not in imported.tables:
        where = "cdm_source" if table is None else table
        return ImportProblem(where, None, violation.column, rule, violation.message)
    row = imported.tables[table].iloc[violation.row - 1]
    return ImportProblem(
        str(row["origin_table"]),
        int(row["origin_id"]),
        None if violation.column is None else f"{violation.column} of lock table {table}",
        rule,
        violation.message,
    )
