"""``rip-atoms sweep``: the capacity × data-scale grid (or many SAE files) on dask.distributed."""

from __future__ import annotations

import argparse
import glob
import re
from pathlib import Path

from rip_atoms.cli.common import (
    UsageError,
    add_output_args,
    emit_json,
    int_list,
    log,
    quiet_transformers,
    show_progress,
)

EPILOG = """\
examples:
  rip-atoms sweep --model smollm2 --layers 15 --capacity 1,2,4,8,16 \\
      --tokens 5000,10000,20000,40000,80000 --out sweep-l15
  rip-atoms sweep --acts acts.npy --width 256,512 --tokens 20000 --seeds 0,1 --out s
  rip-atoms sweep --sae 'saes/layer_{layer}/width_16k' --layers 3,4 --acts harvest/ --out s
  rip-atoms sweep ... --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster

A rerun of the same command skips the finished cells (OUT/cells/*.json). Exit status 0 when
every cell finished, 3 when some failed (each with its one-line reason in sweep.csv), 2 on bad
input.
"""


def _float_list(text: str, option: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not vals or any(not v > 0 for v in vals):
        raise UsageError(f"{option}: numbers must be > 0, got {text!r}")
    return vals


def _sae_cells(pattern: str, layers: list[int | None]):
    from rip_atoms.sweep import Cell

    cells = []
    for layer in layers:
        pat = pattern if layer is None else pattern.replace("{layer}", str(layer))
        paths = sorted(glob.glob(pat)) if glob.has_magic(pat) else [pat]
        if not paths or not all(Path(p).exists() for p in paths):
            raise UsageError(f"--sae {pat}: no such file or folder")
        cells += [Cell(layer=layer, arch="sae", seed=0, n_atoms=0, tokens=0, sae_path=p)
                  for p in paths]
    return cells


def _sources(args, layers: list[int | None], n_needed: int):
    """(layer → Source, the fewest tokens a layer keeps without its massive activations, or
    None when not counted yet: --acts is read as it is, a --model harvest grows until it
    keeps n_needed)."""
    from rip_atoms.sweep import Source

    if args.acts is not None:
        p = Path(args.acts)
        if not p.exists():
            raise UsageError(f"--acts {p}: no such file or folder")
        return {layer: Source(str(p), layer) for layer in layers}, None
    quiet_transformers()
    import torch

    from rip_atoms.sae.harvest import HarvestConfig, harvest
    from rip_atoms.sae.model import load_model

    out = Path(args.out) / "activations"
    log(args, f"harvesting {n_needed} tokens of layer(s) {layers} from {args.model} into {out}")
    lm = load_model(args.model, dtype=torch.float32, progress=show_progress(args))
    sources = {layer: Source(str(out), layer) for layer in layers}
    target = n_needed
    for _ in range(4):  # grow the harvest until n_needed tokens remain without massive ones
        harvest(lm, [int(x) for x in layers], out, HarvestConfig(n_tokens=target),
                progress=show_progress(args))
        kept = _kept_tokens(sources, args.max_norm_ratio)
        if kept >= n_needed:
            break
        target += n_needed - kept
        log(args, f"{n_needed - kept} massive activation(s) left out: harvesting up to "
                  f"{target} tokens")
    return sources, kept


def _kept_tokens(sources: dict, ratio: float) -> int:
    """The fewest tokens a layer's stream keeps without its massive activations (all when
    ratio is 0)."""
    from rip_atoms.sweep.cell import load_stream

    kept = []
    for source in sources.values():
        X = load_stream(source)
        if ratio:
            from rip_atoms.massive_activations import massive_activation_rows

            kept.append(X.shape[0] - len(massive_activation_rows(X, ratio)))
        else:
            kept.append(X.shape[0])
    return min(kept)


def run(args: argparse.Namespace) -> int:
    from rip_atoms.sweep import TrainingRule, expand_grid, run_sweep
    from rip_atoms.sweep.cell import load_stream

    if (args.acts is None) == (args.model is None):
        raise UsageError("sweep: give exactly one of --acts ACTS and --model NAME")
    layers: list[int | None] = (int_list(args.layers, "--layers") if args.layers else [None])
    if args.model is not None and layers == [None]:
        raise UsageError("sweep: --model needs --layers")
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers must be ≥ 0, got {args.workers}")
    if args.held_out_tokens < 1:
        raise UsageError(f"--held-out-tokens must be ≥ 1, got {args.held_out_tokens}")
    if not (args.max_norm_ratio == 0 or args.max_norm_ratio > 1):
        raise UsageError(f"--max-norm-ratio must be > 1 (or 0: keep every token), got "
                         f"{args.max_norm_ratio}")
    if args.sae is not None:
        cells = _sae_cells(args.sae, layers)
        n_needed = args.held_out_tokens + 1
    else:
        if (args.capacity is None) == (args.width is None):
            raise UsageError("sweep: give --capacity c1,c2,… (N = c·H) or --width N1,N2,…")
        if args.tokens is None:
            raise UsageError("sweep: give --tokens t1,t2,… (training tokens per cell)")
        tokens = int_list(args.tokens, "--tokens")
        archs = [a.strip() for a in args.arch.split(",") if a.strip()]
        from rip_atoms.sweep import ARCHITECTURES

        bad = [a for a in archs if a not in ARCHITECTURES]
        if bad or not archs:
            raise UsageError(f"--arch {args.arch}: known architectures are "
                             f"{', '.join(ARCHITECTURES)} (topk: no TopK trainer here)")
        seeds = int_list(args.seeds, "--seeds")
        if min(tokens) < 1 or min(seeds) < 0:
            raise UsageError("--tokens must be ≥ 1 and --seeds ≥ 0")
        n_needed = max(tokens) + args.held_out_tokens
        cells = None
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        raise UsageError(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    rule = TrainingRule(epochs=args.epochs, min_steps=args.min_steps, max_steps=args.max_steps,
                        batch_size=args.batch_size, target_l0=args.target_l0,
                        device=args.device)
    sources, kept = _sources(args, layers, n_needed)
    if cells is None:
        first = load_stream(next(iter(sources.values())))
        H = first.shape[1]
        if kept is None:
            kept = _kept_tokens(sources, args.max_norm_ratio)
        if kept < n_needed:
            raise UsageError(f"{sources[layers[0]].path}: the stream has {kept} tokens "
                             f"(without massive activations) but max(--tokens) + "
                             f"--held-out-tokens = {n_needed}")
        widths = (int_list(args.width, "--width") if args.width is not None
                  else [round(c * H) for c in _float_list(args.capacity, "--capacity")])
        cells = expand_grid(layers=layers, archs=archs, seeds=seeds, widths=widths,
                            tokens=tokens)
    res = run_sweep(cells, sources, args.out, rule=rule, held_out=args.held_out_tokens,
                    l1_tokens=args.l1_tokens, workers=args.workers, scheduler=args.scheduler,
                    max_norm_ratio=args.max_norm_ratio or None,
                    progress=show_progress(args), log=lambda m: log(args, m))
    if args.json:
        emit_json(res.to_dict())
    log(args, f"sweep: {len(res.results)} cells ({res.ran} run, {res.skipped} reused), "
              f"{res.failed} failed; {res.seconds:.0f} s; wrote {Path(args.out) / 'sweep.csv'}, "
              f"sweep.json, sweep.html")
    if res.failed:
        log(args, f"sweep: {res.failed} of {len(res.results)} cells failed (see the error "
                  "column of sweep.csv)")
        return 3
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="the capacity × data-scale grid of SAEs (or many SAE files) on Dask",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train an SAE per cell (layer × arch × N × |M| × seed) on a prefix of each "
                    "layer's activation stream and evaluate every criterion on the training "
                    "tokens and on a fixed held-out tail; or evaluate SAE files (--sae). Cells "
                    "run as Dask tasks (a LocalCluster by default, --scheduler for a cluster); "
                    "results are written per cell, atomically, and a rerun skips them.",
        epilog=EPILOG)
    src = p.add_argument_group("activations")
    src.add_argument("--model", metavar="NAME", help="harvest from this model (smollm2)")
    src.add_argument("--acts", metavar="ACTS", help="an n×H .npy or a harvest folder")
    src.add_argument("--layers", metavar="L1,L2", help="layers (with --model or a harvest)")
    src.add_argument("--held-out-tokens", type=int, default=20_000, metavar="H",
                     help="the held-out tail: the last H tokens of each stream (default 20000)")
    src.add_argument("--max-norm-ratio", type=float, default=10.0, metavar="R",
                     help="leave out massive activations, tokens with ‖x‖ > R × the median "
                          "norm (attention sinks; default 10; 0 keeps every token)")
    g = p.add_argument_group("grid")
    g.add_argument("--capacity", metavar="C1,C2", help="widths N = c·H")
    g.add_argument("--width", metavar="N1,N2", help="absolute widths N")
    g.add_argument("--tokens", metavar="T1,T2", help="training tokens |M| per cell")
    g.add_argument("--arch", default="jumprelu", help="jumprelu (TSAE), relu (default jumprelu)")
    g.add_argument("--seeds", default="0", help="seeds (≥ 2 for seed stability; default 0)")
    g.add_argument("--target-l0", type=float, default=32.0, help="target L0 (default 32)")
    g.add_argument("--sae", metavar="PATTERN",
                   help="evaluate SAE files instead of training: a glob with {layer}")
    t = p.add_argument_group("training rule: steps = clip(⌈E·|M|/B⌉, S_min, S_max)")
    t.add_argument("--epochs", type=float, default=10.0, help="E (default 10)")
    t.add_argument("--min-steps", type=int, default=300, help="S_min (default 300)")
    t.add_argument("--max-steps", type=int, default=4000, help="S_max (default 4000)")
    t.add_argument("--batch-size", type=int, default=1024, help="B (default 1024)")
    t.add_argument("--device", default="cpu", help="cpu or cuda[:N] (GPU cells: one per GPU)")
    e = p.add_argument_group("engine")
    e.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per core; 0: no Dask)")
    e.add_argument("--scheduler", metavar="ADDR", help="tcp://HOST:PORT of a dask-scheduler")
    p.add_argument("--l1-tokens", type=int, default=64, help="sampled tokens for the ℓ1 test")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_output_args(p)
    p.set_defaults(func=run)
