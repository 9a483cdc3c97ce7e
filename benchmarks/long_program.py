"""A program of many short jobs, with and without ``spark.blaze.enabled=true``.

Usage: python benchmarks/long_program.py [--jobs 2000] [--marks 100,1000,2000] [--repeats 1]
       [--shape map|shuffle|frame] [--smoke] [--out DIR]

The loop a new user writes (``--shape map``, the shape the issue reported): each job caches a
new ``base.map(...)`` generation, counts it and unpersists the previous one. ``--shape
shuffle`` (a second shape, never tuned on): each iteration caches a ``reduceByKey`` over four
partitions, reads it with two actions (the second a cache hit) and unpersists the previous
one; "jobs" then counts iterations. ``--shape frame``: the DataFrame loop — each iteration
caches the next generation of iteration state (``frame = frame.selectExpr(..).cache()``),
counts it and unpersists the previous one; every 20 iterations the state is checkpointed
locally so the plan stays short (as a user of such a loop does). Stock Spark runs every job in about the same time; the flag must
not change that however long the program runs (a manager whose books or predictor fits grow
with every generation makes each job dearer than the last).

Each measurement is its own Python process (own SparkContext and JVM), plain and flagged
alternating. The child prints, at every mark, the wall time per job over the jobs since the
previous mark and the driver process's resident memory; with the flag also the size of the
manager's books (entries in its per-dataset and per-partition tables). Output: the per-job
time ratio flagged/plain per window, RSS growth, written to long_program.json/.md/.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "long_program"
MARK = "LONG_PROGRAM "

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pyspark.sql import SparkSession
    from operator import add
    flag, jobs, marks = sys.argv[1], int(sys.argv[2]), [int(m) for m in sys.argv[3].split(",")]
    shape = sys.argv[4]
    builder = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if flag == "on":
        builder = builder.config("spark.blaze.enabled", "true")
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def books():
        if flag != "on":
            return None
        from blaze.manager import active_manager
        manager = active_manager(sc)
        return None if manager is None else manager.book_sizes()

    base = sc.parallelize(range(2000), 2)
    previous = None
    window_start, last_mark = time.perf_counter(), 0
    for job in range(1, jobs + 1):
        if shape == "map":
            current = base.map(lambda x, j=job: x * j % 97).cache()
            current.count()
        elif shape == "frame":
            state = previous if previous is not None else spark.range(2000, numPartitions=2)
            if job % 20 == 0:
                state = state.localCheckpoint()
            current = state.selectExpr("id", f"(id * {job}) % 97 AS v").cache()
            current.count()
        else:
            current = base.map(lambda x, j=job: (x % 40, x * j % 1009)).reduceByKey(add, 4)
            current = current.cache()
            current.count()
            current.values().sum()
        if previous is not None:
            previous.unpersist()
        previous = current
        if job in marks:
            now = time.perf_counter()
            row = {
                "job": job,
                "ms_per_job": 1000 * (now - window_start) / (job - last_mark),
                "rss_mib": rss_mib(),
                "books": books(),
            }
            print("__MARK__" + json.dumps(row), flush=True)
            window_start, last_mark = time.perf_counter(), job
    spark.stop()
    """
).replace("__MARK__", MARK)


def run_child(flag: str, jobs: int, marks: list[int], shape: str) -> list[dict]:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, flag, str(jobs), ",".join(map(str, marks)), shape],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    rows = [
        json.loads(line[len(MARK) :]) for line in proc.stdout.splitlines() if line.startswith(MARK)
    ]
    if proc.returncode != 0 or len(rows) != len(marks):
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise SystemExit(f"long_program child ({flag}) failed (exit {proc.returncode}):\n{tail}")
    return rows


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--marks", default="100,1000,2000")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--shape", choices=("map", "shuffle", "frame"), default="map")
    parser.add_argument("--smoke", action="store_true", help="40 jobs, marks 20,40")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    jobs, marks = args.jobs, sorted(int(m) for m in args.marks.split(","))
    if args.smoke:
        jobs, marks = 40, [20, 40]
    if not marks or marks[-1] != jobs:
        raise SystemExit(f"--marks must end at --jobs ({jobs}), got {args.marks}")

    load_before = load()
    runs: dict[str, list[list[dict]]] = {"plain": [], "flag": []}
    for repeat in range(args.repeats):
        order = ("plain", "flag") if repeat % 2 == 0 else ("flag", "plain")
        for side in order:
            rows = run_child("on" if side == "flag" else "off", jobs, marks, args.shape)
            runs[side].append(rows)
            print(side, [(r["job"], round(r["ms_per_job"], 1), round(r["rss_mib"])) for r in rows])
    load_after = load()

    table = []
    for index, mark in enumerate(marks):
        plain = statistics.median(r[index]["ms_per_job"] for r in runs["plain"])
        flag = statistics.median(r[index]["ms_per_job"] for r in runs["flag"])
        table.append(
            {
                "up_to_job": mark,
                "plain_ms_per_job": plain,
                "flag_ms_per_job": flag,
                "ratio": flag / plain,
                "plain_rss_mib": statistics.median(r[index]["rss_mib"] for r in runs["plain"]),
                "flag_rss_mib": statistics.median(r[index]["rss_mib"] for r in runs["flag"]),
                "flag_books": runs["flag"][-1][index]["books"],
            }
        )
    result = {
        "benchmark": STEM,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_before,
        "load_after": load_after,
        "jobs": jobs,
        "shape": args.shape,
        "repeats": args.repeats,
        "smoke": args.smoke,
        "windows": table,
        "target": "flag per-job time within 1.05x of plain and flat; driver memory flat",
    }
    worst = max(row["ratio"] for row in table)
    result["worst_ratio"] = worst
    result["met"] = worst <= 1.05
    lines = [
        f"# Long program ({args.shape} shape): {jobs} short jobs, plain vs "
        "spark.blaze.enabled=true",
        "",
        f"load before {load_before}, after {load_after}; {args.repeats} repeat(s)"
        + (" — SMOKE RUN, not a measurement" if args.smoke else ""),
        "",
        "| jobs up to | plain ms/job | flag ms/job | ratio | plain RSS MiB | flag RSS MiB | manager books |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in table:
        lines.append(
            f"| {row['up_to_job']} | {row['plain_ms_per_job']:.0f} | {row['flag_ms_per_job']:.0f}"
            f" | {row['ratio']:.2f} | {row['plain_rss_mib']:.0f} | {row['flag_rss_mib']:.0f}"
            f" | {row['flag_books']} |"
        )
    lines += ["", f"worst ratio {worst:.2f}: target ≤ 1.05 {'met' if worst <= 1.05 else 'missed'}"]
    print("\n".join(lines))
    if not args.smoke:
        stem = STEM if args.shape == "map" else f"{STEM}_{args.shape}"
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
        _plot(table, args.out / f"{stem}.png")
    return 0


def _plot(table: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    marks = [row["up_to_job"] for row in table]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(marks, [r["plain_ms_per_job"] for r in table], "o-", label="plain")
    left.plot(marks, [r["flag_ms_per_job"] for r in table], "s-", label="flag")
    left.set_xlabel("jobs run")
    left.set_ylabel("ms per job (window)")
    left.legend()
    right.plot(marks, [r["plain_rss_mib"] for r in table], "o-", label="plain")
    right.plot(marks, [r["flag_rss_mib"] for r in table], "s-", label="flag")
    right.set_xlabel("jobs run")
    right.set_ylabel("driver RSS (MiB)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
