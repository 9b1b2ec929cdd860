"""Classify codes: certified, failed or undetermined by exact ℓ1 recovery, cheapest test first.

Per chunk of codes (:func:`classify_recovery`), every stage takes the codes still open and
returns those it did not decide; all stages share one :class:`_Context` (the atoms, the options,
the per-code record, the stage timers, the progress bar and the deadline):

1. **fuchs** — the batched min-ℓ2 certificate y₀ = D̃_S (D̃_Sᵀ D̃_S)⁻¹ s
   (:func:`rip_atoms.kernels.recovery_batch.fuchs_batch`: a float32 screen of D̃ᵀy₀, the
   atoms that may hold the maximum recomputed in float64); codes whose Gram matrix looks
   singular get an SVD (**rank**): σmin/σmax ≤ RANK_TOL gives a null-vector tie witness.
1b. **push** — the Fuchs certificate pushed inside after adding its violators
   (:func:`rip_atoms.recovery.certificates.pushed_certificate`); certifies only where no
   witness can exist (:func:`_no_witness_possible`), so skipping the witness searches for
   those codes changes no decision.
2. **admm** — a batched ADMM search for a feasible x that beats δ̃, verified in float64.
3. **homotopy** — LARS to α → 0 (on dictionaries over 2²² entries a float32 pass first): its
   polished solution is a witness, or the final segment's dual vector is pushed strictly inside
   (:func:`rip_atoms.recovery.certificates._push_certificate`).
4. **lp** — where affordable, the exact certificate LP; its dual gives a witness when t* ≥ 1.
5. **duplicate** — codes on an atom of a duplicate pair still open: the swap witness (a
   witness only for pairs parallel to float64 rounding); codes left open get the reason
   (:mod:`~rip_atoms.recovery.reasons`).

Whatever proposes a certificate or a witness, only the float64 checks of
:mod:`~rip_atoms.recovery.certificates` and :mod:`~rip_atoms.recovery.witnesses` decide: a
certificate counts only through :meth:`_Context.offer` (rigorous bound < 1 − margin), a failure
only through :meth:`_Context.fail`, which re-checks the witness
(:func:`~rip_atoms.recovery.witnesses.check_witness`) whatever stage proposed it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from rip_atoms.arguments import check_real
from rip_atoms.codes import check_codes
from rip_atoms.deadline import Deadline
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import EmptyDictionaryError, ParameterError
from rip_atoms.geometry import UNSET, Geometry
from rip_atoms.kernels.recovery_batch import fuchs_batch, gram_extremes
from rip_atoms.metric import AIPMetric
from rip_atoms.precision import U64, gamma
from rip_atoms.recovery.admm_stage import stage_admm
from rip_atoms.recovery.basis_pursuit import lars
from rip_atoms.recovery.certificates import (
    exact_certificate_lp,
    pushed_certificate,
    rigorous_bound,
    rigorous_certificate_bound,
    singular_extremes,
)
from rip_atoms.recovery.kept import KeptCertificates, fuchs_y
from rip_atoms.recovery.options import ClassifyOptions
from rip_atoms.recovery.problem import Code, UnitAtoms, chunk_rows, recovery_view
from rip_atoms.recovery.reasons import undetermined_reason
from rip_atoms.recovery.results import (
    CERTIFIED,
    FAILED,
    FEAS_TOL,
    INVALID,
    L1_TOL,
    MARGIN,
    RANK_TOL,
    RECOVERY_TOL,
    Method,
    RecoveryResult,
)
from rip_atoms.recovery.witnesses import (
    check_witness,
    clean_sparse,
    duplicate_swap,
    lp_dual_witness,
    polish_witness,
    sparse_diff_norm,
    witness_along,
)

#: the homotopy stops at α = HOMOTOPY_ALPHA_MIN·αmax (on the final segment, signs are readable)
HOMOTOPY_ALPHA_MIN = 1e-9
#: under a deadline a LARS path (which cannot be interrupted) starts only if its estimated cost
#: fits the time left: ~HOMOTOPY_STEPS_PER_NONZERO·k steps of 2·H·N flops each at
#: HOMOTOPY_SECONDS_PER_FLOP (measured at 2304×16384, k = 80: 434 steps, 11.6 ms per step in
#: float32, 1.5e-10 s/flop)
HOMOTOPY_STEPS_PER_NONZERO = 4
HOMOTOPY_SECONDS_PER_FLOP = 1.5e-10
HOMOTOPY_ALPHA_MIN_32 = 1e-6
#: the push stage is tried on codes whose Fuchs value is at most this (far above 1, the pushed
#: certificate practically never certifies and near the weak threshold it only costs time)
PUSH_MAX_FUCHS = 1.2

Witness = tuple[np.ndarray, np.ndarray]


class _Recorder:
    """Per-code output arrays of :func:`classify_recovery`."""

    def __init__(self, n: int, keep_certificates: int | None = 0) -> None:
        self.status = np.zeros(n, dtype=np.int8)
        self.method = np.zeros(n, dtype=np.int8)
        self.certificate = np.full(n, np.nan)
        self.fuchs = np.full(n, np.nan)
        self.support_size = np.zeros(n, dtype=np.int64)
        self.reason = np.zeros(n, dtype=np.int8)
        self.iters = np.full(n, -1, dtype=np.int32)
        self.witness: dict[int, Witness] = {}
        self.deltas: dict[int, Witness] = {}
        self.reasons: dict[int, str] = {}  # why an undetermined code is undetermined
        self.certs = KeptCertificates(keep_certificates)

    def offer_bound(self, code: Code, bound: float) -> None:
        """Keep the smallest certificate bound seen for the code."""
        cur = self.certificate[code.index]
        if not (cur <= bound):
            self.certificate[code.index] = bound

    def csr(self, which: dict[int, Witness], n: int, n_atoms: int) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, (idx, v) in which.items():
            rows.append(np.full(len(idx), i, dtype=np.int64))
            cols.append(np.asarray(idx, dtype=np.int64))
            vals.append(np.asarray(v, dtype=np.float64))
        if not rows:
            return sp.csr_matrix((n, n_atoms))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                     np.concatenate(cols))), shape=(n, n_atoms))


@dataclass(frozen=True)
class _Context:
    """What every stage of :func:`classify_recovery` shares: D̃, the options, the record."""

    atoms: UnitAtoms
    opts: ClassifyOptions
    rec: _Recorder
    stage_seconds: dict[str, float]
    bar: Any = None  # a tqdm bar, or None
    deadline: Deadline | None = None
    solver: Any = None  # the Fuchs fast path of another engine (kernels.torch_fuchs), or None

    def tick(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def expired(self) -> bool:
        return self.deadline is not None and self.deadline.expired()

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[stage] += time.perf_counter() - t0

    def offer(self, code: Code, method: Method, bound: float, y=None) -> bool:
        """Record a certificate bound; certify the code (True) when bound < 1 − margin (a
        rigorous float64 bound: a proof, on near-parallel atoms too). ``y``: the certificate
        (None: the Fuchs y₀), kept for the independent check when the record wants it
        (:mod:`rip_atoms.recovery.kept`)."""
        self.rec.offer_bound(code, bound)
        if bound < 1.0 - self.opts.margin:
            if self.rec.certs.wants(code.index):
                self.rec.certs.add(code.index, code.S, code.vals, fuchs_y(
                    self.atoms.rows64, code.S, code.s) if y is None else y)
            self.rec.status[code.index] = CERTIFIED
            self.rec.method[code.index] = method
            self.rec.certificate[code.index] = bound
            self.tick()
            return True
        return False

    def fail(self, code: Code, method: Method, wit: Witness) -> bool:
        """The one gate of "failed": the witness x is re-checked in float64 on D̃
        (:func:`~rip_atoms.recovery.witnesses.check_witness`: feasible to FEAS_TOL·‖y‖₂ plus
        float64 rounding, ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁, x ≥ 0 for non-negative codes, x ≠ δ̃);
        only then is the code failed (True). Otherwise nothing is recorded (False)."""
        if not check_witness(self.atoms.rows64, code, wit[0], wit[1], self.opts.nonneg):
            return False
        self.rec.status[code.index] = FAILED
        self.rec.method[code.index] = method
        self.rec.witness[code.index] = wit
        self.rec.deltas[code.index] = (code.S, code.vals)
        self.tick()
        return True


def classify_recovery(
    geom: Geometry | Dictionary | np.ndarray,
    codes: np.ndarray | sp.spmatrix | sp.sparray,
    *,
    nonneg: bool = False,
    metric: AIPMetric | str | None = UNSET,
    margin: float = MARGIN,
    chunk_size: int = 1024,
    max_iter: int | None = None,
    witness_iters: int = 100,
    lp: bool = True,
    lp_time_limit: float | None = 60.0,
    lp_max_size: int = 20_000_000,
    blas_threads: int | None = 1,
    progress: bool = False,
    out: str | os.PathLike | None = None,
    source: str = "codes",
    budget_s: float | None = None,
    effort: int | None = None,
    engine: str = "numpy",
    device: str | None = None,
    client: Any = None,
    keep_certificates: int | None = 0,
) -> RecoveryResult:
    """Classify, code by code, whether basis pursuit recovers each code *uniquely*, with a proof.

    Classification is on the corrected unit atoms D̃ (columns W dᵢ/‖W dᵢ‖; raw metric: dᵢ/‖dᵢ‖):
    a code δ over D as given is read as δ̃ᵢ = ‖W dᵢ‖·δᵢ over D̃ — same support S and signs —
    so y = D̃ δ̃ = W D δ. Statuses, tests and tolerances: :mod:`rip_atoms.recovery`. Cheapest
    test first: the batched Fuchs certificate and rank check, a batched ADMM witness search,
    the homotopy (LARS), then the exact certificate LP (HiGHS).

    Parameters
    ----------
    geom : Geometry, Dictionary or numpy.ndarray
        The :class:`~rip_atoms.geometry.Geometry` of D: its float64 D̃, with the float32 copy,
        duplicate pairs and ADMM projector built from it, kept on the geometry for every call
        that passes it (the report certifies several batches of codes of one dictionary; with
        ``client`` the float64 rows are copied into the shared files when the geometry has
        them, and workers on other machines build their own). At the API edge, a Dictionary
        or H×N array (columns are atoms) with ``metric``.
    codes : numpy.ndarray or scipy sparse matrix
        tokens × atoms (n×N): a dense array (or memory map) or any scipy sparse matrix.
        Structural problems raise with the index named: a width other than N
        (:class:`ShapeMismatchError`), a non-finite entry (:class:`NonFiniteError`), a
        non-numeric dtype (:class:`InvalidCodeError`). Per-code problems — an empty row, a
        negative entry with ``nonneg``, a support on a dead atom — mark that code "invalid"
        (``invalid_reason``) and the batch goes on.
    nonneg : bool
        Non-negative basis pursuit (SAE codes).
    metric : AIPMetric or {"self", "raw"} or None
        With a dictionary: "self" (S̃ = (D Dᵀ)⁻¹, default), an :class:`AIPMetric`, or "raw"
        (None: "raw"; Euclidean). With a Geometry, left out (or its own).
    margin : float
        Certified means rigorous bound < 1 − margin; in [0, 1).
    chunk_size : int
        Codes per chunk (the Fuchs GEMM batch and the ADMM batch work per chunk).
    max_iter : int, optional
        LARS iterations per code (default 8·max(H, 100)); hitting the cap leaves the code to
        the next test.
    witness_iters : int
        ADMM iterations of the witness search (0 skips it).
    lp : bool
        Run the exact certificate LP on the codes still open.
    lp_time_limit : float, optional
        HiGHS seconds per code.
    lp_max_size : int
        The LP runs only when it has at most this many constraint entries.
    blas_threads : int, optional
        BLAS threads for the batched stages (Fuchs GEMMs, ADMM); None leaves the BLAS
        default. The per-code stages always use one thread. The default is 1 because on a busy
        or shared machine multi-threaded BLAS on these sizes was measured up to 25× slower
        (2 cores, other jobs running); on a dedicated many-core machine pass None.
    progress : bool
        A tqdm bar on stderr.
    out : str or os.PathLike, optional
        Write the per-code arrays to this ``.npz`` (atomically; :meth:`RecoveryResult.save`).
    source : str
        Label for error messages (e.g. the codes' file name).
    budget_s : float, optional
        Wall-clock budget of the whole call (None: no limit). Checked before every chunk
        and every per-code solve; the LP's own time limit is capped by what is left. Codes not
        decided when it runs out stay undetermined. With ``client``, each task gets the share
        B·min(w, T)/T of B (w workers, T tasks: T/w rounds of tasks fit in B) and the client
        stops waiting at B: chunks not back by then stay undetermined
        (:mod:`rip_atoms.recovery.distributed`). With ``effort``, only a wall-clock cap.
    effort : int, optional
        A work budget instead: this many units (one per budget check — a chunk, a per-code
        solve — and uninterruptible steps by their estimated operation count;
        :mod:`rip_atoms.deadline`), so the same codes and options decide the same codes on any
        machine. Single-process only (not with ``client``).
    engine : {"numpy", "torch"}
        Who runs the fast path of the Fuchs stage (the G_S solves and the float32 screen of
        D̃ᵀy₀): numpy, or torch on ``device`` (:mod:`rip_atoms.kernels.torch_fuchs`). Either
        way the screened candidates are recomputed in float64 by numpy on the host and only
        those float64 values certify, so the statuses are those of the numpy engine.
    device : str, optional
        The torch device for ``engine="torch"`` (default: CUDA when available, else the CPU).
    client : distributed.Client, optional
        Run the token chunks as independent Dask tasks (:func:`rip_atoms.cluster.dask_client`):
        D̃ is built once here and memory-mapped by workers on this machine (files in shared
        memory), or D is scattered once to workers that cannot see them (other machines);
        each task classifies its chunks exactly as this process would, results are merged in
        chunk order — the same per-code statuses, methods and witnesses as without
        ``client``; a task whose worker dies is retried
        (:mod:`rip_atoms.recovery.distributed`).
    keep_certificates : int or None
        Keep the dual vector y* of that many certified codes, those of lowest index (None:
        every certified code; 0, the default: none) in ``certificate_index``/``_y``/``_codes``
        of the result, for an independent re-check (:mod:`rip_atoms.check`).

    Returns
    -------
    RecoveryResult
        Per code: status, deciding method, certificate bound, Fuchs value, witnesses of failed
        codes; counts and timings in ``to_dict()``.

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])
    >>> res = classify_recovery(D, np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]), metric="raw")
    >>> res.status_names().tolist(), res.certified, res.failed
    (['certified', 'failed'], 1, 1)
    """
    t_start = time.perf_counter()
    if not 0 <= margin < 1:
        raise ParameterError(f"margin must lie in [0, 1), got {margin}")
    if chunk_size < 1 or witness_iters < 0:
        raise ParameterError("chunk_size must be ≥ 1 and witness_iters ≥ 0")
    if lp_time_limit is not None:
        check_real("lp_time_limit", lp_time_limit, lo=0.0, lo_open=True, allow_inf=True)
    if engine not in ("numpy", "torch"):
        raise ParameterError(f"engine must be 'numpy' or 'torch', not {engine!r}")
    deadline = Deadline.of(budget_s, effort)
    if effort is not None and client is not None:
        raise ParameterError("effort (a work budget) is for single-process runs: with Dask "
                             "workers give budget_s")
    geom = Geometry.of(geom, metric, default="self")
    if client is None:
        atoms = recovery_view(geom)
        h, n_atoms = atoms.dim, atoms.n_atoms
    else:  # D̃ is built by classify_distributed (once, in shared files, or by each worker)
        d = geom.dictionary
        if len(d.live_atoms) == 0:
            raise EmptyDictionaryError(f"{d.provenance.source}: every atom is dead")
        h, n_atoms = d.dim, d.n_atoms
    cap = max_iter if max_iter is not None else 8 * max(h, 100)
    if cap < 1:
        raise ParameterError(f"max_iter must be ≥ 1, got {cap}")
    kind, M, n = check_codes(codes, n_atoms, source, chunk_size=chunk_size)
    opts = ClassifyOptions(
        nonneg=nonneg, margin=margin, max_iter=cap, witness_iters=witness_iters, lp=lp,
        lp_time_limit=lp_time_limit, lp_max_size=lp_max_size, blas_threads=blas_threads,
        engine=engine, device=device, chunk_size=chunk_size,
        keep_certificates=keep_certificates)
    if client is not None:
        from rip_atoms.recovery.distributed import classify_distributed

        rec, stage_seconds, about = classify_distributed(
            client, d, geom.metric, kind, M, n, opts, deadline, _classify_rows, _Recorder,
            corrected=geom if geom.float64_rows_built else None)
    else:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="recover", unit="code", file=sys.stderr, leave=False)
        try:
            rec, stage_seconds = _classify_rows(atoms, kind, M, n, opts, deadline, bar)
        finally:
            if bar is not None:
                bar.close()
        about = {"metric": atoms.metric_info(), "scale": atoms.scale}
    result = RecoveryResult(
        n=n, dim=h, n_atoms=n_atoms, nonneg=nonneg, metric=about["metric"], margin=margin,
        status=rec.status, method=rec.method, certificate=rec.certificate, fuchs=rec.fuchs,
        support_size=rec.support_size, invalid_reason=rec.reason, homotopy_iters=rec.iters,
        witnesses=rec.csr(rec.witness, n, n_atoms), failed_codes=rec.csr(rec.deltas, n, n_atoms),
        atom_scale=about["scale"], seconds=time.perf_counter() - t_start,
        stage_seconds={k: round(v, 6) for k, v in stage_seconds.items()}, source=source,
        budget={} if deadline is None else deadline.to_dict(),
        **dict(zip(("certificate_index", "certificate_y", "certificate_codes"),
                   rec.certs.arrays(n_atoms, h), strict=True)),
        certificate_limit=keep_certificates, reasons=dict(sorted(rec.reasons.items())),
    )
    if out is not None:
        result.save(out)
    return result


def _classify_rows(atoms: UnitAtoms, kind: str, M, n: int, opts: ClassifyOptions,
                   deadline: Deadline | None, bar=None) -> tuple[_Recorder, dict[str, float]]:
    """Classify rows 0..n of M chunk by chunk (``opts.chunk_size`` rows each); returns the
    per-code record (indices local to M) and the stage timers."""
    solver = None
    if opts.engine == "torch":
        solver = atoms.torch_solver(opts.device)
    ctx = _Context(atoms=atoms, opts=opts, rec=_Recorder(n, opts.keep_certificates),
                   stage_seconds=dict.fromkeys(("fuchs", "rank", "push", "admm", "homotopy",
                                                "lp"), 0.0),
                   bar=bar, deadline=deadline, solver=solver)
    chunk_size = opts.chunk_size
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        pending = _parse_chunk(ctx, chunk_rows(kind, M, start, stop), start)
        ctx.tick(stop - start - len(pending))
        if not ctx.expired():  # else the chunk is left undetermined
            pending = _classify_chunk(ctx, pending, opts.blas_threads)
        ctx.tick(len(pending))
    return ctx.rec, ctx.stage_seconds


def _classify_chunk(ctx: _Context, pending: list[Code], blas_threads: int | None) -> list[Code]:
    """The stages in order on one chunk's usable codes; returns those left undetermined."""
    with threadpool_limits(blas_threads):
        pending = _stage_fuchs(ctx, pending)
    with threadpool_limits(1):
        pending = _stage_push(ctx, pending)
    with threadpool_limits(blas_threads):
        if ctx.opts.witness_iters > 0 and pending:
            pending = stage_admm(ctx, pending)
    with threadpool_limits(1):  # per-code work: one BLAS thread is faster on busy cores
        pending = _stage_homotopy(ctx, pending)
        if ctx.opts.lp and pending:
            pending = _stage_lp(ctx, pending)
        return _stage_duplicates(ctx, pending)


def _parse_chunk(ctx: _Context, block: sp.csr_matrix, start: int) -> list[Code]:
    """Split a CSR chunk into usable codes (δ̃ = scale·δ over D̃, y = D̃ δ̃) and invalid ones."""
    atoms, rec = ctx.atoms, ctx.rec
    out = []
    for r in range(block.shape[0]):
        i = start + r
        lo, hi = block.indptr[r], block.indptr[r + 1]
        S = block.indices[lo:hi].astype(np.int64)
        v = block.data[lo:hi]
        rec.support_size[i] = len(S)
        reason = 0
        if len(S) == 0:
            reason = 1
        elif ctx.opts.nonneg and np.any(v < 0):
            reason = 2
        elif np.any(atoms.dead[S]):
            reason = 3
        if reason:
            rec.status[i] = INVALID
            rec.reason[i] = reason
            continue
        vals = v * atoms.scale[S]
        y = atoms.rows64[S].T @ vals
        out.append(Code(index=i, S=S, vals=vals,
                         s=np.ones(len(S)) if ctx.opts.nonneg else np.sign(vals),
                         y=y, norm2=float(np.linalg.norm(vals)), l1=float(np.abs(vals).sum()),
                         blocked=bool(atoms.duplicate_atoms(ctx.opts.nonneg)[S].any())))
    return out


def _stage_fuchs(ctx: _Context, pending: list[Code]) -> list[Code]:
    """Batched Fuchs certificates (float32 screen, float64 values); SVD rank decisions for rank
    suspects. A code is certified on the bound value + ‖e‖₂/σ + γ_H‖y₀‖₂ with σ a lower bound on
    σmin(D̃_S) (:class:`~rip_atoms.kernels.recovery_batch.FuchsBatch`); codes left open get the
    exact extreme eigenvalues of G_S (their σmin/σmax drive the later stages)."""
    if not pending:
        return pending
    atoms = ctx.atoms
    rest, suspects, inexact = [], [], []
    with ctx.timed("fuchs"):
        fb = fuchs_batch(atoms.rows64, [c.S for c in pending], [c.s for c in pending],
                         nonneg=ctx.opts.nonneg, DT32=atoms.rows32(), solver=ctx.solver)
        for j, code in enumerate(pending):
            if fb.rank_suspect[j]:
                suspects.append(code)
                continue
            _set_sigma(atoms, code, fb.lam_min[j], fb.lam_max[j])
            value = float(fb.value[j])
            ctx.rec.fuchs[code.index] = value
            bound = rigorous_bound(value, float(fb.eq_residual[j]), code.sigma_min,
                                    atoms.gamma, float(fb.y_norm[j]), k=code.k)
            if not ctx.offer(code, Method.FUCHS, bound):
                rest.append(code)
                if not fb.exact_lam[j]:
                    inexact.append(code)
        if inexact:  # the later stages read σmin and σmin/σmax: the eigenvalues themselves
            lo, hi = gram_extremes(atoms.rows64, [c.S for c in inexact])
            for code, a, b in zip(inexact, lo, hi, strict=True):
                _set_sigma(atoms, code, a, b)
    with ctx.timed("rank"), threadpool_limits(1):
        rest.extend(_rank_decisions(ctx, suspects))
    return rest


def _set_sigma(atoms: UnitAtoms, code: Code, lam_min: float, lam_max: float) -> None:
    """code.sigma_min: a lower bound on σmin(D̃_S), and code.sigma_ratio, from the extreme
    eigenvalues of the float64 Gram G_S = D̃_SᵀD̃_S. The computed λmin is within
    err = (γ_H + k·u)·k of the true one (the Gram's entries, each a float64 dot product of unit
    columns, and the eigensolve's backward error, ‖G_S‖ ≤ k), so σmin ≥ √(λmin − err). When
    λmin ≤ 10·err that says little or nothing (a near-parallel pair: σmin ≈ 1e-8 sits below
    √err ≈ 3e-8), and σmin comes from the SVD of D̃_S instead, less its backward error:
    σmin − γ_{kH}·σmax."""
    k = len(code.S)
    err = (gamma(atoms.dim) + k * U64) * k
    if lam_min > 10.0 * err:
        code.sigma_min = math.sqrt(lam_min - err)
        code.sigma_ratio = code.sigma_min / math.sqrt(lam_max + err)
        return
    smin, smax, _ = singular_extremes(atoms.cols64, code.S)
    code.sigma_min = max(0.0, smin - gamma(k * atoms.dim) * smax)
    code.sigma_ratio = code.sigma_min / smax if smax > 0 else 0.0


def _stage_push(ctx: _Context, pending: list[Code]) -> list[Code]:
    """Certificates pushed from the Fuchs certificate (:func:`pushed_certificate` with T = ∅:
    atoms that violate are added with their signs, then y is pushed inside), before any
    witness search, for codes whose Fuchs value is ≤ PUSH_MAX_FUCHS. A code is certified here
    only when, besides bound < 1 − margin, no witness within the tolerances can exist
    (:func:`_no_witness_possible`), so the stages it skips (ADMM, homotopy, LP) could not have
    failed it."""
    rest = []
    with ctx.timed("push"):
        for n_done, code in enumerate(pending):
            if ctx.expired():
                rest.extend(pending[n_done:])
                break
            if (not code.sigma_ratio > RANK_TOL
                    or not ctx.rec.fuchs[code.index] <= PUSH_MAX_FUCHS):
                rest.append(code)
                continue
            bound, value, y_norm, y = pushed_certificate(
                ctx.atoms, code, np.array([], np.int64), np.array([]), ctx.opts.nonneg)
            ctx.rec.offer_bound(code, bound)
            if not (_no_witness_possible(ctx.atoms, code, bound, value, y_norm)
                    and ctx.offer(code, Method.PUSH, bound, y)):
                rest.append(code)
    return rest


def _no_witness_possible(atoms: UnitAtoms, code: Code, bound: float, value: float,
                         y_norm: float) -> bool:
    """True when an exact certificate y' of value t ≤ ``bound`` < 1 rules out every witness
    (module :mod:`~rip_atoms.recovery.witnesses`). For a witness x, v = x − δ̃, r = D̃v:
    ‖r‖₂ ≤ ε = FEAS_TOL‖y‖₂ + 5.01·γ_N‖δ̃‖₁ (the witness tolerance with ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁,
    twice — the computed residual and the exact one differ by the same rounding — and y
    itself is a float64 sum), and
    ‖x‖₁ − ‖δ̃‖₁ ≥ sᵀv_S + ‖v_{Sᶜ}‖₁ = y'ᵀr − y'ᵀD̃_{Sᶜ}v_{Sᶜ} + ‖v_{Sᶜ}‖₁
    ≥ (1 − t)‖v_{Sᶜ}‖₁ − ‖y'‖₂ε, so ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁ forces
    ‖v_{Sᶜ}‖₁ ≤ m = (L1_TOL‖δ̃‖₁ + ‖y'‖₂ε)/(1 − t), and D̃_S v_S = r − D̃_{Sᶜ}v_{Sᶜ} gives
    ‖v‖₂ ≤ (ε + m)/σmin + m. No witness exists when that is ≤ RECOVERY_TOL‖δ̃‖₂. Here
    ‖y'‖₂ ≤ ‖y‖₂ + (bound − value) (the bound's ‖e‖₂/σmin term) and σmin is taken 10⁻⁶
    smaller than computed."""
    if not (bound < 1.0 and math.isfinite(value) and code.sigma_min > 0):
        return False
    eps = FEAS_TOL * code.y_norm + 5.01 * gamma(atoms.n_atoms + code.k + 1) * code.l1
    y_prime = y_norm + (bound - value)
    m = (L1_TOL * code.l1 + y_prime * eps) / (1.0 - bound)
    sigma = code.sigma_min * (1.0 - 1e-6)
    return (eps + m) / sigma + m <= RECOVERY_TOL * code.norm2


def _rank_decisions(ctx: _Context, suspects: list[Code]) -> list[Code]:
    """SVD of D̃_S for codes whose Gram matrix looked singular: a null-vector witness when
    σmin/σmax ≤ RANK_TOL, else the Fuchs certificate through a least-squares solve."""
    atoms = ctx.atoms
    rest = []
    for code in suspects:
        smin, smax, v_S = singular_extremes(atoms.cols64, code.S)
        code.sigma_min = smin
        code.sigma_ratio = smin / smax if smax > 0 else 0.0
        if code.sigma_ratio <= RANK_TOL:
            wit = None
            for sign in (1.0, -1.0):
                wit = witness_along(atoms.rows64, code, code.S, sign * v_S, ctx.opts.nonneg)
                if wit is not None:
                    break
            if wit is None or not ctx.fail(code, Method.RANK, wit):
                rest.append(code)  # numerically rank-deficient, no clean witness: others try
            continue
        A = atoms.cols64[:, code.S]
        y0 = A @ np.linalg.lstsq(A.T @ A, code.s, rcond=None)[0]
        value, bound = rigorous_certificate_bound(atoms.rows64, code.S, code.s, y0, ctx.opts.nonneg,
                                                  smin, atoms.gamma)
        ctx.rec.fuchs[code.index] = value
        if not ctx.offer(code, Method.FUCHS, bound, y0):
            rest.append(code)
    return rest


def _stage_homotopy(ctx: _Context, pending: list[Code]) -> list[Code]:
    """LARS path per code: a witness, or a pushed final-segment certificate. On large
    dictionaries the path is first run on a float32 copy of D̃ (twice as fast; its active set and
    solution are only proposals, verified in float64), then, if that decides nothing, in
    float64."""
    atoms = ctx.atoms
    rest = []
    with ctx.timed("homotopy"):
        step_s = 2.0 * atoms.dim * atoms.n_atoms * HOMOTOPY_SECONDS_PER_FLOP
        for n_done, code in enumerate(pending):
            if ctx.expired():
                rest.extend(pending[n_done:])
                break
            cost = HOMOTOPY_STEPS_PER_NONZERO * code.k * step_s
            if ctx.deadline is not None:
                if not ctx.deadline.take(cost):
                    rest.append(code)  # its path would not end before the deadline: left open
                    continue
            decided = False
            total = 0
            for dt in atoms.homotopy_dtypes:
                cols = atoms.cols64 if dt == np.float64 else atoms.cols32()
                rel = HOMOTOPY_ALPHA_MIN if dt == np.float64 else HOMOTOPY_ALPHA_MIN_32
                coef, active, n_iter, _capped = lars(cols, code.y, ctx.opts.nonneg,
                                                     ctx.opts.max_iter, rel)
                total += max(n_iter, 0)
                if _decide_from_path(ctx, code, coef, active):
                    decided = True
                    break
            ctx.rec.iters[code.index] = total
            if not decided:
                rest.append(code)
    return rest


def _decide_from_path(ctx: _Context, code: Code, coef: np.ndarray, active: np.ndarray) -> bool:
    """From the end of a homotopy path (coefficients at α = α_min, active set A): the float64
    least-squares polish on A is a witness if it beats δ̃; otherwise try the certificate pushed
    from the final segment (:func:`_push_certificate`) with T = A∖S and signs sign(x_T)."""
    if len(active) == 0:
        return False
    atoms, nonneg = ctx.atoms, ctx.opts.nonneg
    xA = polish_witness(atoms.cols64, code.y, active)
    if xA is not None:
        idx, vals = clean_sparse(active, xA, nonneg)
        diff = sparse_diff_norm(idx, vals, code.S, code.vals)
        if diff > RECOVERY_TOL * code.norm2 and ctx.fail(code, Method.HOMOTOPY, (idx, vals)):
            return True
    if not code.sigma_ratio > RANK_TOL:
        return False
    T = np.setdiff1d(active, code.S)
    sT = np.ones(len(T)) if nonneg else np.sign(coef[T])
    sT[sT == 0] = 1.0
    bound, _, _, y = pushed_certificate(atoms, code, T, sT, nonneg)
    return ctx.offer(code, Method.HOMOTOPY, bound, y)


def _stage_lp(ctx: _Context, pending: list[Code]) -> list[Code]:
    """The exact certificate LP: certificate (t* < 1) or dual witness (t* > 1)."""
    atoms, nonneg = ctx.atoms, ctx.opts.nonneg
    time_limit = ctx.opts.lp_time_limit
    rest = []
    with ctx.timed("lp"):
        for n_done, code in enumerate(pending):
            if ctx.deadline is not None:
                if ctx.deadline.expired():
                    rest.extend(pending[n_done:])
                    break
                left = ctx.deadline.clock_left()
                time_limit = left if time_limit is None else min(time_limit, left)
                time_limit = time_limit if math.isfinite(time_limit) else None
            size = (atoms.n_atoms - code.k) * (atoms.dim + 1) * (1 if nonneg else 2)
            if size > ctx.opts.lp_max_size or not code.sigma_ratio > RANK_TOL:
                rest.append(code)
                continue
            res, comp = exact_certificate_lp(atoms.rows64, code.S, code.s, nonneg, time_limit)
            decided = False
            if res.status == 0 and res.x is not None:
                _, bound = rigorous_certificate_bound(atoms.rows64, code.S, code.s, res.x[:-1],
                                                      nonneg, code.sigma_min, atoms.gamma)
                decided = ctx.offer(code, Method.LP, bound, res.x[:-1])
                if not decided and res.x[-1] >= 1.0 - ctx.opts.margin:  # not unique: find the tie
                    wit = lp_dual_witness(atoms, code, res, comp, nonneg)
                    decided = wit is not None and ctx.fail(code, Method.LP, wit)
            if not decided:
                rest.append(code)
    return rest


def _stage_duplicates(ctx: _Context, pending: list[Code]) -> list[Code]:
    """Codes on duplicate atoms still open: the witness that moves each δ̃ᵢ on a duplicate atom
    onto its partner (:func:`rip_atoms.recovery.witnesses.duplicate_swap`; it re-checks only
    for pairs parallel to float64 rounding). Codes left open on near-parallel atoms or on a
    rank-deficient D̃_S get their reason (:func:`rip_atoms.recovery.reasons.undetermined_reason`)."""
    rest = []
    partners = ctx.atoms.duplicate_partners() if any(c.blocked for c in pending) else {}
    for code in pending:
        wit = duplicate_swap(ctx.atoms, code, ctx.opts.nonneg, partners) if code.blocked else None
        if wit is None or not ctx.fail(code, Method.DUPLICATE, wit):
            rest.append(code)
            reason = undetermined_reason(ctx.atoms, code, partners, ctx.opts.nonneg,
                                         ctx.rec.certificate[code.index], ctx.opts.margin)
            if reason:
                ctx.rec.reasons[code.index] = reason
    return rest
