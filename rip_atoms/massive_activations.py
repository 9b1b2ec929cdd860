"""Massive activations: the few tokens of an LLM's residual stream whose norm is orders of
magnitude above the rest (attention sinks; Sun et al., 2024, "Massive Activations in Large
Language Models"). Position 0 is the known one and the harvest drops it (``skip_first``); in
SmolLM2 the first text token of some contexts is a second sink (60–140× the median norm at
layer 15 — 4 of 100,000 tokens of the default text). A handful of them dominates the second
moment Σ (one token at 140× the median weighs as much as ~20,000 ordinary ones in xxᵀ), so the
AIP metric S̃ = Σ⁻¹, every R² and an SAE's training see mostly them.
"""

from __future__ import annotations

import math

import numpy as np

from rip_atoms.errors import ParameterError, ShapeMismatchError

__all__ = ["massive_activation_rows", "row_norms"]


def row_norms(X: np.ndarray, *, block_rows: int = 65_536) -> np.ndarray:
    """‖xᵢ‖₂ of every row of the n×H matrix X, in float64, read in blocks of ``block_rows``
    rows (X may be a memory map larger than RAM)."""
    if X.ndim != 2:
        raise ShapeMismatchError(f"expected an n×H matrix, got shape {X.shape}")
    out = np.empty(X.shape[0], dtype=np.float64)
    for a in range(0, X.shape[0], block_rows):
        B = np.asarray(X[a:a + block_rows], dtype=np.float64)
        out[a:a + B.shape[0]] = np.sqrt(np.einsum("ij,ij->i", B, B))
    return out


def massive_activation_rows(X: np.ndarray, ratio: float = 10.0, *,
                            block_rows: int = 65_536) -> np.ndarray:
    """Indices i (ascending) of the rows with ‖xᵢ‖₂ > ``ratio`` · median_j ‖x_j‖₂.

    The median is over the rows with a finite norm; rows with a non-finite norm are *not*
    returned (they are bad input, which the code that uses them must reject, not a property of
    the model to filter away). ``ratio`` 10 separates SmolLM2's sinks (≥ 60×) from its largest
    ordinary tokens (≤ 1.6×) with a wide gap on both sides.
    """
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > 1):
        raise ParameterError(f"the norm ratio of a massive activation must be > 1, got {ratio}")
    norms = row_norms(X, block_rows=block_rows)
    finite = np.isfinite(norms)
    if not finite.any():
        return np.zeros(0, dtype=np.int64)
    med = float(np.median(norms[finite]))
    return np.flatnonzero(finite & (norms > ratio * med)).astype(np.int64)
