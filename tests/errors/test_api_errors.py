"""The library's error contract: every bad-input error is a ``RipAtomsError``.

Covered here: `.npy` headers that promise more bytes than the file holds, inputs that cannot fit
in memory (`.npy`, `.safetensors`, ``neurons:H``), API arguments outside their domain (unknown
metric strings, ``nonfinite``/``dead_rtol``, complex activations, NaN/inf ridges, the closed
forms of :mod:`rip_atoms.theory`), the CLI's exit statuses (bad input → 2 with one line; a bug →
a traceback and 1), messages that name the input and the problem (cfg.json keys, tiny and huge
dictionaries, atoms that are dead only relative to one huge atom) and a malicious ``ae.pt`` that
is refused without running anything.

Expected values come from closed forms (byte counts n·m·8, coherences of hand-made frames,
norms of Pythagorean columns) or plain numpy on the unscaled input, never from the code under
test.
"""

from __future__ import annotations

import ast
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from rip_atoms.cli import main
from rip_atoms.coherence import coherence
from rip_atoms.corrected_atoms import CorrectedAtoms, resolve_metric
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import (
    EmptyDictionaryError,
    FileFormatError,
    InsufficientMemoryError,
    ParameterError,
    ParameterTypeError,
    RipAtomsError,
    SingularMetricError,
)
from rip_atoms.matrix_files import (
    MEMORY_LIMIT_ENV,
    available_memory,
    load_matrix,
    load_npy,
    load_safetensors,
)
from rip_atoms.metric import AIPMetric, fit_metric, representation_shift
from rip_atoms.theory import (
    coherence_uniqueness_k,
    gaussian_coherence,
    generalized_welch_delta,
    k_weak,
    rho_weak,
    welch_bound,
)

REPO = Path(__file__).resolve().parents[2]
GiB = 2**30


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def run_cli(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rip_atoms", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=300, env=full_env,
    )


def assert_cli_bad_input(args, *, cwd: Path, names: str, words: tuple[str, ...],
                         env: dict | None = None) -> str:
    """Exit status 2, nothing on stdout, exactly one stderr line naming ``names`` and holding
    every one of ``words`` (case-insensitive); returns the line."""
    r = run_cli(*args, cwd=cwd, env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("rip-atoms: error: ") and "Traceback" not in line
    assert names in line, line
    for w in words:
        assert w.lower() in line.lower(), (w, line)
    return line


def fake_npy(path: Path, shape: tuple[int, ...], descr: str = "<f8", payload: int = 900) -> int:
    """A `.npy` header claiming ``shape`` followed by ``payload`` zero bytes; returns the size of
    the header (the data would start there)."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": descr, "fortran_order": False, "shape": shape})
        offset = fh.tell()
        fh.write(b"\0" * payload)
    return offset


def gaussian(h: int = 16, n: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((h, n))


def raw_mu(D: np.ndarray) -> float:
    """max_{i≠j} |cos(dᵢ, dⱼ)| with plain numpy."""
    U = D / np.linalg.norm(D, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0.0)
    return float(G.max())


# a frame with a known coherence: e₁, e₂, e₃ and (e₁ + e₂ + e₃)/√3 → μ = 1/√3
FRAME = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
FRAME_MU = 1.0 / math.sqrt(3.0)


# =============================================================================================
# 1. headers that promise more than the file holds; inputs that cannot fit in memory
# =============================================================================================
def test_truncated_npy_header_is_checked_against_the_file_size(tmp_path):
    p = tmp_path / "huge.npy"
    fake_npy(p, (100000, 100000), payload=900)
    expected = 100000 * 100000 * 8  # bytes the header promises
    for load in (lambda: load_npy(p), lambda: load_npy(p, mmap=True),
                 lambda: load_matrix(p), lambda: Dictionary.load(str(p))):
        with pytest.raises(FileFormatError) as info:
            load()
        msg = str(info.value)
        assert msg.startswith(str(p)) and "truncated" in msg
        assert str(expected) in msg and "900 bytes" in msg
        assert "100000×100000" in msg and "float64" in msg


def test_truncated_npy_by_a_few_bytes(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(12.0).reshape(3, 4))
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(FileFormatError, match=r"a\.npy: truncated .* 96 bytes .* 91 bytes"):
        load_npy(p)


def test_object_npy_is_refused_before_loading(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="obj.npy: holds Python objects"):
        load_npy(p)


def test_truncated_npy_cli(tmp_path):
    fake_npy(tmp_path / "huge.npy", (100000, 100000))
    assert_cli_bad_input(["coherence", "huge.npy", "--raw"], cwd=tmp_path, names="huge.npy",
                         words=("truncated", "80000000000", "900 bytes"))


def test_npy_larger_than_memory_is_refused_but_can_be_memory_mapped(tmp_path, monkeypatch):
    A = np.arange(400.0).reshape(20, 20)  # 3200 bytes = 3.1 KiB
    p = tmp_path / "A.npy"
    np.save(p, A)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1000")
    with pytest.raises(InsufficientMemoryError) as info:
        load_npy(p)
    msg = str(info.value)
    assert msg.startswith(str(p)) and "3.1 KiB" in msg and "1000 B" in msg
    assert MEMORY_LIMIT_ENV in msg
    # a memory map needs no memory up front: the data stays on disk
    np.testing.assert_array_equal(load_npy(p, mmap=True), A)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "off")
    np.testing.assert_array_equal(load_npy(p), A)


def test_safetensors_larger_than_memory_is_refused(tmp_path, monkeypatch):
    p = tmp_path / "W.safetensors"
    save_file({"W": np.ones((64, 64), dtype=np.float32)}, str(p))  # 16 KiB of data
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "4K")
    with pytest.raises(InsufficientMemoryError, match=r"W\.safetensors: loading tensor 'W'"):
        load_safetensors(p)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1M")
    assert load_safetensors(p).shape == (64, 64)


@pytest.mark.parametrize("text, expected", [
    ("8G", 8 * GiB), ("8GiB", 8 * GiB), ("8gb", 8 * GiB), ("1000", 1000), ("1.5K", 1536),
    ("2T", 2 * 2**40), ("off", None),
])
def test_memory_limit_variable(monkeypatch, text, expected):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, text)
    assert available_memory() == expected


@pytest.mark.parametrize("text", ["abc", "-1", "0", "inf", "nan", "8X"])
def test_bad_memory_limit_variable(monkeypatch, text):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, text)
    with pytest.raises(ParameterError, match=MEMORY_LIMIT_ENV):
        available_memory()


def test_available_memory_is_detected(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    avail = available_memory()
    assert avail is None or avail > 0


def test_neurons_too_large_for_memory(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1G")
    need = 100000 * 100000 * 8 / GiB  # 74.5 GiB
    with pytest.raises(InsufficientMemoryError) as info:
        Dictionary.load("neurons:100000")
    msg = str(info.value)
    assert msg.startswith("neurons:100000") and f"{need:.1f} GiB" in msg and "1.0 GiB" in msg
    assert Dictionary.load("neurons:100").n_atoms == 100  # 80 KB fits
    with pytest.raises(ParameterTypeError):
        Dictionary.neurons(2.5)


def test_neurons_too_large_cli(tmp_path):
    # 10⁶·10⁶·8 bytes = 7.3 TiB: more than any machine has
    assert_cli_bad_input(["coherence", "neurons:1000000", "--raw"], cwd=tmp_path,
                         names="neurons:1000000", words=("7.3 TiB", "memory"))
    # the case, with the limit pinned so the answer does not depend on the machine
    assert_cli_bad_input(["coherence", "neurons:100000", "--raw"], cwd=tmp_path,
                         names="neurons:100000", words=("74.5 GiB", "8.0 GiB"),
                         env={MEMORY_LIMIT_ENV: "8G"})


# =============================================================================================
# 2. API errors inside the contract
# =============================================================================================
def test_unknown_metric_string_is_a_parameter_error():
    D = gaussian()
    with pytest.raises(ParameterError, match="'bogus'"):
        coherence(D, "bogus")
    with pytest.raises(ParameterError, match="'bogus'"):
        CorrectedAtoms(D, "bogus")
    with pytest.raises(ParameterTypeError, match="ndarray") as info:
        resolve_metric(Dictionary(D), np.eye(16))
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("finite", [True, False])
def test_nonfinite_mode_is_always_validated(finite):
    D = gaussian()
    if not finite:
        D[2, 5] = np.nan
    with pytest.raises(ParameterError, match="nonfinite.*'bogus'"):
        Dictionary(D, nonfinite="bogus")
    with pytest.raises(ParameterError, match="nonfinite"):
        Dictionary.load("neurons:4", nonfinite="bogus")


@pytest.mark.parametrize("rtol", [float("nan"), -1e-3, 1.0, float("inf")])
def test_dead_rtol_is_validated(rtol):
    with pytest.raises(ParameterError, match="dead_rtol"):
        Dictionary(gaussian(), dead_rtol=rtol)


def test_complex_activations_are_refused(recwarn):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 8)) + 1j * rng.standard_normal((200, 8))
    with pytest.raises(ParameterError, match="complex"):
        fit_metric(X, source="acts.npy")
    with pytest.raises(ParameterError, match="acts.npy: complex"):
        fit_metric(iter([X[:100], X[100:]]), source="acts.npy")
    metric = fit_metric(X.real)
    with pytest.raises(ParameterError, match="complex"):
        metric.whiten(X[0])
    with pytest.raises(ParameterError, match="complex"):
        representation_shift(X, metric)
    with pytest.raises(ParameterTypeError, match="dtype"):
        fit_metric(np.array([["a", "b"], ["c", "d"]]))
    assert not [w for w in recwarn if "Complex" in type(w.message).__name__]


@pytest.mark.parametrize("ridge", [float("nan"), float("inf"), -1.0, "abc"])
def test_ridge_is_validated_everywhere(ridge):
    X = np.random.default_rng(2).standard_normal((100, 6))
    for call in (lambda: fit_metric(X, ridge=ridge),
                 lambda: AIPMetric.from_dictionary(gaussian(6, 12), ridge=ridge),
                 lambda: AIPMetric.from_moment(np.eye(3), ridge=ridge)):
        with pytest.raises(ParameterError, match="ridge must be a finite number ≥ 0"):
            call()


def test_other_metric_arguments():
    with pytest.raises(ParameterError, match="atoms must be 'unit' or 'raw'"):
        AIPMetric.from_dictionary(gaussian(6, 12), atoms="bogus")
    with pytest.raises(ParameterError, match="rcond"):
        AIPMetric.from_moment(np.eye(3), rcond=0.0)
    with pytest.raises(ParameterError, match="chunk_size"):
        fit_metric(np.ones((10, 2)), chunk_size=0)


def test_corrected_atoms_without_rows():
    ca = CorrectedAtoms(gaussian(), None, rows=False)
    with pytest.raises(ParameterError, match="rows=True"):
        ca.spectral_norm_sq_upper()


def test_theory_errors_are_parameter_errors():
    with pytest.raises(ParameterTypeError) as info:
        welch_bound(2.5, 10)
    assert isinstance(info.value, TypeError)  # callers catching TypeError still work
    cases = [
        (lambda: welch_bound(0, 5), "H must be >= 1"),
        (lambda: generalized_welch_delta(10, 20, 30), "k must be <= N = 20"),
        (lambda: rho_weak(1.5), r"delta = H/N must lie in \(0, 1\]"),
        (lambda: rho_weak(float("nan")), "delta"),
        (lambda: k_weak(20, 10), "k_weak needs H <= N"),
        (lambda: gaussian_coherence(10, 2), "N >= 3"),
        (lambda: gaussian_coherence(10, 20, quantiles=(1.5,)), "quantile"),
        (lambda: coherence_uniqueness_k(1.5), "coherence mu"),
    ]
    for call, pattern in cases:
        with pytest.raises(ParameterError, match=pattern):
            call()
    with pytest.raises(ParameterTypeError, match="delta must be a real number"):
        rho_weak("abc")


OWNED = [
    "rip_atoms/theory.py", "rip_atoms/metric.py", "rip_atoms/dictionary.py",
    "rip_atoms/corrected_atoms.py", "rip_atoms/matrix_files.py",
    "rip_atoms/sae/formats/__init__.py", "rip_atoms/sae/formats/_io.py",
    "rip_atoms/sae/formats/dictionary_learning.py", "rip_atoms/sae/formats/gemma_scope.py",
    "rip_atoms/sae/formats/sae_lens.py", "rip_atoms/sae/formats/sparsify.py",
    "rip_atoms/sae/formats/tensors.py", "rip_atoms/cli/common.py", "rip_atoms/cli/theory.py",
    "rip_atoms/cli/criteria.py",
]


@pytest.mark.parametrize("path", OWNED)
def test_no_plain_value_or_type_errors_are_raised(path):
    """Every ``raise`` of a builtin ValueError/TypeError/OverflowError in these modules would
    escape the contract (and, in the CLI, now shows a traceback)."""
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in ("ValueError", "TypeError",
                                                        "OverflowError"):
                bad.append(node.lineno)
    assert not bad, f"{path}: plain exceptions raised at lines {bad}"


# =============================================================================================
# 3. the CLI: bad input → exit 2 with one line; anything else is a bug with a traceback
# =============================================================================================
def test_main_lets_plain_value_errors_through(monkeypatch, capsys):
    import rip_atoms.theory as theory

    def bug(*_a, **_k):
        raise ValueError("an internal bug")

    monkeypatch.setattr(theory, "welch_bound", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["theory", "welch", "--dim", "4", "--atoms", "8"])

    def overflow(*_a, **_k):
        raise OverflowError("another bug")

    monkeypatch.setattr(theory, "welch_bound", overflow)
    with pytest.raises(OverflowError):
        main(["theory", "welch", "--dim", "4", "--atoms", "8"])
    assert capsys.readouterr().err == ""


def test_main_turns_rip_atoms_errors_into_exit_2(monkeypatch, capsys):
    import rip_atoms.theory as theory

    def bad(*_a, **_k):
        raise FileFormatError("x.npy: a problem\nover two lines")

    monkeypatch.setattr(theory, "welch_bound", bad)
    assert main(["theory", "welch", "--dim", "4", "--atoms", "8"]) == 2
    err = capsys.readouterr().err
    assert err == "rip-atoms: error: x.npy: a problem over two lines\n"


def test_a_bug_exits_1_with_its_traceback(tmp_path):
    code = ("import sys, rip_atoms.theory as t\n"
            "def bug(*a, **k): raise ValueError('an internal bug')\n"
            "t.welch_bound = bug\n"
            "from rip_atoms.cli import main\n"
            "sys.exit(main(['theory', 'welch', '--dim', '4', '--atoms', '8']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "ValueError: an internal bug" in r.stderr


@pytest.mark.parametrize("args, names, words", [
    (["theory", "rho-weak", "--delta", "1.5"], "--delta 1.5", ("(0, 1]",)),
    (["theory", "rho-weak", "--delta", "nan"], "--delta nan", ("delta",)),
    (["theory", "k-weak", "--dim", "20", "--atoms", "10"], "--dim 20", ("H <= N",)),
    (["theory", "welch", "--dim", "-1", "--atoms", "10"], "--dim -1", ("H must be >= 1",)),
    (["theory", "gaussian-coherence", "--dim", "10", "--atoms", "2"], "--atoms 2",
     ("N >= 3",)),
])
def test_theory_bad_input_cli(tmp_path, args, names, words):
    assert_cli_bad_input(args, cwd=tmp_path, names=names, words=words)


@pytest.mark.parametrize("args, names, words", [
    (["--l1-tokens", "-1"], "--l1-tokens", ("≥ 0",)),
    (["--seed", "-1"], "--seed", ("≥ 0",)),
    (["--ridge", "nan"], "--ridge", ("finite",)),
])
def test_criteria_bad_options_cli(tmp_path, args, names, words):
    np.save(tmp_path / "X.npy", np.random.default_rng(0).standard_normal((100, 6)))
    assert_cli_bad_input(["criteria", "--acts", "X.npy", *args], cwd=tmp_path, names=names,
                         words=words)


# =============================================================================================
# 4. messages that name the input and the problem
# =============================================================================================
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_ridge_cli(tmp_path, value):
    np.save(tmp_path / "D.npy", gaussian())
    np.save(tmp_path / "X.npy", np.random.default_rng(0).standard_normal((200, 16)))
    for extra in ([], ["--metric", "X.npy"]):
        line = assert_cli_bad_input(["coherence", "D.npy", f"--ridge={value}", *extra],
                                    cwd=tmp_path, names="--ridge", words=("finite", "≥ 0"))
        assert "Eigenvalues" not in line


@pytest.mark.parametrize("scale", [1e-160, 1e-300, 1e-310, 1e200, 1e300])
def test_tiny_and_huge_dictionaries_keep_their_geometry(scale):
    # norms: columns (3, 4, 0) and (5, 12, 0)·… have norms 5 and 13 exactly
    P = np.array([[3.0, 5.0, 0.0, 1.0], [4.0, 12.0, 0.0, 1.0], [0.0, 0.0, 2.0, 1.0]])
    d = Dictionary(P * scale)
    assert d.dead_atoms.size == 0 and len(d.live_atoms) == 4
    rel = 1e-13 if scale > 1e-300 else 1e-8  # 1e-310 is subnormal: the input has lost digits
    np.testing.assert_allclose(d.norms[:3] / scale, [5.0, 13.0, 2.0], rtol=rel)
    U = d.unit()
    np.testing.assert_allclose(np.linalg.norm(U, axis=0), 1.0, rtol=1e-14)
    np.testing.assert_allclose(U[:, 0], [0.6, 0.8, 0.0], rtol=rel)
    res = coherence(Dictionary(FRAME * scale), "raw")
    assert res.n_live == 4
    assert res.mu == pytest.approx(FRAME_MU, rel=rel)


def test_tiny_gaussian_dictionary_raw_coherence():
    D = gaussian()
    for scale in (1e-160, 1e-300):
        res = coherence(D * scale, "raw")
        assert res.n_live == 40
        assert res.mu == pytest.approx(raw_mu(D), rel=1e-12)
        assert math.isfinite(res.mu)


@pytest.mark.parametrize("scale, side", [(1e-160, "small"), (1e-300, "small"),
                                         (1e200, "large")])
def test_self_metric_of_tiny_or_huge_atoms_is_a_clear_error(scale, side):
    d = Dictionary(gaussian() * scale, source="Dscaled.npy")
    with pytest.raises(SingularMetricError) as info:
        AIPMetric.from_dictionary(d)
    msg = str(info.value)
    assert msg.startswith("Dscaled.npy") and f"too {side}" in msg
    assert "raw" in msg and "rescale" in msg


def test_tiny_activations_are_a_clear_error():
    X = np.random.default_rng(3).standard_normal((300, 8)) * 1e-160
    with pytest.raises(SingularMetricError, match="acts.npy: .* too small"):
        fit_metric(X, source="acts.npy")


def test_tiny_dictionary_cli(tmp_path):
    np.save(tmp_path / "Dtiny.npy", FRAME * 1e-300)
    r = run_cli("coherence", "Dtiny.npy", "--raw", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_live"] == 4
    assert out["mu"] == pytest.approx(FRAME_MU, rel=1e-12)
    assert_cli_bad_input(["coherence", "Dtiny.npy"], cwd=tmp_path, names="Dtiny.npy",
                         words=("too small", "raw"))


def big_entry_dictionary() -> np.ndarray:
    D = gaussian().astype(np.float32)
    D[3, 7] = 1e38
    return D


def test_one_huge_entry_explains_the_dead_atoms():
    D = big_entry_dictionary()
    d = Dictionary(D, source="Dbig.npy")
    assert d.dead_atoms.tolist() == [j for j in range(40) if j != 7]
    note = d.dead_summary()
    assert note.startswith("Dbig.npy: 39 of 40 atoms are dead")
    assert "atom 7" in note and "dead_rtol" in note and "--dead-rtol" in note
    assert "below" in note
    assert d.to_dict()["dead_note"] == note
    # the option changes it: 0 keeps every non-zero atom
    assert Dictionary(D, dead_rtol=0.0).dead_atoms.size == 0
    assert Dictionary(D, dead_rtol=1e-40).dead_atoms.size == 0
    with pytest.raises(EmptyDictionaryError) as info:
        coherence(d, "raw")
    assert "atom 7" in str(info.value) and "dead_rtol" in str(info.value)
    with pytest.raises(SingularMetricError, match="atom 7"):
        AIPMetric.from_dictionary(d)


def test_zero_atoms_are_reported_as_zero():
    D = gaussian()
    D[:, [2, 9]] = 0.0
    note = Dictionary(D, source="Dz.npy").dead_summary()
    assert note == "Dz.npy: 2 of 40 atoms are dead: 2 are zero"
    assert Dictionary(gaussian()).dead_summary() is None


def test_one_huge_entry_cli(tmp_path):
    np.save(tmp_path / "Dbig.npy", big_entry_dictionary())
    assert_cli_bad_input(["coherence", "Dbig.npy", "--raw"], cwd=tmp_path, names="Dbig.npy",
                         words=("39 of 40 atoms are dead", "atom 7", "--dead-rtol"))
    r = run_cli("coherence", "Dbig.npy", "--raw", "--dead-rtol", "0", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_live"] == 40
    assert_cli_bad_input(["coherence", "Dbig.npy", "--raw", "--dead-rtol", "nan"],
                         cwd=tmp_path, names="--dead-rtol", words=("[0, 1)",))


def test_threshold_dead_atoms_are_explained_on_a_successful_run(tmp_path):
    D = big_entry_dictionary()
    D[0, 11] = -1e38  # two huge atoms live, 38 below the threshold
    np.save(tmp_path / "D2.npy", D)
    r = run_cli("coherence", "D2.npy", "--raw", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_live"] == 2
    warn = r.stderr.strip().splitlines()
    assert len(warn) == 1 and warn[0].startswith("warning: D2.npy: 38 of 40 atoms are dead")
    assert "--dead-rtol" in warn[0]
    r = run_cli("coherence", "D2.npy", "--raw", "--json", "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""


# =============================================================================================
# SAE files (torch adapter): config values and malicious pickles
# =============================================================================================
def sae_lens_folder(path: Path, **cfg_over) -> Path:
    rng = np.random.default_rng(4)
    d_in, d_sae = 6, 10
    path.mkdir(parents=True)
    save_file({
        "W_enc": rng.standard_normal((d_in, d_sae)).astype(np.float32),
        "b_enc": np.zeros(d_sae, np.float32),
        "W_dec": rng.standard_normal((d_sae, d_in)).astype(np.float32),
        "b_dec": np.zeros(d_in, np.float32),
    }, str(path / "sae_weights.safetensors"))
    cfg = {"d_in": d_in, "d_sae": d_sae, "architecture": "standard",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"sae_lens_version": "6.0.0"}, **cfg_over}
    (path / "cfg.json").write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("key, value", [
    ("d_in", "abc"), ("d_sae", 2.5), ("d_in", None), ("apply_b_dec_to_input", "yes"),
])
def test_sae_lens_config_values_name_the_file_and_key(tmp_path, key, value):
    pytest.importorskip("torch")
    from rip_atoms.sae.formats import load_sae

    folder = sae_lens_folder(tmp_path / "sae", **{key: value})
    if value is None:  # absent sizes are fine
        assert load_sae(folder).d_in == 6
        return
    with pytest.raises(FileFormatError) as info:
        load_sae(folder)
    msg = str(info.value)
    assert msg.startswith(str(folder / "cfg.json")) and key in msg and repr(value) in msg
    assert "invalid literal" not in msg


def test_sae_lens_scaling_factor_must_be_a_positive_number(tmp_path):
    pytest.importorskip("torch")
    from rip_atoms.sae.formats import load_sae

    meta = {"sae_lens_version": "6.0.0", "norm_scaling_factor": "big"}
    folder = sae_lens_folder(tmp_path / "s1", normalize_activations="expected_average_only_in",
                             metadata=meta)
    with pytest.raises(FileFormatError,
                       match=r"cfg\.json: metadata\.norm_scaling_factor must be a number"):
        load_sae(folder)
    meta["norm_scaling_factor"] = -2.0
    folder = sae_lens_folder(tmp_path / "s2", normalize_activations="expected_average_only_in",
                             metadata=meta)
    with pytest.raises(FileFormatError, match="must be a positive finite number, got -2.0"):
        load_sae(folder)
    meta["norm_scaling_factor"] = "4"  # a numeric string is read as the number
    folder = sae_lens_folder(tmp_path / "s3", normalize_activations="expected_average_only_in",
                             metadata=meta)
    assert load_sae(folder).input_scale == 4.0


def test_sae_lens_d_in_string_cli(tmp_path):
    pytest.importorskip("torch")
    sae_lens_folder(tmp_path / "sae", d_in="abc")
    assert_cli_bad_input(["coherence", "sae", "--raw"], cwd=tmp_path, names="cfg.json",
                         words=("d_in", "'abc'", "integer"))


def test_sparsify_k_must_be_an_integer(tmp_path):
    pytest.importorskip("torch")
    from rip_atoms.sae.formats import load_sae

    rng = np.random.default_rng(5)
    folder = tmp_path / "layers.3"
    folder.mkdir()
    save_file({"encoder.weight": rng.standard_normal((10, 6)).astype(np.float32),
               "encoder.bias": np.zeros(10, np.float32),
               "W_dec": rng.standard_normal((10, 6)).astype(np.float32),
               "b_dec": np.zeros(6, np.float32)}, str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"k": "four", "d_in": 6}))
    with pytest.raises(FileFormatError, match=r"cfg\.json: k must be an integer, got 'four'"):
        load_sae(folder)


class _Evil:
    """Unpickling this runs ``os.system(command)``, if the loader lets it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _evil_folder(path: Path, marker: Path, *, raw_pickle: bool) -> Path:
    torch = pytest.importorskip("torch")
    path.mkdir(parents=True)
    payload = {"encoder.weight": torch.zeros(4, 3), "evil": _Evil(f"touch {marker}")}
    if raw_pickle:
        (path / "ae.pt").write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path / "ae.pt")
    (path / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder"}}))
    return path


@pytest.mark.parametrize("raw_pickle", [False, True])
def test_malicious_ae_pt_is_refused_without_running(tmp_path, raw_pickle):
    from rip_atoms.sae.formats import load_sae

    marker = tmp_path / "PWNED"
    folder = _evil_folder(tmp_path / "evil", marker, raw_pickle=raw_pickle)
    with pytest.raises(FileFormatError) as info:
        load_sae(folder)
    msg = str(info.value)
    assert not marker.exists()
    assert msg.startswith(str(folder / "ae.pt"))
    assert "refused for safety" in msg and "code objects" in msg
    assert "weights_only=False" not in msg and "weights_only" not in msg
    assert "re-run" not in msg.lower() and "trusted source" not in msg
    assert msg.endswith("(a state dict saved with torch.save)")  # whole, not cut off
    if not raw_pickle:
        assert "system" in msg  # names what it refused


def test_malicious_ae_pt_cli(tmp_path):
    marker = tmp_path / "PWNED"
    _evil_folder(tmp_path / "evil", marker, raw_pickle=False)
    line = assert_cli_bad_input(["coherence", "evil/ae.pt", "--raw"], cwd=tmp_path,
                                names="ae.pt", words=("refused for safety", "code objects"))
    assert "weights_only" not in line and not marker.exists()


def test_corrupt_ae_pt_message(tmp_path):
    torch = pytest.importorskip("torch")
    from rip_atoms.sae.formats import load_sae

    folder = tmp_path / "cut"
    folder.mkdir()
    torch.save({"encoder.weight": torch.zeros(40, 30)}, folder / "ae.pt")
    data = (folder / "ae.pt").read_bytes()
    (folder / "ae.pt").write_bytes(data[: len(data) // 2])
    (folder / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder"}}))
    with pytest.raises(FileFormatError) as info:
        load_sae(folder)
    msg = str(info.value)
    assert msg.startswith(str(folder / "ae.pt")) and "truncated, corrupt" in msg
    assert "weights_only" not in msg


def test_every_error_here_is_a_value_error():
    for cls in (ParameterTypeError, InsufficientMemoryError):
        assert issubclass(cls, RipAtomsError) and issubclass(cls, ValueError)
