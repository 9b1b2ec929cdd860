"""Harvest throughput on SmolLM2-135M (CPU), or on a random-weight Gemma-2-2B-shaped model (GPU):
tokens/s written to shards.

Ours: ``rip_atoms.sae.harvest.harvest`` (forward hooks, blocks above the deepest requested layer
skipped, shards + manifest + checksums). Peer: the plain transformers recipe — a full forward with
``output_hidden_states=True`` on the same contexts, keeping ``hidden_states[L + 1]`` in memory
(no files). Same contexts, same batch, same thread count, in one invocation.

``--random-config gemma2-2b`` builds the model with ``AutoModelForCausalLM.from_config`` from a
``Gemma2Config`` with the real Gemma-2-2B sizes (26 blocks, d = 2304, MLP 9216, 8 heads / 4 KV
heads of 256, vocabulary 256000) and random weights, directly on ``--device`` in ``--dtype``
(bfloat16 by default there): the architecture's cost without downloading its weights. Its
tokenizer is a byte-level stand-in (ids = bytes + 3, BOS 2, EOS 1; no download), so the text is
the same pydoc topics. ``gemma2-tiny`` is the same architecture at toy sizes (CPU tests).

    .venv/bin/python benchmarks/harvest.py                         # layer 15, 8192 tokens
    .venv/bin/python benchmarks/harvest.py --layer 29 --tokens 4096 --threads 1
    python benchmarks/harvest.py --random-config gemma2-2b --device cuda --layer 12 \
        --tokens 65536 --context 1024 --batch 8 --repeat 1          # benchmarks/gpu.sh
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

#: Gemma-2-2B's sizes (google/gemma-2-2b config.json) and a toy one of the same architecture
GEMMA2_SIZES = {
    "gemma2-2b": dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216,
                      num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
                      head_dim=256, sliding_window=4096, query_pre_attn_scalar=256,
                      final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                      max_position_embeddings=8192, hidden_activation="gelu_pytorch_tanh"),
    "gemma2-tiny": dict(vocab_size=259, hidden_size=64, intermediate_size=128,
                        num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1,
                        head_dim=32, sliding_window=64, query_pre_attn_scalar=32,
                        final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                        max_position_embeddings=1024, hidden_activation="gelu_pytorch_tanh"),
}


class ByteTokenizer:
    """A download-free stand-in tokenizer: token id = UTF-8 byte + 3 (0 pad, 1 EOS, 2 BOS)."""

    name_or_path = "bytes+3"
    bos_token_id, eos_token_id, pad_token_id = 2, 1, 0

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = [b + 3 for b in text.encode("utf-8")]
        return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + ids}

    def decode(self, ids) -> str:
        return bytes(int(i) - 3 for i in ids if int(i) >= 3).decode("utf-8", errors="replace")


def random_model(which: str, device: str, dtype: torch.dtype):
    """A LoadedModel around a random-weight Gemma-2 built on ``device`` (no download)."""
    import transformers

    from rip_atoms.kernels.torch_gram import resolve_device
    from rip_atoms.sae.model import LoadedModel, find_blocks

    dev = resolve_device(device)
    cfg = transformers.Gemma2Config(**GEMMA2_SIZES[which])
    with dev:
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.eval()
    path, blocks = find_blocks(model)
    return LoadedModel(model=model, tokenizer=ByteTokenizer(), blocks=blocks, blocks_path=path,
                       name=f"random-weight {which} ({dtype}, "
                            f"{getattr(cfg, '_attn_implementation', None) or 'default'} "
                            "attention)",
                       d_model=cfg.hidden_size, n_layers=len(blocks), source=which)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--random-config", choices=sorted(GEMMA2_SIZES),
                    help="a random-weight Gemma-2 of these sizes instead of --model")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, …")
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                    help="model weights (default: bfloat16 for --random-config, else float32)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from rip_atoms.sae.harvest import harvest, load_texts, token_contexts
    from rip_atoms.sae.model import load_model

    dtype = getattr(torch, args.dtype or ("bfloat16" if args.random_config else "float32"))
    t = time.perf_counter()
    if args.random_config:
        lm = random_model(args.random_config, args.device, dtype)
    else:
        lm = load_model(args.model, dtype=dtype, device=args.device)
    load_s = time.perf_counter() - t
    device = next(lm.model.parameters()).device
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    _, docs = load_texts(None)
    ctx, _ = token_contexts(lm.tokenizer, docs, args.context)  # harvest's default
    n_ctx = -(-args.tokens // (args.context - 1))
    if n_ctx > ctx.shape[0]:
        raise SystemExit(f"--tokens {args.tokens}: the text gives only {ctx.shape[0]} contexts "
                         f"of {args.context}")
    if device.type == "cuda":  # untimed warm-up of both (kernels, allocator)
        with tempfile.TemporaryDirectory() as tmp:
            harvest(lm, [args.layer], tmp, n_tokens=args.context - 1,
                    context_size=args.context, batch_contexts=1, progress=False)
        with torch.no_grad():
            lm.model(input_ids=torch.from_numpy(ctx[:1]).to(device), output_hidden_states=True)
    ours, peer = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            res = harvest(lm, [args.layer], tmp, n_tokens=args.tokens,
                          context_size=args.context, batch_contexts=args.batch, progress=False)
        ours.append(res.seconds)
        sync(device)
        t = time.perf_counter()
        kept = 0
        with torch.no_grad():
            for s in range(0, n_ctx, args.batch):
                ids = torch.from_numpy(ctx[s:s + args.batch]).to(device)
                hs = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
                kept += hs[args.layer + 1][:, 1:, :].reshape(-1, lm.d_model).float().cpu(
                ).numpy().shape[0]
        peer.append(time.perf_counter() - t)
    best_ours, best_peer = min(ours), min(peer)
    out = {
        "device": card, "model": lm.name, "layer": args.layer, "n_layers": lm.n_layers,
        "tokens": args.tokens,
        "context": args.context, "batch_contexts": args.batch, "threads": args.threads,
        "load_seconds": load_s,
        "tokens_per_second": {"rip_atoms": args.tokens / best_ours,
                              "hf_output_hidden_states": args.tokens / best_peer},
        "seconds": {"rip_atoms": ours, "hf_output_hidden_states": peer},
        "ratio": best_peer / best_ours,
    }
    if args.json:
        print(json.dumps(out))
        return
    where = card if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"harvest throughput, {where}: {lm.name}, layer {args.layer} "
          f"of {lm.n_layers}, {args.tokens} tokens, contexts of {args.context}, "
          f"batch {args.batch}; model load {load_s:.1f} s")
    print(f"  rip_atoms harvest (shards)       {args.tokens / best_ours:8.0f} tokens/s")
    print(f"  HF output_hidden_states (memory) {args.tokens / best_peer:8.0f} tokens/s")
    print(f"  ratio = {out['ratio']:.2f}×")
    print(f"FIGURE harvest {lm.source} layer {args.layer} [{card}]: ours "
          f"{args.tokens / best_ours:.0f} tokens/s (rip_atoms harvest to shards) | peer "
          f"{args.tokens / best_peer:.0f} tokens/s (plain forward, output_hidden_states, kept "
          f"in memory) | ratio {out['ratio']:.2f}x (ours/peer throughput)", flush=True)


if __name__ == "__main__":
    main()
