"""The same query as Spark DataFrame transformations: finishing a split query, or all of it.

:func:`finish_query` takes envelope rows (any mix of stages) and applies, to each row, exactly
the operators its stage still needs, in ONE pass: operator ``j`` acts on rows whose
``stage <= j`` and passes the others through (a filter keeps them, a projection leaves their
columns, the join matches only them). A union of one branch per stage would be simpler to
read, but Spark would then scan the streaming source once per branch. Rows that are still
records become unit partial aggregates (count 1, sum = min = max = value) and one group-by
merges them with the partial aggregates the sources shipped.

:func:`run_unsplit` is the plain whole-query plan over raw records (filter, withColumn, join,
groupBy): a separate code path, so comparing the two checks the split for real.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streaming.jarvis.query import Aggregate, Filter, JoinTopology, Project, Query

__all__ = ["finish_query", "run_unsplit", "topology_frame"]

_CMP = {
    "==": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def topology_frame(spark, topology_table) -> DataFrame:
    """The static server table (a pyarrow table from ``server_topology``) as a DataFrame."""
    return spark.createDataFrame(topology_table.to_pandas())


def _join_side(df: DataFrame, topology: DataFrame, side: str, level: str, stage_guard):
    alias = f"_j_{side}"
    right = F.broadcast(
        topology.select(F.col("server").alias(f"{alias}_server"), F.col(level).alias(f"{alias}_v"))
    )
    cond = F.col(side) == F.col(f"{alias}_server")
    if stage_guard is not None:
        cond = cond & stage_guard
    joined = df.join(right, cond, "left")
    if stage_guard is None:
        return joined.filter(F.col(f"{alias}_server").isNotNull()), alias
    return joined.filter(~stage_guard | F.col(f"{alias}_server").isNotNull()), alias


def finish_query(envelope: DataFrame, query: Query, topology: DataFrame) -> DataFrame:
    """Finish every row of the envelope and merge into the query's answer."""
    df = envelope
    stage = F.col("stage")
    agg = query.aggregate
    for j, op in enumerate(query.operators[:-1]):
        pending = stage <= j
        if isinstance(op, Filter):
            df = df.filter(~pending | _CMP[op.op](F.col(op.column), F.lit(op.value)))
        elif isinstance(op, Project):
            ts = F.col(op.time_column)
            bucket = ts - F.pmod(ts, F.lit(op.window_us))
            df = df.withColumn(
                "window_start", F.when(pending, bucket).otherwise(F.col("window_start"))
            )
        elif isinstance(op, JoinTopology):
            for side in ("src", "dst"):
                df, alias = _join_side(df, topology, side, op.level, pending)
                out = f"{side}_{op.level}"
                df = df.withColumn(
                    out, F.when(pending, F.col(f"{alias}_v")).otherwise(F.col(out))
                ).drop(f"{alias}_server", f"{alias}_v")
        else:  # pragma: no cover - Query guarantees only the last operator aggregates
            raise TypeError(f"unexpected operator {op!r} before the aggregate")
    cnt, s, lo, hi = agg.agg_columns
    raw = stage < query.num_operators
    value = F.col(agg.value)
    df = df.select(
        *agg.keys,
        F.when(raw, F.lit(1).cast("long")).otherwise(F.col(cnt)).alias(cnt),
        F.when(raw, value).otherwise(F.col(s)).alias(s),
        F.when(raw, value).otherwise(F.col(lo)).alias(lo),
        F.when(raw, value).otherwise(F.col(hi)).alias(hi),
    )
    return df.groupBy(*agg.keys).agg(
        F.sum(cnt).alias(cnt), F.sum(s).alias(s), F.min(lo).alias(lo), F.max(hi).alias(hi)
    )


def run_unsplit(raw: DataFrame, query: Query, topology: DataFrame) -> DataFrame:
    """The whole query in Spark over raw records (columns ``src, dst, ts_us, rtt_us, ...``)."""
    df = raw
    for op in query.operators:
        if isinstance(op, Filter):
            df = df.filter(_CMP[op.op](F.col(op.column), F.lit(op.value)))
        elif isinstance(op, Project):
            ts = F.col(op.time_column)
            df = df.select((ts - F.pmod(ts, F.lit(op.window_us))).alias("window_start"), *op.keep)
        elif isinstance(op, JoinTopology):
            for side in ("src", "dst"):
                df, alias = _join_side(df, topology, side, op.level, None)
                df = df.withColumnRenamed(f"{alias}_v", f"{side}_{op.level}").drop(
                    f"{alias}_server", side
                )
        elif isinstance(op, Aggregate):
            cnt, s, lo, hi = op.agg_columns
            v = F.col(op.value)
            df = df.groupBy(*op.keys).agg(
                F.count(v).alias(cnt), F.sum(v).alias(s), F.min(v).alias(lo), F.max(v).alias(hi)
            )
    return df
