"""A Dask worker preload that pays a certifying worker's one-time costs when it starts.

The first :func:`rip_atoms.recovery.classify_recovery` call in a fresh process imports the
classifier, SciPy's HiGHS, scikit-learn's LARS and numba's cached kernels and sets up BLAS:
about 2–4 s on this project's 2-core machine, more than a 500-code task's own work. A worker
started with this preload does it once, before it takes tasks::

    dask worker tcp://HOST:8786 --preload rip_atoms.recovery.worker_warm_up

:func:`rip_atoms.cluster.dask_client` starts its LocalCluster workers with it for
``rip-atoms verify`` and ``rip-atoms recover``. The numbers do not depend on it.
"""

from __future__ import annotations

import time

__all__ = ["dask_setup", "warm_up"]


def warm_up() -> float:
    """Certify a few random codes on a 24×64 dictionary (every stage's imports and lazy set-up);
    returns the seconds it took."""
    t0 = time.perf_counter()
    import numpy as np
    import scipy.sparse as sp

    from rip_atoms.recovery import classify_recovery

    rng = np.random.default_rng(0)
    D = rng.standard_normal((24, 64))
    C = sp.random(12, 64, density=0.08, format="csr", random_state=0)
    C.data = np.abs(C.data) + 1.0
    classify_recovery(D, C, nonneg=True, metric=None)
    return time.perf_counter() - t0


def dask_setup(worker=None) -> None:
    """Dask's preload hook: :func:`warm_up` (a failure is ignored: warming is an optimisation,
    and a worker that cannot warm up still runs tasks, which report their own errors)."""
    try:
        warm_up()
    except Exception:  # noqa: BLE001
        pass
