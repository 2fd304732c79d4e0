"""Typed training configuration, read from one YAML file (``training/default.yaml`` unless told otherwise).

Every model is frozen and rejects unknown keys, so a misspelt setting fails loudly.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SplitConfig(_Frozen):
    """How decisions are split into development and test; every split keeps a patient's decisions together."""

    by: Literal["patient", "centre", "date"] = "patient"
    test_fraction: float = Field(default=0.25, gt=0, le=0.7)


class CandidateConfig(_Frozen):
    """One setting of the selection: an outcome family, its hyperparameters and the learners tried on it."""

    family: Literal["boosted_cox", "random_survival_forest"]
    learners: tuple[Literal["s", "t", "dr", "causal_forest"], ...] = Field(default=("s",), min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_learners(self) -> CandidateConfig:
        if len(set(self.learners)) != len(self.learners):
            raise ValueError(f"learners are listed twice in {list(self.learners)}")
        return self


class SelectionConfig(_Frozen):
    """The candidates and how their cross-fitted policy values are estimated (training/selection.py)."""

    folds: int = Field(default=3, ge=2, le=10)
    ensemble_size: int = Field(default=2, ge=0)
    tolerance_se: float = Field(default=1.96, ge=0, le=5)
    candidates: tuple[CandidateConfig, ...] = Field(min_length=1)


class TrainingConfig(_Frozen):
    """Everything ``linewise train`` needs besides the lock."""

    seed: int = Field(default=0, ge=0)
    split: SplitConfig = SplitConfig()
    selection: SelectionConfig
    weighting: Literal["ipw", "overlap", "none"] = "ipw"
    n_bootstrap: int = Field(default=20, ge=2)  # the registered model always carries intervals
    min_support: float = Field(default=0.05, gt=0, lt=1)
    n_jobs: int = Field(default=2, ge=1)
    registered_model: str = Field(default="linewise", min_length=1)


class TrainingConfigError(ValueError):
    """The training configuration file cannot be read or breaks its schema."""


def load_training_config(path: Path | None = None) -> TrainingConfig:
    """Read a training configuration (default: the bundled ``training/default.yaml``).

    Parameters
    ----------
    path : Path, optional
        A YAML file.

    Returns
    -------
    TrainingConfig

    Raises
    ------
    TrainingConfigError
        Naming the file and every problem.
    """
    source = Path(path) if path is not None else None
    name = str(source) if source is not None else "training/default.yaml"
    try:
        text = (
            source.read_text(encoding="utf-8")
            if source is not None
            else files("linewise.training").joinpath("default.yaml").read_text(encoding="utf-8")
        )
        content = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise TrainingConfigError(f"{name}: cannot be read as YAML: {err}") from err
    if not isinstance(content, dict):
        raise TrainingConfigError(f"{name}: must hold a mapping of settings")
    try:
        return TrainingConfig.model_validate(content)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in err.errors()
        )
        raise TrainingConfigError(f"{name}: {problems}") from err
