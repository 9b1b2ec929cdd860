"""One sweep cell: train (or load) an SAE, evaluate it on its training tokens and on the held-out
tail, and write the result atomically.

The stream of a layer is the n×H activation matrix X of that layer, in harvest order, without
its massive activations (the rows the engine lists in ``exclude``: ‖xᵢ‖₂ > r · median ‖x‖₂,
:func:`rip_atoms.massive_activations.massive_activation_rows`, r = 10 by default; attention
sinks that would otherwise dominate Σ). Call its kept rows k₀ < k₁ < … < k_{m−1}. With
``held_out`` = h (default 20,000):

* the held-out set is the last h kept rows k_{m−h} … k_{m−1}, the same for every cell;
* a training cell with data scale |M| = ``tokens`` trains on the first |M| kept rows (so every
  cell of a layer sees a prefix of the same stream, disjoint from the tail: |M| ≤ m − h);
* the AIP metric of the layer is S̃ = Σ⁻¹ with Σ = (1/(m − h)) Σ_{j < m−h} x_{k_j} x_{k_j}ᵀ,
  fitted on every kept token before the tail (uncentred, the paper's estimator; ridge as given)
  — one metric per layer, shared by all its cells, so their R² AIP and μ are comparable. It is
  refitted in each task (deterministic, ~1 s) rather than shipped around.

**Training rule** ("to convergence on the slice"): steps = clip(⌈E·|M| / B⌉, S_min, S_max) with
E = ``epochs`` passes over the slice, B = min(``batch_size``, |M|), a floor S_min so a small
slice is not under-trained (it is seen more than E times) and a ceiling S_max so the grid's
cost stays bounded (a slice with E·|M|/B > S_max is seen fewer than E times; the cell records
its epochs). The learning-rate schedule (warm-up, final decay) spans those steps; the training
R² of the last logged steps is recorded so convergence can be checked per cell.

**Evaluation** on both splits with :func:`rip_atoms.criteria.compare_units` (one row, the SAE as
a unit set): R² in the AIP and Euclidean norms, q*_quantile, q*_support, the ℓ1-certified
fraction on ``l1_tokens`` sampled tokens, μ (float64, with the per-atom μ quantiles), mean L0,
dead atoms (zero decoder rows) and never-active atoms (live atoms that fire on no token of the
split). The train split's ``never_active`` is over the |M| training tokens.

Cells never raise on bad input: NaN activations, N = 0, a corrupt SAE file… give a result
with ``status = "failed"`` and a one-line ``error``; the engine reports them.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rip_atoms.errors import ParameterError, RipAtomsError, ShapeMismatchError
from rip_atoms.strict_json import dumps, fields_dict
from rip_atoms.sweep.grid import ARCHITECTURES, Cell

__all__ = ["Source", "TrainingRule", "load_stream", "run_cell", "stream_rows", "take_rows",
           "training_steps", "warm_up"]


@dataclass(frozen=True)
class Source:
    """Where a layer's stream comes from: an n×H ``.npy`` (``layer`` None) or a harvest folder."""

    path: str
    layer: int | None = None

    def to_dict(self) -> dict:
        return fields_dict(self)


@dataclass(frozen=True)
class TrainingRule:
    """Training hyper-parameters of every cell (see the module docstring for the step rule)."""

    epochs: float = 10.0
    min_steps: int = 300
    max_steps: int = 4000
    batch_size: int = 1024
    target_l0: float = 32.0
    lr: float = 1e-3
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ParameterError(f"epochs must be > 0, got {self.epochs}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ParameterError(f"need 1 ≤ min_steps ≤ max_steps, got {self.min_steps}, "
                                 f"{self.max_steps}")
        if self.batch_size < 1:
            raise ParameterError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not (math.isfinite(self.target_l0) and self.target_l0 > 0):
            raise ParameterError(f"target L0 must be > 0, got {self.target_l0}")

    def to_dict(self) -> dict:
        return fields_dict(self, exclude=("device",))  # the device is not a result


def training_steps(tokens: int, rule: TrainingRule) -> tuple[int, int]:
    """(steps, batch) of the rule for a slice of ``tokens`` rows:
    steps = clip(⌈E·|M| / B⌉, S_min, S_max), B = min(batch_size, |M|).

    >>> training_steps(5000, TrainingRule())
    (300, 1024)
    >>> training_steps(80000, TrainingRule())
    (782, 1024)
    """
    batch = min(rule.batch_size, tokens)
    steps = math.ceil(rule.epochs * tokens / batch)
    return int(min(rule.max_steps, max(rule.min_steps, steps))), int(batch)


def load_stream(source: Source) -> np.ndarray:
    """The layer's n×H float32 stream (a read-only memory map for ``.npy``)."""
    p = Path(source.path)
    if p.is_dir():
        from rip_atoms.sae.harvest import ActivationStore

        return ActivationStore(p).array(source.layer)
    from rip_atoms.matrix_files import load_npy

    X = load_npy(p, mmap=True)
    if X.ndim != 2:
        raise ShapeMismatchError(f"{p}: expected an n×H matrix, got shape {X.shape}")
    return X


def stream_rows(n: int, held_out: int, exclude=(), *, source: str = "the stream"
                ) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) of a stream of n tokens without the rows in ``exclude``: the
    held-out rows are the last ``held_out`` kept rows, the fit rows every kept row before them
    (ascending int64 indices into the stream)."""
    rows = np.arange(n, dtype=np.int64)
    if len(exclude):
        rows = np.setdiff1d(rows, np.asarray(exclude, dtype=np.int64))
    if held_out < 1 or held_out >= len(rows):
        raise ParameterError(f"{source}: {len(rows)} tokens (after {n - len(rows)} massive "
                             f"activations) cannot hold a held-out tail of {held_out}")
    return rows[: len(rows) - held_out], rows[len(rows) - held_out:]


def take_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """X[rows] — as a view (no copy) when ``rows`` is a contiguous run."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return X[int(rows[0]): int(rows[-1]) + 1]
    return X[rows]


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and
    ``os.replace`` (readers see the old file or the new one, never a part; mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: dict) -> None:
    """Strict JSON (NaN/inf → null, numpy → Python; :mod:`rip_atoms.strict_json`), atomically."""
    write_text_atomic(path, dumps(obj, indent=1, allow_nan=False))


def _finite(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _split_row(row, per_atom_q: dict | None) -> dict:
    return {"r2_aip": _finite(row.r2_aip), "r2_euclidean": _finite(row.r2_euclidean),
            "q_star_quantile": _finite(row.q_star_quantile),
            "q_star_support": _finite(row.q_star_support),
            "l1_certified": _finite(row.l1_certified_fraction), "l1_sampled": row.l1_sampled,
            "mu": _finite(row.mu), "mu_quantiles": per_atom_q, "mean_l0": _finite(row.mean_l0),
            "dead": row.dead_atoms, "inactive": row.never_active, "n_live": row.n_live}


def _evaluate(sae, X: np.ndarray, metric, kept_rows: np.ndarray, train_rows: np.ndarray,
              held_rows: np.ndarray, *, kind: str, l1_tokens: int, seed: int) -> dict:
    from rip_atoms.coherence import quantile_table
    from rip_atoms.criteria import UnitSet, compare_units, token_split

    unit = UnitSet.from_sae("sae", sae, kind=kind)
    base = token_split(X.shape[0], 0.5, mode="tail")
    out = {}
    for name, rows in (("train", train_rows), ("held_out", held_rows)):
        split = replace(base, fit=np.setdiff1d(kept_rows, rows), eval=rows,
                        held_out=len(rows) / X.shape[0], mode="tail")
        table = compare_units(X, [unit], neurons=False, metric=metric, split=split,
                              l1=l1_tokens > 0, l1_max_tokens=max(1, l1_tokens), seed=seed)
        row = table.rows[0]
        out[name] = _split_row(row, quantile_table(row.stability.per_atom.live_values()))
    return out


def _train(cell: Cell, X: np.ndarray, rule: TrainingRule, out: Path):
    """Train the cell's SAE on X, its |M| training rows."""
    from rip_atoms.sae.train import TrainConfig, train_sae

    if cell.arch not in ARCHITECTURES:
        raise ParameterError(f"architecture {cell.arch!r} is not trainable here (known: "
                             f"{', '.join(ARCHITECTURES)})")
    if cell.n_atoms < 1:
        raise ParameterError(f"N = {cell.n_atoms}: a dictionary needs at least one atom")
    steps, batch = training_steps(cell.tokens, rule)
    kw = {}
    if rule.device != "cpu":
        kw["device"] = rule.device  # TrainConfig.device (the GPU path)
    cfg = TrainConfig(architecture=ARCHITECTURES[cell.arch], width=cell.n_atoms,
                      target_l0=min(rule.target_l0, cell.n_atoms), steps=steps,
                      batch_size=batch, lr=rule.lr, seed=cell.seed, threads=1,
                      log_every=max(1, min(50, steps // 4)), **kw)
    res = train_sae(np.ascontiguousarray(X, dtype=np.float32), cfg,
                    out_dir=out, overwrite=True, progress=False,
                    source=f"layer {cell.layer} tokens [0, {cell.tokens})")
    info = {"steps": steps, "batch_size": batch, "epochs": steps * batch / cell.tokens,
            "r2_train_last": _finite(res.r2), "l0_train_last": _finite(res.l0),
            "train_seconds": res.seconds}
    return res.sae, info


def warm_up() -> float:
    """Pay a worker's one-time costs before its first cell: the imports (torch, the trainer, the
    criteria, the ℓ1 classifier), torch's and BLAS's lazy set-up and numba's cached kernels, by
    running a 16-token cell on random data in memory. Returns the seconds it took.

    Without it the first cell of every fresh worker carries ~2 s that a plain
    ``rip-atoms train`` + ``rip-atoms criteria`` in a warm process does not, which is not the
    cell's cost (``benchmarks/sweep.py`` measures the per-cell overhead on warm workers).
    """
    t0 = time.perf_counter()
    from rip_atoms.metric import fit_metric

    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 8)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="rip-atoms-warm-") as d:
        cell = Cell(layer=None, arch="jumprelu", seed=0, n_atoms=8, tokens=48)
        sae, _info = _train(cell, X[:48], TrainingRule(min_steps=3, max_steps=3, batch_size=16,
                                                   target_l0=2), Path(d))
        _evaluate(sae, X, fit_metric(X[:64]), np.arange(96), np.arange(48), np.arange(64, 96),
                  kind="atoms", l1_tokens=2, seed=0)
    return time.perf_counter() - t0


def run_cell(cell: Cell, source: Source, *, name: str, out_dir: str, rule: TrainingRule,
             held_out: int, ridge: float = 0.0, l1_tokens: int = 64,
             settings: dict | None = None, exclude=()) -> dict:
    """Run one cell and write ``out_dir/cells/<name>.json`` atomically; return the result dict.

    Pure given its arguments (seeded training on one thread, deterministic evaluation), so a
    retry on another worker writes the same numbers. Never raises on bad input: the result
    then has ``status = "failed"`` and a one-line ``error``. ``exclude``: the stream rows left
    out (massive activations; see the module docstring).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    result = {"key": name, "cell": cell.to_dict(), "settings": settings or {}, "status": "ok",
              "error": None, "splits": {}, "training": None, "pid": os.getpid()}
    try:
        X = load_stream(source)
        fit_rows, held_rows = stream_rows(X.shape[0], held_out, exclude, source=source.path)
        from rip_atoms.metric import fit_metric

        metric = fit_metric(take_rows(X, fit_rows), ridge=ridge,
                            source=f"{source.path} (metric tokens)")
        if cell.sae_path is None:
            if not 1 <= cell.tokens <= len(fit_rows):
                raise ParameterError(f"|M| = {cell.tokens} training tokens, but the stream has "
                                     f"{len(fit_rows)} before its held-out tail")
            train_rows = fit_rows[: cell.tokens]
            sae, info = _train(cell, take_rows(X, train_rows), rule, out / "saes" / name)
            result["training"] = info
            kind = "atoms" if cell.arch == "jumprelu" else "features"
        else:
            from rip_atoms.sae.formats import load_sae

            sae = load_sae(cell.sae_path)
            if sae.d_in != X.shape[1]:
                raise ShapeMismatchError(f"{cell.sae_path}: d_in = {sae.d_in} but the "
                                         f"activations have width {X.shape[1]}")
            kind = "atoms" if sae.architecture == "jumprelu" else "features"
            train_rows = fit_rows
        result["n_atoms"] = int(sae.d_sae)
        kept = np.concatenate([fit_rows, held_rows])
        result["splits"] = _evaluate(sae, X, metric, kept, train_rows, held_rows, kind=kind,
                                     l1_tokens=l1_tokens, seed=cell.seed)
    except (RipAtomsError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        result["status"] = "failed"
        msg = str(exc).strip().splitlines()
        result["error"] = f"{type(exc).__name__}: {msg[0] if msg else ''}"[:500]
        if not isinstance(exc, RipAtomsError):
            result["traceback"] = traceback.format_exc(limit=8)
    result["seconds"] = time.perf_counter() - t0
    write_json_atomic(out / "cells" / f"{name}.json", result)
    return result
