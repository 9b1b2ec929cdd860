"""Code matrices δ (tokens × atoms, dense or scipy sparse): the one validation of their shape,
dtype and finiteness, and their L0.

A code matrix has one row per token and one column per atom (N columns); entries are real
numbers (floating or integer dtypes — booleans, complex numbers and objects are refused). Every
function that takes codes checks them here, so the same bad input raises the same error
everywhere: :class:`~rip_atoms.errors.ShapeMismatchError` for the wrong shape,
:class:`~rip_atoms.errors.InvalidCodeError` for a non-real dtype,
:class:`~rip_atoms.errors.NonFiniteError` for NaN or ±inf (naming the code and the atom).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from rip_atoms.errors import InvalidCodeError, NonFiniteError, ShapeMismatchError

#: a code matrix: dense (possibly a memory map) or scipy sparse, tokens × atoms
Codes = np.ndarray | sp.spmatrix | sp.sparray
#: an encoder: an m×H block of activations → its m×N codes
Encoder = Callable[[np.ndarray], Codes]
#: rows checked for finiteness at a time in dense (memory-mapped) code matrices
CHECK_CHUNK_SIZE = 4096

__all__ = ["CHECK_CHUNK_SIZE", "Codes", "Encoder", "check_codes", "codes_csr", "l0_counts"]


def _real_dtype(dtype: np.dtype) -> bool:
    return bool(np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer))


def _nonfinite_message(source: str, row: int, value: object, atom: int) -> str:
    return (f"{source}: code {row} (token {row}) holds a non-finite value ({value!r} at atom "
            f"{atom})")


def check_codes(codes: Codes, n_atoms: int, source: str, *,
                chunk_size: int = CHECK_CHUNK_SIZE) -> tuple[str, np.ndarray | sp.csr_matrix, int]:
    """Validate a code matrix's shape, dtype and finiteness.

    Parameters
    ----------
    codes : array_like or scipy sparse
        Tokens × atoms codes; a 1-D array is one code.
    n_atoms : int
        N, the number of atoms (columns) the codes must have.
    source : str
        What the codes are, for error messages (a file name, "unit set 'x'", …).
    chunk_size : int
        Rows checked for finiteness at a time (dense codes may be memory maps).

    Returns
    -------
    (kind, matrix, n) : tuple
        ``kind`` is "sparse" (``matrix`` a CSR matrix) or "dense" (``matrix`` a 2-D array,
        possibly a memory map, not copied); ``n`` is the number of codes.

    Raises
    ------
    ShapeMismatchError, InvalidCodeError, NonFiniteError

    Examples
    --------
    >>> check_codes(np.array([[0.0, 2.0, 0.0]]), 3, "codes")[0]
    'dense'
    """
    sparse = sp.issparse(codes)
    if sparse:
        arr = sp.csr_matrix(codes)
    else:
        arr = codes if isinstance(codes, np.ndarray) else np.asarray(codes)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ShapeMismatchError(f"{source}: codes must be a tokens × atoms matrix, got "
                                     f"shape {arr.shape}")
    if arr.shape[1] != n_atoms:
        raise ShapeMismatchError(
            f"{source}: codes have {arr.shape[1]} columns but the dictionary has N = {n_atoms} "
            f"atoms (codes are tokens × atoms)")
    if not _real_dtype(arr.dtype):
        raise InvalidCodeError(f"{source}: codes must be real numbers, got dtype {arr.dtype}")
    if sparse:
        bad = np.flatnonzero(~np.isfinite(arr.data))
        if bad.size:
            row = int(np.searchsorted(arr.indptr, bad[0], side="right") - 1)
            raise NonFiniteError(
                _nonfinite_message(source, row, arr.data[bad[0]], int(arr.indices[bad[0]]))
                + f"; {bad.size} non-finite entries in all")
        return "sparse", arr, arr.shape[0]
    if np.issubdtype(arr.dtype, np.floating):
        for start in range(0, arr.shape[0], chunk_size):
            block = np.asarray(arr[start: start + chunk_size])
            fin = np.isfinite(block)
            if not fin.all():
                r, c = np.argwhere(~fin)[0]
                raise NonFiniteError(_nonfinite_message(source, start + int(r), block[r, c],
                                                        int(c)))
    return "dense", arr, arr.shape[0]


def codes_csr(codes: Codes, n_atoms: int, source: str) -> sp.csr_matrix:
    """The codes as a float64 CSR matrix with explicit zeros removed and sorted indices, after
    :func:`check_codes`.

    Parameters
    ----------
    codes : array_like or scipy sparse
        Tokens × atoms codes (a 1-D array is one code).
    n_atoms : int
        N, the number of atoms.
    source : str
        What the codes are, for error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        float64, tokens × N.

    Examples
    --------
    >>> codes_csr([[0, 2, 0], [1, 0, 0]], 3, "codes").nnz
    2
    """
    kind, M, _ = check_codes(codes, n_atoms, source)
    C = (sp.csr_matrix(M, dtype=np.float64) if kind == "sparse"
         else sp.csr_matrix(np.asarray(M).astype(np.float64, copy=False)))
    C.eliminate_zeros()
    C.sort_indices()
    return C


def l0_counts(codes: Codes) -> np.ndarray:
    """Kᵢ = ‖δᵢ‖₀ for every row of a dense or sparse code matrix (exact zeros).

    Parameters
    ----------
    codes : array_like or scipy sparse
        Tokens × atoms codes (a 1-D array is one code).

    Returns
    -------
    numpy.ndarray
        int64, one count per code.

    Examples
    --------
    >>> l0_counts(np.array([[0.0, 1.5, 2.0], [0.0, 0.0, 0.0]])).tolist()
    [2, 0]
    """
    if sp.issparse(codes):
        C = sp.csr_matrix(codes)
        C.eliminate_zeros()
        return np.diff(C.indptr).astype(np.int64)
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    return np.count_nonzero(arr, axis=1).astype(np.int64)
