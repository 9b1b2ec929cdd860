"""``rip-atoms cards TARGET --acts HARVEST``: the atom cards alone (``cards.html`` +
``cards.json``) for any SAE the library loads — what each atom fires on, in its text.

The activations must be a ``rip-atoms harvest`` folder that recorded token provenance. The cards
cover the 10 most coherent AIP pairs side by side (metric Σ⁻¹ fitted on the same tokens), 10
random live atoms, the most and the least frequently active, and every atom given with
``--atoms``; see :mod:`rip_atoms.criteria.atom_cards` for what each number means.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rip_atoms.cli.common import (
    UsageError,
    emit_json,
    int_list,
    load_sae_spec,
    log,
    require_adapter,
    show_progress,
)
from rip_atoms.dictionary import is_sae_spec


def run(args: argparse.Namespace) -> int:
    from rip_atoms.criteria import UnitSet
    from rip_atoms.report.cards_page import write_cards
    from rip_atoms.report.cards_section import N_PAIRS, N_RANDOM

    named = int_list(args.atoms, "--atoms") if args.atoms else []
    if named and min(named) < 0:
        raise UsageError(f"--atoms: atom indices are ≥ 0, got {min(named)}")
    if args.max_tokens < 1:
        raise UsageError(f"--max-tokens must be ≥ 1, got {args.max_tokens}")
    if not is_sae_spec(args.target):
        raise UsageError(f"{args.target}: cards need an SAE with an encoder (SAELens / sparsify "
                         "folder, Gemma Scope params.npz, ae.pt), not a plain matrix")
    require_adapter()
    from rip_atoms.sae.harvest import ActivationStore

    if not Path(args.acts).is_dir():
        raise UsageError(f"{args.acts}: cards need a `rip-atoms harvest` folder (a plain .npy "
                         "has no token provenance)")
    store = ActivationStore(args.acts).require_complete(args.allow_incomplete)
    prov = store.provenance()
    if prov is None:
        raise UsageError(store.provenance_missing())
    sae = load_sae_spec(args.target)
    X = store.array(args.layer)
    if X.shape[1] != sae.d_in:
        from rip_atoms.errors import ShapeMismatchError

        raise ShapeMismatchError(f"{args.acts}: activations of width {X.shape[1]} but "
                                 f"{args.target} has d_in = {sae.d_in}")
    n = min(X.shape[0], args.max_tokens)
    X, prov = np.asarray(X[:n]), prov.subset(np.arange(n))
    unit = UnitSet.from_sae(Path(args.target).name or str(args.target), sae, "atoms")
    if named and max(named) >= unit.decoder.n_atoms:
        raise UsageError(f"--atoms: atom {max(named)} out of range (N = {unit.decoder.n_atoms})")
    log(args, f"codes of {n} tokens")
    codes = unit.codes_for(X, np.arange(n))
    pairs = []
    if not args.no_pairs:
        from rip_atoms.coherence import coherence
        from rip_atoms.metric import fit_metric

        log(args, "AIP metric and the most coherent pairs")
        metric = fit_metric(X, source=f"{args.acts} (the {n} tokens shown)")
        pairs = coherence(unit.decoder, metric, top=N_PAIRS, babel_p=1,
                          progress=show_progress(args)).to_dict()["top_pairs"][:N_PAIRS]
    from rip_atoms.criteria.atom_cards import atom_cards

    sec = {"computed": True, **atom_cards(codes, prov, pairs=pairs, named=named,
                                          n_pairs=N_PAIRS, n_random=N_RANDOM, seed=args.seed,
                                          live=unit.decoder.live_atoms),
           "target": str(args.target), "acts": str(args.acts), "tokens": n}
    title = f"{args.target} on {n} tokens of {args.acts}"
    paths = write_cards(sec, args.out, title)
    if args.json:
        emit_json({**sec, "files": {k: str(v) for k, v in paths.items()}})
    else:
        for p in sec["pairs"]:
            print(f"pair {p['units'][0]}–{p['units'][1]} (AIP cos {p.get('cosine', 0):.4f}): "
                  f"{p['reading']}")
        print("cards: " + ", ".join(str(p) for p in paths.values()))
        sys.stdout.flush()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cards", help="atom cards: what each atom of an SAE fires on, in text",
                       description="Write cards.html and cards.json: the top activating "
                                   "contexts of chosen atoms, pairs compared by what they fire "
                                   "on. Needs a harvest folder with token provenance.")
    p.add_argument("target", metavar="TARGET", help="an SAE (SAELens/sparsify folder, Gemma "
                                                    "Scope params.npz, ae.pt)")
    p.add_argument("--acts", required=True, help="a rip-atoms harvest folder (with token "
                                                 "provenance)")
    p.add_argument("--atoms", metavar="I,J,…", help="atoms to show beside the automatic choice")
    p.add_argument("--layer", type=int, help="layer of a multi-layer harvest folder")
    p.add_argument("--max-tokens", type=int, default=50_000,
                   help="use the first this many tokens (whole contexts in order; default "
                        "50000)")
    p.add_argument("--no-pairs", action="store_true",
                   help="skip the coherence pass (no pairs side by side)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept an interrupted harvest folder")
    p.add_argument("--out", default="rip-atoms-cards", help="output folder (default "
                                                            "./rip-atoms-cards)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the cards as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress or logs on stderr")
    p.set_defaults(func=run)
