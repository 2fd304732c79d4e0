"""The model card: every TRIPOD+AI heading, the facts given, and the guard against dates and identifiers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from linewise.features.examples import FEATURES
from linewise.models.candidates import OPTIONS, TREATMENT_COLUMNS
from linewise.training.card_facts import Metric, ModelCardFacts, SubgroupMetric
from linewise.training.model_card import model_card
from linewise.training.text_guard import check_aggregate_text

POSITIVITY = {option.label: 0.01 * (i + 1) for i, option in enumerate(OPTIONS)}


def _facts(**changes: object) -> ModelCardFacts:
    facts = ModelCardFacts(
        model_name="linewise-recommender",
        model_version="7",
        lock_id="sim-lock-2025-03",
        lock_date=dt.date(2025, 3, 31),
        lock_source="simulated by linewise (seed 11); invented patients",
        n_patients=6000,
        n_centres=12,
        n_decisions=14321,
        diagnosis_years=(2015, 2024),
        pfs_events=11876,
        os_events=5432,
        n_features=len(FEATURES),
        treatment_columns=TREATMENT_COLUMNS,
        missing_shares={"biomarkers": 0.2345, "ECOG": 0.5, "genomic tests": 0.0},
        family="boosted_cox",
        learner="s+dr",
        weighting="ipw",
        hyperparameters={"n_estimators": 300, "max_depth": 3, "learning_rate": 0.05, "tree_method": "hist"},
        search="grid of 12 settings, 5 folds grouped by patient, Harrell's C of rwPFS",
        n_bootstrap=20,
        min_support=0.05,
        evaluation="20% of patients held out, split by patient",
        test_patients=1200,
        test_decisions=2876,
        performance=(
            Metric("Harrell's C, rwPFS", 0.71234, 0.69876, 0.72543),
            Metric("integrated Brier score, rwPFS", 0.1587, 0.1523, 0.1651),
            Metric("calibration ICI at 12 months", float("nan"), float("nan"), float("nan")),
        ),
        subgroups=(
            SubgroupMetric("line number", "2", 1234, "Harrell's C, rwPFS", 0.7012, 0.6811, 0.7213),
            SubgroupMetric("visceral disease", "yes", 987, "Harrell's C, rwPFS", 0.6898, 0.6642, 0.7154),
        ),
        insufficient_evidence=POSITIVITY,
        run_id="0123456789abcdef0123456789abcdef",
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def card() -> str:
    return model_card(_facts())


def test_every_tripod_ai_heading_in_order(card: str) -> None:
    headings = re.findall(r"^## (.+)$", card, flags=re.MULTILINE)
    # the TRIPOD+AI items, grouped, written out here rather than read from the card's own list
    assert headings == [
        "Title and version",
        "Data source and dates",
        "Population",
        "Outcomes and horizons",
        "Predictors",
        "Missing data",
        "Model",
        "Performance with intervals",
        "Subgroups",
        "Intended use",
        "Limitations",
    ]
    assert card.startswith("# Model card: linewise-recommender, version 7\n")


@pytest.mark.parametrize(
    "text",
    [
        "sim-lock-2025-03",
        "2025-03-31",
        "6,000 patients from 12 centres",
        "14,321 decisions",
        "from 2015 to 2024",
        "11,876 events",
        "5,432 deaths",
        f"{len(FEATURES)} decision features",
        "`action_tbp`",
        "`action_local_therapy`",
        "| biomarkers | 23.4% |",
        "| ECOG | 50.0% |",
        "| `n_estimators` | 300 |",
        "| `learning_rate` | 0.05 |",
        "| `tree_method` | hist |",
        "grid of 12 settings",
        "central 90% of 20 patient-level bootstrap refits",
        "1,200 patients, 2,876 decisions",
        "| Harrell's C, rwPFS | 0.712 | 0.699 to 0.725 |",
        "| integrated Brier score, rwPFS | 0.159 | 0.152 to 0.165 |",
        "| calibration ICI at 12 months | n/a | n/a |",
        "| line number | 2 | 1,234 | Harrell's C, rwPFS | 0.701 | 0.681 to 0.721 |",
        "| visceral disease | yes | 987 | Harrell's C, rwPFS | 0.690 | 0.664 to 0.715 |",
        "RMST) to 12 and 24 months",
        "0.5-month grid to 36 months",
        "is below 0.05;",
        "docs/features.md",
        "HR+/HER2-",
        "Not a replacement for clinical judgement",
        "Unmeasured confounding by indication",
        "not the heterogeneity of one patient's own outcome",
    ],
    ids=lambda text: text[:30],
)
def test_card_shows_the_facts(card: str, text: str) -> None:
    assert text in card


def test_positivity_share_of_every_option(card: str) -> None:
    assert "Share of held-out decisions where each option is flagged" in card
    for option, share in POSITIVITY.items():
        assert f"| {option} | {100 * share:.1f}% |" in card


def test_simulated_caveat_only_for_simulated_locks(card: str) -> None:
    assert "**Simulated data**" in card
    real = model_card(_facts(lock_source="hospital export, schema 1"))
    assert "Simulated data" not in real


def test_table_cells_are_escaped() -> None:
    card = model_card(_facts(missing_shares={"a | b\nc": 0.1}))
    assert "| a \\| b c | 10.0% |" in card


@pytest.mark.parametrize(
    "changes",
    [
        {"search": "grid searched on 2024-06-01"},
        {"evaluation": "patients diagnosed before 03/04/2023"},
        {"extra_limitations": ("follow-up ends 2024.12.31",)},
        {"missing_shares": {"labs up to 2024-01-15": 0.1}},
        {"lock_id": "lock-2024-01-15"},
    ],
    ids=["search", "evaluation", "limitation", "mapping-key", "lock-id"],
)
def test_rejects_exact_dates(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="holds an exact date"):
        _facts(**changes)


def test_the_lock_date_is_allowed() -> None:
    card = model_card(_facts(evaluation="decisions up to the lock date 2025-03-31"))
    assert "lock date 2025-03-31" in card


@pytest.mark.parametrize(
    "changes",
    [
        {"extra_limitations": ("worst case was patient 3f2a9c0d1e4b5a67",)},
        {"evaluation": "SIM-000123 excluded"},
        {"subgroups": (SubgroupMetric("patient", "EX-001", 1, "C", 0.5, 0.4, 0.6),)},
    ],
    ids=["pseudonym", "raw-id", "subgroup-level"],
)
def test_rejects_identifiers(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="patient identifier"):
        _facts(**changes)


def test_error_does_not_repeat_the_text() -> None:
    with pytest.raises(ValueError, match="holds an exact date") as error:
        check_aggregate_text("seen on 2023-04-01", what="note")
    assert "2023-04-01" not in str(error.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_patients": -1}, "n_patients must be a non-negative integer"),
        ({"missing_shares": {"ECOG": 1.5}}, "missing share of 'ECOG'"),
        ({"insufficient_evidence": {"tbp": -0.1}}, "insufficient-evidence share of 'tbp'"),
        ({"diagnosis_years": (2024, 2015)}, "diagnosis_years must be two years"),
    ],
    ids=["count", "missing-share", "positivity-share", "years"],
)
def test_rejects_invalid_numbers(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _facts(**changes)


def test_rejects_reversed_interval() -> None:
    with pytest.raises(ValueError, match=r"lower bound 0\.8 is above its upper bound 0\.6"):
        Metric("C", 0.7, 0.8, 0.6)


def test_numpy_counts_are_accepted() -> None:
    import numpy as np

    card = model_card(_facts(n_patients=np.int64(6000)))
    assert "6,000 patients" in card


def test_facts_are_immutable() -> None:
    facts = _facts()
    with pytest.raises(TypeError, match="does not support item assignment"):
        facts.missing_shares["ECOG"] = 0.0  # type: ignore[index]


def test_large_and_small_numbers_are_readable() -> None:
    card = model_card(_facts(performance=(Metric("RMST24 months", 123.456, 101.2, 140.9),)))
    assert "| RMST24 months | 123 | 101 to 141 |" in card
