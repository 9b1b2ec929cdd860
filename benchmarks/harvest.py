"""Harvest throughput on SmolLM2-135M (CPU): tokens/s written to shards.

Ours: ``rip_atoms.sae.harvest.harvest`` (forward hooks, blocks above the deepest requested layer
skipped, shards + manifest + checksums). Peer: the plain transformers recipe — a full forward with
``output_hidden_states=True`` on the same contexts, keeping ``hidden_states[L + 1]`` in memory
(no files). Same contexts, same batch, same thread count, in one invocation.

    .venv/bin/python benchmarks/harvest.py                         # layer 15, 8192 tokens
    .venv/bin/python benchmarks/harvest.py --layer 29 --tokens 4096 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from rip_atoms.sae.harvest import harvest, load_texts, token_contexts
    from rip_atoms.sae.model import load_model

    t = time.perf_counter()
    lm = load_model(args.model)
    load_s = time.perf_counter() - t
    _, docs = load_texts(None)
    ctx, _ = token_contexts(lm.tokenizer, docs, args.context)  # harvest's default
    n_ctx = -(-args.tokens // (args.context - 1))
    ours, peer = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            res = harvest(lm, [args.layer], tmp, n_tokens=args.tokens,
                          context_size=args.context, batch_contexts=args.batch, progress=False)
        ours.append(res.seconds)
        t = time.perf_counter()
        kept = 0
        with torch.no_grad():
            for s in range(0, n_ctx, args.batch):
                ids = torch.from_numpy(ctx[s:s + args.batch])
                hs = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
                kept += hs[args.layer + 1][:, 1:, :].reshape(-1, lm.d_model).numpy().shape[0]
        peer.append(time.perf_counter() - t)
    best_ours, best_peer = min(ours), min(peer)
    out = {
        "model": lm.name, "layer": args.layer, "n_layers": lm.n_layers, "tokens": args.tokens,
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
    print(f"harvest throughput, CPU, {args.threads} thread(s): {lm.name}, layer {args.layer} "
          f"of {lm.n_layers}, {args.tokens} tokens, contexts of {args.context}, "
          f"batch {args.batch}; model load {load_s:.1f} s")
    print(f"  rip_atoms harvest (shards)       {args.tokens / best_ours:8.0f} tokens/s")
    print(f"  HF output_hidden_states (memory) {args.tokens / best_peer:8.0f} tokens/s")
    print(f"  ratio = {out['ratio']:.2f}×")


if __name__ == "__main__":
    main()
