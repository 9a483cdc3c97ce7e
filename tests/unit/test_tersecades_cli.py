"""``blaze stream tersecades`` runs end to end (pure Python part) and agrees with raw."""

from __future__ import annotations

import pytest

from blaze_cli import main


def test_demo_runs_and_answers_agree(capsys):
    assert main(["stream", "tersecades", "--records", "30000", "--window-ms", "100"]) == 0
    out = capsys.readouterr().out
    assert "answers agree" in out
    assert "rtt_us" in out and "error_code" in out


def test_bad_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stream", "tersecades", "--records", "0"])
    assert exc.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err
