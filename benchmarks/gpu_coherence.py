"""Coherence on a GPU through the torch backend, checked against the numpy/numba reference.

    python3 benchmarks/gpu_coherence.py                 # on a machine with CUDA and torch
    python3 benchmarks/gpu_coherence.py --tiny --device cpu      # the same code, tiny, CPU torch

1. (``--check``, default on) 2304×16384 float32 Gaussian: the numpy/numba reference and the
   torch backend, same inputs, same run: times, and whether μ, its pair, Babel and the top
   pairs agree.
2. 4096×131072 float32 unit rows (Llama Scope 128k; given in the SAE W_dec layout): the torch
   backend's full coherence report (:func:`rip_atoms.coherence`: μ and its pair, per-atom μⱼ,
   Babel to p = 64, top 100 pairs, histogram, duplicates, float64 recomputation of the extremes;
   the rows start on the host, as a user's dictionary does) vs the products-only peer: the
   float32 GEMMs G_IJ = A_I A_Jᵀ, I ≤ J, of the same tiles (block 8192) on the same device with
   A already there. TF32 is off in both. The host→device copy of A is timed apart.

The rows are drawn on the device (torch's generator, seed 1) and normalised there.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rip_atoms import Dictionary, coherence
from rip_atoms.kernels.torch_gram import resolve_device


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def unit_rows(n: int, h: int, seed: int, dev: torch.device) -> np.ndarray:
    """n×h float32 Gaussian rows normalised to unit length (drawn on ``dev``), on the host."""
    gen = torch.Generator(device=dev).manual_seed(seed)
    W = np.empty((n, h), dtype=np.float32)
    for s in range(0, n, 16384):
        b = torch.randn(min(16384, n - s), h, generator=gen, device=dev)
        b /= b.norm(dim=1, keepdim=True)
        W[s : s + len(b)] = b.cpu().numpy()
    return W


def bare_gemm(A: torch.Tensor, block: int) -> float:
    """Seconds for the products alone: every tile A_I A_Jᵀ, I ≤ J, into one reused buffer."""
    dev = A.device
    n = A.shape[0]
    buf = torch.empty(block, block, device=dev)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        sync(dev)
        t = time.perf_counter()
        for a in range(0, n, block):
            for b in range(a, n, block):
                ia, ib = A[a : a + block], A[b : b + block]
                torch.mm(ia, ib.T, out=buf[: ia.shape[0], : ib.shape[0]])
        sync(dev)
        return time.perf_counter() - t
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda (default when available), cpu, …")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (CPU torch, seconds)")
    ap.add_argument("--dim", type=int, default=None, help="H of the big dictionary (4096)")
    ap.add_argument("--atoms", type=int, default=None, help="N of the big dictionary (131072)")
    ap.add_argument("--block-size", type=int, default=None, help="tile edge (8192)")
    ap.add_argument("--no-check", dest="check", action="store_false",
                    help="skip the 2304×16384 agreement check with the numpy reference")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    H = args.dim or (64 if args.tiny else 4096)
    N = args.atoms or (2048 if args.tiny else 131072)
    B = args.block_size or (512 if args.tiny else 8192)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    out: dict = {"device": card, "torch": torch.__version__}
    coherence(Dictionary(unit_rows(600, 64, 0, dev), rows_are_atoms=True), "raw",
              backend="torch", device=str(dev))  # warm-up: context, kernels, JIT
    coherence(Dictionary(unit_rows(600, 64, 0, dev), rows_are_atoms=True), "raw")
    if args.check:
        h, n = (48, 1024) if args.tiny else (2304, 16384)
        W = unit_rows(n, h, 0, dev)
        d = Dictionary(W, rows_are_atoms=True)
        t = time.perf_counter()
        a = coherence(d, "raw")
        out[f"numpy_{h}x{n}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        b = coherence(d, "raw", backend="torch", device=str(dev), block_size=B)
        out[f"torch_{h}x{n}_s"] = time.perf_counter() - t
        out["agree"] = {
            "mu": a.mu == b.mu, "pair": a.pair == b.pair,
            "babel_max_abs_diff": float(np.abs(a.babel - b.babel).max()),
            "top_pairs_same": [p[:2] for p in a.top_pairs] == [p[:2] for p in b.top_pairs],
            "per_atom_max_abs_diff": float(np.nanmax(np.abs(a.per_atom - b.per_atom))),
            "float32_tolerance": a.float32_tolerance,
        }
        if not args.json:
            print(f"check {h}x{n}: numpy {out[f'numpy_{h}x{n}_s']:.2f} s, torch "
                  f"{out[f'torch_{h}x{n}_s']:.2f} s; agree {out['agree']}", flush=True)
    W = unit_rows(N, H, 1, dev)
    sync(dev)
    t = time.perf_counter()
    A = torch.as_tensor(W, device=dev)
    sync(dev)
    out["host_to_device_s"] = time.perf_counter() - t
    peer = bare_gemm(A, B)
    del A
    d = Dictionary(W, rows_are_atoms=True)
    t = time.perf_counter()
    c = coherence(d, "raw", backend="torch", device=str(dev), block_size=B, babel_p=64, top=100)
    ours = time.perf_counter() - t
    out.update({
        f"report_{H}x{N}_s": ours, f"products_only_{H}x{N}_s": peer, "ratio": ours / peer,
        "block_size": B, "mu": c.mu, "pair": list(c.pair), "babel64": float(c.babel[-1]),
        "welch": c.welch_bound,
    })
    if args.json:
        print(json.dumps(out))
        return
    print(f"coherence {H}x{N} float32 on {card}, tiles of {B}: report {ours:.2f} s, "
          f"products-only {peer:.2f} s (+ host→device {out['host_to_device_s']:.2f} s apart); "
          f"mu {c.mu:.6f} pair {tuple(c.pair)} babel64 {c.babel[-1]:.4f}", flush=True)
    print(f"FIGURE coherence {H}x{N} [{card}]: ours {ours:.4g} s (rip_atoms.coherence report, "
          f"torch) | peer {peer:.4g} s (products-only blocked torch GEMM, same tiles) | "
          f"ratio {ours / peer:.2f}x (ours/peer time; target: ours <= 2 s on an H100 at "
          "4096x131072)", flush=True)


if __name__ == "__main__":
    main()
