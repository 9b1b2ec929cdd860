"""``rip-atoms check`` (issue 22, item 4): the independent checker re-checks every claim of a
report, a recover file and rip/spark/coherence JSON, and catches each kind of tampering with
exit 1 naming the claim; untampered files pass; unreadable ones exit 2 with one line."""

from __future__ import annotations

import ast
import base64
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rip_atoms import check
from rip_atoms.cli import main

CHECKER = Path(check.__file__)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small signed Gaussian dictionary with certified and failed codes (recover --out), a
    dependent triple for spark, and the rip/spark/coherence --json outputs."""
    out = tmp_path_factory.mktemp("check")
    rng = np.random.default_rng(2)
    D = rng.standard_normal((16, 40))
    np.save(out / "D.npy", D)
    D3 = D.copy()
    D3[:, 5] = D3[:, 3] - 0.5 * D3[:, 7]  # atoms 3, 5, 7 are dependent: spark ≤ 3
    np.save(out / "D3.npy", D3)
    C = np.zeros((24, 40))
    for i in range(24):
        k = 2 if i < 12 else 8  # 2-sparse codes are certified, 8-sparse ones mostly fail
        S = rng.choice(40, k, replace=False)
        C[i, S] = rng.uniform(1, 2, k) * rng.choice([-1, 1], k)
    np.save(out / "codes.npy", C)
    common = ["--quiet"]
    assert main(["recover", str(out / "D.npy"), "--codes", str(out / "codes.npy"), "--raw",
                 "--out", str(out / "pc.npz"), *common]) == 0
    for name, argv in {"rip": ["rip", str(out / "D.npy"), "-k", "2,3,4", "--budget-s", "1"],
                       "spark": ["spark", str(out / "D3.npy"), "--budget-s", "1"],
                       "coherence": ["coherence", str(out / "D.npy")]}.items():
        _json_to(out / f"{name}.json", [*argv, "--json", *common])
    return out


def _json_to(path: Path, argv: list[str]) -> None:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    path.write_text(buf.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert main(["verify", "--quick", "--out", str(out), "--no-html", "--budget-s", "4",
                 "--quiet"]) == 0
    return out / "report.json"


def run_check(path, capsys, *extra) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["check", str(path), *extra])
    got = capsys.readouterr()
    return rc, got.out, got.err


def _tampered(tmp_path: Path, src: Path, edit) -> Path:
    doc = json.loads(src.read_text(encoding="utf-8"))
    edit(doc)
    dst = tmp_path / src.name
    dst.write_text(json.dumps(doc), encoding="utf-8")
    return dst


def _tampered_npz(tmp_path: Path, src: Path, edit) -> Path:
    with np.load(src, allow_pickle=False) as z:
        a = {k: z[k].copy() for k in z.files}
    edit(a)
    dst = tmp_path / "t.npz"
    np.savez(dst, **a)
    return dst


def _edit_b64(text: str, i: int, delta: float) -> str:
    y = np.frombuffer(base64.b64decode(text), dtype="<f8").copy()
    y[i] += delta
    return base64.b64encode(y.tobytes()).decode()


# ------------------------------------------------------------------------- the module itself

def test_the_checker_imports_numpy_and_the_standard_library_only():
    tree = ast.parse(CHECKER.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            names.add((node.module or "").split(".")[0])
    others = names - {"numpy", "__future__"} - set(sys.stdlib_module_names)
    assert not others, f"the checker imports {others}"
    assert "rip_atoms" not in names


def test_the_checker_runs_as_a_script_with_numpy_alone(files, tmp_path):
    import subprocess

    script = tmp_path / "check.py"  # a copy outside the package: nothing of rip_atoms nearby
    script.write_text(CHECKER.read_text(encoding="utf-8"), encoding="utf-8")
    r = subprocess.run([sys.executable, "-I", str(script), str(files / "pc.npz")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "claims checked" in r.stdout


# ------------------------------------------------------------------------- untampered files pass

@pytest.mark.parametrize("name", ["pc.npz", "rip.json", "spark.json", "coherence.json"])
def test_untampered_outputs_pass(files, capsys, name):
    rc, out, err = run_check(files / name, capsys)
    assert rc == 0, out + err
    n, hold = out.split(":")[1].split("claims checked,")
    assert int(n) > 0 and int(hold.split()[0]) == int(n)


def test_the_recover_file_holds_witnesses_and_certificates(files, capsys):
    rc, out, _ = run_check(files / "pc.npz", capsys, "--json")
    s = json.loads(out)
    assert rc == 0 and s["all_hold"]
    assert s["kinds"]["failure witness"]["claims"] >= 1
    assert s["kinds"]["dual certificate"]["claims"] >= 1
    assert s["worst_certificate_margin"]["margin"] > 0


def test_verify_quick_report_re_checks_completely(quick, capsys):
    report = json.loads(quick.read_text(encoding="utf-8"))
    rc, out, err = run_check(quick, capsys, "--json")
    s = json.loads(out)
    assert rc == 0 and s["all_hold"], err
    sc = report["proof"]["self_check"]
    assert sc["claims"] == sc["hold"] == s["claims"]
    assert report["verdict"][-1] == sc["sentence"]
    assert f"{s['claims']} of {s['claims']} claims re-checked independently" in sc["sentence"]
    certified = report["recovery"]["codes"]["certified"] - report["recovery"]["codes"]["empty"]
    assert s["kinds"]["dual certificate"]["claims"] == certified  # every certificate is kept
    assert s["kinds"]["coherence pair"]["claims"] == 2  # raw and AIP
    assert s["kinds"]["RIP witness"]["claims"] >= 2 * len(report["rip"]["brackets"]) - 2


# ------------------------------------------------------------------------- tampering is caught

def _caught(rc: int, out: str, err: str, claim: str) -> None:
    assert rc == 1, out + err
    assert claim in err and "does not hold" in err, err
    assert f"FAILS: {claim}" in out


def test_an_edited_rip_witness_index_is_caught(files, tmp_path, capsys):
    doc = json.loads((files / "rip.json").read_text())
    b = next(b for b in doc["brackets"] if b["k"] == 4)
    new = next(a for a in range(40) if a not in b["witness_U"])

    def edit(d):
        d["brackets"][doc["brackets"].index(b)]["witness_U"][0] = new

    path = _tampered(tmp_path, files / "rip.json", edit)
    rc, out, err = run_check(path, capsys)
    _caught(rc, out, err, "rip k=4 U_lower witness")


def test_an_edited_rip_bound_is_caught(quick, tmp_path, capsys):
    def edit(d):
        d["rip"]["brackets"][1]["L_lower"] += 1e-6

    rc, out, err = run_check(_tampered(tmp_path, quick, edit), capsys)
    _caught(rc, out, err, f"rip k={json.loads(quick.read_text())['rip']['brackets'][1]['k']} "
                          "L_lower witness")


def test_an_edited_mu_pair_is_caught(quick, tmp_path, capsys):
    def edit(d):
        i, j = d["coherence"]["aip"]["pair"]
        d["coherence"]["aip"]["pair"] = [i, (j + 1) if j + 1 != i else j + 2]

    rc, out, err = run_check(_tampered(tmp_path, quick, edit), capsys)
    _caught(rc, out, err, "coherence.aip μ pair")


def test_an_edited_mu_value_is_caught(files, quick, tmp_path, capsys):
    def edit(d):
        d["coherence"]["raw"]["mu"] -= 1e-7

    rc, out, err = run_check(_tampered(tmp_path, quick, edit), capsys)
    _caught(rc, out, err, "coherence.raw μ pair")

    def edit_cli(d):
        d["mu"] += 1e-7

    rc, out, err = run_check(_tampered(tmp_path, files / "coherence.json", edit_cli), capsys)
    _caught(rc, out, err, "coherence μ pair")


def test_an_edited_certificate_in_the_report_is_caught(quick, tmp_path, capsys):
    doc = json.loads(quick.read_text())
    c = doc["proof"]["certificates"]["codes"][3]

    def edit(d):
        d["proof"]["certificates"]["codes"][3]["y"] = _edit_b64(c["y"], 0, 1e-3)

    rc, out, err = run_check(_tampered(tmp_path, quick, edit), capsys)
    _caught(rc, out, err, f"certificate of code {c['code']}")


def test_an_edited_certificate_in_a_recover_file_is_caught(files, tmp_path, capsys):
    def edit(a):
        a["certificate_y"][0, 2] += 1e-3

    rc, out, err = run_check(_tampered_npz(tmp_path, files / "pc.npz", edit), capsys)
    with np.load(files / "pc.npz") as z:
        first = int(z["certificate_index"][0])
    _caught(rc, out, err, f"certificate of code {first}")


def test_an_understated_certificate_bound_is_caught(files, tmp_path, capsys):
    with np.load(files / "pc.npz") as z:
        first = int(z["certificate_index"][0])

    def edit(a):
        a["certificate"][first] -= 1e-3  # the file claims more room than y* gives

    rc, out, err = run_check(_tampered_npz(tmp_path, files / "pc.npz", edit), capsys)
    _caught(rc, out, err, f"certificate of code {first}")


def test_an_edited_failure_witness_is_caught(files, tmp_path, capsys):
    with np.load(files / "pc.npz") as z:
        names = list(z["status_names"])
        first = int(np.flatnonzero(z["status"] == names.index("failed"))[0])
        start = int(z["witness_indptr"][first])

    def edit(a):
        a["witness_data"][start] *= 1.001  # no longer feasible

    rc, out, err = run_check(_tampered_npz(tmp_path, files / "pc.npz", edit), capsys)
    _caught(rc, out, err, f"failure witness of code {first}")


def test_a_failure_witness_with_a_larger_l1_norm_is_caught(files, tmp_path, capsys):
    with np.load(files / "pc.npz") as z:
        names = list(z["status_names"])
        first = int(np.flatnonzero(z["status"] == names.index("failed"))[0])
        a0, b0 = int(z["failed_code_indptr"][first]), int(z["failed_code_indptr"][first + 1])

    def edit(a):  # the code itself made smaller: the witness is no longer ℓ1 no larger
        a["failed_code_data"][a0:b0] *= 0.5

    rc, out, err = run_check(_tampered_npz(tmp_path, files / "pc.npz", edit), capsys)
    _caught(rc, out, err, f"failure witness of code {first}")


def test_an_edited_spark_null_vector_is_caught(files, tmp_path, capsys):
    def edit(d):
        d["null_vector"][0] += 0.01

    rc, out, err = run_check(_tampered(tmp_path, files / "spark.json", edit), capsys)
    _caught(rc, out, err, "spark ≤ 3")


def test_a_witness_atom_the_file_does_not_carry_fails_the_claim(files, tmp_path, capsys):
    doc = json.loads((files / "spark.json").read_text())
    carried = doc["proof"]["atoms"]["analysis"]["index"]
    other = next(a for a in range(40) if a not in carried)

    def edit(d):
        d["witness"][0] = other

    rc, out, err = run_check(_tampered(tmp_path, files / "spark.json", edit), capsys)
    _caught(rc, out, err, "spark ≤ 3")
    assert f"atom {other} is not among the atoms the file carries" in out


def test_a_failure_witness_in_json_is_checked_and_an_edit_caught(files, tmp_path, capsys):
    from rip_atoms.proof import FORMAT, atoms_entry

    with np.load(files / "pc.npz") as z:
        names = list(z["status_names"])
        i = int(np.flatnonzero(z["status"] == names.index("failed"))[0])
        rows = z["check_rows"]

        def row(key):
            lo, hi = z[f"{key}_indptr"][i], z[f"{key}_indptr"][i + 1]
            return z[f"{key}_indices"][lo:hi].tolist(), z[f"{key}_data"][lo:hi].tolist()

        (S, d), (xS, x) = row("failed_code"), row("witness")
    doc = {"brackets": [], "proof": {
        "format": FORMAT, "atoms": {"analysis": atoms_entry(rows, None, len(rows), 1.0)},
        "failures": {"nonneg": False, "codes": [{"code": i, "support": S, "values": d,
                                                  "witness_support": xS, "witness_values": x}]}}}
    path = tmp_path / "rip.json"
    path.write_text(json.dumps(doc))
    rc, out, err = run_check(path, capsys)
    assert rc == 0 and "failure witness" in out, out + err
    doc["proof"]["failures"]["codes"][0]["witness_support"][0] = next(
        a for a in range(len(rows)) if a not in xS and a not in S)
    path.write_text(json.dumps(doc))
    rc, out, err = run_check(path, capsys)
    _caught(rc, out, err, f"failure witness of code {i}")


# ------------------------------------------------------------------------- precision labels

def _spark_doc(eps: float, *, exact: bool, wording: str, rank_rtol: float) -> dict:
    from rip_atoms.proof import FORMAT, atoms_entry

    rng = np.random.default_rng(0)
    R = rng.standard_normal((3, 8))
    R[2] = R[0] + R[1] + eps * rng.standard_normal(8)
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    v = np.linalg.svd(R.T)[2][-1]  # the best null vector of the three rows
    return {"lower": 2, "upper": 3, "exact": exact, "witness": [0, 1, 2],
            "null_vector": v.tolist(), "rank_rtol": rank_rtol,
            "methods": {"upper": wording}, "statement": "", "notes": [],
            "proof": {"format": FORMAT, "atoms": {"analysis": atoms_entry(R, [0, 1, 2], 3, 1.0)}}}


@pytest.mark.parametrize(("eps", "exact", "wording", "holds"), [
    (0.0, True, "rank + 1", True),                      # dependent at float64 precision
    (1e-7, True, "rank + 1", False),                    # σmin ~ 1e-8 labelled exact: false
    (1e-7, False, "dependent within the input's precision", True),
    (1e-3, False, "dependent within the input's precision", False),  # beyond rank_rtol
])
def test_spark_claims_within_precision_must_say_so(tmp_path, capsys, eps, exact, wording,
                                                   holds):
    path = tmp_path / "spark.json"
    path.write_text(json.dumps(_spark_doc(eps, exact=exact, wording=wording,
                                          rank_rtol=1e-6)))
    rc, out, err = run_check(path, capsys)
    assert rc == (0 if holds else 1), out + err


# ------------------------------------------------------------------------- the sidecar file

def test_large_rows_go_to_a_sidecar_that_is_checked(tmp_path, capsys, monkeypatch):
    from rip_atoms.report import self_check

    monkeypatch.setattr(self_check, "INLINE_MAX_ENTRIES", 1000)
    out = tmp_path / "r"
    assert main(["verify", "--quick", "--out", str(out), "--no-html", "--budget-s", "3",
                 "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["proof"]["atoms"]["analysis"]["file"] == "check-atoms.npz"
    assert report["proof"]["self_check"]["all_hold"]
    rc, text, err = run_check(out / "report.json", capsys)
    assert rc == 0, text + err
    with np.load(out / "check-atoms.npz") as z:
        rows = z["analysis"].copy()
    rows[0, 0] += 1e-12
    np.savez(out / "check-atoms.npz", analysis=rows)
    rc, text, err = run_check(out / "report.json", capsys)
    assert rc == 2 and "do not match the SHA-256" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------- bad files

@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'{"mu": 0.5}',
                                     b"\x93NUMPY garbage"])
def test_a_bad_file_is_one_line_and_exit_2(tmp_path, capsys, content):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    rc, out, err = run_check(path, capsys)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(path) in err


def test_a_recover_file_without_a_proof_is_a_bad_file(files, tmp_path, capsys):
    def edit(a):
        del a["check_info"]

    rc, _, err = run_check(_tampered_npz(tmp_path, files / "pc.npz", edit), capsys)
    assert rc == 2 and "check_info" in err


# ------------------------------------------------------------------------- what recover keeps

def test_recover_keeps_the_first_certified_codes_whatever_the_chunking(files, tmp_path):
    from rip_atoms.recovery import CERTIFIED, classify_recovery

    rng = np.random.default_rng(5)
    D = np.load(files / "D.npy")
    C = np.zeros((90, 40))
    for i in range(90):
        S = rng.choice(40, 1 + i % 3, replace=False)
        C[i, S] = rng.uniform(1, 2, len(S))
    whole = classify_recovery(D, C, metric="raw", keep_certificates=5)
    chunked = classify_recovery(D, C, metric="raw", keep_certificates=5, chunk_size=7)
    first = np.flatnonzero(whole.status == CERTIFIED)[:5]
    assert whole.certificate_index.tolist() == first.tolist()
    assert chunked.certificate_index.tolist() == first.tolist()
    np.testing.assert_allclose(chunked.certificate_y, whole.certificate_y, atol=1e-12)
    none = classify_recovery(D, C, metric="raw")
    assert len(none.certificate_index) == 0 and none.certificates_kept == "none"


def test_keep_certificates_keeps_every_one_and_survives_a_checkpoint(files, tmp_path, capsys):
    out = tmp_path / "all.npz"
    argv = ["recover", str(files / "D.npy"), "--codes", str(files / "codes.npy"), "--raw",
            "--keep-certificates", "--quiet", "--chunk-size", "4"]
    assert main([*argv, "--out", str(out), "--checkpoint-dir", str(tmp_path / "ck"),
                 "--checkpoint-codes", "8"]) == 0
    with np.load(out) as z:
        names = list(z["status_names"])
        certified = np.flatnonzero(z["status"] == names.index("certified"))
        assert z["certificate_index"].tolist() == certified.tolist()
        assert z["check_rows"].shape == (40, 16)
    rc, text, err = run_check(out, capsys)
    assert rc == 0, text + err


def test_keep_certificates_needs_out(files, capsys):
    rc = main(["recover", str(files / "D.npy"), "--codes", str(files / "codes.npy"),
               "--keep-certificates"])
    assert rc == 2 and "--keep-certificates needs --out" in capsys.readouterr().err


def test_too_large_a_dictionary_keeps_witness_rows_only(files, tmp_path, capsys, monkeypatch):
    import rip_atoms.cli.recover as recover_cli

    monkeypatch.setattr(recover_cli, "EMBED_MAX_ENTRIES", 100)  # D is 16×40 = 640 entries
    out = tmp_path / "big.npz"
    assert main(["recover", str(files / "D.npy"), "--codes", str(files / "codes.npy"), "--raw",
                 "--out", str(out)]) == 0
    got = capsys.readouterr()
    assert "keeps no certificates" in got.err and "--keep-certificates" in got.err
    with np.load(out) as z:
        info = json.loads(str(z["check_info"]))
        assert len(z["certificate_index"]) == 0 and info["certificates"] == "none"
        assert 0 < len(z["check_rows_index"]) <= 40  # the atoms the witnesses and codes use
    rc, text, err = run_check(out, capsys, "--json")
    s = json.loads(text)
    assert rc == 0 and set(s["kinds"]) == {"failure witness"}, err
