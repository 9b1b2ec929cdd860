"""The Dask worker plugin that warms each sweep worker as it joins (imported only when the
sweep runs on dask.distributed, so the rest of :mod:`rip_atoms.sweep` does not need it)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from rip_atoms.sweep.cell import warm_up

__all__ = ["WarmUp"]


class WarmUp(WorkerPlugin):
    """Run :func:`rip_atoms.sweep.cell.warm_up` once in every worker, including workers that join
    or restart later. A failure is ignored: warming is an optimisation, and a worker that cannot
    warm up still runs cells, which then report their own errors."""

    idempotent = True

    def setup(self, worker) -> None:
        try:
            warm_up()
        except Exception:  # noqa: BLE001
            pass
