"""AOMG benchmark: windowed quantiles of Pingmesh RTTs, AOMG vs exact and three baselines.

Same data (the telemetry generator), same windows (per pod, 10 s tumbling windows built from
1 s sub-windows), same quantiles (p50, p90, p99, p99.9). Reported per method:

* relative value error |q̂ - q| / q against DuckDB ``quantile_disc`` (max and mean over all
  (pod, window) pairs);
* throughput in records/s;
* state bytes per (pod, window).

Part 1 — the summaries in one Python process (no JVM): AOMG (this project's level-1 and
level-2 code), DDSketch (``ddsketch``, same α, one Python ``add`` per value — its API has no
vectorised add), KLL (``datasketches``, k=200, vectorised update), and the exact DuckDB query.
Each one builds one sketch per (pod, sub-window) and merges them per window, i.e. the state a
streaming operator would keep.

Part 2 — Spark, side by side in one session, rounds interleaved, median reported (the
machine is shared; the load average is logged): the same windowed query with Spark's
``percentile_approx`` (GK, accuracy 10000) and with AOMG's batch form, on one cached
DataFrame; then both as streaming queries on the telemetry stream source (same micro-batch
size), throughput = input rows / processing time of the data batches after the first.

Run: ``python benchmarks/aomg_bench.py [--records 2000000] [--no-spark] [--out DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streaming.aomg.operator import partial_summaries  # noqa: E402
from streaming.aomg.summary import QuantileSummary, SummaryConfig  # noqa: E402
from streaming.aomg.windows import WindowSpec  # noqa: E402
from streaming.common.telemetry import TelemetryConfig, generate_table  # noqa: E402

QUANTILES = [0.5, 0.9, 0.99, 0.999]
LABELS = ["p50", "p90", "p99", "p99.9"]
SPEC = WindowSpec.of("10 seconds", "1 second")
CONFIG = SummaryConfig(relative_accuracy=0.005)
SERVERS_PER_POD = 200
EVENT_RATE = 100_000


def telemetry(records: int) -> pa.Table:
    table = generate_table(TelemetryConfig(seed=11, records_per_second=EVENT_RATE), records)
    pod = pc.divide(table["src"], SERVERS_PER_POD)
    t = table["ts"].cast(pa.int64())
    return pa.table({"key": pod, "t": t, "v": table["rtt_us"].cast(pa.float64())})


def window_end(t_us: np.ndarray) -> np.ndarray:
    return t_us - np.mod(t_us, SPEC.window_us) + SPEC.window_us


# -- part 1: summaries in Python -----------------------------------------------------------


def exact_duckdb(data: pa.Table) -> tuple[dict, float]:
    con = duckdb.connect()
    con.register("d", data)
    picks = ", ".join(f"quantile_disc(v, {q})" for q in QUANTILES)
    sql = (
        f"SELECT key, t - t % {SPEC.window_us} + {SPEC.window_us} AS w, {picks} FROM d GROUP BY ALL"
    )
    start = time.perf_counter()
    rows = con.execute(sql).fetchall()
    elapsed = time.perf_counter() - start
    return {(int(r[0]), int(r[1])): np.asarray(r[2:], dtype=np.float64) for r in rows}, elapsed


def groups(data: pa.Table):
    """(key, sub-window start) -> values, in the order a stream would deliver them."""
    key = data["key"].to_numpy()
    t = data["t"].to_numpy()
    v = data["v"].to_numpy()
    sub = SPEC.sub_window_start(t)
    order = np.lexsort((sub, key))
    key, sub, v = key[order], sub[order], v[order]
    cut = np.flatnonzero((np.diff(key) != 0) | (np.diff(sub) != 0)) + 1
    bounds = [0, *cut.tolist(), key.size]
    for a, b in itertools.pairwise(bounds):
        yield int(key[a]), int(sub[a]), v[a:b]


def run_aomg(data: pa.Table) -> tuple[dict, dict]:
    start = time.perf_counter()
    partial = pa.Table.from_batches(
        list(partial_summaries(iter(data.to_batches()), SPEC, CONFIG, pa.int32()))
    )
    per_window: dict[tuple, list[QuantileSummary]] = defaultdict(list)
    sub_bytes: dict[tuple, int] = defaultdict(int)
    for key, sub, blob in zip(
        partial["key"].to_pylist(), partial["sub"].to_pylist(), partial["summary"].to_pylist()
    ):
        summary = QuantileSummary.from_bytes(blob)
        for end in SPEC.window_ends(sub):
            per_window[(key, end)].append(summary)
            sub_bytes[(key, end)] += len(blob)
    answers = {
        k: QuantileSummary.merge_all(parts).quantiles(QUANTILES) for k, parts in per_window.items()
    }
    elapsed = time.perf_counter() - start
    return answers, {"seconds": elapsed, "state_bytes": statistics.mean(sub_bytes.values())}


def ddsketch_quantiles(sketch) -> np.ndarray:
    """DDSketch at quantile_disc's rank: it reads rank ``q·(n-1)`` (0-based, first bucket whose
    running count exceeds it), so ask for rank ``ceil(n·q) - 0.5`` to compare like with like."""
    n = sketch.count
    ranks = np.maximum(np.ceil(n * np.asarray(QUANTILES)), 1) - 0.5
    return np.asarray([sketch.get_quantile_value(min(r / max(n - 1, 1), 1.0)) for r in ranks])


def run_ddsketch(data: pa.Table) -> tuple[dict, dict]:
    from ddsketch import DDSketch
    from ddsketch.pb.proto import DDSketchProto

    start = time.perf_counter()
    per_window: dict[tuple, DDSketch] = {}
    state: dict[tuple, int] = defaultdict(int)
    subs = []
    for key, sub, values in groups(data):
        sketch = DDSketch(relative_accuracy=CONFIG.relative_accuracy)
        for value in values.tolist():
            sketch.add(value)
        subs.append((key, sub, sketch))
    for key, sub, sketch in subs:
        for end in SPEC.window_ends(sub):
            merged = per_window.setdefault((key, end), DDSketch(CONFIG.relative_accuracy))
            merged.merge(sketch)
    answers = {k: ddsketch_quantiles(s) for k, s in per_window.items()}
    elapsed = time.perf_counter() - start
    for key, sub, sketch in subs:  # size measured outside the timed part
        size = len(DDSketchProto.to_proto(sketch).SerializeToString())
        for end in SPEC.window_ends(sub):
            state[(key, end)] += size
    return answers, {"seconds": elapsed, "state_bytes": statistics.mean(state.values())}


def run_kll(data: pa.Table) -> tuple[dict, dict]:
    from datasketches import kll_doubles_sketch

    start = time.perf_counter()
    per_window: dict[tuple, kll_doubles_sketch] = {}
    subs = []
    for key, sub, values in groups(data):
        sketch = kll_doubles_sketch(200)
        sketch.update(values)
        subs.append((key, sub, sketch))
    for key, sub, sketch in subs:
        for end in SPEC.window_ends(sub):
            per_window.setdefault((key, end), kll_doubles_sketch(200)).merge(sketch)
    answers = {
        k: np.asarray([s.get_quantile(q, True) for q in QUANTILES]) for k, s in per_window.items()
    }
    elapsed = time.perf_counter() - start
    state: dict[tuple, int] = defaultdict(int)
    for key, sub, sketch in subs:
        for end in SPEC.window_ends(sub):
            state[(key, end)] += len(sketch.serialize())
    return answers, {"seconds": elapsed, "state_bytes": statistics.mean(state.values())}


def errors(answers: dict, exact: dict) -> dict:
    if set(answers) != set(exact):
        raise RuntimeError(
            f"window sets differ: {len(answers)} vs {len(exact)} (pod, window) pairs"
        )
    est = np.vstack([answers[k] for k in sorted(exact)])
    truth = np.vstack([exact[k] for k in sorted(exact)])
    rel = np.abs(est - truth) / truth
    return {
        label: {"max": float(rel[:, i].max()), "mean": float(rel[:, i].mean())}
        for i, label in enumerate(LABELS)
    }


# -- part 2: Spark ---------------------------------------------------------------------------


def spark_part(
    records: int, stream_records: int, batch_rows: int, rounds: int, exact: dict, exact_all: dict
) -> dict:
    from pyspark.sql import functions as F

    import blaze
    from streaming.aomg.operator import window_quantiles
    from streaming.common.source import read_telemetry

    spark = blaze.session(
        {
            "spark.master": "local[2]",
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.driver.memory": "3g",
            "spark.sql.streaming.stateStore.providerClass": (
                "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
            ),
            "spark.python.worker.reuse": "true",
        },
        app_name="aomg-bench",
    )
    source = {"event_rate": EVENT_RATE, "seed": 11, "num_partitions": 2}

    def with_pod(df):
        return df.withColumn("key", (F.col("src") / SERVERS_PER_POD).cast("int"))

    static = with_pod(read_telemetry(spark, total_records=records, **source)).cache()
    static.count()

    def spark_gk(df):
        return (
            df.withWatermark("ts", "1 second")
            .groupBy("key", F.window("ts", "10 seconds"))
            .agg(F.percentile_approx("rtt_us", QUANTILES, 10_000).alias("quantiles"))
            .select(
                "key",
                F.col("window.start").alias("window_start"),
                F.col("window.end").alias("window_end"),
                "quantiles",
            )
        )

    def aomg(df):
        return window_quantiles(
            df, window="10 seconds", sub_window="1 second", quantiles=QUANTILES, key_col="key"
        ).select("key", "window_start", "window_end", "quantiles")

    def answers_of(rows) -> dict:
        return {
            (int(r["key"]), int(r["window_end"].timestamp() * 1e6)): np.asarray(
                r["quantiles"], float
            )
            for r in rows
        }

    batch_times: dict[str, list[float]] = {"spark_percentile_approx": [], "aomg_spark": []}
    batch_answers = {}
    for round_ in range(rounds + 1):  # round 0 warms the JIT and the Python workers
        for name, query in (("spark_percentile_approx", spark_gk), ("aomg_spark", aomg)):
            start = time.perf_counter()
            rows = query(static).collect()
            if round_:
                batch_times[name].append(time.perf_counter() - start)
            batch_answers[name] = answers_of(rows)
    static.unpersist()
    out: dict = {"batch": {}, "stream": {}}
    for name, times in batch_times.items():
        out["batch"][name] = {
            "seconds_median": statistics.median(times),
            "seconds_all": times,
            "records_per_s": records / statistics.median(times),
            "windows": len(batch_answers[name]),
            "error": errors(batch_answers[name], exact),
        }

    stream_runs: dict[str, list[dict]] = defaultdict(list)
    for run in range(2):  # alternate the two queries; report the median run of each
        for name, query in (("spark_percentile_approx", spark_gk), ("aomg_spark", aomg)):
            stream_runs[name].append(
                stream_once(
                    spark,
                    f"bench_{name}_{run}",
                    query,
                    with_pod,
                    source,
                    stream_records,
                    batch_rows,
                    exact_all,
                )
            )
    for name, runs in stream_runs.items():
        rates = [r["records_per_s"] for r in runs]
        best = sorted(runs, key=lambda r: r["records_per_s"])[len(runs) // 2]
        out["stream"][name] = {**best, "records_per_s": statistics.median(rates), "runs": rates}
    spark.stop()
    return out


def stream_once(spark, table, query, with_pod, source, stream_records, batch_rows, exact_all):
    """One AvailableNow streaming run; throughput over the data batches after the first."""
    from streaming.common.source import read_telemetry_stream

    stream = with_pod(
        read_telemetry_stream(
            spark, total_records=stream_records, max_records_per_batch=batch_rows, **source
        )
    )
    handle = (
        query(stream)
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
    rows_in = sum(p["numInputRows"] for p in warm)
    seconds = sum(p["durationMs"]["triggerExecution"] for p in warm) / 1e3
    result = {
        (int(r["key"]), int(r["window_end"].timestamp() * 1e6)): np.asarray(r["quantiles"], float)
        for r in spark.sql(f"SELECT * FROM {table}").collect()
    }
    sub_exact = {k: v for k, v in exact_all.items() if k in result}
    return {
        "records_per_s": rows_in / seconds,
        "batches": len(progress),
        "batch_rows": batch_rows,
        "first_batch_s": progress[0]["durationMs"]["triggerExecution"] / 1e3,
        "windows_emitted": len(result),
        "error": errors(result, sub_exact) if result else None,
    }


# -- report -------------------------------------------------------------------------------


def table_lines(results: dict) -> list[str]:
    head = "| method | " + " | ".join(f"max err {lbl}" for lbl in LABELS)
    head += " | records/s | state bytes / window |"
    lines = [head, "|" + " --- |" * (len(LABELS) + 3)]
    for name, r in results.items():
        errs = " | ".join(f"{r['error'][lbl]['max']:.3%}" for lbl in LABELS)
        lines.append(f"| {name} | {errs} | {r['records_per_s']:,.0f} | {r['state_bytes']:,.0f} |")
    return lines


def plot(results: dict, spark: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    methods = list(results)
    width = 0.8 / len(methods)
    for i, name in enumerate(methods):
        errs = [max(results[name]["error"][lbl]["max"], 1e-6) for lbl in LABELS]
        axes[0].bar(np.arange(len(LABELS)) + i * width, errs, width, label=name)
    if spark:
        errs = [
            max(spark["batch"]["spark_percentile_approx"]["error"][lbl]["max"], 1e-6)
            for lbl in LABELS
        ]
        axes[0].bar(
            np.arange(len(LABELS)) + len(methods) * width,
            errs,
            width,
            label="spark percentile_approx",
        )
    axes[0].axhline(0.01, color="red", linestyle="--", linewidth=1, label="1% target")
    axes[0].set_yscale("log")
    axes[0].set_xticks(np.arange(len(LABELS)) + 0.4)
    axes[0].set_xticklabels(LABELS)
    axes[0].set_ylabel("max relative value error (1e-6 = exact)")
    axes[0].set_title("accuracy per quantile (all pod × 10 s windows)")
    axes[0].legend(fontsize=8)

    names, rates = [], []
    for name in methods:
        names.append(name)
        rates.append(results[name]["records_per_s"])
    if spark:
        for mode in ("batch", "stream"):
            for name, r in spark[mode].items():
                names.append(f"{name}\n({mode})")
                rates.append(r["records_per_s"])
    axes[1].barh(names, rates)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("records / s (log)")
    axes[1].set_title("throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--stream-records", type=int, default=2_000_000)
    parser.add_argument("--batch-rows", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    total = max(args.records, 0 if args.no_spark else args.stream_records)
    data = telemetry(total)
    part = data.slice(0, args.records)
    exact_all, _ = exact_duckdb(data)  # reference for the streaming runs (closed windows)
    exact_part, exact_seconds = exact_duckdb(part)

    results: dict = {}
    counts: dict[tuple, int] = defaultdict(int)
    for key, sub, values in groups(part):
        counts[(key, sub - sub % SPEC.window_us)] += values.size
    results["exact (duckdb quantile_disc)"] = {
        "records_per_s": args.records / exact_seconds,
        "state_bytes": 8 * statistics.mean(counts.values()),
        "error": errors(exact_part, exact_part),
    }
    runs = (("aomg", run_aomg), ("kll k=200", run_kll), ("ddsketch α=0.5%", run_ddsketch))
    seconds: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):  # interleaved rounds: load changes hit every method alike
        for name, run in runs:
            answers, info = run(part)
            seconds[name].append(info["seconds"])
            results[name] = {
                "state_bytes": info["state_bytes"],
                "error": errors(answers, exact_part),
            }
    for name, _ in runs:
        results[name]["records_per_s"] = args.records / statistics.median(seconds[name])
        results[name]["seconds_all"] = seconds[name]
        print(f"{name}: {results[name]['records_per_s']:,.0f} records/s", flush=True)

    spark = None
    if not args.no_spark:
        spark = spark_part(
            args.records, args.stream_records, args.batch_rows, args.rounds, exact_part, exact_all
        )

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
        },
        "setup": {
            "records": args.records,
            "stream_records": args.stream_records,
            "event_rate_per_s": EVENT_RATE,
            "window": "10 s tumbling of 1 s sub-windows, per pod (5 pods)",
            "quantiles": QUANTILES,
            "aomg_config": dataclasses.asdict(CONFIG),
        },
        "summaries": results,
        "spark": spark,
    }
    lines = ["# AOMG benchmark", "", f"load average at the end: {os.getloadavg()}", ""]
    lines += ["## Summaries (one Python process)", "", *table_lines(results), ""]
    if spark:
        gk, ours = spark["batch"]["spark_percentile_approx"], spark["batch"]["aomg_spark"]
        sgk, sours = spark["stream"]["spark_percentile_approx"], spark["stream"]["aomg_spark"]
        lines += [
            "## Spark, same windowed query, side by side",
            "",
            "| query | mode | records/s | max err p50 / p90 / p99 / p99.9 |",
            "| --- | --- | --- | --- |",
        ]
        for mode, block in (("batch", spark["batch"]), ("stream", spark["stream"])):
            for name, r in block.items():
                errs = (
                    " / ".join(f"{r['error'][lbl]['max']:.3%}" for lbl in LABELS)
                    if r["error"]
                    else "-"
                )
                lines.append(f"| {name} | {mode} | {r['records_per_s']:,.0f} | {errs} |")
        lines += [
            "",
            f"throughput ratio AOMG / percentile_approx: batch {ours['records_per_s'] / gk['records_per_s']:.2f}×, "
            f"streaming {sours['records_per_s'] / sgk['records_per_s']:.2f}× (target ≥ 3×)",
        ]
        report["ratios"] = {
            "batch": ours["records_per_s"] / gk["records_per_s"],
            "stream": sours["records_per_s"] / sgk["records_per_s"],
        }
    (args.out / "aomg_bench.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / "aomg_bench.md").write_text("\n".join(lines) + "\n")
    plot(results, spark, args.out / "aomg_bench.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
