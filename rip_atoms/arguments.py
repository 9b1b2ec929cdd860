"""Checks of the plain arguments every public function takes (counts, seeds, tolerances,
budgets): one place, one wording, and always a :class:`~rip_atoms.errors.ParameterError`
(``ParameterTypeError`` for a wrong type) naming the argument."""

from __future__ import annotations

import math
import numbers

from rip_atoms.errors import ParameterError, ParameterTypeError


def check_int(name: str, value: object, *, least: int | None = None) -> int:
    """An integer (bools and floats refused) ≥ ``least``; returned as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"{name} must be an integer, got {value!r}")
    if least is not None and value < least:
        raise ParameterError(f"{name} must be ≥ {least}, got {value}")
    return int(value)


def check_seed(value: object, name: str = "seed") -> int | None:
    """A seed for ``numpy.random.default_rng``: None or an integer ≥ 0."""
    return None if value is None else check_int(name, value, least=0)


def check_real(name: str, value: object, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False,
               allow_inf: bool = False) -> float:
    """A real number (finite unless ``allow_inf``) in the interval given by lo/hi."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ParameterError(f"{name} must be {'>' if lo_open else '≥'} {lo:g}, got {value!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ParameterError(f"{name} must be {'<' if hi_open else '≤'} {hi:g}, got {value!r}")
    return v
