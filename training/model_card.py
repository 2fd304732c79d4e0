"""The model card of a training run, in Markdown, with the headings of TRIPOD+AI.

:func:`model_card` renders a :class:`linewise.training.card_facts.ModelCardFacts`, which holds aggregated
facts only (counts, shares, metrics with their intervals, settings) and is checked for exact dates and
identifiers when built (see :mod:`linewise.training.card_facts`). The rendered card is checked for exact dates
once more. The card repeats nothing at the level of a patient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from linewise.training.card_facts import HyperValue, ModelCardFacts
from linewise.training.text_guard import check_dates

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
_LEARNERS_TEXT: Final = {
    "s": "S-learner: the outcome model itself",
    "t": "T-learner: one outcome model per candidate class",
    "dr": "DR-learner: a forest of cross-fitted doubly robust pseudo-outcome differences from TBP",
    "causal_forest": "causal forest on cross-fitted residuals, differences from TBP",
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
        f"- Family: `{facts.family}`, one model per endpoint with the option as input; its curves, "
        "medians, OS and explanations are shown for every option.\n"
        f"- Learner that ranks the options by rwPFS RMST24: `{_cell(facts.learner)}` "
        f"({_LEARNERS_TEXT.get(facts.learner, 'an ensemble: the mean of its members')}).\n"
        f"- Weighting: `{facts.weighting}`: {weighting}.\n"
        f"- Intervals of each option: the central {100 * facts.bootstrap_interval:.3g}% of "
        f"{facts.n_bootstrap} patient-level bootstrap refits (a patient's decisions stay together).\n"
        f"- Learner, family and hyperparameters chosen by the selection ({_cell(facts.search)}):",
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
