"""What ``spark.blaze.enabled=true`` costs a program: start-up and per-partition cost.

Usage: python benchmarks/flag_overhead.py [--repeats 5] [--partitions 10,100,400]
       [--iterations 5] [--vertices 20000] [--smoke] [--out DIR]

Every measurement is its own Python process (its own SparkContext and JVM), the same program
with and without the flag, alternating (plain, flagged, plain, ...), so drift in the machine's
load hits both sides alike; medians over ``--repeats``. The flag reaches the program exactly as
under ``spark-submit --conf``: through the SparkConf, picked up by the installed startup hook.

(a) ``startup``: wall time from just before the SparkContext is created to the end of the
    first job (a 4-partition count), and the part of it spent inside SparkContext creation
    (where the hook attaches the manager). Target: flagged - plain < 1 s.
(b) ``pagerank``: the same PySpark PageRank (``links`` cached, ``--iterations`` rounds) at each
    of ``--partitions``, timed from after start-up to the answer; the ratio flagged/plain
    per partition count shows whether the manager's cost per event grows with partitions.

Writes flag_overhead.json, .md and .png into --out (default benchmarks/results).
``--smoke`` runs a tiny version (1 repeat, 4 and 8 partitions) to prove the script works.
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
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "flag_overhead"
MARK = "FLAG_OVERHEAD "

CHILD = textwrap.dedent(
    """
    import json, sys, time
    start = time.perf_counter()
    from pyspark.sql import SparkSession
    mode, partitions, iterations, vertices, flag = sys.argv[1:6]
    partitions, iterations, vertices = int(partitions), int(iterations), int(vertices)
    builder = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.default.parallelism", "4")
    )
    if flag == "on":
        builder = builder.config("spark.blaze.enabled", "true")
    before_context = time.perf_counter()
    spark = builder.getOrCreate()
    context_ready = time.perf_counter()
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    result = {"import_s": before_context - start, "context_s": context_ready - before_context}
    if mode == "startup":
        sc.parallelize(range(1000), 4).count()
        result["first_job_s"] = time.perf_counter() - before_context
    else:
        t0 = time.perf_counter()
        edges = sc.parallelize(
            [(v, (v * 7 + 1) % vertices) for v in range(vertices)]
            + [(v, (v * 13 + 5) % vertices) for v in range(vertices)],
            partitions,
        )
        links = edges.groupByKey(partitions).mapValues(list).cache()
        ranks = links.mapValues(lambda _: 1.0)
        for _ in range(iterations):
            contribs = links.join(ranks).flatMap(
                lambda kv: [(d, kv[1][1] / len(kv[1][0])) for d in kv[1][0]]
            )
            ranks = contribs.reduceByKey(lambda a, b: a + b, partitions).mapValues(
                lambda r: 0.15 + 0.85 * r
            )
        total = sum(ranks.values().collect())
        result["pagerank_s"] = time.perf_counter() - t0
        result["answer"] = round(total, 6)
    spark.stop()
    print("FLAG_OVERHEAD " + json.dumps(result), flush=True)
    """
)


def _run_child(
    script: Path,
    mode: str,
    partitions: int,
    iterations: int,
    vertices: int,
    flag: str,
    timeout_s: float,
) -> dict:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env.pop("BLAZE_SPARK_STARTUP", None)
    argv = [
        sys.executable,
        str(script),
        mode,
        str(partitions),
        str(iterations),
        str(vertices),
        flag,
    ]
    wall = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout_s)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} {flag} failed:\n{proc.stderr[-3000:]}")
    [line] = [x for x in proc.stdout.splitlines() if x.startswith(MARK)]
    result = json.loads(line[len(MARK) :])
    result["process_s"] = wall
    return result


def _pairs(script, mode, partitions, iterations, vertices, repeats, timeout_s) -> dict:
    runs = {"off": [], "on": []}
    for i in range(repeats):
        order = ("off", "on") if i % 2 == 0 else ("on", "off")
        for flag in order:
            runs[flag].append(
                _run_child(script, mode, partitions, iterations, vertices, flag, timeout_s)
            )
            print(f"  {mode} p={partitions} {flag}: {runs[flag][-1]}", flush=True)
    return runs


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(args) -> dict:
    script = Path(args.out) / f".{STEM}_child.py"
    script.write_text(CHILD)
    try:
        startup = _pairs(script, "startup", 4, 0, 0, args.repeats, 600)
        report = {
            "startup": {
                flag: {
                    "context_s": _median(runs, "context_s"),
                    "first_job_s": _median(runs, "first_job_s"),
                    "runs": runs,
                }
                for flag, runs in startup.items()
            }
        }
        s = report["startup"]
        s["added_s"] = s["on"]["first_job_s"] - s["off"]["first_job_s"]
        s["added_in_context_s"] = s["on"]["context_s"] - s["off"]["context_s"]
        pagerank = {}
        for partitions in args.partitions:
            runs = _pairs(
                script, "pagerank", partitions, args.iterations, args.vertices, args.repeats, 3600
            )
            answers = {r["answer"] for flag in runs for r in runs[flag]}
            off, on = _median(runs["off"], "pagerank_s"), _median(runs["on"], "pagerank_s")
            pagerank[str(partitions)] = {
                "off_s": off,
                "on_s": on,
                "ratio": on / off,
                "answers_agree": len(answers) == 1,
                "runs": runs,
            }
        report["pagerank"] = pagerank
    finally:
        script.unlink(missing_ok=True)
    report["settings"] = {
        "repeats": args.repeats,
        "partitions": args.partitions,
        "iterations": args.iterations,
        "vertices": args.vertices,
        "smoke": args.smoke,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return report


def markdown(report: dict) -> str:
    s = report["startup"]
    lines = [
        "# Cost of `spark.blaze.enabled=true`",
        "",
        f"Separate processes, alternating, medians of {report['settings']['repeats']} "
        f"(cpus={report['settings']['cpus']}{', SMOKE run' if report['settings']['smoke'] else ''}).",
        "",
        "## Start-up (SparkContext creation to the end of the first job)",
        "",
        "| | plain | flag | added |",
        "| --- | ---: | ---: | ---: |",
        f"| SparkContext created | {s['off']['context_s']:.2f} s | {s['on']['context_s']:.2f} s "
        f"| {s['added_in_context_s']:+.2f} s |",
        f"| first job done | {s['off']['first_job_s']:.2f} s | {s['on']['first_job_s']:.2f} s "
        f"| {s['added_s']:+.2f} s |",
        "",
        f"Target: added < 1 s — {'met' if s['added_s'] < 1 else 'NOT met'}.",
        "",
        "## PageRank, same program at several partition counts",
        "",
        "| partitions | plain | flag | ratio | answers agree |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for partitions, row in report["pagerank"].items():
        lines.append(
            f"| {partitions} | {row['off_s']:.2f} s | {row['on_s']:.2f} s | {row['ratio']:.2f} "
            f"| {'yes' if row['answers_agree'] else 'NO'} |"
        )
    lines += ["", f"Raw runs in {STEM}.json; plot {STEM}.png.", ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    s = report["startup"]
    left.bar(
        ["plain", "flag"], [s["off"]["first_job_s"], s["on"]["first_job_s"]], color=["#888", "#c44"]
    )
    left.set_ylabel("seconds to the end of the first job")
    left.set_title("start-up")
    parts = list(report["pagerank"])
    ratios = [report["pagerank"][p]["ratio"] for p in parts]
    right.plot([int(p) for p in parts], ratios, "o-", color="#c44")
    right.axhline(1.0, color="#888", linestyle="--")
    right.set_xscale("log")
    right.set_xlabel("partitions")
    right.set_ylabel("flag / plain (PageRank wall time)")
    right.set_title("cost as partitions grow")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--partitions", default="10,100,400")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--vertices", type=int, default=20_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves the script")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.partitions, args.iterations, args.vertices = 1, "4,8", 2, 500
    args.partitions = [int(p) for p in args.partitions.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = measure(args)
    (out / f"{STEM}.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (out / f"{STEM}.md").write_text(markdown(report))
    plot(report, out / f"{STEM}.png")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
