"""Seeded numpy generators of dictionaries, codes and activations with known properties: the
plain-numpy building blocks behind the hypothesis strategies of
:mod:`rip_atoms.testing.strategies` and the example draws of :mod:`rip_atoms.theorems`.

They live in :mod:`rip_atoms.synthetic` (one module of synthetic dictionaries, codes and
activations; each is described there); this module re-exports them under their testing names.
Overcomplete frames of a chosen coherence, Hadamard unions and planted dependent sets are in
:mod:`rip_atoms.testing.frames`.
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
