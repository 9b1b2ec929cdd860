"""The one way rip_atoms reaches past one process: a dask.distributed client.

Distributed verify (the Gram tiles of the coherence pass, the token chunks of ℓ1 certification)
and ``rip-atoms sweep`` (one task per cell) both run their independent tasks on a Dask cluster:

* by default a :class:`distributed.LocalCluster` on this machine, ``workers`` processes with one
  thread each (so a task owns its worker's cores), bound to 127.0.0.1;
* with ``scheduler="tcp://HOST:PORT"``, an existing cluster (``dask-scheduler`` plus
  ``dask-worker`` processes anywhere that can import rip_atoms and read the inputs' paths).

BLAS threads. A worker process runs one task at a time; on a LocalCluster of w workers on a
machine with c cores each worker's BLAS (OpenBLAS/MKL, numba, torch) gets ⌊c / w⌋ threads, set
through the environment before the worker starts (``OMP_NUM_THREADS`` etc.), so w workers never
oversubscribe the cores; c is capped by the starting process's ``OMP_NUM_THREADS`` when that is
set, so a process given a share of the cores passes on that share, not the machine. Workers of
an external cluster keep their own settings.

Retries. A task whose worker dies is rescheduled by Dask on another worker (the scheduler's
``allowed-failures``, default 3); tasks here are pure functions of their inputs that write their
results atomically, so a retried task gives the same bytes.

dask.distributed is an optional extra (``pip install 'rip-atoms[distributed]'``); without it
:func:`dask_client` raises :class:`DistributedUnavailableError`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from rip_atoms.errors import ParameterError, RipAtomsError

__all__ = ["BLAS_THREAD_VARIABLES", "DistributedUnavailableError", "dask_client",
           "default_workers", "require_distributed"]

#: Environment variables that size the BLAS / OpenMP / numba / torch thread pools of a worker.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                         "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class DistributedUnavailableError(RipAtomsError):
    """dask.distributed is not installed, or the scheduler address cannot be reached."""


def require_distributed() -> Any:
    """Import and return ``distributed``, or raise a one-line error naming the extra."""
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DistributedUnavailableError(
            "this needs dask.distributed: pip install 'rip-atoms[distributed]' "
            f"({exc.__class__.__name__}: {exc})") from None
    return distributed


def default_workers() -> int:
    """The LocalCluster size used when none is given: one worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def _blas_threads(workers: int) -> int:
    """⌊c / workers⌋ threads per worker, c the cores this process may use — capped by this
    process's own ``OMP_NUM_THREADS`` when it is set (a process given its share of the cores,
    e.g. a test worker, shares that share among its Dask workers instead of the machine's)."""
    from rip_atoms.kernels.parallel_copy import copy_threads

    return max(1, copy_threads() // workers)


def _restore_environment(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def dask_client(*, scheduler: str | None = None, workers: int | None = None,
                resources: dict[str, float] | None = None, quiet: bool = False,
                log=None, blas_threads: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for the duration of the ``with`` block.

    Parameters
    ----------
    scheduler
        ``tcp://HOST:PORT`` of a running ``dask-scheduler``; ``None`` starts a LocalCluster.
    workers
        LocalCluster worker processes (default: one per core). Ignored with ``scheduler``.
    resources
        Abstract resources each LocalCluster worker declares (e.g. ``{"GPU": 1}``), so tasks
        that ask for them run one per resource unit.
    quiet
        Do not print the dashboard link.
    log
        Where the one-line dashboard note goes (a callable taking a string; default stderr).
    blas_threads
        BLAS/numba threads per LocalCluster worker (default ⌊cores / workers⌋); e.g. 1 to
        measure how a pass scales with the number of equal workers.

    The LocalCluster binds to 127.0.0.1, uses processes (one thread each, so numpy/numba work
    does not contend for the GIL) and sizes each worker's BLAS pools to ⌊cores / workers⌋.
    """
    distributed = require_distributed()
    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler and ":" not in scheduler:
            raise ParameterError(f"--scheduler must be an address like tcp://HOST:PORT, "
                                 f"got {scheduler!r}")
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise DistributedUnavailableError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            if not quiet:
                emit(f"dask: scheduler {scheduler}, dashboard {client.dashboard_link}")
            yield client
        finally:
            client.close()
        return

    n = default_workers() if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"--workers must be an integer ≥ 1, got {workers!r}")
    threads = _blas_threads(n) if blas_threads is None else blas_threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParameterError(f"blas_threads must be an integer ≥ 1, got {blas_threads!r}")
    env = {name: str(threads) for name in BLAS_THREAD_VARIABLES}
    # Dask applies the workers' environment to this process too; this process keeps its own
    # thread settings (numba refuses a changed NUMBA_NUM_THREADS once its pool is running)
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    stack = contextlib.ExitStack()
    stack.callback(_restore_environment, saved)
    # the scheduler's dashboard needs bokeh; without it Dask warns once and runs without one
    with stack:
        import dask
        stack.enter_context(dask.config.set({
            "distributed.worker.daemon": False,  # workers may start their own processes
            "distributed.nanny.pre-spawn-environ": env,
            "distributed.logging.distributed": "error",
        }))
        cluster = stack.enter_context(distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", resources=resources, silence_logs=40,
            env=env))
        client = stack.enter_context(distributed.Client(cluster))
        _restore_environment(saved)
        if not quiet:
            emit(f"dask: LocalCluster of {n} worker(s) × 1 thread, {threads} BLAS thread(s) each, "
                 f"dashboard {client.dashboard_link}")
        yield client
