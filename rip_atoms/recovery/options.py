"""The options of one :func:`rip_atoms.recovery.classify_recovery` call, as one frozen object
that every stage of the classifier (and every Dask task of its distributed form) receives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassifyOptions:
    """The options of one :func:`classify_recovery` call, checked there, as every stage (and
    every Dask task) receives them: the constraint and margin of the decisions, the solvers'
    limits, and how the work is cut (chunks, BLAS threads, engine)."""

    nonneg: bool
    margin: float
    max_iter: int
    witness_iters: int
    lp: bool
    lp_time_limit: float | None
    lp_max_size: int
    blas_threads: int | None
    engine: str
    device: str | None
    chunk_size: int
    keep_certificates: int | None = 0
