"""The service's request and response bodies as pydantic models: what the OpenAPI document shows.

The request models describe the patient document of :mod:`linewise.features.patient` (records with their known
fields and JSON types, dates as ``YYYY-MM-DD`` text) so that clients and schemathesis see its shape;
they check structure only. The contract's rules (codes, ranges, calendar dates, the order of lines)
stay with :func:`linewise.features.patient.load_patient`, which reads the document the client sent.

The response models describe the ``linewise score --json`` document
(:func:`linewise.serving.scoring.score_patient`); the service returns that document as it is, so the models
document it and tests check it against them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

#: ISO date text; whether the date exists in the calendar is the loader's rule ``type-date``.
DATE_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}$"

DateText = Annotated[StrictStr, Field(pattern=DATE_PATTERN, examples=["2024-03-01"])]
Number = StrictInt | StrictFloat
#: Longest text of one field (a '+'-joined list of drug codes stays far below it).
TEXT_MAX: Final = 1000
Code = Annotated[StrictStr, Field(max_length=TEXT_MAX)]


class _Record(BaseModel):
    """A record of the patient document: known fields only (the loader's ``patient-file`` rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientRecord(_Record):
    """The patient's own row (``patients`` without ``patient_id``)."""

    center_id: Code | None = None
    age_at_metastatic_dx: Number | None = None
    menopausal_status: Code | None = None
    histology: Code | None = None
    er_percent: Number | None = None
    pgr_percent: Number | None = None
    ki67_percent: Number | None = None
    her2_ihc: Code | None = None
    grade: StrictInt | None = None
    de_novo: StrictBool | None = None
    metastatic_dx_date: DateText | None = None
    last_contact_date: DateText | None = None
    vital_status: Code | None = None
    death_date: DateText | None = None


class MetastasisRecord(_Record):
    """A metastatic site and the date it was detected."""

    site: Code | None = None
    date_detected: DateText | None = None


class LineRecord(_Record):
    """A line of therapy."""

    line_number: StrictInt | None = None
    start_date: DateText | None = None
    end_date: DateText | None = None
    drugs: Code | None = None
    end_reason: Code | None = None


class ProgressionRecord(_Record):
    """A progression event on a line."""

    date: DateText | None = None
    line_number: StrictInt | None = None
    pattern: Code | None = None
    new_sites: Code | None = None
    method: Code | None = None


class LocalTherapyRecord(_Record):
    """A loco-regional treatment."""

    date: DateText | None = None
    type: Code | None = None
    site: Code | None = None


class BiomarkerRecord(_Record):
    """A biomarker test result."""

    date: DateText | None = None
    marker: Code | None = None
    value: Code | Number | None = None
    sample: Code | None = None


class PerformanceStatusRecord(_Record):
    """An ECOG assessment."""

    date: DateText | None = None
    ecog: StrictInt | None = None


class PatientDocument(_Record):
    """One patient's history up to ``as_of`` (``linewise export-patient``; ``docs/data-lock.md``)."""

    schema_version: StrictInt = Field(ge=1, le=1, description="Always 1.")
    patient_key: StrictStr = Field(
        min_length=16, max_length=16, description="The 16-character pseudonym, never a raw identifier."
    )
    as_of: DateText = Field(description="The date the history stands at.")
    patient: PatientRecord
    metastases: list[MetastasisRecord] = []
    lines: list[LineRecord] = []
    progressions: list[ProgressionRecord] = []
    local_therapies: list[LocalTherapyRecord] = []
    biomarkers: list[BiomarkerRecord] = []
    performance_status: list[PerformanceStatusRecord] = []


class ScoreRequest(BaseModel):
    """Body of ``POST /v1/score`` and ``POST /v1/report``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient: PatientDocument
    as_of: DateText | None = Field(
        default=None, description="Score the history as it stood on this date (default: the document's)."
    )

    @field_validator("as_of")
    @classmethod
    def _calendar_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError("an ISO date YYYY-MM-DD that exists in the calendar") from None
        return value

    @property
    def as_of_date(self) -> dt.date | None:
        """``as_of`` as a date."""
        return None if self.as_of is None else dt.date.fromisoformat(self.as_of)


# --- responses -------------------------------------------------------------------------------------


class Contribution(BaseModel):
    """One feature's SHAP contribution."""

    feature: str
    value: float | None = Field(description="The feature's value (null when missing).")
    switch_value: float | None = Field(default=None, description="Contrast only: the switch side's value.")
    shap: float


class Explanation(BaseModel):
    """The largest contributions to one candidate's predicted outcome."""

    scale: str
    higher_is_better: bool
    base_value: float
    output: float
    top: list[Contribution]


class Contrast(BaseModel):
    """TBP versus the best switch: the largest contributions to their difference."""

    scale: str
    higher_is_better: bool
    tbp_option: str
    switch_option: str
    difference: float
    top: list[Contribution]


class Outcome(BaseModel):
    """Predicted summaries of one endpoint in months, with interval bounds; null if not reached."""

    median: float | None
    median_lower: float | None
    median_upper: float | None
    rmst12: float | None
    rmst12_lower: float | None
    rmst12_upper: float | None
    rmst24: float | None
    rmst24_lower: float | None
    rmst24_upper: float | None
    rmst12_vs_tbp: float | None
    rmst12_vs_tbp_lower: float | None
    rmst12_vs_tbp_upper: float | None
    rmst24_vs_tbp: float | None
    rmst24_vs_tbp_lower: float | None
    rmst24_vs_tbp_upper: float | None


class Candidate(BaseModel):
    """One candidate next step."""

    option: str
    candidate: str
    local_therapy: bool
    rank: int | None = Field(description="1 = the recommendation; null when evidence is insufficient.")
    support: bool
    propensity: float | None
    probability_best: float | None = Field(
        description="Share of the model's bootstrap replicates in which this option has the highest rwPFS "
        "RMST to 24 months among the supported options (0 when unsupported)."
    )
    rwpfs: Outcome
    os: Outcome
    explanation: Explanation


class PolicyValueEstimate(BaseModel):
    """An estimated policy value with its 95% interval (months)."""

    estimate: float
    lower: float
    upper: float
    method: str


class Provenance(BaseModel):
    """The model that scored and the lock it was trained on."""

    model_config = ConfigDict(protected_namespaces=())

    model_uri: str
    model_version: str | None
    lock_id: str | None = None
    lock_date: str | None = None
    lock_digest: str | None = None
    training_run_id: str | None = None
    package_version: str | None = None
    family: str | None = None
    learner: str | None = Field(
        default=None,
        description="What ranks the options: s, t, dr or causal_forest, or several joined by '+'.",
    )
    weighting: str | None = None
    interval: float | None = None
    min_support: float | None = None
    n_training_decisions: int | None = None
    max_training_line: int | None = None
    policy_value: PolicyValueEstimate | None = Field(
        default=None,
        description="The estimated rwPFS RMST to 24 months of following the model's recommendations, "
        "as measured when it was trained.",
    )


class ScopeWarning(BaseModel):
    """Why a decision lies outside the population or the lines the model learned from."""

    rule: Literal["first-line", "line-beyond-training"]
    message: str


class Scope(BaseModel):
    """Whether the decision is one the model was built for and learned from (``linewise.models.scope``)."""

    in_scope: bool
    warnings: list[ScopeWarning]


class Sensitivity(BaseModel):
    """How strong unrecorded confounding would have to be to reverse the first two options' order."""

    first_option: str | None
    second_option: str | None = Field(description="Null when fewer than two options are supported.")
    difference: float | None = Field(description="First minus second, months of rwPFS RMST to 24 months.")
    lower: float | None
    upper: float | None
    interval: float = Field(description="Coverage of the difference's bootstrap interval.")
    e_value: float | None = Field(
        description="Risk ratio that an unrecorded factor would need with both the choice between the "
        "two options and rwPFS, beyond the recorded features, to explain the difference away "
        "(VanderWeele and Ding; the difference converted with exp(0.91 difference / outcome_sd))."
    )
    e_value_interval: float | None = Field(
        description="The same for the interval's bound nearer to no difference (1 when it holds none)."
    )
    outcome_sd: float = Field(description="SD of rwPFS restricted to 24 months in the training decisions.")


class ScoreResponse(BaseModel):
    """The ``linewise score --json`` document."""

    as_of: str
    patient_key: str
    line_number: int
    decision_day: int
    model: Provenance
    scope: Scope
    explanation_scale: str
    candidates: list[Candidate]
    tbp_versus_best_switch: Contrast
    sensitivity: Sensitivity


class Health(BaseModel):
    """Whether the service is up and has a model."""

    status: str
    model_loaded: bool


class ModelState(BaseModel):
    """The model in use and when the alias was last checked."""

    model_config = ConfigDict(protected_namespaces=())

    model_uri: str
    resolved_uri: str
    version: str | None
    provenance: Provenance
    loaded_at: dt.datetime
    last_reload_check: dt.datetime | None


class ReloadResult(BaseModel):
    """What a reload found."""

    changed: bool
    previous_version: str | None
    version: str | None
    checked_at: dt.datetime


class FieldError(BaseModel):
    """One problem of a request, located in the body; never the value."""

    loc: list[str | int]
    rule: str
    message: str


class ErrorResponse(BaseModel):
    """Every error: a fixed message, the request id, and for 422 the field-level problems."""

    detail: str
    request_id: str
    errors: list[FieldError] = []


#: Names the request schema declares: the only strings an error's ``loc`` may show.
KNOWN_NAMES: Final = frozenset(
    {"body", "patient", "as_of"}
    | {
        name
        for model in (
            PatientDocument,
            PatientRecord,
            MetastasisRecord,
            LineRecord,
            ProgressionRecord,
            LocalTherapyRecord,
            BiomarkerRecord,
            PerformanceStatusRecord,
        )
        for name in model.model_fields
    }
)


def error_body(detail: str, request_id: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return an error body as :class:`ErrorResponse` lays it out."""
    return {"detail": detail, "request_id": request_id, "errors": errors or []}
