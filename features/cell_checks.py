"""Cell-level rules: required cells, types, ranges and codes, one column at a time (vectorised).

Each check parses a text column into typed values (missing or invalid cells become NA) and
returns a violation for every invalid cell. Later checks use the typed values only, so a cell
that failed here is never reported twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import vocabulary as voc
from features.errors import Violation, shown_value
from features.reader import RawTable
from features.schema import ColumnSpec, Kind

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
#: Dates outside these years are typing errors (and outside what pandas can hold).
FIRST_YEAR, LAST_YEAR = 1900, 2199
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True)
class _Where:
    """Where a column lives, to build violations."""

    file: str
    table: str
    column: ColumnSpec

    def violation(self, row_index: int, raw: str, rule: str, message: str) -> Violation:
        value = shown_value(
            raw,
            is_patient_id=self.column.kind is Kind.PATIENT_ID,
            is_date=self.column.kind is Kind.DATE,
        )
        return Violation(self.file, self.table, int(row_index) + 1, self.column.name, value, rule, message)


def parse_table(raw: RawTable) -> tuple[pd.DataFrame, pd.DataFrame, list[Violation]]:
    """Parse and check every declared column of one table.

    Parameters
    ----------
    raw : RawTable
        The table as text.

    Returns
    -------
    frame : DataFrame
        Declared columns as typed values (NA where missing or invalid), then undeclared columns
        as text, with the original row order and a RangeIndex (row ``i`` is file row ``i + 1``).
    invalid : DataFrame of bool
        For each declared column, the cells that broke a rule here (a required cell left empty,
        or a filled cell that failed its check): rules across rows skip them.
    violations : list of Violation
        One per missing required column and per invalid cell.
    """
    text = raw.frame
    violations: list[Violation] = []
    parsed: dict[str, pd.Series] = {}
    invalid: dict[str, pd.Series] = {}
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
            parsed[spec.name] = pd.Series(pd.NA, index=text.index, dtype="object")
            invalid[spec.name] = pd.Series(False, index=text.index)
            continue
        where = _Where(raw.file, raw.spec.name, spec)
        column = text[spec.name]
        if spec.required:
            for index in column.index[column == ""]:
                violations.append(where.violation(index, "", "value-missing", "required value is empty"))
        if spec.kind is Kind.MARKER_VALUE:
            marker = text["marker"] if "marker" in text.columns else pd.Series("", index=text.index)
            values, found = _parse_marker_value(column, marker, where)
        else:
            values, found = _PARSERS[spec.kind](column, where)
        parsed[spec.name] = values
        invalid[spec.name] = (_filled(column) & values.isna()) | (spec.required & ~_filled(column))
        violations.extend(found)
    extra = [name for name in text.columns if name not in raw.spec.column_names]
    frame = pd.DataFrame(parsed, index=text.index)
    for name in extra:
        frame[name] = text[name]
    violations.sort(key=lambda v: (v.row or 0, raw.spec.column_names.index(v.column) if v.column else -1))
    return frame, pd.DataFrame(invalid, index=text.index), violations


def _filled(column: pd.Series) -> pd.Series:
    return column != ""


def _parse_text(column: pd.Series, where: _Where) -> tuple[pd.Series, list[Violation]]:
    return column.where(_filled(column), pd.NA).astype("object"), []


def _parse_number(column: pd.Series, where: _Where) -> tuple[pd.Series, list[Violation]]:
    filled = _filled(column)
    numbers = pd.to_numeric(column.where(filled, None), errors="coerce").astype("float64")
    not_number = filled & ~np.isfinite(numbers.fillna(np.inf).where(filled, 0.0))
    integer = where.column.kind is Kind.INTEGER
    rule, expected = (
        ("type-integer", "expected a whole number") if integer else ("type-number", "expected a number")
    )
    violations = [where.violation(i, column[i], rule, expected) for i in column.index[not_number]]
    numbers = numbers.where(~not_number, np.nan)
    if where.column.kind is Kind.INTEGER:
        fractional = numbers.notna() & (numbers % 1 != 0)
        violations += [
            where.violation(i, column[i], "type-integer", "expected a whole number")
            for i in column.index[fractional]
        ]
        numbers = numbers.where(~fractional, np.nan)
    low, high = where.column.low, where.column.high
    if low is not None and high is not None:
        outside = numbers.notna() & ((numbers < low) | (numbers > high))
        violations += [
            where.violation(i, column[i], "range", f"expected a value from {low:g} to {high:g}")
            for i in column.index[outside]
        ]
        numbers = numbers.where(~outside, np.nan)
    return numbers, violations


def _parse_date(column: pd.Series, where: _Where) -> tuple[pd.Series, list[Violation]]:
    filled = _filled(column)
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
    return dates, violations


def _parse_boolean(column: pd.Series, where: _Where) -> tuple[pd.Series, list[Violation]]:
    lowered = column.str.lower()
    values = pd.Series(pd.NA, index=column.index, dtype="boolean")
    values[lowered.isin(_TRUE)] = True
    values[lowered.isin(_FALSE)] = False
    bad = _filled(column) & values.isna()
    violations = [
        where.violation(i, column[i], "type-boolean", "expected true/false or 1/0") for i in column.index[bad]
    ]
    return values, violations


def _code_message(value: str, codes: frozenset[str], noun: str = "code") -> str:
    suggestion = None if codes == voc.HER2_IHC else voc.closest_code(value, codes)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    if len(codes) <= 12:
        return f"unknown {noun} {value!r}: expected one of {', '.join(sorted(codes))}{hint}"
    return f"unknown {noun} {value!r}{hint}"


def _parse_code(column: pd.Series, where: _Where) -> tuple[pd.Series, list[Violation]]:
    codes = where.column.codes or frozenset()
    filled = _filled(column)
    bad = filled & ~column.isin(codes)
    violations = []
    for i in column.index[bad]:
        if where.column.name == "her2_ihc" and voc.is_her2_positive(column[i]):
            violations.append(
                where.violation(
                    i, column[i], "her2-negative", "HER2-positive disease is outside the population"
                )
            )
        else:
            violations.append(where.violation(i, column[i], "code", _code_message(column[i], codes)))
    return column.where(filled & ~bad, pd.NA).astype("object"), violations


def _parse_code_list(column: pd.Series, where: _Where) -> tuple[pd.Series, list[Violation]]:
    codes = where.column.codes or frozenset()
    rule, noun = ("drug-code", "drug code") if where.column.kind is Kind.DRUGS else ("code", "code")
    filled = _filled(column)
    parts = column[filled].str.split("+").explode().str.strip()
    unknown = parts[~parts.isin(codes)]
    violations = [
        where.violation(i, column[i], rule, _code_message(part, codes, noun)) for i, part in unknown.items()
    ]
    valid = filled & ~column.index.isin(unknown.index)
    normalised = column.str.replace(r"\s*\+\s*", "+", regex=True)
    return normalised.where(valid, pd.NA).astype("object"), violations


def _parse_marker_value(
    column: pd.Series, marker: pd.Series, where: _Where
) -> tuple[pd.Series, list[Violation]]:
    filled = _filled(column)
    genomic = filled & marker.isin(voc.GENOMIC_MARKERS)
    percent = filled & marker.isin(voc.PERCENT_MARKERS)
    her2 = filled & marker.isin(voc.HER2_MARKERS)
    numbers = pd.to_numeric(column.where(percent, None), errors="coerce")
    bad_genomic = genomic & ~column.isin(voc.GENOMIC_VALUES)
    bad_percent = percent & ~((numbers >= 0.0) & (numbers <= 100.0))
    bad_her2 = her2 & ~column.isin(voc.HER2_IHC)
    violations = []
    for i in column.index[bad_genomic]:
        message = _code_message(column[i], voc.GENOMIC_VALUES, f"{marker[i]} result")
        violations.append(where.violation(i, column[i], "code", message))
    for i in column.index[bad_percent]:
        message = f"a {marker[i]} result is a percentage from 0 to 100"
        violations.append(where.violation(i, column[i], "range", message))
    for i in column.index[bad_her2]:
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
    return column.where(valid, pd.NA).astype("object"), violations


_PARSERS: dict[Kind, Callable[[pd.Series, _Where], tuple[pd.Series, list[Violation]]]] = {
    Kind.PATIENT_ID: _parse_text,
    Kind.TEXT: _parse_text,
    Kind.CODE: _parse_code,
    Kind.CODE_LIST: _parse_code_list,
    Kind.DRUGS: _parse_code_list,
    Kind.NUMBER: _parse_number,
    Kind.INTEGER: _parse_number,
    Kind.DATE: _parse_date,
    Kind.BOOLEAN: _parse_boolean,
}
