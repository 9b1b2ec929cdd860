"""rip_atoms: certified compressed-sensing checks for dictionaries and SAE decoders.

The mathematics is in DESIGN.md; each quantity's code is in the module of the same name:
:mod:`~rip_atoms.dictionary`, :mod:`~rip_atoms.metric` (AIP), :mod:`~rip_atoms.coherence`,
:mod:`~rip_atoms.theory`, :mod:`~rip_atoms.synthetic`.
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
from rip_atoms.metric import AIPMetric, RepresentationShift, fit_metric, representation_shift

__version__ = "0.1.0"

__all__ = [
    "AIPMetric",
    "CoherenceResult",
    "Dictionary",
    "EmptyDictionaryError",
    "FileFormatError",
    "NonFiniteError",
    "Provenance",
    "RepresentationShift",
    "RipAtomsError",
    "ShapeMismatchError",
    "SingularMetricError",
    "TensorNotFoundError",
    "coherence",
    "fit_metric",
    "representation_shift",
]
