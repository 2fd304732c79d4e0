"""One patient's history as JSON: exported from a lock, and read back through the lock's own checks.

The file holds the pseudonym, never the raw identifier, and the patient's records up to ``as_of``
(the date the history stands at, which plays the lock date's part)::

    {"schema_version": 1, "patient_key": "26d9dbefab241a66", "as_of": "2025-01-31",
     "patient": {"center_id": "C01", "age_at_metastatic_dx": 48, ...},
     "metastases": [{"site": "bone", "date_detected": "2020-03-10"}, ...],
     "lines": [...], "progressions": [...], "local_therapies": [...], "biomarkers": [...],
     "performance_status": [...]}

Each record has the columns of its table in ``docs/data-lock.md`` without ``patient_id``. Reading it
goes through :func:`linewise.features.loader.load_raw_lock`, the same checks and typing as a lock, so a
patient scored alone gets exactly the feature row the batch path gives.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.errors import LockValidationError, Violation
from linewise.features.loader import DataLock, load_lock, load_raw_lock
from linewise.features.pseudonym import PSEUDONYM_LENGTH, pseudonymize
from linewise.features.reader import RawLock, RawTable, read_lock_folder
from linewise.features.schema import SCHEMA_VERSION, TABLES, TABLES_BY_NAME, Kind

PATIENT_SCHEMA_VERSION: Final = 1
_KEY_PATTERN: Final = re.compile(rf"[0-9a-f]{{{PSEUDONYM_LENGTH}}}")
_TOP_KEYS: Final = {
    "schema_version",
    "patient_key",
    "as_of",
    "patient",
    *(t.name for t in TABLES if t.name != "patients"),
}
_DATE_COLUMNS: Final = {t.name: [c.name for c in t.columns if c.kind is Kind.DATE] for t in TABLES}
#: Columns besides the dates that the cut rewrites.
_CUT_ALSO: Final = {"patients": ("vital_status",), "lines": ("end_reason",)}


def export_patients(
    lock_path: Path, key: bytes, patient_keys: Iterable[str] | None = None, as_of: dt.date | None = None
) -> dict[str, dict[str, Any]]:
    """Return the JSON documents of patients of a lock, as recorded up to ``as_of``.

    Parameters
    ----------
    lock_path : Path
        A lock folder; it is validated first (a bad lock raises its :class:`LockValidationError`).
    key : bytes
        The pseudonym key the patient keys were made with.
    patient_keys : iterable of str, optional
        Which patients (default: all).
    as_of : date, optional
        Cut the histories at this date (default: the lock date).

    Returns
    -------
    dict
        patient_key -> document.

    Raises
    ------
    KeyError
        If a requested patient key is not in the lock.
    ValueError
        If ``as_of`` is after the lock date, or before the metastatic diagnosis of a patient asked
        for by key.
    """
    lock = load_lock(lock_path, key)
    cut = as_of or lock.manifest.lock_date
    if cut > lock.manifest.lock_date:
        raise ValueError(
            f"as_of {cut.isoformat()} is after the lock date {lock.manifest.lock_date.isoformat()}"
        )
    raw = read_lock_folder(Path(lock_path))
    ids = raw.tables["patients"].frame["patient_id"].astype(str)
    key_of = {raw_id: pseudonymize(raw_id, key) for raw_id in ids}
    wanted = set(key_of.values()) if patient_keys is None else set(patient_keys)
    missing = wanted - set(key_of.values())
    if missing:
        raise KeyError(f"{len(missing)} patient key(s) not in this lock, e.g. {sorted(missing)[0]}")
    diagnosed = dict(zip(ids.map(key_of), raw.tables["patients"].frame["metastatic_dx_date"], strict=True))
    asked = () if patient_keys is None else wanted  # exporting everyone keeps the later-diagnosed too
    early = sorted(k for k in asked if cut < dt.date.fromisoformat(diagnosed[k]))
    if early:
        raise ValueError(
            f"as_of is before the metastatic diagnosis of {len(early)} patient(s), e.g. {early[0]}: "
            "their history would start after it; give a date on or after the diagnosis"
        )
    documents: dict[str, dict[str, Any]] = {}
    tables = {
        name: table.frame.assign(patient_key=table.frame["patient_id"].astype(str).map(key_of))
        for name, table in raw.tables.items()
    }
    grouped = {
        name: dict(tuple(frame[frame["patient_key"].isin(wanted)].groupby("patient_key")))
        for name, frame in tables.items()
    }
    for patient_key in sorted(wanted):
        documents[patient_key] = _document(
            patient_key, cut, {n: g.get(patient_key) for n, g in grouped.items()}
        )
    return documents


def _cell(kind: Kind, text: str) -> Any:
    if text == "":
        return None
    if kind in (Kind.NUMBER, Kind.INTEGER):
        number = float(text)
        return int(number) if number.is_integer() else number
    if kind is Kind.BOOLEAN:
        return text.lower() in ("true", "1")
    return text


def _document(patient_key: str, as_of: dt.date, frames: dict[str, pd.DataFrame | None]) -> dict[str, Any]:
    cut = as_of.isoformat()
    document: dict[str, Any] = {
        "schema_version": PATIENT_SCHEMA_VERSION,
        "patient_key": patient_key,
        "as_of": cut,
    }
    for spec in TABLES:
        frame = frames.get(spec.name)
        rows = [] if frame is None else frame.to_dict("records")
        kept = []
        for row in rows:
            record = {c.name: str(row.get(c.name, "")) for c in spec.columns if c.kind is not Kind.PATIENT_ID}
            if not _cut_record(spec.name, record, cut):
                continue
            kept.append(
                {c.name: _cell(c.kind, record[c.name]) for c in spec.columns if c.kind is not Kind.PATIENT_ID}
            )
        if spec.name == "patients":
            document["patient"] = kept[0]
        else:
            document[spec.name] = kept
    return document


def _cut_record(table: str, record: dict[str, str], cut: str) -> bool:
    """Cut one record at ``cut`` (ISO dates compare as text); return False to drop it."""
    if table == "patients":
        if record["death_date"] and record["death_date"] > cut:
            record["death_date"], record["vital_status"] = "", "alive"
        record["last_contact_date"] = min(record["last_contact_date"], cut)
        return True
    if table == "lines":
        if record["start_date"] > cut:
            return False
        if record["end_date"] and record["end_date"] > cut:
            record["end_date"], record["end_reason"] = "", ""
        return True
    return all(not record[column] or record[column] <= cut for column in _DATE_COLUMNS[table])


def cut_document(document: dict[str, Any], as_of: dt.date) -> dict[str, Any]:
    """Return a patient document as it stood on ``as_of``: the same cut as :func:`export_patients`.

    Parameters
    ----------
    document : dict
        A patient document; it is not modified.
    as_of : date
        The new ``as_of``, on or before the document's own.

    Returns
    -------
    dict
        A new document: records dated after ``as_of`` dropped, lines still running then left open,
        deaths after it undone, last contact capped at it.

    Raises
    ------
    ValueError
        If ``as_of`` is after the document's ``as_of``, or the document has no readable ``as_of``.
    """
    stated = document.get("as_of")
    try:
        current = dt.date.fromisoformat(stated) if isinstance(stated, str) else None
    except ValueError:
        current = None
    if current is None:
        raise ValueError("the patient document has no as_of date YYYY-MM-DD to cut from")
    if as_of > current:
        raise ValueError(f"--as-of {as_of.isoformat()} is after the document's as_of {current.isoformat()}")
    cut = as_of.isoformat()
    result: dict[str, Any] = {**document, "as_of": cut}
    for spec in TABLES:
        key = "patient" if spec.name == "patients" else spec.name
        records = [document.get(key)] if spec.name == "patients" else document.get(key)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            continue  # load_patient reports the malformed field
        touched = (*_DATE_COLUMNS[spec.name], *_CUT_ALSO.get(spec.name, ()))
        kept = []
        for record in records:
            fields = {c: "" if record.get(c) is None else str(record.get(c)) for c in touched}
            if _cut_record(spec.name, fields, cut):
                kept.append({**record, **{c: value or None for c, value in fields.items() if c in record}})
        result[key] = kept[0] if spec.name == "patients" and kept else kept
    return result


def read_patient_file(path: Path) -> dict[str, Any]:
    """Read a patient JSON file; a file that is not a JSON object raises :class:`LockValidationError`."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise LockValidationError(
            Path(path).name, [_problem(Path(path).name, None, None, f"not valid JSON: {err}")]
        ) from err
    if not isinstance(content, dict):
        raise LockValidationError(
            Path(path).name, [_problem(Path(path).name, None, None, "must hold a JSON object")]
        )
    return content


def _problem(
    file: str, table: str | None, row: int | None, message: str, column: str | None = None
) -> Violation:
    return Violation(file, table, row, column, None, "patient-file", message)


def load_patient(document: dict[str, Any], source: str = "patient.json") -> DataLock:
    """Check one patient's JSON document and return it as a one-patient :class:`DataLock`.

    Parameters
    ----------
    document : dict
        The parsed JSON.
    source : str
        Name used in error messages.

    Returns
    -------
    DataLock
        Typed tables of the patient, ``lock_date`` = ``as_of``.

    Raises
    ------
    LockValidationError
        Listing every problem, named by the patient key, table and record number.
    """
    problems: list[Violation] = []
    patient_key = document.get("patient_key")
    if not isinstance(patient_key, str) or not _KEY_PATTERN.fullmatch(patient_key):
        problems.append(
            _problem(
                source,
                None,
                None,
                "patient_key must be a 16-character pseudonym "
                "(linewise pseudonymize), never a raw identifier",
                column="patient_key",
            )
        )
        patient_key = "<missing key>"
    if document.get("schema_version") != PATIENT_SCHEMA_VERSION:
        problems.append(
            _problem(
                source,
                None,
                None,
                f"schema_version must be {PATIENT_SCHEMA_VERSION}",
                column="schema_version",
            )
        )
    for unknown in sorted(set(document) - _TOP_KEYS):
        problems.append(_problem(source, None, None, f"unknown field {unknown!r}", column=unknown))
    label = f"{source} (patient {patient_key})"
    raw = RawLock(
        name=label,
        manifest={
            "lock_id": f"patient-{patient_key}",
            "lock_date": document.get("as_of"),
            "schema_version": SCHEMA_VERSION,
            "source": source,
        },
    )
    for spec in TABLES:
        records = [document.get("patient")] if spec.name == "patients" else document.get(spec.name, [])
        frame = _records_as_text(records, spec.name, patient_key, label, problems)
        if frame is not None:
            where = label if spec.name == "patients" else f"{label} {spec.name}"
            raw.tables[spec.name] = RawTable(spec=spec, file=where, frame=frame)
    if problems:
        raise LockValidationError(label, problems)
    return load_raw_lock(raw, lambda identity: identity, identifiers_are_pseudonyms=True)


def _records_as_text(
    records: Any, table: str, patient_key: str, label: str, problems: list[Violation]
) -> pd.DataFrame | None:
    spec = TABLES_BY_NAME[table]
    columns = [c.name for c in spec.columns if c.kind is not Kind.PATIENT_ID]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        what = "an object" if table == "patients" else "a list of objects"
        problems.append(
            _problem(label, table, None, f"{'patient' if table == 'patients' else table} must be {what}")
        )
        return None
    cells: dict[str, list[str]] = {
        "patient_id": [patient_key.strip()] * len(records),
        **{c: [] for c in columns},
    }
    for number, record in enumerate(records, start=1):
        for unknown in sorted(set(record) - set(columns)):
            problems.append(_problem(label, table, number, f"unknown field {unknown!r}", column=unknown))
        for column in columns:
            value = record.get(column)
            if isinstance(value, dict | list):
                problems.append(_problem(label, table, number, "expected a single value", column=column))
                value = None
            text = (
                ""
                if value is None
                else ("true" if value is True else "false" if value is False else str(value))
            )
            cells[column].append(text.strip())
    return pd.DataFrame({name: np.array(values, dtype=object) for name, values in cells.items()})
