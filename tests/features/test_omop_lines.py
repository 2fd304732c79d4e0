"""The regimen rule and the episode reading of ``linewise.features.omop.lines``, on hand-written exposures.

Every expected line below is written out by hand from the rule in ``docs/omop.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from linewise.features.omop.lines import (
    RegimenRule,
    end_reason,
    lines_from_episodes,
    lines_from_exposures,
)


def _exposures(rows: Sequence[tuple[int, str, str, str, str | None]]) -> pd.DataFrame:
    """(person, drug, start, end, stop_reason) rows, ids in order."""
    return pd.DataFrame(
        {
            "drug_exposure_id": range(1, len(rows) + 1),
            "person_id": [r[0] for r in rows],
            "drug": [r[1] for r in rows],
            "drug_exposure_start_date": pd.to_datetime([r[2] for r in rows]),
            "drug_exposure_end_date": pd.to_datetime([r[3] for r in rows]),
            "stop_reason": [r[4] for r in rows],
        }
    )


def _derive(
    rows: Sequence[tuple[int, str, str, str, str | None]],
    progressions: list[tuple[int, str]] = (),  # type: ignore[assignment]
    end: str = "2024-12-31",
    alive: bool = True,
    rule: RegimenRule | None = None,
) -> list[tuple[int, int, str, str | None, str, str | None]]:
    exposures = _exposures(rows)
    dates = pd.DataFrame(
        {"person_id": [p for p, _ in progressions], "date": pd.to_datetime([d for _, d in progressions])}
    )
    persons = sorted(set(exposures["person_id"]))
    follow_up = pd.DataFrame({"person_id": persons, "end_date": pd.Timestamp(end), "alive": alive})
    lines = lines_from_exposures(exposures, dates, follow_up, rule or RegimenRule())
    return [
        (
            int(r.person_id),
            int(r.line_number),
            r.start_date.strftime("%Y-%m-%d"),
            None if pd.isna(r.end_date) else r.end_date.strftime("%Y-%m-%d"),
            r.drugs,
            None if pd.isna(r.end_reason) else r.end_reason,
        )
        for r in lines.itertuples()
    ]


def test_drugs_started_within_the_window_form_one_regimen() -> None:
    rows = [
        (1, "letrozole", "2020-01-01", "2020-06-30", "Disease progression"),
        (1, "palbociclib", "2020-01-20", "2020-06-30", "Disease progression"),
    ]
    assert _derive(rows) == [(1, 1, "2020-01-01", "2020-06-30", "letrozole+palbociclib", "progression")]


def test_a_drug_added_after_the_window_starts_a_new_line_that_the_running_drugs_join() -> None:
    rows = [
        (1, "letrozole", "2020-01-01", "2020-06-30", "Disease progression"),
        (1, "palbociclib", "2020-02-15", "2020-06-30", "Disease progression"),
    ]
    # line 1 closes the day palbociclib starts, with no end reason of its own; letrozole goes on in line 2
    assert _derive(rows, end="2024-01-01") == [
        (1, 1, "2020-01-01", "2020-02-15", "letrozole", None),
        (1, 2, "2020-02-15", "2020-06-30", "letrozole+palbociclib", "progression"),
    ]


def test_a_switch_after_the_window_is_a_new_line_of_the_new_drug_alone() -> None:
    rows = [
        (1, "letrozole", "2020-01-01", "2020-05-31", "Toxicity"),
        (1, "exemestane", "2020-05-31", "2020-12-31", None),
    ]
    # letrozole ends the day exemestane starts: it is not running, so it does not join line 2
    assert _derive(rows, end="2024-01-01") == [
        (1, 1, "2020-01-01", "2020-05-31", "letrozole", "toxicity"),
        (1, 2, "2020-05-31", "2020-12-31", "exemestane", None),
    ]


def test_back_to_back_refills_leave_no_gap() -> None:
    """A refill the day after the previous supply ends is a gap of 0 days: the line goes on."""
    rows = [
        (1, "fulvestrant", "2021-01-01", "2021-01-31", None),
        (1, "fulvestrant", "2021-02-01", "2021-02-28", "Toxicity"),
    ]
    # a progression during the line, then a refill without a day off: the same line (beyond progression)
    assert _derive(rows, progressions=[(1, "2021-01-15")]) == [
        (1, 1, "2021-01-01", "2021-02-28", "fulvestrant", "toxicity")
    ]
    # one day without the drug after a progression is a restart, so a new line
    paused = [rows[0], (1, "fulvestrant", "2021-02-02", "2021-02-28", "Toxicity")]
    assert _derive(paused, progressions=[(1, "2021-01-15")]) == [
        (1, 1, "2021-01-01", "2021-01-31", "fulvestrant", None),
        (1, 2, "2021-02-02", "2021-02-28", "fulvestrant", "toxicity"),
    ]
    # the longest pause that keeps a line: max_gap_days days without the drug
    gap_90 = [rows[0], (1, "fulvestrant", "2021-05-02", "2021-05-31", None)]
    assert [line[1] for line in _derive(gap_90)] == [1]
    gap_91 = [rows[0], (1, "fulvestrant", "2021-05-03", "2021-05-31", None)]
    assert [line[1] for line in _derive(gap_91)] == [1, 2]


def test_a_progression_on_a_line_start_day_belongs_to_the_line_before() -> None:
    """The progression that ends line 1 is dated the day line 2 starts: it does not split line 2."""
    rows = [
        (1, "letrozole", "2020-01-01", "2020-06-30", "Disease progression"),
        (1, "fulvestrant", "2020-07-15", "2020-12-31", None),
        (1, "fulvestrant", "2021-01-05", "2021-06-30", "Toxicity"),
    ]
    assert _derive(rows, progressions=[(1, "2020-07-15")]) == [
        (1, 1, "2020-01-01", "2020-06-30", "letrozole", "progression"),
        (1, 2, "2020-07-15", "2021-06-30", "fulvestrant", "toxicity"),
    ]


def test_a_restart_after_a_progression_is_a_new_line_without_it_the_same_line() -> None:
    rows = [
        (1, "fulvestrant", "2021-01-01", "2021-05-31", "Disease progression"),
        (1, "fulvestrant", "2021-06-10", "2021-12-31", "Toxicity"),
    ]
    with_progression = _derive(rows, progressions=[(1, "2021-05-20")])
    assert with_progression == [
        (1, 1, "2021-01-01", "2021-05-31", "fulvestrant", "progression"),
        (1, 2, "2021-06-10", "2021-12-31", "fulvestrant", "toxicity"),
    ]
    # no progression: a 10-day gap is a pause of the same line (the reason of its last exposure)
    assert _derive(rows) == [(1, 1, "2021-01-01", "2021-12-31", "fulvestrant", "toxicity")]


def test_a_gap_longer_than_the_maximum_is_a_new_line() -> None:
    rows = [
        (1, "capecitabine", "2021-01-01", "2021-03-31", None),
        (1, "capecitabine", "2021-07-01", "2021-09-30", "Completed"),
    ]
    assert _derive(rows) == [
        (1, 1, "2021-01-01", "2021-03-31", "capecitabine", None),
        (1, 2, "2021-07-01", "2021-09-30", "capecitabine", "completed"),
    ]
    # a longer allowed gap joins them
    assert _derive(rows, rule=RegimenRule(max_gap_days=120)) == [
        (1, 1, "2021-01-01", "2021-09-30", "capecitabine", "completed")
    ]


def test_the_last_line_is_ongoing_only_when_it_reaches_the_end_of_observation_alive() -> None:
    rows = [
        (1, "exemestane", "2022-01-01", "2024-12-31", None),
        (1, "everolimus", "2022-01-05", "2024-12-31", None),
    ]
    assert _derive(rows) == [(1, 1, "2022-01-01", None, "exemestane+everolimus", None)]
    assert _derive(rows, alive=False)[0][3] == "2024-12-31"
    assert _derive(rows, end="2025-06-30")[0][3] == "2024-12-31"
    stopped = [(1, "exemestane", "2022-01-01", "2024-12-31", "patient request")]
    assert _derive(stopped)[0][3:] == ("2024-12-31", "exemestane", "patient_choice")


def test_persons_are_derived_independently() -> None:
    rows = [
        (2, "tamoxifen", "2019-01-01", "2019-12-31", "disease progression"),
        (1, "letrozole", "2020-01-01", "2020-12-31", "progressive disease"),
    ]
    assert [line[:2] for line in _derive(rows)] == [(1, 1), (2, 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Disease progression", "progression"),
        ("PROGRESSIVE DISEASE", "progression"),
        ("adverse event", "toxicity"),
        ("Side-effects", "toxicity"),
        ("died", "death"),
        ("patient decision", "patient_choice"),
        ("regimen completed", "completed"),
        ("insurance", "other"),
        ("", None),
        ("  ", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_stop_reasons(text: object, expected: str | None) -> None:
    assert end_reason(text) == expected


def test_episodes_take_their_drugs_from_linked_exposures_and_flag_strangers() -> None:
    episodes = pd.DataFrame(
        {
            "episode_id": [10, 11, 12],
            "person_id": [1, 1, 2],
            "episode_start_date": pd.to_datetime(["2020-01-01", "2021-01-01", "2020-03-01"]),
            "episode_end_date": pd.to_datetime(["2020-12-20", None, "2020-09-01"]),
            "episode_number": [None, None, 1],
        }
    )
    exposures = _exposures(
        [
            (1, "anastrozole", "2020-01-01", "2020-12-20", "Disease progression"),
            (1, "ribociclib", "2020-01-01", "2020-12-20", "Disease progression"),
            (1, "fulvestrant", "2021-01-01", "2024-12-31", None),
            (2, "letrozole", "2020-03-01", "2020-09-01", None),
        ]
    )
    # episode 12 (person 2) points at person 1's exposure 3 as well as its own exposure 4
    links = pd.DataFrame({"episode_id": [10, 10, 11, 12, 12], "event_id": [1, 2, 3, 4, 3]})
    lines, problems = lines_from_episodes(episodes, exposures, links)
    assert [(p.table, p.row_id, p.rule) for p in problems] == [("episode_event", 12, "episode-person")]
    assert lines[["person_id", "line_number", "drugs", "end_reason", "origin_id"]].values.tolist() == [
        [1, 1, "anastrozole+ribociclib", "progression", 10],
        [1, 2, "fulvestrant", None, 11],
        [2, 1, "letrozole", None, 12],
    ]


def test_an_episode_without_linked_drugs_is_a_problem() -> None:
    episodes = pd.DataFrame(
        {
            "episode_id": [5],
            "person_id": [3],
            "episode_start_date": pd.to_datetime(["2020-01-01"]),
            "episode_end_date": pd.to_datetime(["2020-02-01"]),
            "episode_number": [1],
        }
    )
    lines, problems = lines_from_episodes(
        episodes, _exposures([]), pd.DataFrame({"episode_id": [], "event_id": []})
    )
    assert lines.empty
    assert [(p.table, p.row_id, p.rule) for p in problems] == [("episode", 5, "episode-drugs")]


def test_negative_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_gap_days"):
        RegimenRule(max_gap_days=-1)
