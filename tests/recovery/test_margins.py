"""The uniqueness margin (rip_atoms.recovery.margins) against the exact certificate LP value t*,
computed here independently with scipy's HiGHS on the normalised dictionary."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from rip_atoms.recovery import margins
from rip_atoms.recovery.margins import certificate_margins


def exact_t_star(Dn: np.ndarray, S: np.ndarray, s: np.ndarray, nonneg: bool) -> float:
    """t* = min ‖D_{Sᶜ}ᵀy‖_∞ s.t. D_Sᵀy = s (one-sided for non-negative codes), by HiGHS."""
    H, N = Dn.shape
    off = np.setdiff1d(np.arange(N), S)
    A = Dn[:, off].T
    ones = -np.ones((len(off), 1))
    A_ub = np.hstack([A, ones]) if nonneg else np.vstack([np.hstack([A, ones]),
                                                          np.hstack([-A, ones])])
    A_eq = np.hstack([Dn[:, S].T, np.zeros((len(S), 1))])
    c = np.zeros(H + 1)
    c[-1] = 1
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(A_ub.shape[0]), A_eq=A_eq, b_eq=s,
                  bounds=[(None, None)] * H + [(None, None)], method="highs")
    assert res.status == 0
    return float(res.fun)


@pytest.mark.sensitive
@pytest.mark.parametrize("smoothed", [False, True])
@pytest.mark.parametrize("nonneg", [True, False])
def test_margin_between_t_star_and_the_rigorous_bound(nonneg, smoothed, monkeypatch):
    if smoothed:  # the path of large dictionaries: L-BFGS on the smoothed objective
        monkeypatch.setattr(margins, "FULL_LP_ENTRIES", 0)
    rng = np.random.default_rng(3 if nonneg else 4)
    H, N, n = 40, 120, 40
    D = rng.standard_normal((H, N)) * rng.uniform(0.5, 2.0, size=N)  # columns of any norm
    Dn = D / np.linalg.norm(D, axis=0)
    C = sp.lil_matrix((n, N))
    for i in range(n):
        k = int(rng.integers(2, 9))
        S = rng.choice(N, size=k, replace=False)
        v = rng.uniform(1.0, 2.0, size=k)
        C[i, S] = v if nonneg else v * rng.choice([-1.0, 1.0], size=k)
    C = C.tocsr()
    res = certificate_margins(D, C, metric="raw", nonneg=nonneg, max_codes=None,
                              budget_s=None)
    assert res.tokens.size == n and res.tightened.all() and res.lp_solved.all() != smoothed
    close = 0
    for r, i in enumerate(res.tokens):
        a, b = C.indptr[i], C.indptr[i + 1]
        S, s = C.indices[a:b], np.sign(C.data[a:b])
        t = exact_t_star(Dn, S, np.ones(len(S)) if nonneg else s, nonneg)
        m = res.margin[r]
        assert m >= t - 1e-7  # a rigorous upper bound on t* (HiGHS's t* to its tolerance)
        bound = res.certificate_bound[r]
        if np.isfinite(bound):
            assert m <= bound + 1e-12  # never looser than the classifier's bound
        close += abs(m - t) <= 0.05
    assert close >= 0.9 * n
    d = res.to_dict()
    assert d["n_codes"] == n and set(d["margin_quantiles"]) == {"0.0", "0.1", "0.5", "0.9", "1.0"}


@pytest.mark.sensitive
def test_margin_matches_a_closed_form():
    # D = [e₁, e₂, (e₁ + e₂)/√2], S = {0}, s = +1 (signed): y = (1, a), t* = min_a max(|a|,
    # |1 + a|/√2), attained at −a = (1 + a)/√2, i.e. t* = 1/(1 + √2) = √2 − 1
    D = np.array([[1.0, 0.0, 2 ** -0.5], [0.0, 1.0, 2 ** -0.5]])
    C = sp.csr_matrix(np.array([[1.5, 0.0, 0.0]]))
    res = certificate_margins(D, C, metric="raw", nonneg=False, max_codes=None)
    t = np.sqrt(2) - 1
    assert res.tightened[0] and t - 1e-9 <= res.margin[0] <= t + 1e-6
