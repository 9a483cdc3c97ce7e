"""The monitoring query, described once and executable at a data source (numpy/pyarrow).

A Jarvis query is a chain of operators ``filter -> map/project -> [join static] -> aggregate``.
Each operator knows its output columns, so the schema of every *stage* (the records waiting
in front of operator ``k``) follows from the chain; the same description drives the local
numpy execution here and the Spark DataFrame execution in :mod:`streaming.jarvis.spark_ops`.

Why the aggregate is count/sum/min/max only: a data source ships *partial* aggregates of the
records it processed itself, and Spark merges them with the partials it computes from the
records that were forwarded raw. These four merge exactly (sum of counts, sum of sums, min of
mins, max of maxes), so the split query's answer equals the unsplit one bit for bit; a mean
is derived from sum/count at the end.

Stage numbering: stage ``k`` (0 <= k < K) holds records that have passed operators
``0..k-1`` and are waiting for operator ``k``; stage ``K`` holds partial aggregates.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from blaze_errors import InputError

__all__ = [
    "RAW_FIELDS",
    "Aggregate",
    "Columns",
    "Filter",
    "JoinTopology",
    "Operator",
    "Project",
    "Query",
    "columns_from_telemetry",
    "default_query",
    "query_from_spec",
    "sanitize",
]

Columns = dict[str, np.ndarray]
"""A record batch as named numpy columns of equal length."""

# What a data source reads: the telemetry generator's schema, timestamps as int64 microseconds
# (window arithmetic on integers is exact in numpy, Spark and DuckDB alike).
RAW_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("src", pa.int32()),
    ("dst", pa.int32()),
    ("ts_us", pa.int64()),
    ("rtt_us", pa.int64()),
    ("error_code", pa.int32()),
)

_COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Fields = tuple[tuple[str, pa.DataType], ...]


def _names(fields: Fields) -> tuple[str, ...]:
    return tuple(name for name, _ in fields)


def _require(fields: Fields, columns: Sequence[str], op: str) -> None:
    missing = [c for c in columns if c not in _names(fields)]
    if missing:
        raise ValueError(f"{op}: input has no column(s) {missing}; available: {_names(fields)}")


class Operator:
    """One operator of the chain: output schema plus a numpy implementation."""

    kind: ClassVar[str] = ""
    stateless: ClassVar[bool] = True

    def output_fields(self, fields: Fields) -> Fields:
        raise NotImplementedError

    def apply(self, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Filter(Operator):
    """Keep records where ``column OP value`` (e.g. ``error_code == 0``)."""

    column: str
    op: str
    value: int
    kind: ClassVar[str] = "filter"

    def __post_init__(self) -> None:
        if self.op not in _COMPARISONS:
            raise ValueError(
                f"filter: unknown comparison {self.op!r}; use one of {list(_COMPARISONS)}"
            )

    def output_fields(self, fields: Fields) -> Fields:
        _require(fields, [self.column], "filter")
        return fields

    def apply(self, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        mask = _COMPARISONS[self.op](cols[self.column], self.value)
        return {name: values[mask] for name, values in cols.items()}

    def to_spec(self) -> dict[str, Any]:
        return {"op": self.kind, "column": self.column, "cmp": self.op, "value": self.value}


@dataclass(frozen=True)
class Project(Operator):
    """Map each record to ``window_start`` (tumbling event-time window) plus kept columns."""

    window_us: int
    keep: tuple[str, ...]
    time_column: str = "ts_us"
    kind: ClassVar[str] = "project"

    def __post_init__(self) -> None:
        if int(self.window_us) <= 0:
            raise ValueError(f"project: window_us={self.window_us} must be positive")

    def output_fields(self, fields: Fields) -> Fields:
        _require(fields, [self.time_column, *self.keep], "project")
        types = dict(fields)
        return (("window_start", pa.int64()), *((c, types[c]) for c in self.keep))

    def apply(self, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        ts = cols[self.time_column]
        out: Columns = {"window_start": ts - ts % self.window_us}
        out.update({c: cols[c] for c in self.keep})
        return out

    def to_spec(self) -> dict[str, Any]:
        return {"op": self.kind, "window_us": self.window_us, "keep": list(self.keep)}


@dataclass(frozen=True)
class JoinTopology(Operator):
    """Inner join with the static server table: ``src``/``dst`` become ``src_<level>``/``dst_<level>``."""

    level: str = "pod"
    kind: ClassVar[str] = "join"

    def __post_init__(self) -> None:
        if self.level not in ("rack", "pod"):
            raise ValueError(f"join: level={self.level!r} must be 'rack' or 'pod'")

    def output_fields(self, fields: Fields) -> Fields:
        _require(fields, ["src", "dst"], "join")
        out = []
        for name, dtype in fields:
            if name in ("src", "dst"):
                out.append((f"{name}_{self.level}", pa.int32()))
            else:
                out.append((name, dtype))
        return tuple(out)

    def apply(self, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        lookup, known = _topology_lookup(tables["topology"], self.level)
        src, dst = cols["src"], cols["dst"]
        inside = (src >= 0) & (src < lookup.size) & (dst >= 0) & (dst < lookup.size)
        keep = (
            inside & known[np.where(inside, src, 0)] & known[np.where(inside, dst, 0)]
        )  # inner join: unknown servers drop
        out: Columns = {}
        for name, values in cols.items():
            if name in ("src", "dst"):
                out[f"{name}_{self.level}"] = lookup[values[keep]]
            else:
                out[name] = values[keep]
        return out

    def to_spec(self) -> dict[str, Any]:
        return {"op": self.kind, "level": self.level}


_LOOKUP_CACHE: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}


def _topology_lookup(table: pa.Table, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Dense server -> level array (+ which servers exist), built once per table."""
    key = (id(table), level)
    if key not in _LOOKUP_CACHE:
        server = table.column("server").to_numpy()
        values = table.column(level).to_numpy()
        size = int(server.max()) + 1 if server.size else 0
        lookup = np.zeros(size, dtype=np.int32)
        known = np.zeros(size, dtype=bool)
        lookup[server] = values
        known[server] = True
        _LOOKUP_CACHE.clear()
        _LOOKUP_CACHE[key] = (lookup, known)
    return _LOOKUP_CACHE[key]


@dataclass(frozen=True)
class Aggregate(Operator):
    """Group by ``keys``: count, sum, min, max of ``value`` (mergeable partials)."""

    keys: tuple[str, ...]
    value: str = "rtt_us"
    kind: ClassVar[str] = "aggregate"
    stateless: ClassVar[bool] = False

    @property
    def agg_columns(self) -> tuple[str, str, str, str]:
        v = self.value
        return ("cnt", f"{v}_sum", f"{v}_min", f"{v}_max")

    def output_fields(self, fields: Fields) -> Fields:
        _require(fields, [*self.keys, self.value], "aggregate")
        types = dict(fields)
        return (*((k, types[k]) for k in self.keys), *((c, pa.int64()) for c in self.agg_columns))

    def apply(self, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        table = pa.table({**{k: cols[k] for k in self.keys}, "v": cols[self.value]})
        grouped = table.group_by(list(self.keys), use_threads=False).aggregate(
            [("v", "count"), ("v", "sum"), ("v", "min"), ("v", "max")]
        )
        out: Columns = {k: grouped.column(k).to_numpy() for k in self.keys}
        for name, source in zip(self.agg_columns, ("v_count", "v_sum", "v_min", "v_max")):
            out[name] = grouped.column(source).to_numpy().astype(np.int64, copy=False)
        return out

    def merge(self, partials: Columns) -> Columns:
        """Merge partial aggregates that share keys (what Spark does at the end)."""
        table = pa.table(partials)
        cnt, s, lo, hi = self.agg_columns
        grouped = table.group_by(list(self.keys), use_threads=False).aggregate(
            [(cnt, "sum"), (s, "sum"), (lo, "min"), (hi, "max")]
        )
        out: Columns = {k: grouped.column(k).to_numpy() for k in self.keys}
        for name, source in zip(
            self.agg_columns, (f"{cnt}_sum", f"{s}_sum", f"{lo}_min", f"{hi}_max")
        ):
            out[name] = grouped.column(source).to_numpy().astype(np.int64, copy=False)
        return out

    def to_spec(self) -> dict[str, Any]:
        return {"op": self.kind, "keys": list(self.keys), "value": self.value}


_OPERATOR_KINDS = {cls.kind: cls for cls in (Filter, Project, JoinTopology, Aggregate)}


@dataclass(frozen=True)
class Query:
    """An operator chain ending in an :class:`Aggregate`; validated on construction."""

    operators: tuple[Operator, ...]

    def __post_init__(self) -> None:
        if not self.operators:
            raise ValueError("query: needs at least one operator")
        for op in self.operators:
            if not isinstance(op, Operator) or op.kind not in _OPERATOR_KINDS:
                raise TypeError(f"query: {op!r} is not a Jarvis operator")
        if not isinstance(self.operators[-1], Aggregate):
            raise ValueError("query: the last operator must be an aggregate")
        if any(isinstance(op, Aggregate) for op in self.operators[:-1]):
            raise ValueError("query: only the last operator may aggregate")
        fields: Fields = RAW_FIELDS
        stages = [fields]
        for op in self.operators:
            fields = op.output_fields(fields)
            stages.append(fields)
        object.__setattr__(self, "_stages", tuple(stages))

    @property
    def num_operators(self) -> int:
        return len(self.operators)

    @property
    def aggregate(self) -> Aggregate:
        return self.operators[-1]  # type: ignore[return-value]

    def stage_fields(self, stage: int) -> Fields:
        """Columns of stage ``stage`` (0 = raw records, K = partial aggregates)."""
        return self._stages[stage]  # type: ignore[attr-defined]

    def envelope_fields(self) -> Fields:
        """Union of all stage columns (first occurrence fixes the type), after ``stage``."""
        seen: dict[str, pa.DataType] = {}
        for fields in self._stages:  # type: ignore[attr-defined]
            for name, dtype in fields:
                seen.setdefault(name, dtype)
        return (("stage", pa.int32()), *seen.items())

    def run_operator(self, index: int, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        return self.operators[index].apply(cols, tables)

    def run_local(self, cols: Columns, tables: Mapping[str, pa.Table]) -> Columns:
        """The whole query on one batch (reference execution at a source)."""
        for op in self.operators:
            cols = op.apply(cols, tables)
        return cols

    def finish_local(
        self, stage_outputs: Mapping[int, Sequence[Columns]], tables: Mapping[str, pa.Table]
    ) -> Columns:
        """What Spark does, in numpy: finish every stage's records and merge the partials.

        The reference for property tests: for any load factors, finishing the forwarded
        stages must give exactly :meth:`run_local` of the whole input.
        """
        last = self.num_operators
        partials: list[Columns] = []
        for stage, parts in stage_outputs.items():
            for cols in parts:
                if stage < last:
                    for op in self.operators[stage:]:
                        cols = op.apply(cols, tables)
                partials.append(cols)
        names = [name for name, _ in self.stage_fields(last)]
        if not partials:
            return {name: np.empty(0, dtype=np.int64) for name in names}
        merged = {n: np.concatenate([p[n] for p in partials]) for n in names}
        return self.aggregate.merge(merged)

    def to_spec(self) -> list[dict[str, Any]]:
        return [op.to_spec() for op in self.operators]


def query_from_spec(spec: Sequence[Mapping[str, Any]]) -> Query:
    """Build a query from its JSON form (what agents receive); unknown operators are errors."""
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise InputError(
            f"query spec must be a list of operator objects, got {type(spec).__name__}"
        )
    ops: list[Operator] = []
    for i, item in enumerate(spec):
        if not isinstance(item, Mapping) or "op" not in item:
            raise InputError(f"query spec item {i} must be an object with an 'op' field: {item!r}")
        kind = item["op"]
        try:
            if kind == "filter":
                ops.append(Filter(item["column"], item["cmp"], int(item["value"])))
            elif kind == "project":
                ops.append(Project(int(item["window_us"]), tuple(item["keep"])))
            elif kind == "join":
                ops.append(JoinTopology(item.get("level", "pod")))
            elif kind == "aggregate":
                ops.append(Aggregate(tuple(item["keys"]), item.get("value", "rtt_us")))
            else:
                raise InputError(
                    f"query spec item {i}: unknown operator {kind!r}; known: {sorted(_OPERATOR_KINDS)}"
                )
        except KeyError as exc:
            raise InputError(
                f"query spec item {i} ({kind}): missing field {exc.args[0]!r}"
            ) from None
        except (ValueError, TypeError) as exc:
            raise InputError(f"query spec item {i} ({kind}): {exc}") from None
    try:
        return Query(tuple(ops))
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None


def default_query(window_us: int = 1_000_000, level: str = "pod") -> Query:
    """Pingmesh pod-to-pod latency: successful probes, per window and pod pair."""
    return Query(
        (
            Filter("error_code", "==", 0),
            Project(window_us, ("src", "dst", "rtt_us")),
            JoinTopology(level),
            Aggregate(("window_start", f"src_{level}", f"dst_{level}"), "rtt_us"),
        )
    )


def columns_from_telemetry(batch: pa.RecordBatch | pa.Table) -> Columns:
    """Telemetry batch (``ts`` as timestamp) -> raw stage columns (``ts_us`` as int64)."""
    names = batch.schema.names
    expected = ("src", "dst", "ts", "rtt_us", "error_code")
    missing = [c for c in expected if c not in names]
    if missing:
        raise InputError(f"telemetry batch lacks column(s) {missing}; has {names}")
    ts = batch.column("ts")
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts, pa.int64())
    return {
        "src": np.asarray(batch.column("src").to_numpy(zero_copy_only=False), dtype=np.int32),
        "dst": np.asarray(batch.column("dst").to_numpy(zero_copy_only=False), dtype=np.int32),
        "ts_us": np.asarray(ts.to_numpy(zero_copy_only=False), dtype=np.int64),
        "rtt_us": np.asarray(batch.column("rtt_us").to_numpy(zero_copy_only=False), dtype=np.int64),
        "error_code": np.asarray(
            batch.column("error_code").to_numpy(zero_copy_only=False), dtype=np.int32
        ),
    }


def sanitize(cols: Columns) -> tuple[Columns, int]:
    """Drop malformed raw records (negative ids, times, RTTs or codes); return how many.

    A probe agent can emit garbage (a corrupted log line, an uninitialised field). Such a
    record must not silently join an aggregate, nor stop the stream: it is skipped and the
    count is reported in the agent's stats and in each spool entry's metadata.
    """
    n = len(cols["src"])
    ok = (
        (cols["src"] >= 0)
        & (cols["dst"] >= 0)
        & (cols["ts_us"] >= 0)
        & (cols["rtt_us"] >= 0)
        & (cols["error_code"] >= 0)
    )
    bad = n - int(ok.sum())
    if bad == 0:
        return cols, 0
    return {name: values[ok] for name, values in cols.items()}, bad
