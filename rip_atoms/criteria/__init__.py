"""The paper's criteria for a set of units (docs/design.md, "The paper's criteria"; criteria.md):
faithfulness R², stability q*, the ℓ1-certified fraction, the atom-set check, the TSAE
identifiability window, and the comparison table neurons / features / atoms.

Notation: activations xᵢ ∈ R^H (rows of X), a unit set is a decoder D ∈ R^{H×N} (columns are
atoms), an encoder giving codes δᵢ ∈ R^N, and an optional decoder bias b, with reconstruction
x̂ᵢ = D δᵢ + b. S̃ is the AIP metric, W = S̃^{1/2}, and d̃ⱼ = W dⱼ / ‖W dⱼ‖ are the corrected
atoms D̃; Kᵢ = ‖δᵢ‖₀; μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| is the per-atom AIP coherence and μ = maxⱼ μⱼ.

=====================================  ================================================
quantity                               module
=====================================  ================================================
unit sets, the token split             :mod:`rip_atoms.criteria.units`
R² (AIP and Euclidean)                 :mod:`rip_atoms.criteria.faithfulness`
q*_quantile, q*_support, ℓ1-certified  :mod:`rip_atoms.criteria.stability`
TSAE window, thresholds, encoder       :mod:`rip_atoms.criteria.tsae`
atom-set check                         :mod:`rip_atoms.criteria.atom_set`
SAEBench's statistics (not in reports) :mod:`rip_atoms.criteria.sae_statistics`
the comparison table                   :mod:`rip_atoms.criteria.comparison`
per-atom coherence μⱼ                  :mod:`rip_atoms.coherence`
=====================================  ================================================
"""

from rip_atoms.codes import l0_counts
from rip_atoms.coherence import PerAtomCoherence, per_atom_coherence
from rip_atoms.criteria.atom_set import AtomSetCheck, atom_set_check
from rip_atoms.criteria.comparison import UnitComparison, UnitRow, compare_units
from rip_atoms.criteria.faithfulness import FaithfulnessResult, faithfulness_r2
from rip_atoms.criteria.sae_statistics import (
    MaxDecoderCosine,
    SAEStatistics,
    sae_statistics,
    unit_set_statistics,
)
from rip_atoms.criteria.stability import (
    L1Certified,
    QStarQuantile,
    QStarSupport,
    StabilityResult,
    l1_certified_fraction,
    q_star_quantile,
    q_star_support,
    stability,
    support_coherence,
)
from rip_atoms.criteria.tsae import (
    ThresholdCheck,
    TSAEWindow,
    check_thresholds,
    tsae_encoder,
    tsae_window,
)
from rip_atoms.criteria.units import TokenSplit, UnitSet, token_split
from rip_atoms.theory import uniqueness_holds

__all__ = [
    "AtomSetCheck",
    "FaithfulnessResult",
    "L1Certified",
    "MaxDecoderCosine",
    "PerAtomCoherence",
    "QStarQuantile",
    "QStarSupport",
    "SAEStatistics",
    "StabilityResult",
    "TSAEWindow",
    "ThresholdCheck",
    "TokenSplit",
    "UnitComparison",
    "UnitRow",
    "UnitSet",
    "atom_set_check",
    "check_thresholds",
    "compare_units",
    "faithfulness_r2",
    "l0_counts",
    "l1_certified_fraction",
    "per_atom_coherence",
    "q_star_quantile",
    "q_star_support",
    "sae_statistics",
    "stability",
    "support_coherence",
    "token_split",
    "tsae_encoder",
    "tsae_window",
    "unit_set_statistics",
    "uniqueness_holds",
]
