"""The paper's criteria: the TSAE window and threshold check (rip_atoms.criteria.tsae), against
closed forms, hand-computed distributions and independent float64 computations written out in
the test files, never against the code under test (split from the former tests/test_atoms.py;
assertions unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.criteria import (
    check_thresholds,
    tsae_window,
)
from rip_atoms.errors import (
    NonFiniteError,
    ParameterError,
)


# ------------------------------------------------------------------ TSAE window
def test_tsae_window_closed_form():
    w = tsae_window(0.1, 3, 1.0, 1.5)
    assert w.lower == pytest.approx(0.45) and w.upper == pytest.approx(0.7)
    assert w.feasible and w.margin == pytest.approx(0.25)
    assert w.contains(0.5) and not w.contains(0.45) and not w.contains(0.7)
    np.testing.assert_array_equal(w.contains(np.array([0.4, 0.6, 0.8])), [False, True, False])
    edge = tsae_window(0.1, 3, 0.75, 1.5)  # δ_min = ε(2K − 1)δ_max: the window is empty
    assert not edge.feasible and edge.lower == pytest.approx(edge.upper)
    assert "infeasible" in tsae_window(0.5, 2, 1, 1).statement
    assert tsae_window(0.0, 5, 1, 2).lower == 0.0  # orthogonal atoms: any τ in (0, δ_min)


@pytest.mark.parametrize("args", [(0.1, 0, 1, 2), (-0.1, 2, 1, 2), (0.1, 2, 2, 1),
                                  (0.1, 2, 0, 1), (1.5, 2, 1, 2), (0.1, 2.5, 1, 2),
                                  (float("nan"), 2, 1, 2)])
def test_tsae_window_bad_input(args):
    with pytest.raises(ParameterError):
        tsae_window(*args)


def test_check_thresholds():
    w = tsae_window(0.1, 3, 1.0, 1.5)  # (0.45, 0.7)
    c = check_thresholds(np.array([0.3, 0.5, 0.69, 0.7, 0.9]), w)
    assert (c.n_inside, c.n_below, c.n_above) == (2, 1, 2)
    assert c.below.tolist() == [0] and c.above.tolist() == [3, 4]
    assert c.fraction_inside == pytest.approx(0.4) and not c.all_inside
    s = check_thresholds(0.5, eps=0.1, K=3, delta_min=1.0, delta_max=1.5)
    assert s.all_inside and s.n_latents == 1
    # thresholds in the TSAE's own units, atoms of AIP norm 2: 0.3·2 = 0.6 is inside
    scaled = check_thresholds(0.3, w, atom_norms=np.array([2.0, 1.0]))
    assert scaled.n_inside == 1 and scaled.below.tolist() == [1] and scaled.scaled
    with pytest.raises(ParameterError):
        check_thresholds(0.5)
    with pytest.raises(NonFiniteError):
        check_thresholds([np.nan], w)


def test_check_thresholds_counts_both_sides_of_an_infeasible_window():
    from rip_atoms.criteria import check_thresholds, tsae_window

    w = tsae_window(0.5, 3, 1.0, 2.0)  # lower = 3, upper = 1 − 2 = −1: infeasible
    assert not w.feasible
    chk = check_thresholds(np.array([-2.0, 0.5, 4.0]), w)
    # −2 ≤ lower only; 0.5 is ≤ lower and ≥ upper; 4 ≥ upper only
    assert (chk.n_inside, chk.n_below, chk.n_above, chk.n_both) == (0, 2, 2, 1)
    ok = check_thresholds(np.array([0.2, 0.3]), tsae_window(0.05, 2, 1.0, 1.0))  # (0.1, 0.95)
    assert ok.window.feasible and ok.n_both == 0 and ok.n_inside == 2
