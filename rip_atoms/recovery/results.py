"""What a recovery decision means: statuses, methods, tolerances, and the result types.

A code is **certified** when a dual certificate's rigorous bound is < 1 − ``MARGIN`` (and D̃_S has
σmin/σmax > ``RANK_TOL``); **failed** when a witness x re-checks in float64: feasible
(‖D̃x − y‖₂ ≤ ``FEAS_TOL``·‖y‖₂ + γ_{m+k}(‖x‖₁ + ‖δ̃‖₁), the float64 rounding of the residual,
:func:`rip_atoms.recovery.witnesses._feasibility_tol`), no worse (‖x‖₁ ≤ (1 + ``L1_TOL``)‖δ̃‖₁,
x ≥ 0 for non-negative codes) and different (‖x − δ̃‖₂ > ``RECOVERY_TOL``·‖δ̃‖₂);
**undetermined** otherwise, with a reason where the classifier can give one (a near-parallel
pair, a rank-deficient D̃_S: ``RecoveryResult.reasons``); **invalid** when the code itself is
unusable (package docstring).
:class:`Status` and :class:`Method` are the integer codes stored per code in
:class:`RecoveryResult`; ``STATUS_NAMES``/``METHOD_NAMES`` are their names in that order.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rip_atoms import strict_json
from rip_atoms.errors import FileFormatError
from rip_atoms.strict_json import fields_dict

#: a certificate proves uniqueness when its rigorous bound is < 1 − MARGIN
MARGIN = 1e-6
#: a witness x is feasible when ‖D̃x − y‖₂ ≤ FEAS_TOL·‖y‖₂ (+ the float64 rounding of D̃x − y)
FEAS_TOL = 1e-9
#: a witness beats the code when ‖x‖₁ ≤ (1 + L1_TOL)·‖δ̃‖₁
L1_TOL = 1e-9
#: x "is" δ̃ (recovery) when ‖x − δ̃‖₂ ≤ RECOVERY_TOL·‖δ̃‖₂; a witness must differ by more
RECOVERY_TOL = 1e-6
#: D̃_S is rank-deficient when σmin/σmax ≤ RANK_TOL (float64 SVD)
RANK_TOL = 1e-9


class Status(IntEnum):
    """The classification of one code (the values are those stored in ``RecoveryResult.status``)."""

    UNDETERMINED = 0
    CERTIFIED = 1
    FAILED = 2
    INVALID = 3


class Method(IntEnum):
    """The test that decided a code (stored in ``RecoveryResult.method``; NONE if undecided)."""

    NONE = 0
    FUCHS = 1
    RANK = 2
    ADMM = 3
    HOMOTOPY = 4
    LP = 5
    DUPLICATE = 6
    PUSH = 7


STATUS_NAMES = tuple(s.name.lower() for s in Status)
METHOD_NAMES = tuple(m.name.lower() for m in Method)
INVALID_REASONS = ("", "empty support", "negative entry in a non-negative code",
                   "support on a dead atom")
UNDETERMINED, CERTIFIED, FAILED, INVALID = Status
M_NONE, M_FUCHS, M_RANK, M_ADMM, M_HOMOTOPY, M_LP, M_DUPLICATE, M_PUSH = Method


@dataclass(frozen=True)
class Certificate:
    """A dual certificate y for a support S and signs s.

    value : ‖D_{Sᶜ}ᵀ y‖_∞ (non-negative: max_{j∈Sᶜ} dⱼᵀ y), computed in float64.
    bound : value + ‖D_Sᵀ y − s‖₂/σmin(D_S) + γ_H·‖y‖₂·maxⱼ‖dⱼ‖ — an upper bound on the value of
        an exactly feasible certificate (:mod:`rip_atoms.recovery.certificates`); +inf when D_S
        is rank-deficient.
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
        """Does the certificate prove uniqueness?

        Parameters
        ----------
        margin : float
            Required room below 1.

        Returns
        -------
        bool
            True when bound < 1 − margin and D_S has full column rank (sigma_ratio > RANK_TOL).
        """
        return bool(self.sigma_ratio > RANK_TOL and self.bound < 1.0 - margin)

    def to_dict(self) -> dict:
        """The certificate's numbers (without y) as a JSON-ready dict."""
        return fields_dict(self, exclude=("y",))


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
        """The solution's summary (without x) as a JSON-ready dict."""
        return {"l1": self.l1, "residual": self.residual, "solver": self.solver,
                "status": self.status, "n_iter": self.n_iter, "polished": self.polished,
                "seconds": self.seconds, "support_size": int(np.count_nonzero(self.x))}


_CSR_KEYS = (("witnesses", "witness"), ("failed_codes", "failed_code"))


@dataclass(frozen=True)
class RecoveryResult:
    """Per-code classification of exact ℓ1 recovery (:func:`classify_recovery`).

    Arrays have one entry per code (row of the input):

    status : int8 index into STATUS_NAMES (:class:`Status`).
    method : int8 index into METHOD_NAMES (:class:`Method`): the test that decided the code.
    certificate : the rigorous bound of the best certificate found (NaN if none was computed);
        < 1 − margin exactly for certified codes.
    fuchs : the Fuchs (min-ℓ2) certificate value ‖D̃_{Sᶜ}ᵀ y₀‖_∞ (NaN if not computed).
    support_size : K = |S|.
    invalid_reason : int8 index into INVALID_REASONS (0 for usable codes).
    homotopy_iters : LARS iterations (−1 if the homotopy did not run).
    witnesses : n×N CSR; row i holds the witness x̃ of failed code i over D̃ (empty otherwise).
    failed_codes : n×N CSR; row i holds δ̃ of failed code i (so v = x̃ − δ̃ ∈ ker D̃).
    atom_scale : ‖W dᵢ‖ (the factor δ̃ᵢ = ‖W dᵢ‖ δᵢ; 0 for dead atoms).
    certificate_index, certificate_y, certificate_codes : the kept certificates
        (:mod:`rip_atoms.recovery.kept`): code indices (ascending), their dual vectors y*
        (m×H, float64) and their δ̃ (m×N CSR); ``certificate_limit`` is how many were asked
        for (None: every certified code; 0: none).
    reasons : code index → why that undetermined code has no proof either way (only codes the
        classifier can explain: a near-parallel pair, a rank-deficient D̃_S).
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
    #: the call's budget and its use (:meth:`rip_atoms.deadline.Deadline.to_dict`; empty when
    #: unlimited)
    budget: dict = field(default_factory=dict)
    certificate_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64),
                                          repr=False)
    certificate_y: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    certificate_codes: sp.csr_matrix = field(default_factory=lambda: sp.csr_matrix((0, 0)),
                                             repr=False)
    certificate_limit: int | None = 0
    reasons: dict = field(default_factory=dict)

    @property
    def certificates_kept(self) -> str:
        """Which certified codes keep their y*, in words."""
        if self.certificate_limit is None:
            return "every certified code"
        if self.certificate_limit == 0:
            return "none"
        return f"the first {self.certificate_limit} certified codes (by index)"

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
        """The witness of a failed code.

        Parameters
        ----------
        i : int
            Index of a failed code.

        Returns
        -------
        numpy.ndarray
            x̃ (dense, length N, over D̃); raises ValueError if code i is not failed.
        """
        if self.status[i] != FAILED:
            raise ValueError(f"code {i} is {STATUS_NAMES[self.status[i]]}, not failed")
        return self.witnesses[i].toarray().ravel()

    def nsp_witness(self, i: int) -> np.ndarray:
        """The null-space-property violation of a failed code.

        Parameters
        ----------
        i : int
            Index of a failed code.

        Returns
        -------
        numpy.ndarray
            v = x̃ − δ̃ ∈ ker D̃ with ‖v_{Sᶜ}‖₁ ≤ ‖v_S‖₁ (an NSP violation of order K).
        """
        return self.witness(i) - self.failed_codes[i].toarray().ravel()

    def invalid_examples(self, limit: int = 20) -> list[dict]:
        """The first invalid codes and why.

        Parameters
        ----------
        limit : int
            At most this many.

        Returns
        -------
        list of dict
            ``{"index": i, "reason": ...}`` per invalid code, in index order.
        """
        idx = np.flatnonzero(self.status == INVALID)[:limit]
        return [{"index": int(i), "reason": INVALID_REASONS[self.invalid_reason[i]]} for i in idx]

    def undetermined_examples(self, limit: int = 20) -> list[dict]:
        """The first undetermined codes with a reason: ``{"index": i, "reason": ...}``, in
        index order, at most ``limit``."""
        return [{"index": int(i), "reason": str(r)}
                for i, r in sorted(self.reasons.items())[:limit]]

    def to_dict(self) -> dict:
        """The summary (counts, methods, tolerances; no per-code arrays) as a JSON-ready dict."""
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
                           "rank": RANK_TOL,
                           "reading": "failed: ‖D̃x − y‖₂ ≤ feasibility·‖y‖₂ + γ_{m+k}(‖x‖₁ + "
                                      "‖δ̃‖₁) (γ_n = nu/(1 − nu), u = 2⁻⁵³; m, k the non-zeros "
                                      "of x, δ̃), ‖x‖₁ ≤ (1 + l1)‖δ̃‖₁, ‖x − δ̃‖₂ > "
                                      "recovery·‖δ̃‖₂, in float64 on D̃"},
            "max_certified_bound": float(cert.max()) if cert.size else None,
            "invalid_examples": self.invalid_examples(),
            "undetermined_with_reason": len(self.reasons),
            "undetermined_examples": self.undetermined_examples(),
            "source": self.source,
        }

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write the per-code arrays to an ``.npz`` atomically (temp file + ``os.replace``).

        Keys: status, method, certificate, fuchs, support_size, invalid_reason, homotopy_iters,
        atom_scale, witness_{data,indices,indptr}, failed_code_{data,indices,indptr}, shape,
        status_names, method_names, invalid_reasons, summary (JSON text), reason_index and
        reason_text (the undetermined codes' reasons). Loads with
        ``np.load(path, allow_pickle=False)``, or back into a result with :meth:`load`. The
        kept certificates: certificate_index, certificate_y, certificate_code_{data,indices,
        indptr}, certificate_limit (−1: all).

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file to write (its folder must exist).
        extra : dict, optional
            More arrays to store (``recover --out``: the ``check_*`` arrays of
            :func:`rip_atoms.recovery.kept.proof_arrays`).

        Returns
        -------
        pathlib.Path
            ``path``. Raises :class:`FileFormatError` when it cannot be written.
        """
        path = Path(path)
        arrays = {
            "status": self.status, "method": self.method, "certificate": self.certificate,
            "fuchs": self.fuchs, "support_size": self.support_size,
            "invalid_reason": self.invalid_reason, "homotopy_iters": self.homotopy_iters,
            "atom_scale": self.atom_scale,
            "shape": np.array([self.n, self.n_atoms]),
            "status_names": np.array(STATUS_NAMES), "method_names": np.array(METHOD_NAMES),
            "invalid_reasons": np.array(INVALID_REASONS),
            "summary": np.array(strict_json.dumps(self.to_dict())),
            "reason_index": np.array(sorted(self.reasons), dtype=np.int64),
            "reason_text": np.array([str(self.reasons[i]) for i in sorted(self.reasons)],
                                    dtype=str),
        }
        for attr, key in _CSR_KEYS:
            M = getattr(self, attr)
            arrays.update({f"{key}_data": M.data, f"{key}_indices": M.indices,
                           f"{key}_indptr": M.indptr})
        arrays.update(_certificate_arrays(self))
        arrays.update(extra or {})
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

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecoveryResult:
        """Read a result written by :meth:`save` (without pickle).

        Parameters
        ----------
        path : str or os.PathLike
            An ``.npz`` written by :meth:`save`.

        Returns
        -------
        RecoveryResult
            The per-code arrays and the summary's fields (``seconds``, ``stage_seconds``,
            ``metric``...) as saved. Raises :class:`FileFormatError` for a file that is not one.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                f = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"{path}: cannot read per-code results ({exc})") from exc
        try:
            summary = json.loads(str(f["summary"]))
            n, n_atoms = (int(v) for v in f["shape"])
            csr = {attr: sp.csr_matrix((f[f"{key}_data"], f[f"{key}_indices"],
                                        f[f"{key}_indptr"]), shape=(n, n_atoms))
                   for attr, key in _CSR_KEYS}
            return cls(
                n=n, dim=int(summary["dim"]), n_atoms=n_atoms, nonneg=bool(summary["nonneg"]),
                metric=summary["metric"], margin=float(summary["margin"]),
                status=f["status"], method=f["method"], certificate=f["certificate"],
                fuchs=f["fuchs"], support_size=f["support_size"],
                invalid_reason=f["invalid_reason"], homotopy_iters=f["homotopy_iters"],
                atom_scale=f["atom_scale"], seconds=float(summary["seconds"]),
                stage_seconds=dict(summary["stage_seconds"]), source=summary["source"], **csr,
                **certificates_of(f, n_atoms), reasons=reasons_from_arrays(f),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise FileFormatError(f"{path}: not a per-code recovery result ({exc})") from exc


def reasons_from_arrays(f: dict) -> dict[int, str]:
    """code index → reason from the arrays of a saved result (none in files from before)."""
    if "reason_index" not in f:
        return {}
    return {int(i): str(t) for i, t in zip(f["reason_index"], f["reason_text"], strict=True)}


def _certificate_arrays(res: RecoveryResult) -> dict[str, np.ndarray]:
    C = res.certificate_codes
    return {"certificate_index": res.certificate_index, "certificate_y": res.certificate_y,
            "certificate_code_data": C.data, "certificate_code_indices": C.indices,
            "certificate_code_indptr": C.indptr,
            "certificate_limit": np.array(-1 if res.certificate_limit is None
                                          else res.certificate_limit)}


def certificates_of(f: dict, n_atoms: int) -> dict:
    """The kept-certificate fields of a result from the arrays of a saved file (none in a
    file written before they were kept)."""
    if "certificate_index" not in f:
        return {}
    idx = np.asarray(f["certificate_index"], dtype=np.int64)
    limit = int(f["certificate_limit"])
    return {"certificate_index": idx, "certificate_y": f["certificate_y"],
            "certificate_codes": sp.csr_matrix(
                (f["certificate_code_data"], f["certificate_code_indices"],
                 f["certificate_code_indptr"]), shape=(len(idx), n_atoms)),
            "certificate_limit": None if limit < 0 else limit}
