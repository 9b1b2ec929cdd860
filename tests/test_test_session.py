"""The test session gives each test process its share of the cores (tests/conftest.py): with
``pytest -n W`` on C cores, every BLAS/OpenMP/numba/torch pool of a worker — and of the
subprocesses its tests start — has at most max(1, C // W) threads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np  # noqa: F401  (loads the BLAS whose pool is checked)
import pytest
from threadpoolctl import threadpool_info

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def _share() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # set by xdist
    return max(1, (cores or 1) // workers)


def test_this_process_has_its_share_of_the_cores():
    share = _share()
    for name in THREAD_VARIABLES:
        assert 1 <= int(os.environ[name]) <= share, (name, os.environ[name], share)
    pools = threadpool_info()
    assert pools, "no BLAS/OpenMP pool found (numpy is loaded)"
    for pool in pools:
        assert pool["num_threads"] <= share, pool
    import numba

    assert numba.get_num_threads() <= share


def test_subprocesses_inherit_the_share():
    share = _share()
    code = ("import json, numba, numpy, threadpoolctl; "
            "print(json.dumps([max(p['num_threads'] for p in threadpoolctl.threadpool_info()), "
            "numba.config.NUMBA_NUM_THREADS]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    blas, numba_threads = (int(v) for v in r.stdout.strip().strip("[]").split(","))
    assert 1 <= blas <= share and 1 <= numba_threads <= share


def test_torch_uses_its_share():
    torch = pytest.importorskip("torch")
    assert 1 <= torch.get_num_threads() <= _share()


def test_dask_workers_share_this_process_share(monkeypatch):
    """A LocalCluster started inside a test (or any process given a share of the cores through
    OMP_NUM_THREADS) splits that share among its workers, not the machine's cores."""
    from rip_atoms import cluster
    from rip_atoms.kernels import parallel_copy

    monkeypatch.setattr(parallel_copy.os, "sched_getaffinity", lambda _pid: set(range(16)),
                        raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cluster._blas_threads(2) == 8 and cluster._blas_threads(32) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert cluster._blas_threads(2) == 2 and cluster._blas_threads(8) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cluster._blas_threads(1) == 1
