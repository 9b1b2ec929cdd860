"""Every JSON the library writes is strict: no NaN/Infinity tokens, numpy values as numbers."""

from __future__ import annotations

import json

import numpy as np

from rip_atoms.strict_json import dumps, json_ready


def _reject(name):
    raise AssertionError(f"non-standard JSON constant {name}")


def test_non_finite_and_numpy_values():
    obj = {"a": float("inf"), "b": [np.float32("nan"), np.float64(-np.inf), 1.5],
           np.int64(3): np.arange(3), "c": (np.bool_(True), np.int32(7)), "d": None}
    out = json.loads(dumps(obj), parse_constant=_reject)
    assert out == {"a": None, "b": [None, None, 1.5], "3": [0, 1, 2], "c": [True, 7],
                   "d": None}
    assert json_ready(np.float32(0.25)) == 0.25 and type(json_ready(np.float32(0.25))) is float
