"""``rip-atoms theorems`` (the executable theorem suite) and ``rip-atoms criteria`` (the paper's
comparison table — R², q*, ℓ1-certified fraction, μ, L0 — on stored activations and unit sets)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rip_atoms.cli.common import (
    UsageError,
    add_output_args,
    check_ridge_arg,
    emit_json,
    load_dictionary_spec,
    log,
)
from rip_atoms.criteria import UnitSet, compare_units, token_split
from rip_atoms.errors import FileFormatError, ShapeMismatchError
from rip_atoms.matrix_files import load_matrix, load_npy
from rip_atoms.metric import fit_metric
from rip_atoms.theorems import THEOREMS, run_theorems

UNITS_HELP = """\
unit-set specifications (one or more):
  neurons                      the neuron basis (D = I, code = x); included unless --no-neurons
  NAME=DICT[:rows][,KEY=VALUE]...
      DICT      .npy or .safetensors decoder, H×N with atoms as columns; ':rows' if the file is
                N×H (an SAE's W_dec)
      codes=P   precomputed codes, tokens×atoms, rows aligned with --acts: .npy (dense) or .npz
                (scipy.sparse.save_npz); without codes=, codes are computed by non-negative
                least squares (small dictionaries only)
      bias=P    decoder bias b_dec (.npy, H values): x̂ = D δ + b_dec
      tensor=T  tensor name inside a .safetensors decoder
      kind=K    label in the table (default: the NAME if it is features/atoms, else features
                for given codes and dictionary for NNLS codes)
examples:
  rip-atoms criteria --acts acts.npy --units neurons \\
      features=sae/W_dec.npy:rows,codes=sae/codes.npz,bias=sae/b_dec.npy \\
      atoms=tsae/W_dec.npy:rows,codes=tsae/codes.npz --json
"""


# ------------------------------------------------------------------------------ theorems
def run_theorems_cmd(args: argparse.Namespace) -> int:
    if args.max_examples < 1:
        raise UsageError(f"theorems: --max-examples must be ≥ 1, got {args.max_examples}")
    if args.seed < 0:
        raise UsageError(f"theorems: --seed must be ≥ 0, got {args.seed}")
    res = run_theorems(max_examples=args.max_examples, seed=args.seed, names=args.only,
                       progress=None if args.quiet else (lambda m: log(args, m)))
    if args.json:
        emit_json(res.to_dict())
    else:
        for r in res.results:
            mark = "ok  " if r.as_documented else "FAIL"
            verdict = "holds" if r.passed else "counterexample"
            print(f"{mark} {r.name:<30s} {verdict:<15s} {r.examples:>5d} examples "
                  f"({r.discarded} discarded)  expected: {r.expected}")
            if r.counterexample is not None and r.corrected_statement:
                print(f"     corrected: {r.corrected_statement}")
        print(f"all as documented: {res.all_as_documented}  ({res.seconds:.1f} s, seed "
              f"{res.seed}, {res.max_examples} examples per theorem)")
    return 0 if res.all_as_documented else 1


# ------------------------------------------------------------------------------ criteria
def _load_vector(path: str, dim: int, what: str) -> np.ndarray:
    p = Path(path)
    try:
        arr = load_npy(p) if p.suffix.lower() == ".npy" else load_matrix(p)
    except FileNotFoundError as exc:
        raise FileFormatError(f"{p}: no such file ({what})") from exc
    except (OSError, ValueError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"{p}: cannot read {what}: {exc}") from exc
    v = np.asarray(arr, dtype=np.float64).reshape(-1)
    if v.size != dim:
        raise ShapeMismatchError(f"{p}: {what} has {v.size} values but H = {dim}")
    return v


def _load_codes(path: str, n_tokens: int, n_atoms: int):
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{p}: no such file (codes)")
    if p.suffix.lower() == ".npz":
        try:
            C = sp.load_npz(p)
        except (OSError, ValueError, KeyError) as exc:
            raise FileFormatError(f"{p}: not a scipy sparse .npz ({exc})") from exc
    else:
        C = load_matrix(p, mmap=True)
    if C.shape != (n_tokens, n_atoms):
        raise ShapeMismatchError(f"{p}: codes of shape {tuple(C.shape)}, expected "
                                 f"{n_tokens}×{n_atoms} (tokens of --acts × atoms)")
    return C


_SPEC = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)=(?P<rest>.+)")
_KEYS = ("codes", "bias", "tensor", "kind")


def parse_unit_spec(spec: str, n_tokens: int, dim: int) -> UnitSet | None:
    """One --units SPEC → a UnitSet (None for ``neurons``, which is built in)."""
    if spec == "neurons":
        return None
    m = _SPEC.fullmatch(spec)
    if not m:
        raise UsageError(f"--units {spec!r}: expected 'neurons' or NAME=DICT[:rows][,KEY=VALUE]")
    name, parts = m.group("name"), m.group("rest").split(",")
    dict_part, opts = parts[0], {}
    for item in parts[1:]:
        if "=" not in item:
            raise UsageError(f"--units {spec!r}: '{item}' is not KEY=VALUE")
        k, v = item.split("=", 1)
        if k not in _KEYS:
            raise UsageError(f"--units {spec!r}: unknown key '{k}' (known: {', '.join(_KEYS)})")
        opts[k] = v
    rows = dict_part.endswith(":rows")
    path = dict_part[: -len(":rows")] if rows else dict_part
    d = load_dictionary_spec(path, tensor=opts.get("tensor"), rows_are_atoms=rows)
    if d.dim != dim:
        raise ShapeMismatchError(f"{path}: decoder has H = {d.dim} but the activations have "
                                 f"width {dim}" + ("" if rows else " (N×H file? add ':rows')"))
    bias = _load_vector(opts["bias"], dim, "decoder bias") if "bias" in opts else None
    default_kind = name if name in ("features", "atoms") else (
        "features" if "codes" in opts else "dictionary")
    kind = opts.get("kind", default_kind)
    if "codes" in opts:
        C = _load_codes(opts["codes"], n_tokens, d.n_atoms)
        return UnitSet.from_codes(name, d, C, decoder_bias=bias, kind=kind)
    return UnitSet.from_dictionary(name, d, decoder_bias=bias, kind=kind)


def run_criteria(args: argparse.Namespace) -> int:
    check_ridge_arg(args.ridge)
    if args.seed < 0:
        raise UsageError(f"criteria: --seed must be ≥ 0, got {args.seed}")
    if args.l1_tokens < 0:
        raise UsageError(f"criteria: --l1-tokens must be ≥ 0 (0: all), got {args.l1_tokens}")
    X = load_matrix(args.acts, mmap=True)
    n, H = X.shape
    units = []
    neurons = not args.no_neurons
    if args.no_neurons and args.units == ["neurons"]:
        raise UsageError("criteria: --no-neurons leaves no unit sets (give --units NAME=DICT …)")
    for spec in args.units:
        u = parse_unit_spec(spec, n, H)
        if u is None:
            neurons = True
        else:
            units.append(u)
    if not units and not neurons:
        raise UsageError("criteria: no unit sets (give --units, or drop --no-neurons)")
    split = token_split(n, args.held_out, mode=args.split, seed=args.seed)
    metric = "fit"
    if args.metric != "fit":
        M = load_matrix(args.metric, mmap=True)
        if M.shape[1] != H:
            raise ShapeMismatchError(f"{args.metric}: width {M.shape[1]} but --acts has {H}")
        metric = fit_metric(M, center=args.center, ridge=args.ridge, source=args.metric)
    l1_tokens = None if args.l1_tokens == 0 else args.l1_tokens
    res = compare_units(X, units, neurons=neurons, metric=metric, split=split, ridge=args.ridge,
                        center=args.center, l1=not args.no_l1, l1_max_tokens=l1_tokens,
                        seed=args.seed, log=None if args.quiet else (lambda m: log(args, m)),
                        source=str(args.acts))
    if args.json:
        out = res.to_dict(detail=not args.brief)
        out["acts"] = {"path": str(args.acts), "shape": [int(n), int(H)]}
        out["units_specs"] = list(args.units)
        emit_json(out)
    else:
        print(res.render())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(t.name for t in THEOREMS)
    p = sub.add_parser(
        "theorems", help="run the executable theorem suite (RIP, uniqueness, ℓ1, TSAE, AIP …)",
        description="Check each of the paper's theorems on seeded random examples whose "
                    "hypotheses are verified first. Exit status 0 when every theorem behaves as "
                    "documented (passes, or — for the documented false claims — yields its "
                    "counterexample), 1 otherwise. Theorems: " + names)
    p.add_argument("--max-examples", type=int, default=200, metavar="N",
                   help="examples (meeting the hypotheses) per theorem (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these theorems")
    add_output_args(p)
    p.set_defaults(func=run_theorems_cmd)

    q = sub.add_parser(
        "criteria", help="the paper's table: R², q*, ℓ1-certified fraction, μ, L0 per unit set",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare unit sets (neurons, features, atoms) on stored activations: R² in "
                    "the AIP and Euclidean norms, q* (quantile and support readings), the "
                    "ℓ1-certified fraction, μ, mean L0, dead and never-active atoms. The AIP "
                    "metric is fitted on the metric-fitting tokens and every criterion is "
                    "computed on the held-out tokens.",
        epilog=UNITS_HELP)
    q.add_argument("--acts", required=True, metavar="ACTS",
                   help="activations, n×H (.npy, memory-mapped, or .safetensors)")
    q.add_argument("--units", nargs="+", default=["neurons"], metavar="SPEC",
                   help="unit sets (see below; default: neurons)")
    q.add_argument("--no-neurons", action="store_true", help="leave the neuron row out")
    q.add_argument("--held-out", type=float, default=0.5, metavar="F",
                   help="fraction of tokens evaluated (default 0.5); the rest fit the metric")
    q.add_argument("--split", choices=["random", "tail", "all"], default="random",
                   help="which tokens are held out: seeded random (default), the last ones, or "
                        "all (no hold-out)")
    q.add_argument("--metric", default="fit", metavar="fit|ACTS2",
                   help="'fit' (Σ⁻¹ of the metric-fitting tokens, default) or another "
                        "activations file to fit Σ⁻¹ on")
    q.add_argument("--ridge", type=float, default=0.0, help="ridge λ for the metric")
    q.add_argument("--center", action="store_true", help="fit the metric on the covariance")
    q.add_argument("--l1-tokens", type=int, default=256, metavar="N",
                   help="sampled held-out tokens for the exact ℓ1 test (default 256; 0 = all)")
    q.add_argument("--no-l1", action="store_true", help="skip the ℓ1 test")
    q.add_argument("--seed", type=int, default=0, help="seed of the split and the ℓ1 sample")
    q.add_argument("--brief", action="store_true",
                   help="with --json: the table only, without per-row distributions")
    add_output_args(q)
    q.set_defaults(func=run_criteria)
