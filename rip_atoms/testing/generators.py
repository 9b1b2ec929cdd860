"""Seeded numpy generators of dictionaries, codes and activations with known properties.

These are the plain-numpy building blocks behind the hypothesis strategies of
:mod:`rip_atoms.testing.strategies` and the example draws of :mod:`rip_atoms.theorems`; they
need nothing beyond numpy and take a ``numpy.random.Generator``. Every dictionary is H×N with
atoms as columns (DESIGN.md notation).

* :func:`gaussian_atoms` — iid Gaussian columns, normalised.
* :func:`near_etf_atoms` — the simplex ETF (N = H + 1, μ = 1/H) plus a small perturbation.
* :func:`etf_block_atoms` — a direct sum of simplex ETFs in orthogonal subspaces, rotated at
  random: μ = 1/min(mᵦ) exactly, spark = 1 + min(mᵦ), N = H + number of blocks.
* :func:`paired_atoms` — N ≤ H unit atoms whose Gram is block diagonal with 2×2 blocks
  [[1, ±c], [±c, 1]]: planted coherence μ = c exactly (for any c in [0, 1)).
* :func:`sparse_code_matrix` — n codes with exactly K non-zeros each, magnitudes in
  [δ_min, δ_max], a sign convention.
* :func:`shifted_moment`, :func:`second_moment_matrix`, :func:`activations_with_moment` —
  activations whose empirical uncentred second moment (1/n) XᵀX is a chosen Σ *exactly*, and
  whose mean is a chosen offset m (the representation shift on purpose: Σ = C + m mᵀ).
* :func:`planted_atom_set` — a planted atom set: unit atoms D̃ with planted ε, observed through
  an invertible mixing A (D = A D̃, optionally with random atom scales), the metric
  S̃ = (A Aᵀ)⁻¹ under which the AIP Gram of D is D̃ᵀD̃ exactly, K-sparse codes and x = D δ.

They live in :mod:`rip_atoms.synthetic` (one module of synthetic dictionaries, codes and
activations); this module re-exports them under their testing names.
"""

from rip_atoms.synthetic import (
    SIGNS,
    PlantedAtomSet,
    activations_with_moment,
    etf_block_atoms,
    gaussian_atoms,
    near_etf_atoms,
    paired_atoms,
    planted_atom_set,
    random_invertible,
    random_orthonormal,
    second_moment_matrix,
    shifted_moment,
    simplex_etf_atoms,
    sparse_code_matrix,
)

__all__ = [
    "PlantedAtomSet",
    "SIGNS",
    "activations_with_moment",
    "etf_block_atoms",
    "gaussian_atoms",
    "near_etf_atoms",
    "paired_atoms",
    "planted_atom_set",
    "random_invertible",
    "random_orthonormal",
    "second_moment_matrix",
    "shifted_moment",
    "simplex_etf_atoms",
    "sparse_code_matrix",
]
