"""Lines of therapy from an OMOP CDM: from Treatment Regimen episodes, or derived from drug exposures.

A patient with at least one Treatment Regimen episode gets one line per episode: its dates are the
episode's, its drugs those of the drug exposures linked to it in ``episode_event``, its number the
``episode_number`` (when every episode of the patient has one; otherwise the order of the start dates).
A patient without episodes gets lines derived from the drug exposures of linewise drugs by the regimen
rule of :class:`RegimenRule` (``docs/omop.md``). Either way a line's end reason is read from the
``stop_reason`` of its exposures that end last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import pandas as pd

from linewise.features.omop.problems import ImportProblem
from linewise.features.vocabulary import DRUG_CATEGORY

#: ``stop_reason`` text (lower case, words joined by ``_``) -> the lock's end reason. Text not listed is
#: ``other``; an empty stop reason leaves the end reason empty.
STOP_REASONS: Final = MappingProxyType(
    {
        "progression": "progression",
        "disease_progression": "progression",
        "progressive_disease": "progression",
        "toxicity": "toxicity",
        "adverse_event": "toxicity",
        "side_effects": "toxicity",
        "intolerance": "toxicity",
        "death": "death",
        "died": "death",
        "patient_choice": "patient_choice",
        "patient_decision": "patient_choice",
        "patient_request": "patient_choice",
        "completed": "completed",
        "regimen_completed": "completed",
        "course_completed": "completed",
    }
)
_DRUG_ORDER: Final = {code: position for position, code in enumerate(DRUG_CATEGORY)}
LINE_COLUMNS: Final = (
    "person_id",
    "line_number",
    "start_date",
    "end_date",
    "drugs",
    "end_reason",
    "origin_table",
    "origin_id",
)


@dataclass(frozen=True)
class RegimenRule:
    """How lines are derived from drug exposures where a site records no Treatment Regimen episodes.

    A line starts with a patient's first exposure to a linewise drug. Its regimen is every drug started
    within ``regimen_window_days`` of its start. A later exposure starts a new line when its drug is not
    in the regimen and it starts after that window (the line's exposures still running then are cut on
    that day and join the new line), or when it starts ``restart_gap_days`` or more days without any
    exposure after every exposure of the line has ended and a progression was recorded after the line's
    start day, or when it starts more than ``max_gap_days`` days without any exposure after them. The
    days without any exposure are the start minus the latest end minus one (back-to-back refills: 0).
    The last line is ongoing when the patient is alive, its exposures reach the end of observation and
    none has a stop reason.

    Attributes
    ----------
    regimen_window_days : int
        Days after a line's start within which a drug joins its regimen.
    restart_gap_days : int
        Days without any exposure after which a restart, following a progression, is a new line.
    max_gap_days : int
        Days without any exposure after which a restart is a new line in any case.
    """

    regimen_window_days: int = 28
    restart_gap_days: int = 1
    max_gap_days: int = 90

    def __post_init__(self) -> None:
        for name in ("regimen_window_days", "restart_gap_days", "max_gap_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, found {getattr(self, name)}")


def end_reason(stop_reason: object) -> str | None:
    """Return the lock's end reason for a ``stop_reason`` cell (None when it is empty).

    Parameters
    ----------
    stop_reason : object
        The cell as read: text, or a missing value.

    Returns
    -------
    str or None
        A code of the lock's ``end_reason`` vocabulary.
    """
    if stop_reason is None or (isinstance(stop_reason, float) and np.isnan(stop_reason)):
        return None
    words = re.sub(r"[^a-z]+", "_", str(stop_reason).lower()).strip("_")
    if not words:
        return None
    return STOP_REASONS.get(words, "other")


def lines_from_episodes(
    episodes: pd.DataFrame, exposures: pd.DataFrame, links: pd.DataFrame
) -> tuple[pd.DataFrame, list[ImportProblem]]:
    """Turn Treatment Regimen episodes into lines.

    Parameters
    ----------
    episodes : DataFrame
        ``episode_id``, ``person_id``, ``episode_start_date``, ``episode_end_date``, ``episode_number``:
        the Treatment Regimen episodes only.
    exposures : DataFrame
        ``drug_exposure_id``, ``person_id``, ``drug``, ``drug_exposure_end_date``, ``stop_reason``: the
        exposures to linewise drugs.
    links : DataFrame
        ``episode_id``, ``event_id``: the episode events that point at a drug exposure.

    Returns
    -------
    lines : DataFrame
        The columns of :data:`LINE_COLUMNS`, ``origin_table`` ``episode``.
    problems : list of ImportProblem
        An episode without a linewise drug, or linked to another patient's exposure.
    """
    problems: list[ImportProblem] = []
    linked = links.merge(
        exposures.rename(columns={"drug_exposure_id": "event_id", "person_id": "exposure_person_id"}),
        on="event_id",
    ).merge(episodes[["episode_id", "person_id"]], on="episode_id")
    stranger = linked["exposure_person_id"] != linked["person_id"]
    for episode_id in sorted(set(linked.loc[stranger, "episode_id"])):
        problems.append(
            ImportProblem(
                "episode_event",
                int(episode_id),
                "event_id",
                "episode-person",
                "a Treatment Regimen episode is linked to a drug exposure of another person",
            )
        )
    linked = linked[~stranger]
    drugs = _regimens(linked, "episode_id")
    frame = episodes.assign(drugs=episodes["episode_id"].map(drugs))
    for episode_id in frame.loc[frame["drugs"].isna(), "episode_id"]:
        problems.append(
            ImportProblem(
                "episode",
                int(episode_id),
                None,
                "episode-drugs",
                "a Treatment Regimen episode has no drug exposure of a linewise drug linked to it "
                "in episode_event",
            )
        )
    frame = frame[frame["drugs"].notna()]
    reasons = _last_stop_reasons(linked.rename(columns={"episode_id": "group"}))
    numbered = _numbers(frame)
    lines = pd.DataFrame(
        {
            "person_id": frame["person_id"].to_numpy(),
            "line_number": numbered,
            "start_date": frame["episode_start_date"].to_numpy(),
            "end_date": frame["episode_end_date"].to_numpy(),
            "drugs": frame["drugs"].to_numpy(),
            "end_reason": frame["episode_id"].map(reasons).to_numpy(),
            "origin_table": "episode",
            "origin_id": frame["episode_id"].to_numpy(),
        }
    )
    return lines.sort_values(["person_id", "line_number"], ignore_index=True), problems


def _regimens(exposures: pd.DataFrame, by: str) -> pd.Series:
    """Return each group's drugs joined by ``+``, in the vocabulary's order, each drug once."""
    unique = exposures[[by, "drug"]].drop_duplicates()
    unique = unique.assign(order=unique["drug"].map(_DRUG_ORDER)).sort_values([by, "order"])
    return unique.groupby(by)["drug"].agg("+".join)


def _numbers(episodes: pd.DataFrame) -> np.ndarray:
    """``episode_number`` where every episode of the person has one, else the order of start dates."""
    ordered = episodes.sort_values(["person_id", "episode_start_date", "episode_id"])
    by_date = ordered.groupby("person_id").cumcount() + 1
    grouped = ordered.groupby("person_id")["episode_number"]
    complete = grouped.transform("count") == grouped.transform("size")
    number = np.where(complete, ordered["episode_number"], by_date)
    return pd.Series(number, index=ordered.index).reindex(episodes.index).to_numpy().astype(np.int64)


def _last_stop_reasons(exposures: pd.DataFrame) -> pd.Series:
    """Return the end reason of each group, from the stop reasons of its exposures that end last."""
    if exposures.empty:
        return pd.Series(dtype=object)
    latest = exposures.groupby("group")["drug_exposure_end_date"].transform("max")
    last = exposures[exposures["drug_exposure_end_date"] == latest]
    reasons = last["stop_reason"].map(end_reason)
    return reasons.groupby(last["group"]).first()


def lines_from_exposures(
    exposures: pd.DataFrame,
    progression_dates: pd.DataFrame,
    follow_up: pd.DataFrame,
    rule: RegimenRule,
) -> pd.DataFrame:
    """Derive lines from drug exposures by the regimen rule.

    Parameters
    ----------
    exposures : DataFrame
        ``drug_exposure_id``, ``person_id``, ``drug``, ``drug_exposure_start_date``,
        ``drug_exposure_end_date``, ``stop_reason``: exposures to linewise drugs of the persons without
        episodes.
    progression_dates : DataFrame
        ``person_id``, ``date``: the persons' progressions.
    follow_up : DataFrame
        ``person_id``, ``end_date`` (end of observation), ``alive`` (bool), indexed by nothing.
    rule : RegimenRule
        The thresholds.

    Returns
    -------
    DataFrame
        The columns of :data:`LINE_COLUMNS`; ``origin_table`` ``drug_exposure``, ``origin_id`` the
        exposure that started the line.
    """
    ordered = exposures.sort_values(
        ["person_id", "drug_exposure_start_date", "drug_exposure_id"], ignore_index=True
    )
    segments = _segments(ordered, _dates_by_person(progression_dates), rule)
    parts = ordered.iloc[segments.rows].reset_index(drop=True)
    parts = parts.assign(
        group=segments.groups,
        drug_exposure_start_date=pd.to_datetime(segments.starts),
        drug_exposure_end_date=pd.to_datetime(segments.ends),
        stop_reason=parts["stop_reason"].where(~segments.cut, None),
    )
    grouped = parts.groupby("group", sort=True)
    first = grouped.head(1).set_index("group")
    window_end = first["drug_exposure_start_date"] + pd.Timedelta(days=rule.regimen_window_days)
    in_window = parts["drug_exposure_start_date"] <= parts["group"].map(window_end)
    drugs = _regimens(parts[in_window], "group")
    ends = grouped["drug_exposure_end_date"].max()
    reasons = _last_stop_reasons(parts)
    lines = pd.DataFrame(
        {
            "person_id": first["person_id"],
            "start_date": first["drug_exposure_start_date"],
            "end_date": ends,
            "drugs": drugs,
            "end_reason": reasons.reindex(first.index),
            "origin_table": "drug_exposure",
            "origin_id": first["drug_exposure_id"],
        }
    )
    lines["line_number"] = lines.groupby("person_id").cumcount() + 1
    last = ~lines["person_id"].duplicated(keep="last")
    follow = follow_up.set_index("person_id")
    reaches_end = lines["end_date"] >= lines["person_id"].map(follow["end_date"])
    ongoing = (
        last & reaches_end & lines["person_id"].map(follow["alive"]).astype(bool) & lines["end_reason"].isna()
    )
    lines.loc[ongoing, "end_date"] = pd.NaT
    return lines.loc[:, list(LINE_COLUMNS)].reset_index(drop=True)


def _dates_by_person(progression_dates: pd.DataFrame) -> dict[object, np.ndarray]:
    """Each person's progression dates, sorted, as day-precision arrays."""
    frame = progression_dates.dropna().sort_values(["person_id", "date"])
    persons = frame["person_id"].to_numpy()
    dates = frame["date"].to_numpy("datetime64[D]")
    if len(persons) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, persons[1:] != persons[:-1]])
    return dict(zip(persons[starts].tolist(), np.split(dates, starts[1:]), strict=True))


@dataclass(frozen=True)
class _Segments:
    """Pieces of exposures, each in one line: an exposure still running when a line starts is split.

    Attributes
    ----------
    rows : ndarray
        The exposure (row of the sorted exposures) of each piece.
    groups : ndarray
        The running line index of each piece.
    starts, ends : ndarray
        The piece's days (``datetime64[D]``).
    cut : ndarray
        Whether the piece was cut short by the next line (its stop reason is not its line's).
    """

    rows: np.ndarray
    groups: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    cut: np.ndarray


def _segments(ordered: pd.DataFrame, progressed: dict[object, np.ndarray], rule: RegimenRule) -> _Segments:
    """One pass over each patient's sorted exposures, cutting them into the pieces of each line."""
    persons = ordered["person_id"].to_numpy()
    drugs = ordered["drug"].to_numpy()
    starts = ordered["drug_exposure_start_date"].to_numpy("datetime64[D]")
    ends = ordered["drug_exposure_end_date"].to_numpy("datetime64[D]")
    window = np.timedelta64(rule.regimen_window_days, "D")
    day = np.timedelta64(1, "D")
    rows: list[int] = []
    groups: list[int] = []
    piece_start: list[np.datetime64] = []
    piece_end: list[np.datetime64] = []
    cut: list[bool] = []
    in_line: list[int] = []
    current = -1
    person = None
    first_line = True
    regimen: set[str] = set()
    line_start: np.datetime64 = np.datetime64("NaT", "D")
    line_end: np.datetime64 = np.datetime64("NaT", "D")
    dates = np.array([], dtype="datetime64[D]")
    for row in range(len(ordered)):
        start, end, drug = starts[row], ends[row], drugs[row]
        running: list[int] = []
        if persons[row] != person:
            person = persons[row]
            dates = progressed.get(person, np.array([], dtype="datetime64[D]"))
            new_line, first_line = True, True
        elif drug not in regimen and start > line_start + window:
            new_line, first_line = True, False
            running = [piece for piece in in_line if piece_end[piece] > start]
        elif start > line_end:
            gap = int((start - line_end - day) / day)
            # a progression on a line's start day belongs to the line before it (the first line keeps it)
            since_start = dates >= line_start if first_line else dates > line_start
            progression_since = bool((since_start & (dates <= start)).any())
            new_line = gap > rule.max_gap_days or (progression_since and gap >= rule.restart_gap_days)
            first_line = first_line and not new_line
        else:
            new_line = False
        if new_line:
            current += 1
            regimen, line_start, line_end, in_line = set(), start, end, []
        _add_piece(rows, groups, piece_start, piece_end, cut, row, current, start, end)
        in_line.append(len(rows) - 1)
        for piece in running:
            # a drug still running when a drug is added after the window joins the new line
            _add_piece(
                rows, groups, piece_start, piece_end, cut, rows[piece], current, start, piece_end[piece]
            )
            in_line.append(len(rows) - 1)
            line_end = max(line_end, piece_end[piece])
            regimen.add(drugs[rows[piece]])
            piece_end[piece], cut[piece] = start, True
        if start <= line_start + window:
            regimen.add(drug)
        line_end = max(line_end, end)
    return _Segments(
        np.array(rows, dtype=np.int64),
        np.array(groups, dtype=np.int64),
        np.array(piece_start, dtype="datetime64[D]"),
        np.array(piece_end, dtype="datetime64[D]"),
        np.array(cut, dtype=bool),
    )


def _add_piece(
    rows: list[int],
    groups: list[int],
    starts: list[np.datetime64],
    ends: list[np.datetime64],
    cut: list[bool],
    row: int,
    group: int,
    start: np.datetime64,
    end: np.datetime64,
) -> None:
    rows.append(row)
    groups.append(group)
    starts.append(start)
    ends.append(end)
    cut.append(False)
