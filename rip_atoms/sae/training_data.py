"""The activations a training run reads: checked (shape, finite, not all zero, not one constant
vector) and copied to float32 once, their moments accumulated in float64 a chunk at a time, and a
cheap content fingerprint that a resumed run compares with its checkpoint's."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from rip_atoms.errors import NonFiniteError, ShapeMismatchError
from rip_atoms.sae.errors import DegenerateActivationsError


def _fingerprint(X: torch.Tensor) -> str:
    """A cheap content hash of the training data (shape + strided sample), for resume checks."""
    h = hashlib.sha256(str(tuple(X.shape)).encode())
    step = max(1, X.shape[0] // 257)
    h.update(np.ascontiguousarray(X[::step].numpy()).tobytes())
    return h.hexdigest()[:16]


#: below this variance (relative to the mean square) float32 activations are taken as constant
_CONSTANT_VARIANCE = 1e-10


def _moments(data: torch.Tensor, chunk: int = 1 << 15) -> tuple[float, float]:
    """(E‖x‖², E‖x − x̄‖²) over the rows, accumulated in float64 a chunk of rows at a time (no
    float64 copy of the whole matrix)."""
    n = data.shape[0]
    total = torch.zeros(data.shape[1], dtype=torch.float64)
    squares = 0.0
    for i in range(0, n, chunk):
        block = data[i:i + chunk].double()
        total += block.sum(0)
        squares += float((block * block).sum())
    mean_square = squares / n
    mean = total / n
    return mean_square, max(0.0, mean_square - float(mean @ mean))


def checked_activations(X: np.ndarray, source: str = "activations"
                        ) -> tuple[np.ndarray, torch.Tensor, float]:
    """(X as an array, a float32 copy of it, E‖x‖² over its rows), after refusing what there is
    nothing to train on: a shape other than n×d with n ≥ 2 and d ≥ 1 (ShapeMismatchError), NaN
    or ±Inf in float32 (NonFiniteError), all activations zero or every row the same vector
    (:class:`~rip_atoms.sae.errors.DegenerateActivationsError`); ``source`` names X in the
    messages. X itself is never modified."""
    X = np.asarray(X) if not isinstance(X, np.memmap) else X
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise ShapeMismatchError(f"{source}: expected an n×d matrix with n ≥ 2 tokens and "
                                 f"d ≥ 1, got shape {X.shape}")
    n, d = X.shape
    data = torch.tensor(np.asarray(X), dtype=torch.float32)  # a copy: X is never modified
    finite = torch.isfinite(data)
    if not bool(finite.all()):
        bad = int((~finite).any(1).sum())
        raise NonFiniteError(f"{source}: {bad} of {n} activation rows hold NaN or ±Inf "
                             "(in float32)")
    mean_square, centred = _moments(data)
    if mean_square == 0.0:
        raise DegenerateActivationsError(
            f"{source}: all {n}×{d} activations are zero (in float32); there is nothing to "
            "train an SAE on"
        )
    if centred <= _CONSTANT_VARIANCE * mean_square:
        raise DegenerateActivationsError(
            f"{source}: all {n} activation rows are the same vector (variance "
            f"{centred / mean_square:.2g} × the mean square); there is nothing to train an "
            "SAE on"
        )
    return X, data, mean_square
