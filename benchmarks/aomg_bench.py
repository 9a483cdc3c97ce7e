"""AOMG benchmark: the same windowed quantile query by three methods in one Spark session.

Query: per key, 10 s tumbling windows (AOMG: of 1 s sub-windows), quantiles p50, p90, p99,
p99.9. Methods, all on the same cached input (batch) or the same parquet files (streaming):

* ``aomg`` — ``window_quantiles``: the ``aomg_summary_agg`` SQL aggregate of blaze-spark's JVM
  module (the AOMG summary is the aggregation buffer) read by ``aomg_quantiles``;
* ``percentile_approx`` — Spark's GK sketch, default accuracy (10,000);
* ``kll`` — Spark's native ``kll_sketch_agg_double`` (default k) + ``kll_sketch_get_quantile_double``.

Grid: rows (1 M, 10 M) x keys (10, 1,000) x two generators — ``telemetry`` (the project's
Pingmesh generator: integer RTTs, recurring small values, Pareto tail, timeouts; key =
server id bucket) and ``bursty`` (not used to tune AOMG: bursts of events at the start of
each second, Zipf-skewed keys, float values from two lognormal modes and a Pareto(1.1)
tail). Batch: each method is warmed up once per session (JIT), then ``--repeats`` runs per
method at 1 M rows and ``--large-repeats`` above, the order reversed every other round, median
reported. Streaming: the parquet files read with ``maxFilesPerTrigger`` (10 micro-batches,
append mode, 1 s watermark delay); records/s = input rows / trigger time of the batches after
the first, median of ``--stream-repeats`` runs; sizes above ``--stream-max-rows`` (default:
all) are the batch comparison only, and the report says so. Error: max relative value error
|q̂ - q| / q over all (key, window) rows against DuckDB's exact ``quantile_disc`` on the same
files. State: mean and max bytes per window summary (AOMG's and KLL's, from the same groups).
Targets (issue 22), printed met / missed per row: AOMG ≥ 3× ``percentile_approx`` and ≥ 1× KLL.

Run (the lead, on an idle machine): ``python benchmarks/aomg_bench.py``; ``--smoke`` runs a
tiny grid end to end in a few minutes (proves the script, measures nothing). Results:
``aomg_bench.json``, ``.md`` and ``.png`` under ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUANTILES = [0.5, 0.9, 0.99, 0.999]
LABELS = ["p50", "p90", "p99", "p99.9"]
WINDOW_S, SUB_WINDOW_S = 10, 1
EVENT_RATE = 20_000  # records per event-time second: 1 M rows = 50 s = 5 windows per key
SMOKE_EVENT_RATE = 1_000  # smoke: 30 k rows = 30 s, so streaming closes windows too
START_S = 1_700_000_000
METHODS = ("aomg", "percentile_approx", "kll")
# Batch only, not a quantile method: the same read, window and grouping with count() as the
# aggregate. What every method pays besides its own aggregate; its rate over a method's is the
# most any aggregate could gain over that method in this query.
FLOOR = "count_floor"
TARGETS = {"percentile_approx": 3.0, "kll": 1.0}  # AOMG records/s over the baseline's
STREAM_BATCHES = 10


# -- data ------------------------------------------------------------------------------------


def write_telemetry(spark, rows: int, keys: int, path: str, event_rate: int) -> None:
    from pyspark.sql import functions as F

    from streaming.common.source import read_telemetry

    raw = read_telemetry(spark, total_records=rows, event_rate=event_rate, seed=11)
    per_key = max(1, 1_000 // keys)  # 1,000 servers
    out = raw.select(
        (F.col("src") / per_key).cast("int").alias("key"),
        "ts",
        F.col("rtt_us").cast("double").alias("value"),
    )
    _write(out, path)


def write_bursty(spark, rows: int, keys: int, path: str, event_rate: int) -> None:
    """Bursty times, Zipf-like key skew, bimodal + Pareto(1.1) float values."""
    from pyspark.sql import functions as F

    ids = spark.range(rows, numPartitions=4)
    second = F.floor(F.col("id") / event_rate)
    offset_us = F.floor(F.pow(F.rand(21), 4) * 1e6)  # most events early in each second
    mode = F.rand(22)
    value = (
        F.when(mode < 0.45, F.exp(F.randn(23) * 0.4 + 5.0))
        .when(mode < 0.9, F.exp(F.randn(24) * 0.3 + 8.0))
        .otherwise(1e4 * F.pow(1.0 - F.rand(25), -1.0 / 1.1))
    )
    out = ids.select(
        F.least(F.floor(F.pow(F.rand(26), 2.5) * keys), F.lit(keys - 1)).cast("int").alias("key"),
        F.timestamp_micros((F.lit(START_S) + second) * 1_000_000 + offset_us).alias("ts"),
        value.alias("value"),
    )
    _write(out, path)


def _write(df, path: str) -> None:
    files = STREAM_BATCHES * 2  # two files per micro-batch
    df.repartitionByRange(files, "ts").sortWithinPartitions("ts").write.mode("overwrite").parquet(
        path
    )


GENERATORS = {"telemetry": write_telemetry, "bursty": write_bursty}


def exact_answers(path: str) -> dict:
    con = duckdb.connect()
    picks = ", ".join(f"quantile_disc(value, {q})" for q in QUANTILES)
    window_us = WINDOW_S * 1_000_000
    rows = con.execute(
        f"""SELECT key, epoch_us(ts) - epoch_us(ts) % {window_us} + {window_us} AS w, {picks}
            FROM read_parquet('{path}/*.parquet') GROUP BY ALL"""
    ).fetchall()
    return {(int(r[0]), int(r[1])): np.asarray(r[2:], dtype=np.float64) for r in rows}


# -- the four queries ------------------------------------------------------------------------


def query(name: str, df):
    from pyspark.sql import functions as F

    from streaming.aomg.operator import window_quantiles

    if name == "aomg":
        return window_quantiles(
            df,
            window=f"{WINDOW_S} seconds",
            sub_window=f"{SUB_WINDOW_S} second",
            quantiles=QUANTILES,
            key_col="key",
            value_col="value",
            watermark_delay="1 second",
        ).select("key", "window_end", "quantiles")
    if df.isStreaming:
        df = df.withWatermark("ts", "1 second")
    grouped = df.groupBy("key", F.window("ts", f"{WINDOW_S} seconds"))
    if name == FLOOR:
        agg = grouped.agg(F.count("value").alias("quantiles"))
    elif name == "percentile_approx":
        agg = grouped.agg(F.percentile_approx("value", QUANTILES).alias("quantiles"))
    else:
        agg = grouped.agg(F.kll_sketch_agg_double("value").alias("s")).select(
            "key",
            "window",
            F.array(*(F.kll_sketch_get_quantile_double("s", F.lit(q)) for q in QUANTILES)).alias(
                "quantiles"
            ),
        )
    return agg.select("key", F.col("window.end").alias("window_end"), "quantiles")


def answers_of(rows) -> dict:
    return {
        (int(r["key"]), int(r["window_end"].timestamp() * 1_000_000)): np.asarray(
            r["quantiles"], dtype=np.float64
        )
        for r in rows
    }


def max_errors(answers: dict, exact: dict) -> dict | None:
    keys = sorted(k for k in answers if k in exact)
    if not keys:
        return None
    est = np.vstack([answers[k] for k in keys])
    truth = np.vstack([exact[k] for k in keys])
    rel = np.abs(est - truth) / np.where(truth == 0, 1.0, truth)
    return {label: float(rel[:, i].max()) for i, label in enumerate(LABELS)} | {
        "windows": len(keys)
    }


# -- runs ------------------------------------------------------------------------------------


_WARM: set[str] = set()  # methods already run once in this session


def summary_bytes(static) -> dict:
    """Mean and max bytes of one (key, window) summary: AOMG's and KLL's, same groups."""
    from pyspark.sql import functions as F

    from streaming.aomg.operator import window_summaries

    aomg = window_summaries(
        static,
        window=f"{WINDOW_S} seconds",
        sub_window=f"{SUB_WINDOW_S} second",
        key_col="key",
        value_col="value",
    ).agg(F.avg(F.length("summary")).alias("mean"), F.max(F.length("summary")).alias("max"))
    kll = (
        static.groupBy("key", F.window("ts", f"{WINDOW_S} seconds"))
        .agg(F.kll_sketch_agg_double("value").alias("s"))
        .agg(F.avg(F.length("s")).alias("mean"), F.max(F.length("s")).alias("max"))
    )
    a, k = aomg.first(), kll.first()
    return {
        "aomg": {"mean": float(a["mean"]), "max": int(a["max"])},
        "kll": {"mean": float(k["mean"]), "max": int(k["max"])},
    }


def batch_runs(spark, path: str, rows: int, exact: dict, methods, repeats: int) -> dict:
    static = spark.read.parquet(path).cache()
    static.count()
    times: dict[str, list[float]] = {m: [] for m in methods}
    answers: dict[str, dict] = {}
    for m in methods:  # warm-up once per session: JIT, Python workers
        if m not in _WARM:
            query(m, static).collect()
            _WARM.add(m)
    for round_ in range(repeats):
        order = methods if round_ % 2 == 0 else list(reversed(methods))
        for m in order:
            start = time.perf_counter()
            result = query(m, static).collect()
            times[m].append(time.perf_counter() - start)
            if m != FLOOR:
                answers[m] = answers_of(result)
    sizes = summary_bytes(static)
    static.unpersist()
    return sizes, {
        m: {
            "seconds": statistics.median(times[m]),
            "seconds_all": times[m],
            "records_per_s": rows / statistics.median(times[m]),
            "error": max_errors(answers[m], exact) if m in answers else None,
        }
        for m in methods
    }


def stream_runs(spark, path: str, name: str, exact: dict, repeats: int) -> dict:
    runs = [stream_run(spark, path, name, exact) for _ in range(repeats)]
    rates = [r["records_per_s"] for r in runs]
    return {**runs[-1], "records_per_s": statistics.median(rates), "records_per_s_all": rates}


def stream_run(spark, path: str, name: str, exact: dict) -> dict:
    schema = spark.read.parquet(path).schema
    files = len(list(Path(path).glob("*.parquet")))
    stream = (
        spark.readStream.schema(schema)
        .option("maxFilesPerTrigger", max(1, files // STREAM_BATCHES))
        .parquet(path)
    )
    table = f"aomg_bench_{name}_{time.monotonic_ns()}"
    handle = (
        query(name, stream)
        .writeStream.format("memory")
        .queryName(table)
        .outputMode("append")
        .option("checkpointLocation", tempfile.mkdtemp(prefix="aomg-bench-"))
        .trigger(availableNow=True)
        .start()
    )
    handle.awaitTermination()
    progress = [p for p in handle.recentProgress if p["numInputRows"]]
    warm = progress[1:] or progress
    seconds = sum(p["durationMs"]["triggerExecution"] for p in warm) / 1e3
    result = answers_of(spark.sql(f"SELECT * FROM {table}").collect())
    spark.sql(f"DROP VIEW IF EXISTS {table}")
    return {
        "records_per_s": sum(p["numInputRows"] for p in warm) / seconds,
        "micro_batches": len(progress),
        "first_batch_s": progress[0]["durationMs"]["triggerExecution"] / 1e3,
        "error": max_errors(result, exact),
    }


def run_grid(args) -> list[dict]:
    import blaze
    from streaming.aomg import with_aomg_jar

    spark = blaze.session(
        with_aomg_jar(
            {
                "spark.master": "local[2]",
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.shuffle.partitions": "4",
                "spark.driver.memory": "4g",
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.streaming.stateStore.providerClass": (
                    "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
                ),
                "spark.python.worker.reuse": "true",
            }
        ),
        app_name="aomg-bench",
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="aomg-bench-data-"))
    results: list[dict] = []
    try:
        for generator in args.generators:
            for keys in args.keys:
                for rows in sorted(args.rows):
                    path = str(work / f"{generator}_{keys}_{rows}")
                    GENERATORS[generator](spark, rows, keys, path, args.event_rate)
                    exact = exact_answers(path)
                    methods = list(METHODS)
                    note = ""
                    repeats = args.repeats if rows <= 1_000_000 else args.large_repeats
                    sizes, batch = batch_runs(spark, path, rows, exact, [*methods, FLOOR], repeats)
                    stream = {}
                    if not args.no_stream and rows > args.stream_max_rows:
                        note = f"streaming not run above {args.stream_max_rows:,} rows (time)"
                    elif not args.no_stream:
                        # reversed order per size
                        order = methods if len(results) % 2 == 0 else list(reversed(methods))
                        for m in order:
                            stream[m] = stream_runs(spark, path, m, exact, args.stream_repeats)
                    entry = {
                        "generator": generator,
                        "rows": rows,
                        "keys": keys,
                        "windows": len(exact),
                        "summary_bytes": sizes,
                        "batch": batch,
                        "stream": stream,
                        "note": note,
                    }
                    results.append(entry)
                    print(summary_line(entry), flush=True)
                    shutil.rmtree(path, ignore_errors=True)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


# -- report ----------------------------------------------------------------------------------


def _ratio(block: dict, a: str, b: str) -> float | None:
    if a in block and b in block:
        return block[a]["records_per_s"] / block[b]["records_per_s"]
    return None


def _verdict(block: dict, base: str) -> str:
    ratio = _ratio(block, "aomg", base)
    if ratio is None:
        return "-"
    met = "met" if ratio >= TARGETS[base] else "MISSED"
    return f"{ratio:.2f}× ({met}, target ≥ {TARGETS[base]:g}×)"


def summary_line(e: dict) -> str:
    parts = [f"{e['generator']} {e['rows']:,} rows {e['keys']} keys:"]
    for mode in ("batch", "stream"):
        block = e[mode]
        if not block:
            continue
        parts.append(
            f"{mode} AOMG/GK {_verdict(block, 'percentile_approx')} "
            f"AOMG/KLL {_verdict(block, 'kll')}"
        )
    if FLOOR in e["batch"]:
        parts.append(f"(batch ceiling over GK {_ceiling(e['batch'], 'percentile_approx')})")
    sizes = e["summary_bytes"]
    parts.append(
        f"bytes/summary AOMG {sizes['aomg']['mean']:,.0f} (max {sizes['aomg']['max']:,}) "
        f"KLL {sizes['kll']['mean']:,.0f}"
    )
    return " ".join(parts)


def _ceiling(block: dict, base: str) -> str:
    """The most any aggregate could gain over ``base``: the count floor's rate over base's."""
    ratio = _ratio(block, FLOOR, base)
    return "-" if ratio is None else f"{ratio:.2f}×"


def _err(r: dict) -> str:
    if not r.get("error"):
        return "-"
    return " / ".join(f"{r['error'][lbl]:.3%}" for lbl in LABELS)


def report_lines(results: list[dict], args) -> list[str]:
    lines = [
        "# AOMG benchmark: AOMG's SQL aggregate vs percentile_approx vs native KLL",
        "",
        f"Query: per key, {WINDOW_S} s tumbling windows ({SUB_WINDOW_S} s sub-windows), "
        f"quantiles {', '.join(LABELS)}; local[2], one session; batch median of "
        f"{args.repeats} runs at <= 1 M rows, {args.large_repeats} above (order alternated), "
        f"streaming {STREAM_BATCHES} micro-batches, median of {args.stream_repeats} runs, up "
        f"to {args.stream_max_rows:,} rows (larger sizes: batch comparison only).",
        f"Load average at the end: {tuple(round(x, 2) for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs.",
        *(
            ["", "**Smoke run (tiny grid): proves the script end to end, not a measurement.**"]
            if args.smoke
            else []
        ),
        "",
        "| generator | rows | keys | mode | method | records/s | max rel. error p50 / p90 / p99 / p99.9 |",
        "| --- | ---: | ---: | --- | --- | ---: | --- |",
    ]
    for e in results:
        for mode in ("batch", "stream"):
            for m, r in e[mode].items():
                lines.append(
                    f"| {e['generator']} | {e['rows']:,} | {e['keys']:,} | {mode} | {m} | "
                    f"{r['records_per_s']:,.0f} | {_err(r)} |"
                )
    lines += [
        "",
        "## Targets (records/s of aomg over each baseline: ≥ 3× percentile_approx, ≥ 1× KLL)",
        "",
    ]
    lines += ["| generator | rows | keys | mode | / percentile_approx | / kll |"]
    lines += ["| --- | ---: | ---: | --- | --- | --- |"]
    for e in results:
        for mode in ("batch", "stream"):
            block = e[mode]
            if not block:
                continue
            lines.append(
                f"| {e['generator']} | {e['rows']:,} | {e['keys']:,} | {mode} | "
                f"{_verdict(block, 'percentile_approx')} | {_verdict(block, 'kll')} |"
            )
    lines += [
        "",
        f"## What the query costs besides its sketch (batch, `{FLOOR}`)",
        "",
        "The same read, window and grouping with `count()` as the aggregate. Its rate over a",
        "method's rate is the most any aggregate could gain over that method in this query.",
        "",
        "| generator | rows | keys | count floor records/s | ceiling over percentile_approx "
        "| ceiling over kll | aomg / floor time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in results:
        block = e["batch"]
        if FLOOR not in block:
            continue
        lines.append(
            f"| {e['generator']} | {e['rows']:,} | {e['keys']:,} | "
            f"{block[FLOOR]['records_per_s']:,.0f} | {_ceiling(block, 'percentile_approx')} | "
            f"{_ceiling(block, 'kll')} | {_ratio(block, FLOOR, 'aomg'):.2f} |"
        )
    lines += [
        "",
        "## Bytes per (key, window) summary (mean / max)",
        "",
        "| generator | rows | keys | AOMG | KLL |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for e in results:
        a, k = e["summary_bytes"]["aomg"], e["summary_bytes"]["kll"]
        lines.append(
            f"| {e['generator']} | {e['rows']:,} | {e['keys']:,} | "
            f"{a['mean']:,.0f} / {a['max']:,} | {k['mean']:,.0f} / {k['max']:,} |"
        )
    notes = [
        f"- {e['generator']} {e['rows']:,} rows {e['keys']} keys: {e['note']}"
        for e in results
        if e["note"]
    ]
    if notes:
        lines += ["", "## Skipped", "", *notes]
    return lines


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
    width = 0.25
    configs = [(e, mode) for e in results for mode in ("batch", "stream") if e[mode]]
    for j, m in enumerate(METHODS):
        rates = [e[mode].get(m, {}).get("records_per_s", 0.0) for e, mode in configs]
        axes[0].bar(np.arange(len(configs)) + j * width, rates, width, label=m)
    labels = [f"{e['generator'][:4]} {e['rows']:,}\n{e['keys']} keys {mode}" for e, mode in configs]
    axes[0].set_xticks(np.arange(len(configs)) + width)
    axes[0].set_xticklabels(labels, fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("records / s (log)")
    axes[0].set_title("throughput")
    axes[0].legend(fontsize=8)
    for j, m in enumerate(METHODS):
        worst = []
        for lbl in LABELS:
            errs = [
                e[mode][m]["error"][lbl]
                for e, mode in configs
                if m in e[mode] and e[mode][m].get("error")
            ]
            worst.append(max(max(errs, default=0.0), 1e-6))
        axes[1].bar(np.arange(len(LABELS)) + j * width, worst, width, label=m)
    axes[1].axhline(0.01, color="red", linestyle="--", linewidth=1, label="1 % target")
    axes[1].set_yscale("log")
    axes[1].set_xticks(np.arange(len(LABELS)) + width)
    axes[1].set_xticklabels(LABELS)
    axes[1].set_ylabel("max relative value error over all runs (1e-6 = exact)")
    axes[1].set_title("accuracy")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keys", type=int, nargs="+", default=[10, 1_000])
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS), choices=GENERATORS)
    parser.add_argument("--repeats", type=int, default=2, help="batch runs at <= 1 M rows")
    parser.add_argument("--large-repeats", type=int, default=1, help="batch runs above 1 M")
    parser.add_argument("--stream-max-rows", type=int, default=10_000_000)
    parser.add_argument("--stream-repeats", type=int, default=2, help="streaming runs per size")
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny grid, end to end")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.event_rate = EVENT_RATE
    if args.smoke:
        args.rows, args.keys, args.repeats, args.stream_repeats = [30_000], [10], 1, 1
        args.event_rate = SMOKE_EVENT_RATE
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    results = run_grid(args)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
        },
        "setup": {
            "window_s": WINDOW_S,
            "sub_window_s": SUB_WINDOW_S,
            "event_rate_per_s": args.event_rate,
            "quantiles": QUANTILES,
            "repeats": args.repeats,
            "large_repeats": args.large_repeats,
            "stream_max_rows": args.stream_max_rows,
            "stream_repeats": args.stream_repeats,
            "smoke": args.smoke,
        },
        "results": results,
    }
    lines = report_lines(results, args)
    (args.out / "aomg_bench.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out / "aomg_bench.md").write_text("\n".join(lines) + "\n")
    plot(results, args.out / "aomg_bench.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
