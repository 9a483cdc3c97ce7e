"""Per-task cost of blaze-spark's JVM plugin: the executor half's ask at every task start.

Each executor half times its ``PluginContext.ask`` round trip to the driver half and its whole
``onTaskStart`` (the ask plus carrying out any orders) and hands the samples to the driver
with its next ask; the manager's report gives their medians. This runs a job of ``--tasks``
tiny JVM-only tasks (``sc.range(...).count()`` does no Python work) with the manager
attached, on ``--master`` (default ``local-cluster[2,1,1024]``), and prints the medians, plus
the wall time of the same job before the manager attached, and the ratio. The plugin's
halves run in both (they start with the session), so the ratio is the manager's cost; the
samples cover every task since the session started.
Target: median per-task cost ≤ 1 ms. Writes benchmarks/results/plugin_overhead.{json,md}.
Usage: ``python benchmarks/plugin_overhead.py [--tasks 2000 --repeats 3]``; ``--smoke``
runs 200 tasks once (proves the pipeline; not a measurement).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _job(sc, tasks: int) -> float:
    started = time.perf_counter()
    assert sc.range(0, tasks * 10, 1, tasks).count() == tasks * 10
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local-cluster[2,1,1024]")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="200 tasks, once")
    args = parser.parse_args()
    if args.smoke:
        args.tasks, args.repeats = 200, 1

    import blaze
    from blaze.plugin import registered_executors

    spark = blaze.session(
        {"spark.master": args.master, "spark.ui.enabled": "false", "spark.blaze.enabled": "false"},
        app_name="blaze-plugin-overhead",
    )
    sc = spark.sparkContext
    try:
        deadline = time.time() + 180
        expected = 1 if args.master.startswith("local[") else 2
        while len(registered_executors(spark)) < expected and time.time() < deadline:
            time.sleep(0.2)
        _job(sc, args.tasks)  # warm-up
        plain = [_job(sc, args.tasks) for _ in range(args.repeats)]
        manager = blaze.attach(spark, policy="blaze")
        managed = [_job(sc, args.tasks) for _ in range(args.repeats)]
        report = manager.report()
        manager.detach()
    finally:
        spark.stop()
    summary = {
        "master": args.master,
        "tasks": args.tasks,
        "repeats": args.repeats,
        "plain_seconds_median": statistics.median(plain),
        "managed_seconds_median": statistics.median(managed),
        "wall_ratio": statistics.median(managed) / statistics.median(plain),
        "ask_ms_median": report["plugin_ask_ms_median"],
        "task_start_ms_median": report["plugin_task_start_ms_median"],
        "task_samples": report["plugin_task_samples"],
        "target": "task_start_ms_median <= 1.0",
    }
    lines = [
        "# Per-task cost of the JVM plugin",
        "",
        f"{args.tasks} tiny JVM tasks on {args.master}, median of {args.repeats}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| ask round trip, median ms | {summary['ask_ms_median']} |",
        f"| onTaskStart, median ms | {summary['task_start_ms_median']} |",
        f"| samples | {summary['task_samples']} |",
        f"| job wall, managed / plain | {summary['wall_ratio']:.3f} |",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "plugin_overhead_smoke" if args.smoke else "plugin_overhead"
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
