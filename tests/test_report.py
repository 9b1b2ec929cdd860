"""``rip-atoms verify`` and :mod:`rip_atoms.report`: the HTML holds every section and every plot
(embedded, nothing fetched from a network), the JSON's numbers are what direct calls to the
library give on the same inputs, every kind of target produces a report, and bad input exits 2
with one line and leaves no report behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rip_atoms import theory
from rip_atoms.cli import main
from rip_atoms.coherence import coherence
from rip_atoms.report import SECTIONS, read_report, render_html, write_report
from rip_atoms.report.build import babel_certified_k
from rip_atoms.report.figures import FIGURES, render_figures

FIG_RE = re.compile(r'<figure id="fig-(\w+)"><img alt="[^"]*" src="data:image/png;base64,'
                    r'([A-Za-z0-9+/=]+)"')


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["verify", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _sections(html: str) -> set[str]:
    return set(re.findall(r'<section id="([\w-]+)">', html))


def _figures(html: str) -> dict[str, bytes]:
    import base64

    return {m.group(1): base64.b64decode(m.group(2)) for m in FIG_RE.finditer(html)}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick run shared by the tests below (report dict, html text, folder)."""
    out = tmp_path_factory.mktemp("quick")
    rc = main(["verify", "--quick", "--out", str(out), "--quiet"])
    assert rc == 0
    return read_report(out), (out / "report.html").read_text(encoding="utf-8"), out


def test_quick_html_has_every_section_and_every_plot(quick):
    report, html, out = quick
    assert _sections(html) == set(SECTIONS)
    figs = _figures(html)
    assert set(figs) == set(FIGURES)  # the quick run has activations and codes: all six plots
    for key, png in figs.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), key
        assert len(png) > 5000, key  # a real plot, not an empty canvas
    # self-contained: no scripts, no external resources
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for sid in ("representation-shift", "criteria", "tsae-window"):
        body = html.split(f'<section id="{sid}">')[1].split("</section>")[0]
        assert "Not computed" not in body, sid
    assert (out / "report.json").stat().st_size > 1000
    assert not list(out.glob(".*.tmp"))


@pytest.mark.sensitive
def test_quick_json_numbers_match_direct_library_calls(quick):
    from rip_atoms.cli.verify import _quick_target
    from rip_atoms.criteria import l1_certified_fraction
    from rip_atoms.metric import representation_shift
    from rip_atoms.rip import witness_eigenvalues

    report, _html, _ = quick
    t = _quick_target(0)
    d = t.dictionary
    H, N = d.dim, d.n_atoms
    assert report["dictionary"]["dim"] == H and report["dictionary"]["n_atoms"] == N
    # coherence, raw and under the fitted metric
    raw = coherence(d, None)
    aip = coherence(d, t.metric)
    assert report["coherence"]["raw"]["mu"] == pytest.approx(raw.mu, abs=1e-12)
    assert report["coherence"]["aip"]["mu"] == pytest.approx(aip.mu, abs=1e-12)
    assert sorted(report["coherence"]["aip"]["pair"]) == sorted(aip.pair)
    assert report["coherence"]["aip"]["certified_K"] == theory.coherence_certified_k(aip.mu)
    assert report["reference"]["welch_bound"] == pytest.approx(theory.welch_bound(H, N))
    assert report["reference"]["gaussian_closed_form"]["mean"] == pytest.approx(
        theory.gaussian_coherence(H, N).mean)
    # Babel: the report's curve is the library's, and its certified K is Tropp's condition
    babel = np.asarray(report["coherence"]["aip"]["babel"])
    assert babel[0] == pytest.approx(aip.mu, abs=1e-12)
    assert np.all(np.diff(babel) >= -1e-12)
    b_up = np.asarray(report["coherence"]["aip"]["babel_upper"])
    K = report["coherence"]["aip"]["babel_certified_K"]
    full = np.concatenate([[0.0], b_up])
    assert full[K - 1] + full[K] < 1 <= full[K] + full[K + 1]
    # the representation shift is representation_shift on the same held-out activations
    shift = representation_shift(t.activations, t.metric, seed=0)
    assert report["representation_shift"]["raw"]["mean"] == pytest.approx(shift.raw.mean)
    assert report["representation_shift"]["aip"]["mean"] == pytest.approx(shift.aip.mean)
    # RIP: δ₂ = μ exactly, and every lower side is re-derived from its witness support
    rip = {b["k"]: b for b in report["rip"]["brackets"]}
    assert rip[2]["delta_lower"] == pytest.approx(aip.mu, abs=1e-12)
    assert rip[2]["exact"]
    for k, b in rip.items():
        w = witness_eigenvalues(d, b["witness_U"], t.metric)
        assert len(b["witness_U"]) == k
        assert w.U == pytest.approx(b["U_lower"], abs=1e-9)
        assert b["delta_lower"] <= b["delta_upper"] + 1e-12
    # spark: the witness circuit is dependent — its null vector is re-checked here on the
    # whitened unit atoms (D̃_witness v ≈ 0, v of unit norm)
    s = report["spark"]
    assert s["lower"] <= s["upper"]
    assert s["witness"] is not None and len(s["witness"]) == s["upper"]
    A = t.metric.W @ d.atoms[:, s["witness"]]
    A = A / np.linalg.norm(A, axis=0)
    v = np.asarray(s["null_vector"])
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert np.linalg.norm(A @ v) < 1e-8 * np.linalg.norm(A, 2)
    # the ℓ1-certified count of the target's codes is l1_certified_fraction's
    codes = t.unit.encoder(t.activations)
    cert = l1_certified_fraction(d, codes, metric=t.metric, nonneg=True, max_tokens=256, seed=0)
    rc = report["recovery"]["codes"]
    assert (rc["certified"], rc["failed"], rc["undetermined"]) == (
        cert.certified, cert.failed, cert.undetermined)
    # the DT line is ρ_W⁺(H/N)·H
    assert report["recovery"]["k_weak"] == pytest.approx(
        theory.rho_weak(H / N, nonneg=True) * H)
    # the criteria: the planted codes reconstruct exactly under the AIP
    rows = {r["name"]: r for r in report["criteria"]["rows"]}
    assert rows["planted codes"]["r2_aip"] == pytest.approx(1.0, abs=1e-9)
    assert rows["neurons"]["r2_aip"] == pytest.approx(1.0, abs=1e-9)
    # the TSAE window is tsae_window at the atom-set values
    w = report["tsae_window"]["check"]["window"]
    assert w["lower"] == pytest.approx(w["eps"] * w["K"] * w["delta_max"])
    assert w["upper"] == pytest.approx(w["delta_min"] - w["eps"] * (w["K"] - 1) * w["delta_max"])


def test_figures_redraw_from_the_json_alone(quick):
    report, html, out = quick
    again = json.loads((out / "report.json").read_text(encoding="utf-8"))
    page = render_html(again, render_figures(again))
    assert set(_figures(page)) == set(_figures(html))
    assert _sections(page) == set(SECTIONS)


def test_babel_certified_k_is_tropps_condition():
    # μ₁(1..4) = 0.1, 0.3, 0.6, 0.9: μ₁(2)+μ₁(3) = 0.9 < 1 ≤ μ₁(3)+μ₁(4) = 1.5
    assert babel_certified_k(np.array([0.1, 0.3, 0.6, 0.9])) == 3
    assert babel_certified_k(np.array([1.2])) == 0
    assert babel_certified_k(np.array([0.0, 0.0])) == 2


@pytest.mark.sensitive
def test_verify_npy_matrix_without_activations(tmp_path, capsys):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((24, 60))
    np.save(tmp_path / "D.npy", D)
    rc, out, err = _run(capsys, str(tmp_path / "D.npy"), "--out", str(tmp_path / "r"),
                        "--budget-s", "3", "--json")
    assert rc == 0
    report = json.loads(out)  # --json: stdout holds exactly the report
    assert report["metric"]["key"] == "self"
    assert report["coherence"]["raw"]["mu"] == pytest.approx(coherence(D, None).mu, abs=1e-12)
    assert not report["representation_shift"]["computed"]
    assert not report["criteria"]["computed"]
    missing = {n["section"] for n in report["not_computed"]}
    assert {"representation_shift", "criteria", "tsae_window"} <= missing
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert _sections(html) == set(SECTIONS)
    assert {"pair_cosines", "per_atom", "babel", "rip", "recovery"} <= set(_figures(html))
    assert "needs activations" in html


@pytest.mark.sensitive
def test_verify_neurons(tmp_path, capsys):
    rc, out, _ = _run(capsys, "neurons:576", "--out", str(tmp_path), "--budget-s", "3",
                      "--json")
    assert rc == 0
    report = json.loads(out)
    assert report["coherence"]["aip"]["mu"] == 0.0
    assert report["spark"]["lower"] is None  # +∞ → null in strict JSON: an orthonormal basis
    # δ_k = 0; the certified upper sides carry only the float32 error bound of the Gram sweep
    for b in report["rip"]["brackets"]:
        assert b["delta_lower"] == 0.0 and 0.0 <= b["delta_upper"] < 1e-2
    assert (tmp_path / "report.html").exists()


def test_corrupt_target_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    D = np.random.default_rng(0).standard_normal((8, 20))
    np.save(bad, D)
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated
    out = tmp_path / "report"
    rc, stdout, err = _run(capsys, str(bad), "--out", str(out))
    assert rc == 2
    assert stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0]
    assert not out.exists()


def test_non_finite_activations_exit_2(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "D.npy", rng.standard_normal((8, 20)))
    X = rng.standard_normal((100, 8))
    X[5, 3] = np.nan
    np.save(tmp_path / "X.npy", X)
    rc, _, err = _run(capsys, str(tmp_path / "D.npy"), "--acts", str(tmp_path / "X.npy"),
                      "--out", str(tmp_path / "r"))
    assert rc == 2 and "X.npy" in err and "non-finite" in err
    assert not (tmp_path / "r").exists()


def test_a_failed_write_leaves_the_previous_report(tmp_path, monkeypatch, quick):
    report, _, _ = quick
    write_report(report, tmp_path)
    before = (tmp_path / "report.json").read_bytes()
    import rip_atoms.report.html as html_mod

    def boom(*_a, **_k):
        raise RuntimeError("disk full while rendering")

    monkeypatch.setattr(html_mod, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_report({**report, "seed": 99}, tmp_path)
    assert (tmp_path / "report.json").read_bytes() == before
    assert not list(Path(tmp_path).glob(".*.tmp"))


# ------------------------------------------------------------------ SAE targets (torch extra)
def _planted_sae_weights(H=24, N=64, seed=0):
    """A JumpReLU SAE whose decoder is a planted atom set and whose encoder is the TSAE
    encoder of the theorem (W_enc = D̂ᵀ), with activations generated from it."""
    from rip_atoms.synthetic import planted_atoms

    p = planted_atoms(H, N, 2, 3000, seed=seed)
    D = p.dictionary.atoms  # unit columns
    W_dec = D.T.astype(np.float32)  # N×H
    W_enc = D.astype(np.float32)  # H×N
    b_enc = np.zeros(N, np.float32)
    b_dec = np.zeros(H, np.float32)
    theta = np.full(N, 0.5, np.float32)
    return p, dict(W_enc=W_enc, W_dec=W_dec, b_enc=b_enc, b_dec=b_dec, threshold=theta)


def test_verify_saelens_folder_with_activations(tmp_path, capsys):
    pytest.importorskip("torch")
    from safetensors.numpy import save_file

    p, w = _planted_sae_weights()
    folder = tmp_path / "sae"
    folder.mkdir()
    H, N = w["W_dec"].shape[1], w["W_dec"].shape[0]
    cfg = {"d_in": H, "d_sae": N, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "none", "architecture": "jumprelu",
           "metadata": {"sae_lens_version": "6.2.0", "hook_name": "blocks.3.hook_resid_post"}}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(w, str(folder / "sae_weights.safetensors"))
    np.save(tmp_path / "acts.npy", p.activations.astype(np.float32))
    rc, out, _ = _run(capsys, str(folder), "--acts", str(tmp_path / "acts.npy"), "--out",
                      str(tmp_path / "r"), "--budget-s", "4", "--json")
    assert rc == 0
    report = json.loads(out)
    assert report["target"]["kind"] == "sae"
    assert report["representation_shift"]["computed"]
    assert report["criteria"]["computed"]
    assert report["tsae_window"]["computed"]
    assert report["tsae_window"]["check"]["n_latents"] == N
    rows = {r["kind"]: r for r in report["criteria"]["rows"]}
    assert rows["neurons"]["r2_aip"] == pytest.approx(1.0, abs=1e-9)
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert set(_figures(html)) == set(FIGURES)


def test_verify_gemma_scope_params_npz(tmp_path, capsys):
    pytest.importorskip("torch")
    _, w = _planted_sae_weights(H=20, N=48, seed=1)
    path = tmp_path / "gemma-scope-2b-pt-res" / "layer_5" / "width_16k" / "average_l0_2"
    path.mkdir(parents=True)
    np.savez(path / "params.npz", **w)
    rc, out, _ = _run(capsys, str(path / "params.npz"), "--out", str(tmp_path / "r"),
                      "--budget-s", "3", "--json")
    assert rc == 0
    report = json.loads(out)
    assert report["dictionary"]["n_atoms"] == 48 and report["dictionary"]["dim"] == 20
    assert report["target"]["context"]["sae"]["architecture"] == "jumprelu"
    # thresholds exist but the window needs code magnitudes: said, not guessed
    assert not report["tsae_window"]["computed"]
    assert "activations" in report["tsae_window"]["why"]
    assert (tmp_path / "r" / "report.html").exists()


@pytest.mark.sensitive
def test_dead_duplicate_and_independent_atoms_are_said(tmp_path):
    """A zero atom is left out (and said), a duplicate pair makes spark = 2 exactly with the
    pair as its witness, and N < H (independent atoms) gives spark = ∞ under the raw metric
    (the self metric is singular, which the report says)."""
    from rip_atoms.dictionary import Dictionary
    from rip_atoms.report import VerifyTarget, build_report

    rng = np.random.default_rng(3)
    D = rng.standard_normal((16, 40))
    D[:, 5] = 0.0
    D[:, 9] = -2.0 * D[:, 2]
    rep = build_report(VerifyTarget(Dictionary(D), "dead+dup"), budget_s=2)
    assert rep["dictionary"]["dead_atoms"] == [5]
    assert any("dead" in v for v in rep["verdict"])
    assert rep["spark"]["lower"] == rep["spark"]["upper"] == 2
    assert sorted(rep["spark"]["witness"]) == [2, 9]
    assert [sorted(p[:2]) for p in rep["coherence"]["aip"]["duplicate_pairs"]] == [[2, 9]]
    assert 5 not in {i for b in rep["rip"]["brackets"] for i in b["witness_U"]}

    tall = build_report(VerifyTarget(Dictionary(rng.standard_normal((30, 12))), "tall"),
                        budget_s=2)
    assert tall["metric"]["key"] == "raw"
    assert any(n["section"] == "metric" for n in tall["not_computed"])
    assert tall["spark"]["lower"] == float("inf")
    assert tall["reference"]["welch_bound"] == 0.0
    assert tall["recovery"]["k_weak"] is None


@pytest.mark.sensitive
def test_the_search_budget_is_shared_and_kept():
    """--budget-s B is the whole report's wall time: the exact parts run first, the budgeted
    parts (RIP, spark, margins, probe, the sampled reference) share what is left; what one
    leaves unused goes to the next, an overrun is taken from the rest, each gets ≥ 1 % of B,
    and the report ends at B up to one unit of work."""
    from rip_atoms.dictionary import Dictionary
    from rip_atoms.report.budget import BUDGET_SHARES, SearchBudget
    from rip_atoms.report.build import VerifyTarget, build_report

    assert list(BUDGET_SHARES) == ["rip", "spark", "margins", "probe", "reference"]
    assert sum(BUDGET_SHARES.values()) == pytest.approx(1.0)
    sb = SearchBudget(10.0)
    sb.charge("exact parts", 2.0)
    assert sb.grant("rip")["budget_s"] == pytest.approx(8.0 * 0.35)
    sb.charge("rip", 1.0)  # 1.8 s unused: shared by the rest in proportion
    assert sb.grant("spark")["budget_s"] == pytest.approx(7.0 * 0.15 / 0.65)
    sb.charge("spark", 5.0)  # an overrun is taken from the rest
    assert sb.grant("margins")["budget_s"] == pytest.approx(2.0 * 0.15 / 0.5)
    sb.charge("margins", 5.0)  # B is spent: the rest get the 1 % floor
    assert sb.grant("probe")["budget_s"] == pytest.approx(0.1)
    assert sb.grant("reference")["budget_s"] == pytest.approx(0.1)
    D = np.random.default_rng(3).standard_normal((40, 400))
    # a process's one-time costs are not units of work: the first ℓ1 probe of a process imports
    # scikit-learn (1.4 s here, outside any grant), so a warm-up report pays them first and the
    # budget is checked on the reports after it (on 2 cores kept busy, a cold report spent
    # 4.85 s of B = 3 s, the next one 2.35 s)
    build_report(VerifyTarget(Dictionary(D), "gaussian"), budget_s=3.0, seed=0)
    rep = build_report(VerifyTarget(Dictionary(D), "gaussian"), budget_s=3.0, seed=0)
    used = rep["search_budget"]
    assert used["spent_s"] <= 3.0 + 1.5, used
    assert rep["seconds"]["total"] <= 3.0 + 1.5, rep["seconds"]
    assert set(used["used_s"]) <= set(BUDGET_SHARES) | {"exact parts"}
    # started: B counts from the caller's preparation (the CLI: loading, the metric fit)
    import time

    rep2 = build_report(VerifyTarget(Dictionary(D), "gaussian"), budget_s=3.0, seed=0,
                        started=time.perf_counter() - 2.0)
    used2 = rep2["search_budget"]
    assert used2["used_s"]["exact parts"] >= 2.0
    assert used2["spent_s"] <= 3.0 + 1.5, used2
    assert rep2["seconds"]["total"] <= 1.0 + 1.5, rep2["seconds"]


def test_one_registry_orders_the_json_the_page_and_the_summary(quick):
    """Every section is one registry entry: report.json's sections come in registry order, the
    page's ids are its keys through anchor(), and the summary names only registered sections."""
    from rip_atoms.report.context import anchor
    from rip_atoms.report.sections import REPORT_SECTIONS, SUMMARY_ORDER

    report, html, _ = quick
    computed = [s.key for s in REPORT_SECTIONS if s.computes]
    assert [k for k in report if k in computed] == computed
    page = [anchor(s.key) for s in REPORT_SECTIONS if s.html is not None]
    assert re.findall(r'<section id="([\w-]+)">', html) == page == list(SECTIONS)
    assert set(SUMMARY_ORDER) == {s.key for s in REPORT_SECTIONS if s.text is not None}
    assert len({s.key for s in REPORT_SECTIONS}) == len(REPORT_SECTIONS)


def test_a_budget_part_is_granted_on_entry_and_charged_on_exit():
    import time

    from rip_atoms.report.budget import SearchBudget

    sb = SearchBudget(100.0, effort=1000)
    with sb.part("rip") as deadline:
        assert deadline.effort == 350 and deadline.search_arguments()["effort"] == 350
        deadline.count({"used": 100.0, "cap_hit": False})
        deadline.count({"used": 20.5, "cap_hit": True})
        assert deadline.left() == 229.5 and deadline.search_arguments()["effort"] == 229
    with sb.part("spark"):  # no search ran: a work budget charges nothing
        pass
    sb.skip("margins")
    rec = sb.to_dict()
    assert rec["used"] == {"rip": 120.5} and rec["spent"] == 120.5 and rec["cap_hit"] == ["rip"]
    assert list(rec["granted"]) == ["rip", "spark", "margins"]
    # a time budget: the part's wall seconds from entry, whether or not a search ran
    sb = SearchBudget(10.0)
    with sb.part("rip") as deadline:
        assert deadline.budget_s == pytest.approx(3.5)
        time.sleep(0.01)
    assert 0.01 <= sb.to_dict()["used_s"]["rip"] < 1.0
