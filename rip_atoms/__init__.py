"""rip_atoms: certified compressed-sensing checks for dictionaries and SAE decoders.

The mathematics is in docs/design.md; each quantity's code is in the module of the same name:
:mod:`~rip_atoms.dictionary`, :mod:`~rip_atoms.metric` (AIP), :mod:`~rip_atoms.geometry` (a
dictionary under one metric, what every analysis takes first), :mod:`~rip_atoms.coherence`,
:mod:`~rip_atoms.rip`, :mod:`~rip_atoms.spark`, :mod:`~rip_atoms.recovery`,
:mod:`~rip_atoms.criteria` (the paper's criteria), :mod:`~rip_atoms.theory`,
:mod:`~rip_atoms.synthetic`.
"""

from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.dictionary import Dictionary, Provenance
from rip_atoms.errors import (
    EmptyDictionaryError,
    FileFormatError,
    NonFiniteError,
    RipAtomsError,
    ShapeMismatchError,
    SingularMetricError,
    TensorNotFoundError,
)
from rip_atoms.geometry import Geometry
from rip_atoms.metric import AIPMetric, RepresentationShift, fit_metric, representation_shift
from rip_atoms.recovery import classify_recovery, phase_transition
from rip_atoms.rip import rip_bounds, witness_eigenvalues
from rip_atoms.spark import spark_bounds

__version__ = "0.1.0"

__all__ = [
    "AIPMetric",
    "CoherenceResult",
    "Dictionary",
    "EmptyDictionaryError",
    "FileFormatError",
    "Geometry",
    "NonFiniteError",
    "Provenance",
    "RepresentationShift",
    "RipAtomsError",
    "ShapeMismatchError",
    "SingularMetricError",
    "TensorNotFoundError",
    "classify_recovery",
    "coherence",
    "fit_metric",
    "phase_transition",
    "representation_shift",
    "rip_bounds",
    "spark_bounds",
    "witness_eigenvalues",
]
