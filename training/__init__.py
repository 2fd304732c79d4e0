"""Training on a data lock, tracked and registered in MLflow.

Started: :mod:`training.policy` judges the recommender on locks (``linewise evaluate-policy``). Training,
tracking and the registry are not built yet.
"""
