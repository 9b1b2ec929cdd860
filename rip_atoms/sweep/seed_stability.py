"""Seed stability: do two SAEs trained with different seeds find the same atoms?

For decoders A (N_a atoms) and B (N_b atoms) of one cell trained with two seeds, under the layer's
AIP metric S̃ = W²: ã = W a / ‖W a‖, b̃ = W b / ‖W b‖, C = |Ãᵀ B̃| (N_a × N_b, |AIP cosines|).
A one-to-one matching π maximising Σ C_{i π(i)} is found by the Hungarian method
(``scipy.optimize.linear_sum_assignment``, exact, O(N³)); the stability is

    s(A, B) = #{i : C_{i π(i)} ≥ 0.9} / min(N_a, N_b),

the fraction of atoms matched by an atom of the other run at |AIP cosine| ≥ 0.9 (the standard
measure of the SAE literature, e.g. Paulo & Belrose 2025, here under the AIP). Dead (zero)
atoms match nothing. A cell's ``seed_stability`` is the mean of s over the other seeds of its
group. The dense N_a × N_b matrix is float64: 9216 atoms need 680 MB and the assignment takes
minutes, so widths above ``max_atoms`` (default 8192) are reported as None with a note.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matched_fraction"]


def _unit_whitened(D: np.ndarray, metric) -> np.ndarray:
    """Columns W dᵢ / ‖W dᵢ‖ (zero columns stay zero)."""
    Wd = np.asarray(D, dtype=np.float64)
    if metric is not None:
        Wd = metric.whiten(Wd)
    norms = np.linalg.norm(Wd, axis=0)
    return Wd / np.where(norms > 0, norms, 1.0)


def matched_fraction(A: np.ndarray, B: np.ndarray, metric=None, *, threshold: float = 0.9,
                     max_atoms: int = 8192) -> float | None:
    """s(A, B): the fraction of atoms (columns of the H×N decoders A, B) matched one-to-one at
    |AIP cosine| ≥ ``threshold`` under the Hungarian matching of maximal total |cosine|.

    >>> D = np.eye(3)
    >>> matched_fraction(D, D[:, [2, 0, 1]])
    1.0
    >>> matched_fraction(D, np.array([[1.0, 0, 0], [0, 1, 1], [0, 1, -1]]))
    0.3333333333333333
    """
    from scipy.optimize import linear_sum_assignment

    if max(A.shape[1], B.shape[1]) > max_atoms:
        return None
    C = np.abs(_unit_whitened(A, metric).T @ _unit_whitened(B, metric))
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(np.sum(C[rows, cols] >= threshold) / min(A.shape[1], B.shape[1]))
