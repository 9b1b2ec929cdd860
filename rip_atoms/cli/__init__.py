"""The ``rip-atoms`` command: one module per subcommand, each with ``register(subparsers)``.

Every command takes ``--json`` and then prints exactly one JSON object on stdout; progress and
logs go to stderr. Exit status: 0 on success, 2 on bad input with one line naming the file and
the problem — argparse's own errors (a type or choice error, a missing or unknown argument)
included: :class:`OneLineParser` prints them as one ``rip-atoms: error: …`` line, not a usage
block.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn

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

__all__ = ["OneLineParser", "UsageError", "build_parser", "main"]

PROG = "rip-atoms"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2, the CLI's
    contract for every bad input: ``rip-atoms: error: COMMAND: MESSAGE (see rip-atoms COMMAND
    --help)``. The top parser and (through ``parser_class``) every subparser use it; ``--help``
    is unchanged."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        self._fail(command, message)

    def _fail(self, command: str, message: str) -> NoReturn:
        where = f"{command}: " if command else ""
        text = " ".join(str(message).split())
        help_cmd = f"{PROG} {command} --help" if command else f"{PROG} --help"
        self.exit(2, f"{PROG}: error: {where}{text} (see {help_cmd})\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # as argparse's, with the subcommand named when it is given an unknown argument (the
        # subparsers hand their extras up to the top parser)
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            self._fail(getattr(ns, "command", None) or "",
                       f"unrecognized arguments: {' '.join(extras)}")
        return ns


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Certified compressed-sensing checks for dictionaries and SAE decoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _forget_unhandled_interrupt() -> None:
    """Clear CPython's record of an unhandled KeyboardInterrupt, which this Ctrl-C may have left.

    A KeyboardInterrupt that ends code run from a *string* (``exec``/``eval`` of source text,
    which dataclasses and namedtuple do while a module is imported) sets a runtime flag even when
    a caller catches the exception. Under ``python -m rip_atoms`` the interpreter checks that
    flag after the module returns and then kills itself with SIGINT instead of exiting with our
    status 130. Every string ``exec`` resets the flag when it starts, so one that completes
    clears it (harmless on interpreters without the flag)."""
    exec("pass", {})  # noqa: S102 - a constant string, run only for its effect on the flag


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # the command line as given rides in the namespace from the start (the report records it);
    # the parsed namespace is read, never written to (see rip_atoms.cli.verify.VerifyOptions)
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(given, argparse.Namespace(argv=given))
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
        _forget_unhandled_interrupt()
        note = " ".join(getattr(exc, "note", "").split())  # rip_atoms.errors.Interrupted
        print("rip-atoms: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
        return 130
