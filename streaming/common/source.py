"""A Spark data source (Python Data Source API) serving the Pingmesh telemetry generator.

Use it as a streaming source with a configurable rate, or as a finite batch source:

    from streaming.common.source import read_telemetry, read_telemetry_stream
    stream = read_telemetry_stream(spark, rows_per_second=50_000, seed=1)      # endless
    finite = read_telemetry_stream(spark, total_records=200_000)               # ends
    static = read_telemetry(spark, total_records=200_000)                      # same rows

Columns: ``src int, dst int, ts timestamp, rtt_us bigint, error_code int`` (see
:mod:`streaming.common.telemetry`). The offset is the record position ``{"index": n}`` and
record ``n`` depends only on ``(seed, n)``, so a query restarted from its checkpoint
re-reads exactly the records it had not committed — the basis of exactly-once tests — and a
finite stream holds exactly the rows of the batch read with the same options.

Options (``spark.readStream.format("blaze_telemetry").option(...)``, all optional):

* ``seed`` (0), ``numServers`` (1000), ``eventRate`` (100000 records per second of *event
  time*; sets the timestamps, not the speed);
* ``rowsPerSecond`` (0 = as fast as Spark asks): *wall-clock* rate at which records become
  available after the query (re)starts;
* ``maxRecordsPerBatch`` (100000): cap per micro-batch (Spark's ``ReadMaxRows`` limit);
  ``Trigger.AvailableNow`` ignores it, as Spark requires;
* ``totalRecords`` (0 = endless): the stream ends after this many records;
* ``numPartitions`` (2): Spark tasks per micro-batch;
* ``invalidEvery`` (0 = off): every k-th record gets a null, then a negative ``rtt_us``
  (deterministic bad input for testing that operators count what they skip).
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceReader,
    DataSourceStreamReader,
    InputPartition,
)
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_range

__all__ = [
    "SOURCE_NAME",
    "SourceOptions",
    "TelemetryDataSource",
    "read_telemetry",
    "read_telemetry_stream",
    "register_source",
]

SOURCE_NAME = "blaze_telemetry"
SCHEMA_DDL = "src int, dst int, ts timestamp, rtt_us bigint, error_code int"
_CHUNK = 65_536  # Arrow batch size handed to Spark
# Spark checks Arrow batches against its own (nullable) rendering of the schema
_ARROW_SCHEMA = pa.schema([f.with_nullable(True) for f in TELEMETRY_SCHEMA])


@dataclass(frozen=True)
class SourceOptions:
    """Parsed, validated source options (names as in the module docstring)."""

    seed: int = 0
    num_servers: int = 1_000
    event_rate: int = 100_000
    rows_per_second: float = 0.0
    max_records_per_batch: int = 100_000
    total_records: int = 0
    num_partitions: int = 2
    invalid_every: int = 0
    telemetry: TelemetryConfig = field(init=False, repr=False)

    _NAMES = {  # noqa: RUF012 - option name -> (field, type)
        "seed": ("seed", int),
        "numservers": ("num_servers", int),
        "eventrate": ("event_rate", int),
        "rowspersecond": ("rows_per_second", float),
        "maxrecordsperbatch": ("max_records_per_batch", int),
        "totalrecords": ("total_records", int),
        "numpartitions": ("num_partitions", int),
        "invalidevery": ("invalid_every", int),
    }

    def __post_init__(self) -> None:
        for name in ("rows_per_second", "total_records", "invalid_every"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"telemetry source option {name}={getattr(self, name)} must be >= 0"
                )
        for name in ("max_records_per_batch", "num_partitions"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"telemetry source option {name}={getattr(self, name)} must be > 0"
                )
        object.__setattr__(
            self,
            "telemetry",
            TelemetryConfig(
                num_servers=self.num_servers, records_per_second=self.event_rate, seed=self.seed
            ),
        )

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> SourceOptions:
        """From Spark's (case-insensitive) string options; unknown or non-numeric ones fail."""
        kwargs: dict[str, object] = {}
        for key, raw in options.items():
            lower = key.lower()
            if lower == "path":
                continue
            if lower not in cls._NAMES:
                raise ValueError(
                    f"unknown telemetry source option {key!r}; known: {sorted(cls._NAMES)}"
                )
            name, kind = cls._NAMES[lower]
            try:
                kwargs[name] = kind(raw)
            except ValueError:
                raise ValueError(
                    f"telemetry source option {key}={raw!r} is not a {kind.__name__}"
                ) from None
        return cls(**kwargs)  # type: ignore[arg-type]


class _Range(InputPartition):
    """Records ``[first, first + count)`` of the stream: one Spark task."""

    def __init__(self, first: int, count: int) -> None:
        super().__init__((first, count))
        self.first = first
        self.count = count


def _split(first: int, end: int, parts: int) -> list[_Range]:
    bounds = np.linspace(first, end, parts + 1).astype(np.int64)
    return [_Range(int(a), int(b - a)) for a, b in itertools.pairwise(bounds) if b > a]


def _read_range(options: SourceOptions, part: _Range) -> Iterator[pa.RecordBatch]:
    for first in range(part.first, part.first + part.count, _CHUNK):
        count = min(_CHUNK, part.first + part.count - first)
        batch = generate_range(options.telemetry, first, count)
        if options.invalid_every:
            batch = _corrupt(batch, first, options.invalid_every)
        yield pa.RecordBatch.from_arrays(batch.columns, schema=_ARROW_SCHEMA)


def _corrupt(batch: pa.RecordBatch, first: int, every: int) -> pa.RecordBatch:
    """Every ``every``-th record gets a null rtt, alternating with a negative one."""
    position = np.arange(first, first + batch.num_rows, dtype=np.int64)
    hit = (position + 1) % every == 0
    rtt = batch.column("rtt_us").to_numpy().copy()
    negative = hit & (((position + 1) // every) % 2 == 0)
    rtt[negative] = -rtt[negative]
    null = hit & ~negative
    column = pa.array(rtt, pa.int64(), mask=null)
    columns = list(batch.columns)
    columns[batch.schema.get_field_index("rtt_us")] = column
    return pa.RecordBatch.from_arrays(columns, schema=_ARROW_SCHEMA)


class TelemetryDataSource(DataSource):
    """``format("blaze_telemetry")``: the telemetry generator as a batch or streaming source."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA_DDL

    def reader(self, schema) -> DataSourceReader:
        return _BatchReader(SourceOptions.parse(self.options))

    def streamReader(self, schema) -> DataSourceStreamReader:
        return _StreamReader(SourceOptions.parse(self.options))


class _BatchReader(DataSourceReader):
    def __init__(self, options: SourceOptions) -> None:
        if options.total_records <= 0:
            raise ValueError("the telemetry batch source needs totalRecords > 0")
        self.options = options

    def partitions(self) -> list[_Range]:
        return _split(0, self.options.total_records, self.options.num_partitions)

    def read(self, partition: _Range) -> Iterator[pa.RecordBatch]:
        return _read_range(self.options, partition)


class _StreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Offsets are record positions; availability follows ``rowsPerSecond`` of wall clock."""

    def __init__(self, options: SourceOptions) -> None:
        self.options = options
        self._clock_base: tuple[int, float] | None = None  # (index, monotonic time)
        self._target: int | None = None  # Trigger.AvailableNow end

    def initialOffset(self) -> dict:
        return {"index": 0}

    def _available(self, start: int) -> float:
        """Records that exist now (may be infinite for an endless, unthrottled stream)."""
        total = self.options.total_records or float("inf")
        if self.options.rows_per_second > 0:
            if self._clock_base is None:
                self._clock_base = (start, time.monotonic())
            base, since = self._clock_base
            total = min(total, base + (time.monotonic() - since) * self.options.rows_per_second)
        if self._target is not None:
            total = min(total, self._target)
        return total

    def prepareForTriggerAvailableNow(self) -> None:
        available = self._available(0)
        if available == float("inf"):
            raise ValueError(
                "Trigger.AvailableNow on the telemetry source needs totalRecords or rowsPerSecond"
            )
        self._target = int(available)

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.options.max_records_per_batch)

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        first = int(start["index"])
        end = self._available(first)
        if isinstance(limit, ReadMaxRows):
            end = min(end, first + limit.max_rows)
        elif not isinstance(limit, ReadAllAvailable) or end == float("inf"):
            end = min(end, first + self.options.max_records_per_batch)
        return {"index": max(first, int(end))}

    def partitions(self, start: dict, end: dict) -> list[_Range]:
        return _split(int(start["index"]), int(end["index"]), self.options.num_partitions)

    def read(self, partition: _Range) -> Iterator[pa.RecordBatch]:
        return _read_range(self.options, partition)


_REGISTERED: weakref.WeakSet = weakref.WeakSet()


def register_source(spark) -> None:
    """Make ``format("blaze_telemetry")`` available in this SparkSession (idempotent)."""
    if spark not in _REGISTERED:
        spark.dataSource.register(TelemetryDataSource)
        _REGISTERED.add(spark)


_OPTION_KEYS = {
    "seed": "seed",
    "num_servers": "numServers",
    "event_rate": "eventRate",
    "rows_per_second": "rowsPerSecond",
    "max_records_per_batch": "maxRecordsPerBatch",
    "total_records": "totalRecords",
    "num_partitions": "numPartitions",
    "invalid_every": "invalidEvery",
}


def _spark_options(kwargs: Mapping[str, object]) -> dict[str, str]:
    unknown = set(kwargs) - set(_OPTION_KEYS)
    if unknown:
        raise TypeError(f"unknown telemetry source argument(s) {sorted(unknown)}")
    options = {_OPTION_KEYS[k]: str(v) for k, v in kwargs.items()}
    SourceOptions.parse(options)  # fail here, in the driver, with one clear line
    return options


def read_telemetry_stream(spark, **kwargs: object):
    """A streaming DataFrame of telemetry; keyword arguments are the options in snake_case."""
    register_source(spark)
    return spark.readStream.format(SOURCE_NAME).options(**_spark_options(kwargs)).load()


def read_telemetry(spark, **kwargs: object):
    """The same records as a static DataFrame (``total_records`` is required)."""
    if int(kwargs.get("total_records", 0)) <= 0:  # type: ignore[call-overload]
        raise ValueError("read_telemetry needs total_records > 0")
    register_source(spark)
    return spark.read.format(SOURCE_NAME).options(**_spark_options(kwargs)).load()
