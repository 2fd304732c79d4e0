"""Training on a data lock, tracked and registered in MLflow.

:mod:`linewise.training.fitting` fits the recommender on a lock (validate, examples, split, search,
refit, assess), :mod:`linewise.training.mlflow_logging` logs the run, registers the model and sets its
alias by the champion rule (:mod:`linewise.training.registry`), and :mod:`linewise.training.pyfunc` is
the registered MLflow model. :mod:`linewise.training.policy` judges the recommender on a second lock
(``linewise evaluate-policy``). This package imports :mod:`linewise.features` and
:mod:`linewise.models`, never the simulator, the service or the command line.
"""
