"""One whitening per report (issue 13): a Geometry built once is reused by coherence, RIP,
spark, ℓ1 certification, margins and per-atom μⱼ — checked to be of the same dictionary and
metric, with a rigorous float32 tolerance when its float32 rows are rounded from the float64
ones (``shared_rows``), and giving the analyses' results of a fresh whitening."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rip_atoms.coherence import coherence
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import ParameterError
from rip_atoms.geometry import Geometry
from rip_atoms.metric import fit_metric
from rip_atoms.recovery import classify_recovery
from rip_atoms.recovery.problem import recovery_view
from rip_atoms.rip import rip_bounds
from rip_atoms.spark import spark_bounds

# float32 tolerances, budgeted searches and set-ups started only if they fit
pytestmark = pytest.mark.sensitive


def _problem(seed=0, H=12, N=40, cond=1e4):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((H, N))
    X = rng.standard_normal((20 * H, H)) * np.logspace(0, np.log10(cond) / 2, H)
    return Dictionary(D), fit_metric(X.astype(np.float32))


def test_a_foreign_geometry_is_refused():
    d, m = _problem()
    other, m2 = _problem(seed=1)
    geom = Geometry(d, m, shared_rows=True)
    geom.check(d, m)
    geom.check(Dictionary(d.atoms.copy()), m)  # equal atoms
    assert geom.is_of(d, m) and not geom.is_of(other) and not geom.is_of(d, m2)
    with pytest.raises(ParameterError, match="geometry is of"):
        geom.check(other, m)
    with pytest.raises(ParameterError, match="another metric"):
        geom.check(d, m2)
    with pytest.raises(ParameterError, match="another metric"):
        geom.check(d, "raw")
    separate = Geometry(d, m)
    separate.atoms(rows=False, rows64=True)
    with pytest.raises(ParameterError, match="shared_rows"):
        separate.atoms(rows=True, rows64=True)
    with pytest.raises(ParameterError, match="another metric"):
        rip_bounds(geom, 2, m2, budget_s=0.5)
    with pytest.raises(ParameterError, match="another metric"):
        classify_recovery(geom, np.eye(40)[:2], metric=m2)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([1.0, 1e3, 1e6]))
def test_float32_rows_rounded_from_float64_keep_their_tolerance(seed, cond):
    # |float32 row cosine − exact cosine| ≤ tolerance, the exact cosine computed independently
    # as dⱼᵀS̃dₗ/(‖dⱼ‖_S‖dₗ‖_S) in extended precision
    d, m = _problem(seed, cond=cond)
    ca = CorrectedAtoms(d, m, rows=True, rows64=True, min_live=0)
    A = ca.rows.astype(np.float64)
    got = A @ A.T
    S = m.S.astype(np.longdouble)
    Dl = d.atoms.astype(np.longdouble)
    G = Dl.T @ S @ Dl
    n = np.sqrt(np.diag(G))
    exact = np.asarray(G / np.outer(n, n), dtype=np.float64)
    assert np.abs(got - exact).max() <= ca.tolerance
    assert ca.whitening_error > 0 and ca.factor_tolerance > 0


def test_reused_whitening_gives_the_fresh_results():
    d, m = _problem(3, H=10, N=30)
    geom = Geometry(d, m, shared_rows=True)
    a = coherence(d, m, babel_p=5, top=10)
    b = coherence(geom, babel_p=5, top=10)
    assert b.pair == a.pair and abs(b.mu - a.mu) <= a.float64_tolerance
    assert np.allclose(b.babel, a.babel, atol=1e-12)
    r1 = rip_bounds(d, [2, 3], m, budget_s=1, seed=0)
    r2 = rip_bounds(geom, [2, 3], budget_s=1, seed=0)
    for k in (2, 3):  # C(30, k) ≤ 4060 supports: enumerated, exact either way
        assert r1[k].exact and r2[k].exact
        assert r2[k].delta_upper == pytest.approx(r1[k].delta_upper, abs=1e-9)
    s1 = spark_bounds(d, m, budget_s=1)
    s2 = spark_bounds(geom, budget_s=1)
    # the lower bounds are searched under a 1 s budget, so how far each got depends on the
    # machine's load: the brackets must agree (overlap), with the same upper bound
    assert s1.upper == s2.upper and max(s1.lower, s2.lower) <= min(s1.upper, s2.upper)
    rng = np.random.default_rng(0)
    C = sp.random(50, 30, density=0.1, random_state=1, format="csr")
    C.data = rng.uniform(1, 2, C.nnz)
    c1 = classify_recovery(d, C, nonneg=True, metric=m)
    c2 = classify_recovery(geom, C, nonneg=True)
    view = recovery_view(geom)
    c3 = classify_recovery(geom, C, nonneg=True, metric=m)  # the kept view
    assert np.array_equal(c1.status, c2.status) and np.array_equal(c2.status, c3.status)
    assert recovery_view(geom) is view and view.corrected is geom.atoms(rows64=True)


def test_a_report_whitens_once(monkeypatch):
    """The float64 whitening pass runs once per report, and no analysis whitens the target's
    atoms in blocks again (before: coherence, RIP, spark, margins and each ℓ1 call did)."""
    import rip_atoms.corrected_atoms as ca_mod
    from rip_atoms.criteria import UnitSet
    from rip_atoms.report.build import VerifyTarget, build_report
    from rip_atoms.synthetic import planted_atoms

    p = planted_atoms(16, 300, 2, 1200, seed=2)
    X = np.asarray(p.activations)
    metric = fit_metric(X[:800])
    unit = UnitSet.from_codes("atoms", p.dictionary, p.codes[800:], kind="atoms")
    calls = {"float64": 0, "blocks": 0}
    real64 = ca_mod.CorrectedAtoms._float64_pass
    real_init = ca_mod.CorrectedAtoms.__init__

    def count64(self, out=None):
        if self.dictionary.n_atoms == 300 and self.metric is not None:
            calls["float64"] += 1
        return real64(self, out)

    def count_init(self, D, metric=None, *, rows=True, rows64=False, **k):
        real_init(self, D, metric, rows=rows, rows64=rows64, **k)
        if self.dictionary.n_atoms == 300 and self.metric is not None and rows and not rows64:
            calls["blocks"] += 1

    monkeypatch.setattr(ca_mod.CorrectedAtoms, "_float64_pass", count64)
    monkeypatch.setattr(ca_mod.CorrectedAtoms, "__init__", count_init)
    t = VerifyTarget(dictionary=p.dictionary, description="planted", activations=X[800:],
                     metric=metric, unit=unit, nonneg=True)
    rep = build_report(t, budget_s=3.0, seed=0, rip_ks=(2, 3), l1_max_tokens=16)
    assert rep["recovery"]["codes"]["computed"] and rep["rip"]["computed"]
    assert calls == {"float64": 1, "blocks": 0}, calls


def test_an_unfitting_projector_is_not_started_under_a_deadline(monkeypatch):
    # the ADMM projector's set-up cannot be interrupted: under a deadline it starts only when
    # its estimated cost fits the time left; without a deadline it always runs
    import rip_atoms.recovery.problem as codes_mod

    rng = np.random.default_rng(5)
    d = Dictionary(rng.standard_normal((20, 60)))
    C = sp.lil_matrix((6, 60))
    for i in range(6):  # far above the weak threshold: Fuchs fails, ADMM would be next
        C[i, rng.choice(60, 14, replace=False)] = rng.uniform(1, 2, 14)
    C = C.tocsr()
    monkeypatch.setattr(codes_mod, "PROJECTOR_SECONDS_PER_FLOP", 1.0)  # "hours"
    geom = Geometry(d, "raw")
    res = classify_recovery(geom, C, nonneg=True, budget_s=5.0)
    assert recovery_view(geom)._proj is None and res.seconds < 5.0 + 1.0
    geom2 = Geometry(d, None)
    classify_recovery(geom2, C, nonneg=True)
    assert recovery_view(geom2)._proj is not None


def test_the_margin_smoothing_stops_at_its_end_with_a_valid_certificate():
    import time

    import scipy.linalg as sla

    from rip_atoms.recovery.margins import _smoothed

    rng = np.random.default_rng(2)
    cols = rng.standard_normal((15, 50))
    cols /= np.linalg.norm(cols, axis=0)
    S = np.array([3, 7, 11])
    DS = cols[:, S]
    A = np.delete(cols, S, axis=1).T
    s = np.ones(3)
    cho = sla.cho_factor(DS.T @ DS, lower=True)
    y0 = DS @ sla.cho_solve(cho, s)
    y = _smoothed(A, DS, cho, y0, True, end=time.perf_counter() - 1.0)  # already past
    assert np.allclose(DS.T @ y, s, atol=1e-12)
    y_full = _smoothed(A, DS, cho, y0, True)
    assert np.allclose(DS.T @ y_full, s, atol=1e-10)
    assert (A @ y_full).max() <= (A @ y).max() + 1e-12  # more time: a certificate no worse


@pytest.mark.parametrize("H", [3, 40])
def test_diagonal_atoms_per_atom_coherence_matches_explicit_whitening(H):
    # the neuron basis (up to scale and sign) takes a closed form; check it against whitening
    # the atoms explicitly in extended precision, pair by pair
    from rip_atoms.coherence import per_atom_coherence

    rng = np.random.default_rng(H)
    X = rng.standard_normal((10 * H, H)) @ rng.standard_normal((H, H))
    m = fit_metric(X)
    c = rng.uniform(0.5, 2, H) * rng.choice([-1, 1], H)
    res = per_atom_coherence(np.diag(c), m)
    V = m.W.astype(np.longdouble) @ np.diag(c).astype(np.longdouble)
    V /= np.sqrt((V * V).sum(axis=0))
    G = np.abs(np.asarray(V.T @ V, dtype=np.float64))
    np.fill_diagonal(G, -1)
    assert np.abs(res.values - G.max(axis=1)).max() <= 1e-12
    assert np.array_equal(res.partner, G.argmax(axis=1))
    assert "diagonal" in res.method
