"""The fast path of the batched Fuchs stage through torch (GPU): same contract as
:func:`rip_atoms.kernels.recovery_batch.solve_block_numpy`.

On ``device``: the gather D_S, G_S = D_Sᵀ D_S, X = G_S⁻¹,
λmin(G_S) ≥ 1/min(‖X‖_F, ‖X‖_∞)·(1 − 10⁻⁶), y₀ = D_S X s and e = D_Sᵀ y₀ − s, all in
float64; then the float32 screen Ĉ = fl₃₂(Dᵀ) fl₃₂(Y₀)
with TF32 off (a true float32 GEMM, so the bound e₃₂ of
:func:`~rip_atoms.kernels.recovery_batch.screen_error` holds) and the candidate atoms
ĉⱼ ≥ max ĉ − 2e₃₂. Back on the host: y₀ (float64), ‖e‖₂, ‖y₀‖₂, the λ bounds and the candidate
pairs; :func:`~rip_atoms.kernels.recovery_batch.fuchs_batch` then recomputes the candidates'
values in float64 with numpy (:func:`~rip_atoms.kernels.recovery_batch.confirm_values`), exactly
as on the numpy path, so a code is certified on the same float64 numbers. Codes the fast path
leaves (λmin not clearly away from 0) take the numpy eigendecomposition path.

Imported only when ``engine="torch"`` is asked for: the core never needs torch.
"""

from __future__ import annotations

import numpy as np

from rip_atoms.kernels.recovery_batch import FAST_COND, SolvedBlock, screen_error
from rip_atoms.kernels.torch_gram import import_torch, resolve_device


class TorchFuchs:
    """Holds Dᵀ on ``device`` in float64 and float32; :meth:`__call__` solves one block.

    Parameters
    ----------
    DT : N×H float64 numpy array, the atoms as rows.
    device : a device name (``"cuda"``, ``"cpu"``, …) for :func:`resolve_device`.
    col_norm : an upper bound on maxⱼ‖dⱼ‖₂.
    """

    def __init__(self, DT: np.ndarray, device=None, col_norm: float = 1.0) -> None:
        torch = import_torch()
        self.torch = torch
        self.device = resolve_device(device)
        DT = np.ascontiguousarray(DT)
        if not DT.flags.writeable:  # e.g. a read-only memory map: torch wants its own copy
            DT = DT.copy()
        self.DT64 = torch.as_tensor(DT, device=self.device)
        self.DT32 = self.DT64.to(torch.float32)
        self.dim = DT.shape[1]
        self.col_norm = col_norm

    def __call__(self, idx: np.ndarray, s: np.ndarray, nonneg: bool) -> SolvedBlock:
        torch = self.torch
        old_tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.no_grad():
                return self._solve(idx, s, nonneg)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old_tf32

    def _solve(self, idx: np.ndarray, s: np.ndarray, nonneg: bool) -> SolvedBlock:
        torch = self.torch
        dev = self.device
        it = torch.as_tensor(idx, device=dev)
        st = torch.as_tensor(s, device=dev, dtype=torch.float64)
        A = self.DT64[it]  # (B, k, H)
        G = A @ A.transpose(1, 2)
        tr = torch.diagonal(G, dim1=1, dim2=2).sum(dim=1)
        X, info = torch.linalg.inv_ex(G)
        norm = torch.minimum(torch.sqrt((X * X).sum(dim=(1, 2))),
                             X.abs().sum(dim=2).max(dim=1).values)
        lam_lo = (1.0 - 1e-6) / norm
        fast = torch.isfinite(lam_lo) & (lam_lo > FAST_COND * tr) & (info == 0)
        A, X, st, it = A[fast], X[fast], st[fast], it[fast]
        a = (X @ st.unsqueeze(2)).squeeze(2)
        Y0 = (a.unsqueeze(1) @ A).squeeze(1)  # (b, H)
        e = (A @ Y0.unsqueeze(2)).squeeze(2) - st
        y_norm = torch.linalg.vector_norm(Y0, dim=1)
        out = SolvedBlock(fast.cpu().numpy(), Y0.cpu().numpy(),
                          torch.linalg.vector_norm(e, dim=1).cpu().numpy(),
                          y_norm.cpu().numpy(), lam_lo[fast].cpu().numpy(),
                          tr[fast].cpu().numpy())
        if len(out.Y0) == 0:
            out.cand_j = out.cand_b = np.empty(0, dtype=np.int64)
            return out
        C = self.DT32 @ Y0.to(torch.float32).T  # (N, b), a true float32 GEMM
        if not nonneg:
            C = C.abs()
        C[it, torch.arange(it.shape[0], device=dev).unsqueeze(1)] = -torch.inf
        top = C.max(dim=0).values
        err = torch.as_tensor(screen_error(self.dim, out.y_norm, self.col_norm), device=dev)
        thr = (top.to(torch.float64) - 2.0 * err).to(torch.float32)
        thr = torch.nextafter(thr, torch.full_like(thr, -torch.inf))
        cj, cb = torch.nonzero(C >= thr.unsqueeze(0), as_tuple=True)
        out.cand_j, out.cand_b = cj.cpu().numpy(), cb.cpu().numpy()
        return out
