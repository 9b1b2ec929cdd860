"""The optimisation of :func:`rip_atoms.sae.train.train_sae` (the formulas are in
:mod:`rip_atoms.sae.train`): the training coordinates, initialisation, one step with hand-written
gradients (dense GEMMs or ``embedding_bag`` sums over the selected pairs), dead-latent
resampling, and export of the SAE in raw coordinates. Checkpointing is
:class:`~rip_atoms.sae.checkpoint.TrainerCheckpoints`.

**Devices** (``TrainConfig.device``): every tensor of the step lives on the training device and
the same code runs on a CPU and a GPU. The training rows live there too when they fit
(:class:`~rip_atoms.sae.training_data.BatchSource`; otherwise each batch is one asynchronous
transfer from page-locked host memory). The random draws (data order, initial atoms, resampling)
come from one CPU generator, so a run draws the same numbers on every device; a dense step
synchronises with the host once, for its (SSE, L0) pair (a sparse one also for the size of its
selection). The gradients are the same on every
device; which path computes them (``embedding_bag`` sums or dense GEMMs) is chosen per step by
the selected-pair fraction against :meth:`TrainConfig.step_density` (0.2 on a CPU, 0.02 on a
GPU, unless ``sparse_density`` says otherwise)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from rip_atoms.errors import ParameterError
from rip_atoms.kernels.torch_gram import resolve_device
from rip_atoms.metric import fit_metric
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.checkpoint import TrainerCheckpoints
from rip_atoms.sae.reductions import clip_grad_norm_fixed, fixed_order_sum
from rip_atoms.sae.train_config import TrainConfig
from rip_atoms.sae.training_data import (
    BatchSource,
    checked_activations,
    data_fingerprint,
    data_moments,
    fits_on_device,
)


class _Params:
    """The trainable tensors (training coordinates) and their Adam state."""

    def __init__(self, d: int, m: int, jumprelu: bool, device: torch.device):
        self.W_enc = torch.zeros(d, m, device=device)
        self.b_enc = torch.zeros(m, device=device)
        self.W_dec = torch.zeros(m, d, device=device)
        self.b_dec = torch.zeros(d, device=device)
        self.threshold = torch.zeros(m, device=device) if jumprelu else None

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec,
               "b_dec": self.b_dec}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / cfg.lr_warmup_steps) if cfg.lr_warmup_steps > 0 else 1.0
    decay_steps = int(cfg.lr_decay_frac * cfg.steps)
    start = cfg.steps - decay_steps
    decay = 1.0 if step < start or decay_steps == 0 else max(0.0, (cfg.steps - step) / decay_steps)
    return warm * decay


class Trainer(TrainerCheckpoints):
    def __init__(self, X: np.ndarray, cfg: TrainConfig, metadata: dict | None,
                 source: str = "activations", resident: bool | None = None):
        self.cfg = cfg
        self.metadata = dict(metadata or {})
        dev = self.device = resolve_device(cfg.device)
        if dev.type not in ("cpu", "cuda"):
            raise ParameterError(f"device {cfg.device!r}: SAE training runs on cpu or cuda "
                                 f"devices, not {dev.type}")
        X, data, mean_square = checked_activations(X, source)
        n, d = X.shape
        self.d, self.m = d, cfg.width
        self.fingerprint = data_fingerprint(data)
        self.density = cfg.step_density(dev.type)
        if resident is None:
            resident = fits_on_device(data.numel() * data.element_size(), dev)
        if resident:
            data = data.to(dev)  # whiten and scale where the rows will live
        # ---- training coordinates t = s·A x
        self.A = None
        self.A_inv = None
        if cfg.whiten:
            metric = fit_metric(X, ridge=cfg.ridge, source=source)
            self.A = torch.from_numpy(metric.W).float()
            self.A_inv = torch.from_numpy(np.linalg.inv(metric.W)).float()
            data = data @ self.A.to(data.device)
            mean_square = data_moments(data)[0]
        self.scale = float(1.0 / math.sqrt(mean_square))
        data.mul_(self.scale)
        self.source = BatchSource(data, dev, resident=resident)
        self.data = self.source.data
        self.n = n
        self.mean = data.mean(0).to(dev)
        self.total_var = data_moments(data)[1]  # E‖t − t̄‖², accumulated in float64
        self.dead_window = min(cfg.dead_after_tokens, n)

    # ------------------------------------------------------------------ init
    def init_state(self) -> None:
        cfg = self.cfg
        dev = self.device
        gen = torch.Generator().manual_seed(cfg.seed)  # on the CPU: same draws on any device
        self.gen = gen
        p = _Params(self.d, self.m, cfg.architecture == "jumprelu", dev)
        if cfg.decoder_init == "data":
            idx = torch.randint(0, self.n, (self.m,), generator=gen)
            W = self.source.rows(idx) - self.mean
            noise = torch.randn(W.shape, generator=gen).to(dev)
            W = W + 1e-3 * noise * W.norm(dim=1, keepdim=True)
        else:
            W = torch.randn(self.m, self.d, generator=gen).to(dev)
        W = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
        p.W_dec.copy_(W)
        p.W_enc.copy_(W.T)
        p.b_dec.copy_(self.mean)
        self.p = p
        self.perm = torch.randperm(self.n, generator=gen)
        self.source.set_order(self.perm)
        self.pos = 0
        self.step = 0
        self.since_fired = torch.zeros(self.m, dtype=torch.int64, device=dev)
        self.fired_count = torch.zeros(self.m, dtype=torch.float64, device=dev)
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
        yy = float(fixed_order_sum(y * y))
        if yy > 0:
            alpha = float(fixed_order_sum(xc * y)) / yy
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
        return self.source.batch(0, min(self.cfg.batch_size, self.n))

    def _next_batch(self) -> torch.Tensor:
        b = self.cfg.batch_size
        if self.pos + b > self.n:
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.source.set_order(self.perm)
            self.pos = 0
        x = self.source.batch(self.pos, self.pos + b)
        self.pos += b
        return x

    # ------------------------------------------------------------------ one step
    def train_step(self) -> tuple[float, float]:
        """One optimiser step; returns (Σ_b ‖t_b − t̂_b‖², L0) of the batch (fetching this pair
        is the dense path's one synchronisation with the host; the sparse path also reads the
        selection's size)."""
        cfg, p = self.cfg, self.p
        x = self._next_batch()
        B = x.shape[0]
        xc = x - p.b_dec
        h = torch.addmm(p.b_enc, xc, p.W_enc)  # the one dense GEMM of the sparse path
        jump = p.threshold is not None
        eps = cfg.bandwidth
        warm = min(1.0, (self.step + 1) / cfg.sparsity_warmup_steps) if (
            cfg.sparsity_warmup_steps > 0) else 1.0
        sparse = False
        if self.density > 0:
            # the latents that need a gradient: active ones, and (TSAE) those in the STE window
            sel = h > (p.threshold - eps / 2) if jump else h > 0
            sparse = self.density >= 1 or int(sel.sum()) <= self.density * B * self.m
        if sparse:
            sse_t, n_active = self._grads_sparse(x, xc, h, sel, warm)
        else:
            sse_t, n_active = self._grads_dense(x, xc, h, warm)
        count = n_active.sum()
        # unit-norm decoder: remove the gradient component parallel to each row
        W = p.W_dec
        p.W_dec.grad.sub_((p.W_dec.grad * W).sum(1, keepdim=True) * W)
        if cfg.grad_clip > 0:
            clip_grad_norm_fixed(list(p.tensors().values()), cfg.grad_clip)
        lr = cfg.lr * _lr_factor(self.step, cfg)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()
        W.div_(W.norm(dim=1, keepdim=True).clamp_min(1e-12))
        if jump:
            p.threshold.clamp_(min=0.0)
        fired = n_active > 0
        self.since_fired += B
        self.since_fired.masked_fill_(fired, 0)
        self.fired_count += n_active.double()
        sse, total = torch.stack([sse_t.double(), count.double()]).tolist()
        l0 = total / B
        if not jump and cfg.target_l0 is not None:
            r = max(-1.0, min(1.0, l0 / cfg.target_l0 - 1.0))
            self.l1 *= math.exp(cfg.l1_adapt_rate * r)
        self.step += 1
        return sse, l0

    def _dl0_coefficient(self, n_active: torch.Tensor, B: int, warm: float) -> torch.Tensor:
        """(∂/∂L0 of c·(L0/L0* − 1)², with the warm-up factor on c) / (ε·B): the weight of the
        window counts in ∂L0/∂θ, as a float32 scalar on the device (no host round trip)."""
        cfg = self.cfg
        l0 = n_active.sum().double() / B
        dl0 = 2.0 * cfg.sparsity_coefficient * warm * (l0 / cfg.target_l0 - 1.0) / cfg.target_l0
        return (dl0 / (cfg.bandwidth * B)).float()

    def _grads_dense(self, x, xc, h, warm) -> tuple[float, torch.Tensor]:
        """Gradients with dense GEMMs (early training, or dense codes)."""
        cfg, p = self.cfg, self.p
        B = x.shape[0]
        active = h > p.threshold if p.threshold is not None else h > 0
        f = h * active
        e = torch.addmm(p.b_dec, f, p.W_dec).sub_(x)  # t̂ − t
        sse = e.pow(2).sum()
        n_active = active.sum(0)
        g_out = e.mul_(2.0 / B)  # ∂MSE/∂t̂
        torch.mm(f.T, g_out, out=p.W_dec.grad)
        p.b_dec.grad.copy_(g_out.sum(0))
        g_f = g_out @ p.W_dec.T  # ∂MSE/∂f
        if p.threshold is not None:
            eps = cfg.bandwidth
            u = (h - p.threshold).abs_() < (eps / 2)  # rectangle kernel window
            coef = self._dl0_coefficient(n_active, B, warm)
            # ∂/∂θ: MSE through the JumpReLU STE + L0 through the Heaviside STE
            g_theta = -(p.threshold / eps) * (g_f * u).sum(0) - coef * u.sum(0)
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
        cfg, p, dev = self.cfg, self.p, self.device
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
        off_tok = torch.zeros(B + 1, dtype=torch.long, device=dev)
        torch.cumsum(torch.bincount(b, minlength=B), 0, out=off_tok[1:])
        v = fv.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            xh = F.embedding_bag(i, p.W_dec, off_tok, mode="sum", per_sample_weights=v,
                                 include_last_offset=True)
            e = (xh.detach() + p.b_dec).sub_(x)  # t̂ − t
            g_out = e.mul(2.0 / B)
            xh.backward(g_out)
        sse = e.pow(2).sum()
        g_f = v.grad  # ∂MSE/∂f at the selected pairs
        n_active = torch.bincount(i[act], minlength=m)
        if p.threshold is not None:
            coef = self._dl0_coefficient(n_active, B, warm)
            iw = i[win]
            g_theta = torch.zeros(m, device=dev)
            g_theta.index_add_(0, iw, g_f[win])
            g_theta.mul_(-p.threshold / cfg.bandwidth)
            g_theta.sub_(coef * torch.bincount(iw, minlength=m))
            p.threshold.grad.copy_(g_theta)
            g_hv = g_f * act
        else:
            g_hv = (g_f + self.l1 / B) * act
        order = torch.argsort(i, stable=True)
        off_lat = torch.zeros(m + 1, dtype=torch.long, device=dev)
        torch.cumsum(torch.bincount(i, minlength=m), 0, out=off_lat[1:])
        bo = b[order]
        p.W_dec.grad.copy_(F.embedding_bag(bo, g_out, off_lat, mode="sum",
                                           per_sample_weights=fv[order],
                                           include_last_offset=True))
        p.W_enc.grad.copy_(F.embedding_bag(bo, xc, off_lat, mode="sum",
                                           per_sample_weights=g_hv[order],
                                           include_last_offset=True).T)
        g_b_enc = torch.zeros(m, device=dev)
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
        x = self.source.rows(idx)
        h = torch.addmm(p.b_enc, x - p.b_dec, p.W_enc)
        f = h * (h > (p.threshold if p.threshold is not None else 0))
        e = x - torch.addmm(p.b_dec, f, p.W_dec)
        w = e.pow(2).sum(1).double()
        if float(w.sum()) <= 0:
            return 0
        pick = torch.multinomial(w.cpu(), dead.numel(), replacement=dead.numel() > w.numel(),
                                 generator=self.gen)  # the CPU generator, as everywhere
        u = e[pick.to(self.device)]
        u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
        live = torch.ones(self.m, dtype=torch.bool, device=self.device)
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


    # ------------------------------------------------------------------ export
    def export(self) -> SparseAutoencoder:
        """The SAE in raw coordinates with unit decoder rows (module docstring), on the CPU."""
        p, s = self.p, self.scale
        W_enc = p.W_enc.cpu().double() * s
        W_dec = p.W_dec.cpu().double() / s
        b_dec = p.b_dec.cpu().double() / s
        if self.A is not None:
            A, A_inv = self.A.double(), self.A_inv.double()
            W_enc = A @ W_enc
            W_dec = W_dec @ A_inv
            b_dec = b_dec @ A_inv
        sae = SparseAutoencoder(
            architecture=self.cfg.architecture, W_enc=W_enc.float(), W_dec=W_dec.float(),
            b_dec=b_dec.float(), b_enc=p.b_enc.cpu().clone(),
            threshold=p.threshold.cpu().clone() if p.threshold is not None else None,
            apply_b_dec_to_input=True, normalize_activations="none",
            metadata=self.metadata, source="rip_atoms.sae.train", format="rip_atoms",
        )
        return sae.unit_decoder()
