"""The paper's criteria: the atom-set check (rip_atoms.criteria.atom_set), against closed forms,
hand-computed distributions and independent float64 computations written out in the test files,
never against the code under test (split from the former tests/test_atoms.py; assertions
unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.criteria import (
    UnitSet,
    atom_set_check,
    tsae_encoder,
)


def test_planted_atom_set_check_and_window(planted):
    u = UnitSet.from_codes("atoms", planted.dictionary, planted.codes)
    chk = atom_set_check(planted.activations, u, metric=planted.metric)
    assert chk.is_atom_set and chk.uniqueness
    assert chk.eps == pytest.approx(0.05, abs=1e-10) and chk.K == 3
    assert chk.delta_min == pytest.approx(1.0) and chk.delta_max == pytest.approx(1.5)
    assert chk.rip_bound == pytest.approx(0.1, abs=1e-9)
    # planted threshold: the middle of the window of the planted (ε, K, δ_min, δ_max)
    lo, hi = 0.05 * 3 * 1.5, 1.0 - 0.05 * 2 * 1.5
    tau = 0.5 * (lo + hi)
    assert chk.window.feasible and chk.window.contains(tau)
    assert chk.window.lower == pytest.approx(lo, abs=1e-9)
    assert chk.window.upper == pytest.approx(hi, abs=1e-9)
    # and that threshold recovers every planted support with W_enc = D̂ᵀS̃
    codes = tsae_encoder(planted.dictionary, planted.metric, tau)(planted.activations)
    np.testing.assert_array_equal(codes != 0, planted.codes != 0)
    # conditions asked for at a stricter ε or K fail, named
    strict = atom_set_check(planted.activations, u, metric=planted.metric, eps=0.01, K=2)
    assert not strict.separability and not strict.sparsity and strict.representability
    noisy = atom_set_check(planted.activations + 1e-3, u, metric=planted.metric)
    assert not noisy.representability
