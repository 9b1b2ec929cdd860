"""RecoveryResult: the per-code file is written atomically and loads without pickle."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
from recovery_reference import random_codes, unit_gaussian

from rip_atoms.recovery import STATUS_NAMES, RecoveryResult, classify_recovery


def test_output_file_is_written_atomically_and_loads_without_pickle(tmp_path):
    D = unit_gaussian(20, 40, 26)
    C = random_codes(40, [2, 6, 10, 14, 18], False, 27)
    C = np.vstack([C, np.zeros(40)])
    path = tmp_path / "per_code.npz"
    res = classify_recovery(D, C, metric=None, out=path)
    assert sorted(os.listdir(tmp_path)) == ["per_code.npz"]
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["status"], res.status)
        np.testing.assert_array_equal(z["method"], res.method)
        np.testing.assert_array_equal(z["certificate"], res.certificate)
        W = sp.csr_matrix((z["witness_data"], z["witness_indices"], z["witness_indptr"]),
                          shape=tuple(z["shape"]))
        assert abs(W - res.witnesses).max() == 0
        assert list(z["status_names"]) == list(STATUS_NAMES)
        import json

        summary = json.loads(str(z["summary"]))
        assert summary["n"] == 6 and summary["invalid"] == 1
    d = res.to_dict()
    for key in ("n", "certified", "failed", "undetermined", "invalid", "methods", "seconds"):
        assert key in d
    assert d["certified"] + d["failed"] + d["undetermined"] + d["invalid"] == d["n"]


def test_load_reads_back_what_save_wrote(tmp_path):
    D = unit_gaussian(20, 40, 26)
    C = np.vstack([random_codes(40, [2, 6, 10, 14, 18], False, 27), np.zeros(40)])
    res = classify_recovery(D, C, metric=None, out=tmp_path / "r.npz")
    back = RecoveryResult.load(tmp_path / "r.npz")
    for name in ("status", "method", "certificate", "fuchs", "support_size", "invalid_reason",
                 "homotopy_iters", "atom_scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    assert abs(back.witnesses - res.witnesses).max() == 0
    assert abs(back.failed_codes - res.failed_codes).max() == 0
    assert back.to_dict() == res.to_dict()
