"""Where runs go: the tracking URI, the experiment and its artifact folder, and the logged dataset.

The default store is ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/artifacts``
(MLflow's plain file store refuses to start since 3.13); ``MLFLOW_TRACKING_URI`` points elsewhere, for
example at a team's tracking server, whose own artifact store is then used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

import mlflow
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset

DEFAULT_TRACKING_URI: Final = "sqlite:///mlruns/mlflow.db"


def tracking_uri(environ: Mapping[str, str]) -> str:
    """Return ``MLFLOW_TRACKING_URI`` when set, else :data:`DEFAULT_TRACKING_URI`."""
    return environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(uri: str) -> str | None:
    """For a SQLite store, the ``artifacts`` folder beside the database (as a file URI); else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.resolve().parent / "artifacts").as_uri()


def ensure_experiment(name: str, uri: str) -> str:
    """Return the id of experiment ``name`` in store ``uri``, creating it (and its folder) if needed.

    Parameters
    ----------
    name : str
        Experiment name.
    uri : str
        Tracking URI.

    Returns
    -------
    str
        Experiment id.
    """
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).resolve().parent.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    root = artifact_root(uri)
    location = None if root is None else f"{root}/{name}"
    return str(client.create_experiment(name, artifact_location=location))


def lock_dataset(lock_id: str, lock_date: str, digest: str, counts: Mapping[str, int]) -> MetaDataset:
    """Return the lock as an MLflow dataset: its id, date, digest and counts; never a row.

    Parameters
    ----------
    lock_id, lock_date : str
        From the manifest.
    digest : str
        :func:`linewise.training.lock_digest.lock_digest`.
    counts : mapping
        Patients, centres, decisions and the split sizes.

    Returns
    -------
    MetaDataset
    """
    tags = {"lock_id": lock_id, "lock_date": lock_date, **{k: str(v) for k, v in counts.items()}}
    # MetaDataset leaves `profile` abstract in its type stubs but is concrete at runtime (MLflow 3.17)
    return MetaDataset(  # type: ignore[abstract]
        source=CodeDatasetSource(tags=tags), name=f"lock-{lock_id}", digest=digest[:16]
    )
