"""The ADMM stage of :func:`rip_atoms.recovery.classify_recovery`: a batched search for feasible
points that beat the codes (failure witnesses), each proposal verified in float64.

Douglas–Rachford on basis pursuit for a batch of codes at once (the iteration is
:func:`rip_atoms.kernels.recovery_batch.admm_bp_batch`); every ``_ADMM_CHECK`` iterations the
iterates are polished on their support (least squares, non-negative least squares for
non-negative codes) and a candidate that passes the witness check ends its code as failed.
Under a deadline the projector's set-up starts only if its estimated cost fits the time left
(:meth:`rip_atoms.recovery.problem.UnitAtoms.projector_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rip_atoms.kernels.recovery_batch import admm_bp_batch
from rip_atoms.recovery.problem import Code
from rip_atoms.recovery.results import UNDETERMINED, Method
from rip_atoms.recovery.witnesses import first_witness, nnls_on_support, polish_witness

_ADMM_BATCH = 256
_ADMM_CHECK = 10
_ADMM_POLISH_TRIES = 4


@dataclass(frozen=True)
class _AdmmBatch:
    """One ADMM batch: its codes, their signals Y (H×b) and polish attempts per code."""

    codes: list[Code]
    Y: np.ndarray
    tries: np.ndarray


def stage_admm(ctx: Any, pending: list[Code]) -> list[Code]:
    """Batched ADMM search for feasible points beating the codes (failure witnesses).

    Under a deadline the projector's set-up (uninterruptible) starts only if its estimated cost
    fits the time left, and a batch stops at its next check once the deadline has passed (the
    codes stay open for the per-code stages, which check the deadline themselves)."""
    dl = ctx.deadline
    if dl is not None:
        if dl.expired() or not dl.take(ctx.atoms.projector_seconds()):
            return pending
    with ctx.timed("admm"):
        proj = ctx.atoms.projector()
        for start in range(0, len(pending), _ADMM_BATCH):
            codes = pending[start : start + _ADMM_BATCH]
            batch = _AdmmBatch(codes, np.column_stack([c.y for c in codes]),
                               np.zeros(len(codes), dtype=np.int64))
            thr = np.array([0.1 * c.l1 / c.k for c in codes])

            def accept(cols, X, Z, batch=batch):
                if ctx.expired():  # leave the batch: its codes stay open
                    return np.ones(len(cols), dtype=bool)
                return _admm_accept(ctx, batch, cols, X, Z)

            admm_bp_batch(proj, batch.Y, thr, nonneg=ctx.opts.nonneg, iters=ctx.opts.witness_iters,
                          check_every=_ADMM_CHECK, accept=accept)
    return [c for c in pending if ctx.rec.status[c.index] == UNDETERMINED]


def _admm_accept(ctx: Any, batch: _AdmmBatch, cols: np.ndarray, X: np.ndarray,
                 Z: np.ndarray) -> np.ndarray:
    """Verify ADMM proposals (iterates X, Z for the batch columns ``cols``) in float64: a
    least-squares fit on the support of z (non-negative least squares for non-negative codes),
    or (signed codes) the float64 projection x of the iterate onto {D̃x = y}, first refitted on
    its H largest entries (a sparse witness), else as it is (dense); a verified witness ends
    the code. Returns the mask of columns decided."""
    atoms, nonneg = ctx.atoms, ctx.opts.nonneg
    done = np.zeros(len(cols), dtype=bool)
    l1x = np.abs(X).sum(axis=0, dtype=np.float64)
    l1z = Z.sum(axis=0, dtype=np.float64) if nonneg else None
    for t, b in enumerate(cols):
        code = batch.codes[b]
        promising = (l1z[t] if nonneg else l1x[t]) < code.l1 * (1 - 1e-6)
        if not promising or batch.tries[b] >= _ADMM_POLISH_TRIES:
            continue
        batch.tries[b] += 1
        T = np.flatnonzero(Z[:, t])
        fit = nnls_on_support if nonneg else polish_witness
        candidates = [(T, fit(atoms.cols64, code.y, T))]
        wit = first_witness(atoms, code, candidates, nonneg)
        if wit is None and not nonneg:
            x64 = atoms.projector().project64(X[:, t].astype(np.float64)[:, None],
                                              batch.Y[:, [b]])[:, 0]
            top = np.sort(np.argsort(-np.abs(x64))[: atoms.dim])  # a sparse witness if possible
            wit = first_witness(atoms, code, [(top, polish_witness(atoms.cols64, code.y, top))],
                                 nonneg)
            if wit is None:
                wit = first_witness(atoms, code, [(np.arange(len(x64)), x64)], nonneg)
        if wit is not None and ctx.fail(code, Method.ADMM, wit):
            done[t] = True
    return done
