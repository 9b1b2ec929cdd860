"""The ``rip-atoms`` command: one module per subcommand, each with ``register(subparsers)``.

Every command takes ``--json`` and then prints exactly one JSON object on stdout; progress and
logs go to stderr. Exit status: 0 on success, 2 on bad input with one line naming the file and
the problem.
"""

from __future__ import annotations

import argparse
import signal
import sys

from rip_atoms.cli import (
    cards,
    check,
    coherence,
    criteria,
    recover,
    rip,
    sae,
    sweep,
    theory,
    verify,
)
from rip_atoms.cli.common import UsageError
from rip_atoms.errors import RipAtomsError

COMMANDS = [cards, check, coherence, criteria, recover, rip, sae, sweep, theory, verify]

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rip-atoms",
        description="Certified compressed-sensing checks for dictionaries and SAE decoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except RipAtomsError as exc:
        # bad input (every library input error is a RipAtomsError): one line, exit 2. Any other
        # exception, ValueError included, is a bug and keeps its traceback (exit 1).
        msg = " ".join(str(exc).split())
        print(f"rip-atoms: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rip-atoms ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:  # Ctrl-C: one line, no traceback, the shell's 130
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        note = " ".join(getattr(exc, "note", "").split())  # rip_atoms.errors.Interrupted
        print("rip-atoms: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
        return 130
