"""Every numeric option of every ``blaze stream`` demo is checked before a JVM starts: one
line naming the option, exit 2 (``--rate -5`` used to end in a traceback after Spark started).
Also the scratch-dir and Ctrl-C helpers of ``streaming.common.run_control``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from blaze_cli import main
from streaming.common.run_control import interruptible, scratch_dir

BAD = [
    ("aomg", "--rate", "-5", "must be >= 0"),
    ("aomg", "--rate", "nan", "not a finite number"),
    ("aomg", "--rate", "inf", "not a finite number"),
    ("aomg", "--event-rate", "0", "must be positive"),
    ("aomg", "--invalid-every", "-3", "must be >= 0"),
    ("aomg", "--records", "0", "must be positive"),
    ("aomg", "--records", "ten", "is not an integer"),
    ("aomg", "--batch-rows", "-1", "must be positive"),
    ("aomg", "--accuracy", "-0.1", "must be positive"),
    ("tersecades", "--records", "0", "must be a positive integer"),
    ("tersecades", "--block-size", "-4", "must be a positive integer"),
    ("tersecades", "--window-ms", "0", "must be a positive integer"),
    ("tersecades", "--max-rtt-us", "0", "must be a positive integer"),
    ("jarvis", "--agents", "0", "must be positive"),
    ("jarvis", "--duration", "-1", "must be positive"),
    ("jarvis", "--cpu", "0", "must be positive"),
    ("jarvis", "--bandwidth", "-5", "must be positive"),
]


@pytest.mark.parametrize(("operator", "option", "value", "message"), BAD)
def test_bad_numbers_are_one_line_and_exit_2(operator, option, value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stream", operator, option, value])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert option in lines[0] and message in lines[0]
    assert lines[0].startswith(f"blaze stream {operator}: error: ")
    assert captured.out == ""


def test_no_jvm_was_started_for_a_bad_number():
    """A fresh interpreter: the rejection happens before pyspark is even imported."""
    code = (
        "import sys; from blaze_cli import main\n"
        "try:\n    main(['stream', 'aomg', '--rate', '-5'])\n"
        "except SystemExit as e:\n    print(e.code, 'pyspark.sql' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["2", "False"]


def test_scratch_dir_is_removed_and_stale_ones_of_dead_processes_too(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"blaze-demo-{dead.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "checkpoint").mkdir()
    alive = tmp_path / f"blaze-demo-{os.getpid()}-live"
    alive.mkdir()
    other_tool = tmp_path / "blaze-other-1-x"
    other_tool.mkdir()
    with scratch_dir("demo", tmp_path) as path:
        assert path.is_dir() and path.name.startswith(f"blaze-demo-{os.getpid()}-")
        assert not stale.exists()
        assert alive.exists() and other_tool.exists()
    assert not path.exists()


def test_scratch_dir_is_removed_when_the_process_is_terminated(tmp_path):
    code = (
        "import sys, time\n"
        "from streaming.common.run_control import interruptible, scratch_dir\n"
        f"with interruptible() as stop, scratch_dir('demo', {str(tmp_path)!r}) as p:\n"
        "    print(p, flush=True)\n"
        "    while not stop.requested: time.sleep(0.05)\n"
        "    stop.check()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    path = proc.stdout.readline().strip()
    assert os.path.isdir(path)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert not os.path.exists(path)


def test_interruptible_turns_sigint_into_a_flag_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with interruptible() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
    assert signal.getsignal(signal.SIGINT) is before
