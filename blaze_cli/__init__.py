"""The ``blaze`` command: one entry point that assembles the subcommands of every package.

It lives outside the ``blaze`` package so that ``blaze`` (the cache manager) never imports
``jobs`` or ``streaming``: this module is the only place that knows all of them. Each package
that offers subcommands exposes ``register(subparsers)`` in one module listed in
:data:`SUBCOMMAND_MODULES`; adding a command is one line there. A listed module that cannot be
imported is an error, never skipped. A :class:`blaze_errors.BlazeError` raised anywhere is
printed as one line (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence

from blaze_errors import BlazeError

__all__ = ["SUBCOMMAND_MODULES", "build_parser", "main"]

# each module defines register(subparsers) -> None; --help lists the commands in this order
SUBCOMMAND_MODULES = (
    "lineage.cli",  # blaze lineage
    "costmodel.cli",  # blaze profile show, blaze disk calibrate
    "blaze.manager_cli",  # blaze explain
    "jobs.cli",  # blaze bench
    "streaming.cli",  # blaze stream aomg|tersecades|jarvis
)


def spark_session(conf: Mapping[str, str] | None = None, *, app_name: str):
    """A local SparkSession with the project's defaults (:func:`blaze.session`).

    Handed to every subcommand as ``args.spark_session`` so packages below ``blaze`` (the
    streaming demos) get the project's session without importing ``blaze``.
    """
    from blaze.session import session

    return session(conf, app_name=app_name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blaze",
        description="blaze-spark: cost-based caching for PySpark, its benchmark and streaming demos",
    )
    parser.set_defaults(spark_session=spark_session)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
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
