"""The cells of a sweep: what each one is, and its identity (a stable name under ``OUT/cells``).

A *training cell* trains one SAE of width N = ``n_atoms`` with architecture ``arch`` and seed
``seed`` on the first ``tokens`` activations (|M|, the data scale) of layer ``layer``'s stream,
then evaluates it on those training tokens and on the layer's fixed held-out tail. An *SAE cell*
evaluates one given SAE file (``--sae PATTERN``) the same way (its "training" split is the
stream before the held-out tail).

A cell's identity is its parameters together with the sweep settings that change its result
(the training rule, the held-out size, the activations' fingerprint): :func:`cell_key` hashes
them, so a rerun of the same command finds the finished cells and a changed setting never
reuses a stale result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

__all__ = ["ARCHITECTURES", "Cell", "cell_key", "expand_grid"]

#: ``--arch`` name → the trainer's architecture ("topk" is refused: the trainer has no TopK SAE)
ARCHITECTURES = {"jumprelu": "jumprelu", "relu": "standard"}


@dataclass(frozen=True)
class Cell:
    """One cell: a layer × architecture × width × data scale × seed (training), or an SAE file."""

    layer: int | None
    arch: str
    seed: int
    n_atoms: int
    tokens: int
    sae_path: str | None = None

    @property
    def label(self) -> str:
        layer = "" if self.layer is None else f"L{self.layer} "
        if self.sae_path is not None:
            return f"{layer}{self.sae_path}"
        return f"{layer}{self.arch} N={self.n_atoms} |M|={self.tokens} seed={self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)


def cell_key(cell: Cell, settings: dict) -> str:
    """A stable file name for the cell: readable parameters plus a 10-hex digest of the cell and
    the settings that change its result."""
    blob = json.dumps({"cell": cell.to_dict(), "settings": settings}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    layer = "x" if cell.layer is None else str(cell.layer)
    if cell.sae_path is not None:
        stem = "".join(ch if ch.isalnum() else "-" for ch in cell.sae_path)[-40:].strip("-")
        return f"L{layer}-sae-{stem}-{digest}"
    return (f"L{layer}-{cell.arch}-N{cell.n_atoms}-M{cell.tokens}-s{cell.seed}-{digest}")


def expand_grid(*, layers: list[int | None], archs: list[str], seeds: list[int],
                widths: list[int], tokens: list[int]) -> list[Cell]:
    """The full product layer × arch × width × tokens × seed, in that (deterministic) order."""
    return [Cell(layer=layer, arch=arch, seed=seed, n_atoms=n, tokens=t)
            for layer in layers for arch in archs for n in widths for t in tokens
            for seed in seeds]
