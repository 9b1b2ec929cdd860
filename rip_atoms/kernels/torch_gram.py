"""The blocked Gram reduction of :mod:`rip_atoms.kernels.gram_blocks` through torch (GPU).

Same contract and output (:class:`GramReduction`): per-row top-P |⟨aⱼ, aₗ⟩| (l ≠ j) and a
histogram of |⟨aⱼ, aₗ⟩| over j < l, from float32 GEMMs over block pairs I ≤ J, never holding the
N×N Gram. Running top lists are merged with ``torch.topk`` on the device. TF32 is switched off
for the duration (``torch.backends.cuda.matmul.allow_tf32 = False``) so every product is a true
float32 GEMM and the float32 error bound of :mod:`rip_atoms.corrected_atoms` applies unchanged.
Imported only when ``backend="torch"`` is asked for: the core never needs torch.

:func:`resolve_device` is the one place where a device name given by a user (``--device``)
becomes a ``torch.device``: every torch entry point of the library (this kernel, model loading
for harvests, the SAE experiment) calls it, so a CPU-only torch asked for ``cuda``, or a name
torch does not know, is a :class:`~rip_atoms.errors.ParameterError` with one clear line instead
of torch's AssertionError / RuntimeError.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from rip_atoms.errors import ParameterError
from rip_atoms.kernels.gram_blocks import GramReduction

if TYPE_CHECKING:  # pragma: no cover
    import torch


class TorchUnavailableError(ParameterError, ImportError):
    """The torch backend or a torch device was asked for and torch is not installed: a
    :class:`~rip_atoms.errors.ParameterError` (the CLI prints one line, exit 2) that is also an
    ``ImportError``."""


def import_torch():
    try:
        import torch
    except ImportError:
        raise TorchUnavailableError(
            "backend 'torch' (and --device) need PyTorch, which is not installed: pip install "
            "'rip-atoms[torch]'"
        ) from None
    return torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` (a name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a
    ``torch.device``, or None for CUDA when available, else the CPU) as a usable
    ``torch.device``, checked by allocating an empty tensor on it.

    Raises :class:`~rip_atoms.errors.ParameterError` (one line) when the name is not a device
    (``invalid device name 'nonsense'``), when CUDA is asked for and this torch has none (``CUDA
    is not available in this torch build (torch 2.x, CPU only)``, or, for a CUDA build, that no
    CUDA device is visible), when the device index is out of range, for the ``meta`` device
    (it holds no data), and for any other device this torch cannot allocate on. Without torch:
    :class:`TorchUnavailableError` (a ParameterError and an ImportError).
    """
    torch = import_torch()
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev, name = device, str(device)
    else:
        name = str(device)
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError, TypeError):
            raise ParameterError(
                f"invalid device name {name!r} (expected e.g. cpu, cuda, cuda:1, mps)"
            ) from None
    build = f"torch {torch.__version__}"
    if dev.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise ParameterError(
                f"device {name!r}: CUDA is not available in this torch build ({build}, CPU only)"
            )
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device {name!r}: no CUDA device is visible ({build} built with CUDA "
                f"{torch.version.cuda or torch.version.hip}; check CUDA_VISIBLE_DEVICES and "
                "the driver)"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ParameterError(
                f"device {name!r}: no such CUDA device ({count} visible: "
                f"{', '.join(f'cuda:{i}' for i in range(count))})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError(f"device {name!r}: MPS (Apple GPU) is not available here ({build})")
    elif dev.type == "meta":
        raise ParameterError(f"device {name!r}: the meta device holds no data; use cpu or cuda")
    try:
        torch.empty(1, device=dev)
    except Exception as exc:  # AssertionError, RuntimeError, NotImplementedError, ImportError…
        msg = " ".join(str(exc).split())[:160]
        raise ParameterError(
            f"device {name!r} is not usable with this torch ({build}): {type(exc).__name__}: "
            f"{msg}"
        ) from None
    return dev


def blocked_gram_reduce_torch(
    A: np.ndarray,
    n_top: int,
    *,
    bins: int = 200,
    block_size: int = 8192,
    device: str | None = None,
    progress: bool = False,
) -> GramReduction:
    """Torch twin of :func:`rip_atoms.kernels.blocked_gram_reduce` (``device`` defaults to
    CUDA when available). Memory on the device: A (N×H) plus O(B² + N·P)."""
    torch = import_torch()
    dev = resolve_device(device)
    n = A.shape[0]
    if not 1 <= n_top <= n - 1:
        raise ParameterError(f"n_top must be in [1, N-1] = [1, {n - 1}], got {n_top}")
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with warnings.catch_warnings():  # read-only input: torch only reads it (copies to dev)
            warnings.simplefilter("ignore", UserWarning)
            At = torch.as_tensor(np.ascontiguousarray(A, dtype=np.float32), device=dev)
        topv = torch.full((n, n_top), -1.0, device=dev)
        topi = torch.full((n, n_top), -1, dtype=torch.int64, device=dev)
        hist = torch.zeros(bins, dtype=torch.float64, device=dev)
        starts = list(range(0, n, block_size))
        pairs = [(a, b) for ai, a in enumerate(starts) for b in starts[ai:]]
        bar = None
        if progress and len(pairs) > 4:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(pairs), desc="gram blocks (torch)", unit="block", leave=False)

        def merge(rows: slice, vals, idx) -> None:
            k = min(n_top, vals.shape[1])
            v, j = torch.topk(vals, k, dim=1)
            cat_v = torch.cat([topv[rows], v], dim=1)
            cat_i = torch.cat([topi[rows], torch.gather(idx, 1, j)], dim=1)
            v2, j2 = torch.topk(cat_v, n_top, dim=1)
            topv[rows] = v2
            topi[rows] = torch.gather(cat_i, 1, j2)

        for a, b in pairs:
            ia = At[a : a + block_size]
            ib = At[b : b + block_size]
            G = (ia @ ib.T).abs_()
            ra = slice(a, a + ia.shape[0])
            rb = slice(b, b + ib.shape[0])
            cols = torch.arange(b, b + ib.shape[0], device=dev).expand(ia.shape[0], -1)
            if a == b:
                tri = torch.triu(G, diagonal=1)
                mask = torch.triu(torch.ones_like(G, dtype=torch.bool), diagonal=1)
                hist += torch.histc(tri[mask], bins=bins, min=0.0, max=1.0).double()
                G.fill_diagonal_(-1.0)
                merge(ra, G, cols)
            else:
                hist += torch.histc(G.clamp_(max=1.0), bins=bins, min=0.0, max=1.0).double()
                merge(ra, G, cols)
                rows_idx = torch.arange(a, a + ia.shape[0], device=dev).expand(ib.shape[0], -1)
                merge(rb, G.T, rows_idx)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return GramReduction(
            top_values=topv.cpu().numpy(),
            top_indices=topi.cpu().numpy().astype(np.int32),
            histogram=hist.cpu().numpy().round().astype(np.int64),
            bin_edges=np.linspace(0.0, 1.0, bins + 1),
        )
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
