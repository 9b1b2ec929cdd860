"""Bad input gives a specific exception (library) and exit status 2 with one line (CLI).

Acceptance item: NaN/Inf atoms, all-zero atoms, a wrong tensor name, a truncated `.npy`,
activations whose second moment is singular, H mismatch between activations and dictionary —
each gives a specific exception from :mod:`rip_atoms.errors` whose message names the file (or
source) and the problem, and in the CLI exit status 2 with exactly one line on stderr naming the
file and the problem, and nothing on stdout. Argparse's own errors (a type or choice error, a
missing or unknown argument) are one line too, on every subcommand.

Expected values (μ of the live atoms, exact bfloat16 values, ...) are computed independently in
this file with plain numpy, never taken from the code under test.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from rip_atoms.cli import build_parser, main
from rip_atoms.cli.common import load_metric
from rip_atoms.coherence import coherence
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import (
    EmptyDictionaryError,
    FileFormatError,
    NonFiniteError,
    RipAtomsError,
    ShapeMismatchError,
    SingularMetricError,
    TensorNotFoundError,
)
from rip_atoms.matrix_files import load_matrix, load_npy, load_safetensors
from rip_atoms.metric import AIPMetric, fit_metric
from rip_atoms.theory import rho_weak

H, N = 8, 20


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rip_atoms", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=120,
    )


def assert_cli_bad_input(
    args, *, cwd: Path, names: str, words: tuple[str, ...]
) -> str:
    """Exit status 2, nothing on stdout, exactly one line on stderr that contains ``names`` (the
    file or source) and at least one of ``words`` (case-insensitive). Returns the line."""
    r = run_cli(*args, cwd=cwd)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert "Traceback" not in line
    assert names in line, line
    assert any(w.lower() in line.lower() for w in words), (words, line)
    return line


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def gaussian_dict(seed: int = 0, h: int = H, n: int = N) -> np.ndarray:
    return rng(seed).standard_normal((h, n))


def raw_mu(D: np.ndarray) -> float:
    """Independent float64 mutual coherence of the columns of D (all assumed non-zero)."""
    U = D / np.linalg.norm(D, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0.0)
    return float(G.max())


def write_safetensors_by_hand(path: Path, header: dict, data: bytes) -> None:
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


@pytest.fixture
def dict_npy(tmp_path) -> Path:
    p = tmp_path / "dict.npy"
    np.save(p, gaussian_dict())
    return p


# ---------------------------------------------------------------------------------------------
# NaN / ±Inf atoms
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "word"),
    [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "inf")],
    ids=["nan", "inf", "-inf"],
)
def test_nonfinite_atom_library(tmp_path, value, word):
    D = gaussian_dict()
    D[2, 5] = value
    D[6, 11] = value
    p = tmp_path / "bad.npy"
    np.save(p, D)
    for load in (Dictionary.from_file, Dictionary.load):
        with pytest.raises(NonFiniteError) as exc:
            load(p)
        msg = str(exc.value)
        assert str(p) in msg
        assert "atom 5" in msg  # the first offending atom...
        assert "row 2" in msg  # ...and the row of its bad entry
        assert word in msg.lower()
        assert "11" in msg  # all offending atoms are listed
    # the in-memory constructor names its source label
    with pytest.raises(NonFiniteError, match=r"my-array: atom 5"):
        Dictionary(D, source="my-array")
    # N×H input: the atom index is the row index of the file
    with pytest.raises(NonFiniteError, match=r"atom 5 .*row 2"):
        Dictionary(D.T.copy(), rows_are_atoms=True)


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_nonfinite_atom_cli(tmp_path, value):
    D = gaussian_dict().astype(np.float32)
    D[2, 5] = value
    p = tmp_path / "bad.npy"
    np.save(p, D)
    line = assert_cli_bad_input(
        ["coherence", p, "--json"], cwd=tmp_path, names=str(p), words=("non-finite",)
    )
    assert "atom 5" in line
    assert ("nan" if np.isnan(value) else "inf") in line.lower()


def test_nonfinite_dead_mode_zeroes_and_reports():
    D = gaussian_dict()
    D[0, 3] = np.nan
    D[7, 9] = np.inf
    D[4, 9] = -np.inf
    d = Dictionary(D, nonfinite="dead")
    assert d.nonfinite_atoms.tolist() == [3, 9]
    assert d.dead_atoms.tolist() == [3, 9]
    assert np.all(d.atoms[:, [3, 9]] == 0)
    assert np.isfinite(d.atoms).all()
    live = [i for i in range(N) if i not in (3, 9)]
    np.testing.assert_array_equal(d.atoms[:, live], D[:, live])  # the others are untouched
    assert d.to_dict()["dead_atoms"] == [3, 9]
    assert d.to_dict()["nonfinite_atoms"] == [3, 9]
    res = coherence(d, "raw")
    assert res.dead_atoms.tolist() == [3, 9]
    assert res.n_live == N - 2
    assert res.mu == pytest.approx(raw_mu(D[:, live]), abs=1e-12)
    assert not {3, 9} & set(res.pair)
    with pytest.raises(ValueError, match="nonfinite"):
        Dictionary(D, nonfinite="ignore")


def test_nonfinite_dead_mode_from_file(tmp_path):
    D = gaussian_dict()
    D[1, 4] = np.nan
    p = tmp_path / "bad.npy"
    np.save(p, D)
    d = Dictionary.from_file(p, nonfinite="dead")
    assert d.dead_atoms.tolist() == [4]
    assert d.provenance.source == str(p)


# ---------------------------------------------------------------------------------------------
# dead (all-zero) atoms
# ---------------------------------------------------------------------------------------------
def test_zero_atom_is_dead_not_an_error_library():
    D = gaussian_dict()
    D[:, 7] = 0.0
    D[:, 13] = 1e-12 * D[:, 12]  # ≤ 1e-8 · max norm: dead as well
    d = Dictionary(D)
    assert d.dead_atoms.tolist() == [7, 13]
    live = [i for i in range(N) if i not in (7, 13)]
    assert d.live_atoms.tolist() == live
    res = coherence(d, "raw")
    assert res.dead_atoms.tolist() == [7, 13]
    assert res.mu == pytest.approx(raw_mu(D[:, live]), abs=1e-12)
    assert 7 not in res.pair and 13 not in res.pair
    assert all(7 not in (i, j) and 13 not in (i, j) for i, j, _ in res.top_pairs)
    assert np.isnan(res.per_atom[7]) and np.isnan(res.per_atom[13])


def test_zero_atom_is_dead_not_an_error_cli(tmp_path):
    D = gaussian_dict()
    D[:, 7] = 0.0
    p = tmp_path / "dead.npy"
    np.save(p, D)
    r = run_cli("coherence", p, "--raw", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dead_atoms"] == [7]
    assert out["n_atoms"] == N
    live = [i for i in range(N) if i != 7]
    assert out["mu"] == pytest.approx(raw_mu(D[:, live]), abs=1e-9)
    assert 7 not in out["pair"]
    # the self metric (D Dᵀ)⁻¹ ignores the dead atom as well
    r = run_cli("coherence", p, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dead_atoms"] == [7]
    assert out["metric"]["kind"] == "dictionary"
    U = D[:, live]  # the self metric uses the live atoms as given
    lam, V = np.linalg.eigh(U @ U.T)
    W = (V / np.sqrt(lam)) @ V.T
    assert out["mu"] == pytest.approx(raw_mu(W @ U), abs=1e-9)


def test_all_atoms_zero_raw_library():
    d = Dictionary(np.zeros((H, N)), source="zeros")
    assert d.dead_atoms.tolist() == list(range(N))
    with pytest.raises(EmptyDictionaryError, match=r"zeros: .*live atoms"):
        coherence(d, "raw")
    with pytest.raises(EmptyDictionaryError, match="zeros"):
        coherence(d, None)


def test_all_atoms_zero_default_metric_library():
    # the live-atom check comes before the default "self" metric (D Dᵀ)⁻¹ would be attempted,
    # so the error is about the atoms, not a singular D Dᵀ
    d = Dictionary(np.zeros((H, N)), source="zeros")
    with pytest.raises(EmptyDictionaryError, match=r"zeros: .*live atoms"):
        coherence(d)


def test_no_atoms_at_all_library():
    with pytest.raises(EmptyDictionaryError, match="no atoms"):
        Dictionary(np.zeros((H, 0)), source="empty")


@pytest.mark.parametrize("metric_args", [["--raw"], []], ids=["raw", "self"])
def test_all_atoms_zero_cli(tmp_path, metric_args):
    p = tmp_path / "zeros.npy"
    np.save(p, np.zeros((H, N), dtype=np.float32))
    assert_cli_bad_input(
        ["coherence", p, *metric_args, "--json"], cwd=tmp_path, names=str(p),
        words=("live atoms", "dead"),
    )


def test_single_live_atom(tmp_path):
    with pytest.raises(EmptyDictionaryError, match="neurons:1"):
        coherence(Dictionary.neurons(1), "raw")
    assert_cli_bad_input(
        ["coherence", "neurons:1", "--raw"], cwd=tmp_path, names="neurons:1",
        words=("live atom",),
    )


# ---------------------------------------------------------------------------------------------
# .safetensors: wrong tensor name, several tensors, truncated, foreign
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def two_tensors(tmp_path) -> Path:
    p = tmp_path / "sae.safetensors"
    D = gaussian_dict().astype(np.float32)
    save_file({"W_dec": np.ascontiguousarray(D.T), "b_dec": np.zeros(H, np.float32)}, str(p))
    return p


def test_wrong_tensor_name_library(two_tensors):
    for load in (
        lambda: load_safetensors(two_tensors, "W_enc"),
        lambda: load_matrix(two_tensors, "W_enc"),
        lambda: Dictionary.load(two_tensors, tensor="W_enc", rows_are_atoms=True),
    ):
        with pytest.raises(TensorNotFoundError) as exc:
            load()
        msg = str(exc.value)
        assert str(two_tensors) in msg
        assert "'W_enc'" in msg
        assert "W_dec" in msg and "b_dec" in msg  # lists what the file holds
    assert issubclass(TensorNotFoundError, FileFormatError)


def test_wrong_tensor_name_cli(two_tensors, tmp_path):
    line = assert_cli_bad_input(
        ["coherence", two_tensors, "--tensor", "W_enc", "--rows-are-atoms"], cwd=tmp_path,
        names=str(two_tensors), words=("no tensor",),
    )
    assert "W_enc" in line and "W_dec" in line and "b_dec" in line


def test_several_tensors_without_tensor_name(two_tensors, tmp_path):
    with pytest.raises(TensorNotFoundError) as exc:
        Dictionary.load(two_tensors)
    msg = str(exc.value)
    assert str(two_tensors) in msg and "2 tensors" in msg
    assert "W_dec" in msg and "b_dec" in msg and "--tensor" in msg
    line = assert_cli_bad_input(
        ["coherence", two_tensors, "--json"], cwd=tmp_path, names=str(two_tensors),
        words=("--tensor",),
    )
    assert "W_dec" in line and "b_dec" in line


def test_tensor_name_on_npy_is_rejected(dict_npy, tmp_path):
    with pytest.raises(FileFormatError, match="--tensor"):
        load_matrix(dict_npy, "W_dec")
    assert_cli_bad_input(
        ["coherence", dict_npy, "--tensor", "W_dec"], cwd=tmp_path, names=str(dict_npy),
        words=("--tensor",),
    )


@pytest.mark.parametrize("cut", [10, "header"], ids=["data", "header"])
def test_truncated_safetensors(two_tensors, tmp_path, cut):
    raw = two_tensors.read_bytes()
    (n_header,) = struct.unpack("<Q", raw[:8])
    keep = 8 + n_header // 2 if cut == "header" else len(raw) - cut
    p = tmp_path / "cut.safetensors"
    p.write_bytes(raw[:keep])
    with pytest.raises(FileFormatError) as exc:
        load_matrix(p, "W_dec")
    assert str(p) in str(exc.value) and "truncated" in str(exc.value)
    assert_cli_bad_input(
        ["coherence", p, "--tensor", "W_dec", "--rows-are-atoms"], cwd=tmp_path, names=str(p),
        words=("truncated",),
    )


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not tensors\n", b"abc", b""],
    ids=["text", "under-8-bytes", "empty"],
)
def test_foreign_safetensors(tmp_path, content):
    p = tmp_path / "foreign.safetensors"
    p.write_bytes(content)
    with pytest.raises(FileFormatError) as exc:
        Dictionary.load(p)
    assert str(p) in str(exc.value)
    assert "not a .safetensors" in str(exc.value)
    if content.startswith(b"this"):  # one CLI run is enough (interpreter start-up is slow)
        assert_cli_bad_input(
            ["coherence", p], cwd=tmp_path, names=str(p), words=("not a .safetensors",)
        )


def test_safetensors_bad_header_json(tmp_path):
    p = tmp_path / "bad.safetensors"
    h = b"{not json at all"
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 16)
    with pytest.raises(FileFormatError, match="header"):
        load_matrix(p)
    assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p), words=("header",))


def test_safetensors_shape_does_not_match_bytes(tmp_path):
    p = tmp_path / "bad.safetensors"
    write_safetensors_by_hand(
        p, {"w": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 32]}}, b"\0" * 32
    )
    with pytest.raises(FileFormatError, match="does not match its shape"):
        load_matrix(p)


def test_safetensors_negative_shape_is_a_file_format_error(tmp_path):
    p = tmp_path / "neg.safetensors"
    write_safetensors_by_hand(
        p, {"w": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}}, b"\0" * 16
    )
    with pytest.raises(FileFormatError):
        load_matrix(p)


def test_safetensors_bool_tensor_is_rejected(tmp_path):
    p = tmp_path / "mask.safetensors"
    write_safetensors_by_hand(
        p, {"w": {"dtype": "BOOL", "shape": [2, 2], "data_offsets": [0, 4]}}, b"\1" * 4
    )
    with pytest.raises(FileFormatError, match="dtype bool"):
        load_matrix(p)


# ---------------------------------------------------------------------------------------------
# bfloat16 / float16 safetensors load exactly
# ---------------------------------------------------------------------------------------------
def test_bfloat16_safetensors_loads_exactly(tmp_path):
    # values with ≤ 8 significant bits are exactly representable in bfloat16
    r = rng(3)
    mant = r.integers(-255, 256, size=(H, N))
    mant[mant == 0] = 1
    expected = (mant * 2.0 ** r.integers(-12, 4, size=(H, N))).astype(np.float32)
    bits = (expected.view(np.uint32) >> 16).astype("<u2")
    assert np.array_equal((bits.astype(np.uint32) << 16).view(np.float32), expected)
    p = tmp_path / "bf16.safetensors"
    write_safetensors_by_hand(
        p,
        {"w": {"dtype": "BF16", "shape": [H, N], "data_offsets": [0, bits.nbytes]}},
        bits.tobytes(),
    )
    arr = load_matrix(p)
    assert arr.dtype == np.float32
    assert arr.shape == (H, N)
    np.testing.assert_array_equal(arr, expected)
    arr = load_matrix(p, "w")
    np.testing.assert_array_equal(arr, expected)
    d = Dictionary.from_file(p)
    np.testing.assert_array_equal(d.atoms, expected)
    # and the CLI computes with exactly those values
    res = run_cli("coherence", p, "--raw", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["mu"] == pytest.approx(
        raw_mu(expected.astype(np.float64)), abs=1e-9
    )


def test_bfloat16_special_values(tmp_path):
    # 1, -2, 0.5, 3, the smallest normal bf16 (2^-126) and the largest finite bf16
    bits = np.array([0x3F80, 0xC000, 0x3F00, 0x4040, 0x0080, 0x7F7F], dtype="<u2")
    expected = np.array(
        [1.0, -2.0, 0.5, 3.0, 2.0**-126, (2 - 2.0**-7) * 2.0**127], dtype=np.float32
    ).reshape(2, 3)
    p = tmp_path / "bf16.safetensors"
    write_safetensors_by_hand(
        p, {"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}, bits.tobytes()
    )
    np.testing.assert_array_equal(load_matrix(p), expected)


def test_float16_safetensors_loads_exactly(tmp_path):
    D = gaussian_dict().astype(np.float16)
    p = tmp_path / "f16.safetensors"
    save_file({"w": D}, str(p))
    np.testing.assert_array_equal(load_matrix(p), D)
    d = Dictionary.from_file(p)
    np.testing.assert_array_equal(d.atoms, D.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# .npy: truncated, foreign, pickled, wrong rank, missing
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", ["data", "header"])
def test_truncated_npy(tmp_path, cut):
    good = tmp_path / "good.npy"
    np.save(good, gaussian_dict())
    raw = good.read_bytes()
    p = tmp_path / "cut.npy"
    p.write_bytes(raw[:-37] if cut == "data" else raw[:40])
    for mmap in (False, True):
        with pytest.raises(FileFormatError) as exc:
            load_matrix(p, mmap=mmap)
        assert str(p) in str(exc.value) and "truncated" in str(exc.value)
    with pytest.raises(FileFormatError, match="truncated"):
        Dictionary.load(p)
    assert_cli_bad_input(["coherence", p, "--json"], cwd=tmp_path, names=str(p),
                         words=("truncated",))
    if cut == "data":  # as an activations file (memory-mapped)
        assert_cli_bad_input(["coherence", good, "--metric", p], cwd=tmp_path, names=str(p),
                             words=("truncated",))


def test_empty_npy(tmp_path):
    p = tmp_path / "empty.npy"
    p.write_bytes(b"")
    with pytest.raises(FileFormatError, match="truncated"):
        load_npy(p)
    assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p), words=("truncated",))


@pytest.mark.parametrize(
    "content", [np.random.default_rng(7).bytes(300), b"hello, I am text\n" * 10],
    ids=["random-bytes", "text"],
)
def test_foreign_npy_is_a_file_format_error(tmp_path, content):
    p = tmp_path / "foreign.npy"
    p.write_bytes(content)
    for mmap in (False, True):
        with pytest.raises(FileFormatError) as exc:
            load_matrix(p, mmap=mmap)
        assert str(p) in str(exc.value)
    if content.startswith(b"hello"):
        assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p),
                             words=("not a .npy", "pickle"))


def test_foreign_npy_message_says_not_npy(tmp_path):
    p = tmp_path / "foreign.npy"
    p.write_bytes(np.random.default_rng(7).bytes(300))
    with pytest.raises(FileFormatError, match=r"not a \.npy file"):
        load_npy(p)


class _Trap:
    """Unpickling this object would create ``marker`` (proof that pickle ran)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_npy_is_refused_and_not_unpickled(tmp_path):
    marker = tmp_path / "UNPICKLED"
    p = tmp_path / "objects.npy"
    arr = np.empty(2, dtype=object)
    arr[0] = _Trap(str(marker))
    arr[1] = None
    np.save(p, arr, allow_pickle=True)
    for mmap in (False, True):
        with pytest.raises(FileFormatError) as exc:
            load_matrix(p, mmap=mmap)
        assert str(p) in str(exc.value)
        assert "python objects" in str(exc.value).lower()
    with pytest.raises(FileFormatError, match="pickle"):
        Dictionary.load(p)
    assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p), words=("pickle",))
    assert_cli_bad_input(["coherence", "neurons:4", "--metric", p], cwd=tmp_path, names=str(p),
                         words=("pickle", "python objects"))
    assert not marker.exists()  # allow_pickle stayed False


def test_pickled_object_npy_mmap_message_is_not_truncated(tmp_path):
    p = tmp_path / "objects.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError) as exc:
        load_npy(p, mmap=True)
    assert "truncated" not in str(exc.value)


@pytest.mark.parametrize("shape", [(2, 3, 4), (12,), ()], ids=["3-D", "1-D", "0-D"])
def test_wrong_rank(tmp_path, shape):
    p = tmp_path / "rank.npy"
    np.save(p, np.ones(shape))
    with pytest.raises(FileFormatError) as exc:
        Dictionary.load(p)
    assert str(p) in str(exc.value) and "2-D" in str(exc.value)
    assert str(tuple(shape)) in str(exc.value)
    if len(shape) == 3:
        line = assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p),
                                    words=("2-D",))
        assert str(tuple(shape)) in line
    with pytest.raises(FileFormatError, match="2-D"):
        Dictionary(np.ones(shape))


def test_wrong_rank_safetensors(tmp_path):
    p = tmp_path / "t.safetensors"
    save_file({"w": np.ones((2, 3, 4), np.float32)}, str(p))
    with pytest.raises(FileFormatError, match=r"2-D .*\(2, 3, 4\)"):
        load_matrix(p)


def test_complex_matrix_is_rejected(tmp_path):
    p = tmp_path / "c.npy"
    np.save(p, np.ones((3, 3), complex))
    with pytest.raises(FileFormatError, match="complex"):
        Dictionary.load(p)


@pytest.mark.parametrize("name", ["missing.npy", "missing.safetensors"])
def test_missing_file(tmp_path, dict_npy, name):
    p = tmp_path / name
    with pytest.raises(FileFormatError) as exc:
        Dictionary.load(p)
    assert str(p) in str(exc.value) and "no such file" in str(exc.value)
    assert_cli_bad_input(["coherence", p, "--json"], cwd=tmp_path, names=str(p),
                         words=("no such file",))
    if name.endswith(".npy"):  # a missing activations file
        assert_cli_bad_input(["coherence", dict_npy, "--metric", p], cwd=tmp_path,
                             names=str(p), words=("no such file",))


def test_unknown_suffix_and_folder(tmp_path):
    p = tmp_path / "dict.txt"
    p.write_text("1 2\n3 4\n")
    with pytest.raises(FileFormatError, match=r"unknown matrix format \.txt"):
        Dictionary.load(p)
    assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p), words=("format",))
    folder = tmp_path / "somefolder"
    folder.mkdir()
    with pytest.raises(FileFormatError, match="folder"):
        Dictionary.load(folder)


# ---------------------------------------------------------------------------------------------
# neurons:H specs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec", ["neurons:abc", "neurons:0", "neurons:-3", "neurons:", "neurons:2.5"]
)
def test_bad_neurons_spec(tmp_path, spec):
    with pytest.raises(FileFormatError) as exc:
        Dictionary.load(spec)
    assert spec in str(exc.value) and "positive integer" in str(exc.value)
    if spec in ("neurons:abc", "neurons:0"):
        assert_cli_bad_input(["coherence", spec, "--raw"], cwd=tmp_path, names=spec,
                             words=("positive integer",))


# ---------------------------------------------------------------------------------------------
# activations: singular second moment, NaN, width mismatch
# ---------------------------------------------------------------------------------------------
def _acts_fewer_rows_than_h() -> np.ndarray:
    return rng(1).standard_normal((H - 3, H))


def _acts_zero_coordinate() -> np.ndarray:
    X = rng(2).standard_normal((500, H))
    X[:, 3] = 0.0
    return X


def _acts_repeated_coordinate() -> np.ndarray:
    X = rng(3).standard_normal((500, H))
    X[:, 6] = X[:, 1]
    return X


SINGULAR_ACTS = {
    "fewer-rows-than-H": _acts_fewer_rows_than_h,
    "zero-coordinate": _acts_zero_coordinate,
    "repeated-coordinate": _acts_repeated_coordinate,
}


@pytest.mark.parametrize("case", list(SINGULAR_ACTS))
def test_singular_second_moment_library(tmp_path, case):
    X = SINGULAR_ACTS[case]()
    p = tmp_path / "acts.npy"
    np.save(p, X)
    with pytest.raises(SingularMetricError) as exc:
        fit_metric(load_matrix(p, mmap=True), source=str(p))
    msg = str(exc.value)
    assert str(p) in msg
    assert "singular" in msg or "cannot be inverted" in msg
    # independent check that the matrix really is singular
    assert np.linalg.matrix_rank(X.T @ X) < H
    # with a ridge it fits
    m = fit_metric(X, ridge=1e-3)
    assert np.isfinite(m.S).all()


@pytest.mark.parametrize("case", list(SINGULAR_ACTS))
def test_singular_second_moment_cli(tmp_path, dict_npy, case):
    p = tmp_path / "acts.npy"
    np.save(p, SINGULAR_ACTS[case]())
    assert_cli_bad_input(
        ["coherence", dict_npy, "--metric", p, "--json", "--quiet"], cwd=tmp_path, names=str(p),
        words=("singular", "cannot be inverted"),
    )
    if case == "zero-coordinate":  # a ridge makes it invertible
        r = run_cli("coherence", dict_npy, "--metric", p, "--ridge", "1e-3", "--json",
                    cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["metric"]["kind"] == "activations"


def test_constant_coordinate_singular_only_when_centred(tmp_path, dict_npy):
    X = rng(4).standard_normal((400, H))
    X[:, 2] = 3.0  # constant: the second moment is fine, the covariance is singular
    p = tmp_path / "acts.npy"
    np.save(p, X)
    fit_metric(X)  # uncentred: invertible
    with pytest.raises(SingularMetricError, match="covariance"):
        fit_metric(X, center=True, source=str(p))
    assert_cli_bad_input(
        ["coherence", dict_npy, "--metric", p, "--center", "--quiet"], cwd=tmp_path,
        names=str(p), words=("singular",),
    )


def test_activations_nonfinite_names_the_row(tmp_path, dict_npy):
    X = rng(5).standard_normal((100, H))
    X[37, 4] = np.nan
    X[60, 1] = np.inf
    with pytest.raises(NonFiniteError, match=r"acts: row 37 "):
        fit_metric(X, source="acts")
    # across chunk boundaries the row number is global
    with pytest.raises(NonFiniteError, match=r"row 37 "):
        fit_metric(X, chunk_size=16, source="acts")
    with pytest.raises(NonFiniteError, match=r"row 37 "):
        fit_metric((X[i:i + 10] for i in range(0, 100, 10)), source="acts")
    p = tmp_path / "acts.npy"
    np.save(p, X.astype(np.float32))
    line = assert_cli_bad_input(
        ["coherence", dict_npy, "--metric", p, "--json", "--quiet"], cwd=tmp_path, names=str(p),
        words=("non-finite",),
    )
    assert "row 37" in line


@pytest.mark.parametrize("case", ["fewer-rows-than-H", "nan"])
def test_activation_errors_one_line_without_quiet(tmp_path, dict_npy, case):
    X = SINGULAR_ACTS[case]() if case in SINGULAR_ACTS else rng(5).standard_normal((50, H))
    if case == "nan":
        X[9, 0] = np.nan
    p = tmp_path / "acts.npy"
    np.save(p, X)
    assert_cli_bad_input(
        ["coherence", dict_npy, "--metric", p, "--json"], cwd=tmp_path, names=str(p),
        words=("singular", "cannot be inverted", "non-finite"),
    )


def test_activations_width_mismatch_library(tmp_path):
    d = Dictionary(gaussian_dict(), source="dict.npy")
    m = fit_metric(rng(6).standard_normal((200, H + 1)), source="acts.npy")
    with pytest.raises(ShapeMismatchError) as exc:
        coherence(d, m)
    msg = str(exc.value)
    assert "dict.npy" in msg
    assert f"H = {H + 1}" in msg and f"H = {H}" in msg
    with pytest.raises(ShapeMismatchError, match=f"H = {H + 1}"):
        m.corrected(d)
    # chunks of inconsistent width
    chunks = [np.ones((5, H)), np.ones((5, H + 1))]
    with pytest.raises(ShapeMismatchError, match="acts: chunk of width"):
        fit_metric(iter(chunks), source="acts")


def test_activations_width_mismatch_cli(tmp_path, dict_npy):
    p = tmp_path / "acts.npy"
    np.save(p, rng(6).standard_normal((200, H + 1)))
    line = assert_cli_bad_input(
        ["coherence", dict_npy, "--metric", p, "--json"], cwd=tmp_path, names=str(p),
        words=("width",),
    )
    assert str(H + 1) in line and f"H = {H}" in line


def test_activations_width_mismatch_is_shape_mismatch_error(tmp_path):
    p = tmp_path / "acts.npy"
    np.save(p, rng(6).standard_normal((200, H + 1)))
    args = Namespace(raw=False, metric=str(p), center=False, ridge=0.0, quiet=True)
    with pytest.raises(ShapeMismatchError, match=rf"{p}: activations have width {H + 1}"):
        load_metric(args, Dictionary(gaussian_dict()))


def test_activations_with_no_rows(tmp_path, dict_npy):
    p = tmp_path / "acts.npy"
    np.save(p, np.zeros((0, H)))
    with pytest.raises(ShapeMismatchError, match="no activations"):
        fit_metric(load_matrix(p), source=str(p))
    assert_cli_bad_input(["coherence", dict_npy, "--metric", p, "--quiet"], cwd=tmp_path,
                         names=str(p), words=("no activations",))


# ---------------------------------------------------------------------------------------------
# --metric self on a dictionary that does not span R^H
# ---------------------------------------------------------------------------------------------
def test_self_metric_fewer_atoms_than_h(tmp_path):
    p = tmp_path / "thin.npy"
    np.save(p, gaussian_dict(n=H - 3))
    d = Dictionary.load(p)
    with pytest.raises(SingularMetricError) as exc:
        AIPMetric.from_dictionary(d)
    assert str(p) in str(exc.value) and "singular" in str(exc.value)
    with pytest.raises(SingularMetricError):
        coherence(d)  # the default metric is "self"
    assert coherence(d, "raw").mu == pytest.approx(raw_mu(gaussian_dict(n=H - 3)), abs=1e-12)
    assert_cli_bad_input(["coherence", p, "--json"], cwd=tmp_path, names=str(p),
                         words=("singular",))


def test_self_metric_rank_deficient_with_many_atoms(tmp_path):
    # N = 3H atoms that all lie in a 5-dimensional subspace of R^H
    r = rng(8)
    D = r.standard_normal((H, 5)) @ r.standard_normal((5, 3 * H))
    assert np.linalg.matrix_rank(D) == 5
    p = tmp_path / "flat.npy"
    np.save(p, D)
    with pytest.raises(SingularMetricError, match=str(p)):
        AIPMetric.from_dictionary(Dictionary.load(p))
    assert_cli_bad_input(["coherence", p], cwd=tmp_path, names=str(p), words=("singular",))


# ---------------------------------------------------------------------------------------------
# theory arguments out of range
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", ["1.5", "0", "-0.2", "nan"])
def test_theory_rho_weak_delta_out_of_range(tmp_path, delta):
    with pytest.raises(ValueError, match="delta"):
        rho_weak(float(delta))
    if delta not in ("1.5", "nan"):
        return
    r = run_cli("theory", "rho-weak", "--delta", delta, "--json", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "delta" in lines[0] and "(0, 1]" in lines[0]


def test_theory_rho_weak_without_delta(tmp_path):
    r = run_cli("theory", "rho-weak", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "--delta" in r.stderr


def test_every_input_error_is_a_ripatomserror():
    for cls in (NonFiniteError, FileFormatError, TensorNotFoundError, ShapeMismatchError,
                SingularMetricError, EmptyDictionaryError):
        assert issubclass(cls, RipAtomsError) and issubclass(cls, ValueError)


# ---------------------------------------------------------------------------------------------
# argparse's own errors: one line ``rip-atoms: error: …``, exit 2, never a usage block — each
# kind argparse raises (a type error, a missing required argument, an unknown option, an
# invalid choice, an ambiguous abbreviation, mutually exclusive options), on the top parser and
# on every subcommand; ``--help`` still prints the usage and exits 0
# ---------------------------------------------------------------------------------------------
def run_main(capsys, argv: list[str]) -> tuple[int, str, str]:
    """In-process ``main`` (argparse exits through SystemExit): status, stdout, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def assert_one_line(capsys, argv: list[str], *words: str) -> str:
    code, out, err = run_main(capsys, argv)
    assert code == 2, (code, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("rip-atoms: error: "), line
    assert "usage:" not in err
    for w in words:
        assert w in line, (w, line)
    return line


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.fixture
def dict_file(tmp_path):
    p = tmp_path / "D.npy"
    np.save(p, np.random.default_rng(0).standard_normal((6, 12)))
    return str(p)


# ------------------------------------------------------------------ the cases
def test_a_float_type_error(capsys):
    assert_one_line(capsys, ["verify", "--budget-s", "abc"], "verify", "--budget-s", "'abc'")


def test_an_int_type_error(capsys, dict_file):
    assert_one_line(capsys, ["coherence", dict_file, "--top", "1e9"], "coherence", "--top",
                    "'1e9'")


def test_a_missing_required_argument(capsys):
    assert_one_line(capsys, ["coherence"], "coherence", "required", "DICT")
    assert_one_line(capsys, ["recover"], "recover", "required", "--codes")
    assert_one_line(capsys, [], "required", "command")


def test_an_unknown_option_names_the_command(capsys, dict_file):
    assert_one_line(capsys, ["coherence", dict_file, "--bogus"], "coherence", "unrecognized",
                    "--bogus")
    assert_one_line(capsys, ["--bogus"])


def test_an_invalid_choice(capsys, dict_file):
    assert_one_line(capsys, ["frobnicate"], "invalid choice", "'frobnicate'")
    assert_one_line(capsys, ["theory", "nonsense"], "theory", "invalid choice", "rho-weak")
    assert_one_line(capsys, ["coherence", dict_file, "--backend", "cuda"], "--backend",
                    "'cuda'")


def test_an_ambiguous_abbreviation_and_exclusive_options(capsys, dict_file):
    assert_one_line(capsys, ["coherence", dict_file, "--b", "3"], "ambiguous", "--b")
    assert_one_line(capsys, ["coherence", dict_file, "--raw", "--metric", "acts.npy"],
                    "not allowed with")


# ------------------------------------------------------------------ every subcommand
@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_subcommand_gives_one_line(capsys, command):
    parser = subcommands()[command]
    # (a command with required arguments names those first; either way one line)
    assert_one_line(capsys, [command, "--no-such-option"], f"error: {command}: ")
    # every option that takes an int or a float rejects a word in one line naming it (`check`
    # takes none: its unknown option above is its one-line case)
    typed = [a for a in parser._actions
             if a.option_strings and a.type in (int, float) and a.nargs is None]
    assert typed or command == "check", "every other command has a numeric option"
    for action in typed:
        opt = action.option_strings[-1]
        assert_one_line(capsys, [command, opt, "abc"], command, opt, "invalid")


@pytest.mark.parametrize("argv", [["--help"], ["coherence", "--help"], ["verify", "-h"]])
def test_help_still_prints_the_usage(capsys, argv):
    code, out, err = run_main(capsys, argv)
    assert code == 0 and err == ""
    assert out.startswith("usage: rip-atoms") and "--help" in out


def test_the_installed_command_line(tmp_path):
    """The same through ``python -m rip_atoms`` (the process's real stderr and status)."""
    r = subprocess.run([sys.executable, "-m", "rip_atoms", "rip", "x.npy", "-k", "3",
                        "--budget-s", "abc"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "rip-atoms: error: rip: argument --budget-s: invalid float value: 'abc' "
        "(see rip-atoms rip --help)"]
