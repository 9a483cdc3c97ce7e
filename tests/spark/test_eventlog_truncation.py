"""Real event logs written by a small Spark run, cut and corrupted: never read as a shorter run.

The run is its own process (an event log gets ``SparkListenerApplicationEnd`` only when its
SparkContext stops, which the shared test session must not do). From its rolling zstd log
the test derives a single zstd file and a plain file, then cuts or corrupts each.
"""

from __future__ import annotations

import textwrap

import pytest
import zstandard
from conftest import finish_script, start_script

from blaze_cli import main
from blaze_errors import InputError
from lineage.eventlog import read_event_log

pytestmark = [pytest.mark.spark, pytest.mark.slow]

APP = textwrap.dedent(
    """
    import sys
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", sys.argv[1])
        .config("spark.eventLog.rolling.enabled", "true")
        .config("spark.eventLog.compress", "true")
        .config("spark.eventLog.compression.codec", "zstd")
        .getOrCreate()
    )
    sc = spark.sparkContext
    data = sc.parallelize(range(2000), 4).map(lambda x: (x % 7, x)).cache()
    for _ in range(3):
        data.reduceByKey(lambda a, b: a + b).count()
    data.count()
    spark.stop()
    """
)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eventlogs")
    code, _, err = finish_script(start_script(folder, "app.py", APP, folder.as_uri()), 150)
    assert code == 0, err[-4000:]
    [rolling] = folder.glob("eventlog_v2_*")
    [part] = rolling.glob("events_*")
    return rolling, part


@pytest.mark.timeout(200)
def test_the_complete_log_reads_every_job(logs):
    rolling, _ = logs
    _, stats = read_event_log(rolling)
    assert stats.ended and stats.lost == []
    assert stats.jobs_started == stats.jobs_ended == 4


@pytest.mark.timeout(200)
@pytest.mark.parametrize("form", ["zstd", "plain", "rolling"])
@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_a_cut_log_warns_or_fails_in_one_line(logs, tmp_path, form, fraction):
    rolling, part = logs
    data = part.read_bytes()
    if form == "plain":
        data = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
    cut = data[: int(len(data) * fraction)]
    if form == "rolling":
        target_dir = tmp_path / rolling.name
        target_dir.mkdir()
        (target_dir / part.name).write_bytes(cut)
        (target_dir / f"appstatus_{rolling.name.split('_', 2)[2]}").write_text("")
        path = target_dir
    else:
        path = tmp_path / ("app.zstd" if form == "zstd" else "app")
        path.write_bytes(cut)
    try:
        _, stats = read_event_log(path)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert stats.truncated, stats
    assert stats.jobs_ended < 4
    assert "no SparkListenerApplicationEnd" in stats.loss_summary()


@pytest.mark.timeout(200)
def test_blaze_lineage_on_a_zstd_log_cut_in_half_warns(logs, tmp_path, capsys):
    _, part = logs
    path = tmp_path / part.name
    data = part.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code = main(["lineage", str(path)])
    captured = capsys.readouterr()
    if code == 2:  # nothing readable: one error line
        assert len(captured.err.strip().splitlines()) == 1
    else:
        assert code == 0
        [line] = [x for x in captured.err.splitlines() if "incomplete event log" in x]
        assert "job(s) seen" in line


@pytest.mark.timeout(200)
def test_corrupt_bytes_in_a_real_log_are_reported(logs, tmp_path):
    _, part = logs
    data = bytearray(part.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 256] = b"\xff" * 256
    path = tmp_path / part.name
    path.write_bytes(bytes(data))
    try:
        _, stats = read_event_log(path)
    except InputError as exc:
        assert "corrupt" in str(exc) or "not a Spark event log" in str(exc)
        return
    assert stats.truncated or stats.skipped
