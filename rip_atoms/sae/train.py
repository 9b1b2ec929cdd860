"""Training the TSAE (threshold-activated SAE, JumpReLU) and the ReLU + L1 SAE baseline.

Both train on activations t = s·A x (rows), where A = I, or A = W = S̃^{1/2} the AIP whitening
(``whiten=True``, S̃ = E[xxᵀ]⁻¹ fitted on the training activations), and s is the constant that
makes E‖t‖² = 1 (Gemma Scope / dictionary_learning convention; the JumpReLU bandwidth and initial
threshold are tuned for this scale, ``sae-ecosystem.md`` §5.3 pitfall 3). Parameters are float32.

**Model** (training coordinates):  h = (t − b_dec) W_enc + b_enc,
  TSAE  f = JumpReLU_θ(h) = h·H(h − θ),  θᵢ ≥ 0 a raw per-latent parameter (clamped ≥ 0 after
        every step; never log-parameterised, pitfall 1);
  SAE   f = relu(h);
  t̂ = f W_dec + b_dec, with unit-norm decoder rows (the gradient component parallel to each row
  is removed before the step and rows are renormalised after it), b_dec initialised to the mean
  of t.

**Loss** per batch of B tokens: MSE = (1/B) Σ_b ‖t_b − t̂_b‖² plus
  TSAE  c·(L0/L0* − 1)² with L0 = (1/B) Σ_b Σᵢ H(h_bi − θᵢ) — a target-L0 controller whose zero is
        at the target (so the coefficient's saturation under Adam, pitfall 2, is harmless);
  SAE   λ·(1/B) Σ_b Σᵢ f_bi (decoder rows are unit, so this is the norm-weighted L1); with a
        target L0 the coefficient follows log λ ← log λ + κ·clip(L0/L0* − 1, −1, 1) each step.
  Gradients through the step use the rectangle straight-through estimator with bandwidth ε,
  K(u) = 1[|u| < ½]:  ∂JumpReLU/∂θ = −(θ/ε)K((h − θ)/ε),  ∂H/∂θ = −(1/ε)K((h − θ)/ε),
  ∂JumpReLU/∂h = H(h − θ). They are computed by hand (one GEMM fewer than autograd: the b_dec
  gradient through the encoder is −W_enc Σ_b ∂L/∂h_b). Adam (β = (0, 0.999) for the TSAE,
  (0.9, 0.999) for the SAE), global gradient-norm clip 1, linear LR warm-up and a linear decay
  over the last ``lr_decay_frac`` of the steps, linear warm-up of the sparsity coefficient.

**Initialisation**: decoder rows are normalised centred training samples t − t̄ (plus 10⁻³
noise; ``decoder_init="random"`` for Gaussian rows), W_enc = W_decᵀ, b_enc = 0, b_dec = t̄.
``threshold_init="auto"`` sets θᵢ to the (1 − L0*/N)-quantile of hᵢ on the first batch (at least
``init_threshold``), so training starts at the target L0; a number sets every θᵢ to it (the
thresholds then have to move, and do). Then W_enc and θ are scaled by
α = ⟨t − b_dec, y⟩/‖y‖² (y = f W_dec on the first batch; codes are positively homogeneous in
(W_enc, b_enc, θ)), the least-squares scale, so the first reconstructions neither overshoot nor
vanish.

**Dead latents**: a latent that has not fired for min(``dead_after_tokens``, n) tokens (n = the
number of training activations, i.e. a full pass) is dead; the count is tracked and reported.
Every ``resample_every`` steps during the first ``resample_until`` of training, latents silent
for that long are re-initialised at residuals of badly reconstructed tokens (:meth:`resample_dead`).

**Cost**: the step touches only the (token, latent) pairs that are active or inside the STE
window; the decoder, ∂MSE/∂f and the W_dec / W_enc gradients are ``embedding_bag`` sums of
O(nnz·d), so the encoder GEMM h = t W_enc (B×d×N) is the only dense product (dense GEMMs are used
while the selected fraction exceeds ``sparse_density``, e.g. early in a ReLU SAE's training).

**Saving** folds the training coordinates away, so the saved SAE reads raw activations x:
W_enc ← s·A W_enc, W_dec ← W_dec A⁻¹/s, b_dec ← b_dec A⁻¹/s (b_enc, θ unchanged), then the
decoder norms nᵢ are folded (W_dec,i/nᵢ; W_enc[:, i], b_enc,i, θᵢ times nᵢ) so atoms are unit and
codes are in activation units. It is written in the SAELens v6 layout with our provenance in
``metadata.rip_atoms``.

**Checkpoints** (every ``checkpoint_every`` steps, one file written atomically) hold the
parameters, the Adam state, the data order and the generator state, the dead-latent counters and
the controller state; ``resume=True`` continues exactly (bitwise on the same machine and thread
count) from the last one, so a killed run loses at most the steps since it. Ctrl-C (SIGINT) is
deferred to the end of the current step, which is then checkpointed, so an interrupted run loses
nothing (:class:`~rip_atoms.sae.errors.TrainingInterrupted` names the step). An output folder
that holds an earlier run is refused unless the call resumes it or overwrites it (which deletes
the old SAE and its stale checkpoint first), so runs never mix.

**Bad data**: activations that are all zero, or the same vector in every row, raise
:class:`~rip_atoms.sae.errors.DegenerateActivationsError` naming their source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rip_atoms.errors import (
    FileFormatError,
    Interrupted,
    NonFiniteError,
    ParameterError,
    ShapeMismatchError,
)
from rip_atoms.metric import fit_metric
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.errors import (
    CheckpointError,
    DegenerateActivationsError,
    OutputExistsError,
    TrainingInterrupted,
)
from rip_atoms.sae.formats._io import atomic_path, write_json_atomic
from rip_atoms.sae.formats.sae_lens import save_sae_lens

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (see the module docstring for the formulas).

    ``architecture``: ``"jumprelu"`` (the TSAE) or ``"standard"`` (ReLU + L1, the features
    baseline). ``width``: N = d_sae. ``target_l0``: L0* (required for the TSAE; optional for
    the SAE, where it drives λ). ``steps``: optimiser steps of ``batch_size`` tokens (epochs over
    the data as needed).
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
    sparse_density: float = 0.2

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

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.adam_betas)
        return d


@dataclass(frozen=True)
class TrainResult:
    """What a run produced: the SAE (raw coordinates, unit decoder rows), the final metrics and
    the history. ``r2`` is 1 − Σ‖t − t̂‖²/Σ‖t − t̄‖² over the last ``log_every`` steps (training
    coordinates, training tokens); faithfulness on held-out tokens is the caller's job."""

    sae: SparseAutoencoder
    config: TrainConfig
    steps: int
    tokens: int
    l0: float
    mse: float
    r2: float
    dead_latents: int
    thresholds: dict | None
    l1_coefficient: float | None
    input_scale: float
    whitened: bool
    seconds: float
    tokens_per_second: float
    resumed_from_step: int
    history: list[dict] = field(default_factory=list)
    out_dir: str | None = None

    def to_dict(self) -> dict:
        return {
            "architecture": self.config.architecture,
            "config": self.config.to_dict(),
            "steps": self.steps,
            "tokens": self.tokens,
            "l0": self.l0,
            "mse": self.mse,
            "r2_train": self.r2,
            "dead_latents": self.dead_latents,
            "thresholds": self.thresholds,
            "l1_coefficient": self.l1_coefficient,
            "input_scale": self.input_scale,
            "whitened": self.whitened,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
            "resumed_from_step": self.resumed_from_step,
            "sae": self.sae.to_dict(),
            "out_dir": self.out_dir,
            "history": self.history,
        }


class _Params:
    """The trainable tensors (training coordinates) and their Adam state."""

    def __init__(self, d: int, m: int, jumprelu: bool):
        self.W_enc = torch.zeros(d, m)
        self.b_enc = torch.zeros(m)
        self.W_dec = torch.zeros(m, d)
        self.b_dec = torch.zeros(d)
        self.threshold = torch.zeros(m) if jumprelu else None

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec,
               "b_dec": self.b_dec}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


def _fingerprint(X: torch.Tensor) -> str:
    """A cheap content hash of the training data (shape + strided sample), for resume checks."""
    h = hashlib.sha256(str(tuple(X.shape)).encode())
    step = max(1, X.shape[0] // 257)
    h.update(np.ascontiguousarray(X[::step].numpy()).tobytes())
    return h.hexdigest()[:16]


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / cfg.lr_warmup_steps) if cfg.lr_warmup_steps > 0 else 1.0
    decay_steps = int(cfg.lr_decay_frac * cfg.steps)
    start = cfg.steps - decay_steps
    decay = 1.0 if step < start or decay_steps == 0 else max(0.0, (cfg.steps - step) / decay_steps)
    return warm * decay


#: below this variance (relative to the mean square) float32 activations are taken as constant
_CONSTANT_VARIANCE = 1e-10


def _moments(data: torch.Tensor, chunk: int = 1 << 15) -> tuple[float, float]:
    """(E‖x‖², E‖x − x̄‖²) over the rows, accumulated in float64 a chunk of rows at a time (no
    float64 copy of the whole matrix)."""
    n = data.shape[0]
    total = torch.zeros(data.shape[1], dtype=torch.float64)
    squares = 0.0
    for i in range(0, n, chunk):
        block = data[i:i + chunk].double()
        total += block.sum(0)
        squares += float((block * block).sum())
    mean_square = squares / n
    mean = total / n
    return mean_square, max(0.0, mean_square - float(mean @ mean))


class _Trainer:
    def __init__(self, X: np.ndarray, cfg: TrainConfig, metadata: dict | None,
                 source: str = "activations"):
        self.cfg = cfg
        self.metadata = dict(metadata or {})
        X = np.asarray(X) if not isinstance(X, np.memmap) else X
        if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
            raise ShapeMismatchError(f"{source}: expected an n×d matrix with n ≥ 2 tokens and "
                                     f"d ≥ 1, got shape {X.shape}")
        n, d = X.shape
        self.d, self.m = d, cfg.width
        data = torch.tensor(np.asarray(X), dtype=torch.float32)  # a copy: X is never modified
        finite = torch.isfinite(data)
        if not bool(finite.all()):
            bad = int((~finite).any(1).sum())
            raise NonFiniteError(f"{source}: {bad} of {n} activation rows hold NaN or ±Inf "
                                 "(in float32)")
        mean_square, centred = _moments(data)
        if mean_square == 0.0:
            raise DegenerateActivationsError(
                f"{source}: all {n}×{d} activations are zero (in float32); there is nothing to "
                "train an SAE on"
            )
        if centred <= _CONSTANT_VARIANCE * mean_square:
            raise DegenerateActivationsError(
                f"{source}: all {n} activation rows are the same vector (variance "
                f"{centred / mean_square:.2g} × the mean square); there is nothing to train an "
                "SAE on"
            )
        self.fingerprint = _fingerprint(data)
        # ---- training coordinates t = s·A x
        self.A = None
        self.A_inv = None
        if cfg.whiten:
            metric = fit_metric(X, ridge=cfg.ridge, source=source)
            self.A = torch.from_numpy(metric.W).float()
            self.A_inv = torch.from_numpy(np.linalg.inv(metric.W)).float()
            data = data @ self.A
            mean_square = _moments(data)[0]
        self.scale = float(1.0 / math.sqrt(mean_square))
        data.mul_(self.scale)
        self.data = data
        self.n = n
        self.mean = data.mean(0)
        self.total_var = float(((data - self.mean) ** 2).sum(1).mean())
        self.dead_window = min(cfg.dead_after_tokens, n)

    # ------------------------------------------------------------------ init
    def init_state(self) -> None:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        self.gen = gen
        p = _Params(self.d, self.m, cfg.architecture == "jumprelu")
        if cfg.decoder_init == "data":
            idx = torch.randint(0, self.n, (self.m,), generator=gen)
            W = self.data[idx] - self.mean
            W = W + 1e-3 * torch.randn(W.shape, generator=gen) * W.norm(dim=1, keepdim=True)
        else:
            W = torch.randn(self.m, self.d, generator=gen)
        W = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
        p.W_dec.copy_(W)
        p.W_enc.copy_(W.T)
        p.b_dec.copy_(self.mean)
        self.p = p
        self.perm = torch.randperm(self.n, generator=gen)
        self.pos = 0
        self.step = 0
        self.since_fired = torch.zeros(self.m, dtype=torch.int64)
        self.fired_count = torch.zeros(self.m, dtype=torch.float64)
        self.l1 = cfg.l1_coefficient
        self.resampled = 0
        self.history: list[dict] = []
        self.window = {"sse": 0.0, "l0": 0.0, "tokens": 0}
        if p.threshold is not None:
            if cfg.threshold_init == "auto":
                xb = self._peek_batch()
                h = (xb - p.b_dec) @ p.W_enc + p.b_enc
                p.threshold.copy_(self._calibrated_thresholds(h))
            else:
                p.threshold.fill_(float(cfg.threshold_init))
        # encoder scale: with f = σ(h) on the first batch and y = f W_dec, scale the encoder
        # (W_enc, b_enc, θ — the codes are positively homogeneous in them) by
        # α = ⟨t − b_dec, y⟩ / ‖y‖², the least-squares best; the initial reconstruction then
        # neither overshoots (many unit atoms at once) nor undershoots.
        xb = self._peek_batch()
        xc = xb - p.b_dec
        h = xc @ p.W_enc
        f = h * (h > (p.threshold if p.threshold is not None else 0.0))
        y = f @ p.W_dec
        yy = float((y * y).sum())
        if yy > 0:
            alpha = float((xc * y).sum()) / yy
            if alpha > 0:
                p.W_enc.mul_(alpha)
                if p.threshold is not None:
                    p.threshold.mul_(alpha)
        self.initial_threshold_median = (float(p.threshold.median())
                                         if p.threshold is not None else None)
        self.opt = self._make_opt()

    def _calibrated_thresholds(self, h: torch.Tensor) -> torch.Tensor:
        """Per column of pre-activations h (tokens × latents): the (1 − L0*/N)-quantile, so each
        latent fires on a fraction L0*/N of the tokens (at least ``init_threshold``)."""
        q = max(0.0, min(1.0, 1.0 - self.cfg.target_l0 / self.m))
        theta = torch.quantile(h, q, dim=0) if h.shape[0] > 1 else h[0]
        return theta.clamp_min(self.cfg.init_threshold)

    def _make_opt(self) -> torch.optim.Adam:
        params = list(self.p.tensors().values())
        for t in params:
            t.requires_grad_(False)
            t.grad = torch.zeros_like(t)
        return torch.optim.Adam(params, lr=self.cfg.lr, betas=self.cfg.adam_betas, eps=1e-8,
                                foreach=True)

    def _peek_batch(self) -> torch.Tensor:
        b = self.cfg.batch_size
        return self.data[self.perm[: min(b, self.n)]]

    def _next_batch(self) -> torch.Tensor:
        b = self.cfg.batch_size
        if self.pos + b > self.n:
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + b]
        self.pos += b
        return self.data[idx]

    # ------------------------------------------------------------------ one step
    def train_step(self) -> tuple[float, float]:
        """One optimiser step; returns (Σ_b ‖t_b − t̂_b‖², L0) of the batch."""
        cfg, p = self.cfg, self.p
        x = self._next_batch()
        B = x.shape[0]
        xc = x - p.b_dec
        h = torch.addmm(p.b_enc, xc, p.W_enc)  # the one dense GEMM of the sparse path
        jump = p.threshold is not None
        eps = cfg.bandwidth
        # the latents that need a gradient: active ones, and (TSAE) those in the STE window
        sel = h > (p.threshold - eps / 2) if jump else h > 0
        nnz = int(sel.sum())
        warm = min(1.0, (self.step + 1) / cfg.sparsity_warmup_steps) if (
            cfg.sparsity_warmup_steps > 0) else 1.0
        if nnz <= cfg.sparse_density * B * self.m:
            sse, n_active = self._grads_sparse(x, xc, h, sel, warm)
        else:
            sse, n_active = self._grads_dense(x, xc, h, warm)
        l0 = float(n_active.sum()) / B
        # unit-norm decoder: remove the gradient component parallel to each row
        W = p.W_dec
        p.W_dec.grad.sub_((p.W_dec.grad * W).sum(1, keepdim=True) * W)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(p.tensors().values()), cfg.grad_clip,
                                           foreach=True)
        lr = cfg.lr * _lr_factor(self.step, cfg)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()
        W.div_(W.norm(dim=1, keepdim=True).clamp_min(1e-12))
        if jump:
            p.threshold.clamp_(min=0.0)
        elif cfg.target_l0 is not None:
            r = max(-1.0, min(1.0, l0 / cfg.target_l0 - 1.0))
            self.l1 *= math.exp(cfg.l1_adapt_rate * r)
        fired = n_active > 0
        self.since_fired += B
        self.since_fired[fired] = 0
        self.fired_count += n_active.double()
        self.step += 1
        return sse, l0

    def _dl0(self, l0: float, warm: float) -> float:
        """∂/∂L0 of c·(L0/L0* − 1)² (with the warm-up factor on c)."""
        cfg = self.cfg
        return 2.0 * cfg.sparsity_coefficient * warm * (l0 / cfg.target_l0 - 1.0) / cfg.target_l0

    def _grads_dense(self, x, xc, h, warm) -> tuple[float, torch.Tensor]:
        """Gradients with dense GEMMs (early training, or dense codes)."""
        cfg, p = self.cfg, self.p
        B = x.shape[0]
        active = h > p.threshold if p.threshold is not None else h > 0
        f = h * active
        e = torch.addmm(p.b_dec, f, p.W_dec).sub_(x)  # t̂ − t
        sse = float(e.pow(2).sum())
        n_active = active.sum(0)
        g_out = e.mul_(2.0 / B)  # ∂MSE/∂t̂
        torch.mm(f.T, g_out, out=p.W_dec.grad)
        p.b_dec.grad.copy_(g_out.sum(0))
        g_f = g_out @ p.W_dec.T  # ∂MSE/∂f
        if p.threshold is not None:
            eps = cfg.bandwidth
            u = (h - p.threshold).abs_() < (eps / 2)  # rectangle kernel window
            dl0 = self._dl0(float(n_active.sum()) / B, warm)
            # ∂/∂θ: MSE through the JumpReLU STE + L0 through the Heaviside STE
            g_theta = -(p.threshold / eps) * (g_f * u).sum(0) - (dl0 / (eps * B)) * u.sum(0)
            p.threshold.grad.copy_(g_theta)
            g_h = g_f.mul_(active)
        else:
            g_h = g_f.add_(self.l1 / B).mul_(active)
        torch.mm(xc.T, g_h, out=p.W_enc.grad)
        g_b_enc = g_h.sum(0)
        p.b_enc.grad.copy_(g_b_enc)
        p.b_dec.grad.sub_(p.W_enc @ g_b_enc)
        return sse, n_active

    def _grads_sparse(self, x, xc, h, sel, warm) -> tuple[float, torch.Tensor]:
        """The same gradients touching only the selected (token, latent) pairs: decoding,
        ∂MSE/∂f at those pairs and the W_dec / W_enc gradients are ``embedding_bag`` sums of
        O(nnz·d) instead of B×N×d GEMMs."""
        cfg, p = self.cfg, self.p
        B, m = x.shape[0], self.m
        nz = sel.nonzero()
        b, i = nz[:, 0], nz[:, 1]
        hv = h[b, i]
        if p.threshold is not None:
            th = p.threshold[i]
            act = hv > th
            win = (hv - th).abs_() < (cfg.bandwidth / 2)
        else:
            act = torch.ones_like(hv, dtype=torch.bool)
            win = None
        fv = hv * act
        off_tok = torch.zeros(B + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(b, minlength=B), 0, out=off_tok[1:])
        v = fv.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            xh = F.embedding_bag(i, p.W_dec, off_tok, mode="sum", per_sample_weights=v,
                                 include_last_offset=True)
            e = (xh.detach() + p.b_dec).sub_(x)  # t̂ − t
            g_out = e.mul(2.0 / B)
            xh.backward(g_out)
        sse = float(e.pow(2).sum())
        g_f = v.grad  # ∂MSE/∂f at the selected pairs
        n_active = torch.bincount(i[act], minlength=m)
        if p.threshold is not None:
            dl0 = self._dl0(float(n_active.sum()) / B, warm)
            iw = i[win]
            g_theta = torch.zeros(m)
            g_theta.index_add_(0, iw, g_f[win])
            g_theta.mul_(-p.threshold / cfg.bandwidth)
            g_theta.sub_((dl0 / (cfg.bandwidth * B)) * torch.bincount(iw, minlength=m))
            p.threshold.grad.copy_(g_theta)
            g_hv = g_f * act
        else:
            g_hv = (g_f + self.l1 / B) * act
        order = torch.argsort(i, stable=True)
        off_lat = torch.zeros(m + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(i, minlength=m), 0, out=off_lat[1:])
        bo = b[order]
        p.W_dec.grad.copy_(F.embedding_bag(bo, g_out, off_lat, mode="sum",
                                           per_sample_weights=fv[order],
                                           include_last_offset=True))
        p.W_enc.grad.copy_(F.embedding_bag(bo, xc, off_lat, mode="sum",
                                           per_sample_weights=g_hv[order],
                                           include_last_offset=True).T)
        g_b_enc = torch.zeros(m)
        g_b_enc.index_add_(0, i, g_hv)
        p.b_enc.grad.copy_(g_b_enc)
        p.b_dec.grad.copy_(g_out.sum(0))
        p.b_dec.grad.sub_(p.W_enc @ g_b_enc)
        return sse, n_active

    # ------------------------------------------------------------------ dead latents
    def resample_dead(self) -> int:
        """Re-initialise latents that have not fired for the last ``resample_every`` steps
        (Anthropic, 2023): draw tokens with probability ∝ ‖t − t̂‖² from a batch of
        ``resample_batch`` tokens and point the dead latent at that residual: W_dec,i = e/‖e‖,
        W_enc[:, i] = ρ·e/‖e‖ with ρ the mean norm of the live encoder columns, b_enc,i = 0,
        θᵢ recalibrated like ``threshold_init="auto"``; their Adam moments are zeroed."""
        cfg, p = self.cfg, self.p
        window = min(cfg.resample_every * cfg.batch_size, self.n)
        dead = torch.nonzero(self.since_fired >= window).flatten()
        if dead.numel() == 0 or dead.numel() == self.m:
            return 0
        idx = torch.randint(0, self.n, (min(cfg.resample_batch, self.n),), generator=self.gen)
        x = self.data[idx]
        h = torch.addmm(p.b_enc, x - p.b_dec, p.W_enc)
        f = h * (h > (p.threshold if p.threshold is not None else 0))
        e = x - torch.addmm(p.b_dec, f, p.W_dec)
        w = e.pow(2).sum(1).double()
        if float(w.sum()) <= 0:
            return 0
        pick = torch.multinomial(w, dead.numel(), replacement=dead.numel() > w.numel(),
                                 generator=self.gen)
        u = e[pick]
        u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
        live = torch.ones(self.m, dtype=torch.bool)
        live[dead] = False
        rho = float(p.W_enc[:, live].norm(dim=0).mean())
        p.W_dec[dead] = u
        p.W_enc[:, dead] = rho * u.T
        p.b_enc[dead] = 0.0
        if p.threshold is not None:
            hd = (x - p.b_dec) @ p.W_enc[:, dead]
            p.threshold[dead] = self._calibrated_thresholds(hd)
        for t, sel in ((p.W_dec, (dead,)), (p.W_enc, (slice(None), dead)), (p.b_enc, (dead,)),
                       (p.threshold, (dead,))):
            if t is None:
                continue
            st = self.opt.state.get(t, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    st[key][sel] = 0.0
        self.since_fired[dead] = 0
        return int(dead.numel())

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "format": "rip_atoms.sae.train/1",
            "config": self.cfg.to_dict(),
            "fingerprint": self.fingerprint,
            "step": self.step,
            "pos": self.pos,
            "perm": self.perm,
            "gen_state": self.gen.get_state(),
            "params": {k: v.clone() for k, v in self.p.tensors().items()},
            "optimizer": self.opt.state_dict(),
            "since_fired": self.since_fired,
            "fired_count": self.fired_count,
            "l1": self.l1,
            "initial_threshold_median": self.initial_threshold_median,
            "resampled": self.resampled,
            "history": self.history,
            "window": self.window,
        }

    def save_checkpoint(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def load_checkpoint(self, path: Path) -> None:
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            msg = " ".join(str(exc).split())
            if "weights_only" in msg or "Unsupported global" in msg:
                raise CheckpointError(
                    f"{path}: refused: the file holds Python objects other than tensors (a "
                    "training checkpoint never does; it is read with weights_only=True)"
                ) from None
            raise CheckpointError(
                f"{path}: unreadable checkpoint ({type(exc).__name__}: {msg[:160]})"
            ) from exc
        if not isinstance(st, dict) or st.get("format") != "rip_atoms.sae.train/1":
            raise CheckpointError(f"{path}: not a rip_atoms training checkpoint")
        try:
            self._restore(st, path)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError,
                IndexError) as exc:
            raise CheckpointError(
                f"{path}: malformed training checkpoint ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]})"
            ) from exc

    def _restore(self, st: dict, path: Path) -> None:
        mine = self.cfg.to_dict()
        theirs = st["config"]
        diff = [k for k in mine if k not in ("steps", "checkpoint_every", "log_every")
                and mine[k] != theirs.get(k)]
        if diff:
            raise CheckpointError(
                f"{path}: checkpoint was written with a different configuration "
                f"({', '.join(f'{k}: {theirs.get(k)!r} ≠ {mine[k]!r}' for k in diff[:4])})"
            )
        if st["fingerprint"] != self.fingerprint:
            raise CheckpointError(f"{path}: checkpoint was trained on different activations")
        self.init_state()
        for k, v in st["params"].items():
            getattr(self.p, k).copy_(v)
        self.opt.load_state_dict(st["optimizer"])
        self.step = int(st["step"])
        self.pos = int(st["pos"])
        self.perm = st["perm"]
        self.gen.set_state(st["gen_state"])
        self.since_fired = st["since_fired"]
        self.fired_count = st["fired_count"]
        self.l1 = float(st["l1"])
        self.initial_threshold_median = st["initial_threshold_median"]
        self.resampled = int(st["resampled"])
        self.history = list(st["history"])
        self.window = dict(st["window"])

    # ------------------------------------------------------------------ export
    def export(self) -> SparseAutoencoder:
        """The SAE in raw coordinates with unit decoder rows (module docstring)."""
        p, s = self.p, self.scale
        W_enc = p.W_enc.double() * s
        W_dec = p.W_dec.double() / s
        b_dec = p.b_dec.double() / s
        if self.A is not None:
            A, A_inv = self.A.double(), self.A_inv.double()
            W_enc = A @ W_enc
            W_dec = W_dec @ A_inv
            b_dec = b_dec @ A_inv
        sae = SparseAutoencoder(
            architecture=self.cfg.architecture, W_enc=W_enc.float(), W_dec=W_dec.float(),
            b_dec=b_dec.float(), b_enc=p.b_enc.clone(),
            threshold=p.threshold.clone() if p.threshold is not None else None,
            apply_b_dec_to_input=True, normalize_activations="none",
            metadata=self.metadata, source="rip_atoms.sae.train", format="rip_atoms",
        )
        return sae.unit_decoder()


def train_sae(
    X: np.ndarray,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
    stop_after: int | None = None,
    source: str = "activations",
) -> TrainResult:
    """Train a TSAE (``architecture="jumprelu"``) or a ReLU + L1 SAE on activations X (n×d).

    With ``out_dir`` the SAE is saved there in the SAELens v6 layout (``cfg.json``,
    ``sae_weights.safetensors``, ``sparsity.safetensors``) plus ``training.json``, and checkpoints
    go to ``out_dir/checkpoint.pt`` every ``config.checkpoint_every`` steps; ``resume=True``
    continues from that checkpoint. ``stop_after`` ends this call after that many steps (for
    tests and for splitting a run), leaving the checkpoint to resume from.

    An ``out_dir`` that already holds a run's files (a trained SAE, a checkpoint) is refused
    with :class:`~rip_atoms.sae.errors.OutputExistsError` unless ``resume`` (and there is a
    checkpoint to resume from) or ``overwrite`` (which deletes those files, the stale
    checkpoint included, once the activations have been checked). ``source`` names the
    activations in error messages (e.g. the file they came from): all-zero or constant
    activations raise :class:`~rip_atoms.sae.errors.DegenerateActivationsError`.

    Ctrl-C (SIGINT, from the main thread) is deferred to the end of the current step: the
    state is saved as a checkpoint (when there is an ``out_dir``) and
    :class:`~rip_atoms.sae.errors.TrainingInterrupted` says which step ("step 1500 of 2000
    saved …, rerun with --resume to continue"); no temporary file is left behind. A second
    Ctrl-C stops at once (the last checkpoint on disk stays valid).
    """
    cfg = config or TrainConfig()
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] < 1:
        raise ShapeMismatchError(f"{source}: expected an n×d matrix with d ≥ 1, got shape "
                                 f"{shape}")
    with _threads(cfg, X.shape[1]):
        return _train(X, cfg, out_dir, resume, overwrite, progress, metadata, stop_after,
                      source)


@contextlib.contextmanager
def _threads(cfg: TrainConfig, d: int):
    """Small problems run single-threaded: per-op thread start-up dominates below ~2²⁵
    multiply-adds per GEMM, and more so on a shared machine."""
    n = cfg.threads
    if n == 0:
        n = 1 if cfg.batch_size * d * cfg.width < 2**25 else torch.get_num_threads()
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


#: the files a training run writes into its output folder
RUN_FILES = (CHECKPOINT, "cfg.json", "sae_weights.safetensors", "sparsity.safetensors",
             "training.json")


def check_output_folder(out: str | Path, *, resume: bool = False, overwrite: bool = False
                        ) -> tuple[bool, list[str]]:
    """What :func:`train_sae` will do with the output folder ``out``: (resume from
    ``out/checkpoint.pt``?, the run files it deletes first). Raises
    :class:`~rip_atoms.sae.errors.OutputExistsError` (one line naming the folder) when ``out``
    holds an earlier run's files (:data:`RUN_FILES`) and the call neither resumes one with a
    checkpoint nor overwrites; FileFormatError when ``out`` is a file. Touches nothing, so a
    caller can check before loading the activations."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"{out}: exists and is not a folder (training output)")
    present = [name for name in RUN_FILES if (out / name).is_file()]
    if resume and CHECKPOINT in present:
        return True, []
    if not present or overwrite:
        return False, present
    finished = [name for name in present if name != CHECKPOINT]
    if resume:
        raise OutputExistsError(
            f"{out}: nothing to resume (no {CHECKPOINT}) but the folder holds a trained SAE "
            f"({', '.join(finished)}); pass --overwrite to train a new one in its place"
        )
    what = ("a trained SAE and a training checkpoint" if finished and CHECKPOINT in present
            else "a trained SAE" if finished else "a training checkpoint")
    raise OutputExistsError(
        f"{out}: already holds {what} ({', '.join(present)}); pass --resume to continue it or "
        "--overwrite to replace it"
    )


def _prepare_output(out: Path, delete: list[str]) -> None:
    """Create the folder, remove a killed run's temporary files, delete ``delete``."""
    from rip_atoms.sae.harvest import remove_stale_temporaries

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{out}: cannot create the output folder ({exc.strerror})"
                              ) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise FileFormatError(f"{out}: the output folder is not writable")
    remove_stale_temporaries(out, RUN_FILES)
    for name in delete:
        (out / name).unlink(missing_ok=True)


class _SigintDeferral:
    """While active (main thread, Python's default SIGINT handler in place), the first SIGINT
    only sets ``requested``; the loop checks it between steps. A second SIGINT raises
    KeyboardInterrupt at once. Elsewhere (other threads, a custom handler) SIGINT raises
    KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def _handler(self, _signum, _frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _SigintDeferral:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def _interrupt_note(out: Path | None, saved_step: int | None, step: int, steps: int,
                    finished: bool) -> str:
    if out is None:
        return f"training stopped at step {step} of {steps}; nothing saved (no output folder)"
    if finished:
        return f"training finished (step {steps} of {steps}); the SAE is saved in {out}"
    if saved_step is not None:
        return (f"step {saved_step} of {steps} saved in {out / CHECKPOINT}, rerun with --resume "
                "to continue")
    if (out / CHECKPOINT).is_file():
        return f"{out / CHECKPOINT} is unchanged, rerun with --resume to continue"
    return f"no training step saved yet in {out}"


def _train(X, cfg, out_dir, resume, overwrite, progress, metadata, stop_after,
           source) -> TrainResult:
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    resuming, delete = (check_output_folder(out, resume=resume, overwrite=overwrite)
                        if out is not None else (False, []))
    saved_step: int | None = None
    finished = False
    trainer = None
    try:
        trainer = _Trainer(X, cfg, metadata, source)
        if out is not None:
            _prepare_output(out, delete)
        resumed = 0
        if resuming:
            trainer.load_checkpoint(ckpt)
            resumed = saved_step = trainer.step
        else:
            trainer.init_state()
        with _SigintDeferral() as sigint:
            start_step = trainer.step
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=cfg.steps, initial=trainer.step, file=sys.stderr,
                           unit="step", desc=f"train {cfg.architecture} N={cfg.width}",
                           dynamic_ncols=True)
            try:
                steps_this_call = 0
                while trainer.step < cfg.steps:
                    sse, l0 = trainer.train_step()
                    if (cfg.resample_every > 0 and trainer.step % cfg.resample_every == 0
                            and trainer.step <= cfg.resample_until * cfg.steps):
                        trainer.resampled += trainer.resample_dead()
                    w = trainer.window
                    w["sse"] += sse
                    w["l0"] += l0 * cfg.batch_size
                    w["tokens"] += cfg.batch_size
                    steps_this_call += 1
                    if trainer.step % cfg.log_every == 0 or trainer.step == cfg.steps:
                        rec = _window_record(trainer)
                        trainer.history.append(rec)
                        trainer.window = {"sse": 0.0, "l0": 0.0, "tokens": 0}
                        if bar is not None:
                            bar.set_postfix(loss=f"{rec['mse']:.4g}", L0=f"{rec['l0']:.1f}",
                                            R2=f"{rec['r2']:.4f}", dead=rec["dead"],
                                            refresh=False)
                    if bar is not None:
                        bar.update(1)
                    if ckpt is not None and cfg.checkpoint_every > 0 and (
                            trainer.step % cfg.checkpoint_every == 0) and (
                            trainer.step < cfg.steps):
                        trainer.save_checkpoint(ckpt)
                        saved_step = trainer.step
                    if sigint.requested:
                        break
                    if (stop_after is not None and steps_this_call >= stop_after
                            and trainer.step < cfg.steps):
                        if ckpt is not None:
                            trainer.save_checkpoint(ckpt)
                            saved_step = trainer.step
                        break
            finally:
                if bar is not None:
                    bar.close()
            if sigint.requested and trainer.step < cfg.steps:
                if ckpt is not None and saved_step != trainer.step:
                    trainer.save_checkpoint(ckpt)
                    saved_step = trainer.step
                raise KeyboardInterrupt
            seconds = time.perf_counter() - t0
            last = trainer.history[-1] if trainer.history else _window_record(trainer)
            sae = trainer.export()
            done = trainer.step >= cfg.steps
            thresholds = None
            if trainer.p.threshold is not None:
                th = sae.threshold.double().numpy()
                thresholds = {"min": float(th.min()), "median": float(np.median(th)),
                              "max": float(th.max()),
                              "training_median": float(trainer.p.threshold.median()),
                              "training_initial_median": trainer.initial_threshold_median}
            steps_run = trainer.step - start_step
            result = TrainResult(
                sae=sae, config=cfg, steps=trainer.step, tokens=trainer.step * cfg.batch_size,
                l0=last["l0"], mse=last["mse"], r2=last["r2"], dead_latents=last["dead"],
                thresholds=thresholds,
                l1_coefficient=trainer.l1 if cfg.architecture == "standard" else None,
                input_scale=trainer.scale, whitened=cfg.whiten, seconds=seconds,
                tokens_per_second=steps_run * cfg.batch_size / seconds if seconds > 0 else 0.0,
                resumed_from_step=resumed, history=list(trainer.history),
                out_dir=str(out_dir) if out_dir is not None else None,
            )
            if out is not None and done:
                _save_result(trainer, result, out)
                finished = True
            if sigint.requested:  # Ctrl-C while the finished SAE was being written
                raise KeyboardInterrupt
        return result
    except Interrupted:
        raise
    except KeyboardInterrupt:
        if out is not None:
            from rip_atoms.sae.harvest import remove_stale_temporaries

            remove_stale_temporaries(out, RUN_FILES)
        step = trainer.step if trainer is not None and hasattr(trainer, "step") else 0
        raise TrainingInterrupted(
            _interrupt_note(out, saved_step, step, cfg.steps, finished), step=saved_step,
            steps=cfg.steps, checkpoint=str(ckpt) if ckpt is not None else None,
        ) from None


def _window_record(tr: _Trainer) -> dict:
    w = tr.window
    tokens = max(w["tokens"], 1)
    mse = w["sse"] / tokens
    dead = int((tr.since_fired >= tr.dead_window).sum())
    return {"step": tr.step, "mse": mse, "l0": w["l0"] / tokens,
            "r2": 1.0 - mse / tr.total_var if tr.total_var > 0 else float("nan"),
            "dead": dead, "l1": tr.l1 if tr.cfg.architecture == "standard" else None,
            "threshold_median": float(tr.p.threshold.median())
            if tr.p.threshold is not None else None}


def _save_result(trainer: _Trainer, result: TrainResult, out: Path) -> None:
    tokens_seen = max(trainer.step * trainer.cfg.batch_size, 1)
    freq = (trainer.fired_count / tokens_seen).float()
    log_sparsity = torch.log10(freq + 1e-10)
    provenance = {
        "rip_atoms": {
            "trainer": "rip_atoms.sae.train",
            "architecture": trainer.cfg.architecture,
            "config": trainer.cfg.to_dict(),
            "input_convention": "raw activations (unit-mean-square scale and "
                                + ("AIP whitening " if trainer.cfg.whiten else "")
                                + "folded into the weights; decoder rows unit)",
            "training_input_scale": trainer.scale,
            "whitened": trainer.cfg.whiten,
            "steps": trainer.step,
            "tokens": result.tokens,
            "final_l0": result.l0,
            "final_r2_train": result.r2,
            "dead_latents": result.dead_latents,
            "data_fingerprint": trainer.fingerprint,
        },
        "l0": result.l0,
        "num_dead_features": result.dead_latents,
    }
    save_sae_lens(result.sae, out, metadata=provenance, log_sparsity=log_sparsity)
    summary = result.to_dict()
    write_json_atomic(out / "training.json", summary)
