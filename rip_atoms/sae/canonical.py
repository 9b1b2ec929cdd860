"""One canonical in-memory SAE, whatever file format it came from.

Conventions (SAELens orientation): ``W_enc`` is d_in×d_sae, ``W_dec``
is d_sae×d_in (its *rows* are the atoms), ``b_enc`` d_sae, ``b_dec`` d_in. For an input x (a row):

* input processing  x' = ν(x) − [apply_b_dec_to_input]·b_dec, where ν is the input
  normalisation: ``none`` (ν(x) = x), ``expected_average_only_in`` (ν(x) = s·x with one constant
  ``input_scale`` s), ``constant_norm_rescale`` (ν(x) = √d_in·x/‖x‖, per token) or ``layer_norm``
  (ν(x) = (x − mean(x))/std(x), per token);
* pre-activation    h = x' W_enc + b_enc;
* codes f, by architecture:
    - ``standard``:  f = relu(h);
    - ``jumprelu``:  f = relu(h)·1[h > θ] (strict, one θᵢ per latent);
    - ``topk``:      f = relu of the k largest hᵢ (of hᵢ·‖W_dec,i‖ with
      ``rescale_acts_by_decoder_norm``, in which case the kept values are those products), 0
      elsewhere;
    - ``gated``:     f = 1[x' W_enc + b_gate > 0] · relu(x' (W_enc ⊙ exp(r_mag)) + b_mag);
* reconstruction    x̂ = ν⁻¹(f W_dec + b_dec) (for ``topk`` with rescaling, f/‖W_dec,i‖ is
  decoded).

The dictionary of atoms is D = W_decᵀ (H×N, columns are atoms, docs/design.md) with the decoder
norms ‖W_dec,i‖ kept, so codes map to unit atoms as fᵢ·‖W_dec,i‖.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import NonFiniteError, ParameterError, ShapeMismatchError
from rip_atoms.sae.sae_errors import UnknownArchitectureError

ARCHITECTURES = ("standard", "jumprelu", "topk", "gated")
NORMALIZATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class NormState:
    """Per-token state of a runtime input normalisation, needed to undo it on the output."""

    scale: torch.Tensor | None = None  # ν(x) = scale·(x − shift)
    shift: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class SparseAutoencoder:
    """The canonical SAE: weights in SAELens orientation plus everything needed to encode.

    Attributes
    ----------
    architecture : ``standard`` | ``jumprelu`` | ``topk`` | ``gated`` (from the file's config,
        never guessed from shapes).
    W_enc, b_enc, W_dec, b_dec : float32 tensors (``b_enc`` is None for ``gated``).
    threshold : θ (d_sae) for ``jumprelu``.
    k, rescale_acts_by_decoder_norm : for ``topk``.
    b_gate, r_mag, b_mag : for ``gated``.
    apply_b_dec_to_input : subtract b_dec from the (normalised) input before encoding.
    normalize_activations, input_scale : the input normalisation ν (module docstring);
        ``input_scale`` is s for ``expected_average_only_in`` (None when the file does not say).
    metadata : the file's metadata (hook name, model, …) plus our provenance.
    source, format : where it was read from and in which format.
    notes : caveats found while loading (e.g. a per-token top-k standing in for a batch top-k).
    """

    architecture: str
    W_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    b_enc: torch.Tensor | None = None
    threshold: torch.Tensor | None = None
    k: int | None = None
    rescale_acts_by_decoder_norm: bool = False
    b_gate: torch.Tensor | None = None
    r_mag: torch.Tensor | None = None
    b_mag: torch.Tensor | None = None
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    input_scale: float | None = None
    metadata: dict = field(default_factory=dict)
    source: str = "memory"
    format: str = "tensors"
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        src = self.source
        if self.architecture not in ARCHITECTURES:
            raise UnknownArchitectureError(
                f"{src}: unknown SAE architecture {self.architecture!r} "
                f"(known: {', '.join(ARCHITECTURES)})"
            )
        if self.normalize_activations not in NORMALIZATIONS:
            raise UnknownArchitectureError(
                f"{src}: unknown normalize_activations {self.normalize_activations!r} "
                f"(known: {', '.join(NORMALIZATIONS)})"
            )
        for name in ("W_enc", "W_dec", "b_dec", "b_enc", "threshold", "b_gate", "r_mag", "b_mag"):
            t = getattr(self, name)
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                t = torch.as_tensor(np.asarray(t))
            t = t.detach().to(torch.float32).contiguous()
            object.__setattr__(self, name, t)
        if self.W_enc.ndim != 2 or self.W_dec.ndim != 2:
            raise ShapeMismatchError(
                f"{src}: W_enc and W_dec must be matrices, got shapes "
                f"{tuple(self.W_enc.shape)} and {tuple(self.W_dec.shape)}"
            )
        d_in, d_sae = self.W_enc.shape
        expect = {
            "W_dec": (d_sae, d_in), "b_dec": (d_in,), "b_enc": (d_sae,), "threshold": (d_sae,),
            "b_gate": (d_sae,), "r_mag": (d_sae,), "b_mag": (d_sae,),
        }
        for name, shape in expect.items():
            t = getattr(self, name)
            if t is not None and tuple(t.shape) != shape:
                raise ShapeMismatchError(
                    f"{src}: {name} has shape {tuple(t.shape)}, expected {shape} for W_enc of "
                    f"shape {(d_in, d_sae)} (d_in×d_sae)"
                )
        required = {
            "standard": ("b_enc",), "jumprelu": ("b_enc", "threshold"), "topk": ("b_enc",),
            "gated": ("b_gate", "r_mag", "b_mag"),
        }[self.architecture]
        missing = [n for n in required if getattr(self, n) is None]
        if missing:
            raise ShapeMismatchError(
                f"{src}: a {self.architecture} SAE needs {', '.join(missing)}"
            )
        if self.architecture == "topk":
            if self.k is None or not 1 <= int(self.k) <= d_sae:
                raise ParameterError(f"{src}: topk needs 1 ≤ k ≤ d_sae = {d_sae}, got {self.k}")
            object.__setattr__(self, "k", int(self.k))
        if self.input_scale is not None:
            s = float(self.input_scale)
            if not (math.isfinite(s) and s > 0):
                raise ParameterError(f"{src}: input_scale must be a positive number, got {s}")
            object.__setattr__(self, "input_scale", s)
        for name in ("W_enc", "W_dec", "b_dec", "b_enc", "threshold", "b_gate", "r_mag", "b_mag"):
            t = getattr(self, name)
            if t is not None and not bool(torch.isfinite(t).all()):
                raise NonFiniteError(f"{src}: {name} holds non-finite values")
        object.__setattr__(self, "metadata", dict(self.metadata))
        object.__setattr__(self, "notes", tuple(self.notes))

    # ------------------------------------------------------------------ shape
    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def decoder_norms(self) -> np.ndarray:
        """‖W_dec,i‖₂ per latent (float64)."""
        return np.linalg.norm(self.W_dec.double().numpy(), axis=1)

    @property
    def hook_name(self) -> str | None:
        return self.metadata.get("hook_name")

    # ------------------------------------------------------------------ the maps
    def _normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, NormState]:
        mode = self.normalize_activations
        if mode == "none":
            return x, NormState()
        if mode == "expected_average_only_in":
            if self.input_scale is None:
                raise ParameterError(
                    f"{self.source}: normalize_activations = expected_average_only_in but the "
                    "scaling factor is unknown; give input_scale (s = √d_in / E‖x‖, see "
                    "estimate_input_scale) or fold it with with_input_scale(s).folded()"
                )
            return x * self.input_scale, NormState()
        if mode == "constant_norm_rescale":
            c = math.sqrt(self.d_in) / x.norm(dim=-1, keepdim=True).clamp_min(1e-30)
            return x * c, NormState(scale=c)
        mu = x.mean(dim=-1, keepdim=True)
        xc = x - mu
        std = xc.std(dim=-1, keepdim=True)
        c = 1.0 / (std + LAYER_NORM_EPS)
        return xc * c, NormState(scale=c, shift=mu)

    def _denormalise(self, y: torch.Tensor, state: NormState) -> torch.Tensor:
        mode = self.normalize_activations
        if mode == "none":
            return y
        if mode == "expected_average_only_in":
            return y / self.input_scale
        y = y / state.scale
        return y + state.shift if state.shift is not None else y

    def pre_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, NormState]:
        """h = x' W_enc + b_enc (the gate pre-activation for ``gated``) and the norm state."""
        xn, state = self._normalise(x.to(torch.float32))
        if self.apply_b_dec_to_input:
            xn = xn - self.b_dec
        bias = self.b_gate if self.architecture == "gated" else self.b_enc
        return xn @ self.W_enc + bias, state

    def encode(self, x: torch.Tensor, *, return_state: bool = False):
        """Codes f (n×d_sae) for inputs x (n×d_in); see the module docstring."""
        x = torch.as_tensor(x)
        if x.shape[-1] != self.d_in:
            raise ShapeMismatchError(
                f"{self.source}: inputs have width {x.shape[-1]} but the SAE has d_in = "
                f"{self.d_in}"
            )
        h, state = self.pre_activations(x)
        arch = self.architecture
        if arch == "standard":
            f = torch.relu(h)
        elif arch == "jumprelu":
            f = torch.relu(h) * (h > self.threshold)
        elif arch == "topk":
            if self.rescale_acts_by_decoder_norm:
                h = h * self.W_dec.norm(dim=-1)
            vals, idx = torch.topk(h, self.k, dim=-1, sorted=False)
            f = torch.zeros_like(h).scatter_(-1, idx, torch.relu(vals))
        else:  # gated: h is the gate pre-activation
            xn, _ = self._normalise(x.to(torch.float32))
            if self.apply_b_dec_to_input:
                xn = xn - self.b_dec
            mag = torch.relu(xn @ (self.W_enc * self.r_mag.exp()) + self.b_mag)
            f = (h > 0).to(mag.dtype) * mag
        return (f, state) if return_state else f

    def decode(self, f: torch.Tensor, state: NormState | None = None) -> torch.Tensor:
        """x̂ = ν⁻¹(f W_dec + b_dec). Runtime normalisations need the ``state`` from encode."""
        f = torch.as_tensor(f).to(torch.float32)
        if self.architecture == "topk" and self.rescale_acts_by_decoder_norm:
            f = f / self.W_dec.norm(dim=-1)
        y = f @ self.W_dec + self.b_dec
        if self.normalize_activations in ("constant_norm_rescale", "layer_norm") and state is None:
            raise ParameterError(
                f"{self.source}: normalize_activations = {self.normalize_activations} is "
                "undone per token; decode needs the state returned by encode(return_state=True)"
            )
        return self._denormalise(y, state or NormState())

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x̂ = decode(encode(x))."""
        f, state = self.encode(x, return_state=True)
        return self.decode(f, state)

    # ------------------------------------------------------------------ numpy helpers
    def _batched(self, X: np.ndarray, fn: Callable[[torch.Tensor], torch.Tensor], width: int,
                 batch_size: int) -> np.ndarray:
        """fn applied to row batches of an n×d_in numpy array (or memory map), float32 n×width."""
        X = np.asarray(X) if not isinstance(X, np.memmap) else X
        if X.ndim != 2 or X.shape[1] != self.d_in:
            raise ShapeMismatchError(
                f"{self.source}: activations of shape {X.shape} do not match d_in = {self.d_in}"
            )
        out = np.empty((X.shape[0], width), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, X.shape[0], batch_size):
                xb = np.ascontiguousarray(X[s:s + batch_size], np.float32)
                if not xb.flags.writeable:  # a read-only memory map: torch wants its own copy
                    xb = xb.copy()
                xb = torch.from_numpy(xb)
                out[s:s + batch_size] = fn(xb).numpy()
        return out

    def encode_numpy(self, X: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Codes for an n×d_in numpy array (or memory map), in batches; float32 n×d_sae."""
        return self._batched(X, self.encode, self.d_sae, batch_size)

    def reconstruct_numpy(self, X: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """x̂ for an n×d_in numpy array, in batches (float32)."""
        return self._batched(X, self.reconstruct, self.d_in, batch_size)

    def encoder(self, *, batch_size: int = 4096) -> Callable[[np.ndarray], np.ndarray]:
        """A numpy callable X (n×d_in) ↦ codes (n×d_sae) for code-based criteria. With a
        per-token normalisation the codes are in normalised units (use :meth:`reconstruct`)."""
        sae = self.folded() if self.normalize_activations == "expected_average_only_in" else self

        def encode(X: np.ndarray) -> np.ndarray:
            return sae.encode_numpy(X, batch_size=batch_size)

        return encode

    # ------------------------------------------------------------------ dictionary
    def dictionary(self) -> Dictionary:
        """D = W_decᵀ (H×N, columns are atoms); the Dictionary keeps the decoder norms."""
        sae = self.folded() if (self.normalize_activations == "expected_average_only_in"
                                and self.input_scale is not None) else self
        return Dictionary(
            sae.W_dec.numpy(), rows_are_atoms=True, source=self.source, tensor="W_dec",
            note=f"{self.format} {self.architecture} SAE decoder (D = W_decᵀ)",
        )

    # ------------------------------------------------------------------ foldings
    def with_input_scale(self, scale: float) -> SparseAutoencoder:
        """The same SAE with a known ``expected_average_only_in`` factor s."""
        return replace(self, input_scale=float(scale))

    def folded(self) -> SparseAutoencoder:
        """Fold a constant input scale s into the weights, so the SAE reads raw activations:
        W_enc ← s·W_enc, W_dec ← W_dec/s, b_dec ← b_dec/s (codes unchanged; SAELens's
        ``fold_activation_norm_scaling_factor``). Runtime normalisations cannot be folded."""
        if self.normalize_activations != "expected_average_only_in":
            return self
        if self.input_scale is None:
            raise ParameterError(
                f"{self.source}: cannot fold expected_average_only_in without its scaling "
                "factor (give input_scale)"
            )
        s = self.input_scale
        return replace(
            self, W_enc=self.W_enc * s, W_dec=self.W_dec / s, b_dec=self.b_dec / s,
            normalize_activations="none", input_scale=None,
            notes=self.notes + (f"input scale {s:g} folded into the weights",),
        )

    def unit_decoder(self) -> SparseAutoencoder:
        """Fold the decoder norms nᵢ = ‖W_dec,i‖ into the encoder so decoder rows are unit:
        W_dec,i ← W_dec,i/nᵢ, W_enc[:, i] ← nᵢ W_enc[:, i], b_enc, θ, b_gate, b_mag ← ·nᵢ
        (codes become fᵢ·nᵢ; reconstructions are unchanged). Dead (zero) rows are left alone.
        Not defined for ``topk`` without ``rescale_acts_by_decoder_norm`` (the top-k set could
        change)."""
        if self.architecture == "topk" and not self.rescale_acts_by_decoder_norm:
            raise ParameterError(
                f"{self.source}: folding decoder norms into a topk SAE without "
                "rescale_acts_by_decoder_norm would change which latents are in the top k"
            )
        n = self.W_dec.double().norm(dim=1)
        n = torch.where(n > 0, n, torch.ones_like(n))
        nf = n.to(torch.float32)
        kw: dict = {"W_dec": (self.W_dec.double() / n[:, None]).float(),
                    "W_enc": self.W_enc * nf}
        if self.architecture == "topk":
            kw["rescale_acts_by_decoder_norm"] = True  # selection by hᵢ·nᵢ is unchanged
        for name in ("b_enc", "threshold", "b_gate", "b_mag"):
            t = getattr(self, name)
            if t is not None:
                kw[name] = t * nf
        return replace(self, **kw)

    # ------------------------------------------------------------------ summaries
    def to_dict(self) -> dict:
        """Summary (no tensors): shape, architecture, input processing, norms, provenance."""
        norms = self.decoder_norms
        out = {
            "architecture": self.architecture,
            "format": self.format,
            "source": self.source,
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "apply_b_dec_to_input": self.apply_b_dec_to_input,
            "normalize_activations": self.normalize_activations,
            "input_scale": self.input_scale,
            "decoder_norm_min": float(norms.min()),
            "decoder_norm_max": float(norms.max()),
            "decoder_norm_mean": float(norms.mean()),
            "zero_decoder_rows": int(np.sum(norms == 0)),
            "hook_name": self.hook_name,
            "notes": list(self.notes),
        }
        if self.architecture == "topk":
            out["k"] = self.k
            out["rescale_acts_by_decoder_norm"] = self.rescale_acts_by_decoder_norm
        if self.threshold is not None:
            th = self.threshold.double().numpy()
            out["threshold_min"] = float(th.min())
            out["threshold_median"] = float(np.median(th))
            out["threshold_max"] = float(th.max())
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors under their SAELens names for this architecture."""
        names = {
            "standard": ("W_enc", "b_enc", "W_dec", "b_dec"),
            "jumprelu": ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
            "topk": ("W_enc", "b_enc", "W_dec", "b_dec"),
            "gated": ("W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"),
        }[self.architecture]
        return {n: getattr(self, n).contiguous() for n in names}


def estimate_input_scale(X: np.ndarray, *, d_in: int | None = None, max_rows: int = 100_000,
                         convention: str = "sae_lens") -> float:
    """The constant input scale s from activations (rows of X).

    ``convention="sae_lens"``: s = √d_in / E‖x‖ (so E‖s x‖ = √d_in, SAELens
    ``expected_average_only_in``); ``"unit_mean_square"``: s = 1/√E‖x‖² (Gemma Scope,
    dictionary_learning, our TSAE). Uses at most ``max_rows`` evenly spaced rows.
    """
    X = np.asarray(X) if not isinstance(X, np.memmap) else X
    n = X.shape[0]
    idx = np.linspace(0, n - 1, num=min(n, max_rows)).astype(np.int64)
    if convention not in ("sae_lens", "unit_mean_square"):
        raise ParameterError(
            f"convention must be 'sae_lens' or 'unit_mean_square', not {convention!r}"
        )
    sq = np.einsum("ij,ij->i", X[idx].astype(np.float64), X[idx].astype(np.float64))
    if not sq.any():
        from rip_atoms.sae.sae_errors import DegenerateActivationsError

        raise DegenerateActivationsError("activations: all zero, so they have no input scale")
    if convention == "sae_lens":
        d = d_in or X.shape[1]
        return float(math.sqrt(d) / np.sqrt(sq).mean())
    return float(1.0 / math.sqrt(sq.mean()))
