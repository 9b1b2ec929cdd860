"""The activations a training run reads: checked (shape, finite, not all zero, not one constant
vector) and copied to float32 once, their moments accumulated in float64 a chunk at a time, a
cheap content fingerprint that a resumed run compares with its checkpoint's, and
:class:`BatchSource`, which serves the batches on the training device."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from rip_atoms.errors import NonFiniteError, ShapeMismatchError
from rip_atoms.sae.sae_errors import DegenerateActivationsError


def data_fingerprint(X: torch.Tensor) -> str:
    """A cheap content hash of the training data (shape + strided sample), for resume checks."""
    h = hashlib.sha256(str(tuple(X.shape)).encode())
    step = max(1, X.shape[0] // 257)
    h.update(np.ascontiguousarray(X[::step].numpy()).tobytes())
    return h.hexdigest()[:16]


#: below this variance (relative to the mean square) float32 activations are taken as constant
_CONSTANT_VARIANCE = 1e-10


def data_moments(data: torch.Tensor, chunk: int = 1 << 15) -> tuple[float, float]:
    """(E‖x‖², E‖x − x̄‖²) over the rows, accumulated in float64 a chunk of rows at a time (no
    float64 copy of the whole matrix)."""
    n = data.shape[0]
    total = torch.zeros(data.shape[1], dtype=torch.float64, device=data.device)
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
    (:class:`~rip_atoms.sae.sae_errors.DegenerateActivationsError`); ``source`` names X in the
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
    mean_square, centred = data_moments(data)
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


#: the share of a GPU's free memory the training rows may take when they move there whole
_RESIDENT_SHARE = 0.5


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` of training rows may live on ``device``: always on the CPU (they are
    there already); on CUDA when they take at most half of the free memory, leaving the rest
    to the step's B×N temporaries and the parameters."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return nbytes <= _RESIDENT_SHARE * free
    return False


class BatchSource:
    """The training rows t (n×d, float32) and the batches t[idx] on the training ``device``.

    *Resident* (the default wherever :func:`fits_on_device`): the rows live on the device and a
    batch is one gather there; the current epoch's order is mirrored on the device
    (:meth:`set_order`), so a step moves nothing between host and device. *Staged* (rows too
    large for the device): the rows stay in host memory (page-locked for CUDA), a batch is
    gathered into one of two host buffers and sent in one asynchronous transfer; a buffer is
    reused only after its previous transfer has finished. Both give the same rows in the same
    order (``resident`` forces either, e.g. the staged path on the CPU in tests)."""

    def __init__(self, data: torch.Tensor, device: torch.device, resident: bool | None = None):
        self.device = device
        self.n, self.d = data.shape
        if resident is None:
            resident = fits_on_device(data.numel() * data.element_size(), device)
        self.resident = bool(resident)
        cuda = device.type == "cuda"
        if self.resident:
            self.data = data.to(device)
        else:
            self.data = data.pin_memory() if cuda else data
        self._buffers: list[torch.Tensor] = []
        self._events: list = []
        self._next = 0
        self.order: torch.Tensor | None = None
        self._order_dev: torch.Tensor | None = None

    def set_order(self, perm: torch.Tensor) -> None:
        """The epoch's row order (a CPU int64 permutation; mirrored on the device if resident)."""
        self.order = perm
        self._order_dev = perm.to(self.device) if self.resident else None

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Rows order[start:stop] on the device."""
        if self.resident:
            return self.data[self._order_dev[start:stop]]
        return self._staged(self.order[start:stop])

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows idx (a CPU int64 tensor) on the device."""
        if self.resident:
            return self.data[idx.to(self.device)]
        return self._staged(idx)

    def _staged(self, idx: torch.Tensor) -> torch.Tensor:
        b = idx.numel()
        k = self._next
        self._next = 1 - k
        cuda = self.device.type == "cuda"
        while len(self._buffers) < 2:
            self._buffers.append(torch.empty(0, self.d, pin_memory=cuda))
            self._events.append(None)
        if self._events[k] is not None:
            self._events[k].synchronize()  # its previous transfer has left the buffer
        buf = self._buffers[k]
        if buf.shape[0] < b:
            buf = self._buffers[k] = torch.empty(b, self.d, pin_memory=cuda)
        out = buf[:b]
        torch.index_select(self.data, 0, idx, out=out)
        dev = torch.empty(b, self.d, device=self.device)
        dev.copy_(out, non_blocking=cuda)
        if cuda:
            ev = torch.cuda.Event()
            ev.record(torch.cuda.current_stream(self.device))
            self._events[k] = ev
        return dev
