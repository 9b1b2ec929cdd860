"""The answer block, the atom cards and the proxy column in a real report (build_report on
planted atoms with synthetic token provenance), checked with an HTML parser; and in a real
browser (headless Chromium) when one is installed."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rip_atoms.criteria import UnitSet
from rip_atoms.criteria.atom_cards import TokenProvenance
from rip_atoms.metric import fit_metric
from rip_atoms.report import SECTIONS, VerifyTarget, build_report, write_report
from rip_atoms.synthetic import planted_atoms


class _Page(HTMLParser):
    """Sections, their classes and text: enough to assert the page's structure."""

    def __init__(self):
        super().__init__()
        self.sections: list[str] = []
        self.ids: set[str] = set()
        self.classes: dict[str, int] = {}
        self.marks = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"])
        if "id" in a:
            self.ids.add(a["id"])
        for c in (a.get("class") or "").split():
            self.classes[c] = self.classes.get(c, 0) + 1
        self.marks += tag == "mark"

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    p = planted_atoms(48, 160, 3, 4000, seed=1)
    X = np.asarray(p.activations)
    metric = fit_metric(X[:3000])
    X_eval, codes = X[3000:], p.codes[3000:]
    rng = np.random.default_rng(0)
    n = X_eval.shape[0]  # 1000 tokens: 20 contexts of 50
    prov = TokenProvenance(rng.integers(0, 40, size=n), np.repeat(np.arange(20), 50),
                           np.tile(np.arange(50), 20), strings={t: f" w{t}" for t in range(40)},
                           tokenizer="planted")
    unit = UnitSet.from_codes("atoms", p.dictionary, codes, kind="atoms")
    t = VerifyTarget(dictionary=p.dictionary, description="planted with tokens",
                     activations=X_eval, metric=metric, unit=unit, nonneg=True,
                     provenance=prov, card_atoms=[5, 17])
    rep = build_report(t, budget_s=4.0, seed=0)
    out = tmp_path_factory.mktemp("cards")
    write_report(rep, out)
    return rep, out


@pytest.mark.sensitive
def test_answer_cards_and_proxy_in_the_json(report_dir):
    rep, _ = report_dir
    ans = rep["answer"]
    assert ans["computed"] and ans["thresholds"] == {"r2_aip": 0.999, "q_star_quantile": 0.998}
    assert [r["unit_set"] for r in ans["rows"]] == ["neurons", "atoms"]
    for r in ans["rows"]:
        assert {c["key"] for c in r["criteria"]} == {"r2_aip", "q_star_quantile"}
        assert r["what_would_change"]
    cards = rep["cards"]
    assert cards["computed"] and len(cards["pairs"]) == 10
    assert {"5", "17"} <= set(cards["cards"]) and cards["selection"]["named"] == [5, 17]
    assert set(rep["criteria"]["proxy"]["units"]) == {"neurons", "atoms"}
    m = rep["recovery"]["margins"]
    # the margins are tightened under their share of the budget: some are, unless that share
    # ran out first (a slow machine); either way none is looser than the classifier's bound
    assert m["computed"] and (m["tightened"] > 0 or m["seconds"] > m["budget_s"]), m
    for mg, cb in zip(m["margin"], m["certificate_bound"], strict=True):
        if mg is not None and cb is not None:
            assert mg <= cb + 1e-12
    note = rep["representation_shift"]["aip_angle_note"]
    assert "guaranteed" in note["guaranteed"] and note["isotropic_std"] == pytest.approx(48 ** -.5)


def test_page_structure_with_an_html_parser(report_dir):
    rep, out = report_dir
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.sections == list(SECTIONS)  # every section, in page order, the answer first
    assert page.sections[0] == "answer"
    assert page.classes.get("pass", 0) + page.classes.get("fail", 0) >= 4  # 2 rows × 2 criteria
    a, b = rep["cards"]["pairs"][0]["units"]
    assert f"pair-{a}-{b}" in page.ids and "card-5" in page.ids and "card-17" in page.ids
    n_cards = page.classes["card"]
    assert n_cards >= 20 and page.marks >= n_cards  # each context marks its firing token
    text = "".join(page.text)
    assert "proxy: modal share / entropy (bits)" in text and "Uniqueness margins" in text
    assert "What the metric guarantees" in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "headless_shell"):
        path = shutil.which(name)
        if path:
            return path
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        return None
    import glob

    cache = Path.home() / ".cache" / "ms-playwright"
    hits = sorted(glob.glob(str(cache / "chromium*" / "chrome-linux*" / "chrome")))
    return hits[-1] if hits else None


def test_page_renders_in_headless_chromium(report_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed")
    _, out = report_dir
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _Page()
    page.feed(dom.stdout)
    assert page.sections == list(SECTIONS) and page.classes.get("card", 0) >= 20
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,1600",
                    (out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
