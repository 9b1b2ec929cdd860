"""Pieces every subcommand shares: JSON output, logging, dictionary and metric arguments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rip_atoms import strict_json
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import RipAtomsError, ShapeMismatchError
from rip_atoms.matrix_files import load_matrix
from rip_atoms.metric import AIPMetric, fit_metric


class UsageError(RipAtomsError):
    """A command-line argument is malformed."""


def emit_json(obj: dict) -> None:
    """Print one strict-JSON object (±inf and NaN become null) on stdout."""
    sys.stdout.write(strict_json.dumps(obj) + "\n")


def log(args: argparse.Namespace, msg: str) -> None:
    """A log line on stderr unless --quiet."""
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


def show_progress(args: argparse.Namespace) -> bool:
    return not (getattr(args, "quiet", False) or getattr(args, "json", False))


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress or logs on stderr")


def add_dictionary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dict", metavar="DICT",
                   help="dictionary: .npy/.safetensors (H×N, columns are atoms) or neurons:H")
    p.add_argument("--tensor", help="tensor name inside a .safetensors file")
    p.add_argument("--rows-are-atoms", action="store_true",
                   help="the matrix is N×H (e.g. an SAE's W_dec)")


def add_metric_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--metric", default="self", metavar="ACTS|self",
                   help="AIP metric: 'self' for (D Dᵀ)⁻¹ (default) or an n×H activations file "
                        "(.npy, memory-mapped, or .safetensors) to fit Σ⁻¹ from")
    g.add_argument("--raw", action="store_true", help="Euclidean cosines (no metric)")
    p.add_argument("--center", action="store_true",
                   help="fit the metric on the covariance instead of the uncentred second moment")
    p.add_argument("--ridge", type=float, default=0.0,
                   help="ridge λ: invert Σ + λ·(tr Σ/H)·I (default 0)")


def load_dictionary(args: argparse.Namespace) -> Dictionary:
    return Dictionary.load(args.dict, tensor=args.tensor, rows_are_atoms=args.rows_are_atoms)


def load_metric(args: argparse.Namespace, d: Dictionary) -> AIPMetric | None:
    """The metric the arguments ask for: None (raw), (D Dᵀ)⁻¹, or Σ⁻¹ fitted on a file."""
    if args.raw:
        return None
    if args.metric == "self":
        return AIPMetric.from_dictionary(d, ridge=args.ridge)
    path = Path(args.metric)
    X = load_matrix(path, mmap=True)
    if X.shape[1] != d.dim:
        raise ShapeMismatchError(
            f"{path}: activations have width {X.shape[1]} but the dictionary has H = {d.dim}"
        )
    metric = fit_metric(X, center=args.center, ridge=args.ridge, source=str(path))
    log(args, f"fitted the AIP metric on {X.shape[0]} activations from {path} "
              f"(condition number {metric.condition_number:.3g})")
    return metric


METRIC_NAMES = {
    "raw": "raw (Euclidean cosines)",
    "identity": "identity (Euclidean cosines)",
    "dictionary": "AIP, self metric (D Dᵀ)⁻¹",
    "activations": "AIP, fitted on activations",
}
