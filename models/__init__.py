"""The recommender's estimators: survival families, propensity, counterfactual scoring, explanations.

Everything here follows the scikit-learn estimator contract. :mod:`linewise.models.recommender` scores
every option of a decision; :mod:`linewise.models.output_table` lays its scores out as the table that
the registered model, ``score-lock`` and the service share; the ``policy_*`` modules judge a policy
(AIPW value, ground truth). This package imports only :mod:`linewise.features` (its feature list and
vocabularies); ``docs/models.md`` describes the method.
"""
