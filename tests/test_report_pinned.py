"""The report pinned: ``rip-atoms verify --quick`` and ``rip-atoms verify DICT --acts X`` on a
fixed 576×2304 input, with a work budget (``--effort``, no clock), give the report.json stored
under ``tests/data/pinned/`` (made by the code before the issue-25 refactor), time fields aside.

What is compared, and how exactly:

* every key, at every depth, in the same order, and every string, bool, None and int exactly
  (paths of the temporary folder written as ``<tmp>``);
* floats to a relative 1e-7 (absolute 1e-12): the report's own reproducibility section says
  the last digits of float64 figures can differ on another machine (another BLAS or CPU);
* the proof's base64 float64 arrays (``rows``, ``y``) by length and a few moments and values,
  to the same tolerance, so the golden file stays small.

Regenerate the golden files only for a deliberate change of the report:
``python tests/test_report_pinned.py --regenerate`` (and say why in the commit).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "data" / "pinned"
EFFORT = "60"
H, N, N_TOKENS = 576, 2304, 3000


def make_input(folder: Path) -> tuple[Path, Path]:
    """A fixed 576×2304 unit-norm Gaussian dictionary and 3000 tokens of 8-sparse codes plus
    noise (seeded: the same bytes on every machine)."""
    rng = np.random.default_rng(576)
    D = rng.standard_normal((H, N))
    D /= np.linalg.norm(D, axis=0)
    codes = np.zeros((N_TOKENS, N))
    for i in range(N_TOKENS):
        codes[i, rng.choice(N, 8, replace=False)] = rng.uniform(0.5, 2.0, 8)
    X = codes @ D.T + 0.01 * rng.standard_normal((N_TOKENS, H))
    np.save(folder / "D.npy", D)
    np.save(folder / "acts.npy", X)
    return folder / "D.npy", folder / "acts.npy"


def commands(folder: Path) -> dict[str, list[str]]:
    d, acts = make_input(folder)
    common = ["--effort", EFFORT, "--quiet", "--no-html", "--seed", "0"]
    return {"quick": ["verify", "--quick", "--out", str(folder / "quick"), *common],
            "dict": ["verify", str(d), "--acts", str(acts), "--out", str(folder / "dict"),
                     *common]}


def _is_time_field(key: str) -> bool:  # independent of rip_atoms.report.files on purpose
    return (key in ("created", "seconds") or key.endswith("_s") or key.endswith("_seconds")
            or key.endswith("_per_second"))


def _array_summary(text: str) -> dict:
    a = np.frombuffer(base64.b64decode(text), dtype="<f8")
    return {"base64_float64": len(a), "sum": float(a.sum()), "sum_sq": float((a * a).sum()),
            "abs_max": float(np.abs(a).max()) if len(a) else 0.0,
            "head": [float(v) for v in a[:4]], "tail": [float(v) for v in a[-4:]]}


def normalised(value, tmp: str, key: str = ""):
    """The report as compared: time fields out, the temporary folder as <tmp>, the proof's
    base64 arrays as summaries."""
    if isinstance(value, dict):
        return {k: normalised(v, tmp, k) for k, v in value.items() if not _is_time_field(k)}
    if isinstance(value, list):
        return [normalised(v, tmp) for v in value]
    if isinstance(value, str):
        if key in ("rows", "y"):
            return _array_summary(value)
        return value.replace(tmp, "<tmp>")
    return value


def differences(got, want, where: str = "report") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(got, dict) or list(got) != list(want):
            return [f"{where}: keys {list(got) if isinstance(got, dict) else type(got)} "
                    f"!= {list(want)}"]
        return [d for k in want for d in differences(got[k], want[k], f"{where}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: {got!r:.80} != {want!r:.80}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in
                differences(g, w, f"{where}[{i}]")]
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        if math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-12) or (
                math.isnan(want) and math.isnan(got)):
            return []
        return [f"{where}: {got!r} != {want!r}"]
    if type(got) is not type(want) or got != want:
        return [f"{where}: {got!r:.120} != {want!r:.120}"]
    return []


def run_pinned(folder: Path) -> dict[str, dict]:
    from rip_atoms.cli import main

    out = {}
    for name, argv in commands(folder).items():
        assert main(argv) == 0, name
        report = json.loads((folder / name / "report.json").read_text(encoding="utf-8"))
        out[name] = normalised(report, str(folder))
    return out


@pytest.mark.sensitive
def test_reports_match_the_pinned_reports(tmp_path):
    got = run_pinned(tmp_path)
    for name, report in got.items():
        want = json.loads(gzip.decompress((GOLDEN / f"{name}.json.gz").read_bytes()))
        diff = differences(report, want, name)
        assert not diff, "\n".join(diff[:20])


def test_the_comparison_sees_a_change():
    want = {"a": 1.0, "b": [1, "x"], "c": {"d": True}}
    assert differences(want, want) == []
    assert differences({"a": 1.0 + 1e-9, "b": [1, "x"], "c": {"d": True}}, want) == []
    assert differences({"a": 1.001, "b": [1, "x"], "c": {"d": True}}, want)
    assert differences({"a": 1.0, "b": [2, "x"], "c": {"d": True}}, want)
    assert differences({"a": 1.0, "c": {"d": True}, "b": [1, "x"]}, want)  # order
    assert differences({"a": 1.0, "b": [1, "x"], "c": {"d": 1}}, want)  # bool vs int


if __name__ == "__main__" and "--regenerate" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, report in run_pinned(Path(tmp)).items():
            GOLDEN.mkdir(parents=True, exist_ok=True)
            (GOLDEN / f"{name}.json.gz").write_bytes(
                gzip.compress(json.dumps(report, ensure_ascii=False).encode(), 9, mtime=0))
            print(name, (GOLDEN / f"{name}.json.gz").stat().st_size, "bytes")
