"""Issue 13, certification side: the float32-screened Fuchs stage, the push stage, the torch
engine and distributed certification decide exactly as an independent exact reference.

References: the certificate LP written out in recovery_reference.py with scipy's HiGHS (t* < 1
iff the code is the unique basis-pursuit solution), never the code under test; engines and
the distributed run are compared with the single-process numpy run code by code.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recovery_reference import CERT, FAIL, certificate_lp, random_codes, unit_gaussian

from rip_atoms.kernels.recovery_batch import fuchs_batch, screen_error
from rip_atoms.recovery import classify_recovery


def _near_threshold_problem(nonneg: bool, seed: int = 13):
    """80×320 Gaussian atoms and 36 codes with k spread across the weak threshold."""
    H, N = 80, 320
    D = unit_gaussian(H, N, seed)
    ks = np.repeat(np.arange(6, 42, 3), 3) if nonneg else np.repeat(np.arange(4, 28, 2), 3)
    return D, random_codes(N, ks, nonneg, seed + 1)


@pytest.mark.sensitive
@pytest.mark.parametrize("nonneg", [True, False])
def test_statuses_equal_the_exact_lp_reference_near_the_threshold(nonneg):
    D, C = _near_threshold_problem(nonneg)
    res = classify_recovery(D, C, nonneg=nonneg, metric=None, chunk_size=7)
    t_star = np.array([certificate_lp(D, np.flatnonzero(c), np.sign(c[c != 0]), nonneg)
                       for c in C])
    clear = np.abs(t_star - 1.0) > 1e-6  # the exact test is t* < 1; ties are left out
    assert clear.sum() >= len(C) - 1
    assert ((t_star > 0.9) & (t_star < 1.1)).sum() >= 3  # codes near the threshold are in it
    expected = np.where(t_star < 1.0, CERT, FAIL)
    np.testing.assert_array_equal(res.status[clear], expected[clear])
    assert (res.status == CERT).any() and (res.status == FAIL).any()


@pytest.mark.sensitive
def test_float32_screen_gives_the_float64_values():
    """fuchs_batch with the float32 screen: the same values (the float64 value of the
    maximising atom), residuals and rank decisions as with the float64 GEMM."""
    D = unit_gaussian(64, 512, 3)
    DT = np.ascontiguousarray(D.T)
    rng = np.random.default_rng(4)
    sup = [np.sort(rng.choice(512, k, replace=False)) for k in rng.integers(1, 40, size=60)]
    for nonneg in (True, False):
        sg = [np.ones(len(S)) if nonneg else rng.choice([-1.0, 1.0], len(S)) for S in sup]
        a = fuchs_batch(DT, sup, sg, nonneg=nonneg)
        b = fuchs_batch(DT, sup, sg, nonneg=nonneg, DT32=DT.astype(np.float32))
        np.testing.assert_allclose(b.value, a.value, rtol=0, atol=1e-13)
        np.testing.assert_array_equal(a.rank_suspect, b.rank_suspect)


@pytest.mark.sensitive
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**31 - 1))
def test_screen_error_bounds_the_float32_dot_product(h, seed):
    """|fl₃₂(fl₃₂(d)ᵀfl₃₂(y)) − dᵀy| ≤ e₃₂ (exact dᵀy from math.fsum of exact products)."""
    import math

    rng = np.random.default_rng(seed)
    d = rng.standard_normal(h)
    d /= np.linalg.norm(d)
    y = rng.standard_normal(h) * 10.0 ** rng.uniform(-3, 3)
    exact = math.fsum(float(p) for p in (d.astype(np.longdouble) * y.astype(np.longdouble)))
    got = float((d.astype(np.float32)[None, :] @ y.astype(np.float32)[:, None])[0, 0])
    assert abs(got - exact) <= screen_error(h, np.linalg.norm(y), np.linalg.norm(d) + 1e-15)


@pytest.mark.sensitive
def test_torch_engine_on_cpu_gives_the_numpy_statuses():
    pytest.importorskip("torch")
    for nonneg in (True, False):
        D, C = _near_threshold_problem(nonneg, seed=21)
        a = classify_recovery(D, C, nonneg=nonneg, metric=None, chunk_size=9)
        b = classify_recovery(D, C, nonneg=nonneg, metric=None, chunk_size=9, engine="torch",
                              device="cpu")
        np.testing.assert_array_equal(a.status, b.status)
        np.testing.assert_array_equal(a.method, b.method)
        assert (a.witnesses != b.witnesses).nnz == 0


def _assert_same(a, b):
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.method, b.method)
    np.testing.assert_array_equal(a.certificate, b.certificate)
    assert (a.witnesses != b.witnesses).nnz == 0
    # the atom scales and the metric come from D̃ (the shared files, or each worker's own)
    np.testing.assert_array_equal(a.atom_scale, b.atom_scale)
    assert a.metric == b.metric


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["shared", "scatter"])
def test_distributed_statuses_identical_and_survive_a_killed_worker(transport, monkeypatch):
    """LocalCluster of 2 workers: the same per-code record as one process; then again with one
    worker SIGKILLed while the tasks run (Dask retries its task elsewhere). ``shared``: the
    workers map the driver's D̃ files (a LocalCluster's default); ``scatter``: D is scattered
    and lost with the killed worker (the driver scatters it again)."""
    pytest.importorskip("distributed")
    from rip_atoms.cluster import dask_client
    from rip_atoms.recovery import distributed

    if transport == "scatter":
        monkeypatch.setattr(distributed, "_share", lambda *args: (None, None))

    D, C = _near_threshold_problem(True, seed=5)
    C = np.vstack([C, C[::-1], C])  # 108 codes, 27 chunks of 4
    single = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=4)
    with dask_client(workers=2, quiet=True) as client:
        dist = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=4, client=client)
        _assert_same(single, dist)
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        killed = threading.Event()
        done = threading.Event()

        def kill_when_busy():  # SIGKILL the victim while it runs a classification task
            while not done.is_set():
                busy = client.processing().get(victim, ())
                if any("_classify_task" in str(key) for key in busy):
                    os.kill(pids[victim], signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.005)

        thread = threading.Thread(target=kill_when_busy, daemon=True)
        thread.start()
        try:
            again = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=4,
                                      client=client)
        finally:
            done.set()
            thread.join()
    assert killed.is_set(), "the worker was not killed while the run went on"
    _assert_same(single, again)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 24), extra=st.integers(1, 40), deficient=st.integers(0, 2),
       seed=st.integers(0, 2**16))
def test_row_space_projector_is_the_orthogonal_projector(h, extra, deficient, seed):
    """K Kᵀ = Dᵀ(DDᵀ)⁺D (numpy's pinv in float64, the reference) and project64 lands on
    {Dx = y}, through the Cholesky factor (full row rank) and through the eigendecomposition
    (``deficient`` rows repeated: DDᵀ singular, the Cholesky proof fails)."""
    from rip_atoms.kernels.recovery_batch import RowSpaceProjector

    rng = np.random.default_rng(seed)
    n = h + extra
    D = rng.standard_normal((h, n))
    if deficient and h > 2:
        D[: min(deficient, h - 1)] = D[-1]  # rank h − deficient
    D = np.asfortranarray(D)
    P = RowSpaceProjector(D, dtype=np.float64, Dt_low=D.astype(np.float32))
    reference = D.T @ np.linalg.pinv(D @ D.T, rcond=1e-10, hermitian=True) @ D
    np.testing.assert_allclose(P.K @ P.K.T, reference, atol=1e-8)
    assert P.rank == np.linalg.matrix_rank(D)
    y = D @ rng.standard_normal(n)
    V = rng.standard_normal((n, 2))
    X = P.project64(V, np.column_stack([y, y]))
    np.testing.assert_allclose(D @ X, np.column_stack([y, y]), atol=1e-8 * max(1, np.abs(y).max()))
    # float32 K from D's float32 copy: the same projector to float32 accuracy
    P32 = RowSpaceProjector(D, Dt_low=D.astype(np.float32))
    assert P32.K.dtype == np.float32
    np.testing.assert_allclose(P32.K.astype(np.float64) @ P32.K.T, reference, atol=1e-4)
