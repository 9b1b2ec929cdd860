"""The same command gives the same report and the same SAE on 1 and on 2 BLAS threads (issue 22:
the default `verify` uses a work budget; the report's LAPACK runs on one thread; training sums
its feedback scalars in a fixed order)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rip_atoms.report.files import without_time_fields

pytestmark = pytest.mark.slow


def _run(args, threads, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "rip_atoms", *args], env=env, check=True,
                          capture_output=True, text=True, timeout=600, **kw)


def test_verify_quick_is_identical_on_one_and_two_threads(tmp_path):
    reports = []
    for threads in (1, 2):
        _run(["verify", "--quick", "--out", str(tmp_path / "r"), "--no-html", "--quiet"],
             threads)
        reports.append(json.loads((tmp_path / "r" / "report.json").read_text()))
    a, b = (without_time_fields(r) for r in reports)
    assert a["search_budget"]["kind"] == "effort" and not a["search_budget"]["cap_hit"]
    assert a == b


def test_train_gives_identical_weights_on_one_and_two_threads(tmp_path):
    pytest.importorskip("torch")
    from safetensors.numpy import load_file

    from rip_atoms.synthetic import planted_atoms

    X = planted_atoms(64, 256, 4, 6000, seed=0).activations.astype(np.float32)
    np.save(tmp_path / "acts.npy", X)
    weights = []
    for threads in (1, 2):
        out = tmp_path / f"sae{threads}"
        _run(["train", str(tmp_path / "acts.npy"), "--out", str(out), "--width", "256",
              "--target-l0", "4", "--steps", "150", "--quiet"], threads)
        weights.append(load_file(out / "sae_weights.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert np.array_equal(weights[0][name], weights[1][name]), name
