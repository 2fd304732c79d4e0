"""Typed configuration of the simulator, read from one YAML file (``simulation/default.yaml``).

Every model is frozen and rejects unknown keys, so a misspelt parameter fails loudly instead of
being ignored.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CalendarConfig(_Frozen):
    """Lock date, accrual window, follow-up."""

    lock_date: dt.date
    accrual_start: dt.date
    accrual_end_months_before_lock: float = Field(ge=0)
    months_to_first_line: tuple[float, float]
    loss_to_follow_up_per_year: float = Field(ge=0, lt=1)
    last_visit_months_before_lock: tuple[float, float]

    @field_validator("accrual_start")
    @classmethod
    def _before_lock(cls, value: dt.date) -> dt.date:
        if value.year < 2000:
            raise ValueError("accrual_start must be in 2000 or later")
        return value


class CentreConfig(_Frozen):
    """Centres and their habits."""

    count: int = Field(ge=1)
    seed: int = Field(ge=0)
    size_concentration: float = Field(gt=0)
    habit_sd: dict[str, float]


class PatientConfig(_Frozen):
    """Joint distribution of patients at metastatic diagnosis."""

    age_mean: float
    age_sd: float = Field(gt=0)
    age_range: tuple[float, float]
    premenopausal_age_logit: tuple[float, float]
    perimenopausal_share: float = Field(ge=0, le=1)
    histology_shares: dict[str, float]
    er_beta: tuple[float, float]
    pgr_zero_share: float = Field(ge=0, le=1)
    pgr_beta: tuple[float, float]
    ki67_log_mean: float
    ki67_log_sd: float = Field(gt=0)
    ki67_missing: float = Field(ge=0, le=1)
    her2_shares: dict[str, float]
    her2_missing: float = Field(ge=0, le=1)
    grade_missing: float = Field(ge=0, le=1)
    de_novo_share: float = Field(ge=0, le=1)
    ecog_shares: tuple[float, float, float]
    ecog_missing: float = Field(ge=0, le=1)
    site_probability: dict[str, float]
    bone_only_share: float = Field(ge=0, le=1)
    frailty_sd: float = Field(ge=0)
    pathway_alteration: dict[str, float]
    brca_germline: float = Field(ge=0, le=1)
    esr1_at_diagnosis: float = Field(ge=0, le=1)
    esr1_emergence_months_on_ai: float = Field(gt=0)


class FirstLineConfig(_Frozen):
    """First-line ET + CDK4/6i."""

    cdk_shares: dict[str, float]
    fulvestrant_share: float = Field(ge=0, le=1)
    weibull_shape: float = Field(gt=0)
    median_months: float = Field(gt=0)
    death_logit: float


class PrognosisConfig(_Frozen):
    """Prognostic terms (log time ratios) shared by every episode."""

    age_per_decade: float
    ki67_high: float
    er_per_10: float
    pgr_positive: float
    liver: float
    visceral_other: float
    bone_only: float
    brain: float
    ecog: float
    lobular: float
    de_novo: float
    previous_episode: float
    oligo: float


class LaterLinesConfig(_Frozen):
    """Episodes after a progression: baseline, death, progression pattern."""

    weibull_shape: float = Field(gt=0)
    et_mono_median_months: tuple[float, float, float]
    death_logit_by_line: tuple[float, float, float]
    death_ecog: float
    death_liver: float
    none_logit_by_line: tuple[float, float, float]
    none_ecog: float
    none_median_months: float = Field(gt=0)
    max_lines: int = Field(ge=2, le=20)
    ecog_worsening: float = Field(ge=0, le=1)
    oligo_logit: float
    oligo_bone_only: float
    oligo_ki67_high: float
    new_site_oligo: float = Field(ge=0, le=1)
    new_site_systemic: float = Field(ge=0, le=1)
    new_site_shares: dict[str, float]


class EffectsConfig(_Frozen):
    """Candidate effects relative to switching to endocrine monotherapy (log time ratios)."""

    tbp: dict[str, float]
    local_therapy_tbp: dict[str, float]
    local_therapy_other: dict[str, float]
    cdk_same_et_switch: dict[str, float]
    cdk_switch: dict[str, float]
    et_targeted: dict[str, float]
    oral_serd: dict[str, float]
    chemo: dict[str, float]
    adc: dict[str, float]
    endocrine_fast: float


class PracticeConfig(_Frozen):
    """The clinicians' choice model (multinomial logit) and loco-regional therapy."""

    intercepts: dict[str, tuple[float, float]]
    tbp_terms: dict[str, float]
    chemo_terms: dict[str, float]
    endocrine_terms: dict[str, float]
    adc_terms: dict[str, float]
    esr1_known_mutated: dict[str, float]
    pathway_known_altered: dict[str, float]
    local_therapy_logit: dict[str, dict[str, float]]


class TestingConfig(_Frozen):
    """How often biomarkers and ECOG are recorded."""

    tissue_panel: dict[str, float]
    esr1_ctdna: dict[str, float]
    ecog_recorded: float = Field(ge=0, le=1)
    ki67_retest: float = Field(ge=0, le=1)


#: The action classes a scenario term can name (the candidate classes of the lock's decisions).
ScenarioOption = Literal[
    "tbp", "cdk_same_et_switch", "cdk_switch", "et_mono", "et_targeted", "oral_serd", "chemo", "adc"
]
#: Features of a decision that a scenario term can depend on (:mod:`linewise.simulation.modifiers`).
ScenarioFeature = Literal[
    "oligo",
    "visceral",
    "liver",
    "bone_only",
    "brain",
    "ecog0",
    "ecog2plus",
    "ki67_high",
    "er_high",
    "pgr_high",
    "pgr_zero",
    "lobular",
    "de_novo",
    "premenopausal",
    "her2_low",
    "fast",
    "long_previous",
    "older",
    "after_palbociclib",
    "esr1_mutated",
    "esr1_known",
    "pathway_altered",
    "pathway_known",
    "brca",
    "age",
    "er",
    "ki67",
    "previous_episode",
]


class EffectModifier(_Frozen):
    """A recorded feature that changes one option's effect: ``log_time_ratio`` times the feature."""

    option: ScenarioOption
    feature: ScenarioFeature
    log_time_ratio: float = Field(ge=-2, le=2)


class ChoiceTerm(_Frozen):
    """A term of the clinicians' utility of one option: ``logit`` times a decision feature.

    A large negative ``logit`` on an indicator makes the option almost never given to those patients
    (a positivity problem); a moderate one is confounding by that feature.
    """

    option: ScenarioOption
    feature: ScenarioFeature
    logit: float = Field(ge=-12, le=12)


class ScenarioConfig(_Frozen):
    """What a scenario of the suite (:mod:`linewise.simulation.scenarios`) adds to the model.

    The defaults add nothing: the bundled configuration is the default scenario.
    """

    name: str = Field(default="default", min_length=1, max_length=64)
    tbp: Literal["default", "selected", "never"] = "default"
    effect_modifiers: tuple[EffectModifier, ...] = ()
    #: Per option, a log time ratio added to its effect for every patient.
    effect_shift: dict[ScenarioOption, float] = {}
    #: Per option, the factor of its whole effect (against ``et_mono``) at decisions after line 1, 2, 3+.
    effect_by_line: dict[ScenarioOption, tuple[float, float, float]] = {}
    #: Per option, its episodes' Weibull shape over ``later_lines.weibull_shape``: another shape than the
    #: other options' makes its hazard ratio change over time (non-proportional hazards).
    weibull_shape_ratio: dict[ScenarioOption, float] = {}
    choice_terms: tuple[ChoiceTerm, ...] = ()

    @field_validator("weibull_shape_ratio")
    @classmethod
    def _positive_ratios(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {option: ratio for option, ratio in value.items() if not 0.25 <= ratio <= 4}
        if bad:
            raise ValueError(f"every shape ratio must be in [0.25, 4], found {bad}")
        return value


class TruthConfig(_Frozen):
    """Ground-truth computation."""

    os_draws: int = Field(ge=1, le=4096)


class SimulationConfig(_Frozen):
    """The whole simulator configuration."""

    calendar: CalendarConfig
    centres: CentreConfig
    patients: PatientConfig
    first_line: FirstLineConfig
    prognosis: PrognosisConfig
    later_lines: LaterLinesConfig
    effects: EffectsConfig
    practice: PracticeConfig
    testing: TestingConfig
    truth: TruthConfig
    scenario: ScenarioConfig = ScenarioConfig()


class SimulationConfigError(ValueError):
    """The configuration file cannot be read or breaks a rule."""


def default_config_path() -> Path:
    """Return the path of the bundled default configuration."""
    return Path(str(files("linewise.simulation") / "default.yaml"))


def load_config(path: Path | None = None) -> SimulationConfig:
    """Read and check a simulator configuration.

    Parameters
    ----------
    path : Path or None
        A YAML file; None reads the bundled default.

    Returns
    -------
    SimulationConfig
        The frozen configuration.

    Raises
    ------
    SimulationConfigError
        If the file cannot be read, is not YAML, or a value is missing, unknown or out of range.
    """
    source = path or default_config_path()
    try:
        content = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SimulationConfigError(f"cannot read simulator config {source}: {err}") from err
    try:
        return SimulationConfig.model_validate(content)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise SimulationConfigError(f"simulator config {source}: {problems}") from err
