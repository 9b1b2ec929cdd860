"""Strict JSON for everything the library writes (CLI ``--json``, reports, per-code summaries):
±inf and NaN become ``null`` (JSON has no such numbers), numpy scalars and arrays become Python
numbers and lists."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np


def json_ready(o):
    """``o`` with every non-finite float replaced by None and numpy values made Python ones."""
    if isinstance(o, dict):
        return {(k.item() if isinstance(k, np.generic) else k): json_ready(v)
                for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_ready(v) for v in o]
    if isinstance(o, np.ndarray):
        return json_ready(o.tolist())
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def fields_dict(result, *, exclude: tuple[str, ...] = ()) -> dict:
    """``{field: value}`` of a dataclass result in declaration order, the fields named in
    ``exclude`` left out: the ``to_dict`` of a result that adds no text to its fields."""
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
            if f.name not in exclude}


def dumps(o, **kwargs) -> str:
    """``json.dumps`` of :func:`json_ready` (o); keyword arguments go to ``json.dumps``."""
    return json.dumps(json_ready(o), **kwargs)
