"""``blaze stream OPERATOR ...``: the demo commands of the streaming operators.

Each operator package with a demo exposes ``register(subparsers)`` in its ``cli`` module,
listed in :data:`OPERATORS`; a listed module that cannot be imported is an error. The demos
get a SparkSession from ``args.spark_session`` (set by the ``blaze`` command), so
``streaming`` never imports ``blaze``.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["OPERATORS", "register"]

OPERATORS = ("streaming.aomg.cli", "streaming.tersecades.cli", "streaming.jarvis.cli")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stream", help="run a streaming operator demo")
    operators = parser.add_subparsers(dest="operator", metavar="OPERATOR")
    for name in OPERATORS:
        importlib.import_module(name).register(operators)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
