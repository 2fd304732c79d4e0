"""Training on a data lock, tracked and registered in MLflow (not built yet)."""
