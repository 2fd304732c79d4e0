"""Fast, exact predictions of a fitted scikit-survival forest: each leaf's curve on the grid, gathered.

scikit-survival predicts a forest by asking every tree, through joblib, for the full curve of its
leaf (the Kaplan-Meier survival and Nelson-Aalen cumulative hazard at every distinct training time),
adding the trees' arrays in order and dividing by their number. For 16 rows that is mostly overhead
(about 100 joblib tasks and input checks per call). :class:`LeafTables` keeps, per leaf, what the
model reads from that array (the survival at the grid times and the risk score, the sum of the
cumulative hazard over the event times), so that a prediction is one ``tree_.apply`` per tree (the
forest's own routing, missing values included, on ``float32`` inputs as scikit-learn does), one gather
and the same sum in the same order: the same numbers (tested against scikit-survival to 1e-12).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


class LeafTables:
    """Per-leaf survival on a time grid and risk score of every tree of a fitted forest.

    Parameters
    ----------
    forest : sksurv.ensemble.RandomSurvivalForest
        A fitted forest (not in low-memory mode).
    grid : ndarray
        Increasing times (months) at which the survival curves are read (step functions, 1 before
        the first distinct training time).

    Attributes
    ----------
    node_offsets : ndarray of int64, shape (n_trees,)
        Position of each tree's first node in :attr:`leaf_row`.
    leaf_row : ndarray of int64, shape (total nodes,)
        Row of a node in :attr:`survival` and :attr:`risk` (-1 for internal nodes).
    survival : ndarray of shape (total leaves, len(grid))
    risk : ndarray of shape (total leaves,)
    n_features : int
    """

    def __init__(self, forest: Any, grid: np.ndarray) -> None:
        if forest.low_memory:
            raise ValueError("a forest fitted with low_memory=True keeps no curves to tabulate")
        times = forest.unique_times_
        index = np.searchsorted(times, np.asarray(grid, dtype=float), side="right") - 1
        offsets, rows, survival, risk, structure = [], [], [], [], []
        nodes = leaves = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            is_leaf = tree.children_left == -1
            row = np.full(tree.node_count, -1, dtype=np.int64)
            row[is_leaf] = leaves + np.arange(int(is_leaf.sum()))
            value = tree.value[is_leaf]  # (leaves, distinct times, (cumulative hazard, survival))
            padded = np.concatenate([np.ones((len(value), 1)), value[:, :, 1]], axis=1)
            survival.append(padded[:, index + 1])
            # scikit-survival's SurvivalTree.predict: the cumulative hazard summed over event times
            risk.append(value[:, :, 0][:, estimator.is_event_time_].sum(1))
            offsets.append(nodes)
            structure.append(
                (
                    tree.children_left,
                    tree.children_right,
                    tree.feature,
                    tree.threshold,
                    tree.missing_go_to_left,
                )
            )
            rows.append(row)
            nodes += tree.node_count
            leaves += len(value)
        self.node_offsets = np.asarray(offsets, dtype=np.int64)
        # every tree's nodes, children as global node numbers, for one pass over all trees
        shifts = np.repeat(self.node_offsets, [len(parts[0]) for parts in structure])
        children_left = np.concatenate([parts[0] for parts in structure]).astype(np.int64)
        children_right = np.concatenate([parts[1] for parts in structure]).astype(np.int64)
        self.children_left = np.where(children_left >= 0, children_left + shifts, -1)
        self.children_right = np.where(children_right >= 0, children_right + shifts, -1)
        self.feature = np.concatenate([parts[2] for parts in structure]).astype(np.int64)
        self.threshold = np.concatenate([parts[3] for parts in structure]).astype(np.float64)
        self.missing_go_to_left = np.concatenate([parts[4] for parts in structure]).astype(np.bool_)
        self.leaf_row = np.concatenate(rows)
        self.survival = np.concatenate(survival)
        self.risk = np.concatenate(risk)
        self.n_features = int(forest.n_features_in_)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Return the table row of each tree's leaf for each row of ``X``: shape (n_trees, n)."""
        features = np.asarray(X, dtype=float)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), found {features.shape}")
        if np.isinf(features).any():
            raise ValueError("X must not contain infinity (missing values, NaN, are allowed)")
        # scikit-learn routes float32 values (NaN to the side each split learned for missing values)
        inputs = np.ascontiguousarray(features, dtype=np.float32)
        nodes = np.empty((len(self.node_offsets), len(inputs)), dtype=np.int64)
        _apply(
            self.children_left, self.children_right, self.feature, self.threshold,
            self.missing_go_to_left, self.node_offsets, inputs, nodes,
        )  # fmt: skip
        return np.asarray(self.leaf_row[nodes])

    def predict_survival(self, X: np.ndarray) -> np.ndarray:
        """Mean over trees of the leaf survival on the grid, shape (n, len(grid))."""
        rows = self.leaves(X)
        # trees added in order, then divided by their number, as scikit-survival does; summed in place,
        # without the (trees, n, grid) array of every tree's curve (gigabytes for counterfactual rows)
        total = np.zeros((rows.shape[1], self.survival.shape[1]))
        _add_leaf_rows(self.survival, rows, total)
        return total / len(rows)

    def predict_risk(self, X: np.ndarray) -> np.ndarray:
        """Mean over trees of the leaf risk score (scikit-survival's ``predict``), shape (n,)."""
        rows = self.leaves(X)
        return np.asarray(np.add.reduce(self.risk[rows], axis=0) / len(rows))


@njit(cache=False)
def _add_leaf_rows(table: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    # out[i] += table[rows[t, i]] for every tree t in order: the sums of np.add.reduce over trees
    for tree in range(rows.shape[0]):
        for row in range(rows.shape[1]):
            leaf = rows[tree, row]
            for column in range(table.shape[1]):
                out[row, column] += table[leaf, column]


@njit(cache=False)
def _apply(
    children_left: np.ndarray, children_right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
    missing_go_to_left: np.ndarray, roots: np.ndarray, X: np.ndarray, out: np.ndarray,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    # scikit-learn's Tree.apply (BestSplitter, dense input) for every tree: a float32 value, compared
    # as a double with the threshold; a missing value goes the side the split learned for it
    for tree in range(roots.shape[0]):
        for row in range(X.shape[0]):
            node = roots[tree]
            while children_left[node] != -1:
                value = X[row, feature[node]]
                if np.isnan(value):
                    node = children_left[node] if missing_go_to_left[node] else children_right[node]
                elif np.float64(value) <= threshold[node]:
                    node = children_left[node]
                else:
                    node = children_right[node]
            out[tree, row] = node
