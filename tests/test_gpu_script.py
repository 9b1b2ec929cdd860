"""``benchmarks/gpu.sh --tiny``: the prepared GPU run, at tiny sizes on CPU torch, completes and
prints each figure with its peer and their ratio (coherence, TSAE training, harvest; the ℓ1
certification line is a figure once the torch engine's flags exist, else a stated skip).
No timing is asserted: only that every part ran and said what it measured."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sae_lens")

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"^FIGURE (?P<name>.+?): ours (?P<ours>[\d.e+-]+) (?P<unit>\S+) .*\| peer "
                    r"(?P<peer>[\d.e+-]+) (?P=unit) .*\| ratio (?P<ratio>[\d.]+)x")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and coreutils timeout")
def test_gpu_script_tiny_runs_every_part_on_cpu(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, TMPDIR=str(tmp_path),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--tiny"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = r.stdout.split("=== summary", 1)[1].splitlines()[1:]
    figures = [ln for ln in summary if ln.startswith("FIGURE")]
    parsed = {}
    for ln in figures:
        m = FIGURE.match(ln)
        if m:
            ours, peer, ratio = (float(m[k]) for k in ("ours", "peer", "ratio"))
            assert ours > 0 and peer > 0 and ratio > 0, ln
            assert ratio == pytest.approx(ours / peer, rel=0.01, abs=0.01), ln
            parsed.setdefault(m["name"].split()[0], []).append(ln)
        else:
            assert "SKIPPED" in ln and "certification" in ln, ln  # the only allowed non-figure
    assert set(parsed) >= {"coherence", "TSAE", "harvest"}, figures
    assert len(parsed["TSAE"]) == 2  # our default path and the dense-GEMM path, vs SAELens
    assert any(ln.startswith("FIGURE certification") for ln in figures)
    assert not list(tmp_path.glob("gpu-bench.*"))  # its scratch folder is removed
