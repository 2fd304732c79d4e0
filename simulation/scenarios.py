"""The scenario suite: simulator configurations drawn from a seed, each a different disease and practice.

A method tuned on one data-generating process proves little, so the recommender is designed and judged
on many. :func:`draw_scenario` turns a seed into a full :class:`linewise.simulation.config.SimulationConfig`
that still writes locks to the contract. Starting from the bundled configuration, it draws:

- **TBP**: ``selected`` (TBP helps patients with two or three drawn features, and more with local
  therapy), ``never`` (TBP never beats switching to endocrine monotherapy, with or without local
  therapy) or ``default`` (the bundled effects, jittered), by ``seed % 3``;
- **effects**: every effect of the bundled model scaled by a factor in [0.5, 1.5], and each option's
  effect shifted by a normal draw (sd 0.3; mean -0.2 for chemotherapy and ADCs, which the bundled model
  makes the best option at most decisions, 0 for the others); one to four extra
  **effect modifiers** (a recorded feature, or the true ESR1 or pathway status, changes one option's
  effect); **line-specific** factors of up to two options' effects; up to two options whose episodes
  have another Weibull shape (**non-proportional hazards**);
- **confounding**: the recorded terms of the choice model scaled by a factor in [0.3, 2], one to three
  extra recorded choice terms, and the latent frailty's spread (0 in one scenario of four) and its
  weight in the choice (**unrecorded confounding**);
- **positivity**: in half the scenarios, one or two options almost never given (logit -8) to the
  patients with a drawn feature; every intercept moved by a normal draw (sd 0.5);
- **records**: the testing rates of the tissue panel and ctDNA ESR1, and the missing shares of Ki-67,
  HER2 and ECOG; **centre habits** scaled by a factor in [0, 2].

:data:`DEVELOPMENT_SEEDS` are the scenarios that design decisions may look at; :data:`HELD_OUT_SEEDS`
are run once, at the end (``docs/simulation.md``). :func:`fully_recorded` is the bundled model with
every prognostic factor recorded: no frailty, every biomarker tested, nothing missing.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.simulation.config import SimulationConfig, load_config
from linewise.simulation.modifiers import CONTINUOUS_FEATURES, SCENARIO_FEATURES

#: Scenario seeds that design decisions may look at.
DEVELOPMENT_SEEDS: Final = tuple(range(1, 25))
#: Scenario seeds that no design decision may look at: run once, at the end.
HELD_OUT_SEEDS: Final = (9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008)
#: The named scenarios besides the seeds.
NAMED_SCENARIOS: Final = ("default", "fully_recorded")
TBP_MODES: Final = ("selected", "never", "default")

_OPTIONS: Final = CANDIDATE_CLASSES
#: Features a clinician sees when choosing (the true biology is known only through a test).
_CHOICE_FEATURES: Final = tuple(
    name
    for name in SCENARIO_FEATURES
    if name not in CONTINUOUS_FEATURES and name not in ("esr1_mutated", "pathway_altered")
)
#: Features that can close an option to some patients (a positivity problem).
_POSITIVITY_FEATURES: Final = (
    "oligo",
    "visceral",
    "liver",
    "bone_only",
    "ecog2plus",
    "ki67_high",
    "older",
    "premenopausal",
    "fast",
    "de_novo",
    "lobular",
    "her2_low",
)
_TBP_GAINS: Final = ("oligo", "ecog0", "high_er", "high_pgr", "low_ki67")
_POSITIVITY_LOGIT: Final = -8.0
#: A logit that makes a test certain (every patient tested, in every year).
_ALWAYS: Final = 30.0


def scenario_config(name: str, base: SimulationConfig | None = None) -> SimulationConfig:
    """Return the configuration of a named scenario or of a scenario seed.

    Parameters
    ----------
    name : str
        ``default`` (the bundled configuration), ``fully_recorded`` (:func:`fully_recorded`) or a
        non-negative integer seed (:func:`draw_scenario`).
    base : SimulationConfig, optional
        The configuration the scenario starts from (default: the bundled one).

    Returns
    -------
    SimulationConfig

    Raises
    ------
    ValueError
        If ``name`` is neither a named scenario nor a non-negative integer.
    """
    start = base or load_config()
    if name == "default":
        return start
    if name == "fully_recorded":
        return fully_recorded(start)
    if not name.isdigit():
        raise ValueError(
            f"scenario must be one of {', '.join(NAMED_SCENARIOS)} or a seed (0, 1, ...), found {name!r}"
        )
    return draw_scenario(int(name), start)


def fully_recorded(base: SimulationConfig | None = None) -> SimulationConfig:
    """Return the bundled model with every prognostic factor recorded.

    No latent frailty, the tissue panel and ctDNA ESR1 tested at every chance, and Ki-67, HER2, grade and
    ECOG never missing: the true outcome of an option depends only on what the lock records, so an
    interval about "patients with these recorded features" can be checked against the truth.

    Parameters
    ----------
    base : SimulationConfig, optional
        The configuration to start from (default: the bundled one).

    Returns
    -------
    SimulationConfig
    """
    content = (base or load_config()).model_dump()
    content["patients"] |= {
        "frailty_sd": 0.0,
        "ki67_missing": 0.0,
        "her2_missing": 0.0,
        "grade_missing": 0.0,
        "ecog_missing": 0.0,
    }
    content["testing"] |= {
        "tissue_panel": {"base": _ALWAYS, "per_year": 0.0},
        "esr1_ctdna": {"base": _ALWAYS, "per_year": 0.0},
        "ecog_recorded": 1.0,
    }
    content["scenario"] = {"name": "fully_recorded", "tbp": "default"}
    return SimulationConfig.model_validate(content)


def draw_scenario(seed: int, base: SimulationConfig | None = None) -> SimulationConfig:
    """Draw one scenario of the suite from ``seed``.

    Parameters
    ----------
    seed : int
        Non-negative; the same seed and base give the same configuration.
    base : SimulationConfig, optional
        The configuration to start from (default: the bundled one).

    Returns
    -------
    SimulationConfig
        Validated like a YAML file; ``scenario.name`` is ``suite-<seed>``.

    Raises
    ------
    ValueError
        If ``seed`` is negative.
    """
    if seed < 0:
        raise ValueError(f"a scenario seed must be >= 0, found {seed}")
    rng = np.random.default_rng([seed, 0x5CE0])
    content = (base or load_config()).model_dump()
    mode = TBP_MODES[seed % len(TBP_MODES)]
    _draw_effects(content["effects"], mode, rng)
    scenario: dict[str, Any] = {"name": f"suite-{seed}", "tbp": mode}
    # in "never", TBP and endocrine monotherapy keep the bundled form, so that TBP stays below it
    eligible = [option for option in _OPTIONS if not (mode == "never" and option in ("tbp", "et_mono"))]
    scenario["effect_shift"] = {
        option: float(rng.normal(-0.2 if option in ("chemo", "adc") else 0.0, 0.3))
        for option in eligible
        if option != "et_mono"
    }
    scenario["effect_modifiers"] = [
        {
            "option": str(rng.choice(eligible)),
            "feature": str(rng.choice(SCENARIO_FEATURES)),
            "log_time_ratio": float(rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.6)),
        }
        for _ in range(int(rng.integers(1, 5)))
    ]
    scenario["effect_by_line"] = {
        str(option): (1.0, float(rng.uniform(0.4, 1.3)), float(rng.uniform(0.2, 1.3)))
        for option in rng.choice(eligible, size=int(rng.integers(0, 3)), replace=False)
    }
    scenario["weibull_shape_ratio"] = {
        str(option): float(rng.uniform(0.6, 1.7))
        for option in rng.choice(eligible, size=int(rng.integers(0, 3)), replace=False)
    }
    scenario["choice_terms"] = _draw_choice(content["practice"], content["patients"], content["centres"], rng)
    _draw_records(content["patients"], content["testing"], rng)
    content["scenario"] = scenario
    return SimulationConfig.model_validate(content)


def _draw_effects(effects: dict[str, Any], mode: str, rng: np.random.Generator) -> None:
    """Scale every effect by a factor in [0.5, 1.5], then set TBP's effects by ``mode`` (in place)."""
    for name, value in effects.items():
        if isinstance(value, dict):
            effects[name] = {key: float(term * rng.uniform(0.5, 1.5)) for key, term in value.items()}
        else:
            effects[name] = float(value * rng.uniform(0.5, 1.5))
    if mode == "default":
        return
    tbp = {key: 0.0 for key in effects["tbp"]}
    tbp["base"] = float(rng.uniform(-0.5, -0.15))
    if mode == "selected":
        for key in rng.choice(_TBP_GAINS, size=int(rng.integers(2, 4)), replace=False):
            tbp[str(key)] = float(rng.uniform(0.2, 0.7))
        effects["local_therapy_tbp"] = {
            "base": float(rng.uniform(0.2, 0.6)),
            "oligo": float(rng.uniform(0.2, 0.6)),
        }
    else:  # never: no gain, with or without local therapy
        effects["local_therapy_tbp"] = {key: 0.0 for key in effects["local_therapy_tbp"]}
    effects["tbp"] = tbp


def _draw_choice(
    practice: dict[str, Any], patients: dict[str, Any], centres: dict[str, Any], rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Scale the recorded and unrecorded confounding (in place); return the extra choice terms."""
    recorded, unrecorded = rng.uniform(0.3, 2.0), rng.uniform(0.0, 2.0)
    for block in ("tbp_terms", "chemo_terms", "endocrine_terms", "adc_terms"):
        practice[block] = {
            key: float(value * (unrecorded if key == "frailty" else recorded))
            for key, value in practice[block].items()
        }
    practice["intercepts"] = {
        option: tuple(float(value + rng.normal(0.0, 0.5)) for value in values)
        for option, values in practice["intercepts"].items()
    }
    patients["frailty_sd"] = 0.0 if rng.random() < 0.25 else float(rng.uniform(0.2, 0.8))
    centres["habit_sd"] = {
        key: float(value * rng.uniform(0.0, 2.0)) for key, value in centres["habit_sd"].items()
    }
    terms = [
        {
            "option": str(rng.choice(_OPTIONS)),
            "feature": str(rng.choice(_CHOICE_FEATURES)),
            "logit": float(rng.normal(0.0, 1.0)),
        }
        for _ in range(int(rng.integers(1, 4)))
    ]
    if rng.random() < 0.5:
        terms += [
            {
                "option": str(rng.choice(_OPTIONS)),
                "feature": str(rng.choice(_POSITIVITY_FEATURES)),
                "logit": _POSITIVITY_LOGIT,
            }
            for _ in range(int(rng.integers(1, 3)))
        ]
    return terms


def _draw_records(patients: dict[str, Any], testing: dict[str, Any], rng: np.random.Generator) -> None:
    """Draw testing rates and missing shares (in place)."""
    for kind in ("tissue_panel", "esr1_ctdna"):
        testing[kind] = {"base": float(rng.uniform(-3.0, 1.0)), "per_year": testing[kind]["per_year"]}
    testing["ecog_recorded"] = float(rng.uniform(0.6, 1.0))
    patients["ki67_missing"] = float(rng.uniform(0.0, 0.4))
    patients["her2_missing"] = float(rng.uniform(0.0, 0.2))
    patients["ecog_missing"] = float(rng.uniform(0.0, 0.3))


def describe(config: SimulationConfig) -> dict[str, Any]:
    """Return the facts of a scenario that its results are read against.

    Parameters
    ----------
    config : SimulationConfig

    Returns
    -------
    dict
        ``name``, ``tbp`` (mode), ``frailty_sd``, ``frailty_in_choice`` (the largest absolute frailty
        term of the choice model), ``effect_modifiers``, ``line_specific`` and ``non_proportional``
        (options), ``positivity`` (options almost never given to some patients) and
        ``extra_choice_terms``.
    """
    scenario = config.scenario
    practice = config.practice
    frailty_terms = [
        abs(block.get("frailty", 0.0))
        for block in (practice.tbp_terms, practice.chemo_terms, practice.endocrine_terms)
    ]
    return {
        "name": scenario.name,
        "tbp": scenario.tbp,
        "frailty_sd": config.patients.frailty_sd,
        "frailty_in_choice": max(frailty_terms),
        "effect_modifiers": [f"{m.option}:{m.feature}" for m in scenario.effect_modifiers],
        "line_specific": sorted(scenario.effect_by_line),
        "non_proportional": sorted(scenario.weibull_shape_ratio),
        "positivity": [
            f"{t.option}:{t.feature}" for t in scenario.choice_terms if t.logit <= _POSITIVITY_LOGIT
        ],
        "extra_choice_terms": sum(1 for t in scenario.choice_terms if t.logit > _POSITIVITY_LOGIT),
    }
