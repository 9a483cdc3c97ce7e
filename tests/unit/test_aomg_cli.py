"""``blaze stream aomg`` rejects bad arguments in one line, before any JVM starts."""

from __future__ import annotations

import pytest

from blaze_cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sub-window", "300 ms"], "does not divide the window"),
        (["--quantiles", "0.5,1.2"], "outside [0, 1]"),
        (["--quantiles", "0.5,abc"], "could not convert"),
        (["--accuracy", "2"], "alpha=2.0 is outside (0, 0.5)"),
        (["--window", "soon"], "window='soon' is not a duration"),
    ],
)
def test_bad_arguments_fail_in_one_line(argv, message, capsys):
    assert main(["stream", "aomg", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_lazy_operator_export():
    import streaming.aomg as aomg

    assert aomg.window_quantiles.__module__ == "streaming.aomg.operator"
    with pytest.raises(AttributeError):
        _ = aomg.no_such_thing
