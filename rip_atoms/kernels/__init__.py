"""Compute kernels: blocked Gram reductions (numpy GEMM + numba merges)."""

from rip_atoms.kernels.gram_blocks import GramReduction, blocked_gram_reduce

__all__ = ["GramReduction", "blocked_gram_reduce"]
