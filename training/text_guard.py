"""The guard that keeps patient-level text out of what training writes: model cards, plots, logs.

:func:`check_aggregate_text` refuses text that holds an exact date (other than the ones allowed, such
as the lock date) or a token that looks like a patient identifier: a 16-character hexadecimal token
(the length of a pseudonym, :mod:`linewise.features.pseudonym`) or a raw identifier such as ``SIM-000123``.
Error messages name the text's role and the kind of pattern, never the text.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

#: An exact calendar date in any of the usual numeric forms.
DATE_PATTERN: Final = re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{4}\b")
#: Tokens that look like a patient identifier: a pseudonym, or a raw id such as ``SIM-000123``.
IDENTIFIER_PATTERNS: Final = (
    re.compile(r"\b[0-9a-f]{16}\b", re.IGNORECASE),
    re.compile(r"\b[a-z]{2,}-(?!(?:19|20)\d{2}\b)\d{3,}\b", re.IGNORECASE),
)


def check_aggregate_text(text: str, *, allowed_dates: Collection[str] = (), what: str = "text") -> None:
    """Refuse text that holds an exact date or looks like a patient identifier.

    Parameters
    ----------
    text : str
        Text meant for a card, a plot or a log.
    allowed_dates : collection of str
        Dates (as written) that may appear, e.g. the lock date in ISO form.
    what : str
        Name of the text in the error message.

    Raises
    ------
    ValueError
        If ``text`` matches :data:`DATE_PATTERN` (other than an allowed date) or one of
        :data:`IDENTIFIER_PATTERNS`. The message does not repeat the text.
    """
    check_dates(text, allowed_dates, what)
    if any(pattern.search(text) for pattern in IDENTIFIER_PATTERNS):
        raise ValueError(
            f"{what} looks like it holds a patient identifier (a pseudonym or a raw id); "
            "only aggregated facts may appear"
        )


def check_dates(text: str, allowed_dates: Collection[str], what: str) -> None:
    """Refuse text that holds an exact date other than ``allowed_dates``; see :func:`check_aggregate_text`."""
    if any(match.group() not in allowed_dates for match in DATE_PATTERN.finditer(text)):
        raise ValueError(
            f"{what} holds an exact date; only the lock date may appear, other dates as years of diagnosis"
        )
