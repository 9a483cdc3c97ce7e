"""AOMG in Spark's own aggregation: windowed quantiles with no Python touching any record.

The summary of :mod:`streaming.aomg.summary` maps every value by arithmetic alone, so Spark's
codegen'd hash aggregation can build it from SQL expressions:

* *region and bucket per record* — a column expression: ``EXACT`` with the integer itself
  (``0 <= v <= exact_limit`` and whole), ``LOG`` with bucket ``ceil(ln v / ln γ)``, or
  ``SKIPPED`` (null, NaN, ±inf, negative: counted, never placed);
* *level 1* — ``count(*)`` grouped by (key, pane, region, bucket), plus the ``tail_size``
  largest ``LOG`` values of each (key, pane) by ``max_by(v, v, tail_size)``;
* *level 2* — pane rows regroup by (key, window): bucket counts are collected, pane tails
  pooled and the ``tail_size`` largest kept; each tail value counts as itself (+1) and is
  taken out of its bucket (-1), exactly as :meth:`QuantileSummary.merge_all` moves values
  between the tail and the buckets;
* *answer* — the (value, count) entries sorted by value (a bucket answers with its
  representative ``2γ^i / (γ + 1)``), one pass of running sums picks the value at each
  quantile's ``quantile_disc`` rank.

A pane is ``gcd(window, slide)`` long: a whole number of sub-windows and the coarsest span
that still lies wholly inside every window it touches, so the window summaries (and the
answers) are those of the sub-window summaries merged, with fewer groups. Batch
(:func:`batch_window_quantiles`) needs no counts at all: it collects each pane's proxies and
reads the answer off the sorted multiset the summary stands for, in one aggregation.
Streaming (:func:`level_one`, :func:`windows_answered`) needs one pass over each micro-batch, so ``LOG`` records are duplicated into a
tail group of the same (watermarked, append-mode) aggregation, and a chained aggregation
merges panes into windows once the watermark passes a window's end.

Equality with :class:`QuantileSummary`. The regions, buckets, tail, representatives and
ranks are the same definitions, computed by the same IEEE operations (a representative is one
multiplication of two tabled powers of γ, not ``exp``). Only the bucket index uses ``ln``, which the JVM
computes with ``StrictMath`` and numpy with its own routine: they can disagree only for a
value within an ulp of a bucket boundary ``γ^i``, and both neighbouring buckets then answer
within α of it. The tests check that answers are identical on every data set they use.
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from streaming.aomg.summary import SummaryConfig
from streaming.aomg.windows import WindowSpec

__all__ = [
    "EXACT",
    "LOG",
    "SKIPPED",
    "TAIL",
    "batch_window_quantiles",
    "level_one",
    "pane_us",
    "windows_answered",
]

SKIPPED, EXACT, LOG, TAIL = 0, 1, 2, 3


def pane_us(spec: WindowSpec) -> int:
    """Length of the panes level 1 groups by (a multiple of the sub-window)."""
    return math.gcd(spec.window_us, spec.slide_us)


def _duration(us: int) -> str:
    return f"{us} microseconds"


def _region(config: SummaryConfig) -> tuple[Column, Column]:
    """(region, bucket) of column ``v``: the summary's mapping as SQL expressions."""
    v = F.col("v")
    valid = v.isNotNull() & ~F.isnan(v) & (v >= F.lit(0.0)) & (v < F.lit(math.inf))
    exact = (v <= F.lit(float(config.exact_limit))) & (v == F.floor(v))
    region = F.when(~valid, SKIPPED).when(exact, EXACT).otherwise(LOG)
    bucket = (
        F.when(~valid, F.lit(0))
        .when(exact, v.cast("long"))
        .otherwise(_bucket_of(v, config))
        .cast("long")
    )
    return region, bucket


def _bucket_of(v: Column, config: SummaryConfig) -> Column:
    return F.ceil(F.ln(v) / F.lit(math.log(config.gamma)))


def _representative(bucket: Column, config: SummaryConfig) -> Column:
    """``2γ^i / (γ + 1)`` by the same table look-ups and multiplication as
    :meth:`SummaryConfig.representative`."""
    base, tables = config.power_tables()
    up_low, up_high, down_low, down_high = (_double_array(t) for t in tables)
    magnitude = F.abs(bucket)
    low = (magnitude % F.lit(base)).cast("int") + 1
    high = (magnitude / F.lit(base)).cast("long").cast("int") + 1
    power = F.when(bucket >= 0, F.element_at(up_high, high) * F.element_at(up_low, low)).otherwise(
        F.element_at(down_high, high) * F.element_at(down_low, low)
    )
    return (F.lit(2.0) * power) / F.lit(config.gamma + 1.0)


def _double_array(values: tuple[float, ...]) -> Column:
    return F.expr(_double_array_sql(values))


def _double_array_sql(values: tuple[float, ...]) -> str:
    """An array of doubles as ONE string literal cast to ``array<double>``: exact (``repr``
    of a double round-trips through Java's correctly rounded parse), folded to a constant,
    and far cheaper to parse and analyse than hundreds of numeric literals."""
    items = ",".join("Infinity" if math.isinf(x) else repr(x) for x in values)
    return f"CAST(split('{items}', ',') AS ARRAY<DOUBLE>)"


def level_one(prepared: DataFrame, spec: WindowSpec, config: SummaryConfig) -> DataFrame:
    """Pane rows ``(key, pane, region, bucket, n, tail)`` from records ``(key, ts, v)``.

    ``pane`` is Spark's window struct; ``tail`` is set on ``TAIL`` rows only. Streaming input
    must already carry its watermark on ``ts``.
    """
    region, bucket = _region(config)
    pane = F.window("ts", _duration(pane_us(spec))).alias("pane")
    mapped = prepared.select("key", pane, region.alias("region"), bucket.alias("bucket"), "v")
    keys = ["key", "pane", "region", "bucket"]
    tail_size = config.tail_size
    if not prepared.isStreaming:
        counts = mapped.groupBy(*keys).agg(
            F.count(F.lit(1)).alias("n"), F.lit(None).cast("array<double>").alias("tail")
        )
        if not tail_size:
            return counts
        tails = (
            mapped.where(F.col("region") == LOG)
            .groupBy("key", "pane")
            .agg(F.max_by("v", "v", tail_size).alias("tail"))
            .select(
                "key",
                "pane",
                F.lit(TAIL).alias("region"),
                F.lit(0).cast("long").alias("bucket"),
                F.lit(0).cast("long").alias("n"),
                "tail",
            )
        )
        return counts.unionByName(tails)
    if tail_size:
        # one pass: a LOG record is counted in its bucket and offered to its pane's tail
        copies = F.when(F.col("region") == LOG, F.array(F.lit(LOG), F.lit(TAIL))).otherwise(
            F.array(F.col("region"))
        )
        mapped = mapped.select(
            "key", "pane", F.explode(copies).alias("region"), "bucket", "v"
        ).select(
            "key",
            "pane",
            "region",
            F.when(F.col("region") == TAIL, F.lit(0).cast("long"))
            .otherwise(F.col("bucket"))
            .alias("bucket"),
            F.when(F.col("region") == TAIL, F.col("v")).alias("tv"),
        )
        return mapped.groupBy(*keys).agg(
            F.count(F.lit(1)).alias("n"), F.max_by("tv", "tv", tail_size).alias("tail")
        )
    return mapped.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("n"), F.lit(None).cast("array<double>").alias("tail")
    )


def windows_answered(
    panes: DataFrame, spec: WindowSpec, config: SummaryConfig, quantiles: np.ndarray
) -> DataFrame:
    """Level 2 and the answer: one row per (key, window) from the pane rows of level 1."""
    region = F.col("region")
    value = F.when(region == EXACT, F.col("bucket").cast("double")).otherwise(
        _representative(F.col("bucket"), config)
    )
    entry = F.when(
        (region == EXACT) | (region == LOG), F.struct(value.alias("value"), F.col("n").alias("n"))
    )
    window = F.window(
        F.window_time("pane"), _duration(spec.window_us), _duration(spec.slide_us)
    ).alias("w")
    merged = panes.groupBy("key", window).agg(
        F.collect_list(entry).alias("entries"),
        F.flatten(F.collect_list("tail")).alias("tails"),
        F.sum(F.when((region == EXACT) | (region == LOG), F.col("n")).otherwise(0)).alias("count"),
        F.sum(F.when(region == SKIPPED, F.col("n")).otherwise(0)).alias("skipped"),
    )
    return merged.select(
        "key",
        F.col("w.start").alias("window_start"),
        F.col("w.end").alias("window_end"),
        F.col("count").cast("long").alias("count"),
        F.col("skipped").cast("long").alias("skipped"),
        _answer(F.col("entries"), F.col("tails"), F.col("count"), config, quantiles).alias(
            "quantiles"
        ),
    )


def _answer(
    entries: Column, tails: Column, count: Column, config: SummaryConfig, quantiles: np.ndarray
) -> Column:
    """Values at the ``quantile_disc`` ranks of (value, count) entries plus the pooled tails."""
    tail = (
        F.slice(F.sort_array(tails, asc=False), 1, config.tail_size) if config.tail_size else None
    )
    parts = [entries]
    if tail is not None:
        parts.append(
            F.transform(
                tail, lambda x: F.struct(x.alias("value"), F.lit(1).cast("long").alias("n"))
            )
        )
        parts.append(
            F.transform(
                tail,
                lambda x: F.struct(
                    _representative(_bucket_of(x, config), config).alias("value"),
                    F.lit(-1).cast("long").alias("n"),
                ),
            )
        )
    # (value, n) order: at equal values the tail's -1 comes first, so running sums never
    # overshoot the count of values <= that value
    ordered = F.array_sort(F.concat(*parts)) if len(parts) > 1 else F.array_sort(entries)
    ranks = [F.greatest(F.ceil(count * F.lit(float(q))), F.lit(1)) for q in quantiles]
    names = [f"a{i}" for i in range(len(ranks))]
    start = F.struct(
        F.lit(0).cast("long").alias("cum"), *(F.lit(None).cast("double").alias(n) for n in names)
    )

    def step(acc: Column, x: Column) -> Column:
        cum = acc["cum"] + x["n"]
        return F.struct(
            cum.alias("cum"),
            *(
                F.coalesce(acc[n], F.when(cum >= r, x["value"])).alias(n)
                for n, r in zip(names, ranks, strict=True)
            ),
        )

    picked = F.aggregate(ordered, start, step, lambda acc: F.array(*(acc[n] for n in names)))
    return F.when(count > 0, picked).otherwise(F.array(*(F.lit(math.nan) for _ in names)))


# -- batch: one hash aggregation of counts, tails from a threshold-filtered second pass ------


def _sql_double(x: float) -> str:
    return "CAST('Infinity' AS DOUBLE)" if math.isinf(x) else f"{x!r}D"


def _representative_sql(bucket: str, config: SummaryConfig) -> str:
    """SQL of ``2γ^i / (γ + 1)``: the same table look-ups and multiplication as
    :meth:`SummaryConfig.representative` (constant arrays fold to literals)."""
    base, tables = config.power_tables()
    up_low, up_high, down_low, down_high = (_double_array_sql(t) for t in tables)
    low = f"CAST(abs({bucket}) % {base} AS INT) + 1"
    high = f"CAST(abs({bucket}) div {base} AS INT) + 1"
    power = (
        f"CASE WHEN {bucket} >= 0 THEN element_at({up_high}, {high}) * element_at({up_low}, {low})"
        f" ELSE element_at({down_high}, {high}) * element_at({down_low}, {low}) END"
    )
    return f"(2.0D * ({power})) / {_sql_double(config.gamma + 1.0)}"


def _mapping_sql(config: SummaryConfig) -> tuple[str, str]:
    """(region, bucket) of column ``v`` as SQL: null, NaN, ±inf and negatives fail
    ``v >= 0 AND v < inf`` and land in ``SKIPPED``."""
    valid = "v >= 0D AND v < CAST('Infinity' AS DOUBLE)"
    exact = f"v <= {float(config.exact_limit)!r}D AND v = floor(v)"
    region = (
        f"CASE WHEN {valid} THEN (CASE WHEN {exact} THEN {EXACT} ELSE {LOG} END) ELSE {SKIPPED} END"
    )
    log_gamma = _sql_double(math.log(config.gamma))
    bucket = (
        f"CAST(CASE WHEN {valid} THEN (CASE WHEN {exact} THEN v ELSE ceil(ln(v) / {log_gamma}) END)"
        " ELSE 0 END AS BIGINT)"
    )
    return region, bucket


def batch_window_quantiles(
    prepared: DataFrame, spec: WindowSpec, config: SummaryConfig, quantiles: np.ndarray
) -> DataFrame:
    """Batch answer rows ``(key, window_start, window_end, count, skipped, quantiles)`` from
    records ``(key, ts, v)``, as one Spark query with one aggregation (two when windows slide).

    Every record's *proxy* — the integer itself (``EXACT``) or its bucket's representative
    (``LOG``) — is computed by a codegen'd expression; one hash-partitioned aggregation per
    (key, pane) collects the ``EXACT`` values, the ``LOG`` proxies and the ``LOG`` raw values
    (sliding windows concatenate their panes' lists). A window's summary, expanded, is then
    the multiset: ``EXACT`` values, the ``LOG`` proxies without the ``tail_size`` largest (the
    proxy is monotone in the value, so those are the tail values' proxies) and the
    ``tail_size`` largest raw ``LOG`` values. The value at ``quantile_disc`` rank ``r`` of that
    sorted multiset is exactly :meth:`QuantileSummary.quantiles`' answer, read by index.

    Measured against grouping counts by (key, pane, region, bucket) and answering by running
    sums: telemetry values are hundreds of distinct integers per window, so count rows barely
    shrink below the records and the extra shuffles and sorts cost more than sorting each
    window's values once.
    """
    pane, window, slide = pane_us(spec), spec.window_us, spec.slide_us
    region, bucket = _mapping_sql(config)
    # -0.0 + 0.0 is 0.0, as the summary's integer exact values are
    mapped = prepared.selectExpr(
        "key",
        f"unix_micros(ts) - pmod(unix_micros(ts), {pane}) AS p",
        f"{region} AS region",
        f"{bucket} AS bucket",
        "v",
    ).selectExpr(
        "key",
        "p",
        f"CASE WHEN region = {EXACT} THEN v + 0.0D END AS e",
        f"CASE WHEN region = {LOG} THEN {_representative_sql('bucket', config)} END AS l",
        f"CASE WHEN region = {LOG} THEN v END AS r",
        f"CASE WHEN region = {SKIPPED} THEN 1 ELSE 0 END AS s",
    )
    lists = mapped.groupBy("key", "p").agg(
        F.expr("collect_list(e) AS e"),
        F.expr("collect_list(l) AS l"),
        F.expr("collect_list(r) AS r"),
        F.expr("sum(s) AS skipped"),
    )
    if window == slide:
        merged = lists.withColumnRenamed("p", "w")
    else:
        starts = f"sequence(p - pmod(p, {slide}) + {slide} - {window}, p, {slide})"
        merged = (
            lists.selectExpr("key", f"explode({starts}) AS w", "e", "l", "r", "skipped")
            .groupBy("key", "w")
            .agg(
                F.expr("flatten(collect_list(e)) AS e"),
                F.expr("flatten(collect_list(l)) AS l"),
                F.expr("flatten(collect_list(r)) AS r"),
                F.expr("sum(skipped) AS skipped"),
            )
        )
    t = config.tail_size
    merged = merged.selectExpr(
        "key",
        "w",
        "skipped",
        "size(e) + size(l) AS count",
        "e",
        "sort_array(l) AS l",
        "r",
        f"size(l) - least({t}, size(l)) AS cut",
    )
    if t:
        # the tail_size largest raw values have proxies >= l[cut + 1] (the proxy is monotone)
        # and every value exceeds (γ + 1) / (2γ) of its proxy, so all of them pass this far
        # lower bound: a cheap filter leaves few candidates to sort instead of every LOG value
        low = f"try_element_at(l, cut + 1) * {_sql_double(0.5 / config.gamma)}"
        tail = f"slice(sort_array(filter(r, x -> x >= {low}), false), 1, {t})"
        merged = merged.selectExpr(
            "key",
            "w",
            "skipped",
            "count",
            f"sort_array(concat(e, slice(l, 1, cut), {tail})) AS m",
        )
    else:
        merged = merged.selectExpr("key", "w", "skipped", "count", "sort_array(concat(e, l)) AS m")
    picks = ", ".join(
        f"element_at(m, CAST(greatest(ceil(count * {float(q)!r}D), 1) AS INT))" for q in quantiles
    )
    nans = ", ".join("CAST('NaN' AS DOUBLE)" for _ in quantiles)
    return merged.selectExpr(
        "key",
        "timestamp_micros(w) AS window_start",
        f"timestamp_micros(w + {window}) AS window_end",
        "CAST(count AS BIGINT) AS count",
        "CAST(skipped AS BIGINT) AS skipped",
        f"CASE WHEN count > 0 THEN array({picks}) ELSE array({nans}) END AS quantiles",
    )
