"""The paper's theorems as executable properties, with their hypotheses checked, not assumed.

Each :class:`Theorem` has a ``name``, a ``statement`` (docs/design.md notation), its ``hypotheses``,
a ``draw`` that makes a seeded random example (numpy ``Generator``) and a ``check`` that first
verifies the hypotheses on that example — an example whose hypotheses fail is *discarded*, never
counted — and then the conclusion, by brute force where the claim is combinatorial (enumeration
of every support on small dictionaries) and in float64 throughout. :meth:`Theorem.run` draws
until ``max_examples`` examples met the hypotheses and returns a :class:`TheoremResult` with
``passed`` and, if any example failed, the smallest counterexample found (by the theorem's size
key), re-checkable from its JSON.

Some claims, as reconstructed from the paper's notes, are false; they are kept in the suite with
``expected = "fails"``, their minimal counterexample and a ``corrected_statement`` (itself a
theorem of the suite that passes):

* ``tsae_exact_reconstruction``: thresholds in the window recover every *support*, but the TSAE
  output W_dec σ_τ(W_enc x) is not x unless co-occurring atoms are exactly AIP-orthogonal; the
  minimal counterexample has H = N = K = 2 (K = 1 cannot fail). Corrected:
  ``tsae_support_recovery``.
* ``aip_invariance_unit_columns``: the self metric built from *Euclidean-unit* columns
  (``AIPMetric.from_dictionary(D, atoms="unit")``; the library's default is the raw atoms,
  ``atoms="raw"``, because of this finding) is not invariant under
  invertible maps, because x ↦ A x changes the atoms' Euclidean norms non-uniformly; minimal
  counterexample H = 2, N = 3 (with N = H every atom pair is AIP-orthogonal on both sides).
  Corrected: ``aip_invariance`` (activation-fitted metric, and self metric on the raw atoms).

Conventions. A strict-inequality hypothesis must hold with room ``HYP_MARGIN`` = 1e-9 (so that
rounding cannot make a false hypothesis look true: e.g. antipodal atoms whose computed coherence
is 1 − 1e-16). Codes in examples are over the AIP-normalised atoms d̃ⱼ = W dⱼ/‖W dⱼ‖ (W = S̃^{1/2});
the observed atoms D may be any invertible image A D̃ with any column scales. "Dependent" means
σ_min/σ_max ≤ 1e-10 of the float64 SVD; examples whose subsets are numerically ambiguous
(a ratio between 1e-10 and 1e-7) are discarded.

The package, one idea a module:

==========================================  =================================================
what                                        module
==========================================  =================================================
Theorem, Verdict, TheoremResult, tolerances :mod:`rip_atoms.theorems.framework`
exact δ_k, spark, AIP-normalised atoms      :mod:`rip_atoms.theorems.linear_algebra`
seeded example dictionaries                 :mod:`rip_atoms.theorems.examples`
1-3. RIP, uniqueness, ℓ1 from coherence     :mod:`rip_atoms.theorems.coherence_theorems`
4-5. TSAE support / exact reconstruction    :mod:`rip_atoms.theorems.tsae_theorems`
6-9. AIP invariance, Parseval, spark        :mod:`rip_atoms.theorems.invariance`
the registry and the runner                 :mod:`rip_atoms.theorems.suite`
==========================================  =================================================
"""

from __future__ import annotations

# Every public name of the former one-module rip_atoms.theorems is importable from here (the
# tests and notebooks use some: aip_unit_atoms, max_certified_k, …); ``__all__`` is unchanged.
from rip_atoms.theorems.coherence_theorems import (  # noqa: F401
    L1,
    RIP,
    UNIQUENESS,
    basis_pursuit_lp,
    erc,
    max_certified_k,
)
from rip_atoms.theorems.examples import draw_unit_dictionary, observe  # noqa: F401
from rip_atoms.theorems.framework import (  # noqa: F401
    DEP_RTOL,
    ENUM_MAX,
    HYP_MARGIN,
    INDEP_RTOL,
    Theorem,
    TheoremResult,
    Verdict,
)
from rip_atoms.theorems.invariance import (  # noqa: F401
    INVARIANCE,
    INVARIANCE_UNIT,
    PARSEVAL,
    SPARK,
)
from rip_atoms.theorems.linear_algebra import (  # noqa: F401
    aip_unit_atoms,
    enumerate_spark,
    exact_delta_k,
)
from rip_atoms.theorems.suite import THEOREMS, TheoremSuiteResult, get_theorem, run_theorems
from rip_atoms.theorems.tsae_theorems import TSAE_EXACT, TSAE_SUPPORT  # noqa: F401

__all__ = [
    "THEOREMS",
    "Theorem",
    "TheoremResult",
    "TheoremSuiteResult",
    "Verdict",
    "get_theorem",
    "run_theorems",
]
