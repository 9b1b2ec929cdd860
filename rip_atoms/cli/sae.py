"""The torch-adapter subcommands (need ``pip install 'rip-atoms[llm]'``):

* ``rip-atoms harvest --model smollm2 --layers 15 --tokens N --out DIR`` — residual-stream
  activations into shards with a manifest (resumable);
* ``rip-atoms train ACTS --out DIR [--arch jumprelu|standard] [--width W] [--target-l0 K]
  [--device cuda]`` — a TSAE or a ReLU + L1 SAE, on the CPU or a GPU, saved in the SAELens layout
  (checkpoints that resume on any device, ``--resume``; an existing
  SAE is replaced only with ``--overwrite``, an interrupted harvest used only with
  ``--allow-incomplete``);
* ``rip-atoms atoms --model smollm2 --layer L [--tokens N] [--width W] --out DIR`` — the paper's
  table: neurons / features / atoms on held-out tokens (also ``--acts DIR`` and
  ``--features SAE``).

torch is imported only when one of them runs, so the rest of the CLI works without it. Sizes,
counts, rates and seeds are checked before any work (exit 2, one line naming the option); a bad
``--device`` is refused before the model is loaded; Ctrl-C leaves the harvest or the training
checkpoint consistent and says what is saved (exit 130).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rip_atoms.cli.common import (
    UsageError,
    add_output_args,
    emit_json,
    int_list,
    log,
    quiet_transformers,
    require_adapter,
    set_threads,
    show_progress,
    torch_dtype,
)


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: torch's choice; small SAEs train on 1)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="model weights dtype (activations are stored as float32)")
    p.add_argument("--device", default="cpu",
                   help="torch device of the model (and, for atoms, of the training), e.g. "
                        "cuda, cuda:1 (default cpu)")


def _layers(text: str) -> list[int]:
    layers = int_list(text, "--layers")
    bad = [v for v in layers if v < 0]
    if bad:
        raise UsageError(f"--layers: layers are numbered from 0, got {bad[0]}")
    return layers


def _check(args: argparse.Namespace, *, ints: dict[str, int] | None = None,
           positive: tuple[str, ...] = (),
           fractions: dict[str, tuple[float, bool]] | None = None) -> None:
    """One-line UsageErrors naming the option: ``ints`` maps an option (``--width``) to its
    least value (None values are skipped: the option was not given); ``positive``: finite
    numbers > 0; ``fractions`` maps an option to (its least value, whether that is allowed),
    the value must be < 1."""
    for opt, least in (ints or {}).items():
        value = getattr(args, opt[2:].replace("-", "_"))
        if value is not None and value < least:
            raise UsageError(f"{opt} must be ≥ {least}, got {value}")
    for opt in positive:
        value = getattr(args, opt[2:].replace("-", "_"))
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{opt} must be a finite number > 0, got {value}")
    for opt, (least, closed) in (fractions or {}).items():
        value = getattr(args, opt[2:].replace("-", "_"))
        ok = math.isfinite(value) and value < 1 and (value >= least if closed else value > least)
        if not ok:
            raise UsageError(f"{opt} must be in {'[' if closed else '('}{least:g}, 1), got "
                             f"{value}")


# ---------------------------------------------------------------------- harvest
def run_harvest(args: argparse.Namespace) -> int:
    layers = _layers(args.layers)
    _check(args, ints={"--tokens": 1, "--context": 2, "--batch": 1, "--skip-first": 0,
                       "--shard-tokens": 1, "--threads": 0})
    if args.skip_first >= args.context:
        raise UsageError(f"--skip-first must be < --context ({args.context}), got "
                         f"{args.skip_first}")
    require_adapter()
    quiet_transformers()
    set_threads(args)
    from rip_atoms.kernels.torch_gram import resolve_device
    from rip_atoms.sae.harvest import HarvestConfig, harvest
    from rip_atoms.sae.model import load_model

    config = HarvestConfig(n_tokens=args.tokens, context_size=args.context,
                           batch_contexts=args.batch, skip_first=args.skip_first,
                           prepend_bos={"auto": None, "yes": True, "no": False}[args.bos],
                           shard_tokens=args.shard_tokens)
    resolve_device(args.device)  # before the log line and the model load
    log(args, f"loading {args.model}")
    lm = load_model(args.model, dtype=torch_dtype(args.dtype), device=args.device,
                    progress=show_progress(args))
    res = harvest(lm, layers, args.out, config, texts=args.text, resume=not args.no_resume,
                  progress=show_progress(args))
    if args.json:
        emit_json(res.to_dict())
    else:
        print(f"harvested {res.n_tokens} tokens × layers {list(res.layers)} (d_model "
              f"{res.d_model}) into {res.out_dir}: {res.n_shards} shards, "
              f"{res.tokens_per_second:.0f} tokens/s"
              + (f", resumed after {res.resumed_tokens}" if res.resumed_tokens else "")
              + (" (text exhausted)" if res.text_exhausted else ""))
    return 0


# ---------------------------------------------------------------------- train
def _check_train(args: argparse.Namespace) -> None:
    _check(args, ints={"--width": 1, "--steps": 1, "--batch": 1, "--checkpoint-every": 0,
                       "--seed": 0, "--threads": 0, "--layer": 0},
           positive=("--lr",), fractions={"--held-out": (0.0, True)})
    if not math.isfinite(args.target_l0) or (args.arch == "jumprelu" and args.target_l0 <= 0):
        raise UsageError(f"--target-l0 must be a finite number > 0 (the TSAE's target L0), "
                         f"got {args.target_l0}")
    if args.width is not None and args.target_l0 > args.width:
        raise UsageError(f"--target-l0 ({args.target_l0:g}) must be ≤ --width ({args.width})")
    if not (math.isfinite(args.l1) and args.l1 >= 0):
        raise UsageError(f"--l1 must be a finite number ≥ 0, got {args.l1}")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out, --overwrite replaces it: "
                         "choose one")


def run_train(args: argparse.Namespace) -> int:
    _check_train(args)
    require_adapter()
    set_threads(args)
    import numpy as np

    from rip_atoms.kernels.torch_gram import resolve_device

    resolve_device(args.device)  # a bad --device: one line, before the activations are read
    from rip_atoms.sae.harvest import ActivationStore
    from rip_atoms.sae.train import TrainConfig, check_output_folder, train_sae

    # refuse an existing run before reading the activations (exit 2 in no time)
    check_output_folder(Path(args.out), resume=args.resume, overwrite=args.overwrite)
    store = ActivationStore(args.acts).require_complete(args.allow_incomplete)
    layer = args.layer
    X_train, X_eval = store.split(layer, held_out=args.held_out) if args.held_out > 0 else (
        store.array(layer), None)
    target = args.target_l0 if args.target_l0 > 0 else None
    width = args.width if args.width is not None else 4 * store.d_model
    if target is not None and target > width:
        raise UsageError(f"--target-l0 ({target:g}) must be ≤ the width N = {width} (4·d "
                         "unless --width)")
    cfg = TrainConfig(
        architecture=args.arch, width=width, target_l0=target,
        steps=args.steps, batch_size=args.batch, lr=args.lr, whiten=args.whiten,
        checkpoint_every=args.checkpoint_every, seed=args.seed,
        l1_coefficient=args.l1, threads=args.threads, device=args.device,
    )
    used = layer if layer is not None else store.layers[0]
    meta = {"model_name": (store.manifest.get("model") or {}).get("name"),
            "hook_name": f"blocks.{used}.hook_resid_post" if used is not None else None,
            "hook_layer": used, "dataset_path": store.manifest.get("text")}
    used_name = f", layer {used}" if used is not None else ""
    source = f"{args.acts}{used_name}" + (" (training tokens)" if X_eval is not None else "")
    res = train_sae(X_train, cfg, out_dir=args.out, resume=args.resume,
                    overwrite=args.overwrite, progress=show_progress(args), metadata=meta,
                    source=source)
    out = res.to_dict()
    out.pop("history", None)
    if X_eval is not None and X_eval.shape[0] > 1:
        Xh = res.sae.reconstruct_numpy(X_eval)
        Xe = X_eval.astype(np.float64)
        res_ss = float(((Xe - Xh) ** 2).sum())
        tot_ss = float(((Xe - Xe.mean(0)) ** 2).sum())
        codes = res.sae.encode_numpy(X_eval)
        out["held_out"] = {"tokens": int(X_eval.shape[0]),
                           "r2_euclidean": 1.0 - res_ss / tot_ss if tot_ss > 0 else None,
                           "l0": float((codes != 0).sum(1).mean())}
    if args.json:
        emit_json(out)
    else:
        msg = (f"trained a {cfg.architecture} SAE (N = {cfg.width}) for {res.steps} steps "
               f"({res.tokens_per_second:.0f} tokens/s): L0 {res.l0:.2f}, R² (train) "
               f"{res.r2:.4f}, dead {res.dead_latents}")
        if "held_out" in out:
            h = out["held_out"]
            msg += f"; held-out R² {h['r2_euclidean']:.4f}, L0 {h['l0']:.2f}"
        print(msg + f"; saved to {args.out}")
    return 0


# ---------------------------------------------------------------------- atoms
def run_atoms(args: argparse.Namespace) -> int:
    _check(args, ints={"--layer": 0, "--tokens": 1, "--width": 1, "--steps": 1, "--batch": 1,
                       "--context": 2, "--l1-tokens": 1, "--seed": 0, "--threads": 0},
           positive=("--lr", "--target-l0"), fractions={"--held-out": (0.0, False)})
    require_adapter()
    quiet_transformers()
    set_threads(args)
    from rip_atoms.sae.experiment import AtomsExperiment, run_atoms_experiment

    if args.acts is None and args.layer is None:
        raise UsageError("give --layer L (or --acts DIR with saved activations)")
    exp = AtomsExperiment(
        model=args.model, layer=args.layer if args.layer is not None else -1,
        tokens=args.tokens, width=args.width, target_l0=args.target_l0, steps=args.steps,
        batch_size=args.batch, lr=args.lr, whiten=args.whiten, held_out=args.held_out,
        context_size=args.context, text=args.text, acts=args.acts, features=args.features,
        l1_tokens=args.l1_tokens, seed=args.seed, threads=args.threads,
        model_dtype=args.dtype, device=args.device, allow_incomplete=args.allow_incomplete,
    )
    res = run_atoms_experiment(exp, args.out, progress=show_progress(args),
                               log=lambda m: log(args, m))
    if args.json:
        emit_json(res.to_dict())
    else:
        print(res.render())
        print(f"saved: {', '.join(f'{k} → {v}' for k, v in res.saved.items())}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("harvest", help="residual-stream activations of a causal LM → shards")
    p.add_argument("--model", default="smollm2",
                   help="smollm2 (default, from PyPI), a HF model folder, a .gguf file, or a hub "
                        "name")
    _add_model_args(p)
    p.add_argument("--layers", required=True, help="decoder blocks, e.g. 15 or 6,15,24")
    p.add_argument("--tokens", type=int, required=True, help="tokens to harvest per layer")
    p.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    p.add_argument("--text", action="append",
                   help="text: a .txt/.md/.jsonl file, a folder, hf:NAME[:SPLIT] (repeatable; "
                        "default: the stdlib's pydoc_data.topics)")
    p.add_argument("--context", type=int, default=256, help="tokens per context (default 256)")
    p.add_argument("--batch", type=int, default=4, help="contexts per forward pass")
    p.add_argument("--skip-first", type=int, default=1,
                   help="drop positions < this (default 1: position 0 / BOS)")
    p.add_argument("--bos", choices=("auto", "yes", "no"), default="auto",
                   help="prepend the BOS token to each context (auto: when the tokenizer does)")
    p.add_argument("--shard-tokens", type=int, default=16384, help="tokens per shard")
    p.add_argument("--no-resume", action="store_true",
                   help="refuse to continue an existing harvest")
    _add_threads(p)
    add_output_args(p)
    p.set_defaults(func=run_harvest)

    p = sub.add_parser("train", help="train a TSAE (JumpReLU) or a ReLU + L1 SAE")
    p.add_argument("acts", metavar="ACTS", help="a harvest folder or an n×d .npy matrix")
    p.add_argument("--out", required=True, help="output folder (SAELens layout + checkpoint)")
    p.add_argument("--layer", type=int, help="layer of a multi-layer harvest")
    p.add_argument("--arch", choices=("jumprelu", "standard"), default="jumprelu",
                   help="jumprelu = TSAE (default), standard = ReLU + L1")
    p.add_argument("--width", type=int, help="number of latents N (default 4·d)")
    p.add_argument("--target-l0", type=float, default=32.0,
                   help="target L0 (TSAE controller; for standard, ≤ 0 keeps --l1 fixed)")
    p.add_argument("--l1", type=float, default=1e-2, help="initial L1 coefficient (standard)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=1024, help="tokens per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--whiten", action="store_true", help="train in AIP-whitened coordinates")
    p.add_argument("--held-out", type=float, default=0.1,
                   help="fraction of contexts kept out of training and scored (0: none)")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps (0: never)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an SAE (and checkpoint) already in OUT (default: refuse)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="train on an interrupted harvest (manifest complete: false)")
    p.add_argument("--seed", type=int, default=0, help="random seed (≥ 0)")
    p.add_argument("--device", default="cpu",
                   help="training device, e.g. cuda, cuda:1 (default cpu); a checkpoint "
                        "resumes on any device")
    _add_threads(p)
    add_output_args(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser("atoms", help="the paper's table: neurons / features / atoms on an LLM")
    p.add_argument("--model", default="smollm2", help="model to harvest (see harvest --model)")
    _add_model_args(p)
    p.add_argument("--layer", type=int, help="decoder block to study")
    p.add_argument("--tokens", type=int, default=50_000, help="tokens to harvest")
    p.add_argument("--width", type=int, help="latents per SAE (default 4·d)")
    p.add_argument("--target-l0", type=float, default=32.0, help="target L0 of both SAEs")
    p.add_argument("--steps", type=int, default=3000, help="training steps per SAE")
    p.add_argument("--batch", type=int, default=1024, help="tokens per training step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--whiten", action="store_true", help="train the TSAE in AIP coordinates")
    p.add_argument("--held-out", type=float, default=0.2,
                   help="fraction of contexts held out for the table (default 0.2)")
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--text", action="append", help="text source(s) (see harvest --text)")
    p.add_argument("--acts", help="use saved activations (harvest folder or .npy) instead")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="with --acts: accept an interrupted harvest (manifest complete: false)")
    p.add_argument("--features", metavar="SAE",
                   help="an SAE file/folder for the features row (e.g. a Gemma Scope "
                        "params.npz) instead of training the ReLU + L1 baseline")
    p.add_argument("--l1-tokens", type=int, default=256,
                   help="held-out tokens sampled for the exact ℓ1 test")
    p.add_argument("--seed", type=int, default=0, help="random seed (≥ 0)")
    p.add_argument("--out", required=True, help="output folder")
    _add_threads(p)
    add_output_args(p)
    p.set_defaults(func=run_atoms)
