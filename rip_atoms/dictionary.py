"""The :class:`Dictionary`: atoms as columns, their norms, dead atoms and provenance.

Notation (DESIGN.md): D ∈ R^{H×N}, columns dᵢ are atoms. An SAE's ``W_dec`` is N×H, so
D = W_decᵀ (``rows_are_atoms=True``). Unit normalisation is kept separate from the raw atoms:
``atoms`` is D as given, ``norms`` holds ‖dᵢ‖₂ in float64, and :meth:`Dictionary.unit` returns
dᵢ/‖dᵢ‖₂. An atom is *dead* when ‖dᵢ‖₂ ≤ ``dead_rtol``·maxⱼ‖dⱼ‖₂ (zero in practice); its cosines
are undefined, so it is excluded from coherence and reported. Duplicate atoms (|cos| ≥ 1 − 1e-6)
are found by the coherence pass (:func:`rip_atoms.coherence.coherence`), which reports them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rip_atoms.errors import EmptyDictionaryError, FileFormatError, NonFiniteError
from rip_atoms.matrix_files import load_matrix

DEAD_RTOL = 1e-8
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
    dead_rtol : float
        Atoms with ‖dᵢ‖₂ ≤ dead_rtol · max‖dⱼ‖₂ are dead.
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
        arr = np.asarray(atoms)
        if arr.ndim != 2:
            raise FileFormatError(f"{source}: a dictionary is a 2-D matrix, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            if not np.issubdtype(arr.dtype, np.integer):
                raise FileFormatError(f"{source}: expected real numbers, got dtype {arr.dtype}")
            arr = arr.astype(np.float64)
        elif arr.dtype not in (np.float32, np.float64):
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
            if nonfinite != "dead":
                raise ValueError(f"nonfinite must be 'raise' or 'dead', not {nonfinite!r}")
            arr = np.array(arr, copy=True)
            arr[:, nonfinite_atoms] = 0
        norms = np.sqrt(np.einsum("ij,ij->j", arr, arr, dtype=np.float64))
        max_norm = float(norms.max())
        dead = np.flatnonzero(norms <= dead_rtol * max_norm) if max_norm > 0 else np.arange(
            arr.shape[1]
        )
        arr = arr.view()
        arr.flags.writeable = False
        norms.flags.writeable = False
        self._atoms = arr
        self._norms = norms
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
        """The neuron basis D = I_H (each coordinate of the representation is a unit)."""
        if dim < 1:
            raise FileFormatError(f"neurons:{dim}: the dimension must be a positive integer")
        return cls(np.eye(dim), source=f"neurons:{dim}")

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        *,
        tensor: str | None = None,
        rows_are_atoms: bool = False,
        nonfinite: str = "raise",
    ) -> Dictionary:
        """Read a `.npy` or `.safetensors` matrix (H×N; N×H with ``rows_are_atoms``)."""
        arr = load_matrix(path, tensor)
        return cls(
            arr, source=str(path), tensor=tensor, rows_are_atoms=rows_are_atoms,
            nonfinite=nonfinite,
        )

    @classmethod
    def load(
        cls,
        spec: str | os.PathLike,
        *,
        tensor: str | None = None,
        rows_are_atoms: bool = False,
        nonfinite: str = "raise",
    ) -> Dictionary:
        """Load a dictionary from a CLI-style spec: ``neurons:H``, a `.npy` or a `.safetensors`
        matrix, or an SAE — a SAELens / sparsify folder, a Gemma Scope ``.npz``, a
        dictionary_learning ``ae.pt`` (``weights_only=True``) — read by the torch adapter as
        D = W_decᵀ with the decoder norms kept, once :mod:`rip_atoms.sae` is imported (it
        registers its reader, :func:`register_sae_reader`; the CLI imports it for SAE
        arguments)."""
        text = str(spec)
        m = re.fullmatch(r"neurons:(\d+)", text)
        if m:
            return cls.neurons(int(m.group(1)))
        if text.startswith("neurons:"):
            raise FileFormatError(f"{text}: expected neurons:H with H a positive integer")
        path = Path(text)
        if is_sae_spec(path):
            return cls._from_sae(path)
        return cls.from_file(path, tensor=tensor, rows_are_atoms=rows_are_atoms,
                             nonfinite=nonfinite)

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
    def live_atoms(self) -> np.ndarray:
        """Indices of atoms that are not dead."""
        mask = np.ones(self.n_atoms, dtype=bool)
        mask[self._dead] = False
        return np.flatnonzero(mask)

    def unit(self, dtype: type = np.float64) -> np.ndarray:
        """H×N matrix of unit atoms dᵢ/‖dᵢ‖₂ (dead atoms are zero columns)."""
        out = np.asarray(self._atoms, dtype=dtype).copy()
        scale = np.zeros(self.n_atoms)
        live = self._norms > 0
        scale[live] = 1.0 / self._norms[live]
        scale[self._dead] = 0.0
        out *= scale.astype(dtype)
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
            "norm_min": float(live_norms.min()) if live_norms.size else None,
            "norm_max": float(live_norms.max()) if live_norms.size else None,
            "norm_mean": float(live_norms.mean()) if live_norms.size else None,
        }


def is_sae_spec(spec: str | os.PathLike) -> bool:
    """Whether :meth:`Dictionary.load` reads ``spec`` as an SAE (a folder, or an SAE file
    suffix) rather than as a matrix."""
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
