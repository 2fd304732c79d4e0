"""The facts a model card shows (aggregates only), validated when they are built.

:class:`ModelCardFacts` is filled by the training code with counts, shares, metrics with their
intervals and settings; :func:`linewise.training.model_card.model_card` renders it. Nothing in it is at the
level of a patient.

The guard
---------
Every string in the facts is checked when the facts are built, so that a raw identifier or an exact
date cannot reach the card by accident (``ValueError``):

- **exact dates**: ``YYYY-MM-DD`` (also with ``/`` or ``.``) and ``DD-MM-YYYY``. The one exact date a
  card may show is the lock date, which is a typed field (:class:`datetime.date`); its ISO form is
  allowed in every string. The period of the data is given only as years of metastatic diagnosis;
- **identifiers** (:func:`linewise.training.text_guard.check_aggregate_text`): a 16-character hexadecimal
  token (the length of a pseudonym, :mod:`linewise.features.pseudonym`) and a raw patient identifier such as
  ``SIM-000123`` or ``EX-001`` (letters, a hyphen, three or more digits that are not a year). The lock
  id names a lock, not a patient, and is checked for dates only.

Error messages name the field and the kind of pattern, never the offending text. Counts must be
non-negative integers, shares lie in [0, 1], metric intervals are finite (or nan) with lower <= upper.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Final

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.training.text_guard import check_aggregate_text, check_dates

#: A lock source that describes invented data.
_SIMULATED: Final = re.compile(r"simulat|synthetic|invented", re.IGNORECASE)
#: Plausible years of metastatic diagnosis.
_YEARS: Final = (1970, 2100)

HyperValue = float | int | str | bool


@dataclass(frozen=True)
class Metric:
    """A held-out metric with its 95% interval (nan where undefined)."""

    name: str
    estimate: float
    lower: float
    upper: float

    def __post_init__(self) -> None:
        _check_interval(self.estimate, self.lower, self.upper)


@dataclass(frozen=True)
class SubgroupMetric:
    """A held-out metric within one subgroup (``subgroup`` = ``level``), with its 95% interval."""

    subgroup: str
    level: str
    n_decisions: int
    metric: str
    estimate: float
    lower: float
    upper: float

    def __post_init__(self) -> None:
        _check_count("a subgroup's n_decisions", self.n_decisions)
        _check_interval(self.estimate, self.lower, self.upper)


@dataclass(frozen=True)
class ModelCardFacts:
    """Everything a model card shows, filled by the training code; validated when built.

    Attributes
    ----------
    model_name, model_version : str
        Registered model name and version.
    lock_id, lock_date, lock_source : str, date, str
        The data lock's manifest. ``lock_source`` decides the simulated-data caveat.
    n_patients, n_centres, n_decisions : int
        Patients and centres in the lock; decisions learned from (a candidate action).
    diagnosis_years : tuple of int
        First and last year of metastatic diagnosis in the lock.
    pfs_events, os_events : int
        Progressions or deaths, and deaths, after the decisions learned from.
    n_features : int
        Decision features (``docs/features.md``).
    treatment_columns : tuple of str
        Columns that encode the option.
    missing_shares : mapping of str to float
        Share of missing values per feature group, in [0, 1].
    family, weighting : str
        Outcome model family and balancing weights.
    learner : str
        What ranks the options (:mod:`linewise.models.ranking`): ``s``, ``t``, ``dr``, ``causal_forest``
        or an ensemble of them joined by ``+``.
    hyperparameters : mapping of str to value
        Hyperparameters chosen by the selection.
    search : str
        How they were chosen (e.g. grid, folds grouped by patient).
    n_bootstrap : int
        Patient-level bootstrap refits behind the option intervals.
    bootstrap_interval : float
        Central share of the replicates that an option interval covers.
    min_support : float
        Propensity below which an option is flagged "insufficient evidence".
    evaluation : str
        How the held-out set was formed (e.g. 20% of patients, split by patient).
    test_patients, test_decisions : int
        Size of the held-out set.
    performance : tuple of Metric
        Held-out metrics, each with a 95% interval.
    subgroups : tuple of SubgroupMetric
        Held-out metrics by subgroup, each with a 95% interval.
    insufficient_evidence : mapping of str to float
        Per option label, the share of decisions where it is flagged "insufficient evidence", in [0, 1].
    positivity_decisions : str
        The decisions those shares are taken over.
    run_id : str, optional
        MLflow run of the training.
    extra_limitations : tuple of str
        Further limitations, one sentence each.
    horizons : tuple of float
        RMST horizons in months.
    grid_step, grid_end : float
        Time grid of the curves, months.
    candidate_classes : tuple of str
        Candidate classes of the actions learned from.
    """

    model_name: str
    model_version: str
    lock_id: str
    lock_date: dt.date
    lock_source: str
    n_patients: int
    n_centres: int
    n_decisions: int
    diagnosis_years: tuple[int, int]
    pfs_events: int
    os_events: int
    n_features: int
    treatment_columns: tuple[str, ...]
    missing_shares: Mapping[str, float]
    family: str
    learner: str
    weighting: str
    hyperparameters: Mapping[str, HyperValue]
    search: str
    n_bootstrap: int
    min_support: float
    evaluation: str
    test_patients: int
    test_decisions: int
    performance: tuple[Metric, ...]
    subgroups: tuple[SubgroupMetric, ...]
    insufficient_evidence: Mapping[str, float]
    positivity_decisions: str = "held-out decisions"
    bootstrap_interval: float = 0.9
    run_id: str | None = None
    extra_limitations: tuple[str, ...] = ()
    horizons: tuple[float, ...] = (12.0, 24.0)
    grid_step: float = 0.5
    grid_end: float = 36.0
    candidate_classes: tuple[str, ...] = CANDIDATE_CLASSES

    def __post_init__(self) -> None:
        for name in ("missing_shares", "hyperparameters", "insufficient_evidence"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        _check_texts(self)  # first: the messages of the number checks name mapping keys
        _check_numbers(self)

    @property
    def is_simulated(self) -> bool:
        """Whether the lock source says the data are simulated, synthetic or invented."""
        return bool(_SIMULATED.search(self.lock_source))


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, found {value!r}")


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a share in [0, 1], found {value!r}")


def _check_interval(estimate: float, lower: float, upper: float) -> None:
    """Finite or nan, lower <= upper; the message leaves out the metric's name (checked text later)."""
    if any(math.isinf(value) for value in (estimate, lower, upper)):
        raise ValueError("a metric's estimate and interval must be finite or nan")
    if lower > upper:
        raise ValueError(f"a metric's lower bound {lower} is above its upper bound {upper}")


def _check_numbers(facts: ModelCardFacts) -> None:
    for name in ("n_patients", "n_centres", "n_decisions", "pfs_events", "os_events", "n_features"):
        _check_count(name, getattr(facts, name))
    for name in ("n_bootstrap", "test_patients", "test_decisions"):
        _check_count(name, getattr(facts, name))
    first, last = facts.diagnosis_years
    if not _YEARS[0] <= first <= last <= _YEARS[1]:
        raise ValueError(f"diagnosis_years must be two years, first <= last, found {facts.diagnosis_years}")
    for group, share in facts.missing_shares.items():
        _check_share(f"missing share of {group!r}", share)
    for option, share in facts.insufficient_evidence.items():
        _check_share(f"insufficient-evidence share of {option!r}", share)
    for name in ("min_support", "bootstrap_interval"):
        _check_share(name, getattr(facts, name))
    if not (facts.grid_step > 0 and facts.grid_end > facts.grid_step and all(h > 0 for h in facts.horizons)):
        raise ValueError("grid_step, grid_end and horizons must be positive, with grid_end > grid_step")


def _check_texts(facts: ModelCardFacts) -> None:
    allowed = (facts.lock_date.isoformat(),)
    check_dates(facts.lock_id, allowed, "ModelCardFacts.lock_id")
    for name, text in _strings(facts):
        check_aggregate_text(text, allowed_dates=allowed, what=f"ModelCardFacts.{name}")


def _strings(value: Any, name: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside the facts (but the lock id), with the field it sits in."""
    if isinstance(value, str):
        yield name, value
    elif is_dataclass(value) and not isinstance(value, type):
        for item in fields(value):
            if item.name != "lock_id":
                yield from _strings(getattr(value, item.name), f"{name}.{item.name}".lstrip("."))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key, name)
            yield from _strings(item, name)
    elif isinstance(value, tuple):
        for item in value:
            yield from _strings(item, name)
