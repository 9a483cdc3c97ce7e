"""The telemetry data source's pure parts: options, offsets, partitions, injected bad values."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

from streaming.common.source import (
    SourceOptions,
    _read_range,
    _split,
    _StreamReader,
)
from streaming.common.telemetry import generate_range


def test_options_parse_case_insensitively():
    options = SourceOptions.parse({"totalRecords": "10", "SEED": "3", "rowspersecond": "2.5"})
    assert (options.total_records, options.seed, options.rows_per_second) == (10, 3, 2.5)
    assert options.telemetry.seed == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"totalRecord": "10"}, "unknown telemetry source option 'totalRecord'"),
        ({"seed": "x"}, "seed='x' is not a int"),
        ({"numPartitions": "0"}, "num_partitions=0 must be > 0"),
        ({"rowsPerSecond": "-1"}, "rows_per_second=-1.0 must be >= 0"),
    ],
)
def test_bad_options_are_named(raw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SourceOptions.parse(raw)


def test_partitions_cover_the_range_once():
    parts = _split(1_000, 1_017, 4)
    assert [p.first for p in parts] == sorted(p.first for p in parts)
    assert sum(p.count for p in parts) == 17 and parts[0].first == 1_000
    assert all(a.first + a.count == b.first for a, b in itertools.pairwise(parts))
    assert _split(5, 5, 3) == []


def test_offsets_respect_limits_and_total():
    reader = _StreamReader(SourceOptions(total_records=250, max_records_per_batch=100))
    start = reader.initialOffset()
    assert reader.latestOffset(start, reader.getDefaultReadLimit()) == {"index": 100}
    assert reader.latestOffset({"index": 200}, ReadMaxRows(100)) == {"index": 250}
    assert reader.latestOffset({"index": 0}, ReadAllAvailable()) == {"index": 250}
    assert reader.latestOffset({"index": 250}, ReadAllAvailable()) == {"index": 250}


def test_available_now_needs_an_end():
    with pytest.raises(ValueError, match="needs totalRecords or rowsPerSecond"):
        _StreamReader(SourceOptions()).prepareForTriggerAvailableNow()


def test_reads_are_the_generator_records_with_deterministic_bad_values():
    options = SourceOptions(invalid_every=10, total_records=100)
    part = _split(37, 137, 1)[0]
    table = pa.Table.from_batches(list(_read_range(options, part)))
    clean = generate_range(options.telemetry, 37, 100)
    assert table["ts"].equals(pa.chunked_array([clean.column("ts")]))
    rtt = table["rtt_us"].to_numpy(zero_copy_only=False)
    hit = (np.arange(37, 137) + 1) % 10 == 0
    bad = np.isnan(rtt) | (rtt < 0)
    assert (bad == hit).all() and np.isnan(rtt).sum() == 5 and (rtt < 0).sum() == 5
    np.testing.assert_array_equal(rtt[~hit], clean.column("rtt_us").to_numpy()[~hit])
