"""Distributed ℓ1 certification: the token chunks of :func:`classify_recovery` as Dask tasks.

:func:`classify_distributed` (reached through ``classify_recovery(..., client=client)``):

* the workers get D̃ one of two ways:

  - **shared files** (every worker on the driver's machine, e.g. a LocalCluster): the driver
    builds D̃ once, in memory-mapped files in shared memory
    (:mod:`rip_atoms.recovery.shared_atoms`), and each worker maps them read-only — no
    scatter, no per-worker whitening, one copy of D̃ in the machine's memory;
  - **scatter** (a worker cannot see the files: another machine): D (and the metric) is
    scattered once to every worker (``broadcast=True``) and each worker builds D̃ once per call;

  either way a worker keeps D̃ for the call (cached by a token of the call, dropped at its end);
* the codes are cut into tasks of whole chunks (``chunk_size`` rows each, the same boundaries
  as the single-process run, whose stages work per chunk: Fuchs blocks, ADMM batches); a task is
  the pure function (D̃, its rows, options, budget share) → that rows' per-code record, so a
  task retried after its worker died (Dask reschedules it; ``allowed-failures``) returns the
  same record;
* records are merged in chunk order: per-code statuses, methods, bounds and witnesses are those
  of the single-process run (the shared D̃ is the same array bit for bit).

Budgets. With B seconds left of ``budget_s`` once D̃ is published (or D scattered) and T tasks
on w workers (w counted then), each task runs under the budget B·min(w, T)/T — T/w rounds of
tasks fit in B — measured from its own start; nothing is published once the budget is spent.
The client waits for results until the budget's deadline, cancels what is left, and leaves
those chunks undetermined. So a budgeted run stays within ``budget_s`` wall seconds plus the
time to return the finished records.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from rip_atoms.deadline import Deadline
from rip_atoms.recovery.options import ClassifyOptions
from rip_atoms.recovery.problem import UnitAtoms, chunk_rows
from rip_atoms.recovery.shared_atoms import (
    SharedAtoms,
    SharedAtomsUnavailable,
    can_load,
    load_atoms,
    publish_atoms,
    remove_atoms,
)

#: per worker process: (token, D̃) of the call in progress
_ATOMS_CACHE: dict[str, UnitAtoms] = {}
#: Dask retries of a task whose worker died, and resubmissions after a lost dictionary
_RETRIES = 3
#: chunks per task (a task holds at least this many chunks when there are enough)
_CHUNKS_PER_TASK = 1


def _worker_atoms(token: str, source, metric) -> UnitAtoms:
    """This worker's D̃ for the call ``token``: mapped from the driver's files (``source`` a
    :class:`SharedAtoms`) or built from the scattered D."""
    atoms = _ATOMS_CACHE.get(token)
    if atoms is None:
        _ATOMS_CACHE.clear()
        if isinstance(source, SharedAtoms):
            atoms = load_atoms(source)
        else:
            atoms = UnitAtoms(source, metric)
        _ATOMS_CACHE[token] = atoms
    return atoms


def _forget(token: str) -> None:
    """Drop the call's D̃ on a worker (run at the end of the call: unmaps the shared files)."""
    _ATOMS_CACHE.pop(token, None)


def _classify_task(run_rows, token: str, source, metric, rows, opts: ClassifyOptions,
                   budget: float | None) -> dict:
    """One task: classify the CSR ``rows`` (whole chunks) as the single-process run would
    (``run_rows`` is :func:`rip_atoms.recovery.classify._classify_rows`)."""
    atoms = _worker_atoms(token, source, metric)
    deadline = Deadline(budget) if budget is not None else None
    rec, seconds = run_rows(atoms, "sparse", rows, rows.shape[0], opts, deadline)
    return {"rec": rec, "seconds": seconds, "metric": atoms.metric_info(),
            "scale": atoms.scale}


def _share(client: Any, D, metric, corrected=None
           ) -> tuple[UnitAtoms | None, SharedAtoms | None]:
    """Publish D̃ in files when every worker sees them; else (None, None): scatter instead.
    The files are removed again on any way out but success (Ctrl-C included)."""
    try:
        atoms, shared = publish_atoms(D, metric, corrected=corrected)
    except (OSError, TypeError, ValueError):  # no room, or a manifest that cannot be written
        return None, None
    try:
        try:
            seen = client.run(can_load, shared)
        except Exception:  # noqa: BLE001 - a worker that cannot answer cannot map the files
            seen = {}
        if seen and all(seen.values()):
            return atoms, shared
    except BaseException:
        remove_atoms(shared)
        raise
    remove_atoms(shared)
    return None, None


def classify_distributed(client: Any, D, metric, kind: str, M, n: int, opts: ClassifyOptions,
                         deadline: Deadline | None, run_rows, recorder, *,
                         share: bool = True, corrected=None):
    """Run the chunks of ``M`` (n rows) as tasks on ``client``; returns the merged record, the
    stage seconds summed over tasks and what D̃ says of the atoms (``metric``: its
    description, ``scale``: ‖W dᵢ‖) (module docstring). ``share=False`` scatters D even to
    workers that could map the driver's files; ``corrected`` (the caller's corrected atoms
    with ``rows64``) are copied into the shared files instead of whitening D again.
    ``run_rows`` and ``recorder`` are :func:`~rip_atoms.recovery.classify._classify_rows` and
    its record class (passed in, so this module does not import the classifier that calls
    it)."""
    from distributed import CancelledError

    chunk = opts.chunk_size
    per_task = chunk * _CHUNKS_PER_TASK
    bounds = [(a, min(n, a + per_task)) for a in range(0, n, per_task)]
    token = uuid.uuid4().hex
    rec = recorder(n, opts.keep_certificates)
    seconds: dict[str, float] = {}
    about: dict | None = None
    shared: SharedAtoms | None = None
    futures: list = []
    try:
        atoms = None
        if share and (deadline is None or not deadline.expired()):
            atoms, shared = _share(client, D, metric, corrected)
        state: dict[str, Any] = {"source": shared}

        def scatter() -> None:
            state["source"] = client.scatter(D, broadcast=True, hash=False)

        if shared is None:
            scatter()
        # each task's share of what is left of the budget once D̃ is out (module docstring)
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        budget = None
        if deadline is not None:
            budget = (max(0.0, deadline.remaining()) * min(workers, len(bounds))
                      / max(1, len(bounds)))

        def submit(a: int, b: int):
            mapped = shared is not None and state["source"] is shared
            return client.submit(_classify_task, run_rows, token, state["source"],
                                 None if mapped else metric, chunk_rows(kind, M, a, b), opts,
                                 budget, pure=False, retries=_RETRIES)

        futures.extend(submit(a, b) for a, b in bounds)
        if atoms is not None:
            about = {"metric": atoms.metric_info(), "scale": atoms.scale.copy()}
        for i, (a, b) in enumerate(bounds):
            part = None
            for attempt in range(_RETRIES + 1):
                timeout = None if deadline is None else max(0.0, deadline.remaining())
                try:
                    part = futures[i].result(timeout=timeout)
                    break
                except TimeoutError:
                    break  # past the budget: this chunk stays undetermined
                except (CancelledError, SharedAtomsUnavailable):
                    # the scattered dictionary went down with a killed worker ("lost
                    # dependencies"), or a worker cannot map the shared files (one that joined
                    # from another machine): scatter D and resubmit the chunks still open —
                    # after a failed map, every chunk not finished, so D is sent only once
                    if attempt == _RETRIES:
                        raise
                    was_mapped = shared is not None and state["source"] is shared
                    scatter()
                    for j in range(i, len(bounds)):
                        status = futures[j].status
                        if status in ("cancelled", "lost", "error") or (
                                was_mapped and status != "finished"):
                            futures[j].cancel()
                            futures[j] = submit(*bounds[j])
            if part is None:
                continue
            _merge(rec, part["rec"], a, b)
            if about is None:
                about = {"metric": part["metric"], "scale": part["scale"]}
            for k, v in part["seconds"].items():
                seconds[k] = seconds.get(k, 0.0) + v
    finally:
        if shared is not None:  # first, so no late task maps them again
            remove_atoms(shared)
        client.cancel([f for f in futures if not f.done()])
        with contextlib.suppress(Exception):  # best effort: a worker may have gone
            client.run(_forget, token)
    if not seconds:
        seconds = dict.fromkeys(("fuchs", "rank", "push", "admm", "homotopy", "lp"), 0.0)
    if about is None:  # no task came back (budget): the driver whitens after all
        atoms = UnitAtoms(D, metric)
        about = {"metric": atoms.metric_info(), "scale": atoms.scale}
    return rec, seconds, about


def _merge(rec, part, a: int, b: int) -> None:
    """Copy a task's record (rows a..b) into the call's record."""
    for name in ("status", "method", "certificate", "fuchs", "support_size", "reason",
                 "iters"):
        getattr(rec, name)[a:b] = getattr(part, name)
    rec.witness.update({a + i: w for i, w in part.witness.items()})
    rec.deltas.update({a + i: d for i, d in part.deltas.items()})
    rec.reasons.update({a + i: r for i, r in part.reasons.items()})
    rec.certs.merge(part.certs, a)


__all__ = ["classify_distributed"]

