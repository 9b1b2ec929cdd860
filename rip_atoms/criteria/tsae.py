"""The TSAE identifiability window and a trained TSAE's thresholds against it.

For corrected atoms D̃ with coherence ε (|⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε, i ≠ j), codes with at most K non-zeros
and non-zero magnitudes in [δ_min, δ_max], every threshold τ with
εKδ_max < τ < δ_min − ε(K − 1)δ_max recovers every support with W_enc = D̃ᵀ (i.e. Dᵀ S̃ for
AIP-unit atoms), W_dec = D; the window is non-empty iff δ_min > ε(2K − 1)δ_max (docs/design.md, "The
paper's criteria"; the paper's TSAE identifiability theorem).

* :func:`tsae_window` — the window (or its infeasibility);
* :func:`check_thresholds` — a trained TSAE's thresholds against it;
* :func:`tsae_encoder` — the identifiable encoder of the theorem, in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rip_atoms.codes import Encoder
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import NonFiniteError, ParameterError, ShapeMismatchError
from rip_atoms.metric import AIPMetric

__all__ = ["TSAEWindow", "ThresholdCheck", "check_thresholds", "tsae_encoder", "tsae_window"]


@dataclass(frozen=True)
class TSAEWindow:
    """The TSAE identifiability window for AIP-normalised atoms with coherence ε, K-sparse codes
    and non-zero magnitudes in [δ_min, δ_max]: every threshold τ with
    ``lower`` = εKδ_max < τ < ``upper`` = δ_min − ε(K − 1)δ_max recovers every support with
    W_enc = D̃ᵀ (i.e. Dᵀ S̃ for AIP-unit atoms), W_dec = D. Feasible iff
    δ_min > ε(2K − 1)δ_max (``margin`` = upper − lower = δ_min − ε(2K − 1)δ_max > 0)."""

    eps: float
    K: int
    delta_min: float
    delta_max: float
    lower: float
    upper: float
    feasible: bool
    margin: float

    @property
    def statement(self) -> str:
        if self.feasible:
            return (f"thresholds τ in ({self.lower:.6g}, {self.upper:.6g}) recover every support "
                    f"(ε = {self.eps:.6g}, K = {self.K}, δ ∈ [{self.delta_min:.6g}, "
                    f"{self.delta_max:.6g}])")
        return (f"infeasible: δ_min = {self.delta_min:.6g} ≤ ε(2K − 1)δ_max = "
                f"{self.eps * (2 * self.K - 1) * self.delta_max:.6g} (ε = {self.eps:.6g}, "
                f"K = {self.K}); no threshold is guaranteed to recover every support")

    def contains(self, tau: np.ndarray | float) -> np.ndarray | bool:
        """lower < τ < upper (elementwise)."""
        t = np.asarray(tau, dtype=np.float64)
        out = (t > self.lower) & (t < self.upper)
        return bool(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        return {
            "eps": self.eps, "K": self.K, "delta_min": self.delta_min,
            "delta_max": self.delta_max, "lower": self.lower, "upper": self.upper,
            "feasible": self.feasible, "margin": self.margin, "statement": self.statement,
        }


def tsae_window(eps: float, K: int, delta_min: float, delta_max: float) -> TSAEWindow:
    """The feasible threshold interval εKδ_max < τ < δ_min − ε(K − 1)δ_max (or infeasibility).

    Hypotheses of the theorem it comes from (the paper's TSAE identifiability theorem): AIP-unit
    atoms with |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε (i ≠ j), codes with at most K non-zeros, each non-zero
    δⱼ ∈ [δ_min, δ_max] (non-negative codes with σ_τ(z) = z·1[z > τ]; for signed codes the same
    window applies to |z|). Pre-activations z = D̃ᵀD̃δ satisfy zⱼ ≥ δ_min − (K − 1)εδ_max on the
    support and |zⱼ| ≤ Kεδ_max off it.

    Parameters
    ----------
    eps : float
        ε ∈ [0, 1], the coherence of the corrected atoms.
    K : int
        The largest number of non-zeros of a code (≥ 1).
    delta_min, delta_max : float
        The range of non-zero code magnitudes, 0 < δ_min ≤ δ_max.

    Returns
    -------
    TSAEWindow

    Examples
    --------
    >>> w = tsae_window(0.1, 2, 1.0, 1.5)
    >>> round(w.lower, 12), round(w.upper, 12), w.feasible
    (0.3, 0.85, True)
    >>> tsae_window(0.3, 3, 1.0, 1.0).feasible  # δ_min ≤ ε(2K − 1)δ_max
    False
    """
    if isinstance(K, bool) or not float(K).is_integer() or K < 1:
        raise ParameterError(f"TSAE window: K must be an integer ≥ 1, got {K}")
    for name, v in (("eps", eps), ("delta_min", delta_min), ("delta_max", delta_max)):
        if not np.isfinite(v):
            raise ParameterError(f"TSAE window: {name} must be finite, got {v}")
    if not 0.0 <= eps <= 1.0:
        raise ParameterError(f"TSAE window: eps must be in [0, 1], got {eps}")
    if not 0.0 < delta_min <= delta_max:
        raise ParameterError(f"TSAE window: need 0 < delta_min ≤ delta_max, got "
                             f"[{delta_min}, {delta_max}]")
    K = int(K)
    lower = eps * K * delta_max
    upper = delta_min - eps * (K - 1) * delta_max
    margin = delta_min - eps * (2 * K - 1) * delta_max
    return TSAEWindow(eps=float(eps), K=K, delta_min=float(delta_min),
                      delta_max=float(delta_max), lower=float(lower), upper=float(upper),
                      feasible=bool(margin > 0), margin=float(margin))


@dataclass(frozen=True)
class ThresholdCheck:
    """A trained TSAE's thresholds against the identifiability window (in AIP-normalised code
    units: τ̂ⱼ = τⱼ·‖dⱼ‖_S when atom norms were given). ``below``: τ̂ⱼ ≤ lower (cross-talk may
    pass); ``above``: τ̂ⱼ ≥ upper (true atoms may be cut). When the window is infeasible
    (upper < lower) a threshold in [upper, lower] is both, counted in ``n_both``."""

    window: TSAEWindow
    n_latents: int
    n_inside: int
    n_below: int
    n_above: int
    below: np.ndarray = field(repr=False)
    above: np.ndarray = field(repr=False)
    tau_min: float = 0.0
    tau_max: float = 0.0
    scaled: bool = False
    n_both: int = 0  # below and above at once: only when the window is infeasible

    @property
    def fraction_inside(self) -> float:
        return self.n_inside / self.n_latents

    @property
    def all_inside(self) -> bool:
        return self.n_inside == self.n_latents

    def to_dict(self) -> dict:
        return {
            "window": self.window.to_dict(),
            "n_latents": self.n_latents,
            "n_inside": self.n_inside,
            "n_below": self.n_below,
            "n_above": self.n_above,
            "n_both": self.n_both,
            "fraction_inside": self.fraction_inside,
            "all_inside": self.all_inside,
            "below": self.below[:100].tolist(),
            "above": self.above[:100].tolist(),
            "tau_min": self.tau_min,
            "tau_max": self.tau_max,
            "scaled_by_atom_norms": self.scaled,
        }


def check_thresholds(
    thresholds: np.ndarray | float,
    window: TSAEWindow | None = None,
    *,
    eps: float | None = None,
    K: int | None = None,
    delta_min: float | None = None,
    delta_max: float | None = None,
    atom_norms: np.ndarray | None = None,
) -> ThresholdCheck:
    """Compare a TSAE's thresholds (a scalar or one per latent) with the window.

    Give the ``window`` or its four parameters. The window is in units of codes over
    AIP-normalised atoms; a TSAE whose decoder atoms dⱼ have AIP norms nⱼ = ‖dⱼ‖_S thresholds
    codes in its own units, and its τⱼ corresponds to τⱼ·nⱼ — pass ``atom_norms`` to rescale.
    Latents below the window may let cross-talk through (spurious support), latents above it may
    cut true atoms (missed support). Torch-free: the adapter passes numpy arrays.

    Parameters
    ----------
    thresholds : float or array_like
        τ, a scalar or one per latent.
    window : TSAEWindow, optional
        The window; else built from ``eps``, ``K``, ``delta_min``, ``delta_max``.
    eps, K, delta_min, delta_max : optional
        The window's parameters (see :func:`tsae_window`).
    atom_norms : array_like, optional
        AIP norms ‖dⱼ‖_S of the TSAE's atoms, to rescale τⱼ to normalised units.

    Returns
    -------
    ThresholdCheck
    """
    if window is None:
        if None in (eps, K, delta_min, delta_max):
            raise ParameterError("check_thresholds: give a window or eps, K, delta_min and "
                                 "delta_max")
        window = tsae_window(eps, K, delta_min, delta_max)
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64)).reshape(-1)
    if t.size == 0:
        raise ParameterError("check_thresholds: no thresholds")
    if not np.isfinite(t).all():
        raise NonFiniteError("check_thresholds: the thresholds hold non-finite values")
    scaled = atom_norms is not None
    if scaled:
        n = np.asarray(atom_norms, dtype=np.float64).reshape(-1)
        if t.size == 1:
            t = np.full(n.size, t[0])
        if n.shape != t.shape:
            raise ShapeMismatchError(f"check_thresholds: {t.size} thresholds for {n.size} "
                                     "atom norms")
        t = t * n
    below = np.flatnonzero(t <= window.lower)
    above = np.flatnonzero(t >= window.upper)
    inside = int(t.size - len(np.union1d(below, above)))
    return ThresholdCheck(window=window, n_latents=int(t.size), n_inside=inside,
                          n_below=int(below.size), n_above=int(above.size), below=below,
                          above=above, tau_min=float(t.min()), tau_max=float(t.max()),
                          scaled=scaled, n_both=int(np.intersect1d(below, above).size))


def tsae_encoder(
    D: Dictionary | np.ndarray,
    metric: AIPMetric | str | None,
    thresholds: np.ndarray | float,
    *,
    signed: bool = False,
) -> Encoder:
    """The identifiable TSAE encoder of the theorem, in numpy.

    With AIP-normalised atoms d̂ⱼ = dⱼ/‖dⱼ‖_S, W_enc = D̂ᵀS̃ (so z = D̂ᵀS̃x = D̃ᵀ(Wx)) and
    ĉ = σ_τ(z) = z·1[z > τ] (``signed``: z·1[|z| > τ]); τ is in normalised units (scalar or one
    per atom). Returns codes for the atoms as given, cⱼ = ĉⱼ/‖dⱼ‖_S, so x̂ = D c = D̂ ĉ. Dead
    atoms get code 0.

    Parameters
    ----------
    D : Dictionary or array_like
        The decoder, H×N, columns are atoms.
    metric : AIPMetric, "self", "raw" or None
        The AIP metric S̃ (None and "raw": Euclidean).
    thresholds : float or array_like
        τ in normalised units, a scalar or one per atom.
    signed : bool
        Threshold |z| instead of z.

    Returns
    -------
    callable
        The encoder: an m×H array of activations → its m×N codes.
    """
    atoms = CorrectedAtoms(D, metric, rows=False)
    d = atoms.dictionary
    norms = atoms.norms
    live = atoms.live
    Dn = np.zeros((d.dim, d.n_atoms))
    Dn[:, live] = d.columns(live) / norms[live]
    S = np.eye(d.dim) if atoms.metric is None else atoms.metric.S
    W_enc = Dn.T @ S  # N×H
    tau = np.asarray(thresholds, dtype=np.float64)
    if tau.ndim and tau.shape != (d.n_atoms,):
        raise ShapeMismatchError(f"tsae_encoder: {tau.size} thresholds for N = {d.n_atoms}")
    inv = np.zeros(d.n_atoms)
    inv[live] = 1.0 / norms[live]

    def encode(X: np.ndarray) -> np.ndarray:
        Z = np.asarray(X, dtype=np.float64) @ W_enc.T
        keep = (np.abs(Z) > tau) if signed else (Z > tau)
        return np.where(keep, Z, 0.0) * inv

    return encode

