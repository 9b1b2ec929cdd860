"""``rip-atoms check FILE``: re-check every claim of an output independently, in float64.

FILE is a ``report.json`` of ``verify``, a ``recover --out`` file, or the ``--json`` output of
``rip``, ``spark`` or ``coherence``. The checking is done by :mod:`rip_atoms.check`, which
imports numpy and nothing of the library (so it can be read on its own). Exit status 0 when
every claim holds, 1 when one fails (it is named), 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from rip_atoms import check
from rip_atoms.cli.common import add_output_args, emit_json
from rip_atoms.errors import FileFormatError


def run(args: argparse.Namespace) -> int:
    try:
        result = check.summary(check.claims_of(args.file))
    except check.BadFile as exc:
        raise FileFormatError(str(exc)) from None
    if args.json:
        emit_json({"file": args.file, **result})
    else:
        print(check.render(args.file, result))
    first = result["first_failure"]
    if first is not None and not args.quiet:
        print(f"rip-atoms: check: {args.file}: {first['claim']} does not hold: {first['why']}",
              file=sys.stderr)
    return 0 if result["all_hold"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="re-check every witness and certificate of an output, in float64",
        description="Re-check, independently of the code that made them, the claims of a "
                    "report.json, a recover --out .npz, or rip/spark/coherence --json output: "
                    "RIP witness eigenvalues, spark null vectors, μ's pair, dual certificates, "
                    "failure witnesses. Exit 0: all hold; 1: one fails; 2: unreadable file.")
    p.add_argument("file", metavar="FILE", help="report.json, a recover .npz, or --json output")
    add_output_args(p)
    p.set_defaults(func=run)
