"""Errors of the torch adapter; all are :class:`~rip_atoms.errors.RipAtomsError` subclasses, so
the CLI turns each into exit status 2 with one line naming the file and the problem."""

from __future__ import annotations

from rip_atoms.errors import FileFormatError, RipAtomsError


class UnknownArchitectureError(FileFormatError):
    """A config names an SAE architecture (or activation function) this library does not know;
    it is never replaced by a guess from the tensor shapes."""


class CorruptShardError(FileFormatError):
    """An activation shard is missing, truncated or does not match its manifest entry."""


class CheckpointError(FileFormatError):
    """A training checkpoint is unreadable or belongs to a different run configuration."""


class MissingDependencyError(RipAtomsError):
    """An optional dependency (transformers, gguf, sae-lens, …) is needed and not installed, or
    a download that the command needs is not possible (offline)."""
