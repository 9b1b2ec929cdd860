"""``rip-atoms recover DICT --codes CODES`` and ``rip-atoms phase-transition``.

``recover`` classifies every code (row of CODES, tokens × atoms) as certified / failed /
undetermined by exact ℓ1 recovery (:func:`rip_atoms.recovery.classify_recovery`);
``phase-transition`` measures basis pursuit's success rate against k on Gaussian dictionaries
beside the Donoho–Tanner prediction (:func:`rip_atoms.recovery.phase_transition`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from rip_atoms.cli.common import (
    METRIC_NAMES,
    UsageError,
    add_dictionary_args,
    add_metric_args,
    add_output_args,
    emit_json,
    load_dictionary,
    load_metric,
    log,
    show_progress,
)
from rip_atoms.errors import FileFormatError, InvalidCodeError
from rip_atoms.matrix_files import load_npy
from rip_atoms.recovery import MARGIN, classify_recovery, phase_transition


def load_codes(path: str | Path):
    """Codes as a tokens × atoms matrix: a dense ``.npy`` (memory-mapped, no pickle) or a
    scipy-sparse ``.npz`` written by ``scipy.sparse.save_npz`` (read with allow_pickle=False)."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_npy(path, mmap=True)
    if suffix == ".npz":
        import scipy.sparse as sp

        try:
            return sp.load_npz(path)
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise FileFormatError(f"{path}: holds Python objects (pickle), not a sparse "
                                      "matrix") from exc
            raise FileFormatError(f"{path}: not a scipy.sparse .npz (save_npz): {exc}") from exc
        except (KeyError, OSError, EOFError) as exc:
            raise FileFormatError(
                f"{path}: truncated or not a scipy.sparse .npz written by save_npz ({exc})"
            ) from exc
    raise FileFormatError(
        f"{path}: codes must be a dense .npy or a scipy.sparse .npz (tokens × atoms)"
    )


def summarize(res, source: str, codes: str) -> str:
    """Human-readable summary of a :class:`RecoveryResult`."""
    metric = METRIC_NAMES.get(res.metric.get("kind"), res.metric.get("kind"))
    methods = ", ".join(f"{k} {v}" for k, v in res.methods.items() if v)
    lines = [
        f"dictionary   {source}: H = {res.dim}, N = {res.n_atoms}",
        f"codes        {codes}: {res.n} ({'non-negative' if res.nonneg else 'signed'} "
        "basis pursuit)",
        f"metric       {metric}",
        f"certified    {res.certified}   (unique ℓ1 solution, certificate < 1 − {res.margin:g})",
        f"failed       {res.failed}   (a feasible code with no larger ℓ1 norm was found)",
        f"undetermined {res.undetermined}",
        f"decided by   {methods or '—'}",
        f"time         {res.seconds:.2f} s",
    ]
    if res.invalid:
        lines.insert(6, f"invalid      {res.invalid}")
    return "\n".join(lines)


def run_recover(args: argparse.Namespace) -> int:
    d = load_dictionary(args)
    m = load_metric(args, d)
    codes = load_codes(args.codes)
    res = classify_recovery(
        d, codes, nonneg=args.nonneg, metric=m if m is not None else "raw",
        margin=args.margin, chunk_size=args.chunk_size, max_iter=args.max_iter,
        witness_iters=args.witness_iters, lp=not args.no_lp, lp_time_limit=args.lp_time_limit,
        blas_threads=args.threads or None, progress=show_progress(args), out=args.out,
        source=str(args.codes),
    )
    if res.n and res.invalid == res.n:
        first = res.invalid_examples(1)[0]
        raise InvalidCodeError(
            f"{args.codes}: none of the {res.n} codes can be used (code {first['index']}: "
            f"{first['reason']})"
        )
    if res.invalid:
        ex = "; ".join(f"code {e['index']}: {e['reason']}" for e in res.invalid_examples(3))
        log(args, f"rip-atoms: warning: {args.codes}: {res.invalid} of {res.n} codes are "
                  f"invalid and were skipped ({ex})")
    if args.json:
        out = res.to_dict()
        out["source"] = d.provenance.to_dict()
        out["codes"] = str(args.codes)
        out["out"] = str(args.out) if args.out else None
        emit_json(out)
    else:
        print(summarize(res, d.provenance.source, str(args.codes)))
        if args.out:
            print(f"per-code     {args.out}")
    return 0


_RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


def parse_k(text: str) -> list[int]:
    """``START:STOP[:STEP]`` (both ends included when on the grid) or ``k1,k2,...``."""
    m = _RANGE.match(text)
    if m:
        start, stop = int(m.group(1)), int(m.group(2))
        step = int(m.group(3)) if m.group(3) else 1
        if step < 1 or stop < start:
            raise UsageError(f"--k {text}: need START ≤ STOP and STEP ≥ 1")
        return list(range(start, stop + 1, step))
    try:
        ks = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--k {text}: expected START:STOP:STEP or a comma list") from None
    if not ks:
        raise UsageError(f"--k {text}: no sparsity given")
    return ks


def run_phase(args: argparse.Namespace) -> int:
    ks = parse_k(args.k)
    res = phase_transition(
        args.dim, args.atoms, ks, args.trials, nonneg=args.nonneg, seed=args.seed,
        witness_iters=args.witness_iters, progress=show_progress(args),
    )
    if args.json:
        emit_json(res.to_dict())
        return 0
    kind = "non-negative" if res.nonneg else "signed"
    print(f"Gaussian {res.dim}×{res.n_atoms}, {kind} codes, {res.trials} trials per k "
          f"(seed {res.seed})")
    for k, r, u in zip(res.ks, res.success_rate, res.undetermined, strict=True):
        bar = "#" * int(round(40 * r)) if np.isfinite(r) else ""
        extra = f"  ({u} undetermined)" if u else ""
        print(f"  k = {int(k):4d}  {r:6.3f}  {bar}{extra}")
    k50 = "—" if res.k50_empirical is None else f"{res.k50_empirical:.1f}"
    print(f"empirical 50% point  k = {k50}")
    print(f"Donoho–Tanner        k_W = ρ_W·H = {res.rho_weak:.4f}·{res.dim} = {res.k_weak:.1f}")
    print(f"time                 {res.seconds:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recover", help="certify (or refute) exact ℓ1 recovery of given codes")
    add_dictionary_args(p)
    p.add_argument("--codes", required=True, metavar="CODES",
                   help="tokens × atoms codes: dense .npy or scipy.sparse .npz (save_npz)")
    p.add_argument("--nonneg", action="store_true",
                   help="non-negative basis pursuit (min 1ᵀx s.t. D̃x = y, x ≥ 0; SAE codes)")
    add_metric_args(p)
    p.add_argument("--out", metavar="FILE.npz", help="write the per-code results here")
    p.add_argument("--margin", type=float, default=MARGIN,
                   help=f"certified when the certificate bound < 1 − margin (default {MARGIN:g})")
    p.add_argument("--chunk-size", type=int, default=1024, help="codes per batch")
    p.add_argument("--max-iter", type=int, default=None,
                   help="homotopy (LARS) iteration cap (default 8·max(H, 100))")
    p.add_argument("--witness-iters", type=int, default=100,
                   help="ADMM iterations of the batched failure-witness search (0: skip)")
    p.add_argument("--no-lp", action="store_true", help="never fall back to the exact LP")
    p.add_argument("--lp-time-limit", type=float, default=60.0,
                   help="seconds per code for the exact certificate LP (HiGHS)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads for the batched stages (0: the BLAS default; default 1)")
    add_output_args(p)
    p.set_defaults(func=run_recover)

    q = sub.add_parser("phase-transition",
                       help="ℓ1 recovery success rate vs k on Gaussian dictionaries, with ρ_W")
    q.add_argument("--dim", type=int, required=True, metavar="M", help="H, rows")
    q.add_argument("--atoms", type=int, required=True, metavar="N", help="N, atoms")
    q.add_argument("--k", required=True, metavar="START:STOP:STEP",
                   help="sparsities: START:STOP:STEP (ends included) or k1,k2,...")
    q.add_argument("--trials", type=int, default=20, metavar="T", help="trials per k")
    q.add_argument("--nonneg", action="store_true", help="non-negative codes (ρ_W⁺)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--witness-iters", type=int, default=100,
                   help="ADMM iterations of the failure-witness search (0: skip)")
    add_output_args(q)
    q.set_defaults(func=run_phase)

