"""Synthetic generators have the properties they promise."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms.synthetic import (
    gaussian_dictionary,
    planted_atoms,
    random_orthogonal,
    simplex_etf,
    union_of_bases,
)


@given(st.integers(1, 60))
def test_simplex_etf_gram(h):
    D = np.asarray(simplex_etf(h).atoms)
    G = D.T @ D
    assert D.shape == (h, h + 1)
    np.testing.assert_allclose(np.diag(G), 1.0, atol=1e-13)
    off = G[~np.eye(h + 1, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / h, atol=1e-13)
    np.testing.assert_allclose(D @ D.T, (h + 1) / h * np.eye(h), atol=1e-12)  # tight frame


def test_union_of_bases_blocks_are_orthonormal():
    d = union_of_bases(12, 3, seed=2)
    D = np.asarray(d.atoms)
    for b in range(3):
        B = D[:, 12 * b : 12 * (b + 1)]
        np.testing.assert_allclose(B.T @ B, np.eye(12), atol=1e-12)
    Q = random_orthogonal(5, seed=1)
    np.testing.assert_allclose(Q @ Q.T, np.eye(5), atol=1e-12)


def test_gaussian_dictionary_is_seeded():
    a = gaussian_dictionary(5, 9, seed=3)
    b = gaussian_dictionary(5, 9, seed=3)
    np.testing.assert_array_equal(a.atoms, b.atoms)
    assert "seed=3" in a.provenance.source


@pytest.mark.parametrize("nonneg", [True, False])
def test_planted_codes_and_activations(nonneg):
    p = planted_atoms(10, 30, 4, 200, delta_min=0.5, delta_max=1.5, nonneg=nonneg, seed=4)
    C = p.codes.toarray()
    assert np.all((C != 0).sum(axis=1) == 4)
    mags = np.abs(C[C != 0])
    assert mags.min() >= 0.5 and mags.max() <= 1.5
    assert (C >= 0).all() if nonneg else (C < 0).any()
    np.testing.assert_allclose(p.activations, C @ np.asarray(p.dictionary.atoms).T)
    np.testing.assert_allclose(np.linalg.norm(p.dictionary.atoms, axis=0), 1.0)


def test_planted_mixing_and_offset():
    A = np.diag(np.arange(1.0, 7.0))
    p = planted_atoms(6, 12, 2, 50, mixing=A, offset=1.0, seed=5)
    C = p.codes.toarray()
    np.testing.assert_allclose(p.activations, C @ np.asarray(p.dictionary.atoms).T
                               + p.offset_vector)
    D0 = np.linalg.solve(A, np.asarray(p.dictionary.atoms))
    np.testing.assert_allclose(np.linalg.norm(D0, axis=0), 1.0)
