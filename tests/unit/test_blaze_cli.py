"""The ``blaze`` command lists every subcommand and refuses a registry entry it cannot import."""

from __future__ import annotations

import pytest

import blaze_cli
from blaze_cli import build_parser, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("lineage", "profile", "disk", "bench", "stream"):
        assert f"    {command} " in out


def test_stream_help_lists_every_operator(capsys):
    with pytest.raises(SystemExit):
        main(["stream", "--help"])
    out = capsys.readouterr().out
    for operator in ("aomg", "tersecades", "jarvis"):
        assert operator in out


def test_a_missing_subcommand_module_is_an_error(monkeypatch):
    monkeypatch.setattr(
        blaze_cli, "SUBCOMMAND_MODULES", (*blaze_cli.SUBCOMMAND_MODULES, "nope.cli")
    )
    with pytest.raises(ModuleNotFoundError, match="nope"):
        build_parser()


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_subcommands_get_a_session_factory():
    args = build_parser().parse_args(["stream", "jarvis", "--no-spark"])
    assert args.spark_session is blaze_cli.spark_session
