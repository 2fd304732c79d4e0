"""Registered models this linewise cannot use: an old layout's (format 1), a format-2 one not ours."""

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


class NotARecommender(PythonModel):
    """Loads without error but is no linewise recommender (someone else's model under the same name)."""

    def predict(self, context: Any, model_input: list[str], params: Any = None) -> list[str]:
        return ["not a recommendation"]


def register_champion(metadata: dict[str, Any] | None, model: PythonModel | None = None) -> str:
    """Register ``model`` (default :class:`NeverLoaded`) with this metadata as the ``linewise`` champion."""
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="old",
            python_model=NeverLoaded() if model is None else model,
            metadata=metadata,
            registered_model_name="linewise",
            pip_requirements=[],
        )
    mlflow.MlflowClient().set_registered_model_alias(
        "linewise", "champion", str(info.registered_model_version)
    )
    return "models:/linewise@champion"
