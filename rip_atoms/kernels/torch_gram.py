"""The blocked Gram reduction of :mod:`rip_atoms.kernels.gram_blocks` through torch (GPU).

Same contract and output (:class:`GramReduction`): per-row top-P |⟨aⱼ, aₗ⟩| (l ≠ j) and a
histogram of |⟨aⱼ, aₗ⟩| over j < l, from float32 GEMMs over block pairs I ≤ J, never holding the
N×N Gram. Running top lists are merged with ``torch.topk`` on the device. TF32 is switched off
for the duration (``torch.backends.cuda.matmul.allow_tf32 = False``) so every product is a true
float32 GEMM and the float32 error bound of :mod:`rip_atoms.corrected_atoms` applies unchanged.
Imported only when ``backend="torch"`` is asked for: the core never needs torch.
"""

from __future__ import annotations

import warnings

import numpy as np

from rip_atoms.kernels.gram_blocks import GramReduction


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
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("backend='torch' needs torch: pip install 'rip-atoms[torch]'") from exc
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = A.shape[0]
    if not 1 <= n_top <= n - 1:
        raise ValueError(f"n_top must be in [1, N-1] = [1, {n - 1}], got {n_top}")
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
