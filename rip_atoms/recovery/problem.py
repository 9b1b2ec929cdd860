"""The problem a decision is about: the corrected atoms D̃ in float64 and the codes over them.

:class:`UnitAtoms` is what the recovery tests need of D̃ — the float64 rows and columns of
:class:`~rip_atoms.corrected_atoms.CorrectedAtoms` (the one representation of the corrected
atoms), the scale ‖W dᵢ‖, the dead mask, duplicate pairs, a float32 copy for the fast homotopy
pass and the row-space projector of the ADMM search. :class:`Code` is one usable code δ̃ over D̃.
The rest validates inputs: an H×N matrix with a support and signs (the single-support functions);
code matrices are checked by :func:`rip_atoms.codes.check_codes` (the one check) and read chunk
by chunk (:func:`chunk_rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import DUPLICATE_TOL, Dictionary
from rip_atoms.errors import (
    EmptyDictionaryError,
    InvalidCodeError,
    NonFiniteError,
    ShapeMismatchError,
)
from rip_atoms.geometry import Geometry
from rip_atoms.kernels.parallel_copy import parallel_copyto
from rip_atoms.kernels.recovery_batch import RowSpaceProjector
from rip_atoms.metric import AIPMetric
from rip_atoms.precision import gamma, input_precision_name, rank_tolerance

#: dictionaries with at most this many entries run the homotopy in float64 only (larger ones
#: try a float32 path first)
_SMALL_PROBLEM = 1 << 22
#: seconds per flop of the ADMM projector's set-up (a float64 Gram, a Cholesky factor — or an
#: eigensolve when D̃D̃ᵀ is near singular — and a float32 GEMM for K: measured 5.15 s for
#: 2304×16384 on one BLAS thread, 1.1e-11 s/flop of the 4H²N + 10H³ below, with a 1.8× margin
#: that also covers the eigensolve): under a deadline the set-up, which cannot be interrupted,
#: starts only if its estimate fits the time left
PROJECTOR_SECONDS_PER_FLOP = 2e-11


def recovery_view(geom: Geometry) -> UnitAtoms:
    """The recovery tests' view of the geometry's D̃ = (W dᵢ/‖W dᵢ‖₂)ᵢ in float64 (its
    ``rows64``), built once per geometry and kept on it (:meth:`Geometry.derived`), so its
    float32 copy, duplicate pairs and ADMM projector are shared by every call that passes the
    same geometry. Raises :class:`EmptyDictionaryError` when every atom is dead."""
    return geom.derived("recovery view", lambda g: UnitAtoms(
        g.dictionary, g.metric, g.atoms(rows=False, rows64=True, min_live=0)))


class UnitAtoms:
    """D̃ in float64 for the recovery tests, from :class:`CorrectedAtoms` (``rows64=True``).

    ``rows64`` (N×H, C order: atom rows) and ``cols64`` = rows64.T (H×N, Fortran order);
    ``scale`` = ‖W dᵢ‖ (0 for dead atoms, whose rows are zero); ``dead`` the dead mask;
    ``precision`` = (dtype name, r) of the input: sets with σmin/σmax ≤ r are dependent within
    its precision (:func:`rip_atoms.precision.rank_tolerance`), for the words of a reason only.
    """

    def __init__(self, D: Dictionary | np.ndarray, metric: AIPMetric | str | None,
                 corrected: CorrectedAtoms | None = None) -> None:
        if corrected is None:
            corrected = CorrectedAtoms(D, metric, rows=False, rows64=True, min_live=0)
        if corrected.dead.all():
            raise EmptyDictionaryError(
                f"{corrected.dictionary.provenance.source}: every atom is dead")
        self.corrected = corrected
        self.metric = corrected.metric
        self._metric_info = corrected.metric_info()
        d = corrected.dictionary
        self.precision = (input_precision_name(d), rank_tolerance(d, corrected.metric))
        self._set_arrays(corrected.rows64, corrected.norms, corrected.dead)
        self._cols32: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, rows64: np.ndarray, scale: np.ndarray, dead: np.ndarray,
                    rows32: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                    metric_info: dict, precision: tuple[str, float] | None = None
                    ) -> UnitAtoms:
        """The view rebuilt from arrays another process computed (a worker of the distributed
        certifier, from :func:`rip_atoms.recovery.shared_atoms.load_atoms`): ``rows64`` and
        ``rows32`` (N×H, C order; may be read-only memory maps), ``scale``, ``dead``, the duplicate
        ``pairs`` (atoms a, b, cos) of :meth:`duplicate_pairs`, the metric's description and
        :attr:`precision` (the input's dtype name and rank tolerance; None: unknown).
        Decisions are those of the view the arrays came from."""
        self = cls.__new__(cls)
        self.corrected = None  # no .metric either: the metric is known by its description only
        self._metric_info = dict(metric_info)
        self.precision = None if precision is None else (str(precision[0]),
                                                         float(precision[1]))
        self._set_arrays(rows64, scale, dead)
        self._cols32 = rows32.T
        self._set_duplicates(*pairs)
        return self

    def _set_arrays(self, rows64: np.ndarray, scale: np.ndarray, dead: np.ndarray) -> None:
        self.rows64 = rows64
        self.cols64 = rows64.T
        self.scale = scale
        self.dead = dead
        self.n_atoms, self.dim = rows64.shape
        self.gamma = gamma(self.dim)
        small = self.dim * self.n_atoms <= _SMALL_PROBLEM
        self.homotopy_dtypes = (np.float64,) if small else (np.float32, np.float64)
        self._proj: RowSpaceProjector | None = None
        self._dups: tuple[np.ndarray, np.ndarray] | None = None
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._partners: dict[int, list[tuple[int, float]]] = {}

    def duplicate_partners(self) -> dict[int, list[tuple[int, float]]]:
        """atom → [(partner, cos)] over the duplicate pairs (computed with the masks)."""
        self.duplicate_atoms(False)
        return self._partners

    def duplicate_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The duplicate pairs (|cos| ≥ 1 − DUPLICATE_TOL) as arrays: atoms a, b and cos."""
        self.duplicate_atoms(False)
        return self._pairs

    def duplicate_atoms(self, nonneg: bool) -> np.ndarray:
        """Boolean mask of atoms in a duplicate pair (|cos| ≥ 1 − DUPLICATE_TOL; with
        ``nonneg``, only pairs with cos ≥ 1 − DUPLICATE_TOL), computed once."""
        if self._dups is None:
            from rip_atoms.kernels.near_duplicates import near_duplicate_pairs

            live = np.flatnonzero(~self.dead)
            U = self.rows64 if live.size == self.n_atoms else self.rows64[live]  # no copy
            found = near_duplicate_pairs(U, DUPLICATE_TOL)
            self._set_duplicates(live[found[:, 0].astype(np.int64)],
                                 live[found[:, 1].astype(np.int64)], found[:, 2].copy())
        return self._dups[1] if nonneg else self._dups[0]

    def _set_duplicates(self, a: np.ndarray, b: np.ndarray, cos: np.ndarray) -> None:
        signed = np.zeros(self.n_atoms, dtype=bool)
        positive = np.zeros(self.n_atoms, dtype=bool)
        self._partners = {}
        for i, j, c in zip(a.tolist(), b.tolist(), cos.tolist(), strict=True):
            signed[[i, j]] = True
            if c > 0:
                positive[[i, j]] = True
            self._partners.setdefault(i, []).append((j, c))
            self._partners.setdefault(j, []).append((i, c))
        self._pairs = (a, b, cos)
        self._dups = (signed, positive)

    def cols32(self) -> np.ndarray:
        """D̃ rounded to float32 (H×N, Fortran order), for the fast first homotopy pass."""
        if self._cols32 is None:
            rows = self.corrected.rows if self.corrected is not None else None
            if rows is not None and rows.shape[0] == self.n_atoms and rows.flags.c_contiguous:
                self._cols32 = rows.T  # the same rounding of the same rows64, already made
            else:  # the cast on every core, as the shared files' float32 rows are made
                rows32 = np.empty(self.rows64.shape, dtype=np.float32)
                parallel_copyto(rows32, self.rows64)
                self._cols32 = rows32.T
        return self._cols32

    def torch_solver(self, device):
        """The torch engine's Fuchs fast path on ``device`` (built once per device)."""
        key = str(device)
        if getattr(self, "_torch_key", None) != key:
            from rip_atoms.kernels.torch_fuchs import TorchFuchs

            self._torch_solver = TorchFuchs(self.rows64, device)
            self._torch_key = key
        return self._torch_solver

    def rows32(self) -> np.ndarray:
        """D̃ᵀ rounded to float32 (N×H, C order; the same buffer as :meth:`cols32`), for the
        float32 screen of the Fuchs stage."""
        return self.cols32().T

    def metric_info(self) -> dict:
        return dict(self._metric_info)

    def projector_seconds(self) -> float:
        """Estimated seconds to build :meth:`projector` (0 once built): D̃D̃ᵀ and K = D̃ᵀF are
        2H²N flops each, at :data:`PROJECTOR_SECONDS_PER_FLOP`, plus the H×H eigensolve."""
        if self._proj is not None:
            return 0.0
        h, n = self.dim, self.n_atoms
        return PROJECTOR_SECONDS_PER_FLOP * (4.0 * h * h * n + 10.0 * h**3)

    def projector(self) -> RowSpaceProjector:
        if self._proj is None:
            self._proj = RowSpaceProjector(self.cols64, Dt_low=self.cols32())
        return self._proj


@dataclass
class Code:
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
    blocked: bool = False  # uses an atom of a duplicate pair (|cos| ≥ 1 − DUPLICATE_TOL)

    @property
    def k(self) -> int:
        return len(self.S)

    @property
    def y_norm(self) -> float:
        """‖y‖₂ (float64), the scale of a witness's feasibility tolerance."""
        return float(np.linalg.norm(self.y))


def as_matrix(D: Dictionary | np.ndarray) -> np.ndarray:
    """D as given, as a float64 H×N matrix (no normalisation)."""
    if isinstance(D, Dictionary):
        return np.asarray(D.atoms, dtype=np.float64)
    arr = np.asarray(D, dtype=np.float64)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"expected an H×N matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise NonFiniteError("the dictionary holds non-finite values")
    return arr


def support_signs(support, signs, n_atoms: int, nonneg: bool):
    """Sorted support S and its signs s (𝟙 when ``signs`` is None or ``nonneg``), checked."""
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


def chunk_rows(kind: str, M, start: int, stop: int) -> sp.csr_matrix:
    """Rows start:stop of the codes as a float64 CSR with sorted indices and no zeros."""
    block = M[start:stop]
    if kind == "dense":
        block = sp.csr_matrix(np.asarray(block, dtype=np.float64))
    else:
        block = sp.csr_matrix(block, dtype=np.float64, copy=True)
        block.sum_duplicates()
        block.eliminate_zeros()
        block.sort_indices()
    return block
