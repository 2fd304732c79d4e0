"""The recommender's models: survival families, propensity, counterfactual scoring, explanations, evaluation.

``docs/models.md`` describes the design and the figures.
"""
