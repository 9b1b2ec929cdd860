"""Coherence on a GPU through the torch backend, checked against the numpy/numba reference.

    python3 benchmarks/gpu_coherence.py            # on a machine with CUDA and torch

1. 2304×16384 float32 Gaussian: the numpy/numba reference and the torch (CUDA) backend, same
   inputs, same run: times, and whether μ, its pair, Babel and the top pairs agree.
2. 4096×131072 float32 (unit rows given in the SAE W_dec layout): the torch backend's full
   report vs a bare blocked float32 GEMM on the same GPU (the peer: just the products).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from rip_atoms import Dictionary, coherence


def unit_rows(n, h, seed):
    rng = np.random.default_rng(seed)
    W = np.empty((n, h), dtype=np.float32)
    for s in range(0, n, 16384):
        b = rng.standard_normal((min(16384, n - s), h), dtype=np.float32)
        W[s : s + len(b)] = b / np.linalg.norm(b, axis=1, keepdims=True)
    return W


def bare_gemm(W, block=8192):
    A = torch.as_tensor(W, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.synchronize()
    t = time.perf_counter()
    for a in range(0, len(W), block):
        for b in range(a, len(W), block):
            G = A[a : a + block] @ A[b : b + block].T
    torch.cuda.synchronize()
    del G
    return time.perf_counter() - t


def main():
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    W = unit_rows(16384, 2304, 0)
    d = Dictionary(W, rows_are_atoms=True)
    coherence(Dictionary(W[:600], rows_are_atoms=True), "raw", backend="torch")  # warm-up
    coherence(Dictionary(W[:600], rows_are_atoms=True), "raw")
    t = time.perf_counter()
    a = coherence(d, "raw")
    out["numpy_2304x16384_s"] = time.perf_counter() - t
    t = time.perf_counter()
    b = coherence(d, "raw", backend="torch", block_size=8192)
    out["torch_2304x16384_s"] = time.perf_counter() - t
    out["agree"] = {
        "mu": a.mu == b.mu, "pair": a.pair == b.pair,
        "babel_max_abs_diff": float(np.abs(a.babel - b.babel).max()),
        "top_pairs_same": [p[:2] for p in a.top_pairs] == [p[:2] for p in b.top_pairs],
        "per_atom_max_abs_diff": float(np.nanmax(np.abs(a.per_atom - b.per_atom))),
        "float32_tolerance": a.float32_tolerance,
    }
    out["mu_2304x16384"] = a.mu
    print(json.dumps(out), flush=True)
    W = unit_rows(131072, 4096, 1)
    d = Dictionary(W, rows_are_atoms=True)
    out["bare_gemm_4096x131072_s"] = bare_gemm(W)
    t = time.perf_counter()
    c = coherence(d, "raw", backend="torch", block_size=8192)
    out["torch_4096x131072_s"] = time.perf_counter() - t
    out["mu_4096x131072"] = c.mu
    out["babel64_4096x131072"] = float(c.babel[-1])
    out["welch_4096x131072"] = c.welch_bound
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
