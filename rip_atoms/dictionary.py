"""The :class:`Dictionary`: atoms as columns, their norms, dead atoms and provenance.

Notation (docs/design.md): D ∈ R^{H×N}, columns dᵢ are atoms. An SAE's ``W_dec`` is N×H, so
D = W_decᵀ (``rows_are_atoms=True``). Unit normalisation is kept separate from the raw atoms:
``atoms`` is D as given, ``norms`` holds ‖dᵢ‖₂ in float64, and :meth:`Dictionary.unit` returns
dᵢ/‖dᵢ‖₂. An atom is *dead* when ‖dᵢ‖₂ ≤ ``dead_rtol``·maxⱼ‖dⱼ‖₂ (zero in practice); its cosines
are undefined, so it is excluded from coherence and reported (:meth:`Dictionary.dead_summary`
says why, e.g. that one huge atom puts the others below the threshold). Duplicate atoms
(|cos| ≥ 1 − 1e-6) are found by the coherence pass (:func:`rip_atoms.coherence.coherence`), which
reports them.

Scale. Norms are computed without underflow or overflow: a float64 column whose largest entry
lies outside [2⁻²⁰⁰, 2²⁰⁰] is first multiplied by an exact power of two, 2^−eᵢ
(:attr:`Dictionary.column_exponents`, 0 for every column in range, so ordinary dictionaries are
used exactly as given), which brings it to unit scale (:meth:`Dictionary.scaled_columns`). A
dictionary multiplied by 1e-300 therefore has the same unit atoms, dead atoms and cosines as the
original; only the Euclidean norms carry the scale.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rip_atoms.errors import (
    EmptyDictionaryError,
    FileFormatError,
    NonFiniteError,
    ParameterError,
    ParameterTypeError,
)
from rip_atoms.matrix_files import check_memory, load_matrix

DEAD_RTOL = 1e-8
NONFINITE_MODES = ("raise", "dead")
_SAFE_EXPONENT = 200  # columns with max |entry| in [2^-200, 2^200] are used as given
DUPLICATE_TOL = 1e-6
SAE_SUFFIXES = (".npz", ".pt", ".pth")  # read by the torch adapter (rip_atoms.sae)
# the SAE reader rip_atoms.sae registers (register_sae_reader); None until it is imported
_SAE_READER: Callable[[Path], Dictionary] | None = None


@dataclass(frozen=True)
class Provenance:
    """Where a dictionary came from: ``source`` (a path, ``neurons:H``, ``array``, a generator
    call), its shape as H×N, the dtype it arrived in, and how it was read."""

    source: str
    shape: tuple[int, int]
    dtype: str
    tensor: str | None = None
    rows_are_atoms: bool = False
    note: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


def _check_dead_rtol(dead_rtol: float) -> float:
    try:
        v = float(dead_rtol)
    except (TypeError, ValueError):
        raise ParameterTypeError(
            f"dead_rtol must be a number in [0, 1), got {dead_rtol!r}") from None
    if not 0.0 <= v < 1.0:  # also rejects NaN
        raise ParameterError(f"dead_rtol must be a number in [0, 1), got {dead_rtol!r}")
    return v


def _check_nonfinite(nonfinite: str) -> str:
    if not isinstance(nonfinite, str) or nonfinite not in NONFINITE_MODES:
        raise ParameterError(f"nonfinite must be 'raise' or 'dead', not {nonfinite!r}")
    return nonfinite


def _column_exponents(arr: np.ndarray) -> np.ndarray:
    """eᵢ with 2^−eᵢ·dᵢ at unit scale for float64 columns outside [2⁻²⁰⁰, 2²⁰⁰]; 0 otherwise
    (float32 and narrower columns are always in range for float64 arithmetic)."""
    n = arr.shape[1]
    if arr.dtype != np.float64 or n == 0:
        return np.zeros(n, dtype=np.int64)
    peak = np.maximum(arr.max(axis=0), -arr.min(axis=0))
    _, e = np.frexp(peak)
    e = e.astype(np.int64)
    e[(e > -_SAFE_EXPONENT) & (e < _SAFE_EXPONENT)] = 0
    return e


def _nonfinite_message(arr: np.ndarray, what: str) -> str:
    bad_atoms = np.flatnonzero(~np.isfinite(arr).all(axis=0))
    j = int(bad_atoms[0])
    i = int(np.flatnonzero(~np.isfinite(arr[:, j]))[0])
    listed = ", ".join(str(int(b)) for b in bad_atoms[:8])
    more = f" and {len(bad_atoms) - 8} more" if len(bad_atoms) > 8 else ""
    return (
        f"{what}: atom {j} has a non-finite entry ({float(arr[i, j])} at row {i}); "
        f"{len(bad_atoms)} atom(s) are non-finite: {listed}{more}"
    )


class Dictionary:
    """A dictionary D ∈ R^{H×N} whose columns are atoms.

    Parameters
    ----------
    atoms : array_like, shape (H, N), or (N, H) with ``rows_are_atoms=True``
        The atoms as given. Integer input is converted to float64; float32/float64 are kept.
    source : str
        Provenance label (a path, ``"array"``, ``"neurons:576"``...).
    nonfinite : {"raise", "dead"}
        Non-finite entries raise :class:`NonFiniteError` naming the first offending atom and row
        (default), or with ``"dead"`` the offending atoms are zeroed and reported as dead.
    dead_rtol : float in [0, 1)
        Atoms with ‖dᵢ‖₂ ≤ dead_rtol · max‖dⱼ‖₂ are dead (default 1e-8; 0 keeps every non-zero
        atom). Invalid values raise :class:`~rip_atoms.errors.ParameterError`, as does a
        ``nonfinite`` other than "raise"/"dead" (checked whether or not D is finite).
    """

    def __init__(
        self,
        atoms: np.ndarray,
        *,
        source: str = "array",
        tensor: str | None = None,
        rows_are_atoms: bool = False,
        nonfinite: str = "raise",
        dead_rtol: float = DEAD_RTOL,
        note: str | None = None,
    ) -> None:
        nonfinite = _check_nonfinite(nonfinite)
        dead_rtol = _check_dead_rtol(dead_rtol)
        arr = np.asarray(atoms)
        if arr.ndim != 2:
            raise FileFormatError(f"{source}: a dictionary is a 2-D matrix, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            if not np.issubdtype(arr.dtype, np.integer):
                raise FileFormatError(f"{source}: expected real numbers, got dtype {arr.dtype}")
            check_memory(arr.size * 8, f"{source}: converting the {arr.dtype} matrix to float64")
            arr = arr.astype(np.float64)
        elif arr.dtype not in (np.float32, np.float64):
            check_memory(arr.size * 4, f"{source}: widening the {arr.dtype} matrix to float32")
            arr = arr.astype(np.float32)  # float16 and friends: widen exactly
        orig_dtype = str(np.asarray(atoms).dtype)
        if rows_are_atoms:
            arr = arr.T
        if arr.shape[1] == 0 or arr.shape[0] == 0:
            raise EmptyDictionaryError(f"{source}: dictionary of shape {arr.shape} has no atoms")
        finite_cols = np.isfinite(arr).all(axis=0)
        nonfinite_atoms = np.flatnonzero(~finite_cols)
        if nonfinite_atoms.size:
            if nonfinite == "raise":
                raise NonFiniteError(_nonfinite_message(arr, source))
            arr = np.array(arr, copy=True)
            arr[:, nonfinite_atoms] = 0
        exps = _column_exponents(arr)
        with np.errstate(under="ignore", over="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->j", arr, arr, dtype=np.float64))
        scaled_norms = norms.copy()
        out_of_range = np.flatnonzero(exps)
        if out_of_range.size:  # exact power-of-two scaling: no underflow, no overflow
            sc = np.ldexp(np.asarray(arr[:, out_of_range], dtype=np.float64),
                          -exps[out_of_range])
            scaled_norms[out_of_range] = np.sqrt(np.einsum("ij,ij->j", sc, sc))
            with np.errstate(under="ignore", over="ignore"):
                norms[out_of_range] = np.ldexp(scaled_norms[out_of_range], exps[out_of_range])
            # dead atoms relative to the largest norm, compared on the log scale
            with np.errstate(divide="ignore"):
                log2n = np.log2(scaled_norms) + exps
            top = float(log2n.max())
            dead = (np.flatnonzero(log2n <= math.log2(dead_rtol) + top) if dead_rtol > 0
                    else np.flatnonzero(scaled_norms == 0)) if top > -np.inf else np.arange(
                arr.shape[1])
            max_atom = int(np.argmax(log2n))
        else:
            max_norm = float(norms.max())
            dead = np.flatnonzero(norms <= dead_rtol * max_norm) if max_norm > 0 else np.arange(
                arr.shape[1]
            )
            max_atom = int(np.argmax(norms))
        exps.flags.writeable = False
        scaled_norms.flags.writeable = False
        arr = arr.view()
        arr.flags.writeable = False
        norms.flags.writeable = False
        self._atoms = arr
        self._norms = norms
        self._exps = exps
        self._scaled_norms = scaled_norms
        self._max_atom = max_atom
        self._dead = dead
        self._nonfinite_atoms = nonfinite_atoms
        self.dead_rtol = dead_rtol
        self.provenance = Provenance(
            source=source,
            shape=(int(arr.shape[0]), int(arr.shape[1])),
            dtype=orig_dtype,
            tensor=tensor,
            rows_are_atoms=rows_are_atoms,
            note=note,
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def neurons(cls, dim: int) -> Dictionary:
        """The neuron basis D = I_H (each coordinate of the representation is a unit).

        D is materialised as an H×H float64 matrix (8·H² bytes): when that does not fit in the
        available memory (:func:`rip_atoms.matrix_files.check_memory`) the request is refused
        with :class:`~rip_atoms.errors.InsufficientMemoryError` before allocating.
        """
        try:
            dim = operator.index(dim)
        except TypeError:
            raise ParameterTypeError(
                f"neurons:{dim!r}: the dimension must be a positive integer") from None
        if dim < 1:
            raise FileFormatError(f"neurons:{dim}: the dimension must be a positive integer")
        check_memory(8 * dim * dim, f"neurons:{dim}: the neuron basis (a {dim}×{dim} float64 "
                                    "identity matrix)", hint="use a smaller H")
        return cls(np.eye(dim), source=f"neurons:{dim}")

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        *,
        tensor: str | None = None,
        rows_are_atoms: bool = False,
        nonfinite: str = "raise",
        dead_rtol: float = DEAD_RTOL,
    ) -> Dictionary:
        """Read a `.npy` or `.safetensors` matrix (H×N; N×H with ``rows_are_atoms``)."""
        _check_nonfinite(nonfinite)
        _check_dead_rtol(dead_rtol)
        arr = load_matrix(path, tensor)
        return cls(
            arr, source=str(path), tensor=tensor, rows_are_atoms=rows_are_atoms,
            nonfinite=nonfinite, dead_rtol=dead_rtol,
        )

    @classmethod
    def load(
        cls,
        spec: str | os.PathLike,
        *,
        tensor: str | None = None,
        rows_are_atoms: bool = False,
        nonfinite: str = "raise",
        dead_rtol: float = DEAD_RTOL,
    ) -> Dictionary:
        """Load a dictionary from a CLI-style spec: ``neurons:H``, a `.npy` or a `.safetensors`
        matrix, or an SAE — a SAELens / sparsify folder, a Gemma Scope ``.npz``, a
        dictionary_learning ``ae.pt`` (``weights_only=True``) — read by the torch adapter as
        D = W_decᵀ with the decoder norms kept, once :mod:`rip_atoms.sae` is imported (it
        registers its reader, :func:`register_sae_reader`; the CLI imports it for SAE
        arguments). ``dead_rtol`` sets the dead-atom threshold (see :class:`Dictionary`).
        """
        _check_nonfinite(nonfinite)
        dead_rtol = _check_dead_rtol(dead_rtol)
        text = str(spec)
        m = re.fullmatch(r"neurons:(\d+)", text)
        if m:
            d = cls.neurons(int(m.group(1)))
            return d if dead_rtol == DEAD_RTOL else d.with_dead_rtol(dead_rtol)
        if text.startswith("neurons:"):
            raise FileFormatError(f"{text}: expected neurons:H with H a positive integer")
        path = Path(text)
        if is_sae_spec(path):
            d = cls._from_sae(path)
            return d if dead_rtol == DEAD_RTOL else d.with_dead_rtol(dead_rtol)
        return cls.from_file(path, tensor=tensor, rows_are_atoms=rows_are_atoms,
                             nonfinite=nonfinite, dead_rtol=dead_rtol)

    @classmethod
    def _from_sae(cls, path: Path) -> Dictionary:
        """D = W_decᵀ of an SAE file or folder, through the reader the torch adapter registers
        (:func:`register_sae_reader`)."""
        if not path.exists():
            raise FileFormatError(f"{path}: no such file or folder")
        if _SAE_READER is None:
            kind = "folder" if path.is_dir() else f"{path.suffix} file"
            raise FileFormatError(
                f"{path}: an SAE {kind} is read by the torch adapter, which needs PyTorch: "
                "pip install 'rip-atoms[torch]' and import rip_atoms.sae (the CLI does)"
            )
        return _SAE_READER(path)

    def with_dead_rtol(self, dead_rtol: float) -> Dictionary:
        """The same atoms and provenance with another dead-atom threshold."""
        p = self.provenance
        atoms = self._atoms.T if p.rows_are_atoms else self._atoms
        return Dictionary(atoms, source=p.source, tensor=p.tensor,
                          rows_are_atoms=p.rows_are_atoms, dead_rtol=dead_rtol, note=p.note)

    # ------------------------------------------------------------------ properties
    @property
    def atoms(self) -> np.ndarray:
        """D as given (H×N, read-only)."""
        return self._atoms

    @property
    def norms(self) -> np.ndarray:
        """‖dᵢ‖₂ for every atom, float64 (read-only)."""
        return self._norms

    @property
    def dim(self) -> int:
        """H, the ambient dimension."""
        return int(self._atoms.shape[0])

    @property
    def n_atoms(self) -> int:
        """N, the number of atoms (dead ones included)."""
        return int(self._atoms.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.n_atoms)

    @property
    def dead_atoms(self) -> np.ndarray:
        """Indices of dead atoms (‖dᵢ‖ ≤ dead_rtol·max‖dⱼ‖, or non-finite with nonfinite='dead')."""
        return self._dead

    @property
    def nonfinite_atoms(self) -> np.ndarray:
        """Indices of atoms that held non-finite values (zeroed; only with nonfinite='dead')."""
        return self._nonfinite_atoms

    @property
    def column_exponents(self) -> np.ndarray:
        """eᵢ such that 2^−eᵢ·dᵢ is at unit scale, for float64 columns whose largest entry lies
        outside [2⁻²⁰⁰, 2²⁰⁰]; 0 for every other column (int64, read-only)."""
        return self._exps

    @property
    def scaled_norms(self) -> np.ndarray:
        """‖2^−eᵢ·dᵢ‖₂ (float64, read-only): the norms of :meth:`scaled_columns`, which never
        underflow or overflow; equal to :attr:`norms` for columns with eᵢ = 0."""
        return self._scaled_norms

    def scaled_columns(self, idx: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        """``D[:, idx]·2^−e[idx]`` (exact power-of-two scaling; the raw columns when every
        eᵢ = 0): the same directions as :meth:`columns`, safe to multiply and square."""
        idx = np.asarray(idx)
        X = np.asarray(self._atoms[:, idx], dtype=np.float64 if self._exps.any() else dtype)
        e = self._exps[idx]
        if np.any(e):
            X = np.ldexp(X, -e)
        return np.asarray(X, dtype=dtype)

    def dead_summary(self, *, with_source: bool = True) -> str | None:
        """Why atoms are dead, in one sentence (None when none is): how many are zero (or
        non-finite, with ``nonfinite="dead"``) and how many fall below the threshold
        ``dead_rtol``·max‖dⱼ‖₂ relative to the largest atom, naming it and the option that
        changes the threshold."""
        if self._dead.size == 0:
            return None
        src = self.provenance.source
        zero = self._dead[self._scaled_norms[self._dead] == 0]
        nonfinite = np.intersect1d(zero, self._nonfinite_atoms)
        small = np.setdiff1d(self._dead, zero)
        parts = []
        n_zero = len(zero) - len(nonfinite)
        if n_zero:
            parts.append(f"{n_zero} are zero")
        if len(nonfinite):
            parts.append(f"{len(nonfinite)} held non-finite values")
        if len(small):
            j = self._max_atom
            below = float(np.max(self._norms[small]))
            parts.append(
                f"{len(small)} are non-zero but their norms (at most {below:.3g}) are below the "
                f"dead-atom threshold dead_rtol·max‖dⱼ‖ = {self.dead_rtol:g} × "
                f"{float(self._norms[j]):.3g} (the largest norm, atom {j}); if atom {j} is "
                "an outlier, fix it, or lower the threshold (Dictionary(..., dead_rtol=…), "
                "CLI --dead-rtol; 0 keeps every non-zero atom)"
            )
        return ((f"{src}: " if with_source else "")
                + f"{len(self._dead)} of {self.n_atoms} atoms are dead: " + "; ".join(parts))

    @property
    def live_atoms(self) -> np.ndarray:
        """Indices of atoms that are not dead."""
        mask = np.ones(self.n_atoms, dtype=bool)
        mask[self._dead] = False
        return np.flatnonzero(mask)

    def unit(self, dtype: type = np.float64) -> np.ndarray:
        """H×N matrix of unit atoms dᵢ/‖dᵢ‖₂ (dead atoms are zero columns)."""
        with np.errstate(over="ignore", under="ignore"):  # out-of-range columns: fixed below
            out = np.asarray(self._atoms, dtype=dtype).copy()
        scale = np.zeros(self.n_atoms)
        live = (self._norms > 0) & (self._exps == 0)
        scale[live] = 1.0 / self._norms[live]
        scale[self._dead] = 0.0
        fix = np.setdiff1d(np.flatnonzero(self._exps), self._dead)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            out *= scale.astype(dtype)
        if fix.size:  # tiny or huge columns: scale exactly first, then normalise
            out[:, fix] = (self.scaled_columns(fix) / self._scaled_norms[fix]).astype(dtype)
        return out

    def columns(self, idx: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        """Raw atoms ``D[:, idx]`` as an H×len(idx) array of ``dtype``."""
        return np.asarray(self._atoms[:, np.asarray(idx)], dtype=dtype)

    def __repr__(self) -> str:
        return (
            f"Dictionary(H={self.dim}, N={self.n_atoms}, dtype={self._atoms.dtype}, "
            f"dead={len(self._dead)}, source={self.provenance.source!r})"
        )

    def to_dict(self) -> dict:
        """Summary: shape, provenance, dead atoms, norm statistics."""
        live_norms = np.delete(self._norms, self._dead)
        return {
            "dim": self.dim,
            "n_atoms": self.n_atoms,
            "provenance": self.provenance.to_dict(),
            "dead_atoms": [int(i) for i in self._dead],
            "nonfinite_atoms": [int(i) for i in self._nonfinite_atoms],
            "dead_rtol": self.dead_rtol,
            "dead_note": self.dead_summary(),
            "norm_min": float(live_norms.min()) if live_norms.size else None,
            "norm_max": float(live_norms.max()) if live_norms.size else None,
            "norm_mean": float(live_norms.mean()) if live_norms.size else None,
        }


def is_sae_spec(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names an SAE, read by the torch adapter, rather than a matrix or
    ``neurons:H``: a folder, or a file whose suffix is one of :data:`SAE_SUFFIXES`; a
    ``neurons:…`` spec never is. The one place this is decided: :meth:`Dictionary.load`, the
    CLI's DICT and TARGET arguments and ``rip-atoms cards`` all ask it."""
    if os.fspath(spec).startswith("neurons:"):
        return False
    path = Path(spec)
    return path.is_dir() or path.suffix.lower() in SAE_SUFFIXES


def register_sae_reader(reader: Callable[[Path], Dictionary] | None) -> None:
    """Let :meth:`Dictionary.load` read SAE files and folders (:func:`is_sae_spec`) with
    ``reader`` (path → the dictionary D = W_decᵀ, decoder norms kept).

    The torch adapter registers its reader when :mod:`rip_atoms.sae` is imported, so the core
    never imports the adapter (the import graph stays acyclic); the CLI imports the adapter for
    SAE arguments. None unregisters.
    """
    global _SAE_READER
    _SAE_READER = reader


def as_dictionary(d: Dictionary | np.ndarray) -> Dictionary:
    """Accept a :class:`Dictionary` or an H×N array (columns are atoms)."""
    return d if isinstance(d, Dictionary) else Dictionary(np.asarray(d))
