"""TSAE training throughput vs SAELens's JumpReLU trainer (CPU or GPU).

Peer: ``sae_lens`` ``SAETrainer`` + ``JumpReLUTrainingSAE`` (step-mode L0 loss, raw threshold,
bandwidth and initial threshold 1e-3, Adam β₁ = 0, gradient clip 1, no wandb) fed the same
activation batches through its bring-your-own-activations data provider. Ours:
``rip_atoms.sae.train.train_sae`` (JumpReLU TSAE, target-L0 controller, unit-norm decoder with
gradient projection, dead-latent tracking and resampling). Same width, batch, steps, thread count
and activations (pre-scaled to E‖x‖² = 1 for SAELens, which ours does itself), in the same
invocation, alternating runs so machine load hits both alike. Throughput = tokens / wall-clock
seconds of the whole training call (on a GPU, synchronised; SAELens's data are on the device
before its clock starts, ours are a host array that the call checks, scales and moves there).

``--device cuda`` runs both on the GPU (after an untimed warm-up run of each); ``--paths``
lists our gradient paths to time: ``auto`` (the default crossover of the device: 0.02 on a
GPU, 0.2 on a CPU), ``dense`` (``sparse_density=0``: dense GEMMs every step) and ``sparse``
(``sparse_density=1``: embedding_bag sums every step). ``--step-timing`` also times the bare
steps of each path after initialisation (no SAELens), e.g. the CPU choice between the paths.

    .venv/bin/python benchmarks/train.py                       # d = 576, N = 2304, B = 1024
    .venv/bin/python benchmarks/train.py --acts ACTS_DIR       # harvested SmolLM2 activations
    .venv/bin/python benchmarks/train.py --threads 1 --steps 100 --repeat 3
    python benchmarks/train.py --device cuda --dim 2304 --width 16384 --batch 4096 \
        --tokens 32768 --steps 200 --repeat 1 --paths auto,dense      # benchmarks/gpu.sh
    .venv/bin/python benchmarks/train.py --dim 2304 --width 16384 --batch 4096 --steps 3 \
        --repeat 1 --paths auto,dense --skip-sae-lens --step-timing   # CPU: which path
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch


def activations(args) -> tuple[np.ndarray, str]:
    if args.acts:
        from rip_atoms.sae.harvest import ActivationStore

        store = ActivationStore(args.acts)
        return store.array(args.layer), f"{args.acts} (layer {args.layer})"
    from rip_atoms.synthetic import planted_atoms

    n = max(args.tokens, args.batch)
    pl = planted_atoms(args.dim, 4 * args.dim, 16, n, offset=2.0, seed=0)
    return pl.activations.astype(np.float32), (f"planted atoms H={args.dim}, N={4 * args.dim}, "
                                               f"K=16, {n} tokens, common offset")


#: our gradient paths by name → TrainConfig.sparse_density
PATHS = {"auto": None, "dense": 0.0, "sparse": 1.0}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def config(args, path: str, steps: int):
    from rip_atoms.sae.train import TrainConfig

    return TrainConfig(width=args.width, target_l0=args.target_l0, steps=steps,
                       batch_size=args.batch, threads=args.threads, log_every=steps,
                       device=args.device, sparse_density=PATHS[path])


def run_ours(X: np.ndarray, args, path: str = "auto", steps: int | None = None) -> float:
    from rip_atoms.sae.train import train_sae

    cfg = config(args, path, steps or args.steps)
    sync(args.device)
    t = time.perf_counter()
    train_sae(X, cfg, progress=False)
    sync(args.device)
    return time.perf_counter() - t


def step_seconds(X: np.ndarray, args, path: str) -> float:
    """Seconds per bare training step of one path (after initialisation; best of the steps)."""
    from rip_atoms.sae.train import Trainer

    tr = Trainer(X, config(args, path, max(args.steps, 2)), None)
    tr.init_state()
    times = []
    for _ in range(max(args.steps, 2)):
        sync(args.device)
        t = time.perf_counter()
        tr.train_step()
        sync(args.device)
        times.append(time.perf_counter() - t)
    return min(times[1:])


def run_sae_lens(X: np.ndarray, args, steps: int | None = None) -> float:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    steps = steps or args.steps
    Xs = torch.from_numpy(X / math.sqrt(float((X.astype(np.float64) ** 2).sum(1).mean())))
    Xs = Xs.float().to(args.device)
    gen = torch.Generator().manual_seed(0)

    def provider():
        while True:
            perm = torch.randperm(Xs.shape[0], generator=gen).to(args.device)
            for s in range(0, Xs.shape[0] - args.batch + 1, args.batch):
                yield Xs[perm[s:s + args.batch]]

    sync(args.device)
    t = time.perf_counter()
    sae = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(
        d_in=X.shape[1], d_sae=args.width, jumprelu_init_threshold=1e-3,
        jumprelu_bandwidth=1e-3, l0_coefficient=1e-3, normalize_activations="none",
        device=args.device))
    cfg = SAETrainerConfig(total_training_samples=steps * args.batch,
                           train_batch_size_samples=args.batch, lr=1e-3, lr_end=1e-4,
                           adam_beta1=0.0, device=args.device)
    trainer = SAETrainer(cfg, sae, provider())
    trainer.fit()
    sync(args.device)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--acts", help="a harvest folder (default: synthetic activations)")
    ap.add_argument("--layer", type=int, default=None)
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--width", type=int, default=2304)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=20000, help="synthetic tokens (≥ batch)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, …")
    ap.add_argument("--paths", default="auto",
                    help="our gradient paths to time, comma-separated: auto, dense, sparse")
    ap.add_argument("--skip-sae-lens", action="store_true", help="time ours only")
    ap.add_argument("--step-timing", action="store_true",
                    help="also time the bare steps of each path (after initialisation)")
    ap.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=None,
                    help="an untimed 3-step run of each trainer first (default: on a GPU)")
    ap.add_argument("--target-l0", type=float, default=32.0)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # SAETrainer's bar (read when tqdm is imported)
    torch.set_num_threads(args.threads)
    from rip_atoms.kernels.torch_gram import resolve_device

    dev = resolve_device(args.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    bad = [p for p in paths if p not in PATHS]
    if bad or not paths:
        raise SystemExit(f"--paths: unknown path(s) {bad} (choose from {', '.join(PATHS)})")
    X, what = activations(args)
    tokens = args.steps * args.batch
    names = [f"rip_atoms[{p}]" if len(paths) > 1 else "rip_atoms" for p in paths]
    runs: dict[str, list[float]] = {k: [] for k in names}
    if not args.skip_sae_lens:
        runs["sae_lens"] = []
    if args.warmup or (args.warmup is None and dev.type == "cuda"):
        # CUDA context, cuBLAS handles, kernels, lazy imports: untimed warm-up runs
        for p in paths:
            run_ours(X, args, p, steps=3)
        if not args.skip_sae_lens:
            run_sae_lens(X, args, steps=3)
    for _ in range(args.repeat):
        for name, p in zip(names, paths, strict=True):
            runs[name].append(run_ours(X, args, p))
        if not args.skip_sae_lens:
            runs["sae_lens"].append(run_sae_lens(X, args))
    best = {k: min(v) for k, v in runs.items()}
    out = {
        "device": card, "activations": what, "d_in": int(X.shape[1]), "width": args.width,
        "batch": args.batch, "steps": args.steps, "threads": args.threads,
        "tokens_per_second": {k: tokens / s for k, s in best.items()},
        "seconds": runs,
    }
    if not args.skip_sae_lens:
        out["ratio"] = {k: best["sae_lens"] / best[k] for k in names}
    if args.step_timing:
        out["step_tokens_per_second"] = {
            name: args.batch / step_seconds(X, args, p)
            for name, p in zip(names, paths, strict=True)}
    if args.json:
        print(json.dumps(out))
        return
    where = card if dev.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"TSAE training throughput, {where}; {what}")
    print(f"d_in = {X.shape[1]}, width = {args.width}, batch = {args.batch}, "
          f"{args.steps} steps, best of {args.repeat}")
    for k in runs:
        print(f"  {k:<18s} {tokens / best[k]:10.0f} tokens/s   "
              f"({', '.join(f'{s:.2f}' for s in runs[k])} s)")
    for k, r in out.get("ratio", {}).items():
        print(f"  ratio ({k} / SAELens) = {r:.2f}×")
    for k, v in out.get("step_tokens_per_second", {}).items():
        print(f"  bare steps {k:<18s} {v:10.0f} tokens/s")
    if "sae_lens" in best:
        peer = tokens / best["sae_lens"]
        for k in names:
            ours = tokens / best[k]
            print(f"FIGURE TSAE training {X.shape[1]}->{args.width} batch {args.batch} [{card}]: "
                  f"ours {ours:.0f} tokens/s ({k}) | peer {peer:.0f} tokens/s (SAELens "
                  f"JumpReLU SAETrainer) | ratio {ours / peer:.2f}x (ours/peer throughput; "
                  "target >= 1.5x on an H100)", flush=True)


if __name__ == "__main__":
    main()
