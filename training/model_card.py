"""The model card of a training run, in Markdown, with the headings of TRIPOD+AI.

:func:`model_card` renders a :class:`ModelCardFacts` that the training code fills with aggregated facts
only: counts, shares, metrics with their intervals, settings. The card repeats nothing at the level of
a patient.

The guard
---------
Every string in the facts is checked when the facts are built (and the rendered card once more), so
that a raw identifier or an exact date cannot reach the card by accident (``ValueError``):

- **exact dates**: ``YYYY-MM-DD`` (also with ``/`` or ``.``) and ``DD-MM-YYYY``. The one exact date a
  card may show is the lock date, which is a typed field (:class:`datetime.date`); its ISO form is
  allowed in every string. The period of the data is given only as years of metastatic diagnosis;
- **identifiers** (:func:`training.text_guard.check_aggregate_text`): a 16-character hexadecimal
  token (the length of a pseudonym, :mod:`features.pseudonym`) and a raw patient identifier such as
  ``SIM-000123`` or ``EX-001`` (letters, a hyphen, three or more digits that are not a year). The lock
  id names a lock, not a patient, and is checked for dates only.

Error messages name the field and the kind of pattern, never the offending text.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Final

from features.regimens import CANDIDATE_CLASSES
from training.text_guard import check_aggregate_text, check_dates

#: The section headings of every card, in order (TRIPOD+AI items, grouped).
SECTIONS: Final = (
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
)
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
    hyperparameters : mapping of str to value
        Hyperparameters chosen by the search.
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


# ----------------------------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------------------------


def _number(value: float, *, trailing_zeros: bool = True) -> str:
    """Three significant digits (no exponent from 100 up); ``n/a`` for nan.

    Metrics keep trailing zeros (``0.700``) so that table columns line up; settings drop them (``0.05``).
    """
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:#.3g}".rstrip(".") if trailing_zeros else f"{value:.3g}"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _interval(lower: float, upper: float) -> str:
    if math.isnan(lower) or math.isnan(upper):
        return "n/a"
    return f"{_number(lower)} to {_number(upper)}"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _value(value: HyperValue) -> str:
    if isinstance(value, bool | str):
        return _cell(str(value))
    if isinstance(value, int):
        return str(value)
    return _number(float(value), trailing_zeros=False)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _section(heading: str, *blocks: str) -> str:
    return "\n\n".join((f"## {heading}", *blocks))


def _months(value: float) -> str:
    return f"{value:g} months"


# ----------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------

_TRIPOD_AI: Final = (
    "Collins GS et al. TRIPOD+AI statement: updated guidance for reporting clinical prediction models "
    "that use regression or machine learning methods. BMJ 2024;385:e078378"
)
_WEIGHTINGS: Final = {
    "ipw": "stabilised inverse probability of the candidate class actually given, truncated at its 99th "
    "percentile",
    "overlap": "generalised overlap weights of the candidate class",
    "none": "none (the naive model: no adjustment for confounding)",
}


def _title(facts: ModelCardFacts) -> str:
    run = f"; training run `{facts.run_id}`" if facts.run_id else ""
    return "\n\n".join(
        (
            f"# Model card: {facts.model_name}, version {facts.model_version}",
            _section(
                SECTIONS[0],
                f"- Model: `{facts.model_name}` version {facts.model_version}, registered in MLflow{run}.\n"
                "- Predicts real-world progression-free survival (rwPFS) and overall survival (OS) under "
                "each candidate next step after a progression of HR+/HER2- advanced breast cancer, "
                "adjusted for confounding by indication, with intervals and a support flag.\n"
                f"- Reported following TRIPOD+AI ({_TRIPOD_AI}).",
            ),
        )
    )


def _data_source(facts: ModelCardFacts) -> str:
    first, last = facts.diagnosis_years
    return _section(
        SECTIONS[1],
        f"- Data lock `{facts.lock_id}`, locked on {facts.lock_date.isoformat()}; source: "
        f"{_cell(facts.lock_source)}.\n"
        f"- {facts.n_patients:,} patients from {facts.n_centres:,} centres; "
        f"{facts.n_decisions:,} decisions learned from.\n"
        f"- Metastatic diagnoses from {first} to {last}. The period is given in years of diagnosis "
        "only; no exact date other than the lock date is reported.",
    )


def _population(facts: ModelCardFacts) -> str:
    classes = ", ".join(f"`{name}`" for name in facts.candidate_classes)
    return _section(
        SECTIONS[2],
        "- Eligibility: patients with hormone-receptor-positive, HER2-negative (HR+/HER2-) advanced "
        "breast cancer, at every progression on any line of treatment while alive (a decision point, "
        "`docs/features.md`).\n"
        f"- Decisions learned from: those whose action is a candidate class ({classes}), with or "
        "without loco-regional therapy within 30 days, and a positive follow-up. Decisions followed by "
        "no treatment, by another class, or still open are excluded.",
    )


def _outcomes(facts: ModelCardFacts) -> str:
    horizons = " and ".join(f"{h:g}" for h in facts.horizons)
    return _section(
        SECTIONS[3],
        "- rwPFS: from the decision to the next progression or death, whichever comes first, else "
        f"censored at the last contact ({facts.pfs_events:,} events).\n"
        f"- OS: from the decision to death, else censored at the last contact ({facts.os_events:,} "
        "deaths).\n"
        f"- Reported for each option: restricted mean survival time (RMST) to {horizons} months, the "
        f"median (not reached when the curve stays above 0.5 to {_months(facts.grid_end)}), and the "
        f"survival curve on a {facts.grid_step:g}-month grid to {_months(facts.grid_end)}. Times are "
        "months (days / 30.4375).",
    )


def _predictors(facts: ModelCardFacts) -> str:
    columns = ", ".join(f"`{name}`" for name in facts.treatment_columns)
    return _section(
        SECTIONS[4],
        f"- {facts.n_features} decision features, each computed only from records dated on or before "
        "the decision day; `docs/features.md` defines every one.\n"
        f"- {len(facts.treatment_columns)} treatment columns encode the option: {columns}. "
        "Counterfactual predictions set them to each option in turn.",
    )


def _missing(facts: ModelCardFacts) -> str:
    rows = [(_cell(group), _percent(share)) for group, share in facts.missing_shares.items()]
    return _section(
        SECTIONS[5],
        _table(("feature group", "share missing"), rows) if rows else "No missing shares were given.",
        "- Missing values stay missing (NaN): the trees handle them natively, and `*_known` / `*_tested` "
        "indicators mark where absence is informative. No imputation is fitted on all rows.\n"
        "- The propensity model imputes the training median inside its pipeline, fitted on training "
        "rows only.",
    )


def _model(facts: ModelCardFacts) -> str:
    rows = [(f"`{_cell(name)}`", _value(value)) for name, value in facts.hyperparameters.items()]
    weighting = _WEIGHTINGS.get(facts.weighting, _cell(facts.weighting))
    return _section(
        SECTIONS[6],
        f"- Family: `{facts.family}`, one model per endpoint with the option as input (an S-learner).\n"
        f"- Weighting: `{facts.weighting}`: {weighting}.\n"
        f"- Intervals of each option: the central {100 * facts.bootstrap_interval:.3g}% of "
        f"{facts.n_bootstrap} patient-level bootstrap refits (a patient's decisions stay together).\n"
        f"- Hyperparameters chosen by the search ({_cell(facts.search)}):",
        _table(("hyperparameter", "value"), rows) if rows else "No hyperparameters were given.",
    )


def _performance(facts: ModelCardFacts) -> str:
    rows = [(_cell(m.name), _number(m.estimate), _interval(m.lower, m.upper)) for m in facts.performance]
    return _section(
        SECTIONS[7],
        f"Held-out set: {_cell(facts.evaluation)}; {facts.test_patients:,} patients, "
        f"{facts.test_decisions:,} decisions.",
        _table(("metric", "estimate", "95% interval"), rows) if rows else "No held-out metrics were given.",
    )


def _subgroups(facts: ModelCardFacts) -> str:
    rows = [
        (
            _cell(s.subgroup),
            _cell(s.level),
            f"{s.n_decisions:,}",
            _cell(s.metric),
            _number(s.estimate),
            _interval(s.lower, s.upper),
        )
        for s in facts.subgroups
    ]
    header = ("subgroup", "level", "decisions", "metric", "estimate", "95% interval")
    return _section(SECTIONS[8], _table(header, rows) if rows else "No subgroup metrics were given.")


def _intended_use(facts: ModelCardFacts) -> str:
    return _section(
        SECTIONS[9],
        "- Decision support for a multidisciplinary tumour board choosing the next step after a "
        "progression: the predicted outcomes of every option, side by side, with intervals and "
        "support flags.\n"
        "- Not a replacement for clinical judgement, and not a recommendation to act on alone.\n"
        "- For HR+/HER2- advanced breast cancer only; not for other subtypes, early disease, or "
        "options outside the candidate classes.",
    )


def _limitations(facts: ModelCardFacts) -> str:
    rows = [(_cell(option), _percent(share)) for option, share in facts.insufficient_evidence.items()]
    bullets = [
        "- Unmeasured confounding by indication: clinicians choose the next step on prognosis that the "
        "lock does not fully record (for example, patients kept on treatment beyond progression are "
        "selected for a good prognosis). Weighting on recorded features cannot remove that part.",
        '- Positivity: an option is flagged "insufficient evidence" when the propensity of its class, '
        "or the probability of its local-therapy choice within the class, is below "
        f"{_number(facts.min_support, trailing_zeros=False)}; it is still predicted but never ranked or "
        f"recommended. Share of {_cell(facts.positivity_decisions)} where each option is flagged:",
    ]
    after = [
        "- Intervals reflect the uncertainty of the model's estimate for patients with these recorded "
        "features, not the heterogeneity of one patient's own outcome.",
    ]
    if facts.is_simulated:
        after.append(
            "- **Simulated data**: the lock source says the data are simulated; these figures describe "
            "the simulator, not real patients, and say nothing about clinical performance."
        )
    after += [f"- {_cell(text)}" for text in facts.extra_limitations]
    table = _table(("option", "share flagged"), rows) if rows else "No positivity shares were given."
    return _section(SECTIONS[10], "\n".join(bullets), table, "\n".join(after))


def model_card(facts: ModelCardFacts) -> str:
    """Render the model card of a training run as Markdown, with the TRIPOD+AI headings.

    Parameters
    ----------
    facts : ModelCardFacts
        Aggregated facts of the run (validated when built, see the module's guard).

    Returns
    -------
    str
        Markdown: a title, then one ``##`` section per entry of :data:`SECTIONS`, in that order.
        Numbers have three significant digits (no exponent from 100 up), shares are percentages.

    Raises
    ------
    ValueError
        If the rendered card holds an exact date other than the lock date (the facts are checked
        when built; this is a second guard on the text).
    """
    parts = (
        _title(facts),
        _data_source(facts),
        _population(facts),
        _outcomes(facts),
        _predictors(facts),
        _missing(facts),
        _model(facts),
        _performance(facts),
        _subgroups(facts),
        _intended_use(facts),
        _limitations(facts),
    )
    card = "\n\n".join(parts) + "\n"
    check_dates(card, (facts.lock_date.isoformat(),), "the model card")
    return card
