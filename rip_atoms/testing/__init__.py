"""Hypothesis strategies for dictionaries, sparse codes, activations and planted atom sets.

Public API for testing sparse-coding code (yours or this library's). The strategies live in
:mod:`rip_atoms.testing.strategies` and need `hypothesis` (``pip install rip-atoms[testing]``);
the plain-numpy generators behind them (:mod:`rip_atoms.testing.generators`) need nothing extra.
Importing a strategy from here without hypothesis installed raises an ImportError that says so.
"""

from __future__ import annotations

_STRATEGIES = (
    "activation_sets",
    "coherent_dictionaries",
    "dictionaries",
    "etf_block_dictionaries",
    "gaussian_dictionaries",
    "near_etf_dictionaries",
    "paired_dictionaries",
    "planted_atom_sets",
    "second_moments",
    "sparse_codes",
)

__all__ = list(_STRATEGIES)


def __getattr__(name: str):
    if name in _STRATEGIES:
        try:
            from rip_atoms.testing import strategies
        except ImportError as exc:  # pragma: no cover - depends on the environment
            if getattr(exc, "name", None) == "hypothesis":
                raise ImportError(
                    "rip_atoms.testing needs the 'hypothesis' package: "
                    "pip install 'rip-atoms[testing]' (or pip install hypothesis)"
                ) from exc
            raise
        return getattr(strategies, name)
    raise AttributeError(f"module 'rip_atoms.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_STRATEGIES))
