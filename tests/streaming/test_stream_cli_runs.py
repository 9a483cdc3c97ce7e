"""``blaze stream aomg`` as a user runs it: a paced stream is really read and checked, a check
that compared nothing fails, Ctrl-C ends it with one line and exit 130 leaving no checkpoint
directory behind. Each run is its own process (its own SparkSession)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BLAZE = [sys.executable, "-m", "blaze_cli", "stream", "aomg"]


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, TMPDIR=str(tmp_path), PYSPARK_PYTHON=sys.executable)


@pytest.mark.timeout(240)
def test_a_paced_stream_is_read_whole_and_checked(tmp_path):
    proc = subprocess.run(
        [
            *BLAZE,
            "--records",
            "30000",
            "--rate",
            "20000",
            "--check",
            "--window",
            "100 ms",
            "--sub-window",
            "50 ms",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=220,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    assert "records read 30,000" in proc.stdout  # the old demo read 0 records here
    [check] = [x for x in proc.stdout.splitlines() if x.startswith("batch form check:")]
    assert "identical" in check and "(0 windows)" not in check
    assert list(tmp_path.glob("blaze-aomg-*")) == []


@pytest.mark.timeout(240)
def test_a_check_with_nothing_to_compare_fails(tmp_path):
    # 200 records span 2 ms of event time: no 10 s window ever closes
    proc = subprocess.run(
        [
            *BLAZE,
            "--records",
            "200",
            "--check",
            "--window",
            "10 seconds",
            "--sub-window",
            "1 second",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=220,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "batch form check: FAILED, nothing to compare" in proc.stdout
    assert "identical" not in proc.stdout


@pytest.mark.timeout(240)
def test_ctrl_c_prints_one_line_and_leaves_no_checkpoint(tmp_path):
    proc = subprocess.Popen(
        [*BLAZE, "--records", "100000000", "--rate", "5000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        start_new_session=True,  # Ctrl-C at a terminal signals the whole process group
    )
    deadline = time.monotonic() + 180
    while not list(tmp_path.glob("blaze-aomg-*/checkpoint/offsets/*")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the query never started"
        time.sleep(0.5)
    time.sleep(1.0)  # a few micro-batches in
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "blaze: interrupted"
    # only Spark's own start-up warnings may precede it: no py4j or Java traceback
    assert "Traceback" not in err and "py4j" not in err and "\tat " not in err, err[-3000:]
    # what is left besides Spark's own start-up banner and log lines (whose number varies by
    # machine: a loopback hostname adds two) must be the one line
    spark_log = re.compile(
        r"^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|INFO|ERROR) |WARNING: Using incubator|Using Spark's default log4j|Setting default log level|To adjust logging level)"
    )
    assert [line for line in lines if not spark_log.match(line)] == ["blaze: interrupted"], err
    assert list(tmp_path.glob("blaze-aomg-*")) == []
