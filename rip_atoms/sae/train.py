"""Training the TSAE (threshold-activated SAE, JumpReLU) and the ReLU + L1 SAE baseline.

Both train on activations t = s·A x (rows), where A = I, or A = W = S̃^{1/2} the AIP whitening
(``whiten=True``, S̃ = E[xxᵀ]⁻¹ fitted on the training activations), and s is the constant that
makes E‖t‖² = 1 (Gemma Scope / dictionary_learning convention; the JumpReLU bandwidth and initial
threshold are tuned for this scale). Parameters are float32.

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

**Device** (``device="cuda"``, ``"cuda:1"``, …; default ``"cpu"``): the same step runs there
with every tensor on the device, the training rows included when they fit in half its free
memory (else one page-locked transfer per batch); the crossover to dense GEMMs is lower there
(selected fraction 0.02, where a GEMM is cheap next to a gather) unless ``sparse_density`` is
given. Random draws come from one CPU generator, so every device draws the same numbers; results
agree across devices up to float rounding (and the GPU's atomic-addition order), and checkpoints
move between devices.

**Saving** folds the training coordinates away, so the saved SAE reads raw activations x:
W_enc ← s·A W_enc, W_dec ← W_dec A⁻¹/s, b_dec ← b_dec A⁻¹/s (b_enc, θ unchanged), then the
decoder norms nᵢ are folded (W_dec,i/nᵢ; W_enc[:, i], b_enc,i, θᵢ times nᵢ) so atoms are unit and
codes are in activation units. It is written in the SAELens v6 layout with our provenance in
``metadata.rip_atoms``.

**Checkpoints** (every ``checkpoint_every`` steps, one file written atomically) hold the
parameters, the Adam state, the data order and the generator state, the dead-latent counters and
the controller state; ``resume=True`` continues exactly (bitwise on the same machine, device and
thread count; on another device up to float rounding) from the last one, so a killed run loses
at most the steps since it. Ctrl-C (SIGINT) is deferred to the end of the current step, which is
then checkpointed, so an interrupted run loses nothing
(:class:`~rip_atoms.sae.sae_errors.TrainingInterrupted` names the step). An output folder that holds
an earlier run is refused unless the call resumes it or overwrites it (which deletes the old SAE
and its stale checkpoint first), so runs never mix.

**Bad data**: activations that are all zero, or the same vector in every row, raise
:class:`~rip_atoms.sae.sae_errors.DegenerateActivationsError` naming their source.

**Code**: this module is the entry point (:func:`train_sae`, :class:`TrainResult`; it also
re-exports :class:`TrainConfig`, :func:`check_output_folder`, ``CHECKPOINT`` and ``RUN_FILES``).
The hyper-parameters are :mod:`rip_atoms.sae.train_config`, the activation checks and moments
:mod:`rip_atoms.sae.training_data`, the optimisation :mod:`rip_atoms.sae.trainer`, checkpoints
:mod:`rip_atoms.sae.checkpoint`, the output folder :mod:`rip_atoms.sae.output_folder` and Ctrl-C
:mod:`rip_atoms.sae.interrupts`.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rip_atoms.errors import Interrupted, ShapeMismatchError
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.checkpoint import CHECKPOINT
from rip_atoms.sae.formats._io import write_json_atomic
from rip_atoms.sae.formats.sae_lens import save_sae_lens
from rip_atoms.sae.interrupts import SigintDeferral, interrupt_note
from rip_atoms.sae.output_folder import RUN_FILES, check_output_folder, prepare_output
from rip_atoms.sae.sae_errors import TrainingInterrupted
from rip_atoms.sae.train_config import TrainConfig
from rip_atoms.sae.trainer import Trainer


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
    with :class:`~rip_atoms.sae.sae_errors.OutputExistsError` unless ``resume`` (and there is a
    checkpoint to resume from) or ``overwrite`` (which deletes those files, the stale
    checkpoint included, once the activations have been checked). ``source`` names the
    activations in error messages (e.g. the file they came from): all-zero or constant
    activations raise :class:`~rip_atoms.sae.sae_errors.DegenerateActivationsError`.

    Ctrl-C (SIGINT, from the main thread) is deferred to the end of the current step: the
    state is saved as a checkpoint (when there is an ``out_dir``) and
    :class:`~rip_atoms.sae.sae_errors.TrainingInterrupted` says which step ("step 1500 of 2000
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


@dataclass
class _Saved:
    """What a run has on disk so far (for the note of an interrupt): the step of its last
    checkpoint (None: none yet) and whether the finished SAE is written."""

    step: int | None = None
    finished: bool = False


def _train(X, cfg, out_dir, resume, overwrite, progress, metadata, stop_after,
           source) -> TrainResult:
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    resuming, delete = (check_output_folder(out, resume=resume, overwrite=overwrite)
                        if out is not None else (False, []))
    saved = _Saved()
    trainer = None
    try:
        trainer = Trainer(X, cfg, metadata, source)
        if out is not None:
            prepare_output(out, delete)
        resumed = 0
        if resuming:
            trainer.load_checkpoint(ckpt)
            resumed = saved.step = trainer.step
        else:
            trainer.init_state()
        with SigintDeferral() as sigint:
            start_step = trainer.step
            _run_steps(trainer, cfg, sigint, ckpt, stop_after, progress, saved)
            if sigint.requested and trainer.step < cfg.steps:
                if ckpt is not None and saved.step != trainer.step:
                    trainer.save_checkpoint(ckpt)
                    saved.step = trainer.step
                raise KeyboardInterrupt
            result = _train_result(trainer, cfg, t0, start_step, resumed, out_dir)
            if out is not None and trainer.step >= cfg.steps:
                _save_result(trainer, result, out)
                saved.finished = True
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
            interrupt_note(out, saved.step, step, cfg.steps, saved.finished),
            step=saved.step, steps=cfg.steps, checkpoint=str(ckpt) if ckpt is not None else None,
        ) from None


def _run_steps(trainer: Trainer, cfg: TrainConfig, sigint: SigintDeferral,
               ckpt: Path | None, stop_after: int | None, progress: bool,
               saved: _Saved) -> None:
    """The optimiser steps up to ``cfg.steps``: dead-latent resampling, the logged windows,
    the periodic checkpoints (``saved.step`` kept current), and a stop after ``stop_after``
    steps (checkpointed) or at a deferred Ctrl-C (left to the caller to checkpoint)."""
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
                                    R2=f"{rec['r2']:.4f}", dead=rec["dead"], refresh=False)
            if bar is not None:
                bar.update(1)
            if ckpt is not None and cfg.checkpoint_every > 0 and (
                    trainer.step % cfg.checkpoint_every == 0) and trainer.step < cfg.steps:
                trainer.save_checkpoint(ckpt)
                saved.step = trainer.step
            if sigint.requested:
                break
            if (stop_after is not None and steps_this_call >= stop_after
                    and trainer.step < cfg.steps):
                if ckpt is not None:
                    trainer.save_checkpoint(ckpt)
                    saved.step = trainer.step
                break
    finally:
        if bar is not None:
            bar.close()


def _train_result(trainer: Trainer, cfg: TrainConfig, t0: float, start_step: int,
                  resumed: int, out_dir) -> TrainResult:
    """The :class:`TrainResult` of the run so far: the last logged window's L0, MSE, R² and
    dead count (the open window's when none is logged), the exported SAE and its thresholds'
    summary; tokens/s = steps of this call × batch size / its seconds."""
    seconds = time.perf_counter() - t0
    last = trainer.history[-1] if trainer.history else _window_record(trainer)
    sae = trainer.export()
    thresholds = None
    if trainer.p.threshold is not None:
        th = sae.threshold.double().numpy()
        thresholds = {"min": float(th.min()), "median": float(np.median(th)),
                      "max": float(th.max()),
                      "training_median": float(trainer.p.threshold.median()),
                      "training_initial_median": trainer.initial_threshold_median}
    steps_run = trainer.step - start_step
    return TrainResult(
        sae=sae, config=cfg, steps=trainer.step, tokens=trainer.step * cfg.batch_size,
        l0=last["l0"], mse=last["mse"], r2=last["r2"], dead_latents=last["dead"],
        thresholds=thresholds,
        l1_coefficient=trainer.l1 if cfg.architecture == "standard" else None,
        input_scale=trainer.scale, whitened=cfg.whiten, seconds=seconds,
        tokens_per_second=steps_run * cfg.batch_size / seconds if seconds > 0 else 0.0,
        resumed_from_step=resumed, history=list(trainer.history),
        out_dir=str(out_dir) if out_dir is not None else None,
    )


def _window_record(tr: Trainer) -> dict:
    w = tr.window
    tokens = max(w["tokens"], 1)
    mse = w["sse"] / tokens
    dead = int((tr.since_fired >= tr.dead_window).sum())
    return {"step": tr.step, "mse": mse, "l0": w["l0"] / tokens,
            "r2": 1.0 - mse / tr.total_var if tr.total_var > 0 else float("nan"),
            "dead": dead, "l1": tr.l1 if tr.cfg.architecture == "standard" else None,
            "threshold_median": float(tr.p.threshold.median())
            if tr.p.threshold is not None else None}


def _save_result(trainer: Trainer, result: TrainResult, out: Path) -> None:
    tokens_seen = max(trainer.step * trainer.cfg.batch_size, 1)
    freq = (trainer.fired_count.cpu() / tokens_seen).float()
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
