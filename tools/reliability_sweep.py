"""Reliability sweep: bad and edge-case inputs through the ``rip-atoms`` CLI and the Python API.

What it does
------------
Builds a folder of fixtures (dictionaries with NaN/Inf, zero/duplicate/parallel atoms, every
dtype, 1-row/1-column/empty/transposed shapes, 1e-300…1e38 scales, truncated or forged ``.npy``
headers, foreign files, malicious pickles, broken ``.safetensors``, SAE folders in each format,
complex/singular/mismatched activations, crafted harvest folders …), then runs every case in its
own child process with a timeout, two children at a time (a pool of 2 worker threads, each
driving one subprocess), so a crash or a hang is contained:

* ``cli``    — ``python -m rip_atoms COMMAND …`` (every command of ``rip-atoms --help``; ``harvest``
  only with inputs that fail before a model is loaded, never a download);
* ``api``    — a small script per case calling the library (written to ``WORK/api/ID.py``);
* ``sigint`` — a long CLI job (``verify``, ``train``, ``recover``) sent SIGINT once it runs.

Each outcome is classified:

``ok``              exit 0 on an input that is legitimately fine (``--json`` output is one
                    strict JSON object; known answers hold).
``clean_error``     CLI: exit 2, nothing on stdout, exactly one stderr line (argparse's usage
                    block before its ``error:`` line is allowed) naming the file or option;
                    API: an exception that subclasses ``rip_atoms.errors.RipAtomsError``.
``traceback``       "Traceback" on stderr, exit 1, death by a signal, or an API exception
                    outside ``RipAtomsError``.
``hang``            no exit within the case's timeout (the process group is killed).
``wrong``           a known-answer case contradicting its closed form (e.g. atoms
                    ``D[:,9] = c·D[:,4]`` ⇒ certified_K 0, spark upper 2, e₄ not certified;
                    when the product is rounded, as fl₃₂(−3d₄), the pair is independent in
                    float64: spark 2 only within the input's precision, e₄ never "failed"),
                    a pickle payload that ran (its marker file appeared), or ``--json`` output
                    that is not one strict JSON object.
``accepted_bad``    a bad input (or option value) accepted: exit 0 / no exception.
``refused_valid``   a legitimately fine input refused (exit 2 / a RipAtomsError).
``messy_error``     exit 2 but the message is not one line naming the input (file, option or
                    its value), or text on stdout.
``interrupted_ok``  SIGINT: exit 130, one ``rip-atoms: interrupted`` line (the last), no
                    traceback, nothing on stdout, no ``*.tmp`` left in the output folders;
``interrupted_bad`` anything else after SIGINT.

It prints the counts per class and per command, lists every case that is not ``ok`` /
``clean_error`` / ``interrupted_ok`` with its command line, the reason and the last stderr line,
and writes a JSON summary (every case) to ``--out``. The fixtures and outputs stay in the work
folder (printed at the end) so each listed command can be rerun by hand from there.

Run (about 5–10 minutes on 2 cores)::

    .venv/bin/python tools/reliability_sweep.py        # JSON: /tmp/reliability_sweep.json
    .venv/bin/python tools/reliability_sweep.py --only coherence --out /tmp/s.json
    .venv/bin/python tools/reliability_sweep.py --list # the cases, nothing run

Exit status 0 when every case is ok / clean_error / interrupted_ok, else 1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import pickle
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SEED = 20240611
H, N = 16, 40
INTERRUPTED = "rip-atoms: interrupted"
CLEAN = ("ok", "clean_error", "interrupted_ok")
CLASSES = ("ok", "clean_error", "traceback", "hang", "wrong", "accepted_bad", "refused_valid",
           "messy_error", "interrupted_ok", "interrupted_bad")

Check = Callable[[object], "str | None"]


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    command: str  # the CLI command or "api:<function>"
    kind: str  # cli | api | sigint
    argv: list[str]  # cli/sigint: arguments after ``python -m rip_atoms``; api: [script path]
    label: str
    expect: str = "error"  # ok | error | any
    blame: tuple[str, ...] = ()  # a clean error message must name one of these
    check: Check | None = None  # known answer on the parsed --json output (None: fine)
    timeout: float = 60.0
    markers: tuple[Path, ...] = ()  # pickle payload markers that must not appear
    tmp_dirs: tuple[str, ...] = ()  # folders that must hold no *.tmp afterwards
    wait_for: Callable[[], bool] | None = None  # sigint: the job is running
    delay: float = 1.0  # sigint: seconds after wait_for before the signal
    signals: int = 1  # sigint: how many SIGINTs (0.05 s apart)
    code: str = ""  # api: the body


@dataclass
class Outcome:
    cls: str
    reason: str = ""
    rc: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)


def _variants(name: str) -> list[str]:
    """Spellings of an option in a message: --dead-rtol, dead-rtol, dead_rtol (not 1-letter)."""
    bare = name.lstrip("-")
    if len(bare) < 3:
        return [name]
    return sorted({name, bare, bare.replace("-", "_"), bare.replace("_", "-")})


class Sweep:
    """Holds the work folder, the fixtures and the case list."""

    def __init__(self, work: Path):
        self.work = work
        self.fx = work / "fx"
        self.cases: list[Case] = []
        self.ids: Counter = Counter()
        self.ref: dict = {}
        self.cuda = False
        self.n_malicious = 0

    # -- helpers ------------------------------------------------------------------------------
    def _id(self, command: str) -> str:
        base = command.replace("api:", "api-").replace(" ", "-")
        self.ids[base] += 1
        return f"{base}-{self.ids[base]:03d}"

    def path(self, name: str) -> str:
        """A fixture path relative to the work folder (the cwd of every child)."""
        return f"fx/{name}"

    def cli(self, argv: list[str], label: str, *, expect: str = "error",
            blame: tuple[str, ...] | str | None = None, check: Check | None = None,
            timeout: float = 60.0, quiet: bool = True, markers: tuple[Path, ...] = (),
            tmp_dirs: tuple[str, ...] = ()) -> Case:
        command = argv[0] if argv[0] != "theory" else f"theory {argv[1]}"
        cid = self._id(argv[0])
        argv = [a.replace("{out}", f"out/{cid}") for a in argv]
        if quiet and "--quiet" not in argv and "-h" not in argv and "--help" not in argv:
            argv = [*argv, "--quiet"]
        if blame is None:
            blame = tuple(Path(a).name for a in argv if a.startswith(("fx/", "out/")))
            blame += tuple(a.split(":")[0] + ":" for a in argv if a.startswith("neurons:"))
        elif isinstance(blame, str):
            blame = (blame,)
        case = Case(cid, command, "cli", argv, label, expect, tuple(blame), check, timeout,
                    markers, tmp_dirs)
        self.cases.append(case)
        return case

    def opt(self, base: list[str], option: str, value: str | None, *, label: str = "",
            expect: str = "error", timeout: float = 60.0, check: Check | None = None) -> Case:
        """``base`` plus one bad option value; the error must name the option."""
        argv = [*base, option] + ([] if value is None else [value])
        blame = (option,) + ((value,) if value and len(value) >= 2 else ())
        return self.cli(argv, label or f"{option} {value}", expect=expect, blame=blame,
                        timeout=timeout, check=check)

    def api(self, function: str, code: str, label: str, *, expect: str = "error",
            markers: tuple[Path, ...] = (), timeout: float = 60.0) -> Case:
        cid = self._id(f"api:{function}")
        script = self.work / "api" / f"{cid}.py"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(API_PRELUDE + textwrap.indent(textwrap.dedent(code).strip(), "    ")
                          + API_EPILOGUE)
        case = Case(cid, f"api:{function}", "api", [f"api/{cid}.py"], label, expect, (), None,
                    timeout, markers, code=textwrap.dedent(code).strip())
        self.cases.append(case)
        return case

    def sigint(self, argv: list[str], label: str, *, wait_for: Callable[[], bool] | None,
               delay: float, tmp_dirs: tuple[str, ...], signals: int = 1,
               timeout: float = 150.0) -> Case:
        cid = self._id(argv[0])
        argv = [a.replace("{out}", f"out/{cid}") for a in argv]
        tmp_dirs = tuple(d.replace("{out}", f"out/{cid}") for d in tmp_dirs)
        case = Case(cid, argv[0], "sigint", argv, label, "interrupt", (), None, timeout,
                    tmp_dirs=tmp_dirs, wait_for=wait_for, delay=delay, signals=signals)
        self.cases.append(case)
        return case

    def malicious(self, name: str, how: str) -> tuple[str, Path]:
        """A fresh malicious file (its own marker): returns (relative path, marker)."""
        self.n_malicious += 1
        n = self.n_malicious
        folder = self.fx / f"mal{n:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        marker = self.work / "markers" / f"mal{n:03d}"
        marker.parent.mkdir(exist_ok=True)
        if marker.exists():
            marker.unlink()
        path = folder / name
        write_malicious(path, how, marker)
        return f"fx/{folder.name}/{name}", marker


API_PRELUDE = '''\
import json, math, sys, traceback
import numpy as np
FX = "fx"


class Wrong(Exception):
    """A known answer that does not hold."""


def expect(cond, msg):
    if not cond:
        raise Wrong(msg)


def fx(name):
    return np.load(f"{FX}/{name}")


try:
    import rip_atoms as ra
    from rip_atoms.errors import RipAtomsError
except BaseException as exc:
    traceback.print_exc()
    print(json.dumps({"status": "exc", "type": type(exc).__name__, "rip": False,
                      "msg": "import failed: " + str(exc)[:300]}))
    sys.exit(0)
try:
'''

API_EPILOGUE = '''
except Wrong as exc:
    print(json.dumps({"status": "wrong", "msg": str(exc)[:500]}))
    sys.exit(0)
except BaseException as exc:
    traceback.print_exc()
    print(json.dumps({"status": "exc", "type": type(exc).__module__ + "." + type(exc).__name__,
                      "rip": isinstance(exc, RipAtomsError), "msg": str(exc)[:500]}))
    sys.exit(0)
print(json.dumps({"status": "ok"}))
'''


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
class _Payload:
    """Unpickling it creates the marker file (what a malicious pickle would do, harmlessly)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious(path: Path, how: str, marker: Path) -> None:
    rng = np.random.default_rng(SEED + 7)
    if how == "raw_pickle":  # a pickle with a .npy / .safetensors / .pt name
        with open(path, "wb") as fh:
            pickle.dump({"W_dec": rng.standard_normal((H, N)), "x": _Payload(marker)}, fh)
    elif how == "object_npy":
        np.save(path, np.array([_Payload(marker), 1.0], dtype=object), allow_pickle=True)
    elif how == "object_npz":
        np.savez(path, W_enc=rng.standard_normal((H, N)).astype(np.float32),
                 W_dec=rng.standard_normal((N, H)).astype(np.float32),
                 b_enc=np.zeros(N, np.float32), b_dec=np.zeros(H, np.float32),
                 threshold=np.array([_Payload(marker)] * N, dtype=object))
    elif how == "torch_pt":
        import torch

        torch.save({"encoder.weight": torch.randn(N, H), "encoder.bias": torch.zeros(N),
                    "decoder.weight": torch.randn(H, N), "bias": torch.zeros(H),
                    "evil": _Payload(marker)}, path)
        (path.parent / "config.json").write_text(json.dumps(
            {"trainer": {"dict_class": "AutoEncoder", "activation_dim": H, "dict_size": N}}))
    else:
        raise ValueError(how)


SAFE_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], *, raw_header: bytes | None
                      = None, bf16: tuple[str, ...] = (), length: int | None = None,
                      truncate: int | None = None) -> None:
    """A .safetensors file written by hand (no dependency), optionally broken."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        if name in bf16:
            u = np.ascontiguousarray(arr, dtype="<f4").view("<u4") >> 16
            data, dt = u.astype("<u2").tobytes(), "BF16"
        else:
            dt = {v: k for k, v in SAFE_DTYPES.items()}[np.dtype(arr.dtype).newbyteorder("<").str]
            data = np.ascontiguousarray(arr).astype(SAFE_DTYPES[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off,
                                                                                off + len(data)]}
        blobs.append(data)
        off += len(data)
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text) if length is None else length) + text + b"".join(blobs)
    path.write_bytes(blob if truncate is None else blob[:truncate])


def npy_with_header(path: Path, header: str, payload: bytes) -> None:
    h = header.encode("latin1")
    h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + payload)


def make_harvest(folder: Path, *, complete: bool, tamper: str | None = None,
                 n: int = 1280) -> None:
    """A folder in the layout rip_atoms.sae.harvest writes (manifest.json + layer_LL/shards),
    crafted without a model."""
    layer, per_ctx = 3, 64
    rel = f"layer_{layer:02d}/shard_00000.npy"
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(SEED + 3).standard_normal((n, H)).astype(np.float32)
    np.save(folder / rel, arr)
    data = (folder / rel).read_bytes()
    info = {"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "rows": n}
    man = {
        "format": "rip_atoms.activations/1",
        "model": {"source": "synthetic (reliability sweep)", "name": "synthetic"},
        "layers": [layer], "hook_names": {str(layer): f"blocks.{layer}.hook_resid_post"},
        "modules": {str(layer): f"model.layers.{layer}"}, "d_model": H, "dtype": "float32",
        "context_size": per_ctx + 1, "prepend_bos": False, "bos_token_id": None,
        "skip_first": 1, "tokens_per_context": per_ctx, "text": "synthetic",
        "text_fingerprint": "0" * 16, "contexts_available": 4 * n // per_ctx,
        "shards": [{"index": 0, "contexts": [0, n // per_ctx], "n_tokens": n,
                    "files": {str(layer): info}}],
        "n_tokens": n, "n_tokens_target": n if complete else 4 * n, "complete": complete,
        "text_exhausted": False,
    }
    if tamper == "sha":
        info["sha256"] = "0" * 64
    elif tamper == "escape":
        info["path"] = "../../../etc/passwd"
    elif tamper == "missing":
        (folder / rel).unlink()
    elif tamper == "layers":
        man["layers"] = "three"
    elif tamper == "size":
        with open(folder / rel, "ab") as fh:
            fh.write(b"\0" * 64)
    (folder / "manifest.json").write_text(json.dumps(man, indent=1))
    if tamper == "json":
        (folder / "manifest.json").write_text(json.dumps(man)[:200])


def build_fixtures(sw: Sweep) -> None:
    fx = sw.fx
    fx.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    D = rng.standard_normal((H, N))

    def save(name: str, arr) -> None:
        np.save(fx / name, arr, allow_pickle=False)

    save("good.npy", D)
    save("good32.npy", D.astype(np.float32))
    save("good16.npy", D.astype(np.float16))
    save("int.npy", rng.integers(-5, 6, size=(H, N)))
    save("int8.npy", rng.integers(-5, 6, size=(H, N)).astype(np.int8))
    save("uint8.npy", rng.integers(0, 255, size=(H, N)).astype(np.uint8))
    save("bool.npy", D > 0)
    save("complex.npy", D + 1j * D[::-1])
    save("str.npy", D.astype(str))
    for name, val in (("nan", np.nan), ("inf", np.inf), ("ninf", -np.inf)):
        A = D.copy()
        A[3, 7] = val
        save(f"{name}.npy", A)
    A = D.copy()
    A[:, 3] = 0
    save("zero_atom.npy", A)
    save("all_zero.npy", np.zeros((H, N)))
    for name, c, dt in (("dup", 1.0, np.float64), ("par_neg", -1.0, np.float64),
                        ("par2", 2.0, np.float64), ("par_m3_32", -3.0, np.float32),
                        ("par_m3", -3.0, np.float64), ("par_tiny", 1e-3, np.float64),
                        ("par16", 2.0, np.float16)):
        A = D.astype(dt)
        A[:, 9] = A[:, 4] * dt(c)
        save(f"{name}.npy", A)
    A = D.copy()
    A[:, 9] = A[:, 4] + 1e-9 * rng.standard_normal(H)
    save("near_par.npy", A)
    save("one_row.npy", D[:1])
    save("one_col.npy", D[:, :1])
    save("two_col.npy", D[:, :2])
    save("empty_cols.npy", np.zeros((H, 0)))
    save("empty_rows.npy", np.zeros((0, N)))
    save("vec.npy", D[:, 0])
    save("tensor3.npy", D.reshape(4, 4, N))
    save("scalar.npy", np.array(3.0))
    save("tall.npy", D.T.copy())  # 40×16: N×H, atoms as rows
    save("square.npy", rng.standard_normal((H, H)))
    with np.errstate(under="ignore"):
        save("tiny300.npy", D * 1e-300)
        save("tiny160.npy", D * 1e-160)
        save("sub310.npy", D * 1e-310)
    save("huge300.npy", D * 1e300)
    A = D.astype(np.float32)
    A[0, 0] = 1e38
    save("big38_32.npy", A)
    save("f32max.npy", (D / np.abs(D).max() * 3e38).astype(np.float32))
    save("fortran.npy", np.asfortranarray(D))
    save("bigendian.npy", D.astype(">f8"))
    from scipy.linalg import hadamard

    save("dh.npy", np.hstack([np.eye(H), hadamard(H) / 4.0]))
    save("d128.npy", np.random.default_rng(SEED + 1).standard_normal((128, 1024)))
    good = (fx / "good.npy").read_bytes()
    (fx / "trunc.npy").write_bytes(good[: len(good) // 2])
    (fx / "trunc_header.npy").write_bytes(good[:40])
    npy_with_header(fx / "huge_header.npy",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }",
                    b"\0" * 1024)
    npy_with_header(fx / "huge_header_exact.npy",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 2), }",
                    b"\0" * 1024)
    npy_with_header(fx / "neg_shape.npy",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (-16, 40), }", b"\0" * 64)
    npy_with_header(fx / "bad_descr.npy",
                    "{'descr': 'what', 'fortran_order': False, 'shape': (16, 40), }", good[128:])
    npy_with_header(fx / "bad_header.npy", "this is not a dict", good[128:])
    npy_with_header(fx / "extra_bytes.npy",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (16, 40), }",
                    good[128:] + b"\0" * 800)
    (fx / "text.npy").write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    (fx / "empty.npy").write_bytes(b"")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("good.npy", good)
    (fx / "zip.npy").write_bytes(buf.getvalue())
    np.savetxt(fx / "good.csv", D, delimiter=",")
    (fx / "good.txt").write_text("not a matrix\n")
    np.savez(fx / "good.npz", D)
    (fx / "emptydir").mkdir(exist_ok=True)
    if not (fx / "devzero.npy").exists():
        os.symlink("/dev/zero", fx / "devzero.npy")

    # .safetensors
    write_safetensors(fx / "good.safetensors", {"W_dec": D})
    write_safetensors(fx / "two.safetensors", {"W_dec": D, "W_enc": D.T.copy()})
    write_safetensors(fx / "f16.safetensors", {"W_dec": D.astype(np.float16)})
    write_safetensors(fx / "bf16.safetensors", {"W_dec": D.astype(np.float32)}, bf16=("W_dec",))
    write_safetensors(fx / "i64.safetensors", {"W_dec": rng.integers(-5, 6, size=(H, N))})
    write_safetensors(fx / "vec.safetensors", {"W_dec": D[:, 0].copy()})
    A = D.copy()
    A[0, 0] = np.nan
    write_safetensors(fx / "nan.safetensors", {"W_dec": A})
    write_safetensors(fx / "huge_len.safetensors", {"W_dec": D}, length=2**62)
    write_safetensors(fx / "bad_json.safetensors", {"W_dec": D}, raw_header=b"{not json")
    write_safetensors(fx / "bad_offsets.safetensors", {}, raw_header=json.dumps(
        {"W_dec": {"dtype": "F64", "shape": [H, N], "data_offsets": [0, 8 * H * N]}}).encode())
    write_safetensors(fx / "shape_lie.safetensors", {}, raw_header=json.dumps(
        {"W_dec": {"dtype": "F64", "shape": [100000, 100000],
                   "data_offsets": [0, 8 * 10**10]}}).encode())
    write_safetensors(fx / "trunc.safetensors", {"W_dec": D}, truncate=300)

    # activations (n × H)
    X = rng.standard_normal((2000, H)).astype(np.float32)
    save("acts.npy", X)
    A = X.copy()
    A[17, 3] = np.nan
    save("acts_nan.npy", A)
    A = X.copy()
    A[5, 1] = np.inf
    save("acts_inf.npy", A)
    save("acts_complex.npy", X + 1j * X[::-1])
    save("acts_singular.npy", (X[:, :8] @ rng.standard_normal((8, H))).astype(np.float32))
    save("acts_mismatch.npy", X[:, :12].copy())
    save("acts_few.npy", X[:5].copy())
    save("acts_zero.npy", np.zeros_like(X))
    save("acts_const.npy", np.ones_like(X))
    save("acts_int.npy", rng.integers(-5, 6, size=(2000, H)))
    with np.errstate(under="ignore"):
        save("acts_tiny.npy", X.astype(np.float64) * 1e-300)
    save("acts_huge.npy", X.astype(np.float64) * 1e300)
    save("acts_vec.npy", X[:, 0].copy())
    save("acts_3d.npy", X.reshape(1000, 2, H))
    save("acts_empty.npy", np.zeros((0, H), np.float32))
    save("acts_big.npy", rng.standard_normal((20000, H)).astype(np.float32))

    # codes (tokens × atoms)
    E4 = np.zeros((1, N))
    E4[0, 4] = 1.0
    save("e4.npy", E4)
    E9 = np.zeros((1, N))
    E9[0, 9] = 1.0
    save("e9.npy", E9)
    C = np.zeros((20, H))
    for r in range(20):
        C[r, rng.choice(H, 3, replace=False)] = rng.standard_normal(3)
    save("codes3_16.npy", C)
    save("codes_wrong.npy", np.zeros((1, 30)))
    A = np.zeros((3, N))
    A[0, 1], A[1, 2], A[2, 3] = 1.0, np.nan, 1.0
    save("codes_nan.npy", A)
    save("codes_vec.npy", E4[0])
    save("codes_empty.npy", np.zeros((0, N)))
    save("codes_zero.npy", np.zeros((2, N)))
    A = np.zeros((2, N))
    A[:, 5] = -1.0
    save("codes_neg.npy", A)
    save("codes_complex.npy", E4 + 1j * E4)
    save("codes_str.npy", E4.astype(str))
    import scipy.sparse as sp

    M = np.zeros((30, N))
    for r in range(30):
        M[r, rng.choice(N, 2, replace=False)] = rng.standard_normal(2)
    sp.save_npz(fx / "codes.npz", sp.csr_matrix(M))
    save("codes_2sparse.npy", M)
    M = np.zeros((400, N))
    for r in range(400):
        M[r, rng.choice(N, 6, replace=False)] = rng.standard_normal(6)
    save("codes_many.npy", M)

    # SAE folders
    W_enc = rng.standard_normal((H, N)).astype(np.float32)
    W_dec = rng.standard_normal((N, H)).astype(np.float32)
    zeros_n, zeros_h = np.zeros(N, np.float32), np.zeros(H, np.float32)
    cfg = {"architecture": "standard", "d_in": H, "d_sae": N, "dtype": "float32",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"sae_lens_version": "6.0.0", "hook_name": "blocks.3.hook_resid_post",
                        "hook_layer": 3}}
    weights = {"W_enc": W_enc, "b_enc": zeros_n, "W_dec": W_dec, "b_dec": zeros_h}

    def sae(name: str, cfg_obj, w, *, cfg_text: str | None = None) -> None:
        folder = fx / name
        folder.mkdir(exist_ok=True)
        if cfg_obj is not None or cfg_text is not None:
            (folder / "cfg.json").write_text(cfg_text if cfg_text is not None
                                             else json.dumps(cfg_obj))
        if w is not None:
            write_safetensors(folder / "sae_weights.safetensors", w)

    sae("sae_ok", cfg, weights)
    sae("sae_bad_din", {**cfg, "d_in": "abc"}, weights)
    sae("sae_no_cfg", None, weights)
    sae("sae_bad_json", None, weights, cfg_text='{"architecture": "standard", "d_in"')
    sae("sae_no_wdec", cfg, {k: v for k, v in weights.items() if k != "W_dec"})
    sae("sae_no_weights", cfg, None)
    sae("sae_arch", {**cfg, "architecture": "quantum"}, weights)
    sae("sae_mismatch", {**cfg, "d_in": 12}, weights)
    sae("sae_dec_shape", cfg, {**weights, "W_dec": W_dec[:, :12].copy()})
    A = W_dec.copy()
    A[2, 2] = np.nan
    sae("sae_nan", cfg, {**weights, "W_dec": A})
    sae("sae_cfg_list", None, weights, cfg_text="[1, 2, 3]")
    import torch

    sw.cuda = bool(torch.cuda.is_available())
    ae = fx / "ae_ok"
    ae.mkdir(exist_ok=True)
    torch.save({"encoder.weight": torch.from_numpy(W_enc.T.copy()), "encoder.bias":
                torch.zeros(N), "decoder.weight": torch.from_numpy(W_dec.T.copy()),
                "bias": torch.zeros(H)}, ae / "ae.pt")
    (ae / "config.json").write_text(json.dumps(
        {"trainer": {"dict_class": "AutoEncoder", "activation_dim": H, "dict_size": N}}))
    (fx / "ae_nocfg").mkdir(exist_ok=True)
    shutil.copy(ae / "ae.pt", fx / "ae_nocfg" / "ae.pt")
    (fx / "ae_text").mkdir(exist_ok=True)
    (fx / "ae_text" / "ae.pt").write_text("not a torch file\n")
    shutil.copy(ae / "config.json", fx / "ae_text" / "config.json")
    (fx / "ae_trunc").mkdir(exist_ok=True)
    (fx / "ae_trunc" / "ae.pt").write_bytes((ae / "ae.pt").read_bytes()[:200])
    shutil.copy(ae / "config.json", fx / "ae_trunc" / "config.json")
    (fx / "ae_badclass").mkdir(exist_ok=True)
    shutil.copy(ae / "ae.pt", fx / "ae_badclass" / "ae.pt")
    (fx / "ae_badclass" / "config.json").write_text(json.dumps(
        {"trainer": {"dict_class": "Nope"}}))
    gs = {"W_enc": W_enc, "W_dec": W_dec, "b_enc": zeros_n, "b_dec": zeros_h,
          "threshold": np.full(N, 0.1, np.float32)}
    (fx / "gs_ok").mkdir(exist_ok=True)
    np.savez(fx / "gs_ok" / "params.npz", **gs)
    (fx / "gs_missing").mkdir(exist_ok=True)
    np.savez(fx / "gs_missing" / "params.npz",
             **{k: v for k, v in gs.items() if k != "threshold"})
    (fx / "gs_text").mkdir(exist_ok=True)
    (fx / "gs_text" / "params.npz").write_text("PK but not really")

    # harvest folders
    for name, complete, tamper in (("harv_ok", True, None), ("harv_incomplete", False, None),
                                   ("harv_sha", True, "sha"), ("harv_escape", True, "escape"),
                                   ("harv_missing", True, "missing"),
                                   ("harv_layers", True, "layers"), ("harv_json", True, "json"),
                                   ("harv_size", True, "size")):
        (fx / name).mkdir(exist_ok=True)
        make_harvest(fx / name, complete=complete, tamper=tamper)
    (fx / "harv_foreign").mkdir(exist_ok=True)
    (fx / "harv_foreign" / "manifest.json").write_text('{"format": "something else"}')

    # an existing finished SAE (for train without --resume/--overwrite)
    existing = sw.work / "out" / "existing_sae"
    existing.mkdir(parents=True, exist_ok=True)
    shutil.copy(fx / "sae_ok" / "cfg.json", existing / "cfg.json")
    shutil.copy(fx / "sae_ok" / "sae_weights.safetensors", existing / "sae_weights.safetensors")

    # closed-form reference values (numpy float64, independent of rip_atoms)
    sw.ref["mu_self_good"] = _mu(D, "self")
    sw.ref["mu_raw_good"] = _mu(D, "raw")
    sw.ref["welch"] = math.sqrt((N - H) / (H * (N - 1)))


def _mu(D: np.ndarray, metric: str) -> float:
    D = np.asarray(D, dtype=np.float64)
    if metric == "self":
        G = D.T @ np.linalg.solve(D @ D.T, D)
    else:
        G = D.T @ D
    d = np.sqrt(np.diag(G))
    C = np.abs(G / np.outer(d, d))
    np.fill_diagonal(C, 0)
    return float(C.max())


# ---------------------------------------------------------------------------------------------
# known-answer checks (on the parsed --json output)
# ---------------------------------------------------------------------------------------------
def _num(v) -> float:
    return math.inf if v is None else float(v)


def chk_parallel_coherence(obj) -> str | None:
    if obj.get("certified_K") != 0:
        return (f"parallel atoms (μ = 1 exactly) but certified_K = {obj.get('certified_K')} "
                f"(μ = {obj.get('mu')}, mu_upper = {obj.get('mu_upper')}); closed form: 0")
    if _num(obj.get("mu_upper", 1.0)) < 1.0:
        return f"parallel atoms but mu_upper = {obj.get('mu_upper')} < 1"
    return None


def chk_spark_two(obj) -> str | None:
    lo, up = _num(obj.get("lower")), _num(obj.get("upper"))
    if up != 2 or lo > 2:
        return f"parallel atoms: spark = 2 exactly, got [{obj.get('lower')}, {obj.get('upper')}]"
    return None


def chk_spark_two_within_precision(obj) -> str | None:
    """A pair parallel only up to the input's rounding (fl₃₂(−3d₄): σ_min/σ_max ≈ 1e-8 in
    float64): dependent within the input's precision, no proven dependent pair."""
    lo, up = _num(obj.get("lower")), _num(obj.get("upper"))
    within = _num(obj.get("upper_within_precision", up))
    if within != 2 or lo > 2 or up <= 2 or obj.get("exact"):
        return (f"rounded pair: spark 2 within precision only, got [{obj.get('lower')}, "
                f"{obj.get('upper')}], within precision {obj.get('upper_within_precision')}")
    if "uniqueness fails for some codes with K = 1 " in str(obj.get("statement", "")):
        return "rounded pair: 'uniqueness fails ... K = 1' claimed without a float64 proof"
    return None


def chk_spark_contains(value: float) -> Check:
    def check(obj) -> str | None:
        lo, up = _num(obj.get("lower")), _num(obj.get("upper"))
        if not lo <= value <= up:
            return f"spark bracket [{lo}, {up}] excludes the closed form {value}"
        return None
    return check


def chk_spark_lower_at_most(value: float) -> Check:
    def check(obj) -> str | None:
        lo = _num(obj.get("lower"))
        if lo > value:
            return f"spark lower bound {lo} > {value} (a known dependent set of that size)"
        return None
    return check


def chk_not_certified(obj) -> str | None:
    if obj.get("certified", 0) != 0:
        return (f"code on a parallel pair certified (certified = {obj.get('certified')}, "
                f"failed = {obj.get('failed')}); closed form: not unique")
    return None


def chk_none_failed(obj) -> str | None:
    if obj.get("failed", 0) != 0:
        return (f"{obj.get('failed')} codes 'failed' where ℓ1 recovery is unique in closed form "
                "(1-sparse codes, no parallel atoms / orthonormal atoms)")
    return None


def chk_rip(k: int, truth: float, tol: float, why: str) -> Check:
    def check(obj) -> str | None:
        b = next((b for b in obj.get("brackets", []) if b.get("k") == k), None)
        if b is None:
            return f"no bracket for k = {k}"
        lo, up = _num(b.get("delta_lower")), _num(b.get("delta_upper"))
        if not (lo - tol <= truth <= up + tol):
            return (f"δ_{k} bracket [{lo!r}, {up!r}] excludes the closed form {truth} ({why})")
        return None
    return check


def chk_mu(value: float, *, rel: float = 1e-9, key: str = "mu", live: int | None = None
           ) -> Check:
    def check(obj) -> str | None:
        if live is not None and obj.get("n_live") != live:
            return f"n_live = {obj.get('n_live')}, expected {live} (a scale change kills none)"
        mu = obj.get(key)
        if mu is None or not abs(float(mu) - value) <= rel * max(1.0, abs(value)):
            return f"{key} = {mu}, closed form {value!r}"
        return None
    return check


def chk_dh(obj) -> str | None:
    mu = obj.get("mu")
    if mu is None or abs(mu - 0.25) > 1e-9:
        return f"[I, H₁₆/4]: μ = 1/4 exactly, got {mu}"
    k = obj.get("certified_K")
    if k is None or k > 2:
        return f"[I, H₁₆/4]: (2K−1)/4 < 1 ⇒ K ≤ 2, got certified_K = {k}"
    return None


def chk_witness_singular(obj) -> str | None:
    lam = obj.get("lambda_min")
    if lam is None or abs(lam) > 1e-12:
        return f"support {{4, 9}} of parallel atoms: λ_min = 0, got {lam}"
    return None


def chk_witness_identity(obj) -> str | None:
    a, b = obj.get("lambda_min"), obj.get("lambda_max")
    if a is None or b is None or abs(a - 1) > 1e-12 or abs(b - 1) > 1e-12:
        return f"orthonormal atoms: λ_min = λ_max = 1, got {a}, {b}"
    return None


def chk_welch(value: float) -> Check:
    def check(obj) -> str | None:
        w = obj.get("welch_bound")
        if w is None or abs(w - value) > 1e-12 * value:
            return f"Welch bound √((N−H)/(H(N−1))) = {value!r}, got {w}"
        return None
    return check


def chk_pt_k1(obj) -> str | None:
    ks, fails = obj.get("k", []), obj.get("failures", [])
    if ks and ks[0] == 1 and fails and fails[0] != 0:
        return f"k = 1 on Gaussian atoms always recovers (closed form), got {fails[0]} failures"
    return None


def chk_criteria_neurons(obj) -> str | None:
    row = next((r for r in obj.get("rows", []) if r.get("name") == "neurons"), None)
    if row is None:
        return "no neurons row"
    for key in ("r2_aip", "r2_euclidean"):
        if row.get(key) is None or abs(row[key] - 1.0) > 1e-9:
            return f"neurons reconstruct x exactly: {key} = 1, got {row.get(key)}"
    return None


def chk_verify_parallel(obj) -> str | None:
    bad = []
    coh = obj.get("coherence", {})
    for m in ("raw", "aip"):
        k = (coh.get(m) or {}).get("certified_K")
        if k not in (0, None):
            bad.append(f"coherence.{m}.certified_K = {k}")
    spark = obj.get("spark", {})
    smallest = min(_num(spark.get("upper")), _num(spark.get("upper_within_precision",
                                                            spark.get("upper"))))
    if spark.get("computed", True) and smallest != 2:
        bad.append(f"spark.upper = {spark.get('upper')} (within precision "
                   f"{spark.get('upper_within_precision')})")
    uniq = obj.get("uniqueness", {})
    for key in ("unique_up_to", "certified_K_coherence"):
        if uniq.get(key) not in (0, 0.0, None):
            bad.append(f"uniqueness.{key} = {uniq.get(key)}")
    return ("parallel atoms (closed form: certified K 0, spark 2): " + ", ".join(bad)) if bad \
        else None


def both(*checks: Check) -> Check:
    def check(obj) -> str | None:
        for c in checks:
            msg = c(obj)
            if msg:
                return msg
        return None
    return check


# ---------------------------------------------------------------------------------------------
# the case list
# ---------------------------------------------------------------------------------------------
def build_cases(sw: Sweep) -> None:  # noqa: C901 - a flat list of cases
    f = sw.path
    ref = sw.ref
    parallel = ("dup.npy", "par_neg.npy", "par_m3_32.npy", "par_tiny.npy", "par16.npy")

    # -------------------------------------------------------------- coherence
    ok_dicts = ("good16.npy", "int.npy", "bigendian.npy", "tall.npy", "two_col.npy",
                "good.safetensors", "bf16.safetensors", "extra_bytes.npy")
    for name in ok_dicts:
        # 2 atoms cannot span H = 16: (D Dᵀ)⁻¹ does not exist, refusing the self metric is fine
        expect = "any" if name in ("extra_bytes.npy", "tall.npy", "two_col.npy") else "ok"
        sw.cli(["coherence", f(name), "--json"], f"{name}", expect=expect)
    sw.cli(["coherence", f("tall.npy"), "--rows-are-atoms", "--json"],
           "40×16 with --rows-are-atoms", expect="ok",
           check=chk_mu(ref["mu_self_good"]))
    sw.cli(["coherence", f("good.npy"), "--json"], "Gaussian 16×40, μ vs numpy",
           expect="ok", check=chk_mu(ref["mu_self_good"]))
    sw.cli(["coherence", f("good.npy"), "--raw", "--json"], "Gaussian 16×40 raw, μ vs numpy",
           expect="ok", check=chk_mu(ref["mu_raw_good"]))
    for name in ("tiny300.npy", "tiny160.npy", "huge300.npy"):
        # the self metric may be refused with advice (D Dᵀ under/overflows); if computed it
        # must be scale-invariant; the raw cosines must always be computed
        sw.cli(["coherence", f(name), "--json"], f"{name}: scale-invariant μ, 40 live",
               expect="any", check=chk_mu(ref["mu_self_good"], live=N))
        sw.cli(["coherence", f(name), "--raw", "--json"], f"{name} raw: same μ, 40 live",
               expect="ok", check=chk_mu(ref["mu_raw_good"], live=N))
    for name in ("sub310.npy", "big38_32.npy", "zero_atom.npy"):
        sw.cli(["coherence", f(name), "--json"], name, expect="any")
    for name in parallel:
        sw.cli(["coherence", f(name), "--json"], f"{name}: certified_K 0", expect="ok",
               check=chk_parallel_coherence)
    for name in ("par_m3_32.npy",):
        sw.cli(["coherence", f(name), "--raw", "--json"], f"{name} raw: certified_K 0",
               expect="ok", check=chk_parallel_coherence)
    sw.cli(["coherence", f("one_row.npy"), "--json"], "1×40: every pair parallel",
           expect="any", check=chk_parallel_coherence)
    sw.cli(["coherence", f("dh.npy"), "--json"], "[I, H/4]: μ = 1/4, K ≤ 2", expect="ok",
           check=chk_dh)
    sw.cli(["coherence", "neurons:16", "--json"], "neurons:16: μ = 0", expect="ok",
           check=chk_mu(0.0))
    bad_dicts = ("bool.npy", "complex.npy", "nan.npy", "ninf.npy", "all_zero.npy",
                 "one_col.npy", "empty_cols.npy", "tensor3.npy", "trunc.npy", "huge_header.npy",
                 "neg_shape.npy", "bad_header.npy", "text.npy", "zip.npy", "good.csv",
                 "missing.npy", "devzero.npy", "two.safetensors", "huge_len.safetensors",
                 "bad_json.safetensors", "shape_lie.safetensors")
    for name in bad_dicts:
        sw.cli(["coherence", f(name)], name)
    for spec in ("neurons:0", "neurons:abc", "neurons:100000"):
        sw.cli(["coherence", spec], spec, blame="neurons")
    sw.cli(["coherence", f("good.safetensors"), "--tensor", "W_enc"], "wrong tensor name",
           blame=("W_enc", "good.safetensors"))
    sw.cli(["coherence", f("two.safetensors"), "--tensor", "W_dec", "--json"],
           "two tensors, --tensor W_dec", expect="ok")
    sw.cli(["coherence", f("good.npy"), "--tensor", "W_dec"], "--tensor on a .npy",
           blame=("--tensor", "good.npy"))
    for name in ("sae_ok", "ae_ok/ae.pt", "gs_ok/params.npz"):
        sw.cli(["coherence", f(name), "--json"], f"SAE {name}", expect="ok")
    for name in ("sae_bad_din", "sae_no_wdec", "sae_mismatch", "sae_nan", "ae_nocfg/ae.pt",
                 "gs_missing/params.npz"):
        sw.cli(["coherence", f(name)], f"SAE {name}", blame=name.split("/")[0])
    for name, how in (("ae.pt", "torch_pt"), ("evil.npy", "object_npy"),
                      ("evil.safetensors", "raw_pickle"), ("params.npz", "object_npz")):
        path, marker = sw.malicious(name, how)
        sw.cli(["coherence", path], f"malicious {how} {name}", markers=(marker,),
               blame=(Path(path).name, Path(path).parent.name))
    base = ["coherence", f("good.npy")]
    acts_ok = ("acts.npy", "acts_huge.npy")
    for name in acts_ok:
        sw.cli([*base, "--metric", f(name), "--json"], f"--metric {name}", expect="ok")
    sw.cli([*base, "--metric", f("acts_tiny.npy"), "--json"], "--metric acts×1e-300",
           expect="any")
    sw.cli([*base, "--metric", f("acts_singular.npy"), "--ridge", "0.1", "--json"],
           "--metric singular --ridge 0.1", expect="ok")
    for name in ("acts_nan.npy", "acts_complex.npy", "acts_singular.npy", "acts_mismatch.npy",
                 "acts_const.npy"):
        blame = (name, "--metric") if name not in ("acts_const.npy",) else (name,)
        exp = "any" if name == "acts_const.npy" else "error"
        sw.cli([*base, "--metric", f(name)], f"--metric {name}", blame=blame, expect=exp)
    sw.cli([*base, "--metric", f("acts_const.npy"), "--center"], "--metric const --center",
           blame=("acts_const.npy", "--metric"))
    path, marker = sw.malicious("acts.npy", "object_npy")
    sw.cli([*base, "--metric", path], "--metric malicious object .npy", markers=(marker,),
           blame=("acts.npy", "--metric"))
    for option, value in (("--ridge", "nan"), ("--top", "-1"), ("--dead-rtol", "1.5"),
                          ("--device", "nonsense")):
        argv = [*base, "--backend", "torch"] if option == "--device" else base
        sw.opt(argv, option, value)
    sw.cli([*base, "--backend", "torch", "--device", "cuda", "--json"], "--device cuda",
           expect="ok" if sw.cuda else "error", blame=("--device", "cuda", "CUDA"))
    sw.cli([*base, "--backend", "torch", "--json"], "--backend torch (default device)",
           expect="ok")
    sw.cli([*base, "--raw", "--metric", "self"], "--raw with --metric", blame=("--raw",))

    # -------------------------------------------------------------- rip
    base = ["rip", f("good.npy"), "--budget-s", "2"]
    sw.cli([*base, "-k", "2,3", "--json"], "k = 2,3", expect="ok")
    for value in ("0", "41", "1,,2", "2.5"):
        sw.opt(base, "-k", value)
    for value in ("0", "nan"):
        sw.opt([*base[:2], "-k", "2"], "--budget-s", value)
    sw.opt([*base, "-k", "2"], "--seed", "-1")
    for name in ("dup.npy", "par_m3_32.npy"):
        sw.cli(["rip", f(name), "-k", "2", "--budget-s", "2", "--json"],
               f"{name}: δ₂ = 1 (a dependent pair)", expect="ok",
               check=chk_rip(2, 1.0, 0.0, "δ₂ < 1 would certify every pair independent"))
    sw.cli(["rip", "neurons:16", "-k", "3", "--budget-s", "2", "--json"], "orthonormal: δ₃ = 0",
           expect="ok", check=chk_rip(3, 0.0, 1e-12, "orthonormal atoms"))
    sw.cli(["rip", f("dh.npy"), "-k", "2", "--budget-s", "2", "--json"], "[I, H/4]: δ₂ = 1/4",
           expect="ok", check=chk_rip(2, 0.25, 1e-9, "δ₂ = μ"))
    sw.cli(["rip", f("d128.npy"), "-k", "512", "--budget-s", "1", "--json"],
           "128×1024, k = 512, --budget-s 1 (must stop)", expect="ok", timeout=45)
    sw.cli(["rip", f("zero_atom.npy"), "-k", "2", "--budget-s", "2", "--json"],
           "zero atom", expect="any")
    sw.cli(["rip", f("nan.npy"), "-k", "2"], "NaN dictionary")
    sw.cli(["rip", f("one_col.npy"), "-k", "1", "--json"], "16×1, k = 1", expect="any")

    # -------------------------------------------------------------- spark
    base = ["spark", "--budget-s", "3"]
    sw.cli([*base, f("good.npy"), "--json"], "Gaussian 16×40: spark = 17 (generic)",
           expect="ok", check=chk_spark_contains(H + 1))
    for name in ("dup.npy", "par_tiny.npy", "par16.npy"):
        sw.cli([*base, f(name), "--json"], f"{name}: spark = 2", expect="ok",
               check=chk_spark_two)
    sw.cli([*base, f("par_m3_32.npy"), "--json"], "par_m3_32.npy: spark 2 within float32 only",
           expect="ok", check=chk_spark_two_within_precision)
    sw.cli([*base, f("one_row.npy"), "--json"], "1×40: spark = 2", expect="any",
           check=chk_spark_two)
    sw.cli([*base, f("dh.npy"), "--json"], "[I, H/4]: spark ≤ 8 (Dirac comb)", expect="ok",
           check=chk_spark_lower_at_most(8))
    sw.cli([*base, f("zero_atom.npy")], "zero atom without --drop-dead",
           blame=("zero_atom.npy", "--drop-dead", "dead"))
    sw.cli([*base, f("zero_atom.npy"), "--drop-dead", "--json"], "zero atom --drop-dead",
           expect="ok", check=chk_spark_contains(H + 1))
    sw.cli([*base, f("near_par.npy"), "--json"], "near-parallel pair (1e-9)", expect="any")
    for option, value in (("--budget-s", "0"), ("--budget-s", "nan"), ("--seed", "-1")):
        sw.opt(["spark", f("good.npy")], option, value)
    sw.cli([*base, f("inf.npy")], "Inf dictionary")

    # -------------------------------------------------------------- witness
    base = ["witness", f("good.npy")]
    sw.cli([*base, "--support", "1,2,3", "--json"], "support 1,2,3", expect="ok")
    for value in ("1,,2", "-1", "40", "", "1,1"):
        sw.opt(base, "--support", value, expect="any" if value == "1,1" else "error")
    sw.cli(["witness", f("par_m3_32.npy"), "--support", "4,9", "--json"],
           "parallel pair: λ_min = 0", expect="ok", check=chk_witness_singular)
    sw.cli(["witness", "neurons:16", "--support", "0,5,9", "--json"],
           "orthonormal: λ = 1", expect="ok", check=chk_witness_identity)
    sw.cli(["witness", f("nan.npy"), "--support", "1,2"], "NaN dictionary")

    # -------------------------------------------------------------- recover
    for name, code in (("dup.npy", "e4.npy"), ("par_neg.npy", "e9.npy"),
                       ("par_m3_32.npy", "e4.npy"), ("par_tiny.npy", "e4.npy")):
        rounded = name == "par_m3_32.npy"  # independent in float64: never "failed" either
        sw.cli(["recover", f(name), "--codes", f(code), "--json"],
               f"{name}, code {code}: {'undetermined' if rounded else 'not unique'}",
               expect="ok",
               check=both(chk_not_certified, chk_none_failed) if rounded else chk_not_certified)
    sw.cli(["recover", f("one_row.npy"), "--codes", f("e4.npy"), "--json"],
           "1×40, e4: not unique", expect="any", check=chk_not_certified)
    sw.cli(["recover", f("good.npy"), "--codes", f("e4.npy"), "--json"],
           "Gaussian, e4: unique", expect="ok", check=chk_none_failed)
    sw.cli(["recover", "neurons:16", "--codes", f("codes3_16.npy"), "--json"],
           "orthonormal, 3-sparse: unique", expect="ok", check=chk_none_failed)
    sw.cli(["recover", f("good.npy"), "--codes", f("codes.npz"), "--json"], "sparse .npz codes",
           expect="ok")
    sw.cli(["recover", f("good.npy"), "--codes", f("codes_2sparse.npy"), "--nonneg", "--json"],
           "--nonneg on signed codes", expect="any")
    base = ["recover", f("good.npy"), "--codes"]
    for name in ("codes_wrong.npy", "codes_nan.npy", "codes_complex.npy"):
        sw.cli([*base, f(name)], f"--codes {name}", blame=(name, "--codes"))
    for name in ("codes_empty.npy", "codes_zero.npy", "codes_vec.npy"):  # a 1-D row: one code
        sw.cli([*base, f(name), "--json"], f"--codes {name}", expect="any",
               blame=(name, "--codes"))
    sw.cli([*base, f("codes_neg.npy"), "--nonneg", "--json"], "negative codes with --nonneg",
           expect="any", blame=("codes_neg.npy", "--nonneg"))
    path, marker = sw.malicious("codes.npz", "object_npz")
    sw.cli([*base, path], "--codes malicious .npz", markers=(marker,),
           blame=("codes.npz", "--codes"))
    base = [*base, f("e4.npy")]
    for option, value in (("--threads", "-1"), ("--lp-time-limit", "0"), ("--margin", "nan"),
                          ("--chunk-size", "0"), ("--witness-iters", "-1"),
                          ("--checkpoint-codes", "3")):
        argv = [*base, "--checkpoint-dir", "{out}"] if option == "--checkpoint-codes" else base
        sw.opt(argv, option, value)
    sw.cli([*base, "--lp-time-limit", "inf", "--json"], "--lp-time-limit inf", expect="ok")
    sw.cli([*base, "--resume"], "--resume without --checkpoint-dir",
           blame=("--resume", "--checkpoint-dir"))
    sw.cli([*base, "--checkpoint-dir", f("good.npy")], "--checkpoint-dir is a file",
           blame=("good.npy", "--checkpoint-dir"))
    sw.cli([*base, "--checkpoint-dir", f("harv_foreign"), "--resume"],
           "--checkpoint-dir foreign manifest", blame=("harv_foreign", "manifest"))
    sw.cli([*base, "--out", f("good.npy") + "/r.npz"], "--out under a file",
           blame=("good.npy", "--out"))
    sw.cli([*base, "--out", f("emptydir")], "--out is a folder", blame=("emptydir", "--out"))

    # -------------------------------------------------------------- phase-transition
    base = ["phase-transition", "--dim", "16", "--atoms", "40", "--trials", "4"]
    sw.cli([*base, "--k", "1:3:1", "--json"], "k = 1..3: k = 1 always recovers", expect="ok",
           check=chk_pt_k1)
    sw.cli([*base, "--k", "1,2", "--nonneg", "--json"], "--nonneg", expect="ok",
           check=chk_pt_k1)
    for option, value in (("--k", "0:3:1"), ("--k", "1,,2"), ("--k", "41")):
        sw.opt(base, option, value)
    kk = ["--k", "1:2:1"]
    for option, value in (("--trials", "0"), ("--witness-iters", "-1"), ("--seed", "-1")):
        sw.opt(["phase-transition", "--dim", "16", "--atoms", "40", *kk], option, value)
    for option, value in (("--dim", "0"), ("--atoms", "0")):
        argv = ["phase-transition", "--trials", "2", *kk]
        argv += [] if option == "--dim" else ["--dim", "16"]
        argv += [] if option == "--atoms" else ["--atoms", "40"]
        sw.opt(argv, option, value)
    sw.cli(["phase-transition", "--dim", "100000", "--atoms", "200000", *kk, "--trials", "2"],
           "100000×200000 (memory)", blame=("--dim", "--atoms", "memory", "GiB"))
    sw.cli(["phase-transition", "--dim", "50", "--atoms", "40", *kk, "--json"],
           "H > N", expect="any", blame=("--dim", "--atoms"))

    # -------------------------------------------------------------- criteria
    base = ["criteria", "--acts", f("acts.npy"), "--no-l1"]
    sw.cli([*base, "--json", "--brief"], "neurons: R² = 1", expect="ok",
           check=chk_criteria_neurons)
    sw.cli(["criteria", "--acts", f("acts.npy"), "--units", f"d={f('good.npy')}",
            "--l1-tokens", "16", "--json", "--brief"], "NNLS unit set + ℓ1", expect="ok",
           timeout=90)
    sw.cli([*base, "--units", f"d={f('tall.npy')}:rows", "--json", "--brief"],
           ":rows unit set", expect="ok")
    for name in ("acts_nan.npy", "acts_complex.npy", "acts_vec.npy", "acts_few.npy"):
        sw.cli(["criteria", "--acts", f(name), "--no-l1"], f"--acts {name}",
               blame=(name, "--acts"))
    sw.cli(["criteria", "--acts", f("acts_mismatch.npy"), "--no-l1", "--units",
            f"d={f('good.npy')}"], "H 12 vs 16", blame=("acts_mismatch.npy", "good.npy"))
    sw.cli(["criteria", "--acts", f("acts_singular.npy"), "--no-l1", "--json", "--brief"],
           "singular activations", expect="any", blame=("acts_singular.npy", "--ridge"))
    sw.cli(["criteria", "--acts", f("harv_incomplete"), "--no-l1"], "incomplete harvest",
           expect="any", blame=("harv_incomplete", "--acts"))
    for option, value in (("--held-out", "1.5"), ("--l1-tokens", "-1"), ("--ridge", "nan")):
        sw.opt(base, option, value)
    for spec, blame in (("bogus", "bogus"), (f"x={f('missing.npy')}", "missing.npy"),
                        (f"x={f('good.npy')},codes={f('codes_wrong.npy')}", "codes_wrong.npy"),
                        (f"x={f('good.npy')},color=red", "color")):
        sw.cli([*base, "--units", spec], f"--units {spec}", blame=(blame, "--units"))
    sw.cli([*base, "--no-neurons"], "--no-neurons and no units",
           blame=("--no-neurons", "--units"))

    # -------------------------------------------------------------- theory
    sw.cli(["theory", "welch", "--dim", "16", "--atoms", "40", "--json"], "welch 16×40",
           expect="ok", check=chk_welch(ref["welch"]))
    sw.cli(["theory", "welch", "--dim", "40", "--atoms", "16", "--json"], "welch N < H",
           expect="any", blame=("--dim", "--atoms"))
    sw.cli(["theory", "rho-weak", "--delta", "0.5", "--json"], "rho-weak 0.5", expect="ok")
    sw.cli(["theory", "rho-weak", "--delta", "0.5", "--nonneg", "--json"], "rho-weak+ 0.5",
           expect="ok")
    sw.cli(["theory", "k-weak", "--dim", "16", "--atoms", "40", "--json"], "k-weak",
           expect="ok")
    sw.cli(["theory", "gaussian-coherence", "--dim", "16", "--atoms", "40", "--json"],
           "gaussian-coherence", expect="ok")
    for value in ("0", "1.5", "nan"):
        sw.opt(["theory", "rho-weak"], "--delta", value)
    sw.cli(["theory", "rho-weak", "--delta", "1", "--json"], "rho-weak δ = 1", expect="any",
           blame="--delta")
    sw.cli(["theory", "rho-weak"], "rho-weak without --delta", blame="--delta")
    for sub in ("welch", "gaussian-coherence"):
        sw.opt(["theory", sub, "--atoms", "40"], "--dim", "0")
    sw.opt(["theory", "welch", "--dim", "16"], "--atoms", "-1")
    sw.opt(["theory", "gaussian-coherence", "--dim", "16"], "--atoms", "1")
    sw.cli(["theory", "bogus"], "unknown subcommand", blame=("bogus",))

    # -------------------------------------------------------------- train
    tb = ["--out", "{out}", "--steps", "20", "--width", "32", "--batch", "64"]
    sw.cli(["train", f("acts.npy"), *tb, "--json"], "small .npy, 20 steps", expect="ok",
           timeout=120)
    sw.cli(["train", f("harv_incomplete"), *tb], "incomplete harvest (refuse)",
           blame=("harv_incomplete", "--allow-incomplete", "complete"), timeout=90)
    sw.cli(["train", f("harv_incomplete"), *tb, "--allow-incomplete", "--json"],
           "incomplete harvest --allow-incomplete", expect="ok", timeout=120)
    for name in ("acts_zero.npy", "acts_nan.npy", "acts_complex.npy", "acts_vec.npy"):
        sw.cli(["train", f(name), *tb], f"train on {name}", blame=(name,), timeout=90)
    for name in ("harv_sha", "harv_escape", "harv_foreign"):
        sw.cli(["train", f(name), *tb], f"train on {name}", blame=(name,), timeout=90)
    sw.cli(["train", f("harv_ok"), *tb, "--layer", "5"], "missing --layer 5",
           blame=("--layer", "5", "harv_ok"), timeout=90)
    base = ["train", f("acts.npy"), "--out", "{out}", "--steps", "20", "--batch", "64"]
    for option, value in (("--width", "0"), ("--steps", "0"), ("--batch", "0"),
                          ("--lr", "nan"), ("--held-out", "1.5"), ("--seed", "-1"),
                          ("--threads", "-1"), ("--l1", "-1")):
        sw.opt(base, option, value, timeout=90)
    sw.cli(["train", f("acts.npy"), "--out", "out/existing_sae", "--steps", "20"],
           "existing SAE without --resume/--overwrite", blame=("existing_sae", "--overwrite"),
           timeout=90)
    sw.cli(["train", f("acts.npy"), *tb, "--resume", "--overwrite"], "--resume and --overwrite",
           blame=("--resume", "--overwrite"), timeout=90)
    sw.cli(["train", f("acts.npy"), "--out", f("good.npy"), "--steps", "20"],
           "--out is a file", blame=("good.npy", "--out"), timeout=90)
    sw.cli(["train", f("acts.npy"), *tb, "--resume"], "--resume with no checkpoint",
           expect="any", blame=("--resume", "checkpoint"), timeout=90)

    # -------------------------------------------------------------- harvest (no model load)
    hb = ["harvest", "--layers", "3", "--tokens", "100", "--out", "{out}"]
    for option, value in (("--tokens", "0"), ("--context", "1"), ("--shard-tokens", "0"),
                          ("--threads", "-1"), ("--device", "nonsense")):
        sw.opt(hb, option, value)
    sw.opt(["harvest", "--tokens", "100", "--out", "{out}"], "--layers", "abc")
    sw.opt(["harvest", "--tokens", "100", "--out", "{out}"], "--layers", "1,,2")
    sw.cli([*hb, "--skip-first", "300"], "--skip-first ≥ --context",
           blame=("--skip-first", "--context"))
    sw.cli([*hb, "--device", "cuda"], "--device cuda", expect="any" if sw.cuda else "error",
           blame=("--device", "cuda", "CUDA"))
    sw.cli([*hb, "--model", f("missing.gguf")], "--model missing .gguf", blame="missing.gguf")
    sw.cli([*hb, "--model", f("emptydir")], "--model folder without config.json",
           blame="emptydir")
    sw.cli([*hb, "--model", f("good.npy")], "--model is a .npy file", blame="good.npy")
    sw.cli(["harvest", "--layers", "3", "--tokens", "100"], "missing --out", blame="--out")

    # -------------------------------------------------------------- verify
    vb = ["--budget-s", "3", "--no-html", "--out", "{out}"]
    sw.cli(["verify", f("good.npy"), *vb, "--json"], "Gaussian 16×40", expect="ok", timeout=90)
    for name in ("dup.npy", "par_m3_32.npy"):
        sw.cli(["verify", f(name), *vb, "--json"], f"{name}: certified K 0, spark 2",
               expect="ok", check=chk_verify_parallel, timeout=90)
    sw.cli(["verify", "neurons:16", *vb, "--json"], "neurons:16", expect="ok", timeout=90)
    sw.cli(["verify", f("good.npy"), "--budget-s", "3", "--out", "{out}", "--json"],
           "with HTML", expect="ok", timeout=120)
    sw.cli(["verify", f("sae_ok"), *vb, "--acts", f("acts.npy"), "--json"], "SAELens + --acts",
           expect="ok", timeout=120)
    sw.cli(["verify", f("good.npy"), *vb, "--acts", f("harv_ok"), "--json"],
           "--acts complete harvest", expect="ok", timeout=90)
    sw.cli(["verify", f("good.npy"), *vb, "--acts", f("harv_incomplete")],
           "--acts incomplete harvest", blame=("harv_incomplete", "complete"))
    sw.cli(["verify", f("good.npy"), *vb, "--acts", f("acts_mismatch.npy")], "--acts H 12",
           blame=("acts_mismatch.npy", "--acts"))
    sw.cli(["verify", f("good.npy"), *vb, "--acts", f("acts_complex.npy")], "--acts complex",
           blame=("acts_complex.npy", "--acts"))
    for name in ("nan.npy", "huge_header.npy"):
        sw.cli(["verify", f(name), *vb], f"verify {name}")
    path, marker = sw.malicious("ae.pt", "torch_pt")
    sw.cli(["verify", path, *vb], "malicious ae.pt", markers=(marker,), blame=("ae.pt",))
    for option, value in (("--budget-s", "0"), ("--budget-s", "nan"), ("--seed", "-1"),
                          ("--threads", "-1")):
        sw.opt(["verify", f("good.npy"), "--no-html", "--out", "{out}"], option, value)
    sw.cli(["verify", f("good.npy"), "--budget-s", "3", "--out", "/proc/rip_atoms_sweep"],
           "--out under /proc (must fail fast)", blame=("/proc", "--out"), timeout=30)
    sw.cli(["verify", f("good.npy"), "--budget-s", "3", "--out", f("good.npy")],
           "--out is a file", blame=("good.npy", "--out"), timeout=30)
    sw.opt(["verify", "--quick", "--out", "{out}", "--no-html"], "--budget-s", "0")
    sw.cli(["verify", "--quick", "--budget-s", "4", "--no-html", "--out", "{out}", "--json"],
           "--quick", expect="ok", timeout=180)

    # -------------------------------------------------------------- API
    api_cases(sw)

    # -------------------------------------------------------------- SIGINT
    def exists(rel: str) -> Callable[[], bool]:
        return lambda: (sw.work / rel).exists()

    def gone(rel: str) -> Callable[[], bool]:
        return lambda: not (sw.work / rel).exists()

    def stale(case_out: str) -> str:
        folder = sw.work / case_out
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".report.json.k1ll3d.tmp").write_text("")
        return f"{case_out}/.report.json.k1ll3d.tmp"

    for quiet in (True, False):
        c = sw.sigint(["verify", "--quick", "--out", "{out}"] + (["--quiet"] if quiet else []),
                      f"SIGINT in verify --quick{' --quiet' if quiet else ''}",
                      wait_for=None, delay=1.0, tmp_dirs=("{out}",))
        c.wait_for = gone(stale(f"out/{c.id}"))
    c = sw.sigint(["verify", f("d128.npy"), "--budget-s", "60", "--no-html", "--out", "{out}",
                   "--quiet"], "SIGINT in verify DICT (searches)", wait_for=None, delay=4.0,
                  tmp_dirs=("{out}",))
    c.wait_for = gone(stale(f"out/{c.id}"))
    for extra, label, n_sig in (([], "", 1), (["--arch", "standard", "--whiten"],
                                              " standard --whiten", 1), ([], " (twice)", 2)):
        c = sw.sigint(["train", f("acts_big.npy"), "--out", "{out}", "--steps", "100000",
                       "--width", "32", "--batch", "64", "--checkpoint-every", "5", *extra,
                       "--quiet"], f"SIGINT in train{label}", wait_for=None, delay=0.7,
                      tmp_dirs=("{out}",), signals=n_sig)
        c.wait_for = exists(f"out/{c.id}/checkpoint.pt")
    c = sw.sigint(["train", f("acts_big.npy"), "--out", "{out}", "--steps", "100000", "--width",
                   "32", "--batch", "64", "--checkpoint-every", "5"],
                  "SIGINT in train (logs on)", wait_for=None, delay=0.7, tmp_dirs=("{out}",))
    c.wait_for = exists(f"out/{c.id}/checkpoint.pt")
    c = sw.sigint(["recover", f("good.npy"), "--codes", f("codes_many.npy"), "--chunk-size", "4",
                   "--checkpoint-dir", "{out}", "--checkpoint-codes", "4", "--quiet"],
                  "SIGINT in recover --checkpoint-dir", wait_for=None, delay=0.2,
                  tmp_dirs=("{out}",))
    c.wait_for = exists(f"out/{c.id}/chunk-00000.npz")
    sw.sigint(["coherence", f("good.npy"), "--quiet"], "SIGINT at start-up (imports, 0.4 s)",
              wait_for=None, delay=0.4, tmp_dirs=())


def api_cases(sw: Sweep) -> None:
    ref = sw.ref
    A = sw.api
    # coherence
    A("coherence", "ra.coherence(fx('good.npy'))", "Gaussian", expect="ok")
    A("coherence", "ra.coherence(fx('good.npy'), 'bogus')", "metric 'bogus'")
    for name in ("dup.npy", "par_m3_32.npy", "par16.npy"):
        A("coherence", f"""
          for m in ("self", "raw"):
              r = ra.coherence(fx('{name}'), m)
              msg = f"{{m}}: certified_k = {{r.certified_k}} (mu_upper = {{r.mu_upper}})"
              expect(r.certified_k == 0, "parallel atoms, closed form 0; " + msg)
          """, f"{name}: certified_k 0", expect="ok")
    for name in ("tiny300.npy", "huge300.npy"):
        A("coherence", f"""
          r = ra.coherence(fx('{name}'), 'raw')
          expect(r.n_live == 40, f'n_live = {{r.n_live}}, expected 40')
          expect(abs(r.mu - {ref['mu_raw_good']!r}) < 1e-9, f'mu = {{r.mu}}')
          """, f"{name}: scale-invariant", expect="ok")
    for name in ("nan.npy", "complex.npy", "one_col.npy", "empty_cols.npy", "all_zero.npy"):
        A("coherence", f"ra.coherence(fx('{name}'))", name)
    A("coherence", "ra.coherence(fx('tiny160.npy'))", "tiny160 self metric", expect="any")
    A("coherence", "ra.coherence(fx('int.npy')); ra.coherence(fx('good16.npy'))",
      "int and float16", expect="ok")
    A("coherence", "ra.coherence(fx('good.npy').tolist())", "nested list", expect="any")
    A("coherence", "ra.coherence(None)", "None")
    for kw in ("block_size=0", "backend='bogus'", "duplicate_tol=float('nan')", "babel_p=2.5"):
        A("coherence", f"ra.coherence(fx('good.npy'), {kw})", kw)
    A("coherence", "ra.coherence(fx('good.npy'), backend='torch', device='nonsense')",
      "torch device 'nonsense'")
    # rip_bounds
    for k in ("2.5", "float('nan')", "[]", "'2'"):
        A("rip_bounds", f"ra.rip_bounds(fx('good.npy'), {k}, budget_s=1)", f"k={k}")
    for kw in ("budget_s=0", "budget_s=float('nan')", "seed=-1"):
        A("rip_bounds", f"ra.rip_bounds(fx('good.npy'), 2, {kw})", kw)
    A("rip_bounds", """
      b = ra.rip_bounds(fx('dup.npy'), 2, budget_s=1).brackets[0]
      msg = f"got [{b.delta_lower!r}, {b.delta_upper!r}]; δ₂ < 1 certifies every pair independent"
      expect(b.delta_upper >= 1.0, "dependent pair: δ₂ = 1 exactly; " + msg)
      """, "dup: δ₂ = 1", expect="ok")
    # spark_bounds
    A("spark_bounds", """
      r = ra.spark_bounds(fx('dup.npy'), budget_s=2)
      expect(r.upper == 2, f'spark = 2, got [{r.lower}, {r.upper}]')
      """, "dup.npy: spark 2", expect="ok")
    A("spark_bounds", """
      r = ra.spark_bounds(fx('par_m3_32.npy'), budget_s=2)
      expect(r.upper_within_precision == 2 and r.upper > 2,
             f'spark 2 within float32 only, got [{r.lower}, {r.upper}], '
             f'within {r.upper_within_precision}')
      """, "par_m3_32.npy: spark 2 within precision", expect="ok")
    A("spark_bounds", """
      r = ra.spark_bounds(fx('good.npy'), budget_s=2)
      expect(r.lower <= 17 <= r.upper, f'generic 16×40: spark 17, got [{r.lower}, {r.upper}]')
      """, "Gaussian: spark 17", expect="ok")
    for kw in ("budget_s=-1", "rank_rtol=float('nan')", "seed=-1"):
        A("spark_bounds", f"ra.spark_bounds(fx('good.npy'), {kw})", kw)
    A("spark_bounds", "ra.spark_bounds(fx('zero_atom.npy'), budget_s=1)", "zero atom")
    # classify_recovery
    for name in ("dup.npy", "par_m3_32.npy"):
        A("classify_recovery", f"""
          r = ra.classify_recovery(fx('{name}'), fx('e4.npy'))
          expect(r.certified == 0, f'e4 on a parallel pair certified ({{r.certified}})')
          """, f"{name}, e4: not certified", expect="ok")
    A("classify_recovery", """
      r = ra.classify_recovery(fx('good.npy'), fx('e4.npy'))
      expect(r.failed == 0, f'1-sparse code on distinct atoms: unique, got failed={r.failed}')
      """, "Gaussian, e4: unique", expect="ok")
    for codes, label in (("fx('codes_wrong.npy')", "codes of width 30"),
                         ("fx('codes_nan.npy')", "NaN codes"),
                         ("fx('codes_complex.npy')", "complex codes"),
                         ("'fx/e4.npy'", "codes as a string"),
                         ("fx('e4.npy')[:, :30]", "codes of width 30 (slice)")):
        A("classify_recovery", f"ra.classify_recovery(fx('good.npy'), {codes})", label)
    for kw in ("margin=float('nan')", "chunk_size=0", "lp_time_limit=0", "witness_iters=-1"):
        A("classify_recovery", f"ra.classify_recovery(fx('good.npy'), fx('e4.npy'), {kw})", kw)
    # fit_metric
    A("fit_metric", "ra.fit_metric(fx('acts.npy'))", "Gaussian activations", expect="ok")
    A("fit_metric", "ra.fit_metric(fx('acts_int.npy'))", "int activations", expect="ok")
    for name in ("acts_complex.npy", "acts_singular.npy", "acts_nan.npy", "acts_empty.npy"):
        A("fit_metric", f"ra.fit_metric(fx('{name}'))", name)
    for kw in ("ridge=float('nan')", "ridge=float('inf')", "chunk_size=0"):
        A("fit_metric", f"ra.fit_metric(fx('acts.npy'), {kw})", kw)
    A("fit_metric", "ra.fit_metric([fx('acts.npy'), fx('acts_mismatch.npy')])",
      "chunks of widths 16 and 12")
    A("fit_metric", "ra.fit_metric(iter([]))", "no chunks")
    A("fit_metric", "ra.fit_metric(fx('acts_tiny.npy'))", "activations × 1e-300", expect="any")
    # Dictionary
    A("Dictionary", "ra.Dictionary(fx('good.npy'), nonfinite='bogus')",
      "nonfinite='bogus' (finite D)")
    for kw in ("dead_rtol=1", "dead_rtol=float('nan')", "dead_rtol='x'"):
        A("Dictionary", f"ra.Dictionary(fx('good.npy'), {kw})", kw)
    for name in ("str.npy",):
        A("Dictionary", f"ra.Dictionary(fx('{name}'))", name)
    A("Dictionary", "ra.Dictionary(np.array([object(), 1.0], dtype=object).reshape(1, 2))",
      "object array")
    A("Dictionary", """
      d = ra.Dictionary(fx('nan.npy'), nonfinite='dead')
      expect(7 in set(np.asarray(d.dead_atoms).tolist()), f'atom 7 dead, got {d.dead_atoms}')
      """, "nonfinite='dead'", expect="ok")
    # load_matrix
    for name in ("trunc.npy", "huge_header_exact.npy", "zip.npy", "emptydir", "devzero.npy",
                 "shape_lie.safetensors"):
        A("load_matrix", f"from rip_atoms.matrix_files import load_matrix\n"
                         f"load_matrix('fx/{name}')", name)
    A("load_matrix", "from rip_atoms.matrix_files import load_matrix\n"
                     "load_matrix('fx/good.safetensors', tensor='nope')", "wrong tensor name")
    A("load_matrix", "from rip_atoms.matrix_files import load_matrix\n"
                     "load_matrix('fx/good.npy', tensor='W')", "--tensor on a .npy")
    for name, how in (("evil.npy", "object_npy"), ("evil.npy", "raw_pickle")):
        path, marker = sw.malicious(name, how)
        A("load_matrix", f"from rip_atoms.matrix_files import load_matrix\n"
                         f"load_matrix({path!r})", f"malicious {how}", markers=(marker,))
    path, marker = sw.malicious("ae.pt", "torch_pt")
    A("load_sae", f"from rip_atoms.sae import load_sae\nload_sae({path!r})", "malicious ae.pt",
      markers=(marker,))
    # theory
    T = "from rip_atoms import theory as t\n"
    A("theory", T + textwrap.dedent(f"""
      w = t.welch_bound(16, 40)
      expect(abs(w - {ref['welch']!r}) < 1e-15, f'welch = {{w}}')
      expect(t.coherence_certified_k(1.0) == 0, 'K(μ=1) = 0')
      expect(t.coherence_certified_k(0.25) == 2, 'K(μ=1/4) = 2')
      expect(t.spark_lower_from_coherence(1.0) == 2, 'spark ≥ 2 at μ = 1')
      expect(t.spark_lower_from_coherence(1 / 3) == 4, 'spark ≥ 4 at μ = 1/3')
      """), "closed forms", expect="ok")
    for call in ("t.rho_weak(float('nan'))", "t.rho_weak('a')", "t.k_weak(16, 8.5)",
                 "t.welch_bound(0, 1)", "t.gaussian_coherence(0, 10)",
                 "t.coherence_certified_k(1.5)", "t.psi(-0.5)",
                 "t.generalized_welch_delta(16, 40, 0)"):
        A("theory", T + call, call)


# ---------------------------------------------------------------------------------------------
# running and classifying
# ---------------------------------------------------------------------------------------------
def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = "1"
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(argv: list[str], cwd: Path, timeout: float, *, sigint: Case | None = None
              ) -> tuple[int | None, str, str, float, bool, str]:
    """Run one child in its own process group. Returns (rc, stdout, stderr, seconds,
    timed_out, note)."""
    t0 = time.monotonic()
    note = ""
    p = subprocess.Popen(argv, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="replace", start_new_session=True)
    if sigint is not None:
        buf: dict[str, list[str]] = {"out": [], "err": []}

        def pump(stream, key):
            for chunk in iter(lambda: stream.read(4096), ""):
                buf[key].append(chunk)

        pumps = [threading.Thread(target=pump, args=(p.stdout, "out"), daemon=True),
                 threading.Thread(target=pump, args=(p.stderr, "err"), daemon=True)]
        for th in pumps:
            th.start()
        deadline = t0 + 120
        if sigint.wait_for is not None:
            while not sigint.wait_for() and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if p.poll() is None and not sigint.wait_for():
                note = "start signal not seen in 120 s; SIGINT sent anyway"
        end = time.monotonic() + sigint.delay
        while time.monotonic() < end and p.poll() is None:
            time.sleep(0.02)
        if p.poll() is not None:
            note = f"exited (rc {p.returncode}) before SIGINT was sent"
        else:
            for i in range(sigint.signals):
                if i:
                    time.sleep(0.05)
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(p)
            p.wait()
            timed_out = True
        for th in pumps:
            th.join(timeout=5)
        out, err = "".join(buf["out"]), "".join(buf["err"])
    else:
        try:
            out, err = p.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(p)
            out, err = p.communicate()
            timed_out = True
    _kill_group(p)  # leftovers of the group, if any
    return p.returncode, out or "", err or "", time.monotonic() - t0, timed_out, note


def _strict_json(text: str):
    def bad_constant(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=bad_constant)


def _strip_usage(lines: list[str]) -> list[str]:
    """argparse's usage block (``usage: …`` and its indented continuation lines)."""
    out, in_usage = [], False
    for ln in lines:
        if ln.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and (ln.startswith(" ") or not ln.strip()):
            continue
        in_usage = False
        out.append(ln)
    return out


def _tmp_left(work: Path, dirs: tuple[str, ...]) -> list[str]:
    left = []
    for d in dirs:
        folder = work / d
        if folder.is_dir():
            left += [str(p.relative_to(work)) for p in folder.rglob("*.tmp")]
    return left


def _blames(case: Case, line: str) -> bool:
    if not case.blame:
        return True
    low = line.lower()
    for b in case.blame:
        if any(v.lower() in low for v in _variants(b)):
            return True
        bare = b.lstrip("-")
        if b.startswith("-") and len(bare) < 3 and re.search(rf"\b{re.escape(bare)}\b", low):
            return True  # "-k 0" → "k must be ≥ 1"
    return False


def classify(case: Case, work: Path) -> Outcome:
    if case.kind == "api":
        argv = [PY, *case.argv]
    else:
        argv = [PY, "-m", "rip_atoms", *case.argv]
    rc, out, err, secs, timed_out, note = run_child(
        argv, work, case.timeout, sigint=case if case.kind == "sigint" else None)
    o = Outcome("", rc=rc, seconds=round(secs, 2), stdout=out, stderr=err)
    ran = [str(m.relative_to(work)) for m in case.markers if m.exists()]
    if timed_out:
        o.cls, o.reason = "hang", f"no exit within {case.timeout:g} s (killed)"
        if case.kind == "sigint":
            o.cls = "interrupted_bad"
            o.reason = f"did not exit within {case.timeout:g} s of SIGINT (killed)"
        return o
    if ran:
        o.cls, o.reason = "wrong", f"pickle payload executed: {', '.join(ran)} created"
        return o
    if case.kind == "sigint":
        return _classify_sigint(case, o, work, note)
    if case.kind == "api":
        return _classify_api(case, o)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if "Traceback" in err:
        o.cls, o.reason = "traceback", f"exit {rc}, traceback on stderr"
    elif rc is not None and rc < 0:
        o.cls, o.reason = "traceback", f"killed by signal {-rc}"
    elif rc == 1:
        o.cls, o.reason = "traceback", "exit 1"
    elif rc == 0:
        o.cls, o.reason = _judge_ok(case, out)
    elif rc == 2:
        body = _strip_usage(lines)
        if out.strip():
            o.cls, o.reason = "messy_error", "exit 2 with text on stdout"
        elif len(body) != 1:
            o.cls, o.reason = "messy_error", f"exit 2 with {len(body)} stderr lines"
        elif not _blames(case, body[0]):
            o.cls = "messy_error"
            o.reason = f"exit 2, message names none of {list(case.blame)}"
        elif case.expect == "ok":
            o.cls, o.reason = "refused_valid", "a valid input was refused (exit 2)"
        else:
            o.cls = "clean_error"
    else:
        o.cls, o.reason = "messy_error", f"exit status {rc}"
    return o


def _judge_ok(case: Case, out: str) -> tuple[str, str]:
    if case.expect == "error":
        return "accepted_bad", "bad input accepted (exit 0)"
    if "--json" in case.argv:
        try:
            obj = _strict_json(out)
        except ValueError as exc:
            return "wrong", f"--json stdout is not one strict JSON object ({exc})"
        if not isinstance(obj, dict):
            return "wrong", "--json stdout is not a JSON object"
        if case.check is not None:
            msg = case.check(obj)
            if msg:
                return "wrong", msg
    return "ok", ""


def _classify_api(case: Case, o: Outcome) -> Outcome:
    last = next((ln for ln in reversed(o.stdout.splitlines()) if ln.startswith("{")), None)
    try:
        res = json.loads(last) if last else None
    except ValueError:
        res = None
    if res is None:
        o.cls = "traceback"
        o.reason = (f"killed by signal {-o.rc}" if o.rc is not None and o.rc < 0
                    else f"no result (exit {o.rc})")
        return o
    st = res.get("status")
    if st == "wrong":
        o.cls, o.reason = "wrong", res.get("msg", "")
    elif st == "exc" and res.get("rip"):
        if case.expect == "ok":
            o.cls, o.reason = "refused_valid", f"{res.get('type')}: {res.get('msg')}"
        else:
            o.cls, o.reason = "clean_error", f"{res.get('type')}: {res.get('msg')}"
    elif st == "exc":
        o.cls, o.reason = "traceback", f"{res.get('type')} (not a RipAtomsError): " \
                                       f"{res.get('msg')}"
    elif case.expect == "error":
        o.cls, o.reason = "accepted_bad", "bad input accepted (no exception)"
    else:
        o.cls = "ok"
    return o


def _classify_sigint(case: Case, o: Outcome, work: Path, note: str) -> Outcome:
    lines = [ln for ln in o.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    hits = [ln for ln in lines if INTERRUPTED in ln]
    left = _tmp_left(work, case.tmp_dirs)
    problems = []
    if note.startswith("exited"):
        problems.append(note + " (the case is too short for this machine)")
    if o.rc != 130:
        problems.append(f"exit {o.rc}")
    if "Traceback" in o.stderr:
        problems.append("traceback on stderr")
    if len(hits) != 1:
        problems.append(f"{len(hits)} '{INTERRUPTED}' lines")
    elif lines[-1] != hits[0]:
        problems.append("the interrupted line is not the last")
    if o.stdout.strip():
        problems.append("text on stdout")
    if left:
        problems.append(f"temporary files left: {left}")
    if "--quiet" in case.argv and len(lines) > 1:
        problems.append(f"--quiet but {len(lines)} stderr lines")
    o.cls = "interrupted_bad" if problems else "interrupted_ok"
    o.reason = "; ".join(problems) or (hits[0].strip() if hits else "")
    if note and not note.startswith("exited"):
        o.reason += f" [{note}]"
    return o


def library_broken(o: Outcome) -> bool:
    """The library itself did not import (another engineer mid-edit: a syntax error or a merge
    conflict in rip_atoms), which says nothing about the input: such cases are rerun."""
    text = o.stderr + o.stdout
    return ("SyntaxError" in text or "IndentationError" in text) and "rip_atoms/" in text


def preflight(work: Path, wait_s: float = 0.0) -> str | None:
    """None when ``import rip_atoms, rip_atoms.cli`` works in a child, else its last line;
    retried every 10 s for up to ``wait_s`` seconds."""
    t_end = time.monotonic() + wait_s
    while True:
        rc, out, err, _, _, _ = run_child([PY, "-c", "import rip_atoms, rip_atoms.cli"], work, 60)
        if rc == 0:
            return None
        if time.monotonic() >= t_end:
            return last_line(err) or f"exit {rc}"
        time.sleep(10)


def run_pool(cases: list[Case], work: Path, workers: int, results: dict[str, Outcome],
             start: int = 0, total: int | None = None) -> None:
    total = total or len(cases)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futs = {pool.submit(classify, c, work): c for c in cases}
        for i, fut in enumerate(as_completed(futs), start + 1):
            c = futs[fut]
            try:
                o = fut.result()
            except Exception as exc:  # the sweep's own bug: keep going
                o = Outcome("traceback", reason=f"sweep error: {exc!r}")
            results[c.id] = o
            print(f"[{i:3d}/{total}] {o.cls:15s} {o.seconds:6.1f}s {c.id:24s} {c.label}",
                  file=sys.stderr, flush=True)


def cmdline(case: Case) -> str:
    if case.kind == "api":
        return f"python {case.argv[0]}"
    return "python -m rip_atoms " + " ".join(shlex.quote(a) for a in case.argv)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/reliability_sweep.json", help="JSON summary path")
    ap.add_argument("--workers", type=int, default=2, help="children at a time (default 2)")
    ap.add_argument("--work", default=None, help="work folder (default: a new one in /tmp)")
    ap.add_argument("--only", default=None, help="run only cases whose id/command contains this")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--clean", action="store_true", help="delete the work folder at the end")
    args = ap.parse_args(argv)
    # children inherit a SIGINT disposition of "default", never "ignore" (a background shell
    # job starts with SIGINT ignored, which would make every SIGINT case meaningless)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rip_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    sw = Sweep(work)
    build_fixtures(sw)
    build_cases(sw)
    cases = sw.cases
    if args.only:
        cases = [c for c in cases if args.only in c.id or args.only in c.command]
    if args.list:
        for c in cases:
            print(f"{c.id:24s} {c.expect:6s} {c.label:45s} {cmdline(c)}")
        print(f"{len(cases)} cases")
        return 0
    broken = preflight(work)
    if broken:
        print(f"reliability sweep: rip_atoms does not import ({broken}); fix that first",
              file=sys.stderr)
        return 2
    print(f"reliability sweep: {len(cases)} cases, {args.workers} at a time, work folder {work}",
          file=sys.stderr)
    # the slowest first, so the pool ends together
    def cost(c: Case) -> float:
        return (c.timeout if c.kind == "sigint" else 0) + (
            40 if c.command in ("verify", "train") else 0)

    order = sorted(cases, key=cost, reverse=True)
    results: dict[str, Outcome] = {}
    run_pool(order, work, args.workers, results)
    again = [c for c in order if library_broken(results[c.id])]
    if again:  # the library failed to import mid-run: wait until it does, rerun those cases
        print(f"{len(again)} cases met a rip_atoms that did not import; waiting to rerun them",
              file=sys.stderr)
        if preflight(work, wait_s=300) is None:
            for c in again:
                if c.kind == "sigint" or c.tmp_dirs:
                    shutil.rmtree(work / "out" / c.id, ignore_errors=True)
            run_pool(again, work, args.workers, results)
            for c in again:
                results[c.id].extra["rerun"] = True
    elapsed = time.monotonic() - t0
    report(cases, results, work, elapsed, Path(args.out))
    if args.clean:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(results[c.id].cls in CLEAN for c in cases) else 1


def report(cases: list[Case], results: dict[str, Outcome], work: Path, elapsed: float,
           out: Path) -> None:
    counts = Counter(results[c.id].cls for c in cases)
    by_cmd: dict[str, Counter] = defaultdict(Counter)
    for c in cases:
        by_cmd[c.command][results[c.id].cls] += 1
    cols = [k for k in CLASSES if any(by_cmd[c][k] for c in by_cmd)]
    short = {"clean_error": "clean", "interrupted_ok": "int_ok", "interrupted_bad": "int_bad",
             "messy_error": "messy", "traceback": "trace", "accepted_bad": "accept",
             "refused_valid": "refuse"}
    print()
    print(f"{'command':26s}" + "".join(f"{short.get(k, k):>8s}" for k in cols) + f"{'total':>8s}")
    for cmd in sorted(by_cmd):
        row = by_cmd[cmd]
        print(f"{cmd:26s}" + "".join(f"{row[k] or '':>8}" for k in cols)
              + f"{sum(row.values()):>8}")
    print(f"{'ALL':26s}" + "".join(f"{counts[k]:>8}" for k in cols) + f"{len(cases):>8}")
    bad = [c for c in cases if results[c.id].cls not in CLEAN]
    print(f"\n{len(cases)} inputs in {elapsed:.0f} s; not clean: {len(bad)}")
    for c in sorted(bad, key=lambda c: (results[c.id].cls, c.id)):
        o = results[c.id]
        print(f"\n[{o.cls}] {c.id} — {c.label}\n  $ {cmdline(c)}\n  why: {o.reason}")
        if c.kind == "api":
            print("  code: " + c.code.replace("\n", "\n        "))
        print(f"  stderr: {last_line(o.stderr)}")
    summary = {
        "work_folder": str(work), "python": PY, "seconds": round(elapsed, 1),
        "n_cases": len(cases), "counts": dict(counts),
        "by_command": {k: dict(v) for k, v in sorted(by_cmd.items())},
        "not_clean": [c.id for c in bad],
        "cases": [{
            "id": c.id, "command": c.command, "kind": c.kind, "label": c.label,
            "expect": c.expect, "cmdline": cmdline(c), "code": c.code or None,
            "class": results[c.id].cls, "reason": results[c.id].reason, "rc": results[c.id].rc,
            "seconds": results[c.id].seconds, "stderr_last": last_line(results[c.id].stderr),
            "stdout_head": results[c.id].stdout[:300],
        } for c in cases],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    print(f"\nJSON summary: {out}\nwork folder (cwd of every command): {work}")


if __name__ == "__main__":
    sys.exit(main())
