"""Plain tensors: a state dict in a `.safetensors`, `.npz` or `.pt` file with SAELens tensor
names (``W_enc`` d_in×d_sae, ``b_enc``, ``W_dec`` d_sae×d_in, ``b_dec``, plus ``threshold``
for jumprelu or ``b_gate``/``r_mag``/``b_mag`` for gated). A plain file carries no config, so
the architecture (and k for topk) must be given; it is never guessed from the tensors."""

from __future__ import annotations

from pathlib import Path

from rip_atoms.errors import FileFormatError
from rip_atoms.sae.canonical import ARCHITECTURES, SparseAutoencoder
from rip_atoms.sae.formats._io import read_npz, read_safetensors, read_torch_state_dict, take
from rip_atoms.sae.formats.sae_lens import SAE_LENS_TENSOR_NAMES
from rip_atoms.sae.sae_errors import UnknownArchitectureError


def read_state_dict(path: Path):
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix == ".npz":
        return read_npz(path)
    if suffix in (".pt", ".pth", ".bin"):
        return read_torch_state_dict(path)
    raise FileFormatError(f"{path}: expected a .safetensors, .npz or .pt state dict")


def load_tensors(path: str | Path, *, architecture: str | None, k: int | None = None,
                 apply_b_dec_to_input: bool = True, input_scale: float | None = None
                 ) -> SparseAutoencoder:
    """Read a plain state dict as an SAE of the given ``architecture``."""
    path = Path(path)
    if architecture is None:
        raise UnknownArchitectureError(
            f"{path}: a plain tensor file carries no architecture; name it (standard, "
            "jumprelu, topk, gated) — it is never guessed from the tensors"
        )
    if architecture not in ARCHITECTURES:
        raise UnknownArchitectureError(
            f"{path}: unknown SAE architecture {architecture!r} (known: "
            f"{', '.join(ARCHITECTURES)})"
        )
    w = take(read_state_dict(path), SAE_LENS_TENSOR_NAMES[architecture], path)
    return SparseAutoencoder(
        architecture=architecture, k=k, apply_b_dec_to_input=apply_b_dec_to_input,
        normalize_activations="expected_average_only_in" if input_scale else "none",
        input_scale=input_scale, source=str(path), format="tensors", **w,
    )
