"""Reductions whose rounding does not depend on the number of threads.

torch on a CPU splits a full reduction (``t.sum()`` of more than 32,768 entries, the global norm
of ``clip_grad_norm_``) across its intra-op threads, so 1 and 2 threads round it differently;
a scalar that feeds back into training (the gradient-clipping factor, the initial scale of the
encoder) then makes two runs drift apart, and their weights differ after a few hundred steps.
Here such a scalar is summed in a fixed order: in float64, over rows of :data:`ROW` entries
(each row's sum is one output of the reduction, computed by one thread), then over the row
sums. Products (GEMMs) and per-output reductions (``sum(0)`` over tokens) keep one order per
output entry already.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: entries per row of the fixed-order sum (the outer sum then has at most n/ROW terms)
ROW = 1024


def fixed_order_sum(t: torch.Tensor) -> torch.Tensor:
    """Σᵢ tᵢ over every entry of ``t`` in float64, in an order fixed by the shape alone: rows
    of :data:`ROW` entries summed each on one thread, then the row sums (a 0-d tensor on the
    device of ``t``)."""
    v = t.detach().reshape(-1).double()
    pad = (-v.numel()) % ROW
    if pad:
        v = F.pad(v, (0, pad))
    rows = v.view(-1, ROW).sum(dim=1)
    while rows.numel() > ROW:  # keep every level a per-output reduction
        pad = (-rows.numel()) % ROW
        rows = F.pad(rows, (0, pad)).view(-1, ROW).sum(dim=1)
    return rows.sum()


def clip_grad_norm_fixed(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` with the global norm ‖g‖₂ = (Σ_p Σᵢ g_{p,i}²)^½
    summed in a fixed order (:func:`fixed_order_sum`): gradients are scaled by
    max_norm / (‖g‖₂ + 1e-6) when ‖g‖₂ > max_norm. Returns ‖g‖₂ (a 0-d tensor)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.stack([fixed_order_sum(g * g) for g in grads]).sum().sqrt()
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total
