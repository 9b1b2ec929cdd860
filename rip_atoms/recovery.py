"""Exact ℓ1 recovery of given codes, with a proof for every answer; and the phase transition.

Notation (DESIGN.md, "Exact ℓ1 recovery of a given code"). D̃ ∈ R^{H×N} has unit columns d̃ᵢ
(the AIP-corrected atoms W dᵢ/‖W dᵢ‖, or dᵢ/‖dᵢ‖ for the raw metric). A code δ over D *as given*
becomes δ̃ᵢ = ‖W dᵢ‖·δᵢ over D̃ — same support S and signs s = sign(δ_S) — because
D̃ δ̃ = Σᵢ W dᵢ δᵢ = W D δ, and W is invertible; y = D̃ δ̃. Basis pursuit is

    signed        min ‖x‖₁  s.t. D̃ x = y,
    non-negative  min 𝟙ᵀx  s.t. D̃ x = y, x ≥ 0.

**Theorem** (Fuchs; Zhang–Yin–Cheng; cs-methods §3.1). δ̃ is the *unique* solution iff D̃_S has
full column rank and some y* satisfies D̃_Sᵀ y* = s and ‖D̃_{Sᶜ}ᵀ y*‖_∞ < 1 (non-negative case,
s = 𝟙: max_{j∈Sᶜ} d̃ⱼᵀ y* < 1). Each code is classified

* **certified** — a y with D̃_Sᵀ y ≈ s whose *rigorous* value bound is < 1 − margin. The bound
  covers float64 arithmetic: for e = D̃_Sᵀ y − s, the corrected y' = y − D̃_S G_S⁻¹ e satisfies
  D̃_Sᵀ y' = s exactly and |d̃ⱼᵀ(y' − y)| ≤ ‖e‖₂/σmin(D̃_S); computing d̃ⱼᵀ y in float64 errs by at
  most γ_H‖y‖₂ (γ_H = Hu/(1 − Hu), u = 2⁻⁵³). So bound = value + ‖e‖₂/σmin + γ_H‖y‖₂, and
  σmin(D̃_S) > 0 is the full-column-rank check (σmin/σmax > RANK_TOL, computed in float64).
  Certificates are statements about the float64 matrix D̃ the library holds.
* **failed** — a witness x ≠ δ̃ with ‖D̃x − y‖₂ ≤ FEAS_TOL·‖δ̃‖₂, ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁ (and
  x ≥ 0 for non-negative codes) and ‖x − δ̃‖₂ > RECOVERY_TOL·‖δ̃‖₂; v = x − δ̃ ∈ ker D̃ (to the
  same tolerance) has ‖v_{Sᶜ}‖₁ ≤ ‖v_S‖₁: a null-space-property violation of order |S|.
* **undetermined** — neither was found (solver cap, numerics, LP budget, the call's
  ``budget_s``). Never guessed.

Duplicate atoms. A code whose support holds an atom of a duplicate pair (|⟨d̃ᵢ, d̃ⱼ⟩| ≥ 1 − 1e-6;
for non-negative codes a pair with ⟨d̃ᵢ, d̃ⱼ⟩ ≥ 1 − 1e-6) is never certified: such a pair is
treated as parallel (:mod:`rip_atoms.coherence`), and with d̃ⱼ = ±d̃ᵢ moving δ̃ᵢ onto j leaves y
and ‖δ̃‖₁ unchanged. Those codes end failed — by a stage's exact witness, or else ("duplicate") by
the witness that moves each δ̃ᵢ onto its partner j (coefficient sign(cos)·δ̃ᵢ): same ‖x‖₁,
‖D̃x − y‖₂ ≤ √(2·1e-6)·‖δ̃‖₁, exact when the pair is exactly parallel — or undetermined.
The pairs come from a certified projection screen
(:func:`rip_atoms.kernels.near_duplicates.near_duplicate_pairs`, O(N·H) plus a k-d tree).
* **invalid** — the code itself is unusable (empty support, a negative entry of a non-negative
  code, a support on a dead atom); reported by index, the batch goes on.

Tests, cheapest first: (1) the min-ℓ2 (Fuchs) certificate y₀ = D̃_S (D̃_Sᵀ D̃_S)⁻¹ s, batched as
GEMMs (:func:`rip_atoms.kernels.recovery_batch.fuchs_batch`), with the rank check of D̃_S (an SVD
null vector of a rank-deficient D̃_S is a tie witness: "rank"); (2) a batched ADMM search for a
feasible x that beats δ̃ (failure witnesses, "admm"); (3) homotopy (scikit-learn's LARS-lasso
path down to α → 0, "homotopy"; on dictionaries over 2²² entries a float32 pass first, then
float64 if it decided nothing): its solution, polished by least squares on the final active set
A, is either a witness or δ̃ itself, and then the final segment's dual vector
y_A = D̃_A (D̃_Aᵀ D̃_A)⁻¹ s_A (which equals ±1 on A∖S) is pushed strictly inside:
y = y_A − η D̃_A G_A⁻¹ [0; s_{A∖S}] with η minimising the certificate value (a convex 1-D
problem), after adding any atom that violates; (4) where affordable, the exact certificate LP
min t s.t. D̃_Sᵀ y = s, |d̃ⱼᵀ y| ≤ t (j ∈ Sᶜ) through HiGHS ("lp"), whose optimum t* < 1 iff δ̃ is
unique, and whose dual (a v ∈ ker D̃ with −sᵀv_S ≥ t*‖v_{Sᶜ}‖₁) gives a witness when t* ≥ 1.
Whatever proposes a certificate or a witness, only the float64 checks above decide.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from rip_atoms import strict_json
from rip_atoms.corrected_atoms import resolve_metric
from rip_atoms.deadline import Deadline
from rip_atoms.dictionary import DUPLICATE_TOL, Dictionary, as_dictionary
from rip_atoms.errors import (
    EmptyDictionaryError,
    FileFormatError,
    InvalidCodeError,
    NonFiniteError,
    ParameterError,
    ShapeMismatchError,
)
from rip_atoms.kernels.recovery_batch import RowSpaceProjector, admm_bp_batch, fuchs_batch
from rip_atoms.metric import AIPMetric
from rip_atoms.theory import k_weak, rho_weak

__all__ = [
    "BPSolution",
    "Certificate",
    "FEAS_TOL",
    "L1_TOL",
    "MARGIN",
    "METHOD_NAMES",
    "PhaseTransitionResult",
    "RANK_TOL",
    "RECOVERY_TOL",
    "RecoveryResult",
    "STATUS_NAMES",
    "basis_pursuit",
    "classify_recovery",
    "dual_certificate",
    "fuchs_certificate",
    "phase_transition",
]

#: a certificate proves uniqueness when its rigorous bound is < 1 − MARGIN
MARGIN = 1e-6
#: a witness x is feasible when ‖D̃x − y‖₂ ≤ FEAS_TOL·‖δ̃‖₂
FEAS_TOL = 1e-9
#: a witness beats the code when ‖x‖₁ ≤ (1 + L1_TOL)·‖δ̃‖₁
L1_TOL = 1e-9
#: x "is" δ̃ (recovery) when ‖x − δ̃‖₂ ≤ RECOVERY_TOL·‖δ̃‖₂; a witness must differ by more
RECOVERY_TOL = 1e-6
#: D̃_S is rank-deficient when σmin/σmax ≤ RANK_TOL (float64 SVD)
RANK_TOL = 1e-9
#: the homotopy stops at α = HOMOTOPY_ALPHA_MIN·αmax (on the final segment, signs are readable)
HOMOTOPY_ALPHA_MIN = 1e-9
HOMOTOPY_ALPHA_MIN_32 = 1e-6

STATUS_NAMES = ("undetermined", "certified", "failed", "invalid")
METHOD_NAMES = ("none", "fuchs", "rank", "admm", "homotopy", "lp", "duplicate")
INVALID_REASONS = ("", "empty support", "negative entry in a non-negative code",
                   "support on a dead atom")
UNDETERMINED, CERTIFIED, FAILED, INVALID = 0, 1, 2, 3
M_NONE, M_FUCHS, M_RANK, M_ADMM, M_HOMOTOPY, M_LP, M_DUPLICATE = range(7)
_U64 = 2.0**-53
_ADMM_BATCH = 256
_ADMM_CHECK = 10
_ADMM_POLISH_TRIES = 4
_PUSH_ROUNDS = 10
_ADD_TOL = 1e-7
#: dictionaries with at most this many entries run the homotopy in float64 only (larger ones
#: try a float32 path first)
_SMALL_PROBLEM = 1 << 22


def _gamma(h: int) -> float:
    """γ_H = Hu/(1 − Hu), u = 2⁻⁵³: bound on the relative error of a float64 dot product."""
    return h * _U64 / (1.0 - h * _U64)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A dual certificate y for a support S and signs s.

    value : ‖D_{Sᶜ}ᵀ y‖_∞ (non-negative: max_{j∈Sᶜ} dⱼᵀ y), computed in float64.
    bound : value + ‖D_Sᵀ y − s‖₂/σmin(D_S) + γ_H·‖y‖₂·maxⱼ‖dⱼ‖ — an upper bound on the value of
        an exactly feasible certificate (module docstring); +inf when D_S is rank-deficient.
    y : the certificate (H,).
    sigma_ratio : σmin/σmax of D_S (the full-column-rank check is sigma_ratio > RANK_TOL).
    method : "fuchs" or "lp"; ``lp_status`` is HiGHS's status (0 optimal) for "lp".
    lp_value : the LP optimum t* (exact test: δ is unique iff t* < 1), "lp" only.
    """

    value: float
    bound: float
    y: np.ndarray = field(repr=False)
    sigma_ratio: float
    method: str
    lp_status: int | None = None
    lp_value: float | None = None

    def certifies(self, margin: float = MARGIN) -> bool:
        """True when the certificate proves uniqueness: bound < 1 − margin and D_S full rank."""
        return bool(self.sigma_ratio > RANK_TOL and self.bound < 1.0 - margin)

    def to_dict(self) -> dict:
        return {"value": self.value, "bound": self.bound, "sigma_ratio": self.sigma_ratio,
                "method": self.method, "lp_status": self.lp_status, "lp_value": self.lp_value}


@dataclass(frozen=True)
class BPSolution:
    """A basis-pursuit solution x of min ‖x‖₁ (or 𝟙ᵀx, x ≥ 0) s.t. D x = y.

    ``status`` is "optimal", "cap" (iteration/time limit hit: x is not a solution), "error"
    (the homotopy path broke down: scikit-learn's LARS fails on some degenerate steps) or the
    solver's own word; ``residual`` = ‖D x − y‖₂; ``polished``: x was re-solved by least
    squares on its support.
    """

    x: np.ndarray = field(repr=False)
    l1: float
    residual: float
    solver: str
    status: str
    n_iter: int | None
    polished: bool
    seconds: float

    def to_dict(self) -> dict:
        return {"l1": self.l1, "residual": self.residual, "solver": self.solver,
                "status": self.status, "n_iter": self.n_iter, "polished": self.polished,
                "seconds": self.seconds, "support_size": int(np.count_nonzero(self.x))}


@dataclass(frozen=True)
class RecoveryResult:
    """Per-code classification of exact ℓ1 recovery (:func:`classify_recovery`).

    Arrays have one entry per code (row of the input):

    status : int8 index into STATUS_NAMES (undetermined, certified, failed, invalid).
    method : int8 index into METHOD_NAMES: the test that decided the code (0 if none).
    certificate : the rigorous bound of the best certificate found (NaN if none was computed);
        < 1 − margin exactly for certified codes.
    fuchs : the Fuchs (min-ℓ2) certificate value ‖D̃_{Sᶜ}ᵀ y₀‖_∞ (NaN if not computed).
    support_size : K = |S|.
    invalid_reason : int8 index into INVALID_REASONS (0 for usable codes).
    homotopy_iters : LARS iterations (−1 if the homotopy did not run).
    witnesses : n×N CSR; row i holds the witness x̃ of failed code i over D̃ (empty otherwise).
    failed_codes : n×N CSR; row i holds δ̃ of failed code i (so v = x̃ − δ̃ ∈ ker D̃).
    atom_scale : ‖W dᵢ‖ (the factor δ̃ᵢ = ‖W dᵢ‖ δᵢ; 0 for dead atoms).
    """

    n: int
    dim: int
    n_atoms: int
    nonneg: bool
    metric: dict
    margin: float
    status: np.ndarray = field(repr=False)
    method: np.ndarray = field(repr=False)
    certificate: np.ndarray = field(repr=False)
    fuchs: np.ndarray = field(repr=False)
    support_size: np.ndarray = field(repr=False)
    invalid_reason: np.ndarray = field(repr=False)
    homotopy_iters: np.ndarray = field(repr=False)
    witnesses: sp.csr_matrix = field(repr=False)
    failed_codes: sp.csr_matrix = field(repr=False)
    atom_scale: np.ndarray = field(repr=False)
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    source: str = "codes"

    @property
    def certified(self) -> int:
        return int(np.sum(self.status == CERTIFIED))

    @property
    def failed(self) -> int:
        return int(np.sum(self.status == FAILED))

    @property
    def undetermined(self) -> int:
        return int(np.sum(self.status == UNDETERMINED))

    @property
    def invalid(self) -> int:
        return int(np.sum(self.status == INVALID))

    @property
    def methods(self) -> dict[str, int]:
        """Number of decided codes per deciding test."""
        decided = (self.status == CERTIFIED) | (self.status == FAILED)
        counts = np.bincount(self.method[decided], minlength=len(METHOD_NAMES))
        return {name: int(counts[i]) for i, name in enumerate(METHOD_NAMES) if i > 0}

    def status_names(self) -> np.ndarray:
        """The status of every code as a string array."""
        return np.asarray(STATUS_NAMES)[self.status]

    def witness(self, i: int) -> np.ndarray:
        """The witness x̃ (dense, over D̃) of failed code i."""
        if self.status[i] != FAILED:
            raise ValueError(f"code {i} is {STATUS_NAMES[self.status[i]]}, not failed")
        return self.witnesses[i].toarray().ravel()

    def nsp_witness(self, i: int) -> np.ndarray:
        """v = x̃ − δ̃ ∈ ker D̃ for failed code i: ‖v_{Sᶜ}‖₁ ≤ ‖v_S‖₁ (NSP violation, order K)."""
        return self.witness(i) - self.failed_codes[i].toarray().ravel()

    def invalid_examples(self, limit: int = 20) -> list[dict]:
        idx = np.flatnonzero(self.status == INVALID)[:limit]
        return [{"index": int(i), "reason": INVALID_REASONS[self.invalid_reason[i]]} for i in idx]

    def to_dict(self) -> dict:
        cert = self.certificate[self.status == CERTIFIED]
        return {
            "n": self.n,
            "certified": self.certified,
            "failed": self.failed,
            "undetermined": self.undetermined,
            "invalid": self.invalid,
            "methods": self.methods,
            "seconds": self.seconds,
            "stage_seconds": dict(self.stage_seconds),
            "dim": self.dim,
            "n_atoms": self.n_atoms,
            "nonneg": self.nonneg,
            "metric": self.metric,
            "margin": self.margin,
            "tolerances": {"feasibility": FEAS_TOL, "l1": L1_TOL, "recovery": RECOVERY_TOL,
                           "rank": RANK_TOL},
            "max_certified_bound": float(cert.max()) if cert.size else None,
            "invalid_examples": self.invalid_examples(),
            "source": self.source,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the per-code arrays to an ``.npz`` atomically (temp file + ``os.replace``).

        Keys: status, method, certificate, fuchs, support_size, invalid_reason, homotopy_iters,
        atom_scale, witness_{data,indices,indptr}, failed_code_{data,indices,indptr}, shape,
        status_names, method_names, invalid_reasons, summary (JSON text). Loads with
        ``np.load(path, allow_pickle=False)``.
        """
        path = Path(path)
        arrays = {
            "status": self.status, "method": self.method, "certificate": self.certificate,
            "fuchs": self.fuchs, "support_size": self.support_size,
            "invalid_reason": self.invalid_reason, "homotopy_iters": self.homotopy_iters,
            "atom_scale": self.atom_scale,
            "witness_data": self.witnesses.data, "witness_indices": self.witnesses.indices,
            "witness_indptr": self.witnesses.indptr,
            "failed_code_data": self.failed_codes.data,
            "failed_code_indices": self.failed_codes.indices,
            "failed_code_indptr": self.failed_codes.indptr,
            "shape": np.array([self.n, self.n_atoms]),
            "status_names": np.array(STATUS_NAMES), "method_names": np.array(METHOD_NAMES),
            "invalid_reasons": np.array(INVALID_REASONS),
            "summary": np.array(strict_json.dumps(self.to_dict())),
        }
        folder = path.parent if str(path.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise FileFormatError(f"{path}: cannot write the per-code results ({exc})") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            os.replace(tmp, path)
        except BaseException as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise FileFormatError(
                    f"{path}: cannot write the per-code results ({exc})") from exc
            raise
        return path


# ---------------------------------------------------------------------------------------------
# the unit atoms D̃ and one code
# ---------------------------------------------------------------------------------------------


class _UnitAtoms:
    """D̃ in float64: ``DT`` (N×H, C order: atom rows) and ``Dt`` = DT.T (H×N, Fortran order);
    ``scale`` = ‖W dᵢ‖ (0 for dead atoms, whose rows are zero)."""

    def __init__(self, D: Dictionary | np.ndarray, metric: AIPMetric | str | None) -> None:
        d = as_dictionary(D)
        self.dictionary = d
        self.metric = resolve_metric(d, metric)
        X = np.array(d.atoms, dtype=np.float64)
        if self.metric is not None:
            X = self.metric.W @ X
        norms = np.sqrt(np.einsum("ij,ij->j", X, X))
        dead = np.zeros(d.n_atoms, dtype=bool)
        dead[d.dead_atoms] = True
        dead |= ~(norms > 0)
        if dead.all():
            raise EmptyDictionaryError(f"{d.provenance.source}: every atom is dead")
        self.scale = np.where(dead, 0.0, norms)
        inv = np.zeros_like(norms)
        inv[~dead] = 1.0 / norms[~dead]
        X *= inv
        self.DT = np.ascontiguousarray(X.T)
        del X
        self.Dt = self.DT.T
        self.dead = dead
        self.dim, self.n_atoms = d.dim, d.n_atoms
        self.gamma = _gamma(self.dim)
        self._proj: RowSpaceProjector | None = None
        small = self.dim * self.n_atoms <= _SMALL_PROBLEM
        self.homotopy_dtypes = (np.float64,) if small else (np.float32, np.float64)
        self._dt32: np.ndarray | None = None
        self._dups: tuple[np.ndarray, np.ndarray] | None = None

    def duplicate_partners(self) -> dict[int, list[tuple[int, float]]]:
        """atom → [(partner, cos)] over the duplicate pairs (computed with the masks)."""
        self.duplicate_atoms(False)
        return self._partners

    def duplicate_atoms(self, nonneg: bool) -> np.ndarray:
        """Boolean mask of atoms in a duplicate pair (|cos| ≥ 1 − DUPLICATE_TOL; with
        ``nonneg``, only pairs with cos ≥ 1 − DUPLICATE_TOL), computed once."""
        if self._dups is None:
            from rip_atoms.kernels.near_duplicates import near_duplicate_pairs

            live = np.flatnonzero(~self.dead)
            pairs = near_duplicate_pairs(self.DT[live], DUPLICATE_TOL)
            signed = np.zeros(self.n_atoms, dtype=bool)
            positive = np.zeros(self.n_atoms, dtype=bool)
            self._partners: dict[int, list[tuple[int, float]]] = {}
            for i, j, c in pairs:
                a, b = int(live[int(i)]), int(live[int(j)])
                signed[[a, b]] = True
                if c > 0:
                    positive[[a, b]] = True
                self._partners.setdefault(a, []).append((b, float(c)))
                self._partners.setdefault(b, []).append((a, float(c)))
            self._dups = (signed, positive)
        return self._dups[1] if nonneg else self._dups[0]

    def dt32(self) -> np.ndarray:
        """D̃ rounded to float32 (H×N, Fortran order), for the fast first homotopy pass."""
        if self._dt32 is None:
            self._dt32 = np.asfortranarray(self.Dt, dtype=np.float32)
        return self._dt32

    def metric_info(self) -> dict:
        return {"kind": "raw"} if self.metric is None else self.metric.to_dict()

    def projector(self) -> RowSpaceProjector:
        if self._proj is None:
            self._proj = RowSpaceProjector(self.Dt)
        return self._proj


@dataclass
class _Code:
    """One usable code over D̃: support S (sorted), δ̃_S, signs s (ones if non-negative), y."""

    index: int
    S: np.ndarray
    vals: np.ndarray
    s: np.ndarray
    y: np.ndarray
    norm2: float
    l1: float
    sigma_min: float = math.nan
    sigma_ratio: float = math.nan
    blocked: bool = False  # uses an atom of a duplicate pair: never certified

    @property
    def k(self) -> int:
        return len(self.S)


def _apply(DT: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """D x for a sparse x given by (indices, values): Σ vals_t · d_{idx_t}."""
    return DT[idx].T @ vals if len(idx) else np.zeros(DT.shape[1])


def _check_witness(DT: np.ndarray, code: _Code, idx: np.ndarray, vals: np.ndarray,
                   nonneg: bool) -> bool:
    """Is x (sparse: idx, vals) a failure witness for the code? (module docstring, "failed"):
    ‖D̃x − y‖₂ ≤ FEAS_TOL‖δ̃‖₂, ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁, x ≥ 0 if non-negative,
    ‖x − δ̃‖₂ > RECOVERY_TOL‖δ̃‖₂ — all in float64."""
    if not np.all(np.isfinite(vals)):
        return False
    if nonneg and np.any(vals < 0):
        return False
    if np.abs(vals).sum() > (1.0 + L1_TOL) * code.l1:
        return False
    if np.linalg.norm(_apply(DT, idx, vals) - code.y) > FEAS_TOL * code.norm2:
        return False
    diff = _sparse_diff_norm(idx, vals, code.S, code.vals)
    return bool(diff > RECOVERY_TOL * code.norm2)


def _sparse_diff_norm(ia, va, ib, vb) -> float:
    """‖a − b‖₂ for sparse vectors given as (sorted or not) index/value arrays."""
    idx = np.concatenate([ia, ib])
    val = np.concatenate([va, -vb])
    uniq, inv = np.unique(idx, return_inverse=True)
    acc = np.zeros(len(uniq))
    np.add.at(acc, inv, val)
    return float(np.linalg.norm(acc))


def _clean_sparse(idx: np.ndarray, vals: np.ndarray, nonneg: bool, rel: float = 1e-14):
    """Drop exact zeros (and, for non-negative witnesses, round −tiny entries to 0)."""
    if nonneg and len(vals):
        tiny = rel * float(np.abs(vals).max())
        vals = np.where((vals < 0) & (vals >= -tiny), 0.0, vals)
    keep = vals != 0
    return idx[keep], vals[keep]


def _polish(Dt: np.ndarray, y: np.ndarray, T: np.ndarray) -> np.ndarray | None:
    """Least squares on a support T: argmin ‖D̃_T x_T − y‖₂ (QR with pivoting, float64)."""
    if len(T) == 0 or len(T) > Dt.shape[0]:
        return None
    try:
        sol = sla.lstsq(Dt[:, T], y, lapack_driver="gelsy", check_finite=False)[0]
    except (np.linalg.LinAlgError, ValueError):
        return None
    return sol if np.all(np.isfinite(sol)) else None


def _nnls(Dt: np.ndarray, y: np.ndarray, T: np.ndarray) -> np.ndarray | None:
    """Non-negative least squares on a support T: argmin_{x ≥ 0} ‖D̃_T x − y‖₂ (scipy nnls)."""
    from scipy.optimize import nnls

    if len(T) == 0:
        return None
    try:
        sol = nnls(Dt[:, T], y)[0]
    except (RuntimeError, ValueError):
        return None
    return sol if np.all(np.isfinite(sol)) else None


def _witness_along(DT: np.ndarray, code: _Code, v_idx: np.ndarray, v_vals: np.ndarray,
                   nonneg: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """A witness x = δ̃ + εv from a direction v ∈ ker D̃ along which ‖·‖₁ does not increase.

    φ(ε) = ‖δ̃ + εv‖₁ − ‖δ̃‖₁ is convex piecewise linear with φ(0) = 0 and φ'(0⁺) =
    sᵀv_S + ‖v_{Sᶜ}‖₁ (non-negative: 𝟙ᵀv, and ε ≤ min_{vᵢ<0} δ̃ᵢ/(−vᵢ) keeps x ≥ 0, with
    v_{Sᶜ} ≥ 0 required). When φ'(0⁺) ≤ 0, ε is the largest step with φ(ε) ≤ min φ / 2
    (the largest with φ(ε) ≤ 0 when min φ = 0), so x differs from δ̃ as much as possible.
    Returns (idx, vals) of x if it passes :func:`_check_witness`, else None.
    """
    full = np.union1d(code.S, v_idx)
    d = np.zeros(len(full))
    d[np.searchsorted(full, code.S)] = code.vals
    v = np.zeros(len(full))
    np.add.at(v, np.searchsorted(full, v_idx), v_vals)
    if not np.any(v):
        return None
    if nonneg:
        if np.any(v[d == 0] < 0) or v.sum() > 1e-12 * float(np.abs(v).sum()):
            return None
        neg = v < 0
        eps = float(np.min(d[neg] / -v[neg])) if neg.any() else 1.0 / np.abs(v).max()
    else:
        slope0 = float(np.sum(np.sign(d[d != 0]) * v[d != 0]) + np.abs(v[d == 0]).sum())
        if slope0 > 1e-12 * float(np.abs(v).sum()):
            return None
        bp = -d / np.where(v != 0, v, np.inf)
        bp = np.unique(bp[(bp > 0) & np.isfinite(bp)])
        grid = np.concatenate([[0.0], bp, [bp[-1] * 2 + 1.0 if len(bp) else 1.0]])
        phi = np.abs(d[None, :] + grid[:, None] * v[None, :]).sum(axis=1) - np.abs(d).sum()
        tie = 1e-12 * code.l1
        target = 0.5 * phi.min() if phi.min() < -tie else tie
        ok = np.flatnonzero(phi <= target)
        j = int(ok[-1])
        eps = float(grid[j])
        if j + 1 < len(grid) and phi[j + 1] > phi[j]:  # walk on to φ = target
            eps += (target - phi[j]) / (phi[j + 1] - phi[j]) * (grid[j + 1] - grid[j])
        if eps <= 0:
            return None
    x = d + eps * v
    idx, vals = _clean_sparse(full, x, nonneg)
    return (idx, vals) if _check_witness(DT, code, idx, vals, nonneg) else None


# ---------------------------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------------------------


def _cert_value(c: np.ndarray, nonneg: bool) -> float:
    if c.size == 0:
        return -math.inf if nonneg else 0.0
    return float(c.max() if nonneg else np.abs(c).max())


def _certificate_bound(DT: np.ndarray, S: np.ndarray, s: np.ndarray, y: np.ndarray,
                       nonneg: bool, sigma_min: float, gamma: float,
                       col_norm: float = 1.0) -> tuple[float, float]:
    """(value, bound) of a certificate y: value = ‖D_{Sᶜ}ᵀ y‖_∞ (non-negative: max_{j∈Sᶜ} dⱼᵀy),
    bound = value + ‖D_Sᵀ y − s‖₂ / σmin(D_S) + γ_H·‖y‖₂·maxⱼ‖dⱼ‖ (module docstring)."""
    c = DT @ y
    e = c[S] - s
    mask = np.ones(len(c), dtype=bool)
    mask[S] = False
    value = _cert_value(c[mask], nonneg)
    if not sigma_min > 0:
        return value, math.inf
    bound = value + float(np.linalg.norm(e)) / sigma_min + gamma * float(
        np.linalg.norm(y)) * col_norm * (1 + 1e-12)
    return value, bound


def _sigma(Dt: np.ndarray, S: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(σmin, σmax, last right singular vector) of D_S (float64 SVD); σmin = 0 when |S| > H."""
    A = Dt[:, S]
    _, sv, Vt = np.linalg.svd(A, full_matrices=True)
    smin = 0.0 if len(S) > A.shape[0] else float(sv[-1])
    return smin, float(sv[0]), Vt[-1]


def fuchs_certificate(D: Dictionary | np.ndarray, support: Sequence[int] | np.ndarray,
                      signs: Sequence[float] | np.ndarray | None = None, *,
                      nonneg: bool = False) -> Certificate:
    """The min-ℓ2 (Fuchs) certificate y₀ = D_S (D_Sᵀ D_S)⁻¹ s of one support, D as given.

    Value ‖D_{Sᶜ}ᵀ y₀‖_∞ (non-negative, s = 𝟙: max_{j∈Sᶜ} dⱼᵀ y₀); a bound < 1 (with D_S of full
    column rank) proves that every code with this support and sign pattern is the unique
    solution of basis pursuit over D — sufficient, not necessary. ``signs`` defaults to 𝟙.
    """
    Dt = _as_matrix(D)
    DT = np.ascontiguousarray(Dt.T)
    S, s = _support_signs(support, signs, Dt.shape[1], nonneg)
    smin, smax, _ = _sigma(Dt, S)
    ratio = smin / smax if smax > 0 else 0.0
    if not ratio > RANK_TOL:
        return Certificate(math.nan, math.inf, np.full(Dt.shape[0], np.nan), ratio, "fuchs")
    A = Dt[:, S]
    a = np.linalg.solve(A.T @ A, s)
    y = A @ a
    col = float(np.linalg.norm(Dt, axis=0).max())
    value, bound = _certificate_bound(DT, S, s, y, nonneg, smin, _gamma(Dt.shape[0]), col)
    return Certificate(value, bound, y, ratio, "fuchs")


def _lp(DT: np.ndarray, S: np.ndarray, s: np.ndarray, nonneg: bool, time_limit: float | None):
    """HiGHS on the exact certificate LP: min t s.t. D_Sᵀ y = s, d_jᵀ y ≤ t (and −d_jᵀ y ≤ t
    for signed codes), j ∈ Sᶜ; variables (y, t) ∈ R^{H+1}. The bound t ≥ −1 keeps the
    one-sided (non-negative) LP bounded without changing whether t* < 1. Returns the scipy
    result and Sᶜ."""
    from scipy.optimize import linprog

    n_atoms, h = DT.shape
    mask = np.ones(n_atoms, dtype=bool)
    mask[S] = False
    C = DT[mask]
    m = C.shape[0]
    ones = -np.ones((m, 1))
    A_ub = np.hstack([C, ones]) if nonneg else np.vstack([np.hstack([C, ones]),
                                                          np.hstack([-C, ones])])
    A_eq = np.hstack([DT[S], np.zeros((len(S), 1))])
    c = np.zeros(h + 1)
    c[-1] = 1.0
    opts = {"presolve": True}
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = linprog(c, A_ub=sp.csr_matrix(A_ub), b_ub=np.zeros(A_ub.shape[0]),
                      A_eq=sp.csr_matrix(A_eq), b_eq=s, bounds=[(None, None)] * h + [(-1, None)],
                      method="highs", options=opts)
    return res, np.flatnonzero(mask)


def dual_certificate(D: Dictionary | np.ndarray, support: Sequence[int] | np.ndarray,
                     signs: Sequence[float] | np.ndarray | None = None, *,
                     nonneg: bool = False, time_limit: float | None = None) -> Certificate:
    """The exact dual certificate of one support, D as given, by linear programming (HiGHS).

    t* = min ‖D_{Sᶜ}ᵀ y‖_∞ s.t. D_Sᵀ y = s (non-negative, s = 𝟙: min max_{j∈Sᶜ} dⱼᵀ y); with
    D_S of full column rank, a code with support S and signs s is the unique basis-pursuit
    solution iff t* < 1. ``lp_value`` is max(t*, −1) as HiGHS reports it; ``value``/``bound`` are
    recomputed from the returned y in float64 (see :class:`Certificate`).
    """
    Dt = _as_matrix(D)
    DT = np.ascontiguousarray(Dt.T)
    S, s = _support_signs(support, signs, Dt.shape[1], nonneg)
    smin, smax, _ = _sigma(Dt, S)
    ratio = smin / smax if smax > 0 else 0.0
    res, _ = _lp(DT, S, s, nonneg, time_limit)
    if res.status != 0 or res.x is None:
        return Certificate(math.nan, math.inf, np.full(Dt.shape[0], np.nan), ratio, "lp",
                           int(res.status), None)
    y = res.x[:-1]
    col = float(np.linalg.norm(Dt, axis=0).max())
    value, bound = _certificate_bound(DT, S, s, y, nonneg, smin if ratio > RANK_TOL else 0.0,
                                      _gamma(Dt.shape[0]), col)
    return Certificate(value, bound, y, ratio, "lp", 0, float(res.x[-1]))


def _push_certificate(atoms: _UnitAtoms, code: _Code, T: np.ndarray, sT: np.ndarray,
                      nonneg: bool, rounds: int = _PUSH_ROUNDS) -> float:
    """Certificate from an active set A = S ∪ T with signs s_A (the homotopy's final segment).

    y_A = D̃_A G_A⁻¹ s_A (G_A = D̃_Aᵀ D̃_A) has D̃_Sᵀ y_A = s and d̃ⱼᵀ y_A = sⱼ on T; atoms off A
    that reach 1 − 1e-7 are added to T with sign(d̃ⱼᵀ y_A) (at most ``rounds`` times). Then
    y = y_A − η w with w = D̃_A G_A⁻¹ [0; s_T] (so d̃ⱼᵀ y = (1 − η) sⱼ on T and D̃_Sᵀ w = 0), η
    minimising max(|1 − η|, max_{j∉A} |cⱼ − η wⱼ|) on [0, 2] (convex; golden section). Returns
    the rigorous bound of y (:func:`_certificate_bound`), +inf if nothing usable was built.
    """
    DT, h = atoms.DT, atoms.dim
    S, s = code.S, code.s
    T = np.asarray(T, dtype=np.int64)
    sT = np.asarray(sT, dtype=np.float64)
    best = math.inf
    for _ in range(rounds):
        A = np.concatenate([S, T])
        if len(A) >= h:
            return best
        sA = np.concatenate([s, sT])
        DA = DT[A]  # |A|×H
        G = DA @ DA.T
        try:
            cf = sla.cho_factor(G, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return best
        yA = DA.T @ sla.cho_solve(cf, sA, check_finite=False)
        eT = np.zeros(len(A))
        eT[len(S):] = sT
        w = DA.T @ sla.cho_solve(cf, eT, check_finite=False)
        CW = DT @ np.column_stack([yA, w])
        off = np.ones(atoms.n_atoms, dtype=bool)
        off[A] = False
        off &= ~atoms.dead
        c, cw = CW[off, 0], CW[off, 1]
        viol = (c >= 1 - _ADD_TOL) if nonneg else (np.abs(c) >= 1 - _ADD_TOL)
        if viol.any():
            new = np.flatnonzero(off)[viol]
            T = np.concatenate([T, new])
            sT = np.concatenate([sT, np.ones(len(new)) if nonneg else np.sign(c[viol])])
            continue
        if len(T):
            def f(eta: float, c=c, cw=cw) -> float:
                part = c - eta * cw
                v = _cert_value(part, nonneg)
                return max(v, abs(1.0 - eta))

            lo, hi = 0.0, 2.0
            g = (math.sqrt(5) - 1) / 2
            x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
            f1, f2 = f(x1), f(x2)
            for _ in range(80):
                if f1 <= f2:
                    hi, x2, f2 = x2, x1, f1
                    x1 = hi - g * (hi - lo)
                    f1 = f(x1)
                else:
                    lo, x1, f1 = x1, x2, f2
                    x2 = lo + g * (hi - lo)
                    f2 = f(x2)
            eta = 0.5 * (lo + hi)
            y = yA - eta * w
        else:
            y = yA
        _, bound = _certificate_bound(DT, S, s, y, nonneg, code.sigma_min, atoms.gamma)
        return min(best, bound)
    return best


# ---------------------------------------------------------------------------------------------
# basis pursuit solvers
# ---------------------------------------------------------------------------------------------


def _lars(Dt: np.ndarray, y: np.ndarray, nonneg: bool, max_iter: int, alpha_min_rel: float):
    """scikit-learn's LARS-lasso path for min (1/2H)‖y − D x‖² + α‖x‖₁ (x ≥ 0 if non-negative)
    from αmax down to alpha_min_rel·αmax. y is rescaled so that αmax = 1e6 (sklearn stops at
    α ≤ α_min + 1.19e-7 in absolute terms). Returns (x at the end of the path, active set,
    iterations, capped); iterations = −1 and an empty active set when the path broke down."""
    from sklearn.linear_model import lars_path

    h = Dt.shape[0]
    corr = Dt.T @ y.astype(Dt.dtype)
    c0 = float(corr.max() if nonneg else np.abs(corr).max())
    if not c0 > 0:
        return np.zeros(Dt.shape[1]), np.array([], dtype=np.int64), 0, False
    scale = 1e6 * h / c0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, active, coef, n_iter = lars_path(
                Dt, (y * scale).astype(Dt.dtype), method="lasso", positive=nonneg,
                alpha_min=1e6 * alpha_min_rel, max_iter=max_iter, return_path=False,
                return_n_iter=True, copy_X=True,
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            # scikit-learn's path breaks on some degenerate steps (e.g. two coefficients
            # crossing zero at once): no proposal from this path; later tests decide
            return np.zeros(Dt.shape[1]), np.array([], dtype=np.int64), -1, False
    coef = np.asarray(coef, dtype=np.float64).ravel() / scale
    return coef, np.asarray(active, dtype=np.int64), int(n_iter), int(n_iter) >= max_iter


def _as_matrix(D: Dictionary | np.ndarray) -> np.ndarray:
    if isinstance(D, Dictionary):
        return np.asarray(D.atoms, dtype=np.float64)
    arr = np.asarray(D, dtype=np.float64)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"expected an H×N matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise NonFiniteError("the dictionary holds non-finite values")
    return arr


def _support_signs(support, signs, n_atoms: int, nonneg: bool):
    S = np.asarray(support, dtype=np.int64).ravel()
    if S.size == 0:
        raise InvalidCodeError("empty support: a code needs at least one non-zero")
    if S.min() < 0 or S.max() >= n_atoms or len(np.unique(S)) != len(S):
        raise InvalidCodeError(f"support must hold distinct atom indices in [0, {n_atoms})")
    if signs is None or nonneg:
        s = np.ones(len(S))
    else:
        s = np.sign(np.asarray(signs, dtype=np.float64).ravel())
        if s.shape != S.shape or np.any(s == 0):
            raise InvalidCodeError("signs must be ±1, one per support index")
    order = np.argsort(S)
    return S[order], s[order]


def basis_pursuit(
    D: Dictionary | np.ndarray,
    y: np.ndarray,
    *,
    nonneg: bool = False,
    solver: str = "homotopy",
    max_iter: int | None = None,
    time_limit: float | None = None,
    polish: bool = True,
) -> BPSolution:
    """Solve basis pursuit over D *as given* (no normalisation): min ‖x‖₁ s.t. D x = y, or with
    ``nonneg`` min 𝟙ᵀx s.t. D x = y, x ≥ 0.

    Solvers: ``"homotopy"`` (scikit-learn ``lars_path(method="lasso")`` down to α → 0, whose end
    is the minimum-ℓ1 interpolant; ``max_iter`` defaults to 8·max(H, 100), and hitting it gives
    status "cap"), ``"lp"`` (scipy ``linprog(method="highs")`` with the split x = u − v, or
    x ≥ 0 directly), ``"cvxpy"`` (the reference; cvxpy's default solver). With ``polish`` the
    solution is re-solved by least squares on its support {i : |xᵢ| > 1e-7·‖x‖_∞} (at most the
    H largest; kept only if it stays non-negative when required and does not increase the
    residual).
    """
    t0 = time.perf_counter()
    A = _as_matrix(D)
    y = np.asarray(y, dtype=np.float64).ravel()
    h, n = A.shape
    if y.shape != (h,):
        raise ShapeMismatchError(f"y has shape {y.shape}, expected ({h},)")
    if not np.isfinite(y).all():
        raise NonFiniteError("y holds non-finite values")
    n_iter = None
    status = "optimal"
    if solver == "homotopy":
        cap = max_iter if max_iter is not None else 8 * max(h, 100)
        x, _, n_iter, capped = _lars(np.asfortranarray(A), y, nonneg, cap, 0.0)
        status = "cap" if capped else ("error" if n_iter < 0 else "optimal")
    elif solver == "lp":
        from scipy.optimize import linprog

        opts = {} if time_limit is None else {"time_limit": float(time_limit)}
        if nonneg:
            res = linprog(np.ones(n), A_eq=A, b_eq=y, bounds=(0, None), method="highs",
                          options=opts)
            x = res.x if res.x is not None else np.full(n, np.nan)
        else:
            res = linprog(np.ones(2 * n), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None),
                          method="highs", options=opts)
            x = res.x[:n] - res.x[n:] if res.x is not None else np.full(n, np.nan)
        status = "optimal" if res.status == 0 else ("cap" if res.status == 1 else res.message)
        n_iter = int(getattr(res, "nit", 0) or 0)
    elif solver == "cvxpy":
        import cvxpy as cp

        xv = cp.Variable(n, nonneg=nonneg)
        obj = cp.sum(xv) if nonneg else cp.norm1(xv)
        prob = cp.Problem(cp.Minimize(obj), [A @ xv == y])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prob.solve()
        x = np.asarray(xv.value, dtype=np.float64) if xv.value is not None else np.full(
            n, np.nan)
        status = "optimal" if prob.status == "optimal" else str(prob.status)
    else:
        raise ParameterError(f"solver must be 'homotopy', 'lp' or 'cvxpy', not {solver!r}")
    polished = False
    if polish and np.all(np.isfinite(x)) and np.any(x):
        T = np.flatnonzero(np.abs(x) > 1e-7 * np.abs(x).max())
        if len(T) > h:
            T = np.sort(T[np.argsort(-np.abs(x[T]))[:h]])
        xp = _polish(A, y, T)
        if xp is not None and nonneg:
            xp = np.where((xp < 0) & (xp >= -1e-12 * np.abs(xp).max()), 0.0, xp)
        if xp is not None and (not nonneg or np.all(xp >= 0)):
            cand = np.zeros(n)
            cand[T] = xp
            if np.linalg.norm(A @ cand - y) <= np.linalg.norm(A @ x - y):
                x, polished = cand, True
    resid = float(np.linalg.norm(A @ x - y)) if np.all(np.isfinite(x)) else math.inf
    return BPSolution(x=x, l1=float(np.abs(x).sum()), residual=resid, solver=solver,
                      status=status, n_iter=n_iter, polished=polished,
                      seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# codes: validation and chunking
# ---------------------------------------------------------------------------------------------


def _code_matrix(codes, n_atoms: int, source: str, chunk: int):
    """Validate the structure of the codes (shape, dtype, finiteness) and return
    (kind, object, n): kind "sparse" (CSR) or "dense" (2-D array, possibly a memory map)."""
    if sp.issparse(codes):
        M = sp.csr_matrix(codes)
        if M.shape[1] != n_atoms:
            raise ShapeMismatchError(
                f"{source}: codes have {M.shape[1]} columns but the dictionary has N = "
                f"{n_atoms} atoms (codes are tokens × atoms)")
        if not (np.issubdtype(M.dtype, np.floating) or np.issubdtype(M.dtype, np.integer)):
            raise InvalidCodeError(f"{source}: codes must be real numbers, got {M.dtype}")
        bad = np.flatnonzero(~np.isfinite(M.data))
        if bad.size:
            row = int(np.searchsorted(M.indptr, bad[0], side="right") - 1)
            raise NonFiniteError(
                f"{source}: code {row} holds a non-finite value ({M.data[bad[0]]!r} at atom "
                f"{int(M.indices[bad[0]])}); {bad.size} non-finite entries in all")
        return "sparse", M, M.shape[0]
    arr = codes if isinstance(codes, np.ndarray) else np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ShapeMismatchError(f"{source}: codes must be a tokens × atoms matrix, got shape "
                                 f"{arr.shape}")
    if arr.shape[1] != n_atoms:
        raise ShapeMismatchError(
            f"{source}: codes have {arr.shape[1]} columns but the dictionary has N = {n_atoms} "
            f"atoms (codes are tokens × atoms)")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidCodeError(f"{source}: codes must be real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        for start in range(0, arr.shape[0], chunk):
            block = np.asarray(arr[start : start + chunk])
            fin = np.isfinite(block)
            if not fin.all():
                r, c = np.argwhere(~fin)[0]
                raise NonFiniteError(
                    f"{source}: code {start + int(r)} holds a non-finite value "
                    f"({block[r, c]!r} at atom {int(c)})")
    return "dense", arr, arr.shape[0]


def _chunk_rows(kind: str, M, start: int, stop: int) -> sp.csr_matrix:
    block = M[start:stop]
    if kind == "dense":
        block = sp.csr_matrix(np.asarray(block, dtype=np.float64))
    else:
        block = sp.csr_matrix(block, dtype=np.float64, copy=True)
        block.sum_duplicates()
        block.eliminate_zeros()
        block.sort_indices()
    return block


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------


class _Recorder:
    """Per-code output arrays of :func:`classify_recovery`."""

    def __init__(self, n: int) -> None:
        self.status = np.zeros(n, dtype=np.int8)
        self.method = np.zeros(n, dtype=np.int8)
        self.certificate = np.full(n, np.nan)
        self.fuchs = np.full(n, np.nan)
        self.support_size = np.zeros(n, dtype=np.int64)
        self.reason = np.zeros(n, dtype=np.int8)
        self.iters = np.full(n, -1, dtype=np.int32)
        self.witness: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.deltas: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def certify(self, code: _Code, method: int, bound: float) -> None:
        self.status[code.index] = CERTIFIED
        self.method[code.index] = method
        self.certificate[code.index] = bound

    def fail(self, code: _Code, method: int, wit: tuple[np.ndarray, np.ndarray]) -> None:
        self.status[code.index] = FAILED
        self.method[code.index] = method
        self.witness[code.index] = wit
        self.deltas[code.index] = (code.S, code.vals)

    def offer_bound(self, code: _Code, bound: float) -> None:
        cur = self.certificate[code.index]
        if not (cur <= bound):
            self.certificate[code.index] = bound

    def csr(self, which: dict, n: int, n_atoms: int) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, (idx, v) in which.items():
            rows.append(np.full(len(idx), i, dtype=np.int64))
            cols.append(np.asarray(idx, dtype=np.int64))
            vals.append(np.asarray(v, dtype=np.float64))
        if not rows:
            return sp.csr_matrix((n, n_atoms))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                     np.concatenate(cols))), shape=(n, n_atoms))


def classify_recovery(
    D: Dictionary | np.ndarray,
    codes: np.ndarray | sp.spmatrix | sp.sparray,
    *,
    nonneg: bool = False,
    metric: AIPMetric | str | None = "self",
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
) -> RecoveryResult:
    """Classify, code by code, whether basis pursuit recovers each code *uniquely*, with a proof.

    Classification is on the corrected unit atoms D̃ (columns W dᵢ/‖W dᵢ‖; raw metric: dᵢ/‖dᵢ‖):
    a code δ over D as given is read as δ̃ᵢ = ‖W dᵢ‖·δᵢ over D̃ — same support S and signs —
    so y = D̃ δ̃ = W D δ. Statuses, tests and tolerances: module docstring. Cheapest test first:
    the batched Fuchs certificate and rank check, a batched ADMM witness search
    (``witness_iters`` iterations, 0 to skip), the homotopy (LARS, ``max_iter`` iterations,
    default 8·max(H, 100); hitting the cap leaves the code to the next test), then the exact
    certificate LP (HiGHS, ``lp_time_limit`` seconds per code, only when the LP has at most
    ``lp_max_size`` constraint entries).

    Parameters
    ----------
    D : Dictionary or H×N array (columns are atoms).
    codes : tokens × atoms (n×N): a dense array (or memory map) or any scipy sparse matrix.
        Structural problems raise with the index named: a width other than N
        (:class:`ShapeMismatchError`), a non-finite entry (:class:`NonFiniteError`), a
        non-numeric dtype (:class:`InvalidCodeError`). Per-code problems — an empty row, a
        negative entry with ``nonneg``, a support on a dead atom — mark that code "invalid"
        (``invalid_reason``) and the batch goes on.
    nonneg : non-negative basis pursuit (SAE codes).
    metric : "self" (S̃ = (D Dᵀ)⁻¹, default), an :class:`AIPMetric`, or "raw"/None.
    margin : certified means rigorous bound < 1 − margin.
    chunk_size : codes per chunk (the Fuchs GEMM batch and the ADMM batch work per chunk).
    blas_threads : BLAS threads for the batched stages (Fuchs GEMMs, ADMM); None leaves the BLAS
        default. The per-code stages always use one thread. The default is 1 because on a busy
        or shared machine multi-threaded BLAS on these sizes was measured up to 25× slower
        (2 cores, other jobs running); on a dedicated many-core machine pass None.
    progress : a tqdm bar on stderr.
    out : write the per-code arrays to this ``.npz`` (atomically; :meth:`RecoveryResult.save`).
    source : label for error messages (e.g. the codes' file name).
    budget_s : wall-clock budget of the whole call (None: no limit). Checked before every chunk
        and every per-code solve; the LP's own time limit is capped by what is left. Codes not
        decided when it runs out stay undetermined.
    """
    t_start = time.perf_counter()
    deadline = Deadline(budget_s) if budget_s is not None else None
    if not 0 <= margin < 1:
        raise ParameterError(f"margin must lie in [0, 1), got {margin}")
    if chunk_size < 1 or witness_iters < 0:
        raise ParameterError("chunk_size must be ≥ 1 and witness_iters ≥ 0")
    atoms = _UnitAtoms(D, metric)
    h, n_atoms = atoms.dim, atoms.n_atoms
    cap = max_iter if max_iter is not None else 8 * max(h, 100)
    if cap < 1:
        raise ParameterError(f"max_iter must be ≥ 1, got {cap}")
    kind, M, n = _code_matrix(codes, n_atoms, source, chunk_size)
    rec = _Recorder(n)
    stage = {"fuchs": 0.0, "rank": 0.0, "admm": 0.0, "homotopy": 0.0, "lp": 0.0}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="recover", unit="code", file=sys.stderr, leave=False)
    try:
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            block = _chunk_rows(kind, M, start, stop)
            pending = _parse_chunk(block, start, atoms, nonneg, rec)
            done_before = stop - start - len(pending)
            if bar is not None:
                bar.update(done_before)
            if deadline is not None and deadline.expired():  # left undetermined
                if bar is not None:
                    bar.update(len(pending))
                continue
            with threadpool_limits(blas_threads):
                pending = _stage_fuchs(atoms, pending, nonneg, margin, rec, stage, bar)
                if witness_iters > 0 and pending:
                    pending = _stage_admm(atoms, pending, nonneg, witness_iters, rec, stage,
                                          bar)
            with threadpool_limits(1):  # per-code work: one BLAS thread is faster on busy cores
                pending = _stage_homotopy(atoms, pending, nonneg, margin, cap, rec, stage, bar,
                                          deadline)
                if lp and pending:
                    pending = _stage_lp(atoms, pending, nonneg, margin, lp_time_limit,
                                        lp_max_size, rec, stage, bar, deadline)
                pending = _stage_duplicates(atoms, pending, nonneg, rec)
            if bar is not None:
                bar.update(len(pending))
    finally:
        if bar is not None:
            bar.close()
    result = RecoveryResult(
        n=n, dim=h, n_atoms=n_atoms, nonneg=nonneg, metric=atoms.metric_info(), margin=margin,
        status=rec.status, method=rec.method, certificate=rec.certificate, fuchs=rec.fuchs,
        support_size=rec.support_size, invalid_reason=rec.reason, homotopy_iters=rec.iters,
        witnesses=rec.csr(rec.witness, n, n_atoms), failed_codes=rec.csr(rec.deltas, n, n_atoms),
        atom_scale=atoms.scale, seconds=time.perf_counter() - t_start,
        stage_seconds={k: round(v, 6) for k, v in stage.items()}, source=source,
    )
    if out is not None:
        result.save(out)
    return result


def _parse_chunk(block: sp.csr_matrix, start: int, atoms: _UnitAtoms, nonneg: bool,
                 rec: _Recorder) -> list[_Code]:
    """Split a CSR chunk into usable codes (δ̃ = scale·δ over D̃, y = D̃ δ̃) and invalid ones."""
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
        elif nonneg and np.any(v < 0):
            reason = 2
        elif np.any(atoms.dead[S]):
            reason = 3
        if reason:
            rec.status[i] = INVALID
            rec.reason[i] = reason
            continue
        vals = v * atoms.scale[S]
        y = atoms.DT[S].T @ vals
        out.append(_Code(index=i, S=S, vals=vals, s=np.ones(len(S)) if nonneg else np.sign(vals),
                         y=y, norm2=float(np.linalg.norm(vals)), l1=float(np.abs(vals).sum()),
                         blocked=bool(atoms.duplicate_atoms(nonneg)[S].any())))
    return out


def _stage_fuchs(atoms, pending, nonneg, margin, rec, stage, bar):
    """Batched Fuchs certificates; SVD rank decisions for rank suspects."""
    t0 = time.perf_counter()
    if not pending:
        return pending
    fb = fuchs_batch(atoms.DT, [c.S for c in pending], [c.s for c in pending], nonneg=nonneg)
    rest, suspects = [], []
    for j, code in enumerate(pending):
        if fb.rank_suspect[j]:
            suspects.append(code)
            continue
        code.sigma_min = math.sqrt(fb.lam_min[j])
        code.sigma_ratio = math.sqrt(fb.lam_min[j] / fb.lam_max[j])
        value = float(fb.value[j])
        rec.fuchs[code.index] = value
        bound = value + fb.eq_residual[j] / code.sigma_min + atoms.gamma * fb.y_norm[j] * (
            1 + 1e-12)
        rec.offer_bound(code, bound)
        if bound < 1.0 - margin and not code.blocked:
            rec.certify(code, M_FUCHS, bound)
            if bar is not None:
                bar.update(1)
        else:
            rest.append(code)
    stage["fuchs"] += time.perf_counter() - t0
    t1 = time.perf_counter()
    with threadpool_limits(1):
        rest.extend(_rank_decisions(atoms, suspects, nonneg, margin, rec, bar))
    stage["rank"] += time.perf_counter() - t1
    return rest


def _rank_decisions(atoms, suspects, nonneg, margin, rec, bar):
    """SVD of D̃_S for codes whose Gram matrix looked singular: a null-vector witness when
    σmin/σmax ≤ RANK_TOL, else the Fuchs certificate through a least-squares solve."""
    rest = []
    for code in suspects:
        smin, smax, v_S = _sigma(atoms.Dt, code.S)
        code.sigma_min = smin
        code.sigma_ratio = smin / smax if smax > 0 else 0.0
        if code.sigma_ratio <= RANK_TOL:
            wit = None
            for sign in (1.0, -1.0):
                wit = _witness_along(atoms.DT, code, code.S, sign * v_S, nonneg)
                if wit is not None:
                    break
            if wit is not None:
                rec.fail(code, M_RANK, wit)
                if bar is not None:
                    bar.update(1)
                continue
            rest.append(code)  # numerically rank-deficient, no clean witness: let others try
            continue
        A = atoms.Dt[:, code.S]
        y0 = A @ np.linalg.lstsq(A.T @ A, code.s, rcond=None)[0]
        value, bound = _certificate_bound(atoms.DT, code.S, code.s, y0, nonneg, smin,
                                          atoms.gamma)
        rec.fuchs[code.index] = value
        rec.offer_bound(code, bound)
        if bound < 1.0 - margin and not code.blocked:
            rec.certify(code, M_FUCHS, bound)
            if bar is not None:
                bar.update(1)
        else:
            rest.append(code)
    return rest


def _stage_admm(atoms, pending, nonneg, iters, rec, stage, bar):
    """Batched ADMM search for feasible points beating the codes (failure witnesses)."""
    t0 = time.perf_counter()
    proj = atoms.projector()
    found: set[int] = set()
    for start in range(0, len(pending), _ADMM_BATCH):
        batch = pending[start : start + _ADMM_BATCH]
        Y = np.column_stack([c.y for c in batch])
        thr = np.array([0.1 * c.l1 / c.k for c in batch])
        tries = np.zeros(len(batch), dtype=np.int64)

        def accept(cols, X, Z, batch=batch, Y=Y, tries=tries):
            return _admm_accept(atoms, proj, cols, X, Z, batch, Y, tries, nonneg, rec,
                                found, bar)

        admm_bp_batch(proj, Y, thr, nonneg=nonneg, iters=iters, check_every=_ADMM_CHECK,
                      accept=accept)
    stage["admm"] += time.perf_counter() - t0
    return [c for c in pending if c.index not in found]


def _admm_accept(atoms, proj, cols, X, Z, batch, Y, tries, nonneg, rec, found, bar):
    """Verify ADMM proposals in float64: a least-squares fit on the support of z (non-negative
    least squares for non-negative codes), or (signed codes) the float64 projection x of the
    iterate onto {D̃x = y}, first refitted on its H largest entries (a sparse witness), else as
    it is (dense); a verified witness ends the code."""
    done = np.zeros(len(cols), dtype=bool)
    l1x = np.abs(X).sum(axis=0, dtype=np.float64)
    l1z = Z.sum(axis=0, dtype=np.float64) if nonneg else None
    for t, b in enumerate(cols):
        code = batch[b]
        promising = (l1z[t] if nonneg else l1x[t]) < code.l1 * (1 - 1e-6)
        if not promising or tries[b] >= _ADMM_POLISH_TRIES:
            continue
        tries[b] += 1
        wit = None
        T = np.flatnonzero(Z[:, t])
        xp = _nnls(atoms.Dt, code.y, T) if nonneg else _polish(atoms.Dt, code.y, T)
        if xp is not None:
            idx, vals = _clean_sparse(T, xp, nonneg)
            if _check_witness(atoms.DT, code, idx, vals, nonneg):
                wit = (idx, vals)
        if wit is None and not nonneg:
            x64 = proj.project64(X[:, t].astype(np.float64)[:, None], Y[:, [b]])[:, 0]
            top = np.sort(np.argsort(-np.abs(x64))[: atoms.dim])  # a sparse witness if possible
            xp = _polish(atoms.Dt, code.y, top)
            if xp is not None:
                idx, vals = _clean_sparse(top, xp, nonneg)
                if _check_witness(atoms.DT, code, idx, vals, nonneg):
                    wit = (idx, vals)
            if wit is None:
                idx, vals = _clean_sparse(np.arange(len(x64)), x64, nonneg)
                if _check_witness(atoms.DT, code, idx, vals, nonneg):
                    wit = (idx, vals)
        if wit is not None:
            rec.fail(code, M_ADMM, wit)
            found.add(code.index)
            done[t] = True
            if bar is not None:
                bar.update(1)
    return done


def _stage_homotopy(atoms, pending, nonneg, margin, cap, rec, stage, bar, deadline=None):
    """LARS path per code: a witness, or a pushed final-segment certificate. On large
    dictionaries the path is first run on a float32 copy of D̃ (twice as fast; its active set and
    solution are only proposals, verified in float64), then, if that decides nothing, in
    float64."""
    t0 = time.perf_counter()
    rest = []
    for n_done, code in enumerate(pending):
        if deadline is not None and deadline.expired():
            rest.extend(pending[n_done:])
            break
        decided = False
        total = 0
        for dt in atoms.homotopy_dtypes:
            Dt = atoms.Dt if dt == np.float64 else atoms.dt32()
            rel = HOMOTOPY_ALPHA_MIN if dt == np.float64 else HOMOTOPY_ALPHA_MIN_32
            coef, active, n_iter, _capped = _lars(Dt, code.y, nonneg, cap, rel)
            total += max(n_iter, 0)
            if _decide_from_path(atoms, code, coef, active, nonneg, margin, rec):
                decided = True
                break
        rec.iters[code.index] = total
        if decided:
            if bar is not None:
                bar.update(1)
        else:
            rest.append(code)
    stage["homotopy"] += time.perf_counter() - t0
    return rest


def _decide_from_path(atoms, code, coef, active, nonneg, margin, rec) -> bool:
    """From the end of a homotopy path (coefficients at α = α_min, active set A): the float64
    least-squares polish on A is a witness if it beats δ̃; otherwise try the certificate pushed
    from the final segment (:func:`_push_certificate`) with T = A∖S and signs sign(x_T)."""
    if len(active) == 0:
        return False
    xA = _polish(atoms.Dt, code.y, active)
    if xA is not None:
        idx, vals = _clean_sparse(active, xA, nonneg)
        diff = _sparse_diff_norm(idx, vals, code.S, code.vals)
        if diff > RECOVERY_TOL * code.norm2 and _check_witness(atoms.DT, code, idx, vals,
                                                               nonneg):
            rec.fail(code, M_HOMOTOPY, (idx, vals))
            return True
    if not code.sigma_ratio > RANK_TOL:
        return False
    T = np.setdiff1d(active, code.S)
    sT = np.ones(len(T)) if nonneg else np.sign(coef[T])
    sT[sT == 0] = 1.0
    bound = _push_certificate(atoms, code, T, sT, nonneg)
    rec.offer_bound(code, bound)
    if bound < 1.0 - margin and not code.blocked:
        rec.certify(code, M_HOMOTOPY, bound)
        return True
    return False


def _stage_duplicates(atoms: _UnitAtoms, pending: list[_Code], nonneg: bool,
                      rec: _Recorder) -> list[_Code]:
    """Blocked codes still open: the witness that moves each δ̃ᵢ on a duplicate atom onto its
    partner (module docstring, "Duplicate atoms")."""
    rest = []
    partners = atoms.duplicate_partners() if any(c.blocked for c in pending) else {}
    for code in pending:
        wit = _duplicate_swap(atoms, code, nonneg, partners) if code.blocked else None
        if wit is None:
            rest.append(code)
        else:
            rec.fail(code, M_DUPLICATE, wit)
    return rest


def _duplicate_swap(atoms: _UnitAtoms, code: _Code, nonneg: bool,
                    partners: dict[int, list[tuple[int, float]]]):
    x = dict(zip(code.S.tolist(), code.vals.tolist(), strict=True))
    moved = False
    for a, v in zip(code.S.tolist(), code.vals.tolist(), strict=True):
        for b, c in partners.get(a, ()):
            if nonneg and c <= 0:
                continue
            x[a] = x.get(a, 0.0) - v
            x[b] = x.get(b, 0.0) + math.copysign(1.0, c) * v
            moved = True
            break
    if not moved:
        return None
    idx = np.array(sorted(k for k, v in x.items() if v != 0.0), dtype=np.int64)
    vals = np.array([x[k] for k in idx])
    if (nonneg and np.any(vals < 0)) or np.abs(vals).sum() > (1.0 + L1_TOL) * code.l1:
        return None
    if np.linalg.norm(_apply(atoms.DT, idx, vals) - code.y) > (
            math.sqrt(2.0 * DUPLICATE_TOL) * code.l1 * (1 + 1e-9)):
        return None
    if _sparse_diff_norm(idx, vals, code.S, code.vals) <= RECOVERY_TOL * code.norm2:
        return None
    return idx, vals


def _stage_lp(atoms, pending, nonneg, margin, time_limit, max_size, rec, stage, bar,
              deadline=None):
    """The exact certificate LP: certificate (t* < 1) or dual witness (t* > 1)."""
    t0 = time.perf_counter()
    rest = []
    for n_done, code in enumerate(pending):
        if deadline is not None:
            if deadline.expired():
                rest.extend(pending[n_done:])
                break
            left = deadline.remaining()
            time_limit = left if time_limit is None else min(time_limit, left)
        size = (atoms.n_atoms - code.k) * (atoms.dim + 1) * (1 if nonneg else 2)
        if size > max_size or not code.sigma_ratio > RANK_TOL:
            rest.append(code)
            continue
        res, comp = _lp(atoms.DT, code.S, code.s, nonneg, time_limit)
        decided = False
        if res.status == 0 and res.x is not None:
            y = res.x[:-1]
            _, bound = _certificate_bound(atoms.DT, code.S, code.s, y, nonneg, code.sigma_min,
                                          atoms.gamma)
            rec.offer_bound(code, bound)
            if bound < 1.0 - margin and not code.blocked:
                rec.certify(code, M_LP, bound)
                decided = True
            elif res.x[-1] >= 1.0 - margin:  # δ̃ is not the unique solution: find the tie
                wit = _lp_dual_witness(atoms, code, res, comp, nonneg)
                if wit is not None:
                    rec.fail(code, M_LP, wit)
                    decided = True
        if decided:
            if bar is not None:
                bar.update(1)
        else:
            rest.append(code)
    stage["lp"] += time.perf_counter() - t0
    return rest


def _lp_dual_witness(atoms, code, res, comp, nonneg):
    """From the LP dual (multipliers w ≥ 0 of the rows ±d̃ⱼᵀy ≤ t): z = w⁺ − w⁻ on Sᶜ, and
    v_S = −argmin‖D̃_S u − D̃_{Sᶜ} z‖ makes v = (v_S, z) ∈ ker D̃ with −sᵀv_S = t*‖z‖₁ ≥ ‖z‖₁."""
    marg = getattr(res.ineqlin, "marginals", None)
    if marg is None:
        return None
    w = -np.asarray(marg, dtype=np.float64)
    m = len(comp)
    z = w if nonneg else w[:m] - w[m:]
    keep = np.abs(z) > 1e-12 * max(np.abs(z).max(), 1e-300)
    if not keep.any():
        return None
    zi, zv = comp[keep], z[keep]
    rhs = atoms.DT[zi].T @ zv
    u = np.linalg.lstsq(atoms.Dt[:, code.S], rhs, rcond=None)[0]
    for sign in (1.0, -1.0):
        v_idx = np.concatenate([code.S, zi])
        v_vals = sign * np.concatenate([-u, zv])
        wit = _witness_along(atoms.DT, code, v_idx, v_vals, nonneg)
        if wit is not None:
            return wit
    return None


# ---------------------------------------------------------------------------------------------
# phase transition
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseTransitionResult:
    """Empirical phase transition of basis pursuit for Gaussian H×N dictionaries.

    success_rate[i] = certified / (certified + failed) at ks[i] over ``trials`` trials (each
    trial draws a fresh dictionary and one code per k); undetermined trials are excluded and
    counted. rho_weak = ρ_W(H/N) and k_weak = ρ_W·H (Donoho–Tanner, :mod:`rip_atoms.theory`);
    k50_empirical is where the success rate, made non-increasing in k (pool-adjacent-violators,
    weighted by decided trials), crosses 1/2 (linear interpolation; None if it never does).
    """

    dim: int
    n_atoms: int
    nonneg: bool
    trials: int
    seed: int
    ks: np.ndarray
    successes: np.ndarray
    failures: np.ndarray
    undetermined: np.ndarray
    success_rate: np.ndarray
    rho_weak: float
    k_weak: float
    k50_empirical: float | None
    methods: dict
    seconds: float

    def to_dict(self) -> dict:
        return {
            "dim": self.dim,
            "n_atoms": self.n_atoms,
            "nonneg": self.nonneg,
            "trials": self.trials,
            "seed": self.seed,
            "k": [int(k) for k in self.ks],
            "success_rate": [float(r) for r in self.success_rate],
            "successes": [int(v) for v in self.successes],
            "failures": [int(v) for v in self.failures],
            "undetermined": [int(v) for v in self.undetermined],
            "rho_weak": self.rho_weak,
            "k_weak": self.k_weak,
            "k50_empirical": self.k50_empirical,
            "methods": dict(self.methods),
            "seconds": self.seconds,
        }


def _pava_decreasing(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([float(yi), float(wi), 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            wt = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / wt if wt > 0 else 0.5 * (v1 + v2), wt, c1 + c2])
    return np.concatenate([[v] * c for v, _, c in blocks])


def _crossing(ks: np.ndarray, rate: np.ndarray, weights: np.ndarray) -> float | None:
    """k where the non-increasing fit of the success rate crosses 1/2 (linear interpolation)."""
    ok = weights > 0
    if ok.sum() < 2:
        return None
    k, f = ks[ok].astype(np.float64), _pava_decreasing(rate[ok], weights[ok])
    for i in range(len(k) - 1):
        if f[i] >= 0.5 > f[i + 1]:
            return float(k[i] + (f[i] - 0.5) / (f[i] - f[i + 1]) * (k[i + 1] - k[i]))
    return None


def phase_transition(
    dim: int,
    n_atoms: int,
    ks: Iterable[int],
    trials: int,
    *,
    nonneg: bool = False,
    seed: int = 0,
    margin: float = MARGIN,
    witness_iters: int = 100,
    max_iter: int | None = None,
    lp: bool = True,
    progress: bool = False,
) -> PhaseTransitionResult:
    """Success rate of basis pursuit against sparsity k for Gaussian dictionaries.

    Each trial draws D with iid N(0, 1) entries and unit-normalised columns (H×N), and for every
    k a code with a uniformly random support of size k, magnitudes uniform in [1, 2] and random
    signs (all positive with ``nonneg``); the codes are classified by
    :func:`classify_recovery` (raw metric). Success = certified (the certificate proves BP
    returns the code; any BP solution then agrees with it to RECOVERY_TOL after polish),
    failure = a witness that beats it. The prediction beside it is the Donoho–Tanner weak
    threshold k_W = ρ_W(H/N)·H (signed, or the non-negative ρ_W⁺). Seeded: the same arguments
    give the same codes and dictionaries.
    """
    for name, val in (("dim", dim), ("n_atoms", n_atoms), ("trials", trials)):
        if int(val) != val or val < 1:
            raise ParameterError(f"{name} must be a positive integer, got {val!r}")
    if dim > n_atoms:
        raise ParameterError(f"need dim ≤ n_atoms (H/N ≤ 1), got H = {dim}, N = {n_atoms}")
    ks = np.unique(np.asarray(list(ks), dtype=np.int64))
    if ks.size == 0 or ks.min() < 1 or ks.max() > n_atoms:
        raise ParameterError(f"every k must lie in [1, N = {n_atoms}], got {ks.tolist()}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    succ = np.zeros(len(ks), dtype=np.int64)
    fail = np.zeros(len(ks), dtype=np.int64)
    und = np.zeros(len(ks), dtype=np.int64)
    methods = dict.fromkeys(METHOD_NAMES[1:], 0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trials, desc="phase transition", unit="trial", file=sys.stderr,
                   leave=False)
    try:
        for _ in range(trials):
            D = rng.standard_normal((dim, n_atoms))
            D /= np.linalg.norm(D, axis=0)
            rows, cols, vals = [], [], []
            for r, k in enumerate(ks):
                S = np.sort(rng.choice(n_atoms, size=int(k), replace=False))
                v = rng.uniform(1.0, 2.0, size=int(k))
                if not nonneg:
                    v *= rng.choice([-1.0, 1.0], size=int(k))
                rows.append(np.full(len(S), r))
                cols.append(S)
                vals.append(v)
            codes = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                          np.concatenate(cols))),
                                  shape=(len(ks), n_atoms))
            res = classify_recovery(D, codes, nonneg=nonneg, metric=None, margin=margin,
                                    witness_iters=witness_iters, max_iter=max_iter, lp=lp)
            succ += res.status == CERTIFIED
            fail += res.status == FAILED
            und += res.status == UNDETERMINED
            for name, cnt in res.methods.items():
                methods[name] += cnt
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    decided = succ + fail
    rate = np.where(decided > 0, succ / np.maximum(decided, 1), np.nan)
    rho = rho_weak(dim / n_atoms, nonneg)
    k50 = _crossing(ks, np.nan_to_num(rate), decided)
    return PhaseTransitionResult(
        dim=dim, n_atoms=n_atoms, nonneg=nonneg, trials=trials, seed=seed, ks=ks,
        successes=succ, failures=fail, undetermined=und, success_rate=rate, rho_weak=rho,
        k_weak=k_weak(dim, n_atoms, nonneg), k50_empirical=k50, methods=methods,
        seconds=time.perf_counter() - t0,
    )
