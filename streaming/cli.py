"""``blaze stream OPERATOR ...``: demo commands of the streaming operators.

Each operator package that has a demo exposes ``register(subparsers)`` in its ``cli`` module.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

OPERATORS = ("streaming.aomg.cli", "streaming.tersecades.cli", "streaming.jarvis.cli")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stream", help="run a streaming operator demo")
    operators = parser.add_subparsers(dest="operator", metavar="OPERATOR")
    for name in OPERATORS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(operators)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
