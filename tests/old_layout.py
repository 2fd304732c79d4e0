"""A registered model as the old package layout left it: its metadata says format 1, its code is not ours."""

from __future__ import annotations

import warnings
from typing import Any

import mlflow

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    from mlflow.pyfunc import PythonModel


class NeverLoaded(PythonModel):
    """Stands for a model whose code this linewise cannot run (the old layout imported ``training``)."""

    def load_context(self, context: Any) -> None:
        raise AssertionError("the model was loaded: its format should have been refused first")

    def predict(self, context: Any, model_input: list[str], params: Any = None) -> list[str]:
        raise AssertionError("the model was loaded: its format should have been refused first")


def register_champion(metadata: dict[str, Any] | None) -> str:
    """Register a model with this MLflow metadata as ``linewise`` version N and make it champion."""
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="old",
            python_model=NeverLoaded(),
            metadata=metadata,
            registered_model_name="linewise",
            pip_requirements=[],
        )
    mlflow.MlflowClient().set_registered_model_alias(
        "linewise", "champion", str(info.registered_model_version)
    )
    return "models:/linewise@champion"
