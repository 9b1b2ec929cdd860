"""The torch adapter (optional extra): SAE formats, TSAE / SAE training, activation harvesting.

Install with ``pip install 'rip-atoms[torch]'`` (formats, training) or ``'rip-atoms[llm]'`` (also
transformers + gguf + accelerate, for harvesting activations from a causal LM). The core
(``rip_atoms/*.py``) never imports this package eagerly.

* :mod:`rip_atoms.sae.formats` — SAELens (v6 + legacy), Gemma Scope ``params.npz``, sparsify,
  dictionary_learning ``ae.pt``, plain tensors → :class:`SparseAutoencoder`; save as SAELens v6.
* :mod:`rip_atoms.sae.train` — the TSAE (JumpReLU, target-L0) and the ReLU + L1 baseline.
* :mod:`rip_atoms.sae.harvest` — residual-stream activations from any ``AutoModelForCausalLM``.
* :mod:`rip_atoms.sae.model` — the default model (SmolLM2-135M from PyPI) and model loading.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "rip_atoms.sae needs PyTorch, which is an optional extra: "
        "pip install 'rip-atoms[torch]' (or 'rip-atoms[llm]' to harvest activations from a "
        "language model)"
    ) from exc

from rip_atoms.sae.canonical import SparseAutoencoder, estimate_input_scale
from rip_atoms.sae.formats import detect_format, load_sae, save_sae
from rip_atoms.sae.sae_errors import (
    CheckpointError,
    CorruptShardError,
    DegenerateActivationsError,
    HarvestInterrupted,
    IncompleteHarvestError,
    MissingDependencyError,
    OutputExistsError,
    TrainingInterrupted,
    UnknownArchitectureError,
)

__all__ = [
    "CheckpointError",
    "CorruptShardError",
    "DegenerateActivationsError",
    "HarvestInterrupted",
    "IncompleteHarvestError",
    "MissingDependencyError",
    "OutputExistsError",
    "SparseAutoencoder",
    "TrainingInterrupted",
    "UnknownArchitectureError",
    "detect_format",
    "estimate_input_scale",
    "load_sae",
    "save_sae",
]
