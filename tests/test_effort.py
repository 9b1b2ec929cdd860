"""Work budgets (``effort``): searches that read no clock give the same result anywhere.

The brackets found under an effort budget are compared for equality only with each other (same
input, seed and effort: the code makes them identical); against the truth they are checked
only for containment."""

import itertools
import math
import time

import numpy as np
import pytest

from rip_atoms.deadline import UNIT_S, Deadline
from rip_atoms.errors import ParameterError
from rip_atoms.rip import rip_bounds
from rip_atoms.spark import spark_bounds

pytestmark = pytest.mark.sensitive  # budgets and precision: CI reruns these


def test_a_work_budget_counts_checks_charges_and_shares():
    d = Deadline(effort=5)
    assert [d.expired() for _ in range(6)] == [False] * 5 + [True]
    d = Deadline(effort=10)
    assert not d.take(11 * UNIT_S) and d.used == 0.0  # does not fit: not started, not charged
    assert d.take(3 * UNIT_S)
    assert d.used == pytest.approx(3.0)
    child = d.share(0.5)  # half of the 7 units left
    assert child.effort == 3
    assert [child.expired() for _ in range(4)] == [False] * 3 + [True]
    assert d.used == pytest.approx(7.0)  # the child's units are the parent's too
    assert not d.expired(0.0) and d.expired(4.0)
    rec = d.to_dict()
    assert rec["kind"] == "effort" and rec["used"] == 10 and rec["cap_hit"] is False


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_effort_must_be_a_positive_integer(bad):
    with pytest.raises(ParameterError):
        Deadline(effort=bad)
    with pytest.raises(ParameterError):
        rip_bounds(np.eye(4), 2, "raw", effort=bad)


def test_the_wall_clock_cap_is_recorded():
    d = Deadline(1e-6, effort=10**9)
    time.sleep(1e-3)
    assert d.expired() and d.cap_hit and d.to_dict()["cap_hit"] is True
    D = np.random.default_rng(1).standard_normal((16, 60))
    res = rip_bounds(D, [4], "raw", effort=10**9, budget_s=1e-6, enumerate_max=0)
    assert res.budget["cap_hit"] is True


def _racing_clock(monkeypatch):
    """time.perf_counter made to jump 1000 s at every reading."""
    t = [time.perf_counter()]

    def racing():
        t[0] += 1000.0
        return t[0]

    monkeypatch.setattr(time, "perf_counter", racing)


def _brackets(res):
    return [(b.U_lower, b.U_upper, b.L_lower, b.L_upper, b.witness_U, b.witness_L, b.search)
            for b in res.brackets]


def test_effort_budgets_read_no_clock(monkeypatch):
    """With a clock that races (each reading 1000 s after the last), effort-budgeted RIP and
    spark searches do exactly the work they do with the real clock: same brackets, same
    witnesses, same units used."""
    D = np.random.default_rng(2).standard_normal((20, 48))
    rip_ref = rip_bounds(D, [3, 5], "self", effort=40, enumerate_max=0, seed=3)
    spark_ref = spark_bounds(D, "self", effort=30, seed=3, enumerate_max=2000)
    _racing_clock(monkeypatch)
    rip_fast = rip_bounds(D, [3, 5], "self", effort=40, enumerate_max=0, seed=3)
    spark_fast = spark_bounds(D, "self", effort=30, seed=3, enumerate_max=2000)
    assert _brackets(rip_fast) == _brackets(rip_ref)
    assert rip_fast.budget["used"] == rip_ref.budget["used"]
    assert not rip_fast.budget["cap_hit"]
    assert (spark_fast.lower, spark_fast.upper, spark_fast.witness) == (
        spark_ref.lower, spark_ref.upper, spark_ref.witness)
    assert spark_fast.budget["used"] == spark_ref.budget["used"]


def _enumerated(D, k):
    """max λmax − 1 and 1 − min λmin of G_S over every k-subset (numpy, independent)."""
    A = D / np.linalg.norm(D, axis=0)
    hi, lo = -np.inf, np.inf
    for S in itertools.combinations(range(A.shape[1]), k):
        w = np.linalg.eigvalsh(A[:, S].T @ A[:, S])
        hi, lo = max(hi, w[-1]), min(lo, w[0])
    return hi - 1.0, 1.0 - lo


@pytest.mark.parametrize("effort", [1, 7, 200])
def test_effort_brackets_contain_the_truth(effort):
    D = np.random.default_rng(5).standard_normal((6, 14))
    U, L = _enumerated(D, 3)
    b = rip_bounds(D, 3, "raw", effort=effort, enumerate_max=0, seed=1)[3]
    assert b.U_lower <= U + 1e-12 <= b.U_upper + 2e-12
    assert b.L_lower <= L + 1e-12 <= b.L_upper + 2e-12


def test_the_shared_pass_gives_the_same_brackets_under_effort():
    """The test that failed on a slower machine (issue 22), under a work budget: a covering
    coherence pass passed in changes nothing, upper sides included (the SDP bound runs or not
    by effort, not by the clock)."""
    from rip_atoms.coherence import coherence
    from rip_atoms.geometry import Geometry

    D = np.random.default_rng(0).standard_normal((12, 40))
    geom = Geometry(D, "self")
    coherence(geom, babel_p=13, top=256)  # kept on the geometry, reused by rip_bounds
    a = rip_bounds(D, [2, 3, 5], "self", effort=25, enumerate_max=0, seed=1)
    b = rip_bounds(geom, [2, 3, 5], effort=25, enumerate_max=0, seed=1)
    assert _brackets(a) == _brackets(b)


def test_search_budget_in_effort_units():
    from rip_atoms.report.budget import SearchBudget

    sb = SearchBudget(100.0, effort=1000)
    g = sb.grant("rip")
    assert g["effort"] == 350 and 0 < g["budget_s"] <= 100.0
    sb.charge("exact parts", 50.0)  # exact parts are outside a work budget
    sb.charge("rip", 9.0, {"used": 100.0, "cap_hit": False})
    assert sb.grant("spark")["effort"] == math.floor(900 * 0.15 / 0.65)
    sb.charge("spark", 1.0, {"used": 10.0, "cap_hit": True})
    rec = sb.to_dict()
    assert rec["kind"] == "effort" and rec["spent"] == 110.0 and rec["cap_hit"] == ["spark"]
