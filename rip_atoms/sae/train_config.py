"""The hyper-parameters of :func:`rip_atoms.sae.train.train_sae` (:class:`TrainConfig`), checked
when constructed; the formulas they enter are in :mod:`rip_atoms.sae.train`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from rip_atoms.errors import ParameterError

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (see :mod:`rip_atoms.sae.train` for the formulas).

    ``architecture``: ``"jumprelu"`` (the TSAE) or ``"standard"`` (ReLU + L1, the features
    baseline). ``width``: N = d_sae. ``target_l0``: L0* (required for the TSAE; optional for
    the SAE, where it drives λ). ``steps``: optimiser steps of ``batch_size`` tokens (epochs over
    the data as needed).

    ``device``: where the step runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, … — resolved by
    :func:`rip_atoms.kernels.torch_gram.resolve_device`, so a device this torch cannot use is a
    one-line :class:`~rip_atoms.errors.ParameterError` when training starts). The mathematics is
    the same on every device; only float rounding (and, on a GPU, the order of atomic
    additions) differs. ``sparse_density``: the step computes its gradients with ``embedding_bag``
    sums over the selected (token, latent) pairs while their fraction of the B×N batch is at
    most this, and with dense GEMMs above it; ``None`` (default) means 0.2 on a CPU and 0.02 on
    a GPU (where a GEMM is relatively cheaper than a gather), 0 forces the dense GEMMs and 1 the
    sparse sums. Neither field changes the loss or the gradients, so a checkpoint written on one
    device or path resumes on another.
    """

    architecture: str = "jumprelu"
    width: int = 2304
    target_l0: float | None = 32.0
    steps: int = 2000
    batch_size: int = 1024
    lr: float = 1e-3
    lr_warmup_steps: int = 50
    lr_decay_frac: float = 0.2
    betas: tuple[float, float] | None = None
    grad_clip: float = 1.0
    sparsity_coefficient: float = 1.0
    sparsity_warmup_steps: int = 100
    bandwidth: float = 1e-3
    init_threshold: float = 1e-3
    threshold_init: str | float = "auto"
    l1_coefficient: float = 1e-2
    l1_adapt_rate: float = 0.02
    whiten: bool = False
    ridge: float = 0.0
    decoder_init: str = "data"
    dead_after_tokens: int = 1_000_000
    resample_every: int = 250
    resample_until: float = 0.6
    resample_batch: int = 8192
    checkpoint_every: int = 0
    log_every: int = 50
    seed: int = 0
    threads: int = 0
    sparse_density: float | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.architecture not in ("jumprelu", "standard"):
            raise ParameterError(
                f"architecture must be 'jumprelu' (TSAE) or 'standard' (ReLU + L1), not "
                f"{self.architecture!r}"
            )
        for name, least in (("width", 1), ("steps", 1), ("batch_size", 1),
                            ("lr_warmup_steps", 0), ("sparsity_warmup_steps", 0),
                            ("dead_after_tokens", 1), ("resample_every", 0),
                            ("resample_batch", 1), ("checkpoint_every", 0), ("log_every", 1),
                            ("seed", 0), ("threads", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ParameterError(f"{name} must be an integer, got {value!r}")
            if value < least:
                raise ParameterError(f"{name} must be ≥ {least}, got {value}")
        if self.seed >= 2**64:
            raise ParameterError(f"seed must be < 2**64 (torch's generator), got {self.seed}")
        if self.architecture == "jumprelu" and self.target_l0 is None:
            raise ParameterError("the TSAE needs target_l0 (the L0 controller's target)")
        if self.target_l0 is not None and not 0 < self.target_l0 <= self.width:
            raise ParameterError(f"target_l0 must be in (0, width = {self.width}], got "
                                 f"{self.target_l0}")
        for name in ("lr", "bandwidth"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ParameterError(f"{name} must be a finite number > 0, got {value}")
        for name in ("init_threshold", "l1_coefficient", "sparsity_coefficient", "grad_clip",
                     "l1_adapt_rate", "ridge"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ParameterError(f"{name} must be a finite number ≥ 0, got {value}")
        if not 0 <= self.resample_until <= 1:
            raise ParameterError(f"resample_until must be in [0, 1], got {self.resample_until}")
        if not 0 <= self.lr_decay_frac <= 1:
            raise ParameterError("lr_decay_frac must be in [0, 1]")
        if self.sparse_density is not None and (
                isinstance(self.sparse_density, bool)
                or not isinstance(self.sparse_density, int | float | np.floating)
                or not 0 <= self.sparse_density <= 1):
            raise ParameterError(f"sparse_density must be None or a number in [0, 1], got "
                                 f"{self.sparse_density!r}")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ParameterError(f"device must be a device name such as 'cpu' or 'cuda', got "
                                 f"{self.device!r}")
        if self.decoder_init not in ("data", "random"):
            raise ParameterError("decoder_init must be 'data' or 'random'")
        if isinstance(self.threshold_init, str):
            if self.threshold_init != "auto":
                raise ParameterError("threshold_init must be 'auto' or a number")
        elif not (math.isfinite(self.threshold_init) and self.threshold_init >= 0):
            raise ParameterError(f"threshold_init must be 'auto' or a finite number ≥ 0, got "
                                 f"{self.threshold_init}")

    @property
    def adam_betas(self) -> tuple[float, float]:
        if self.betas is not None:
            return tuple(self.betas)
        return (0.0, 0.999) if self.architecture == "jumprelu" else (0.9, 0.999)

    def step_density(self, device_type: str) -> float:
        """The selected-pair fraction up to which the step uses the sparse sums on a device of
        this type (``sparse_density``, or its default there)."""
        if self.sparse_density is not None:
            return float(self.sparse_density)
        return 0.2 if device_type == "cpu" else 0.02

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.adam_betas)
        return d
