"""The tables of a data lock, their columns, types and ranges (``docs/data-lock.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from linewise.features import vocabulary as voc

SCHEMA_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
MANIFEST_KEYS: Final = ("lock_id", "lock_date", "schema_version", "source")
TABLE_SUFFIXES: Final = (".csv", ".parquet")


class Kind(Enum):
    """How a column's cells are parsed and checked."""

    PATIENT_ID = "patient_id"
    TEXT = "text"
    CODE = "code"
    CODE_LIST = "code_list"
    DRUGS = "drugs"
    NUMBER = "number"
    INTEGER = "integer"
    DATE = "date"
    BOOLEAN = "boolean"
    MARKER_VALUE = "marker_value"


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a lock table.

    Attributes
    ----------
    name : str
        Column name as written in the header.
    kind : Kind
        How cells are parsed and checked.
    required : bool
        Whether the column must exist and every cell must be filled.
    codes : frozenset or None
        Allowed codes for ``CODE`` and ``CODE_LIST`` columns.
    low, high : float or None
        Inclusive range for ``NUMBER`` and ``INTEGER`` columns.
    """

    name: str
    kind: Kind
    required: bool = False
    codes: frozenset[str] | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class TableSpec:
    """One table of a lock: its name and its columns in contract order."""

    name: str
    row_is: str
    columns: tuple[ColumnSpec, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of all declared columns."""
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Names of the columns that must be present."""
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> ColumnSpec:
        """Return the spec of column ``name``."""
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)


_PID = ColumnSpec("patient_id", Kind.PATIENT_ID, required=True)

TABLES: Final[tuple[TableSpec, ...]] = (
    TableSpec(
        "patients",
        "patient",
        (
            _PID,
            ColumnSpec("center_id", Kind.TEXT, required=True),
            ColumnSpec("age_at_metastatic_dx", Kind.NUMBER, required=True, low=18.0, high=110.0),
            ColumnSpec("menopausal_status", Kind.CODE, required=True, codes=voc.MENOPAUSAL_STATUS),
            ColumnSpec("histology", Kind.CODE, required=True, codes=voc.HISTOLOGY),
            ColumnSpec("er_percent", Kind.NUMBER, required=True, low=0.0, high=100.0),
            ColumnSpec("pgr_percent", Kind.NUMBER, low=0.0, high=100.0),
            ColumnSpec("ki67_percent", Kind.NUMBER, low=0.0, high=100.0),
            ColumnSpec("her2_ihc", Kind.CODE, codes=voc.HER2_IHC),
            ColumnSpec("grade", Kind.INTEGER, low=1.0, high=3.0),
            ColumnSpec("de_novo", Kind.BOOLEAN, required=True),
            ColumnSpec("metastatic_dx_date", Kind.DATE, required=True),
            ColumnSpec("last_contact_date", Kind.DATE, required=True),
            ColumnSpec("vital_status", Kind.CODE, required=True, codes=voc.VITAL_STATUS),
            ColumnSpec("death_date", Kind.DATE),
        ),
    ),
    TableSpec(
        "metastases",
        "site at a date",
        (
            _PID,
            ColumnSpec("site", Kind.CODE, required=True, codes=voc.SITES),
            ColumnSpec("date_detected", Kind.DATE, required=True),
        ),
    ),
    TableSpec(
        "lines",
        "line of therapy",
        (
            _PID,
            ColumnSpec("line_number", Kind.INTEGER, required=True, low=1.0, high=99.0),
            ColumnSpec("start_date", Kind.DATE, required=True),
            ColumnSpec("end_date", Kind.DATE),
            ColumnSpec("drugs", Kind.DRUGS, required=True, codes=voc.DRUG_CODES),
            ColumnSpec("end_reason", Kind.CODE, codes=voc.LINE_END_REASONS),
        ),
    ),
    TableSpec(
        "progressions",
        "progression event",
        (
            _PID,
            ColumnSpec("date", Kind.DATE, required=True),
            ColumnSpec("line_number", Kind.INTEGER, required=True, low=1.0, high=99.0),
            ColumnSpec("pattern", Kind.CODE, required=True, codes=voc.PROGRESSION_PATTERNS),
            ColumnSpec("new_sites", Kind.CODE_LIST, codes=voc.SITES),
            ColumnSpec("method", Kind.CODE, codes=voc.PROGRESSION_METHODS),
        ),
    ),
    TableSpec(
        "local_therapies",
        "loco-regional treatment",
        (
            _PID,
            ColumnSpec("date", Kind.DATE, required=True),
            ColumnSpec("type", Kind.CODE, required=True, codes=voc.LOCAL_THERAPY_TYPES),
            ColumnSpec("site", Kind.CODE, required=True, codes=voc.SITES),
        ),
    ),
    TableSpec(
        "biomarkers",
        "test result",
        (
            _PID,
            ColumnSpec("date", Kind.DATE, required=True),
            ColumnSpec("marker", Kind.CODE, required=True, codes=voc.MARKERS),
            ColumnSpec("value", Kind.MARKER_VALUE, required=True),
            ColumnSpec("sample", Kind.CODE, codes=voc.SAMPLES),
        ),
    ),
    TableSpec(
        "performance_status",
        "assessment",
        (
            _PID,
            ColumnSpec("date", Kind.DATE, required=True),
            ColumnSpec("ecog", Kind.INTEGER, required=True, low=0.0, high=4.0),
        ),
    ),
)

TABLES_BY_NAME: Final = {table.name: table for table in TABLES}
