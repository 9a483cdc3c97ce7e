"""Spark's ingestion of the spool: a Python Data Source stream reader yielding Arrow batches.

Why this reader rather than Spark's file source: the spool holds Arrow IPC files (cheap for
the CPU-budgeted agent to write, see :mod:`streaming.jarvis.spool`), which no built-in Spark
source reads; a Python stream reader that *yields ``pyarrow.RecordBatch``* passes them to the
JVM as Arrow with no per-row Python work. Offsets are ``{"agent": last complete entry}``;
entries are immutable once renamed into place, so replaying an offset range after a failure
reads exactly the same records (Spark's checkpoint makes the query exactly-once).

Every row carries the envelope schema of the query (``stage`` plus the union of all stage
columns, null where a stage lacks a column), so one source and one plan finish all stages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from streaming.jarvis.query import Query, query_from_spec
from streaming.jarvis.spool import list_agents, list_entries, read_entry_tables

__all__ = ["SOURCE_NAME", "JarvisSpoolDataSource", "envelope_batch", "spark_schema"]

SOURCE_NAME = "jarvis_spool"

try:  # the reader classes need pyspark; the rest of the package does not
    from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
except ImportError:  # pragma: no cover - pyspark is a hard dependency of the package
    DataSource = DataSourceStreamReader = InputPartition = object  # type: ignore[misc,assignment]


def spark_schema(query: Query):
    """The envelope as a Spark ``StructType`` (all nullable)."""
    from pyspark.sql.types import IntegerType, LongType, StructField, StructType

    types = {pa.int32(): IntegerType(), pa.int64(): LongType()}
    return StructType([StructField(n, types[t], True) for n, t in query.envelope_fields()])


def envelope_batch(query: Query, stage: int, table: pa.Table) -> pa.RecordBatch:
    """One stage table as a record batch of the envelope schema."""
    n = table.num_rows
    schema = pa.schema([pa.field(name, t, nullable=True) for name, t in query.envelope_fields()])
    arrays = []
    for name, dtype in query.envelope_fields():
        if name == "stage":
            arrays.append(pa.array([stage] * n, type=pa.int32()))
        elif name in table.column_names:
            arrays.append(table.column(name).combine_chunks().cast(dtype))
        else:
            arrays.append(pa.nulls(n, type=dtype))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class _AgentRange(InputPartition):  # type: ignore[misc]
    agent: int
    first_seq: int
    last_seq: int


class JarvisSpoolStreamReader(DataSourceStreamReader):  # type: ignore[misc]
    def __init__(self, root: str, query: Query) -> None:
        self.root, self.query = root, query

    def initialOffset(self) -> dict:
        return {}

    def latestOffset(self, start: dict | None = None, limit=None) -> dict:
        latest = dict(start or {})
        for agent in list_agents(self.root):
            entries = list_entries(self.root, agent)
            if entries:
                latest[str(agent)] = entries[-1]
        return latest

    def partitions(self, start: dict, end: dict) -> list[_AgentRange]:
        parts = []
        for key, last in sorted(end.items()):
            first = int(start.get(key, -1)) + 1
            if first <= int(last):
                parts.append(_AgentRange(int(key), first, int(last)))
        return parts

    def read(self, partition: _AgentRange) -> Iterator[pa.RecordBatch]:
        for seq in range(partition.first_seq, partition.last_seq + 1):
            for stage, table in sorted(read_entry_tables(self.root, partition.agent, seq).items()):
                if table.num_rows:
                    yield envelope_batch(self.query, stage, table)

    def commit(self, end: dict) -> None:
        """Entries stay on disk: the harness deletes the spool when the run ends."""


class JarvisSpoolDataSource(DataSource):  # type: ignore[misc]
    """``spark.readStream.format("jarvis_spool").option("path", ...).option("query", json)``."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def _query(self) -> Query:
        spec = self.options.get("query")
        if spec is None:
            raise ValueError("jarvis_spool: option 'query' (the query spec as JSON) is required")
        return query_from_spec(json.loads(spec))

    def schema(self):
        return spark_schema(self._query())

    def streamReader(self, schema) -> JarvisSpoolStreamReader:
        path = self.options.get("path")
        if not path:
            raise ValueError("jarvis_spool: option 'path' (the spool directory) is required")
        return JarvisSpoolStreamReader(path, self._query())
