"""TSAE training throughput vs SAELens's JumpReLU trainer (CPU).

Peer: ``sae_lens`` ``SAETrainer`` + ``JumpReLUTrainingSAE`` (step-mode L0 loss, raw threshold,
bandwidth and initial threshold 1e-3, Adam β₁ = 0, gradient clip 1, no wandb) fed the same
activation batches through its bring-your-own-activations data provider. Ours:
``rip_atoms.sae.train.train_sae`` (JumpReLU TSAE, target-L0 controller, unit-norm decoder with
gradient projection, dead-latent tracking and resampling). Same width, batch, steps, thread count
and activations (pre-scaled to E‖x‖² = 1 for SAELens, which ours does itself), in the same
invocation, alternating runs so machine load hits both alike. Throughput = tokens / wall-clock
seconds of the whole training call.

    .venv/bin/python benchmarks/train.py                       # d = 576, N = 2304, B = 1024
    .venv/bin/python benchmarks/train.py --acts ACTS_DIR       # harvested SmolLM2 activations
    .venv/bin/python benchmarks/train.py --threads 1 --steps 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch


def activations(args) -> tuple[np.ndarray, str]:
    if args.acts:
        from rip_atoms.sae.harvest import ActivationStore

        store = ActivationStore(args.acts)
        return store.array(args.layer), f"{args.acts} (layer {args.layer})"
    from rip_atoms.synthetic import planted_atoms

    pl = planted_atoms(args.dim, 4 * args.dim, 16, 20000, offset=2.0, seed=0)
    return pl.activations.astype(np.float32), (f"planted atoms H={args.dim}, N={4 * args.dim}, "
                                               "K=16, 20000 tokens, common offset")


def run_ours(X: np.ndarray, args) -> float:
    from rip_atoms.sae.train import TrainConfig, train_sae

    cfg = TrainConfig(width=args.width, target_l0=args.target_l0, steps=args.steps,
                      batch_size=args.batch, threads=args.threads, log_every=args.steps)
    t = time.perf_counter()
    train_sae(X, cfg, progress=False)
    return time.perf_counter() - t


def run_sae_lens(X: np.ndarray, args) -> float:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    Xs = torch.from_numpy(X / math.sqrt(float((X.astype(np.float64) ** 2).sum(1).mean())))
    Xs = Xs.float()
    gen = torch.Generator().manual_seed(0)

    def provider():
        while True:
            perm = torch.randperm(Xs.shape[0], generator=gen)
            for s in range(0, Xs.shape[0] - args.batch + 1, args.batch):
                yield Xs[perm[s:s + args.batch]]

    sae = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(
        d_in=X.shape[1], d_sae=args.width, jumprelu_init_threshold=1e-3,
        jumprelu_bandwidth=1e-3, l0_coefficient=1e-3, normalize_activations="none"))
    cfg = SAETrainerConfig(total_training_samples=args.steps * args.batch,
                           train_batch_size_samples=args.batch, lr=1e-3, lr_end=1e-4,
                           adam_beta1=0.0, device="cpu")
    trainer = SAETrainer(cfg, sae, provider())
    t = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--acts", help="a harvest folder (default: synthetic activations)")
    ap.add_argument("--layer", type=int, default=None)
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--width", type=int, default=2304)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--target-l0", type=float, default=32.0)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X, what = activations(args)
    tokens = args.steps * args.batch
    runs: dict[str, list[float]] = {"rip_atoms": [], "sae_lens": []}
    for _ in range(args.repeat):
        runs["rip_atoms"].append(run_ours(X, args))
        runs["sae_lens"].append(run_sae_lens(X, args))
    best = {k: min(v) for k, v in runs.items()}
    out = {
        "activations": what, "d_in": int(X.shape[1]), "width": args.width,
        "batch": args.batch, "steps": args.steps, "threads": args.threads,
        "tokens_per_second": {k: tokens / s for k, s in best.items()},
        "seconds": runs,
        "ratio": best["sae_lens"] / best["rip_atoms"],
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"TSAE training throughput, CPU, {args.threads} thread(s); {what}")
    print(f"d_in = {X.shape[1]}, width = {args.width}, batch = {args.batch}, "
          f"{args.steps} steps, best of {args.repeat}")
    for k in ("rip_atoms", "sae_lens"):
        print(f"  {k:<10s} {tokens / best[k]:10.0f} tokens/s   "
              f"({', '.join(f'{s:.2f}' for s in runs[k])} s)")
    print(f"  ratio (ours / SAELens) = {out['ratio']:.2f}×")


if __name__ == "__main__":
    main()
