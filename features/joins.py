"""Row matching on key columns with a few numpy calls: lookups, first occurrences and inner joins.

A pandas merge or groupby costs tens of microseconds whatever the size of its tables, which is most of
the time when one patient's history becomes its rows. These helpers match rows the way ``merge`` does
(a missing key equals a missing key), with the same vectorised code for one patient or a whole lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Combined codes stay below this bound; beyond it they are renumbered.
_CODE_LIMIT = 2**62


def key_codes(*tables: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return one int64 code per row of each table; rows with equal key tuples get equal codes.

    Parameters
    ----------
    *tables : sequence of arrays
        Each table as its key columns, the same number of columns in every table (column ``j`` of
        one table is compared with column ``j`` of the others). Missing values (None, NA, NaN) are a
        value of their own, as in :func:`pandas.merge`.

    Returns
    -------
    list of ndarray
        The codes of each table's rows (non-negative, comparable across the tables).
    """
    sizes = [len(table[0]) for table in tables]
    bounds = np.cumsum([0, *sizes])
    combined = np.zeros(bounds[-1], dtype=np.int64)
    radix = 1
    for columns in zip(*tables, strict=True):
        codes, uniques = pd.factorize(np.concatenate([np.asarray(column) for column in columns]))
        size = len(uniques) + 1
        if radix * size >= _CODE_LIMIT:
            combined, compact = pd.factorize(combined)
            radix = len(compact)
        combined = combined * size + (codes + 1)
        radix *= size
    return [combined[start:stop] for start, stop in itertools.pairwise(bounds)]


def lookup(left: Sequence[np.ndarray], right: Sequence[np.ndarray]) -> np.ndarray:
    """Return, for each left row, the position of the first right row with the same keys.

    Parameters
    ----------
    left, right : sequence of arrays
        The key columns of both tables, in the same order.

    Returns
    -------
    ndarray of int64
        Right positions, -1 where no right row matches (a left join to the first match).
    """
    left_codes, right_codes = key_codes(left, right)
    return positions_of(left_codes, right_codes)


def positions_of(left_codes: np.ndarray, right_codes: np.ndarray) -> np.ndarray:
    """Return, for each left code, the position of its first occurrence among ``right_codes`` (or -1).

    Parameters
    ----------
    left_codes, right_codes : ndarray of int64
        Codes from :func:`key_codes`.

    Returns
    -------
    ndarray of int64
        Positions in ``right_codes``, -1 where the code does not occur.
    """
    if len(right_codes) == 0:
        return np.full(len(left_codes), -1, dtype=np.int64)
    order = np.argsort(right_codes, kind="stable")
    ordered = right_codes[order]
    found = np.minimum(np.searchsorted(ordered, left_codes), len(ordered) - 1)
    return np.where(ordered[found] == left_codes, order[found], -1)


def first_occurrences(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Return a mask of the rows whose keys did not appear in an earlier row (``drop_duplicates``).

    Parameters
    ----------
    keys : sequence of arrays
        Key columns of one table.

    Returns
    -------
    ndarray of bool
        True for the first row of each distinct key tuple.
    """
    (codes,) = key_codes(keys)
    first = np.zeros(len(codes), dtype=bool)
    first[np.unique(codes, return_index=True)[1]] = True
    return first


def inner_pairs(left_codes: np.ndarray, right_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return every pair of rows with equal codes, as two aligned arrays of positions.

    Parameters
    ----------
    left_codes, right_codes : ndarray of int64
        Codes from :func:`key_codes`.

    Returns
    -------
    left_rows, right_rows : ndarray of int64
        One entry per matching pair, by left row, then right row.
    """
    order = np.argsort(right_codes, kind="stable")
    ordered = right_codes[order]
    starts = np.searchsorted(ordered, left_codes, side="left")
    counts = np.searchsorted(ordered, left_codes, side="right") - starts
    left_rows = np.repeat(np.arange(len(left_codes)), counts)
    offsets = np.arange(len(left_rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    return left_rows, order[np.repeat(starts, counts) + offsets]


def take(values: np.ndarray, rows: np.ndarray, missing: object = np.nan) -> np.ndarray:
    """Return ``values[rows]``, with ``missing`` where the row is -1 (no match).

    Parameters
    ----------
    values : ndarray
        A column.
    rows : ndarray of int
        Positions in ``values``, -1 for none (as from :func:`lookup`).
    missing : object
        The value for no match, of ``values``' dtype (NaN, NaT, None or NA).

    Returns
    -------
    ndarray
        Of ``values``' dtype.
    """
    taken = np.full(len(rows), missing, dtype=values.dtype)
    found = rows >= 0
    taken[found] = values[rows[found]]
    return taken
