"""Activation harvesting on a tiny random Llama saved as a local Hugging Face folder (a real
``AutoModelForCausalLM`` + fast tokenizer, loaded through the same path as any local model).

Checked against transformers' own ``output_hidden_states`` (block L's output is
``hidden_states[L+1]``; at the last block HF applies the final norm, which we must not):
positions < skip_first are dropped, blocks above the deepest requested one never run, shards and
manifest are consistent and verified, a stopped or SIGKILLed harvest resumes to exactly the
files of an uninterrupted one, corrupt shards are detected (and re-harvested on resume), and the
end-to-end ``rip-atoms atoms`` runs on saved activations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tiny_llm import make_tiny_llm  # noqa: E402

from rip_atoms.errors import ParameterError, ParameterTypeError  # noqa: E402
from rip_atoms.sae import CheckpointError, CorruptShardError, SparseAutoencoder, save_sae  # noqa: E402
from rip_atoms.sae.harvest import ActivationStore, harvest, load_texts  # noqa: E402
from rip_atoms.sae.model import load_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random Llama + character tokenizer saved as a Hugging Face folder."""
    pytest.importorskip("transformers")
    return make_tiny_llm(tmp_path_factory.mktemp("tiny_llm"), n_layers=4)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(str(tiny_dir))


def test_matches_hidden_states_and_drops_position_zero(tiny, tiny_dir, tmp_path):
    res = harvest(tiny, [1, 3], tmp_path / "h", n_tokens=300, texts=tiny_dir / "text.txt",
                  context_size=32, batch_contexts=3, shard_tokens=100, prepend_bos=True,
                  progress=False)
    assert res.complete and res.n_tokens == 300 and res.d_model == 32
    store = ActivationStore(tmp_path / "h")
    A1, A3 = store.array(1), store.array(3)
    assert A1.shape == A3.shape == (300, 32)
    with pytest.raises(ParameterError, match=r"holds layers \[1, 3\]; choose one"):
        store.array()  # two layers: the store asks which, for every command that reads it
    # reference: transformers' own hidden states on the same contexts
    from rip_atoms.sae.harvest import token_contexts

    _, docs = load_texts(tiny_dir / "text.txt")
    ctx, bos = token_contexts(tiny.tokenizer, docs, 32, prepend_bos=True)
    assert bos == 0 and (ctx[:, 0] == 0).all()
    n_ctx = -(-300 // 31)
    with torch.no_grad():
        out = tiny.model(input_ids=torch.from_numpy(ctx[:n_ctx]), output_hidden_states=True)
    hs = out.hidden_states
    ref1 = hs[2][:, 1:, :].reshape(-1, 32)[:300].numpy()
    np.testing.assert_allclose(A1, ref1, rtol=1e-5, atol=1e-5)
    # last block: our hook sees the raw block output; HF's hidden_states[-1] is normed
    normed = tiny.model.model.norm(torch.from_numpy(A3)).detach().numpy()
    ref3 = hs[4][:, 1:, :].reshape(-1, 32)[:300].numpy()
    np.testing.assert_allclose(normed, ref3, rtol=1e-4, atol=1e-4)
    assert not np.allclose(A3, ref3, atol=1e-3)
    man = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert man["hook_names"] == {"1": "blocks.1.hook_resid_post",
                                 "3": "blocks.3.hook_resid_post"}
    assert man["skip_first"] == 1 and man["prepend_bos"] is True
    assert sum(s["n_tokens"] for s in man["shards"]) == 300 and len(man["shards"]) == 2


def test_bos_is_prepended_when_the_tokenizer_does(tiny, tiny_dir, tmp_path):
    from rip_atoms.sae.harvest import token_contexts, tokenizer_adds_bos

    assert not tokenizer_adds_bos(tiny.tokenizer)  # a bare WordLevel tokenizer adds nothing
    _, docs = load_texts(tiny_dir / "text.txt")
    ctx, bos = token_contexts(tiny.tokenizer, docs, 32)
    assert bos is None and (ctx[:, 0] != 0).any()
    harvest(tiny, [1], tmp_path / "h", n_tokens=62, texts=tiny_dir / "text.txt",
            context_size=32, progress=False)
    man = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert man["prepend_bos"] is False and man["tokens_per_context"] == 31


def test_blocks_above_the_deepest_are_skipped(tiny, tiny_dir, tmp_path):
    calls = {"above": 0}
    h = tiny.blocks[3].register_forward_hook(lambda *a: calls.__setitem__("above",
                                                                            calls["above"] + 1))
    try:
        harvest(tiny, [1], tmp_path / "h", n_tokens=100, texts=tiny_dir / "text.txt",
                context_size=32, progress=False)
    finally:
        h.remove()
    assert calls["above"] == 0


def test_stopped_harvest_resumes_to_identical_files(tiny, tiny_dir, tmp_path):
    kw = dict(n_tokens=400, texts=tiny_dir / "text.txt", context_size=32, batch_contexts=2,
              shard_tokens=62, progress=False)
    full = harvest(tiny, [2], tmp_path / "full", **kw)
    part = harvest(tiny, [2], tmp_path / "part", stop_after_shards=2, **kw)
    assert not part.complete and part.n_shards == 2
    done = harvest(tiny, [2], tmp_path / "part", **kw)
    assert done.complete and done.resumed_tokens == part.n_tokens
    np.testing.assert_array_equal(ActivationStore(tmp_path / "full").array(2),
                                  ActivationStore(tmp_path / "part").array(2))
    a = json.loads((tmp_path / "full" / "manifest.json").read_text())["shards"]
    b = json.loads((tmp_path / "part" / "manifest.json").read_text())["shards"]
    assert a == b
    assert full.n_shards == done.n_shards


def test_corrupt_shards_are_detected_and_reharvested(tiny, tiny_dir, tmp_path):
    kw = dict(n_tokens=300, texts=tiny_dir / "text.txt", context_size=32, shard_tokens=100,
              progress=False)
    harvest(tiny, [1], tmp_path / "h", **kw)
    good = ActivationStore(tmp_path / "h").array(1)
    first = json.loads((tmp_path / "h" / "manifest.json").read_text())["shards"][0]
    shard = tmp_path / "h" / "layer_01" / "shard_00001.npy"
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptShardError, match=r"shard_00001\.npy.*checksum"):
        ActivationStore(tmp_path / "h").array(1)
    shard.write_bytes(bytes(raw[:200]))
    with pytest.raises(CorruptShardError, match=r"shard_00001\.npy"):
        ActivationStore(tmp_path / "h").array(1)
    res = harvest(tiny, [1], tmp_path / "h", **kw)  # resume: redo from the bad shard on
    assert res.resumed_tokens == first["n_tokens"]
    np.testing.assert_array_equal(ActivationStore(tmp_path / "h").array(1), good)


def test_resume_with_other_settings_is_refused(tiny, tiny_dir, tmp_path):
    harvest(tiny, [1], tmp_path / "h", n_tokens=60, texts=tiny_dir / "text.txt",
            context_size=32, progress=False)
    with pytest.raises(CheckpointError, match="context_size"):
        harvest(tiny, [1], tmp_path / "h", n_tokens=60, texts=tiny_dir / "text.txt",
                context_size=16, progress=False)
    with pytest.raises(ParameterError, match="out of range"):
        harvest(tiny, [4], tmp_path / "x", n_tokens=60, texts=tiny_dir / "text.txt",
                progress=False)


def test_held_out_tokens_are_whole_contexts(tiny, tiny_dir, tmp_path):
    harvest(tiny, [1], tmp_path / "h", n_tokens=31 * 20, texts=tiny_dir / "text.txt",
            context_size=32, progress=False)
    store = ActivationStore(tmp_path / "h")
    mask = store.held_out_mask(store.n_tokens, 0.25)
    per_ctx = mask.reshape(20, 31)
    assert (per_ctx.all(axis=1) | ~per_ctx.any(axis=1)).all()  # all or nothing per context
    assert per_ctx.all(axis=1).sum() == 5
    tr, te = store.split(1, held_out=0.25)
    assert tr.shape[0] + te.shape[0] == store.n_tokens and te.shape[0] == 5 * 31


def test_text_sources(tmp_path):
    label, docs = load_texts(None)
    assert label == "pydoc_data.topics" and len(docs) > 50
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n')
    assert load_texts(tmp_path / "a.jsonl")[1] == ["one", "two"]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.md").write_text("bee")
    (tmp_path / "d" / "a.txt").write_text("ay")
    assert load_texts(tmp_path / "d")[1] == ["ay", "bee"]
    (tmp_path / "bad.jsonl").write_text('{"no": 1}\n')
    with pytest.raises(Exception, match=r"bad\.jsonl.*line 1"):
        load_texts(tmp_path / "bad.jsonl")


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "rip_atoms", *map(str, args)]


def test_cli_harvest_killed_and_resumed(tiny, tiny_dir, tmp_path):
    common = ["--model", tiny_dir, "--layers", "1,2", "--tokens", 1500, "--text",
              tiny_dir / "text.txt", "--context", 32, "--batch", 1, "--shard-tokens", 31,
              "--quiet"]
    victim = subprocess.Popen(_cli("harvest", "--out", tmp_path / "k", *common),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    man = tmp_path / "k" / "manifest.json"
    deadline = time.time() + 120
    while victim.poll() is None and time.time() < deadline:
        if man.exists() and len(json.loads(man.read_text())["shards"]) >= 3:
            break
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    written = json.loads(man.read_text())
    assert not written["complete"]
    r = subprocess.run(_cli("harvest", "--out", tmp_path / "k", *common, "--json"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] and out["resumed_tokens"] >= 3 * 31 and out["n_tokens"] == 1500
    harvest(tiny, [1, 2], tmp_path / "u", n_tokens=1500, texts=tiny_dir / "text.txt",
            context_size=32, batch_contexts=1, shard_tokens=31, progress=False)
    for layer in (1, 2):
        np.testing.assert_array_equal(ActivationStore(tmp_path / "k").array(layer),
                                      ActivationStore(tmp_path / "u").array(layer))


def test_atoms_on_saved_activations_and_d_in_mismatch(tiny, tiny_dir, tmp_path):
    harvest(tiny, [2], tmp_path / "acts", n_tokens=1500, texts=tiny_dir / "text.txt",
            context_size=32, progress=False)
    r = subprocess.run(_cli("atoms", "--acts", tmp_path / "acts", "--width", 64, "--target-l0",
                            4, "--steps", 60, "--batch", 128, "--l1-tokens", 8, "--out",
                            tmp_path / "run", "--json"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    rows = {row["name"]: row for row in out["table"]["rows"]}
    assert set(rows) == {"neurons", "features", "atoms"}
    assert rows["neurons"]["r2_euclidean"] == pytest.approx(1.0)
    assert rows["neurons"]["r2_aip"] == pytest.approx(1.0)
    assert out["n_eval_tokens"] > 0 and out["n_train_tokens"] + out["n_eval_tokens"] == 1500
    assert (tmp_path / "run" / "atoms" / "cfg.json").exists()
    assert (tmp_path / "run" / "features" / "sae_weights.safetensors").exists()
    # a Gemma-Scope-layout params.npz as the features row (no features training)
    rng = np.random.default_rng(0)
    gs = tmp_path / "layer_2" / "width_64" / "average_l0_5"
    gs.mkdir(parents=True)
    W = rng.standard_normal((32, 64)).astype(np.float32) / 6
    np.savez_compressed(gs / "params.npz", W_enc=W, W_dec=W.T.copy(),
                        b_enc=np.zeros(64, np.float32), b_dec=np.zeros(32, np.float32),
                        threshold=np.full(64, 0.5, np.float32))
    r = subprocess.run(_cli("atoms", "--acts", tmp_path / "acts", "--features",
                            gs / "params.npz", "--width", 64, "--target-l0", 4, "--steps", 40,
                            "--batch", 128, "--l1-tokens", 4, "--out", tmp_path / "gs",
                            "--json", "--quiet"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    names = [row["name"] for row in out["table"]["rows"]]
    assert names == ["neurons", "features (gemma_scope)", "atoms"]
    assert "features" not in out["training"] and not (tmp_path / "gs" / "features").exists()
    # an SAE for another width as the features row: exit 2, one line naming the file
    bad = SparseAutoencoder("standard", W_enc=rng.standard_normal((48, 96)),
                            W_dec=rng.standard_normal((96, 48)), b_dec=np.zeros(48),
                            b_enc=np.zeros(96))
    save_sae(bad, tmp_path / "wide")
    r = subprocess.run(_cli("atoms", "--acts", tmp_path / "acts", "--features",
                            tmp_path / "wide", "--out", tmp_path / "run2", "--json"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and str(tmp_path / "wide") in line and "d_in = 48" in line


def test_atoms_refuses_an_sae_of_the_wrong_width_before_loading_the_model(tmp_path):
    rng = np.random.default_rng(0)
    wide = SparseAutoencoder("jumprelu", W_enc=rng.standard_normal((2304, 64)),
                             W_dec=rng.standard_normal((64, 2304)), b_dec=np.zeros(2304),
                             b_enc=np.zeros(64), threshold=np.ones(64))
    save_sae(wide, tmp_path / "gemma_like")
    r = subprocess.run(_cli("atoms", "--model", "smollm2", "--layer", 15, "--features",
                            tmp_path / "gemma_like", "--out", tmp_path / "run", "--quiet"),
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RIP_ATOMS_CACHE": str(tmp_path / "no_cache")})
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "d_in = 2304" in line and "d_model = 576" in line
    assert not (tmp_path / "no_cache").exists()  # nothing was downloaded


# ---------------------------------------------------------------------- token provenance
def test_provenance_names_every_token(tiny, tiny_dir, tmp_path):
    from rip_atoms.sae.harvest import token_contexts

    harvest(tiny, [1], tmp_path / "h", n_tokens=200, texts=tiny_dir / "text.txt",
            context_size=32, shard_tokens=70, prepend_bos=True, progress=False)
    store = ActivationStore(tmp_path / "h")
    prov = store.provenance()
    assert prov is not None and len(prov) == store.n_tokens == 200
    ctx, _ = token_contexts(tiny.tokenizer, [(tiny_dir / "text.txt").read_text()], 32,
                            prepend_bos=True)
    np.testing.assert_array_equal(prov.token_ids, ctx[prov.context, prov.position])
    assert prov.position.min() == 1 and prov.context[0] == 0  # position 0 (BOS) is skipped
    assert prov.text(prov.token_ids[0]) == tiny.tokenizer.decode([int(prov.token_ids[0])])
    man = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert tiny.name in man["tokenizer"] and prov.tokenizer == man["tokenizer"]
    assert all(sh["provenance"]["rows"] == sh["n_tokens"] for sh in man["shards"])
    assert store.provenance_missing() is None


def test_provenance_resumes_and_is_checksummed(tiny, tiny_dir, tmp_path):
    kw = dict(n_tokens=300, texts=tiny_dir / "text.txt", context_size=32, shard_tokens=100,
              progress=False)
    harvest(tiny, [1], tmp_path / "full", **kw)
    harvest(tiny, [1], tmp_path / "h", stop_after_shards=1, **kw)
    harvest(tiny, [1], tmp_path / "h", **kw)  # resumed
    full, part = ActivationStore(tmp_path / "full"), ActivationStore(tmp_path / "h")
    np.testing.assert_array_equal(full.provenance().token_ids, part.provenance().token_ids)
    np.testing.assert_array_equal(full.provenance().context, part.provenance().context)
    f = tmp_path / "h" / "tokens" / "shard_00001.npy"
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(CorruptShardError, match=r"tokens/shard_00001\.npy.*checksum"):
        ActivationStore(tmp_path / "h").provenance()
    first = json.loads((tmp_path / "h" / "manifest.json").read_text())["shards"][0]
    res = harvest(tiny, [1], tmp_path / "h", **kw)  # resume redoes the shard from there on
    assert res.resumed_tokens == first["n_tokens"]
    np.testing.assert_array_equal(ActivationStore(tmp_path / "h").provenance().token_ids,
                                  full.provenance().token_ids)


def test_provenance_that_does_not_match_its_shard_is_an_error(tiny, tiny_dir, tmp_path):
    from rip_atoms.errors import FileFormatError
    from rip_atoms.sae.provenance import sha256_file

    harvest(tiny, [1], tmp_path / "h", n_tokens=120, texts=tiny_dir / "text.txt",
            context_size=32, shard_tokens=60, progress=False)
    man_path = tmp_path / "h" / "manifest.json"
    man = json.loads(man_path.read_text())
    f = tmp_path / "h" / man["shards"][0]["provenance"]["path"]
    np.save(f, np.load(f)[:-5])  # a valid file, checksummed, with too few rows
    man["shards"][0]["provenance"].update(bytes=f.stat().st_size, sha256=sha256_file(f))
    man_path.write_text(json.dumps(man))
    with pytest.raises(FileFormatError, match=r"shard_00000\.npy.*provenance array has shape "
                                              r"\(\d+, 3\).*must be"):
        ActivationStore(tmp_path / "h").provenance()
    assert ActivationStore(tmp_path / "h").array(1).shape[0] == 120  # activations still load


def test_old_folder_without_provenance_loads_and_resume_adds_it(tiny, tiny_dir, tmp_path):
    import shutil

    kw = dict(n_tokens=120, texts=tiny_dir / "text.txt", context_size=32, shard_tokens=60,
              progress=False)
    harvest(tiny, [1], tmp_path / "h", **kw)
    want = ActivationStore(tmp_path / "h").provenance().token_ids
    man_path = tmp_path / "h" / "manifest.json"
    man = json.loads(man_path.read_text())
    for sh in man["shards"]:
        del sh["provenance"]
    for key in ("tokenizer", "token_strings"):
        del man[key]
    man_path.write_text(json.dumps(man))
    shutil.rmtree(tmp_path / "h" / "tokens")
    store = ActivationStore(tmp_path / "h")
    assert store.array(1).shape == (120, 32) and store.provenance() is None
    assert "before token provenance was recorded" in store.provenance_missing()
    res = harvest(tiny, [1], tmp_path / "h", **kw)
    assert res.resumed_tokens == 120
    np.testing.assert_array_equal(ActivationStore(tmp_path / "h").provenance().token_ids, want)


def test_harvest_config_is_the_keyword_form(tiny, tiny_dir, tmp_path):
    from rip_atoms.sae.harvest import HarvestConfig

    text = tiny_dir / "text.txt"
    cfg = HarvestConfig(n_tokens=300, context_size=32, batch_contexts=2, shard_tokens=100)
    a = harvest(tiny, [1, 2], tmp_path / "cfg", cfg, texts=text, progress=False)
    b = harvest(tiny, [1, 2], tmp_path / "kw", n_tokens=300, context_size=32, batch_contexts=2,
                shard_tokens=100, texts=text, progress=False)
    # a keyword overrides the config's field
    c = harvest(tiny, [1, 2], tmp_path / "over", HarvestConfig(n_tokens=300, context_size=16),
                context_size=32, batch_contexts=2, shard_tokens=100, texts=text,
                progress=False)
    files = sorted(p.relative_to(tmp_path / "cfg") for p in (tmp_path / "cfg").rglob("*"))
    for other in ("kw", "over"):
        assert files == sorted(p.relative_to(tmp_path / other)
                               for p in (tmp_path / other).rglob("*"))
        for rel in files:
            if (tmp_path / "cfg" / rel).is_file():
                assert (tmp_path / "cfg" / rel).read_bytes() == (
                    tmp_path / other / rel).read_bytes(), rel
    assert a.n_tokens == b.n_tokens == c.n_tokens == 300 and a.n_shards == b.n_shards == 3
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_token'"):
        harvest(tiny, [1], tmp_path / "x", n_token=3, texts=text, progress=False)


@pytest.mark.parametrize(("kw", "error", "match"), [
    ({"n_tokens": 0}, ParameterError, "n_tokens, batch_contexts, shard_tokens ≥ 1"),
    ({"n_tokens": 10, "context_size": 1}, ParameterError, "context_size ≥ 2"),
    ({"n_tokens": 10, "batch_contexts": 0}, ParameterError, "batch_contexts"),
    ({"n_tokens": 10, "shard_tokens": 0}, ParameterError, "shard_tokens"),
    ({"n_tokens": 10, "skip_first": 32, "context_size": 32}, ParameterError,
     r"skip_first must be in \[0, context_size\), got 32"),
    ({"n_tokens": 10, "skip_first": -1}, ParameterError, "skip_first"),
    ({"n_tokens": 2.5}, ParameterTypeError, "n_tokens must be an integer"),
    ({"n_tokens": True}, ParameterTypeError, "n_tokens must be an integer"),
    ({"n_tokens": 10, "prepend_bos": "yes"}, ParameterTypeError, "prepend_bos"),
])
def test_harvest_config_is_checked_when_made(kw, error, match):
    from rip_atoms.sae.harvest import HarvestConfig

    with pytest.raises(error, match=match):
        HarvestConfig(**kw)
    cfg = HarvestConfig(n_tokens=np.int64(10), prepend_bos=False)
    assert cfg.tokens_per_context == 255 and cfg.to_dict()["prepend_bos"] is False


def test_harvest_config_layers_are_checked_first(tiny, tiny_dir, tmp_path):
    with pytest.raises(ParameterError, match="out of range"):  # as before the config existed
        harvest(tiny, [9], tmp_path / "x", n_tokens=0, texts=tiny_dir / "text.txt",
                progress=False)
