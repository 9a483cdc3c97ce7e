"""The ``blaze`` command: one entry point, subcommands owned by their packages.

Each package that offers a subcommand exposes ``register(subparsers)`` in its own ``cli``
module; this file only lists them, so adding a command never edits another package's code.
A :class:`blaze.errors.BlazeError` raised anywhere is printed as one line (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from blaze_errors import BlazeError

__all__ = ["build_parser", "main"]

# module path -> it must define register(subparsers) -> None
SUBCOMMAND_MODULES = (
    "lineage.cli",
    "costmodel.cli",
    "blaze.manager_cli",
    "jobs.cli",
    "streaming.cli",
)


class _OneLineParser(argparse.ArgumentParser):
    """A bad option is one line naming it (``blaze stream aomg: error: argument --rate: -5
    must be >= 0``), exit 2, like every other bad input of the command; ``-h`` shows usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="blaze", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that package has no commands yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BlazeError as exc:
        print(f"blaze: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("blaze: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
