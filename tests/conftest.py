"""Test-session set-up: each test worker's share of the cores, and the hypothesis profiles.

Threads. ``pytest -n W`` on a machine with C cores runs W worker processes; left alone, each
worker's OpenBLAS/OpenMP/numba/torch pools would start C threads, W·C threads on C cores (on 2
cores with ``-n 2`` the whole suite took 17 min 47 s instead of 9 min 25 s, and searches cut by
wall-clock time got less far). So each worker (or the one process of a plain ``pytest``) gets
``max(1, C // W)`` threads:

* through the environment (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``NUMBA_NUM_THREADS``, …), set in ``pytest_configure`` of the controller before xdist starts
  its workers, so the workers — and every subprocess a test starts (CLI runs, Dask workers,
  notebook kernels) — read it before numpy, numba or torch load;
* and, for libraries this process had already loaded, with threadpoolctl, ``numba.
  set_num_threads`` and ``torch.set_num_threads``.

A smaller value already in the environment is kept (CI's one-BLAS-thread run sets
``OMP_NUM_THREADS=1``); a larger one is lowered to the share.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: the variables that size the thread pools of BLAS, OpenMP, numba, numexpr and torch
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
_SHARE = pytest.StashKey[int]()


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def session_workers(config) -> int:
    """How many test processes share the machine: xdist's worker count, else 1."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # inside an xdist worker
        return max(1, int(workerinput.get("workercount", 1)))
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") != "no":
        # xdist's pytest_cmdline_main has already resolved -n auto/logical and --maxprocesses
        # into one "popen" entry per worker
        return max(1, len(config.getoption("tx", None) or []))
    return 1


def thread_share(config) -> int:
    return max(1, available_cores() // session_workers(config))


def _capped(value: str | None, share: int) -> int:
    try:
        given = int(value) if value is not None else 0
    except ValueError:
        given = 0
    return min(given, share) if given > 0 else share


def pytest_configure(config):
    share = thread_share(config)
    numba_loaded = "numba" in sys.modules
    for name in THREAD_VARIABLES:
        if name == "NUMBA_NUM_THREADS" and numba_loaded:
            continue  # numba refuses a changed NUMBA_NUM_THREADS once it has read it
        os.environ[name] = str(_capped(os.environ.get(name), share))
    threads = _capped(os.environ.get("OMP_NUM_THREADS"), share)
    config.stash[_SHARE] = threads
    # the pools of libraries already loaded in this process
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if numba_loaded:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def pytest_report_header(config):
    share = config.stash.get(_SHARE, None)
    if share is not None:
        return (f"threads per test process: {share} ({available_cores()} cores, "
                f"{session_workers(config)} process(es))")
    return None
