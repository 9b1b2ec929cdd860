"""``rip-atoms cards`` and ``rip-atoms verify --cards`` on a tiny harvest with token provenance
(a random Llama with a character tokenizer): the cards show the real text around each firing
token; bad input is one line and exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_llm import make_tiny_llm  # noqa: E402

from rip_atoms.cli import main  # noqa: E402
from rip_atoms.sae import SparseAutoencoder, save_sae  # noqa: E402
from rip_atoms.sae.harvest import ActivationStore, harvest  # noqa: E402
from rip_atoms.sae.model import load_model  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    folder = make_tiny_llm(root / "llm", n_layers=2)
    tiny = load_model(str(folder))
    harvest(tiny, [1], root / "acts", n_tokens=1200, texts=folder / "text.txt",
            context_size=32, progress=False)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((32, 48))
    sae = SparseAutoencoder("jumprelu", W_enc=W, W_dec=W.T.copy(), b_dec=np.zeros(32),
                            b_enc=np.zeros(48), threshold=np.full(48, 0.5))
    save_sae(sae, root / "sae")
    return root


def test_cards_command_writes_cards_in_text(setup, capsys):
    root = setup
    rc = main(["cards", str(root / "sae"), "--acts", str(root / "acts"), "--atoms", "3,7",
               "--out", str(root / "out"), "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    sec = json.loads(out)
    assert sec["selection"]["named"] == [3, 7] and len(sec["pairs"]) == 10
    prov = ActivationStore(root / "acts").provenance()
    card = sec["cards"]["3"]
    for t in card["top"]:  # the marked token is the real character at that row
        assert t["token"] == prov.text(prov.token_ids[t["row"]])
        assert t["token"] in "The quick brown fox jumps over the lazy dog. Sphinx of black " \
                             "quartz, judge my vow! Pack my box with five dozen liquor jugs. "
    page = (root / "out" / "cards.html").read_text(encoding="utf-8")
    assert "id='card-3'" in page and "<mark>" in page
    assert json.loads((root / "out" / "cards.json").read_text())["tokens"] == 1200


def test_cards_bad_input_is_one_line(setup, capsys, tmp_path):
    root = setup
    np.save(tmp_path / "x.npy", np.zeros((10, 32), np.float32))
    for argv, what in [
        (["cards", str(root / "sae"), "--acts", str(tmp_path / "x.npy")], "no token provenance"),
        (["cards", str(root / "sae"), "--acts", str(root / "acts"), "--atoms", "1,,2"],
         "empty item"),
        (["cards", str(root / "sae"), "--acts", str(root / "acts"), "--atoms", "99"],
         "out of range"),
    ]:
        rc = main([*argv, "--out", str(tmp_path / "o"), "--quiet"])
        _, err = capsys.readouterr()
        assert rc == 2 and what in err and err.count("\n") == 1, err


def test_verify_with_a_harvest_folder_shows_cards(setup, capsys):
    root = setup
    rc = main(["verify", str(root / "sae"), "--acts", str(root / "acts"), "--cards", "5",
               "--out", str(root / "rep"), "--budget-s", "3", "--quiet", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["cards"]["computed"] and "5" in rep["cards"]["cards"]
    assert rep["answer"]["computed"] and rep["criteria"]["proxy"]["computed"]
    # the evaluated tokens are the last 20 % of the harvest: the card rows are theirs
    n = ActivationStore(root / "acts").n_tokens
    assert rep["cards"]["provenance"]["n_tokens"] == n - round(0.8 * n)


def test_verify_cards_out_of_range_fails_before_any_work(setup, capsys):
    root = setup
    rc = main(["verify", str(root / "sae"), "--acts", str(root / "acts"), "--cards", "48",
               "--out", str(root / "bad"), "--quiet"])
    _, err = capsys.readouterr()
    assert rc == 2 and "--cards: atom 48 out of range" in err and err.count("\n") == 1
    assert not (root / "bad").exists()
