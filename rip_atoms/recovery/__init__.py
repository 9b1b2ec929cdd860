"""Exact ℓ1 recovery of given codes, with a proof for every answer; and the phase transition.

Notation (docs/design.md, "Exact ℓ1 recovery of a given code"). D̃ ∈ R^{H×N} has unit columns d̃ᵢ
(the AIP-corrected atoms W dᵢ/‖W dᵢ‖, or dᵢ/‖dᵢ‖ for the raw metric). A code δ over D *as given*
becomes δ̃ᵢ = ‖W dᵢ‖·δᵢ over D̃ — same support S and signs s = sign(δ_S) — because
D̃ δ̃ = Σᵢ W dᵢ δᵢ = W D δ, and W is invertible; y = D̃ δ̃. Basis pursuit is

    signed        min ‖x‖₁  s.t. D̃ x = y,
    non-negative  min 𝟙ᵀx  s.t. D̃ x = y, x ≥ 0.

**Theorem** (Fuchs 2004; Zhang–Yin–Cheng 2015). δ̃ is the *unique* solution iff D̃_S has
full column rank and some y* satisfies D̃_Sᵀ y* = s and ‖D̃_{Sᶜ}ᵀ y*‖_∞ < 1 (non-negative case,
s = 𝟙: max_{j∈Sᶜ} d̃ⱼᵀ y* < 1). Each code is classified

* **certified** — a y with D̃_Sᵀ y ≈ s whose *rigorous* value bound is < 1 − margin. The bound
  covers float64 arithmetic: for e = D̃_Sᵀ y − s, the corrected y' = y − D̃_S G_S⁻¹ e satisfies
  D̃_Sᵀ y' = s exactly and |d̃ⱼᵀ(y' − y)| ≤ ‖e‖₂/σmin(D̃_S); computing d̃ⱼᵀ y in float64 errs by at
  most γ_H‖y‖₂ (γ_H = Hu/(1 − Hu), u = 2⁻⁵³). So bound = value + ‖e‖₂/σmin + γ_H‖y‖₂, and
  σmin(D̃_S) > 0 is the full-column-rank check (σmin/σmax > RANK_TOL, computed in float64).
  Certificates are statements about the float64 matrix D̃ the library holds.
* **failed** — a witness x ≠ δ̃ with ‖D̃x − y‖₂ ≤ FEAS_TOL·‖δ̃‖₂, ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁ (and
  x ≥ 0 for non-negative codes) and ‖x − δ̃‖₂ > RECOVERY_TOL·‖δ̃‖₂; v = x − δ̃ ∈ ker D̃ (to the
  same tolerance) has ‖v_{Sᶜ}‖₁ ≤ ‖v_S‖₁: a null-space-property violation of order |S|.
* **undetermined** — neither was found (solver cap, numerics, LP budget, the call's
  ``budget_s``). Never guessed.

Duplicate atoms. A code whose support holds an atom of a duplicate pair (|⟨d̃ᵢ, d̃ⱼ⟩| ≥ 1 − 1e-6;
for non-negative codes a pair with ⟨d̃ᵢ, d̃ⱼ⟩ ≥ 1 − 1e-6) is never certified: such a pair is
treated as parallel (:mod:`rip_atoms.coherence`), and with d̃ⱼ = ±d̃ᵢ moving δ̃ᵢ onto j leaves y
and ‖δ̃‖₁ unchanged. Those codes end failed — by a stage's exact witness, or else ("duplicate") by
the witness that moves each δ̃ᵢ onto its partner j (coefficient sign(cos)·δ̃ᵢ): same ‖x‖₁,
‖D̃x − y‖₂ ≤ √(2·1e-6)·‖δ̃‖₁, exact when the pair is exactly parallel — or undetermined.
The pairs come from a certified projection screen
(:func:`rip_atoms.kernels.near_duplicates.near_duplicate_pairs`, O(N·H) plus a k-d tree).
* **invalid** — the code itself is unusable (empty support, a negative entry of a non-negative
  code, a support on a dead atom); reported by index, the batch goes on.

Tests, cheapest first: (1) the min-ℓ2 (Fuchs) certificate y₀ = D̃_S (D̃_Sᵀ D̃_S)⁻¹ s, batched as
GEMMs (:func:`rip_atoms.kernels.recovery_batch.fuchs_batch`), with the rank check of D̃_S (an SVD
null vector of a rank-deficient D̃_S is a tie witness: "rank"); (2) a batched ADMM search for a
feasible x that beats δ̃ (failure witnesses, "admm"); (3) homotopy (scikit-learn's LARS-lasso
path down to α → 0, "homotopy"; on dictionaries over 2²² entries a float32 pass first, then
float64 if it decided nothing): its solution, polished by least squares on the final active set
A, is either a witness or δ̃ itself, and then the final segment's dual vector
y_A = D̃_A (D̃_Aᵀ D̃_A)⁻¹ s_A (which equals ±1 on A∖S) is pushed strictly inside:
y = y_A − η D̃_A G_A⁻¹ [0; s_{A∖S}] with η minimising the certificate value (a convex 1-D
problem, bounded Brent), after adding any atom that violates; (4) where affordable, the exact
certificate LP min t s.t. D̃_Sᵀ y = s, |d̃ⱼᵀ y| ≤ t (j ∈ Sᶜ) through HiGHS ("lp"), whose optimum
t* < 1 iff δ̃ is unique, and whose dual (a v ∈ ker D̃ with −sᵀv_S ≥ t*‖v_{Sᶜ}‖₁) gives a
witness when t* ≥ 1.
Whatever proposes a certificate or a witness, only the float64 checks above decide.

Layout: :mod:`~rip_atoms.recovery.results` (statuses, tolerances, result types),
:mod:`~rip_atoms.recovery.problem` (D̃ in float64 from :class:`~rip_atoms.corrected_atoms.
CorrectedAtoms`, and the codes), :mod:`~rip_atoms.recovery.certificates`,
:mod:`~rip_atoms.recovery.witnesses`, :mod:`~rip_atoms.recovery.basis_pursuit`,
:mod:`~rip_atoms.recovery.classify` (the staged classifier) and
:mod:`~rip_atoms.recovery.phase_transition`.
"""

from rip_atoms.recovery.basis_pursuit import basis_pursuit
from rip_atoms.recovery.certificates import dual_certificate, fuchs_certificate
from rip_atoms.recovery.classify import (
    HOMOTOPY_ALPHA_MIN,
    HOMOTOPY_ALPHA_MIN_32,
    classify_recovery,
)
from rip_atoms.recovery.phase_transition import (
    PhaseTransitionResult,
    phase_transition,
)
from rip_atoms.recovery.phase_transition import crossing as crossing  # noqa: F401  (tests)
from rip_atoms.recovery.phase_transition import pava_decreasing as pava_decreasing  # noqa: F401
from rip_atoms.recovery.results import (
    CERTIFIED,
    FAILED,
    FEAS_TOL,
    INVALID,
    INVALID_REASONS,
    L1_TOL,
    M_ADMM,
    M_DUPLICATE,
    M_FUCHS,
    M_HOMOTOPY,
    M_LP,
    M_NONE,
    M_PUSH,
    M_RANK,
    MARGIN,
    METHOD_NAMES,
    RANK_TOL,
    RECOVERY_TOL,
    STATUS_NAMES,
    UNDETERMINED,
    BPSolution,
    Certificate,
    Method,
    RecoveryResult,
    Status,
)

__all__ = [
    "BPSolution",
    "CERTIFIED",
    "Certificate",
    "FAILED",
    "FEAS_TOL",
    "HOMOTOPY_ALPHA_MIN",
    "HOMOTOPY_ALPHA_MIN_32",
    "INVALID",
    "INVALID_REASONS",
    "L1_TOL",
    "MARGIN",
    "METHOD_NAMES",
    "M_ADMM",
    "M_DUPLICATE",
    "M_FUCHS",
    "M_HOMOTOPY",
    "M_LP",
    "M_NONE",
    "M_PUSH",
    "M_RANK",
    "Method",
    "PhaseTransitionResult",
    "RANK_TOL",
    "RECOVERY_TOL",
    "RecoveryResult",
    "STATUS_NAMES",
    "Status",
    "UNDETERMINED",
    "basis_pursuit",
    "classify_recovery",
    "dual_certificate",
    "fuchs_certificate",
    "phase_transition",
]
