"""Judge the recommender on locks: load and pseudonymise two locks (and a truth table), then evaluate.

This is the orchestration behind ``linewise evaluate-policy`` and the recommender benchmark; the
figures themselves come from :func:`linewise.models.policy_evaluation.evaluate_policy`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pandas as pd

from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.features.pseudonym import pseudonymize
from linewise.models.policy_evaluation import MIN_BOOTSTRAP, check_refits, evaluate_policy
from linewise.training.lock_digest import lock_digest, session_key


def evaluate_locks(
    train_lock: Path,
    test_lock: Path,
    truth_file: Path | None = None,
    *,
    model_lock_digest: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Validate two locks, build their examples and run :func:`evaluate_policy`.

    Both locks are pseudonymised with one key derived from the training lock's digest
    (:func:`linewise.training.lock_digest.session_key`), so that the same locks give the same figures (the
    examples are ordered by pseudonym, and row order reaches the models' subsampling); the truth's
    raw identifiers are mapped with the same key. The pseudonyms never leave the function.

    Parameters
    ----------
    train_lock, test_lock : Path
        Lock folders.
    truth_file : Path, optional
        The test lock's truth table (``truth.parquet`` of ``linewise simulate --truth-out``).
    model_lock_digest : str, optional
        Digest of the lock a registered model (``settings["model"]``) was trained on.
    **settings
        Passed to :func:`evaluate_policy` (``family``, ``n_bootstrap``, ``random_state``, ``model``).

    Returns
    -------
    dict
        As :func:`evaluate_policy`.

    Raises
    ------
    linewise.features.errors.LockValidationError
        If a lock breaks the contract.
    FileNotFoundError
        If the truth file does not exist.
    ValueError
        If the test lock holds the same data (same digest) as the training lock or as the lock the
        registered model was trained on (the figures would be in-sample), or the intervals to judge
        have too few refits (:func:`linewise.models.policy_evaluation.check_refits`).
    """
    check_refits(settings.get("n_bootstrap", MIN_BOOTSTRAP), settings.get("model"))  # before reading locks
    train_digest = lock_digest(Path(train_lock)) if Path(train_lock).is_dir() else None
    test_digest = lock_digest(Path(test_lock)) if Path(test_lock).is_dir() else None
    if test_digest is not None and test_digest == train_digest:
        raise ValueError(
            "the training and test locks hold the same data (same digest), so the figures would be "
            "in-sample: pass a lock of other patients as the test lock"
        )
    if test_digest is not None and test_digest == model_lock_digest:
        raise ValueError(
            "the registered model was trained on the test lock (same digest), so the figures would be "
            "in-sample: pass a lock of other patients as the test lock"
        )
    key = session_key(train_digest) if train_digest is not None else secrets.token_bytes(32)
    train = build_examples(load_lock(train_lock, key))
    test = build_examples(load_lock(test_lock, key))
    truth = None if truth_file is None else read_truth(Path(truth_file), key)
    return evaluate_policy(train, test, truth, **settings)


def read_truth(truth_file: Path, key: bytes) -> pd.DataFrame:
    """Read a simulated lock's truth table with the raw ``patient_id`` replaced by its pseudonym.

    Parameters
    ----------
    truth_file : Path
        ``truth.parquet`` of ``linewise simulate --truth-out``.
    key : bytes
        The pseudonym key the lock's examples were built with.

    Returns
    -------
    DataFrame
        The truth, keyed by ``patient_key`` (no ``patient_id`` column).

    Raises
    ------
    FileNotFoundError
        If the truth file does not exist.
    """
    if not truth_file.is_file():
        raise FileNotFoundError(f"no truth table at {truth_file}")
    raw = pd.read_parquet(truth_file)
    ids = raw["patient_id"].astype(str)
    keys = {raw_id: pseudonymize(raw_id, key) for raw_id in ids.unique()}
    return raw.assign(patient_key=ids.map(keys)).drop(columns="patient_id")
