"""The Geometry (issue 25): one dictionary under one metric, resolved once, with what the analyses
precompute kept on it — the same object on every request, the same numbers as the dictionary
edge (``analysis(D, metric)``), and a pass or geometry of other atoms or another metric refused."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rip_atoms import Dictionary, Geometry, coherence, rip_bounds, spark_bounds
from rip_atoms.coherence import per_atom_coherence
from rip_atoms.errors import ParameterError, ParameterTypeError, ShapeMismatchError
from rip_atoms.geometry import UNSET, same_atoms
from rip_atoms.metric import AIPMetric, fit_metric
from rip_atoms.recovery import classify_recovery
from rip_atoms.recovery.problem import recovery_view


def _problem(seed=0, H=10, N=30):
    rng = np.random.default_rng(seed)
    D = Dictionary(rng.standard_normal((H, N)))
    X = rng.standard_normal((30 * H, H)) * np.linspace(0.3, 3.0, H)
    return D, fit_metric(X)


def test_what_is_computed_is_kept_and_the_same_object_comes_back():
    d, m = _problem()
    geom = Geometry(d, m)
    a32 = geom.atoms()
    assert geom.atoms() is a32 and geom.atoms(rows=False) is a32
    a64 = geom.atoms(rows=False, rows64=True)
    assert a64 is not a32 and geom.atoms(rows=False, rows64=True) is a64
    assert geom.float64_rows_built
    assert geom.spectral_norm_sq_upper() == geom.spectral_norm_sq_upper()
    coh = coherence(geom, babel_p=4, top=8)
    assert coherence(geom, babel_p=4, top=8) is coh  # the same key: the kept pass
    assert geom.coherence_pass(babel_p=3, top=5) is coh  # covered
    assert geom.coherence_pass(babel_p=6, top=5) is None  # Babel too short
    view = recovery_view(geom)
    assert recovery_view(geom) is view and view.corrected is a64
    shared = Geometry(d, m, shared_rows=True)
    one = shared.atoms()
    assert shared.atoms(rows64=True) is one and one.rows is not None and one.rows64 is not None
    assert shared.float64_rows_built


def test_metric_spellings_have_one_meaning_each():
    d, m = _problem()
    assert Geometry(d, None).metric is None and Geometry(d, "raw").metric is None
    assert Geometry(d, m).metric is m
    selfm = Geometry(d, "self").metric
    assert isinstance(selfm, AIPMetric) and selfm.kind == "dictionary"
    assert Geometry(d, "raw").is_of(d, None) and Geometry(d, None).is_of(d, "raw")
    assert Geometry(d, "self").is_of(d, "self") and not Geometry(d, "self").is_of(d, "raw")
    with pytest.raises(ParameterError, match="'raw', 'self', None or an AIPMetric"):
        Geometry(d, "fit")  # "fit" is resolved where activations exist, not here
    with pytest.raises(ParameterTypeError):
        Geometry(d, np.eye(10))
    with pytest.raises(ShapeMismatchError):
        Geometry(Dictionary(np.eye(4)), m)
    # at the edge: a Geometry passes through; a dictionary takes the analysis's default
    geom = Geometry(d, m)
    assert Geometry.of(geom) is geom and Geometry.of(geom, m) is geom
    assert Geometry.of(d, default="self").is_of(d, "self")
    with pytest.raises(ParameterError, match="metric is required"):
        Geometry.of(d)
    with pytest.raises(ParameterError, match="another metric"):
        Geometry.of(geom, "raw")
    assert repr(UNSET) == "UNSET"
    assert same_atoms(d, Dictionary(d.atoms.copy())) and not same_atoms(d, _problem(1)[0])


def test_a_bad_spelling_is_reported_where_it_was_before():
    # the edge resolves on first use: argument errors of the analysis come first, as before
    d, _ = _problem()
    with pytest.raises(ParameterError, match="budget"):
        rip_bounds(d, 2, "bogus", budget_s=-1)
    with pytest.raises(ParameterError, match="'raw', 'self', None or an AIPMetric"):
        coherence(d, "bogus")


def test_the_geometry_gives_the_numbers_of_the_dictionary_edge():
    d, m = _problem(2)
    geom = Geometry(d, m)
    a, b = coherence(d, m, babel_p=5, top=10), coherence(geom, babel_p=5, top=10)
    assert (a.mu, a.pair, a.mu_upper) == (b.mu, b.pair, b.mu_upper)
    assert np.array_equal(a.babel, b.babel) and np.array_equal(a.babel_upper, b.babel_upper)
    assert np.array_equal(a.per_atom, b.per_atom, equal_nan=True)
    r1 = rip_bounds(d, [2, 3], m, effort=20, seed=0)
    r2 = rip_bounds(geom, [2, 3], effort=20, seed=0)
    def timeless(res):
        return [{k: v for k, v in b.items() if k != "seconds"} for b in res.to_dict()["brackets"]]

    assert timeless(r1) == timeless(r2)
    s1, s2 = spark_bounds(d, m, effort=20), spark_bounds(geom, effort=20)
    assert (s1.lower, s1.upper, s1.witness) == (s2.lower, s2.upper, s2.witness)
    p1, p2 = per_atom_coherence(d, m), per_atom_coherence(geom)
    assert np.array_equal(p1.values, p2.values, equal_nan=True)
    C = sp.random(20, 30, density=0.1, random_state=3, format="csr")
    c1, c2 = classify_recovery(d, C, metric=m), classify_recovery(geom, C)
    assert np.array_equal(c1.status, c2.status)
    assert np.array_equal(c1.certificate, c2.certificate, equal_nan=True)


def test_a_mismatched_coherence_pass_or_geometry_is_refused():
    d, m = _problem()
    other, _ = _problem(1)
    geom = Geometry(d, m)
    with pytest.raises(ParameterError, match="not of this geometry"):
        geom.keep_coherence(coherence(Geometry(d, "raw"), babel_p=2, top=4))  # another metric
    with pytest.raises(ParameterError, match="not of this geometry"):
        geom.keep_coherence(coherence(other, m, babel_p=2, top=4))  # other atoms
    own = coherence(d, m, babel_p=2, top=4)  # made elsewhere, of these atoms: kept
    geom.keep_coherence(own)
    assert geom.coherence_pass(babel_p=2, top=4) is own
    with pytest.raises(ParameterError, match="geometry is of"):
        geom.check(other)


def test_compare_units_refuses_a_geometry_of_other_atoms():
    from rip_atoms.criteria import UnitSet, compare_units

    d, m = _problem()
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 10))
    unit = UnitSet.from_codes("u", d, sp.random(200, 30, density=0.05, random_state=5,
                                                format="csr"))
    with pytest.raises(ParameterError, match="geometry is of"):
        compare_units(X, [unit], neurons=False, metric=m, l1=False,
                      geometries={"u": Geometry(_problem(1)[0], m)})
    with pytest.raises(ParameterError, match="another metric"):
        compare_units(X, [unit], neurons=False, metric=m, l1=False,
                      geometries={"u": Geometry(d, "raw")})
    plain = compare_units(X, [unit], neurons=False, metric=m, l1=False)
    given = compare_units(X, [unit], neurons=False, metric=m, l1=False,
                          geometries={"u": Geometry(d, m)})
    assert plain.rows[0].mu == given.rows[0].mu


def test_spark_searches_raw_geometry_where_the_self_metric_does_not_exist():
    # N_live < H: (D Dᵀ)⁻¹ does not exist, the spark does not depend on the metric
    D = np.random.default_rng(0).standard_normal((8, 5))
    res = spark_bounds(D, budget_s=1)
    assert any("raw geometry used" in n for n in res.notes)
    assert res.lower == res.upper == float("inf")  # 5 generic atoms of R⁸: independent
    from rip_atoms.errors import SingularMetricError

    with pytest.raises(SingularMetricError):  # an explicit geometry is used as it is
        spark_bounds(Geometry.of(D, "self"), budget_s=1)
