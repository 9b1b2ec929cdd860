"""The settings of :func:`rip_atoms.sae.harvest.harvest` (:class:`HarvestConfig`), checked when
constructed, as :class:`~rip_atoms.sae.train_config.TrainConfig` is for training; what each one
does is in :mod:`rip_atoms.sae.harvest`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rip_atoms.errors import ParameterError, ParameterTypeError

__all__ = ["HarvestConfig"]


@dataclass(frozen=True)
class HarvestConfig:
    """How to harvest (see :mod:`rip_atoms.sae.harvest`).

    ``n_tokens``: activations per layer to harvest. ``context_size``: tokens per context (the
    BOS, when prepended, included). ``batch_contexts``: contexts per forward pass.
    ``skip_first``: positions < this are dropped from every context (default 1: position 0,
    an attention sink). ``prepend_bos``: start each context with the BOS token (None: exactly
    when the tokenizer itself does). ``shard_tokens``: tokens per shard file (a shard is
    written once it holds at least this many).

    Bad values raise :class:`~rip_atoms.errors.ParameterError` (a non-integer count
    :class:`~rip_atoms.errors.ParameterTypeError`).
    """

    n_tokens: int
    context_size: int = 256
    batch_contexts: int = 4
    skip_first: int = 1
    prepend_bos: bool | None = None
    shard_tokens: int = 16384

    def __post_init__(self) -> None:
        for name in ("n_tokens", "context_size", "batch_contexts", "skip_first",
                     "shard_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ParameterTypeError(f"{name} must be an integer, got {value!r}")
        if (self.n_tokens < 1 or self.context_size < 2 or self.batch_contexts < 1
                or self.shard_tokens < 1):
            raise ParameterError("n_tokens, batch_contexts, shard_tokens ≥ 1 and context_size "
                                 "≥ 2")
        if not 0 <= self.skip_first < self.context_size:
            raise ParameterError(f"skip_first must be in [0, context_size), got "
                                 f"{self.skip_first}")
        if self.prepend_bos is not None and not isinstance(self.prepend_bos, bool | np.bool_):
            raise ParameterTypeError(f"prepend_bos must be True, False or None, got "
                                     f"{self.prepend_bos!r}")

    @property
    def tokens_per_context(self) -> int:
        """Activations each context gives: context_size − skip_first."""
        return self.context_size - self.skip_first

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
