"""What an output carries so that :mod:`rip_atoms.check` can re-check its claims on its own.

The ``"proof"`` section of a JSON output (``rip``/``spark``/``coherence --json``, the report)::

    {"format": "rip-atoms-proof/1",
     "atoms": {"analysis": ATOMS, "raw": ATOMS},        # "raw": the report's raw geometry
     "certificates": {"nonneg": bool, "kept": "...",
                      "codes": [{"code", "support", "signs", "y", "bound"}]},
     "failures": {"nonneg": bool,
                  "codes": [{"code", "support", "values", "witness_support", "witness_values"}]}}

    ATOMS = {"dim": H, "n_atoms": N, "condition_number": κ, "index": [atoms] or null (all),
             "rows": base64 of the float64 little-endian rows d̃ᵢ (len(index)×H, C order)}
        or the same with "file", "key", "sha256" (of those bytes) instead of "rows": the rows
        are array ``key`` of the ``.npz`` file beside the output.

Rows are the unit atoms d̃ᵢ = W dᵢ/‖W dᵢ‖ in float64 (W = S̃^{1/2}; raw: dᵢ/‖dᵢ‖; dead atoms
zero), the matrix every certificate and witness of the library is a statement about. ``y``
is base64 float64 too; code values are JSON floats (exact: Python writes the shortest repr
that reads back the same double).
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

from rip_atoms.corrected_atoms import resolve_metric
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import SingularMetricError
from rip_atoms.metric import AIPMetric

FORMAT = "rip-atoms-proof/1"


def b64(a: np.ndarray) -> str:
    """base64 of the float64 little-endian bytes of ``a`` (C order)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def sha256(a: np.ndarray) -> str:
    """SHA-256 of the float64 little-endian bytes of ``a`` (C order), as the checker hashes."""
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f8").tobytes()).hexdigest()


def unit_rows(d: Dictionary, metric: AIPMetric | None, atoms) -> np.ndarray:
    """float64 rows d̃ᵢ = W dᵢ/‖W dᵢ‖ (|atoms|×H; zero rows for dead atoms), computed now."""
    atoms = np.asarray(atoms, dtype=np.int64)
    X = d.scaled_columns(atoms)
    if metric is not None:
        X = metric.W @ X
    n = np.linalg.norm(X, axis=0)
    dead = np.zeros(d.n_atoms, dtype=bool)
    dead[d.dead_atoms] = True
    keep = (n > 0) & ~dead[atoms]
    R = np.zeros((len(atoms), d.dim))
    R[keep] = (X[:, keep] / n[keep]).T
    return R


def kappa(metric: AIPMetric | None) -> float:
    """The metric's condition number (1 for raw cosines): the checker's cosine tolerance."""
    return 1.0 if metric is None else float(metric.condition_number)


def atoms_entry(rows: np.ndarray, index, n_atoms: int, cond: float) -> dict:
    """An inline ATOMS entry (module docstring); ``index`` None: every atom, in order."""
    rows = np.asarray(rows, dtype=np.float64)
    return {"dim": int(rows.shape[1]), "n_atoms": int(n_atoms), "condition_number": cond,
            "index": None if index is None else [int(i) for i in index], "rows": b64(rows)}


def witness_proof(d: Dictionary, metric: AIPMetric | str | None, supports) -> dict:
    """The proof section of a rip/spark/coherence output: the rows of every atom that one of
    ``supports`` (iterables of atom indices) names, under ``metric`` ("self", "raw", None or
    an :class:`AIPMetric`; "self" is raw when D Dᵀ is singular, as in the searches)."""
    try:
        m = resolve_metric(d, metric)
    except SingularMetricError:  # "self" with D Dᵀ singular: the library used raw geometry
        m = None
    index = sorted({int(a) for S in supports for a in S})
    return {"format": FORMAT, "atoms": {"analysis": atoms_entry(
        unit_rows(d, m, index).reshape(len(index), d.dim), index, d.n_atoms, kappa(m))}}


def rip_supports(res) -> list:
    """The witness supports of a :class:`rip_atoms.rip.RIPResult`."""
    return [list(b.witness_U) + list(b.witness_L) for b in res.brackets]


def spark_supports(res, dim: int) -> list:
    """The null-vector supports of a :class:`rip_atoms.spark.SparkResult` (the proven side and
    the side within the input's precision) that need rows (a witness of more than H atoms is
    dependent by dimension alone)."""
    out = []
    for w in (res.witness, res.witness_within_precision):
        w = [] if w is None else list(w)
        if 0 < len(w) <= dim:
            out.append(w)
    return out
