"""Cell-level rules: required cells, types, ranges and codes, one column at a time (vectorised).

Each check parses a text column into typed values (missing or invalid cells become NA) and
returns a violation for every invalid cell. Later checks use the typed values only, so a cell
that failed here is never reported twice.

Columns are numpy arrays: text as objects (None where missing), numbers as float64 (NaN), dates as
``datetime64[D]`` (NaT). Numpy calls cost a microsecond where a pandas call costs tens, which is what
one patient's history, checked through these same rules, needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from linewise.features import vocabulary as voc
from linewise.features.errors import PATIENT_ID_MAX, SHOWN_PER_RULE, Omitted, Violation, shown_value
from linewise.features.reader import RawTable
from linewise.features.schema import ColumnSpec, Kind

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
#: Dates outside these years are typing errors (and outside what pandas can hold).
FIRST_YEAR, LAST_YEAR = 1900, 2199
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_NAT = np.datetime64("NaT", "D")

Parsed = tuple[np.ndarray, list[Violation]]
#: A parser gets the cells as objects, which are filled, the column as read (its text engine) and where it is.
Parser = Callable[[np.ndarray, np.ndarray, pd.Series, "_Where"], Parsed]


#: Stands for a violation past the first :data:`SHOWN_PER_RULE` of its column and rule: counted, not kept.
_COUNTED: Final = Violation("", None, None, None, None, "", "")


@dataclass(frozen=True)
class _Where:
    """Where a column lives, to build violations; past the bound of a rule it only counts them."""

    file: str
    table: str
    column: ColumnSpec
    counts: dict[str, int] = field(default_factory=dict)

    def violation(self, row_index: int | np.integer, raw: str, rule: str, message: str) -> Violation:
        self.counts[rule] = self.counts.get(rule, 0) + 1
        if self.counts[rule] > SHOWN_PER_RULE:
            return _COUNTED
        value = shown_value(
            raw,
            is_patient_id=self.column.kind is Kind.PATIENT_ID,
            is_date=self.column.kind is Kind.DATE,
        )
        return Violation(self.file, self.table, int(row_index) + 1, self.column.name, value, rule, message)


def parse_table(
    raw: RawTable,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Violation], list[Omitted]]:
    """Parse and check every declared column of one table.

    Parameters
    ----------
    raw : RawTable
        The table as text.

    Returns
    -------
    columns : dict of str to ndarray
        Declared columns as typed values (see the module docstring; missing or invalid cells are
        None, NaN or NaT), then undeclared columns as text, in file row order (entry ``i`` is file
        row ``i + 1``). A declared column absent from the file is all missing.
    invalid : dict of str to ndarray of bool
        For each declared column, the cells that broke a rule here (a required cell left empty,
        or a filled cell that failed its check): rules across rows skip them.
    violations : list of Violation
        One per missing required column and per invalid cell, up to :data:`SHOWN_PER_RULE` per
        column and rule (enough for :func:`linewise.features.errors.bound_violations` to keep the
        first of each file and rule).
    omitted : list of Omitted
        How many more of each rule were counted and not kept, per file and rule.
    """
    text = raw.frame
    rows = len(text)
    violations: list[Violation] = []
    dropped: dict[str, int] = {}
    parsed: dict[str, np.ndarray] = {}
    invalid: dict[str, np.ndarray] = {}
    for spec in raw.spec.columns:
        if spec.name not in text.columns:
            if spec.required:
                violations.append(
                    Violation(
                        raw.file,
                        raw.spec.name,
                        None,
                        spec.name,
                        None,
                        "column-missing",
                        f"required column {spec.name} is missing",
                    )
                )
            parsed[spec.name] = missing_values(spec.kind, rows)
            invalid[spec.name] = np.zeros(rows, dtype=bool)
            continue
        where = _Where(raw.file, raw.spec.name, spec)
        source = text[spec.name]
        column = source.to_numpy(dtype=object)
        filled = column != ""
        if spec.required:
            for index in np.flatnonzero(~filled):
                violations.append(where.violation(index, "", "value-missing", "required value is empty"))
        if spec.kind is Kind.MARKER_VALUE:
            marker = _text(text, "marker") if "marker" in text.columns else np.full(rows, "", dtype=object)
            values, found = _parse_marker_value(column, filled, marker, where)
        else:
            values, found = _PARSERS[spec.kind](column, filled, source, where)
        parsed[spec.name] = values
        invalid[spec.name] = (filled & _is_missing(values)) | (spec.required & ~filled)
        violations.extend(found)
        for rule, count in where.counts.items():
            if count > SHOWN_PER_RULE:
                dropped[rule] = dropped.get(rule, 0) + count - SHOWN_PER_RULE
    position = {name: index for index, name in enumerate(raw.spec.column_names)}
    for name in text.columns:
        if name not in position:
            parsed[name] = _text(text, name)
    violations = [v for v in violations if v is not _COUNTED]
    violations.sort(key=lambda v: (v.row or 0, position[v.column] if v.column else -1))
    return parsed, invalid, violations, [Omitted(raw.file, rule, count) for rule, count in dropped.items()]


def missing_values(kind: Kind, rows: int) -> np.ndarray:
    """Return a column of ``rows`` missing values of ``kind`` (NaN, NaT or None).

    Parameters
    ----------
    kind : Kind
        The column's kind.
    rows : int
        Its length.

    Returns
    -------
    ndarray
        float64 for numbers, ``datetime64[D]`` for dates, objects otherwise.
    """
    if kind in (Kind.NUMBER, Kind.INTEGER):
        return np.full(rows, np.nan)
    if kind is Kind.DATE:
        return np.full(rows, _NAT)
    return np.full(rows, None, dtype=object)


def _text(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=object)


def _is_missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "M":
        return np.isnat(values)
    return pd.isna(values)


def _member(values: np.ndarray, codes: frozenset[str]) -> np.ndarray:
    """Elementwise ``value in codes`` for an object array."""
    return np.fromiter(map(codes.__contains__, values), dtype=bool, count=len(values))


def _kept(column: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Return the cells where ``keep`` is true, None elsewhere."""
    kept = np.full(len(column), None, dtype=object)
    kept[keep] = column[keep]
    return kept


def _parse_text(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    return _kept(column, filled), []


def _parse_patient_id(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    values = _kept(column, filled)
    lengths = source.str.len().to_numpy(dtype="int64", na_value=0)  # vectorised: every row of every table
    too_long = np.flatnonzero(filled & (lengths > PATIENT_ID_MAX))
    message = f"a patient_id is at most {PATIENT_ID_MAX} characters"
    violations = [where.violation(i, column[i], "patient-id", message) for i in too_long]
    values[too_long] = None
    return values, violations


def _parse_number(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    numbers = np.asarray(pd.to_numeric(_kept(column, filled), errors="coerce"), dtype="float64")
    not_number = filled & ~np.isfinite(numbers)
    integer = where.column.kind is Kind.INTEGER
    rule, expected = (
        ("type-integer", "expected a whole number") if integer else ("type-number", "expected a number")
    )
    violations = [where.violation(i, column[i], rule, expected) for i in np.flatnonzero(not_number)]
    numbers[not_number] = np.nan
    if integer:
        fractional = ~np.isnan(numbers) & (numbers % 1 != 0)
        violations += [
            where.violation(i, column[i], "type-integer", "expected a whole number")
            for i in np.flatnonzero(fractional)
        ]
        numbers[fractional] = np.nan
    low, high = where.column.low, where.column.high
    if low is not None and high is not None:
        outside = ~np.isnan(numbers) & ((numbers < low) | (numbers > high))
        violations += [
            where.violation(i, column[i], "range", f"expected a value from {low:g} to {high:g}")
            for i in np.flatnonzero(outside)
        ]
        numbers[outside] = np.nan
    return numbers, violations


def _parse_date(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    dates = _iso_dates(column, filled)
    if dates is not None:
        return dates, []
    return _parse_date_cells(source, where)


def _iso_dates(column: np.ndarray, filled: np.ndarray) -> np.ndarray | None:
    """Parse a column whose filled cells are all ISO dates in range; None when any cell is not."""
    cells = column[filled]
    try:
        parsed = cells.astype("datetime64[D]")
    except (ValueError, TypeError, OverflowError):
        return None
    years = parsed.astype("datetime64[Y]").astype(np.int64) + 1970
    canonical = np.datetime_as_string(parsed, unit="D").astype(object)
    if (
        np.isnat(parsed).any()
        or not np.array_equal(canonical, cells)  # exactly YYYY-MM-DD: no sign, time or short form
        or (years < FIRST_YEAR).any()
        or (years > LAST_YEAR).any()
    ):
        return None
    dates = np.full(len(column), _NAT)
    dates[filled] = parsed
    return dates


def _parse_date_cells(column: pd.Series, where: _Where) -> Parsed:
    """Apply the date rules to the column as read, when a cell is not a plain ISO date in range.

    The column keeps the text engine it was read with (Arrow for a lock, Python for a patient file),
    which decides how a digit in another script is read.
    """
    column = column.reset_index(drop=True)
    filled = column != ""
    shaped = filled & column.str.match(_DATE_PATTERN)
    year = pd.to_numeric(column.str.slice(0, 4).where(shaped, None), errors="coerce")
    plausible = shaped & year.between(FIRST_YEAR, LAST_YEAR)
    dates = pd.to_datetime(column.where(plausible, None), format="%Y-%m-%d", errors="coerce")
    violations = []
    for i in column.index[filled & dates.isna()]:
        if shaped[i] and not plausible[i]:
            message = f"expected a date between {FIRST_YEAR} and {LAST_YEAR}"
        else:
            message = "expected a date YYYY-MM-DD that exists"
        violations.append(where.violation(i, column[i], "type-date", message))
    return dates.to_numpy(dtype="datetime64[D]"), violations


def _parse_boolean(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    lowered = np.array([cell.lower() for cell in column], dtype=object)
    true, false = _member(lowered, _TRUE), _member(lowered, _FALSE)
    values = _kept(true, true | false)
    bad = filled & ~true & ~false
    violations = [
        where.violation(i, column[i], "type-boolean", "expected true/false or 1/0")
        for i in np.flatnonzero(bad)
    ]
    return values, violations


def _code_message(value: str, codes: frozenset[str], noun: str = "code") -> str:
    suggestion = None if codes == voc.HER2_IHC else voc.closest_code(value, codes)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    if len(codes) <= 12:
        return f"unknown {noun} {value!r}: expected one of {', '.join(sorted(codes))}{hint}"
    return f"unknown {noun} {value!r}{hint}"


def _parse_code(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    codes = where.column.codes or frozenset()
    bad = filled & ~_member(column, codes)
    violations = []
    for i in np.flatnonzero(bad):
        if where.column.name == "her2_ihc" and voc.is_her2_positive(column[i]):
            violations.append(
                where.violation(
                    i, column[i], "her2-negative", "HER2-positive disease is outside the population"
                )
            )
        else:
            violations.append(where.violation(i, column[i], "code", _code_message(column[i], codes)))
    return _kept(column, filled & ~bad), violations


def _parse_code_list(column: np.ndarray, filled: np.ndarray, source: pd.Series, where: _Where) -> Parsed:
    codes = where.column.codes or frozenset()
    rule, noun = ("drug-code", "drug code") if where.column.kind is Kind.DRUGS else ("code", "code")
    # each distinct list is checked once: a lock repeats the same few regimens many times
    rows = np.flatnonzero(filled)
    inverse, distinct = pd.factorize(column[rows])
    unknown = [[part for part in _parts(cell) if part not in codes] for cell in distinct]
    known = np.array([not parts for parts in unknown], dtype=bool)[inverse]
    violations = [
        where.violation(i, column[i], rule, _code_message(part, codes, noun))
        for i, which in zip(rows[~known], inverse[~known], strict=True)
        for part in unknown[which]
    ]
    values = np.full(len(column), None, dtype=object)
    values[rows[known]] = _normalised(np.asarray(distinct, dtype=object), source.dtype)[inverse[known]]
    return values, violations


def _parts(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("+")]


def _normalised(lists: np.ndarray, dtype: object) -> np.ndarray:
    """Remove the spaces around each ``+``, with the text engine the column was read with."""
    spaced = [any(part != part.strip() for part in cell.split("+")) for cell in lists]
    if not any(spaced):
        return lists
    replaced = pd.Series(lists, dtype=dtype).str.replace(r"\s*\+\s*", "+", regex=True)
    return np.asarray(replaced.to_numpy(dtype=object))


def _parse_marker_value(column: np.ndarray, filled: np.ndarray, marker: np.ndarray, where: _Where) -> Parsed:
    genomic = filled & _member(marker, voc.GENOMIC_MARKERS)
    percent = filled & _member(marker, voc.PERCENT_MARKERS)
    her2 = filled & _member(marker, voc.HER2_MARKERS)
    numbers = np.asarray(pd.to_numeric(_kept(column, percent), errors="coerce"), dtype="float64")
    bad_genomic = genomic & ~_member(column, voc.GENOMIC_VALUES)
    bad_percent = percent & ~((numbers >= 0.0) & (numbers <= 100.0))
    bad_her2 = her2 & ~_member(column, voc.HER2_IHC)
    violations = []
    for i in np.flatnonzero(bad_genomic):
        message = _code_message(column[i], voc.GENOMIC_VALUES, f"{marker[i]} result")
        violations.append(where.violation(i, column[i], "code", message))
    for i in np.flatnonzero(bad_percent):
        message = f"a {marker[i]} result is a percentage from 0 to 100"
        violations.append(where.violation(i, column[i], "range", message))
    for i in np.flatnonzero(bad_her2):
        if voc.is_her2_positive(column[i]):
            violations.append(
                where.violation(
                    i, column[i], "her2-negative", "HER2-positive disease is outside the population"
                )
            )
        else:
            message = _code_message(column[i], voc.HER2_IHC, "HER2 result")
            violations.append(where.violation(i, column[i], "code", message))
    valid = (genomic | percent | her2) & ~(bad_genomic | bad_percent | bad_her2)
    return _kept(column, valid), violations


_PARSERS: dict[Kind, Parser] = {
    Kind.PATIENT_ID: _parse_patient_id,
    Kind.TEXT: _parse_text,
    Kind.CODE: _parse_code,
    Kind.CODE_LIST: _parse_code_list,
    Kind.DRUGS: _parse_code_list,
    Kind.NUMBER: _parse_number,
    Kind.INTEGER: _parse_number,
    Kind.DATE: _parse_date,
    Kind.BOOLEAN: _parse_boolean,
}
