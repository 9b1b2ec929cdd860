"""Hypothesis strategies for dictionaries, sparse codes, activations and planted atom sets.

Public API for testing sparse-coding code (yours or this library's). The strategies live in
:mod:`rip_atoms.testing.strategies` (dictionaries, codes, activations) and
:mod:`rip_atoms.testing.problems` (whole test cases that satisfy a theorem's hypotheses), the
ready-made checks in :mod:`rip_atoms.testing.properties`; they need `hypothesis`
(``pip install rip-atoms[testing]``). The plain-numpy constructions behind them
(:mod:`rip_atoms.testing.generators`, :mod:`rip_atoms.testing.frames`) need nothing extra.
Importing a strategy from here without hypothesis installed raises an ImportError that says so.
Walk-through: ``docs/testing.md``.
"""

from __future__ import annotations

_STRATEGIES = (
    "activation_sets",
    "codes_by_support",
    "coherent_dictionaries",
    "dependent_dictionaries",
    "dictionaries",
    "etf_block_dictionaries",
    "gaussian_dictionaries",
    "integer_dictionaries",
    "near_etf_dictionaries",
    "paired_dictionaries",
    "planted_atom_sets",
    "second_moments",
    "sparse_codes",
    "union_of_bases_dictionaries",
)
_PROBLEMS = ("recovery_problems", "tsae_problems")

__all__ = list(_STRATEGIES + _PROBLEMS)


def __getattr__(name: str):
    if name in _STRATEGIES or name in _PROBLEMS:
        try:
            from rip_atoms.testing import problems, strategies
        except ImportError as exc:  # pragma: no cover - depends on the environment
            if getattr(exc, "name", None) == "hypothesis":
                raise ImportError(
                    "rip_atoms.testing needs the 'hypothesis' package: "
                    "pip install 'rip-atoms[testing]' (or pip install hypothesis)"
                ) from exc
            raise
        return getattr(strategies if name in _STRATEGIES else problems, name)
    raise AttributeError(f"module 'rip_atoms.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_STRATEGIES + _PROBLEMS))
