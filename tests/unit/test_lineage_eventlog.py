"""Reading event logs (plain, zstd, rolling directories) and the ``blaze lineage`` command."""

from __future__ import annotations

import json

import pytest
import zstandard

from blaze_cli import main
from blaze_errors import InputError
from lineage import synthetic
from lineage.dag import LineageDag
from lineage.eventlog import read_event_log
from lineage.parse import parse_event

APP = synthetic.iterative_app(3, app="/jobs/pagerank.py")
HEADER = {"Event": "SparkListenerLogStart", "Spark Version": "4.3.0"}
LINES = [json.dumps(e) for e in [HEADER, *APP.events]]


def _reference() -> LineageDag:
    return LineageDag.from_events(r for e in APP.events for r in parse_event(e))


def _write(path, lines, *, zstd=False):
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if zstd else data)
    return path


@pytest.mark.parametrize("zstd", [False, True])
def test_single_file_logs_plain_and_zstd(tmp_path, zstd):
    path = _write(tmp_path / ("app.zstd" if zstd else "app"), LINES, zstd=zstd)
    dag = LineageDag.from_event_log(path)
    assert dag == _reference()
    assert dag.log_stats.skipped == 0 and dag.log_stats.lines == len(LINES)


def test_zstd_detected_by_content_and_split_across_frames(tmp_path):
    half = len(LINES) // 2
    compressor = zstandard.ZstdCompressor()
    frames = [
        compressor.compress(("\n".join(p) + "\n").encode()) for p in (LINES[:half], LINES[half:])
    ]
    path = tmp_path / "events_no_suffix"
    path.write_bytes(b"".join(frames))
    assert LineageDag.from_event_log(path) == _reference()


def test_rolling_directory_reads_parts_in_numeric_order(tmp_path):
    folder = tmp_path / "eventlog_v2_local-1"
    folder.mkdir()
    cut1, cut2 = len(LINES) // 3, 2 * len(LINES) // 3
    # part 10 sorts before part 2 as text: the reader must order numerically
    _write(folder / "events_2_local-1.zstd", LINES[cut1:cut2], zstd=True)
    _write(folder / "events_10_local-1.zstd", LINES[cut2:], zstd=True)
    _write(folder / "events_1_local-1.zstd", LINES[:cut1], zstd=True)
    (folder / "appstatus_local-1").write_text("")
    assert LineageDag.from_event_log(folder) == _reference()


def test_in_progress_log_with_a_cut_last_line_is_read_and_the_cut_counted(tmp_path):
    lines = [*LINES, LINES[5][: len(LINES[5]) // 2]]
    path = _write(tmp_path / "app.inprogress", lines)
    records, stats = read_event_log(path)
    assert stats.skipped == 1 and "app.inprogress" in stats.first_skip
    assert LineageDag.from_events(records) == _reference()


def test_a_corrupt_middle_line_is_skipped_and_counted(tmp_path):
    broken = json.loads(LINES[3])
    broken.pop("Stage Info", None)
    broken.pop("Job ID", None)
    broken.pop("Task Info", None)
    lines = [*LINES[:3], json.dumps(broken), *LINES[4:]]
    _, stats = read_event_log(_write(tmp_path / "app", lines))
    assert stats.skipped == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no events"),
        ("hello world\n", "is not a Spark event log: line 1"),
        ('{"a": 1}\n', "is not a Spark event log: line 1"),
        ("[1, 2]\n", "is not a Spark event log"),
    ],
)
def test_files_that_are_not_event_logs(tmp_path, content, message):
    path = tmp_path / "log"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        LineageDag.from_event_log(path)


def test_missing_path_empty_directory_and_unsupported_codec(tmp_path):
    with pytest.raises(InputError, match="event log not found"):
        LineageDag.from_event_log(tmp_path / "nope")
    with pytest.raises(InputError, match="directory without events_"):
        LineageDag.from_event_log(tmp_path)
    lz4 = tmp_path / "app.lz4"
    lz4.write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match="compressed with lz4"):
        LineageDag.from_event_log(lz4)


def test_cli_prints_call_sites_reuse_and_sizes(tmp_path, capsys):
    path = _write(tmp_path / "app.zstd", LINES, zstd=True)
    assert main(["lineage", str(path), "--top", "50"]) == 0
    out = capsys.readouterr().out
    dag = _reference()
    assert "RDDs by call site" in out and "groupByKey at pagerank.py:4" in out
    links_row = next(line for line in out.splitlines() if " links " in line)
    cells = [c.strip() for c in links_row.split("│") if c.strip()]
    assert cells[0] == str(APP.links_id)
    assert str(dag.reuse_count(APP.links_id)) in cells  # the reuse column
    stored = sum(p.memory_size for p in dag.partitions(APP.links_id).values())
    assert f"{stored / 1024:.1f} KiB" in links_row


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: tmp / "missing.log",
        lambda tmp: (tmp / "text.log").write_text("not json\n") and tmp / "text.log",
        lambda tmp: tmp,
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make):
    assert main(["lineage", str(make(tmp_path))]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blaze: error: ")
