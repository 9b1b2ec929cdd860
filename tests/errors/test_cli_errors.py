"""The CLI's error contract for verify and recover (the report files themselves:
test_file_errors.py).

* ``verify``: bad numbers name the option; ``.report.*.tmp`` files of a killed run are removed
  when ``--out`` is checked, before any long work;
* Ctrl-C: exit 130, one line ``rip-atoms: interrupted[; note]``, no traceback, no temporary files;
* ``recover`` rejects non-positive budgets and counts naming the option;
* ``recover --checkpoint-dir DIR [--resume]``: chunk files written atomically, a resume with other
  inputs or options refused, and the resumed result identical to an uninterrupted run.

The expected values are fixed by the contract (exit codes, exact lines, file modes computed from
the umask by hand) or come from an independent reference run without a checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rip_atoms.cli import main
from rip_atoms.errors import Interrupted

INTERRUPTED = "rip-atoms: interrupted"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _child_setup(umask: int | None = None):
    """preexec_fn: SIGINT handled by Python (a shell's background job may inherit SIG_IGN) and,
    optionally, a umask."""

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if umask is not None:
            os.umask(umask)

    return setup


def run_cli(*args, cwd: Path, umask: int | None = None, timeout: float = 180
            ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rip_atoms", *map(str, args)], capture_output=True, text=True,
        cwd=cwd, timeout=timeout, preexec_fn=_child_setup(umask),
    )


def assert_one_line_exit2(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def main_exit2(argv: list[str], capsys) -> str:
    """In-process ``rip-atoms ARGV``: exit 2 with one line on stderr, nothing on stdout."""
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert rc == 2, (rc, cap.out, cap.err)
    assert cap.out == ""
    lines = cap.err.splitlines()
    assert len(lines) == 1, cap.err
    return lines[0]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def gaussian_dict(seed: int = 0, h: int = 16, n: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((h, n))


def random_codes(n_codes: int, n_atoms: int = 40, seed: int = 1) -> np.ndarray:
    """Signed codes with 1–6 non-zeros (a mix of certified and failed on a 16×40 dictionary),
    and one empty row (invalid)."""
    rng = np.random.default_rng(seed)
    C = np.zeros((n_codes, n_atoms))
    for i in range(n_codes):
        k = 1 + i % 6
        S = rng.choice(n_atoms, k, replace=False)
        C[i, S] = rng.standard_normal(k)
    C[min(5, n_codes - 1)] = 0.0
    return C


def wait_for(pred, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not pred():
        assert proc.poll() is None, ("the run ended before it could be interrupted",
                                     proc.communicate())
        assert time.monotonic() - t0 < timeout, "timed out waiting for the run to start"
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# verify (CLI)
# ---------------------------------------------------------------------------------------------
def test_verify_no_html_over_an_older_report(tmp_path):
    """One run covers: the stale report.html goes, the killed run's temp files go, the new
    report.json has the umask's mode (0o666 & ~0o027 = 0o640)."""
    np.save(tmp_path / "D.npy", gaussian_dict())
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.html").write_text("<html>an older run on another target</html>")
    (out / "report.json").write_text('{"old": true}\n')
    (out / ".report.json.q1w2e3.tmp").write_text("left by a killed run")
    (out / ".report.html.r4t5y6.tmp").write_text("left by a killed run")
    r = run_cli("verify", "D.npy", "--no-html", "--budget-s", "0.5", "--out", out, "--quiet",
                cwd=tmp_path, umask=0o027)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    rep = json.loads((out / "report.json").read_text())
    assert rep.get("old") is None and "D.npy" in rep["command"]
    assert mode_of(out / "report.json") == 0o640


def test_verify_checks_out_before_any_work(tmp_path, monkeypatch, capsys):
    import rip_atoms.cli.verify as verify

    def long_work(*a, **k):
        raise AssertionError("the long work started before --out was checked")

    monkeypatch.setattr(verify, "_quick_target", long_work)
    monkeypatch.setattr(verify, "_file_target", long_work)
    f = tmp_path / "file"
    f.write_text("x")
    line = main_exit2(["verify", "--quick", "--out", f / "sub"], capsys)
    assert line == f"rip-atoms: error: {f / 'sub'}: cannot create the report folder (Not a " \
                   "directory)"
    line = main_exit2(["verify", "--quick", "--out", f], capsys)
    assert line == f"rip-atoms: error: {f}: not a folder (the report folder)"


def test_verify_unwritable_out_cli(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_one_line_exit2(run_cli("verify", "--quick", "--out", "file/sub", cwd=tmp_path),
                          "file/sub", "cannot create the report folder")


@pytest.mark.parametrize(("args", "option"), [
    (["--budget-s", "0"], "--budget-s"), (["--budget-s", "nan"], "--budget-s"),
    (["--budget-s", "-1"], "--budget-s"), (["--tokens", "0"], "--tokens"),
    (["--steps", "-5"], "--steps"), (["--threads", "-1"], "--threads"),
])
def test_verify_rejects_bad_numbers(tmp_path, capsys, args, option):
    line = main_exit2(["verify", "--quick", "--out", tmp_path / "rep", *args], capsys)
    assert line.startswith(f"rip-atoms: error: {option} must be"), line


# ---------------------------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("exc", "line"), [
    (Interrupted("12000 tokens saved, rerun to resume"),
     f"{INTERRUPTED}; 12000 tokens saved, rerun to resume"),
    (Interrupted("step 40 saved,\nrerun to resume"), f"{INTERRUPTED}; step 40 saved, rerun to "
                                                      "resume"),
    (Interrupted(), INTERRUPTED),
    (KeyboardInterrupt(), INTERRUPTED),
])
def test_main_turns_an_interrupt_into_one_line_and_130(monkeypatch, capsys, exc, line):
    import rip_atoms.cli.recover as recover

    def interrupted(args):
        raise exc

    monkeypatch.setattr(recover, "run_recover", interrupted)  # looked up by register()
    parser_args = ["recover", "D.npy", "--codes", "C.npy"]
    assert main(parser_args) == 130
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err == line + "\n"


def test_python_m_exits_130_after_an_interrupt_inside_string_exec(tmp_path):
    """A Ctrl-C that lands while code run from a string executes (dataclasses and namedtuple
    ``exec`` their methods' source as modules are imported) leaves CPython's "unhandled
    KeyboardInterrupt" flag set; ``python -m`` then died by SIGINT (-2) after printing the line
    (seen on CI as test_sigint_during_verify_quick's -2). Deterministic here: the command's
    work raises KeyboardInterrupt from string code."""
    (tmp_path / "interrupted_run.py").write_text(
        "import rip_atoms.cli.recover as recover\n"
        "from rip_atoms.cli import main\n"
        "def interrupted(args):\n"
        "    exec('raise KeyboardInterrupt', {})\n"
        "recover.run_recover = interrupted\n"
        "raise SystemExit(main(['recover', 'D.npy', '--codes', 'C.npy']))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(Path(__file__).resolve().parents[2])]))
    r = subprocess.run([sys.executable, "-m", "interrupted_run"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (130, "", INTERRUPTED + "\n")


@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "logs"])
def test_sigint_during_verify_quick(tmp_path, quiet):
    out = tmp_path / "rep"
    out.mkdir()
    stale = out / ".report.json.k1ll3d.tmp"  # a killed run's: removed when --out is checked
    stale.write_text("")
    cmd = [sys.executable, "-m", "rip_atoms", "verify", "--quick", "--out", str(out)]
    if quiet:
        cmd.append("--quiet")
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, preexec_fn=_child_setup())
    try:
        wait_for(lambda: not stale.exists(), p)  # running: imports done, --out checked
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, (p.returncode, stderr)
    assert "Traceback" not in stderr
    assert stdout == ""
    lines = [ln for ln in stderr.split("\n") if ln.strip()]
    hits = [ln for ln in lines if INTERRUPTED in ln]
    assert len(hits) == 1, stderr
    assert hits[0].lstrip("\r ").startswith(INTERRUPTED)
    assert lines[-1] == hits[0]
    if quiet:
        assert lines == [f"{INTERRUPTED}; no report written to {out}"], stderr
    assert temp_files(out) == []
    assert not (out / "report.json").exists()


def test_interrupted_recover_without_checkpoint(tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "D.npy", gaussian_dict())
    np.save(tmp_path / "C.npy", random_codes(10))
    import rip_atoms.cli.recover as recover

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(recover, "classify_recovery", interrupted)
    rc = main(["recover", str(tmp_path / "D.npy"), "--codes", str(tmp_path / "C.npy"),
               "--out", str(tmp_path / "res.npz")])
    cap = capsys.readouterr()
    assert rc == 130
    assert cap.err == (f"{INTERRUPTED}; no results written (--checkpoint-dir DIR --resume makes "
                       "a long run resumable)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C.npy", "D.npy"]


# ---------------------------------------------------------------------------------------------
# recover: options
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "start"), [
    (["--threads", "-1"], "--threads must be ≥ 0"),
    (["--lp-time-limit", "0"], "--lp-time-limit must be a positive number"),
    (["--lp-time-limit", "-3"], "--lp-time-limit must be a positive number"),
    (["--lp-time-limit", "nan"], "--lp-time-limit must be a positive number"),
    (["--chunk-size", "0"], "--chunk-size must be ≥ 1"),
    (["--max-iter", "0"], "--max-iter must be ≥ 1"),
    (["--witness-iters", "-1"], "--witness-iters must be ≥ 0"),
    (["--margin", "1"], "--margin must lie in [0, 1)"),
    (["--margin", "-0.1"], "--margin must lie in [0, 1)"),
    (["--margin", "nan"], "--margin must lie in [0, 1)"),
    (["--resume"], "--resume needs --checkpoint-dir"),
    (["--checkpoint-codes", "8"], "--checkpoint-codes needs --checkpoint-dir"),
    (["--checkpoint-dir", "ck", "--chunk-size", "4", "--checkpoint-codes", "6"],
     "--checkpoint-codes must be a positive multiple of --chunk-size (4)"),
    (["--checkpoint-dir", "ck", "--checkpoint-codes", "0"],
     "--checkpoint-codes must be a positive multiple"),
    (["--out", "no-such-folder/res.npz"], "--out no-such-folder/res.npz: cannot write the "
     "per-code results: the folder no-such-folder does not exist"),
    (["--out", "."], "--out .: cannot write the per-code results: a folder"),
])
def test_recover_rejects_bad_options(tmp_path, monkeypatch, capsys, args, start):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "D.npy", gaussian_dict())
    np.save(tmp_path / "C.npy", random_codes(4))
    line = main_exit2(["recover", "D.npy", "--codes", "C.npy", *args], capsys)
    assert line.startswith(f"rip-atoms: error: {start}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C.npy", "D.npy"]  # nothing written


@pytest.mark.parametrize(("args", "option"), [(["--threads", "-1"], "--threads"),
                                              (["--lp-time-limit", "0"], "--lp-time-limit")])
def test_recover_rejects_bad_budgets_cli(tmp_path, args, option):
    np.save(tmp_path / "D.npy", gaussian_dict())
    np.save(tmp_path / "C.npy", random_codes(4))
    assert_one_line_exit2(run_cli("recover", "D.npy", "--codes", "C.npy", *args, cwd=tmp_path),
                          option)


@pytest.mark.parametrize(("args", "option"), [
    (["--dim", "0", "--atoms", "8", "--k", "1"], "--dim"),
    (["--dim", "4", "--atoms", "-8", "--k", "1"], "--atoms"),
    (["--dim", "4", "--atoms", "8", "--k", "1", "--trials", "0"], "--trials"),
    (["--dim", "4", "--atoms", "8", "--k", "1", "--witness-iters", "-2"], "--witness-iters"),
])
def test_phase_transition_rejects_bad_counts(capsys, args, option):
    line = main_exit2(["phase-transition", *args], capsys)
    assert line.startswith(f"rip-atoms: error: {option} must be ≥"), line


@pytest.mark.parametrize("support", ["1,,2", "1,2,", ",1"])
def test_witness_rejects_an_empty_support_item(tmp_path, capsys, support):
    np.save(tmp_path / "D.npy", gaussian_dict())
    line = main_exit2(["witness", str(tmp_path / "D.npy"), "--support", support], capsys)
    assert line.startswith("rip-atoms: error: --support: empty item"), line


# ---------------------------------------------------------------------------------------------
# recover: checkpoints and resume
# ---------------------------------------------------------------------------------------------
RESULT_KEYS = ("status", "method", "certificate", "fuchs", "support_size", "invalid_reason",
               "homotopy_iters", "atom_scale", "witness_data", "witness_indices",
               "witness_indptr", "failed_code_data", "failed_code_indices",
               "failed_code_indptr", "shape")


def assert_same_results(a: Path, b: Path) -> None:
    with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
        for k in RESULT_KEYS:
            x, y = za[k], zb[k]
            assert x.dtype == y.dtype and x.shape == y.shape, k
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
        sa, sb = json.loads(str(za["summary"])), json.loads(str(zb["summary"]))
    for k in ("n", "certified", "failed", "undetermined", "invalid", "methods",
              "max_certified_bound", "invalid_examples", "metric"):
        assert sa[k] == sb[k], k


@pytest.fixture
def recover_inputs(tmp_path) -> Path:
    np.save(tmp_path / "D.npy", gaussian_dict())
    np.save(tmp_path / "C.npy", random_codes(37))
    return tmp_path


def run_json(argv: list[str], capsys) -> tuple[dict, str]:
    """In-process ``rip-atoms ARGV --json``: exit 0; the JSON object and stderr."""
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out), cap.err


def test_recover_resume_matches_an_uninterrupted_run(recover_inputs, capsys, monkeypatch):
    cwd = recover_inputs
    monkeypatch.chdir(cwd)
    base = ["recover", "D.npy", "--codes", "C.npy", "--chunk-size", "4"]
    ck = ["--checkpoint-dir", "ck", "--checkpoint-codes", "8"]
    r = run_cli(*base, "--out", "plain.npz", "--quiet", cwd=cwd)
    assert r.returncode == 0, r.stderr
    r = run_cli(*base, *ck, "--out", "full.npz", "--json", "--quiet", cwd=cwd, umask=0o022)
    assert r.returncode == 0, r.stderr
    n_chunks = math.ceil(37 / 8)
    assert json.loads(r.stdout)["checkpoint"] == {"dir": "ck", "chunks": n_chunks,
                                                  "resumed": 0, "computed": n_chunks}
    folder = cwd / "ck"
    assert sorted(p.name for p in folder.iterdir()) == (
        [f"chunk-{i:05d}.npz" for i in range(n_chunks)] + ["manifest.json"])
    man = json.loads((folder / "manifest.json").read_text())
    assert man["format"] == "rip-atoms-recover-checkpoint" and man["version"] == 1
    assert man["n_chunks"] == n_chunks and man["chunk_codes"] == 8 and man["complete"] is True
    assert man["identity"]["codes"]["n"] == 37
    assert all(mode_of(p) == 0o644 for p in folder.iterdir())
    assert mode_of(cwd / "full.npz") == 0o644
    assert_same_results(cwd / "plain.npz", cwd / "full.npz")

    # a killed run: one chunk missing, a temporary file left behind
    (folder / "chunk-00002.npz").unlink()
    (folder / ".chunk-00002.npz.x7y8z9.tmp").write_bytes(b"half a chunk")
    # an existing checkpoint is not reused without --resume
    line = main_exit2([*base, *ck], capsys)
    assert line == ("rip-atoms: error: --checkpoint-dir ck: already holds a recover checkpoint; "
                    "add --resume to continue it, or choose another folder")
    out, _ = run_json([*base, *ck, "--resume", "--out", "resumed.npz", "--json", "--quiet"],
                      capsys)
    assert out["checkpoint"] == {"dir": "ck", "chunks": n_chunks, "resumed": n_chunks - 1,
                                 "computed": 1}
    assert temp_files(folder) == []
    assert (folder / "chunk-00002.npz").is_file()
    assert_same_results(cwd / "plain.npz", cwd / "resumed.npz")

    # a corrupt chunk is computed again
    (folder / "chunk-00000.npz").write_bytes(b"not an npz")
    out, err = run_json([*base, *ck, "--resume", "--out", "again.npz", "--json"], capsys)
    assert "chunk-00000.npz: not a per-code result file" in err
    assert out["checkpoint"]["computed"] == 1
    assert_same_results(cwd / "plain.npz", cwd / "again.npz")


def test_recover_resume_refuses_other_inputs(recover_inputs, capsys, monkeypatch):
    cwd = recover_inputs
    monkeypatch.chdir(cwd)
    base = ["recover", "D.npy", "--codes", "C.npy", "--chunk-size", "4", "--checkpoint-dir",
            "ck", "--quiet"]
    assert main(base) == 0
    capsys.readouterr()
    before = sorted(p.name for p in (cwd / "ck").iterdir())
    C = np.load(cwd / "C.npy")
    C[3, 7] += 1.0
    np.save(cwd / "C2.npy", C)
    D = gaussian_dict()
    D[0, 0] += 1e-9
    np.save(cwd / "D2.npy", D)
    cases = [
        (["recover", "D.npy", "--codes", "C2.npy"], "(codes)"),
        (["recover", "D2.npy", "--codes", "C.npy"], "(dictionary)"),
        (["recover", "D.npy", "--codes", "C.npy", "--margin", "0.01"], "(options.margin)"),
        (["recover", "D.npy", "--codes", "C.npy", "--nonneg"], "(options.nonneg)"),
        (["recover", "D.npy", "--codes", "C.npy", "--raw"], "(metric)"),
        (["recover", "D.npy", "--codes", "C.npy", "--chunk-size", "8"],
         "(options.checkpoint_codes, options.chunk_size)"),
    ]
    for argv, what in cases:
        if "--chunk-size" not in argv:
            argv = [*argv, "--chunk-size", "4"]
        line = main_exit2([*argv, "--checkpoint-dir", "ck", "--resume", "--quiet"], capsys)
        assert line == ("rip-atoms: error: --checkpoint-dir ck: the checkpoint was made with "
                        f"different inputs or options {what}; rerun with the same ones or "
                        "choose another folder"), line
    assert sorted(p.name for p in (cwd / "ck").iterdir()) == before


def test_recover_checkpoint_dir_problems(recover_inputs, capsys, monkeypatch):
    cwd = recover_inputs
    monkeypatch.chdir(cwd)
    base = ["recover", "D.npy", "--codes", "C.npy"]
    (cwd / "afile").write_text("x")
    line = main_exit2([*base, "--checkpoint-dir", "afile"], capsys)
    assert line == "rip-atoms: error: --checkpoint-dir afile: not a folder"
    (cwd / "strays").mkdir()
    (cwd / "strays" / "chunk-00000.npz").write_bytes(b"")
    line = main_exit2([*base, "--checkpoint-dir", "strays", "--resume"], capsys)
    assert "holds chunk files but no manifest.json" in line
    (cwd / "foreign").mkdir()
    (cwd / "foreign" / "manifest.json").write_text('{"format": "something else"}')
    line = main_exit2([*base, "--checkpoint-dir", "foreign", "--resume"], capsys)
    assert "foreign/manifest.json: not a recover checkpoint" in line


def test_sigint_during_recover_then_resume(tmp_path):
    np.save(tmp_path / "D.npy", gaussian_dict())
    n_codes = 48
    np.save(tmp_path / "C.npy", random_codes(n_codes))
    base = ["recover", "D.npy", "--codes", "C.npy", "--chunk-size", "4", "--checkpoint-dir",
            "ck", "--checkpoint-codes", "4", "--quiet"]
    folder = tmp_path / "ck"
    p = subprocess.Popen([sys.executable, "-m", "rip_atoms", *base], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_child_setup())
    try:
        wait_for(lambda: (folder / "chunk-00000.npz").exists(), p)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, (p.returncode, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    saved = len(list(folder.glob("chunk-*.npz")))
    assert 1 <= saved < n_codes // 4
    assert lines[0] == (f"{INTERRUPTED}; {saved} of {n_codes // 4} chunks saved in ck; rerun "
                        "with --resume to continue")
    assert temp_files(folder) == []
    r = run_cli(*base, "--resume", "--out", "resumed.npz", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["checkpoint"]["resumed"] == saved
    r = run_cli(*base[:6], "--out", "plain.npz", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert_same_results(tmp_path / "plain.npz", tmp_path / "resumed.npz")


def test_recover_checkpoint_with_sparse_codes(tmp_path, capsys, monkeypatch):
    import scipy.sparse as sp

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "D.npy", gaussian_dict())
    sp.save_npz(tmp_path / "C.npz", sp.csr_matrix(random_codes(14, seed=3)))
    base = ["recover", "D.npy", "--codes", "C.npz", "--chunk-size", "2", "--quiet", "--json"]
    run_json([*base, "--out", "plain.npz"], capsys)
    out, _ = run_json([*base, "--checkpoint-dir", "ck", "--checkpoint-codes", "4", "--out",
                       "ck.npz"], capsys)
    assert out["checkpoint"] == {"dir": "ck", "chunks": 4, "resumed": 0, "computed": 4}
    assert out["n"] == 14 and out["invalid"] == 1
    assert out["invalid_examples"] == [{"index": 5, "reason": "empty support"}]
    assert_same_results(tmp_path / "plain.npz", tmp_path / "ck.npz")
