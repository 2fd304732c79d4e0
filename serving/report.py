"""The tumour-board report: one self-contained HTML page for a patient's latest decision.

:func:`render_report` scores the patient through the one scoring path (:mod:`linewise.serving.scoring`) and
fills ``serving/templates/report.html.j2``: header, warnings, the patient's timeline, survival curves
with interval bands, the ranked table of all 16 options, the waterfall of TBP versus the best switch,
provenance and limitations. The page needs no network: CSS is inline, figures are inline SVG drawn by
:mod:`linewise.serving.figures`, and there is no script. Jinja2 autoescapes every value.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
from typing import Any, Final

import jinja2

from linewise.features.patient import cut_document
from linewise.serving import figures
from linewise.serving.scoring import ScoringModel, score_patient_with_curves

TEMPLATE: Final = "report.html.j2"
#: Readable names of the candidate classes (``linewise.features.regimens.CANDIDATE_CLASSES``).
CANDIDATE_NAMES: Final = {
    "tbp": "Treatment beyond progression (TBP)",
    "cdk_same_et_switch": "Same CDK4/6 inhibitor, new endocrine partner",
    "cdk_switch": "Switch CDK4/6 inhibitor",
    "et_mono": "Endocrine monotherapy",
    "et_targeted": "Endocrine + PI3K/AKT/mTOR inhibitor",
    "oral_serd": "Oral SERD",
    "chemo": "Chemotherapy",
    "adc": "Antibody-drug conjugate",
}
#: Switches drawn besides TBP on the curves.
CURVE_SWITCHES: Final = 3
_FEATURE_NAMES: Final = {
    "age_at_decision": "age at decision (years)",
    "menopause_pre": "premenopausal",
    "menopause_peri": "perimenopausal",
    "histology_lobular": "lobular histology",
    "histology_other": "other histology",
    "er_percent": "ER (%)",
    "pgr_percent": "PgR (%)",
    "ki67_percent": "Ki-67 (%)",
    "ki67_known": "Ki-67 known",
    "her2_low": "HER2-low",
    "grade": "grade",
    "de_novo": "de novo metastatic",
    "decision_year": "year of decision",
    "months_since_metastatic_dx": "months since metastatic diagnosis",
    "ecog": "ECOG performance status",
    "ecog_known": "ECOG known",
    "visceral": "visceral metastases",
    "bone_only": "bone-only disease",
    "site_count": "number of metastatic sites",
    "new_site_count": "new sites at progression",
    "new_visceral_site": "new visceral site at progression",
    "oligoprogression": "oligoprogression",
    "current_line": "current line number",
    "months_on_current_line": "months on current line",
    "pfs1_months": "first-line PFS (months)",
    "previous_progressions": "previous progressions",
    "endocrine_primary_resistance": "primary endocrine resistance",
    "pathway_altered": "PI3K/AKT pathway altered",
    "pathway_tested": "PI3K/AKT pathway tested",
    "action_local_therapy": "option: local therapy",
}


def option_name(option: str) -> str:
    """Readable name of an option label such as ``tbp + local therapy``."""
    candidate, _, local = option.partition(" + ")
    name = CANDIDATE_NAMES.get(candidate, candidate)
    return f"{name} + local therapy" if local else name


def feature_label(feature: str) -> str:
    """Readable name of a model input column (decision feature or treatment column)."""
    if feature in _FEATURE_NAMES:
        return _FEATURE_NAMES[feature]
    if feature.startswith("action_"):
        klass = feature.removeprefix("action_")
        return f"option: {CANDIDATE_NAMES[klass].lower() if klass in CANDIDATE_NAMES else klass}"
    for suffix, words in (("_mutated", "mutated"), ("_tested", "tested")):
        if feature.endswith(suffix):
            return f"{feature.removesuffix(suffix).upper()} {words}"
    if feature.startswith("site_"):
        return f"{feature.removeprefix('site_').replace('_', ' ')} metastases"
    for prefix in ("prior_", "current_"):
        if feature.startswith(prefix):
            drug = feature.removeprefix(prefix).replace("_", " ")
            return f"{prefix.rstrip('_')} {drug.replace('cdk46i', 'CDK4/6 inhibitor')}"
    return feature.replace("_", " ")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _with_interval(summary: dict[str, Any], key: str, signed: bool = False) -> dict[str, str]:
    value, lower, upper = (summary.get(f"{key}{b}") for b in ("", "_lower", "_upper"))
    if key == "median" and value is None:
        return {"value": "not reached", "interval": "by 36 months"}
    text = "—" if value is None else (f"{value:+.1f}" if signed else f"{value:.1f}")
    return {"value": text, "interval": f"{_fmt(lower)} to {_fmt(upper)}"}


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in result["candidates"]:
        pfs, overall = entry["rwpfs"], entry["os"]
        rows.append(
            {
                "rank": entry["rank"],
                "option": entry["option"],
                "name": option_name(entry["option"]),
                "support": entry["support"],
                "propensity": entry["propensity"],
                "probability_best": _percent(entry["probability_best"]),
                "median": _with_interval(pfs, "median"),
                "rmst12": _with_interval(pfs, "rmst12"),
                "rmst24": _with_interval(pfs, "rmst24"),
                "vs_tbp": _with_interval(pfs, "rmst24_vs_tbp", signed=True),
                "os_rmst24": _with_interval(overall, "rmst24"),
            }
        )
    return rows


def _warnings(result: dict[str, Any]) -> dict[str, Any]:
    """List the scope warnings and the unsupported options; say whether the recommendation is uncertain."""
    min_support = result["model"].get("min_support")
    unsupported = [
        {"option": e["option"], "name": option_name(e["option"]), "propensity": e["propensity"]}
        for e in sorted(result["candidates"], key=lambda e: e["option"])
        if not e["support"]
    ]
    ranked = [e for e in result["candidates"] if e["rank"] is not None]
    best = ranked[0] if ranked else None
    uncertain = None
    if best is not None and best["option"] != "tbp":
        pfs = best["rwpfs"]
        lower, upper = pfs["rmst24_vs_tbp_lower"], pfs["rmst24_vs_tbp_upper"]
        if lower is None or upper is None or lower <= 0.0 <= upper:
            uncertain = {
                "option": best["option"],
                "name": option_name(best["option"]),
                "difference": _with_interval(pfs, "rmst24_vs_tbp", signed=True),
            }
    return {
        "scope": result["scope"]["warnings"],
        "min_support": min_support,
        "unsupported": unsupported,
        "none_supported": best is None,
        "recommended": best,
        "uncertain": uncertain,
    }


def _curve_options(result: dict[str, Any]) -> list[str]:
    """TBP with and without local therapy, then the best supported switches."""
    switches = [
        e["option"] for e in result["candidates"] if e["rank"] is not None and e["candidate"] != "tbp"
    ]
    return ["tbp", "tbp + local therapy", *switches[:CURVE_SWITCHES]]


def _scale_words(contrast: dict[str, Any]) -> dict[str, str]:
    """Say in words what the waterfall's numbers are and which sign favours which side."""
    scale = str(contrast["scale"])
    if contrast["higher_is_better"]:
        return {
            "scale": scale,
            "unit": "months",
            "reading": "The values are differences in months of rwPFS restricted mean survival to 24 "
            "months, TBP minus the switch: a positive value favours TBP, a negative value favours the "
            "switch.",
        }
    return {
        "scale": scale,
        "unit": "log hazard ratio",
        "reading": "The values are differences in the log hazard ratio of rwPFS, TBP minus the switch: "
        "a positive value means a higher hazard of progression under TBP and favours the switch; a "
        "negative value favours TBP. exp(difference) is the hazard ratio of TBP against the switch.",
    }


def _sensitivity(sensitivity: dict[str, Any], level: float) -> dict[str, Any]:
    """Return the first-versus-second contrast with the options' names and the interval's level."""
    names = {
        key: option_name(sensitivity[f"{key}_option"]) if sensitivity[f"{key}_option"] else None
        for key in ("first", "second")
    }
    return {
        **sensitivity,
        "first_name": names["first"],
        "second_name": names["second"],
        "level": f"{level * 100:.0f}%",
    }


def report_context(
    model: ScoringModel,
    document: dict[str, Any],
    as_of: dt.date | None = None,
    source: str = "patient",
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Score a patient and gather everything the template shows (no markup).

    Parameters
    ----------
    model, document, as_of, source, generated_at
        As :func:`render_report`.

    Returns
    -------
    dict
        The template's variables.

    Raises
    ------
    linewise.features.errors.LockValidationError, linewise.serving.scoring.ScoringError
        As :func:`linewise.serving.scoring.score_patient`.
    """
    result, curve_data = score_patient_with_curves(model, document, as_of, source)
    shown = cut_document(document, as_of) if as_of is not None else document
    origin = dt.date.fromisoformat(shown["patient"]["metastatic_dx_date"])
    decision_date = origin + dt.timedelta(days=result["decision_day"])
    options = _curve_options(result)
    contrast = result["tbp_versus_best_switch"]
    level = float(model.provenance.get("interval") or curve_data["interval"])
    generated = generated_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "result": result,
        "patient_key": result["patient_key"],
        "centre": shown["patient"].get("center_id"),
        "as_of": result["as_of"],
        "decision": {
            "line_number": result["line_number"],
            "day": result["decision_day"],
            "date": decision_date.isoformat(),
            "months": round(result["decision_day"] / figures.DAYS_PER_MONTH, 1),
        },
        "level": f"{level * 100:.0f}%",
        "generated": generated.isoformat(),
        "version": _package_version(),
        "warnings": _warnings(result),
        "rows": _rows(result),
        "timeline": figures.timeline(shown, result["decision_day"], result["line_number"]),
        "curves": figures.curves(curve_data, options, {o: option_name(o) for o in options}),
        "curve_support": {e["option"]: e["support"] for e in result["candidates"]},
        "contrast": {
            "tbp": contrast["tbp_option"],
            "tbp_name": option_name(contrast["tbp_option"]),
            "switch": contrast["switch_option"],
            "switch_name": option_name(contrast["switch_option"]),
            **_scale_words(contrast),
        },
        "waterfall": figures.waterfall(contrast, feature_label),
        "sensitivity": _sensitivity(result["sensitivity"], level),
        "provenance": {**model.provenance, "resolved_uri": model.resolved_uri},
    }


def _package_version() -> str:
    try:
        return importlib.metadata.version("linewise")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


@functools.cache
def environment() -> jinja2.Environment:
    """Return the report's Jinja2 environment: the package's templates, autoescaping on, strict undefined."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("linewise.serving", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_context(context: dict[str, Any]) -> str:
    """Fill the report template with a :func:`report_context` (autoescaped)."""
    return environment().get_template(TEMPLATE).render(**context)


def render_report(
    model: ScoringModel,
    document: dict[str, Any],
    as_of: dt.date | None = None,
    source: str = "patient",
    *,
    generated_at: dt.datetime | None = None,
) -> str:
    """Render the tumour-board report of a patient's latest decision as one self-contained HTML page.

    Parameters
    ----------
    model : ScoringModel
        Loaded with :func:`linewise.serving.scoring.load_scoring_model`.
    document : dict
        A patient document (:mod:`linewise.features.patient`).
    as_of : date, optional
        Report on the history as it stood on this date.
    source : str
        Name of the document in error messages.
    generated_at : datetime, optional
        Time stamp printed on the page (default: now, UTC).

    Returns
    -------
    str
        The HTML page: inline CSS and SVG, no script, no external resource.

    Raises
    ------
    linewise.features.errors.LockValidationError
        If the document breaks the patient-file contract.
    linewise.serving.scoring.ScoringError
        If it has no decision to score, or ``as_of`` is after the document's own.
    """
    return render_context(report_context(model, document, as_of, source, generated_at))
