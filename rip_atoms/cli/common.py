"""Pieces the subcommands share: JSON output, logging, dictionary and metric arguments, loading
dictionaries and SAEs (the CLI is the layer that dispatches SAE arguments to the torch adapter),
and the torch settings of the adapter's commands. Subcommand modules import only public names
from here, never private ones from each other."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rip_atoms import strict_json
from rip_atoms.dictionary import DEAD_RTOL, Dictionary, is_sae_spec
from rip_atoms.errors import FileFormatError, RipAtomsError, ShapeMismatchError
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
    p.add_argument("--dead-rtol", type=float, default=DEAD_RTOL, metavar="R",
                   help="atoms with norm ≤ R·(largest atom norm) are dead and left out "
                        f"(default {DEAD_RTOL:g}; 0 keeps every non-zero atom)")


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


def load_sae_spec(spec: str | Path):
    """The SAE at ``spec`` (:class:`rip_atoms.sae.SparseAutoencoder`; whether a spec is one is
    :func:`rip_atoms.dictionary.is_sae_spec`'s call), read by the torch adapter (imported here,
    lazily); a missing path or a missing torch is a one-line
    :class:`~rip_atoms.errors.FileFormatError` naming the path."""
    path = Path(spec)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file or folder")
    try:
        from rip_atoms.sae.formats import load_sae
    except ImportError as exc:
        kind = "folder" if path.is_dir() else f"{path.suffix} file"
        raise FileFormatError(
            f"{path}: an SAE {kind} is read by the torch adapter, which needs PyTorch: "
            "pip install 'rip-atoms[torch]'"
        ) from exc
    return load_sae(path)


def load_dictionary_spec(spec: str | Path, *, tensor: str | None = None,
                         rows_are_atoms: bool = False,
                         dead_rtol: float = DEAD_RTOL) -> Dictionary:
    """A DICT argument: an SAE file or folder (:func:`rip_atoms.dictionary.is_sae_spec`) through
    the torch adapter as D = W_decᵀ, anything else through :meth:`Dictionary.load`."""
    if is_sae_spec(spec):
        d = load_sae_spec(spec).dictionary()
        return d if dead_rtol == DEAD_RTOL else d.with_dead_rtol(dead_rtol)
    return Dictionary.load(spec, tensor=tensor, rows_are_atoms=rows_are_atoms,
                           dead_rtol=dead_rtol)


def load_dictionary(args: argparse.Namespace) -> Dictionary:
    """The dictionary the arguments name (``--dead-rtol`` sets the dead-atom threshold)."""
    rtol = getattr(args, "dead_rtol", DEAD_RTOL)
    if not (isinstance(rtol, float | int) and 0 <= rtol < 1):  # NaN fails too
        raise UsageError(f"--dead-rtol must be a number in [0, 1), got {rtol}")
    return load_dictionary_spec(args.dict, tensor=args.tensor,
                                rows_are_atoms=args.rows_are_atoms, dead_rtol=rtol)


def warn_dead_by_threshold(args: argparse.Namespace, d: Dictionary) -> None:
    """One stderr line (unless --quiet) when atoms are dead only because of the relative
    threshold (non-zero, but tiny next to the largest atom), saying why and how to change it.
    Called once the inputs are loaded, so a run that then fails on them still prints exactly
    one line (the error, which carries the same explanation)."""
    dead = d.dead_atoms
    if dead.size and len(d.live_atoms) >= 2 and (d.scaled_norms[dead] > 0).any():
        log(args, f"warning: {d.dead_summary()}")


def int_list(text: str, option: str) -> list[int]:
    """A comma-separated list of integers given to ``option`` (``-k 2,3,8``, ``--support``,
    ``--layers``); an empty list or an empty item (``1,,2``, a trailing comma) is a UsageError
    naming the option."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip():
        raise UsageError(f"{option}: empty list")
    if any(t == "" for t in items):
        raise UsageError(f"{option}: empty item in {text!r} (expected e.g. 1,2,3)")
    try:
        return [int(t) for t in items]
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated integers, got {text!r}") from None


def check_ridge_arg(ridge: float) -> float:
    """--ridge: a finite number ≥ 0 (NaN and ±inf would reach the eigensolver)."""
    if not (math.isfinite(ridge) and ridge >= 0):
        raise UsageError(f"--ridge must be a finite number ≥ 0, got {ridge}")
    return ridge


def require_adapter() -> None:
    """Import the torch adapter (:mod:`rip_atoms.sae`); without torch, a one-line UsageError
    that says what to install."""
    try:
        import rip_atoms.sae  # noqa: F401
    except ImportError as exc:
        raise UsageError(" ".join(str(exc).split())) from exc


def quiet_transformers() -> None:
    """Silence transformers' warnings and progress bars (when it is installed)."""
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


def set_threads(args: argparse.Namespace) -> None:
    """--threads N: torch's intra-op threads for this command (0 keeps torch's default)."""
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)


def torch_dtype(name: str):
    """The torch dtype of a --dtype argument ("float32", "bfloat16" or "float16")."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16,
            "float16": torch.float16}[name]


def load_metric(args: argparse.Namespace, d: Dictionary) -> AIPMetric | None:
    """The metric the arguments ask for: None (raw), (D Dᵀ)⁻¹, or Σ⁻¹ fitted on a file."""
    if args.raw:
        warn_dead_by_threshold(args, d)
        return None
    check_ridge_arg(args.ridge)
    if args.metric == "self":
        metric = AIPMetric.from_dictionary(d, ridge=args.ridge)
        warn_dead_by_threshold(args, d)
        return metric
    path = Path(args.metric)
    X = load_matrix(path, mmap=True)
    if X.shape[1] != d.dim:
        raise ShapeMismatchError(
            f"{path}: activations have width {X.shape[1]} but the dictionary has H = {d.dim}"
        )
    metric = fit_metric(X, center=args.center, ridge=args.ridge, source=str(path))
    log(args, f"fitted the AIP metric on {X.shape[0]} activations from {path} "
              f"(condition number {metric.condition_number:.3g})")
    warn_dead_by_threshold(args, d)
    return metric


METRIC_NAMES = {
    "raw": "raw (Euclidean cosines)",
    "identity": "identity (Euclidean cosines)",
    "dictionary": "AIP, self metric (D Dᵀ)⁻¹",
    "activations": "AIP, fitted on activations",
}
