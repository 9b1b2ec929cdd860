"""Exact ℓ1 certification codes/s through the torch engine vs the numpy engine, same codes, same run
(part (c) of ``benchmarks/gpu.sh``).

Both sides are ``benchmarks/recovery.py --per-code --near-codes 0`` (part 3: a Gaussian
2304×16384 dictionary with unit columns, ``--codes`` non-negative codes with L0 = 70, magnitudes
uniform in [1, 2], one BLAS thread), each in its own subprocess: ours with ``--engine torch
--device DEV``, the peer with ``--engine numpy`` (the CPU engine). Printed: codes/s of each, the
ratio, and whether the certified / failed / undetermined counts agree. While
``benchmarks/recovery.py`` has no ``--engine`` option (the torch certification engine is not in
the tree), a SKIPPED line says so and the exit status is 0.

    python benchmarks/gpu_certify.py --device cuda               # 2000 codes
    python benchmarks/gpu_certify.py --device cpu --codes 16     # gpu.sh --tiny
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(args, engine: str, out: Path) -> dict:
    cmd = [sys.executable, str(HERE / "recovery.py"), "--per-code", "--near-codes", "0",
           "--l0-codes", str(args.codes), "--engine", engine, "--json", str(out)]
    if engine == "torch":
        cmd += ["--device", args.device]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())["part3"]["after"]["l0_70"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--codes", type=int, default=2000, help="codes with L0 = 70 (each side)")
    args = ap.parse_args()
    help_text = subprocess.run([sys.executable, str(HERE / "recovery.py"), "--help"],
                               capture_output=True, text=True).stdout
    if "--engine" not in help_text or "--per-code" not in help_text:
        print("FIGURE certification 2304x16384 L0=70: SKIPPED - benchmarks/recovery.py has no "
              "--engine/--per-code options yet (the torch certification engine is not in this "
              "tree); no figure", flush=True)
        return
    import torch

    from rip_atoms.kernels.torch_gram import resolve_device

    dev = resolve_device(args.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    with tempfile.TemporaryDirectory() as tmp:
        ours = run(args, "torch", Path(tmp) / "ours.json")
        peer = run(args, "numpy", Path(tmp) / "peer.json")
    keys = ("certified", "failed", "undetermined")
    same = all(ours[k] == peer[k] for k in keys)
    counts = ", ".join(f"{k} {ours[k]}/{peer[k]}" for k in keys)
    print(f"certification 2304x16384, {args.codes} non-negative codes, L0 = 70: torch on {card} "
          f"{ours['codes_per_s']:.0f} codes/s, numpy engine (one BLAS thread) "
          f"{peer['codes_per_s']:.0f} codes/s; counts ours/peer: {counts} "
          f"({'same' if same else 'DIFFERENT'})", flush=True)
    print(f"FIGURE certification 2304x16384 L0=70 [{card}]: ours {ours['codes_per_s']:.4g} "
          f"codes/s (torch engine) | peer {peer['codes_per_s']:.4g} codes/s (numpy engine, one "
          f"BLAS thread, same codes) | ratio {ours['codes_per_s'] / peer['codes_per_s']:.2f}x "
          "(ours/peer throughput; target: ours >= 2000 codes/s on an H100)", flush=True)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
